//! Talking to a container's shim over its socket: one-shot calls, data replies and byte streams.

use super::*;

/// Reads an exec stream to its end; the exit code from its last frame (-1 if none).
pub(super) async fn drain_exit(s: UnixStream) -> i64 {
    read_exec(s, None, 0).await
}

/// Reads an exec stream to its end, keeping up to `limit` bytes of its output in `out`;
/// the exit code from its last frame (-1 if none).
pub(super) async fn read_exec(
    mut s: UnixStream,
    mut out: Option<&mut Vec<u8>>,
    limit: usize,
) -> i64 {
    use tokio::io::AsyncReadExt;
    let mut code = -1;
    let mut hdr = [0u8; 8];
    while s.read_exact(&mut hdr).await.is_ok() {
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        let mut data = vec![0u8; len];
        if s.read_exact(&mut data).await.is_err() {
            break;
        }
        if hdr[0] == berth_shim::EXIT {
            code = String::from_utf8_lossy(&data).trim().parse().unwrap_or(-1);
        } else if let Some(o) = out.as_mut().filter(|o| o.len() < limit) {
            o.extend_from_slice(&data);
        }
    }
    code
}

/// One request, one reply with data.
pub(super) async fn shim_data(
    sock: &Path,
    req: &Request,
) -> Result<serde_json::Value, EngineError> {
    let fut = async {
        let mut s = UnixStream::connect(sock).await?;
        let mut line = serde_json::to_vec(req).expect("request");
        line.push(b'\n');
        s.write_all(&line).await?;
        let mut r = String::new();
        BufReader::new(s).read_line(&mut r).await?;
        serde_json::from_str::<Reply>(&r).map_err(std::io::Error::other)
    };
    let reply = tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .map_err(|_| unavailable("the container's shim did not answer"))?
        .map_err(|e| unavailable(format!("talk to the container's shim: {e}")))?;
    if reply.error.is_empty() {
        Ok(reply.data.unwrap_or_default())
    } else {
        Err(conflict(reply.error).with_errno(reply.errno))
    }
}

/// One request, one reply.
pub(super) async fn shim_call(sock: &Path, req: &Request) -> Result<(), EngineError> {
    shim_data(sock, req).await.map(|_| ())
}

/// A request that turns the connection into a stream.
pub(super) async fn shim_stream(sock: &Path, req: &Request) -> Result<UnixStream, EngineError> {
    let mut s = UnixStream::connect(sock)
        .await
        .map_err(|e| unavailable(format!("connect to the container's shim: {e}")))?;
    let mut line = serde_json::to_vec(req).expect("request");
    line.push(b'\n');
    s.write_all(&line)
        .await
        .map_err(|e| unavailable(format!("talk to the container's shim: {e}")))?;
    // Read the reply line byte by byte so that no stream data is swallowed by a buffer.
    let mut reply = Vec::new();
    loop {
        let mut b = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut b)
            .await
            .map_err(|e| unavailable(format!("talk to the container's shim: {e}")))?;
        if n == 0 || b[0] == b'\n' {
            break;
        }
        reply.push(b[0]);
    }
    let r: Reply =
        serde_json::from_slice(&reply).map_err(|e| unavailable(format!("shim reply: {e}")))?;
    if !r.error.is_empty() {
        return Err(conflict(r.error).with_errno(r.errno));
    }
    Ok(s)
}

/// Waits (at most `limit`) until no shim listens at `sock` any more: a shim tells a
/// container's end before it has unmounted its root and removed its socket, so whatever
/// mounts that root or starts a new shim for the container waits for the old one first.
pub(super) async fn old_shim_gone(sock: &std::path::Path, limit: Duration) {
    if let Ok(conn) = UnixStream::connect(sock).await {
        shim_gone(conn, limit).await;
    }
}

/// Waits (at most `limit`) until the shim at the other end of `conn`, a connection of our own
/// that asked for nothing, has exited: the shim never writes to such a client, so the read
/// ends (EOF) only when the process is gone.
pub(super) async fn shim_gone(mut conn: UnixStream, limit: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    let gone = async { while !matches!(conn.read(&mut buf).await, Ok(0) | Err(_)) {} };
    let _ = tokio::time::timeout(limit, gone).await;
}
