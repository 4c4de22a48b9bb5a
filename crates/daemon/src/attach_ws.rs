//! `GET /containers/{id}/attach/ws`: attach over a websocket, as dockerd offers it to
//! browsers and tools that cannot hijack an HTTP connection. The container's output goes out
//! as binary messages, unframed (dockerd does not multiplex a websocket), stdin comes in as
//! messages; the websocket itself is axum's (tungstenite underneath).

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_engine::model::frames;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::{truthy, E};
use crate::streams::AttachQuery;
use crate::ApiError;

/// `GET /containers/{id}/attach/ws`.
pub async fn attach_ws(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // An unknown container is refused before the upgrade, with dockerd's 404.
    engine.containers.find(&id)?;
    let (stdin, stdout, stderr) = (truthy(&q.stdin), truthy(&q.stdout), truthy(&q.stderr));
    Ok(ws.on_upgrade(move |socket| async move {
        match engine.containers.attach(&id, stdin, stdout, stderr).await {
            Ok((_, shim)) => relay(socket, shim, stdin).await,
            Err(err) => {
                let mut socket = socket;
                let _ = socket
                    .send(Message::Text(format!("Error: {err}").into()))
                    .await;
                let _ = socket.close().await;
            }
        }
    }))
}

/// Relays the shim's frames to the websocket (one binary message per frame, headers
/// dropped) and the websocket's messages to the container's stdin, until the container's
/// output ends or the client closes.
async fn relay(socket: WebSocket, shim: tokio::net::UnixStream, stdin: bool) {
    let (mut tx, mut rx) = socket.split();
    let (mut sr, mut sw) = shim.into_split();
    let input = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let data = match m {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            if stdin && sw.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    });
    let mut hdr = [0u8; 8];
    loop {
        if sr.read_exact(&mut hdr).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        let mut data = vec![0u8; len];
        if sr.read_exact(&mut data).await.is_err() {
            break;
        }
        if hdr[0] == frames::EXIT {
            continue;
        }
        if tx.send(Message::Binary(data.into())).await.is_err() {
            break;
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    input.abort();
}
