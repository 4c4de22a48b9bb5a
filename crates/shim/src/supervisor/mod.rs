//! The supervisor: one container's process, its output and input, its clients on the control socket, its restarts and its record.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::input::Input;
use crate::{dup2, log};
use berth_runtime::container::{CreateOptions, Created, StartMode};
use berth_runtime::Container;
use berth_shim::logfile::Writer;
use berth_shim::{frame_header, Reply, Request, ShimConfig, ShimState, Status, STDERR, STDOUT};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

mod control;
mod events;
mod lifecycle;

/// A failed request or start: the message, and the OS error behind it (see `Reply::errno`).
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub errno: Option<i32>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            errno: None,
        }
    }
}

impl From<berth_runtime::Error> for Failure {
    fn from(e: berth_runtime::Error) -> Self {
        Failure {
            errno: e.errno(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An attached or subscribed client may lag this far behind before it is dropped.
const MAX_CLIENT_BACKLOG: usize = 8 << 20;
/// Reads of 32 KiB per output stream per poll round (512 KiB).
const OUTPUT_BURST: usize = 16;
/// How long a finished shim waits for its clients to take the last bytes.
const LINGER: Duration = Duration::from_secs(5);

/// What a connected client is.
#[derive(Debug, PartialEq)]
enum Kind {
    /// Its request line has not arrived yet.
    Pending,
    Subscriber,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// The stream of the exec process with this key.
    Exec {
        key: u64,
    },
    /// Answered; close once the reply is written.
    Closing,
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    kind: Kind,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
    /// Reading side finished.
    eof: bool,
    dead: bool,
}

impl Client {
    fn queue(&mut self, data: &[u8]) {
        if self.out.len() + data.len() > MAX_CLIENT_BACKLOG {
            self.dead = true;
            return;
        }
        self.out.extend(data);
    }

    fn flush(&mut self) {
        while !self.out.is_empty() {
            let (a, _) = self.out.as_slices();
            match self.stream.write(a) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.kind == Kind::Closing {
            // The end reaches the client now, not when the poll round closes the descriptor
            // (a round that may still have the container's clean-up to do).
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
            self.dead = true;
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shim {
    cfg: ShimConfig,
    state: ShimState,
    /// Created and waiting for `start`.
    created: Option<Created>,
    /// Started (running, paused or exited-but-not-deleted).
    container: Option<Container>,
    /// Output streams: stdout and stderr pipes, or a pty master (as stdout), each with its
    /// owner: 0 for the container's own process, an exec's key otherwise.
    outputs: Vec<(u8, OwnedFd, u64)>,
    /// Processes started by `exec`.
    execs: Vec<ExecProc>,
    /// The container's input: its stdin pipe, or its terminal.
    input: Option<Input>,
    pty: Option<OwnedFd>,
    log: Writer,
    listener: UnixListener,
    sigfd: SignalFd,
    clients: Vec<Client>,
    kill_at: Option<Instant>,
    restart_at: Option<Instant>,
    backoff: Duration,
    started: Instant,
    /// The root file system's mounts.
    mounted: Vec<PathBuf>,
    /// The exit was told to the clients (subscribers and attached streams got their end).
    told: bool,
    /// The container's init leads a pid namespace of its own (read at its start).
    pid_ns_init: bool,
    finished: Option<Instant>,
    /// The state changed since the state file was last written.
    dirty: bool,
}

impl Shim {
    pub(crate) fn new(cfg: ShimConfig) -> Result<Shim, Failure> {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer and changes only this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGPIPE);
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGHUP);
        mask.thread_block()
            .map_err(|e| format!("block signals: {e}"))?;
        let mut chld = SigSet::empty();
        chld.add(Signal::SIGCHLD);
        let sigfd = SignalFd::with_flags(&chld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("signalfd: {e}"))?;
        let log = Writer::open(cfg.log.clone())
            .map_err(|e| format!("open log {}: {e}", cfg.log.path.display()))?;
        let _ = std::fs::remove_file(&cfg.socket);
        let listener = UnixListener::bind(&cfg.socket)
            .map_err(|e| format!("listen on {}: {e}", cfg.socket.display()))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut shim = Shim {
            state: ShimState {
                status: Status::Created,
                pid: 0,
                shim_pid: std::process::id() as i32,
                exit_code: 0,
                started_at: String::new(),
                finished_at: String::new(),
                restart_count: 0,
                exits: 0,
                oom_killed: false,
                error: String::new(),
                manual_stop: false,
            },
            cfg,
            created: None,
            container: None,
            outputs: Vec::new(),
            execs: Vec::new(),
            input: None,
            pty: None,
            log,
            listener,
            sigfd,
            clients: Vec::new(),
            kill_at: None,
            restart_at: None,
            backoff: Duration::from_millis(100),
            started: Instant::now(),
            mounted: Vec::new(),
            told: false,
            pid_ns_init: false,
            finished: None,
            dirty: false,
        };
        let res = shim
            .mount_rootfs()
            .map_err(Failure::from)
            .and_then(|_| shim.create());
        if let Err(e) = res {
            shim.unmount_rootfs();
            let _ = std::fs::remove_file(&shim.cfg.socket);
            return Err(e);
        }
        if shim.cfg.autostart {
            shim.start()?;
            trim_memory();
        } else {
            shim.save();
        }
        Ok(shim)
    }
}

/// Gives back the memory that only creating the container needed: the heap's free pages, and
/// the pages of this binary's read-only mappings that were never written (they are read back
/// from the file if touched again). An idle shim then holds little more than its poll loop.
fn trim_memory() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut cur: Option<(usize, usize, bool)> = None;
    let mut dirty = 0u64;
    let flush = |m: Option<(usize, usize, bool)>, dirty: u64| {
        if let Some((start, end, file_ro)) = m {
            if file_ro && dirty == 0 {
                // SAFETY: the range is one of this process's read-only file mappings with no
                // dirty page: dropping its pages loses nothing, they fault back from the file.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
                };
            }
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first
            .split_once('-')
            .filter(|(a, _)| a.chars().all(|c| c.is_ascii_hexdigit()))
        {
            flush(cur.take(), dirty);
            dirty = 0;
            let perms = f.next().unwrap_or("");
            let path = line.split_whitespace().nth(5).unwrap_or("");
            let file_ro = !perms.contains('w') && path.starts_with('/');
            if let (Ok(s), Ok(e)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                cur = Some((s, e, file_ro));
            }
        } else if first == "Private_Dirty:" || first == "Shared_Dirty:" {
            dirty += f.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    flush(cur.take(), dirty);
}

/// A process started by `exec`.
#[derive(Debug)]
struct ExecProc {
    key: u64,
    pid: i32,
    /// Its stdin pipe or terminal, when it takes input.
    input: Option<Input>,
    pty: Option<OwnedFd>,
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own change only its status flags.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Accepts the runtime's connection on the console socket and takes the pty master from it.
fn recv_master(l: &UnixListener) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (s, _) = l.accept()?;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other("no descriptor on the console socket"))
}
