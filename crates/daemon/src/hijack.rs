//! Hijacked connections (attach, exec start) begin their stream only once the client has read
//! the `101 Switching Protocols` head.
//!
//! Clients such as docker-py read the head through a buffered reader (Python's http.client)
//! and then read the stream from the raw socket: any stream bytes that arrived together with
//! the head sit in that buffer and are lost. dockerd is slow enough to start a process that it
//! rarely shows; berth is not (docker-py's `exec_run` of `echo x` returned `b""`). On a unix
//! socket the kernel reports how much of what berthd wrote the peer has not read yet
//! (`SIOCOUTQ`), so berthd waits until that is zero, at most a second. Over TCP (TLS)
//! `SIOCOUTQ` counts unacknowledged bytes, not unread ones, so there is no wait there.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

/// A duplicate of the connection's socket, where waiting on it means something.
#[derive(Debug, Clone)]
pub struct ConnSocket(Option<Arc<OwnedFd>>);

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for ConnSocket {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        ConnSocket(stream.io().as_fd().try_clone_to_owned().ok().map(Arc::new))
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ConnSocket {
    fn connect_info(_: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ConnSocket(None)
    }
}

/// The connection's socket from a request's extensions.
pub fn socket_of(req: &axum::extract::Request) -> Option<Arc<OwnedFd>> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<ConnSocket>>()
        .and_then(|c| c.0 .0.clone())
}

/// Waits until the peer has read everything written on `sock` (at most a second).
pub async fn until_read(sock: Option<Arc<OwnedFd>>) {
    let Some(fd) = sock else { return };
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) on a socket we hold a descriptor of writes one int.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if r != 0 || queued == 0 || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
