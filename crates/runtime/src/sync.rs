//! The message channel between the runtime and its children (stage 1 and init).
//!
//! A `SOCK_SEQPACKET` socket pair keeps message boundaries, so each message is one packet of
//! JSON. End of file means the peer died; the reader turns it into an error instead of hanging.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Messages exchanged during create and exec.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Parent → stage 1: the cgroup and oom score are set, go on.
    Go,
    /// Stage 1 → parent: I unshared the user namespace, write my id maps.
    NeedIdMaps,
    /// Parent → stage 1: the id maps are written.
    IdMapsDone,
    /// Parent → init: the state JSON for hooks that init runs itself.
    State(String),
    /// Stage 1 → parent: the pid (in the parent's pid namespace) of the process it cloned.
    Pid(i32),
    /// Init → parent: namespaces and mounts exist, run the createRuntime (and prestart) hooks.
    RunRuntimeHooks,
    /// Parent → init: the hooks ran.
    HooksDone,
    /// Init → parent: ready, waiting for start.
    Ready,
    /// Parent → init: start the user process now.
    Start,
    /// Child → parent: a step failed, and the OS error behind it if there was one (so that
    /// a caller can tell a missing program from a refused one without reading the message).
    Error { message: String, errno: Option<i32> },
}

impl Msg {
    /// The message reporting `e`.
    pub fn failure(e: &Error) -> Msg {
        Msg::Error {
            message: e.to_string(),
            errno: e.errno(),
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair; both ends are close-on-exec.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "socketpair".to_string())?;
        Ok((Channel(a), Channel(b)))
    }

    /// Sends one message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg).expect("message serialises");
        nix::sys::socket::send(
            self.0.as_raw_fd(),
            &data,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        )
        .map(|_| ())
        .map_err(|e| Error::Sync(format!("send {msg:?}: {e}")))
    }

    /// Receives one message; a closed peer is an error.
    pub fn recv(&self) -> Result<Msg> {
        let mut buf = vec![0u8; 65536];
        loop {
            match nix::sys::socket::recv(
                self.0.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Ok(0) => return Err(Error::Sync("the other side exited".into())),
                Ok(n) => {
                    return serde_json::from_slice(&buf[..n])
                        .map_err(|e| Error::Sync(format!("bad message: {e}")))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::Sync(format!("recv: {e}"))),
            }
        }
    }

    /// Receives and expects a given message; a child's `Error` becomes [`Error::Child`].
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            m if m == want => Ok(()),
            Msg::Error { message, errno } => Err(Error::Child { message, errno }),
            other => Err(Error::Sync(format!("expected {want:?}, got {other:?}"))),
        }
    }

    /// Receives a `Pid` message.
    pub fn expect_pid(&self) -> Result<i32> {
        match self.recv()? {
            Msg::Pid(p) => Ok(p),
            Msg::Error { message, errno } => Err(Error::Child { message, errno }),
            other => Err(Error::Sync(format!("expected a pid, got {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&Msg::Pid(42)).unwrap();
        assert_eq!(b.expect_pid().unwrap(), 42);
        a.send(&Msg::failure(&Error::Io {
            context: "exec \"x\"".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        }))
        .unwrap();
        let e = b.expect(Msg::Go).unwrap_err();
        assert_eq!(
            e.errno(),
            Some(libc::ENOENT),
            "the errno crosses the channel"
        );
        assert!(e.to_string().contains("exec \"x\""), "{e}");
        drop(a);
        assert!(matches!(b.recv(), Err(Error::Sync(_))));
    }
}
