//! A process's input: bytes from attached clients queued and written to its stdin pipe or
//! terminal without ever blocking the shim's loop, and the pipe closed only once everything
//! queued has been written.
//!
//! The order matters for `docker run -i` with piped input: the client sends its data and
//! closes its side at once; the container reads at its own pace. Closing the pipe at the
//! client's end of file (rather than once the queue is empty) dropped whatever did not fit
//! into the pipe's 64 KiB buffer.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Input waiting for a process is held up to this much; a client is not read while it is full
/// (back-pressure reaches the client through its socket's buffers).
pub const MAX_BACKLOG: usize = 1 << 20;

/// The write side of a process's stdin (a pipe, or a terminal's master), with what is queued
/// for it.
#[derive(Debug)]
pub struct Input {
    /// None once the process has closed its reading side, or once we closed ours.
    fd: Option<OwnedFd>,
    queue: VecDeque<u8>,
    /// Close the descriptor as soon as the queue is empty.
    closing: bool,
}

impl Input {
    /// Takes the write side; it is made non-blocking.
    pub fn new(fd: OwnedFd) -> Input {
        set_nonblocking(fd.as_raw_fd());
        Input {
            fd: Some(fd),
            queue: VecDeque::new(),
            closing: false,
        }
    }

    /// Queues `data` and writes what the process can take now. Data for a process that no
    /// longer reads is dropped, as a write to a closed pipe would be.
    pub fn push(&mut self, data: &[u8]) {
        if self.fd.is_none() || self.closing {
            return;
        }
        self.queue.extend(data);
        self.pump();
    }

    /// Writes as much of the queue as the descriptor takes without blocking; closes it when
    /// the queue is empty and a close was asked for.
    pub fn pump(&mut self) {
        while let Some(fd) = &self.fd {
            if self.queue.is_empty() {
                break;
            }
            let (chunk, _) = self.queue.as_slices();
            // SAFETY: writing from a live buffer of the given length to a descriptor we own.
            let n = unsafe { libc::write(fd.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) };
            if n > 0 {
                self.queue.drain(..n as usize);
                continue;
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock if n < 0 => return,
                // EPIPE or EIO: nobody reads any more.
                _ => {
                    self.queue.clear();
                    self.fd = None;
                    return;
                }
            }
        }
        if self.closing && self.queue.is_empty() {
            self.fd = None;
        }
    }

    /// The writer is done: close the descriptor once everything queued has been written.
    pub fn close(&mut self) {
        self.closing = true;
        self.pump();
    }

    /// The descriptor to poll for `POLLOUT`, while there is something to write.
    pub fn poll_fd(&self) -> Option<RawFd> {
        match &self.fd {
            Some(fd) if !self.queue.is_empty() => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    /// The queue is at its limit: stop reading the clients that feed it.
    pub fn full(&self) -> bool {
        self.queue.len() >= MAX_BACKLOG
    }

    /// The descriptor is closed (by us, or because the process stopped reading).
    #[cfg(test)]
    fn closed(&self) -> bool {
        self.fd.is_none()
    }

    /// Bytes queued and not yet written.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.len()
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own change only its status flags.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pipe() -> (std::fs::File, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        (std::fs::File::from(r), w)
    }

    /// The bug this module exists for: more than a pipe's buffer queued, then the writer's
    /// end of file. Every byte must still arrive, and the reader must then see end of file.
    #[test]
    fn close_waits_for_the_queue() {
        let (mut r, w) = pipe();
        let mut input = Input::new(w);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        input.push(&data);
        input.close();
        assert!(input.queued() > 0, "a pipe cannot take 3 MB at once");
        assert!(
            !input.closed(),
            "closed with {} bytes queued",
            input.queued()
        );
        let mut got = Vec::new();
        let mut buf = vec![0u8; 100_000];
        loop {
            let n = r.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            input.pump();
        }
        assert!(input.closed());
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes changed in transit");
    }

    #[test]
    fn a_reader_that_goes_away_drops_the_queue() {
        let (r, w) = pipe();
        let mut input = Input::new(w);
        input.push(&vec![7u8; 200_000]);
        assert!(input.poll_fd().is_some());
        drop(r);
        input.pump();
        assert!(input.closed());
        assert!(input.poll_fd().is_none());
        input.push(b"more");
        assert_eq!(input.queued(), 0);
    }

    #[test]
    fn full_at_the_backlog_limit() {
        let (_r, w) = pipe();
        let mut input = Input::new(w);
        input.push(&vec![1u8; MAX_BACKLOG + 70_000]);
        assert!(input.full());
        assert!(!input.closed());
    }
}
