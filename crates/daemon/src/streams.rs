//! `/containers/{id}/logs` and `/containers/{id}/attach`: a container's output as a streamed body or a hijacked connection (HTTP 101, `Upgrade: tcp`), and the helpers exec streams share.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::containers::LogOptions;
use berth_engine::lifecycle::State as CState;
use berth_engine::model::frames;
use berth_engine::Engine;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::http::{bad, content_type, truthy, E};
use crate::ApiError;

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    since: Option<String>,
    until: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
}

/// Docker's `since`/`until`: Unix seconds with an optional fraction.
pub(crate) fn parse_unix(s: &Option<String>) -> Result<Option<i128>, ApiError> {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty() && *s != "0") else {
        return Ok(None);
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = secs
        .parse()
        .map_err(|_| bad(format!("invalid time value: {s}")))?;
    let mut nanos: i128 = 0;
    if !frac.is_empty() {
        let f = &frac[..frac.len().min(9)];
        nanos = f
            .parse::<i128>()
            .map_err(|_| bad(format!("invalid time value: {s}")))?
            * 10i128.pow(9 - f.len() as u32);
    }
    Ok(Some(secs * 1_000_000_000 + nanos))
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let o = LogOptions {
        follow: truthy(&q.follow),
        stdout: truthy(&q.stdout),
        stderr: truthy(&q.stderr),
        since: parse_unix(&q.since)?,
        until: parse_unix(&q.until)?,
        // As dockerd: `all`, nothing or a negative number is every line (Testcontainers
        // sends `tail=-1`).
        tail: match q.tail.as_deref() {
            None | Some("") | Some("all") => None,
            Some(n) => {
                let n: i64 = n
                    .parse()
                    .map_err(|_| bad(format!("invalid tail value: {n}")))?;
                usize::try_from(n).ok()
            }
        },
    };
    if !o.stdout && !o.stderr {
        return Err(bad("Bad parameters: you must choose at least one stream"));
    }
    let timestamps = truthy(&q.timestamps);
    let (tty, rx) = engine.containers.logs(&id, o)?;
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let l = rx.recv().await?;
        Some((
            Ok::<_, Infallible>(Bytes::from(framed(&l, tty, timestamps))),
            rx,
        ))
    });
    let ct = content_type(tty);
    Ok(([(header::CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}

/// One log line as the logs endpoint and a replaying attach send it: as written with a
/// terminal, else in a multiplexing frame; with `timestamps`, its time first.
fn framed(l: &berth_engine::logs::LogLine, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut payload = Vec::new();
    if timestamps {
        payload.extend_from_slice(l.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&l.data);
    if tty {
        return payload;
    }
    let mut f = frames::header(l.stream, payload.len()).to_vec();
    f.extend_from_slice(&payload);
    f
}

/// `attach?logs=1`: the container's log so far, on the chosen streams, to `client`.
async fn replay_logs<C: AsyncWrite + Unpin>(
    engine: &Engine,
    id: &str,
    stdout: bool,
    stderr: bool,
    client: &mut C,
) -> Result<(), ApiError> {
    let o = LogOptions {
        follow: false,
        stdout,
        stderr,
        since: None,
        until: None,
        tail: None,
    };
    let (tty, mut rx) = engine.containers.logs(id, o)?;
    while let Some(l) = rx.recv().await {
        if client.write_all(&framed(&l, tty, false)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// The streams an attach (hijacked or over a websocket) asks for. `logs` replays the log
/// first; `stream` then follows the live output; both false by default, as dockerd reads them.
#[derive(Debug, Deserialize)]
pub struct AttachQuery {
    pub(crate) stdin: Option<String>,
    pub(crate) stdout: Option<String>,
    pub(crate) stderr: Option<String>,
    pub(crate) logs: Option<String>,
    pub(crate) stream: Option<String>,
    #[serde(rename = "detachKeys")]
    pub(crate) detach_keys: Option<String>,
}

/// `POST /containers/{id}/attach`: answers 101 at once (the docker CLI starts the container
/// only after that), then connects the hijacked connection to the shim once it runs.
pub async fn attach(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let e = engine.containers.find(&id)?;
    if matches!(e.view().state(), CState::Removing | CState::Dead) {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: "You cannot attach to a stopped container, start it first".into(),
        });
    }
    let tty = e.record().config.tty.unwrap_or(false);
    let (stdin, stdout, stderr) = (truthy(&q.stdin), truthy(&q.stdout), truthy(&q.stderr));
    let keys = q.detach_keys.as_deref().unwrap_or_default();
    let keys = crate::detach::parse(keys)
        .ok_or_else(|| bad(format!("Invalid detach keys ({keys}) provided")))?;
    let (logs, stream) = (truthy(&q.logs), truthy(&q.stream));
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ct = content_type(tty);
    if !upgrade {
        // A plain request: the output as the response body.
        let mut replay = Vec::new();
        if logs {
            replay_logs(&engine, &id, stdout, stderr, &mut replay).await?;
        }
        if !stream {
            return Ok(([(header::CONTENT_TYPE, ct)], replay).into_response());
        }
        let (tty, shim) = engine.containers.attach(&id, false, stdout, stderr).await?;
        let live = shim_body(shim, tty, None).into_data_stream();
        let body = futures_util::StreamExt::chain(
            futures_util::stream::once(async move { Ok(Bytes::from(replay)) }),
            live,
        );
        return Ok(([(header::CONTENT_TYPE, ct)], Body::from_stream(body)).into_response());
    }
    let sock = crate::hijack::socket_of(&req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        crate::hijack::until_read(sock).await;
        let mut client = hyper_util::rt::TokioIo::new(upgraded);
        if logs {
            if let Err(err) = replay_logs(&engine, &id, stdout, stderr, &mut client).await {
                let _ = client
                    .write_all(format!("Error: {}\n", err.message).as_bytes())
                    .await;
            }
        }
        if !stream {
            // Nothing more is asked for: the end of the connection says so.
            let _ = client.shutdown().await;
            return;
        }
        let (tty, shim) = match engine.containers.attach(&id, stdin, stdout, stderr).await {
            Ok(s) => s,
            Err(err) => {
                let _ = client.write_all(format!("Error: {err}\n").as_bytes()).await;
                let _ = client.shutdown().await;
                return;
            }
        };
        // The detach sequence only with a terminal: binary input can hold any bytes.
        let keys = if tty { keys } else { Vec::new() };
        pipe(client, shim, tty, stdin.then_some(keys), None).await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, ct)
        .body(Body::empty())
        .expect("response"))
}

/// A shim stream as a response body, for clients that did not ask for a hijack: the same
/// framing as [`pipe`] (frames kept without a terminal, stripped with one), streamed.
pub(crate) fn shim_body(
    shim: tokio::net::UnixStream,
    tty: bool,
    on_exit: Option<Box<dyn FnOnce(i64) + Send>>,
) -> Body {
    let (r, w) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pipe(w, shim, tty, None, on_exit));
    let stream = futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 32 * 1024];
        let n = r.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        buf.truncate(n);
        Some((Ok::<_, Infallible>(Bytes::from(buf)), r))
    });
    Body::from_stream(stream)
}

/// Copies a client's stdin to the shim and the shim's frames to the client (without the
/// frame headers for a terminal), until the shim's side ends or the client detaches.
/// `stdin` holds the detach sequence when the client's input goes to the container (empty:
/// none; dockerd looks for it only when the process has a terminal).
pub(crate) async fn pipe<C>(
    client: C,
    shim: tokio::net::UnixStream,
    tty: bool,
    stdin: Option<Vec<u8>>,
    on_exit: Option<Box<dyn FnOnce(i64) + Send>>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        if let Some(keys) = stdin {
            if crate::detach::copy(&mut cr, &mut sw, &keys).await == crate::detach::Ended::Detached
            {
                let _ = detached_tx.send(());
            }
        } else {
            // Still read, so that a client closing its side is noticed; discard the bytes.
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut cr, &mut sink).await;
        }
        let _ = sw.shutdown().await;
    });
    // The shim's frames are read by a task of their own and handed over whole-header-first
    // through a channel, so that waiting for the next one can be interrupted by a detach
    // without losing a partly read frame.
    let (ftx, mut frames_rx) = tokio::sync::mpsc::channel::<Piece>(8);
    let reader = tokio::spawn(async move {
        let mut hdr = [0u8; 8];
        while sr.read_exact(&mut hdr).await.is_ok() {
            let mut len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            if ftx.send(Piece::Head(hdr)).await.is_err() {
                return;
            }
            while len > 0 {
                let mut buf = vec![0u8; len.min(32 * 1024)];
                if sr.read_exact(&mut buf).await.is_err() {
                    return;
                }
                len -= buf.len();
                if ftx.send(Piece::Data(buf)).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut on_exit = on_exit;
    let mut exit_frame: Option<Vec<u8>> = None;
    let mut signal_done = false;
    let mut writing = true;
    loop {
        tokio::select! {
            piece = frames_rx.recv() => match piece {
                None => break,
                Some(Piece::Head(hdr)) => {
                    if hdr[0] == frames::EXIT {
                        exit_frame = Some(Vec::new());
                    } else if writing && !tty && cw.write_all(&hdr).await.is_err() {
                        writing = false;
                    }
                }
                Some(Piece::Data(data)) => {
                    if let Some(code) = exit_frame.as_mut() {
                        code.extend_from_slice(&data);
                        // An exec's exit code: recorded before the client sees the end of
                        // the stream, so that its next inspect has it.
                        if let Some(f) = on_exit.take() {
                            f(String::from_utf8_lossy(code).trim().parse().unwrap_or(-1));
                        }
                    } else if writing
                        && (cw.write_all(&data).await.is_err() || cw.flush().await.is_err())
                    {
                        writing = false;
                    }
                }
            },
            r = &mut detached, if !signal_done => {
                signal_done = true;
                if r.is_ok() {
                    // A detach ends the connection; the container goes on. An exec's
                    // stream is still read for its exit code.
                    writing = false;
                    let _ = cw.shutdown().await;
                    if on_exit.is_none() {
                        break;
                    }
                }
            }
        }
        if !writing && on_exit.is_none() {
            break;
        }
    }
    let _ = cw.shutdown().await;
    input.abort();
    reader.abort();
}

/// What the frame reader hands over: a frame's header, then its payload in pieces.
enum Piece {
    Head([u8; 8]),
    Data(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times() {
        assert_eq!(
            parse_unix(&Some("12.5".into())).unwrap(),
            Some(12_500_000_000)
        );
        assert_eq!(parse_unix(&Some("3".into())).unwrap(), Some(3_000_000_000));
        assert!(parse_unix(&Some("x".into())).is_err());
    }
}
