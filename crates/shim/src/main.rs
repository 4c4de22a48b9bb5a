//! `berth-shim SHIM_JSON`: supervises one container (see the library's docs for the protocol).
//!
//! The process forks once: the parent exits at once, and the child (in its own session, so
//! that neither berthd's exit nor a signal to berthd's process group reaches it) mounts the
//! root file system, creates the container through the runtime library, listens on its socket
//! and then writes `ok <pid>` or `error: <why>` to the stdout it inherited, which berthd reads.
//!
//! One thread, one poll(2) loop, no async runtime: the shim must stay small (under 2 MiB
//! resident while idle). It is a child subreaper, so it reaps the container's init even when
//! the runtime had to fork twice to create it.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

mod input;

use berth_runtime::container::{CreateOptions, Created, StartMode};
use berth_runtime::Container;
use berth_shim::logfile::Writer;
use berth_shim::{frame_header, Reply, Request, ShimConfig, ShimState, Status, STDERR, STDOUT};
use input::Input;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// An attached or subscribed client may lag this far behind before it is dropped.
const MAX_CLIENT_BACKLOG: usize = 8 << 20;
/// Reads of 32 KiB per output stream per poll round (512 KiB).
const OUTPUT_BURST: usize = 16;
/// How long a finished shim waits for its clients to take the last bytes.
const LINGER: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--init`: bind-mounted as /sbin/docker-init, run as `docker-init -- PROGRAM ARGS`.
    if args.get(1).map(String::as_str) == Some("--") {
        std::process::exit(init(&args[2..]));
    }
    if args.len() != 2 {
        eprintln!("usage: berth-shim SHIM_JSON");
        std::process::exit(2);
    }
    // Anything that enters a container first runs from a protected copy (CVE-2019-5736).
    if let Err(e) = berth_runtime::selfexe::ensure_cloned() {
        println!("error: protect the shim binary: {e}");
        std::process::exit(1);
    }
    let cfg: ShimConfig = match std::fs::read(&args[1])
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            println!("error: read {}: {e}", args[1]);
            std::process::exit(1);
        }
    };
    // SAFETY: the process has one thread here; the child only continues with plain code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            println!("error: fork: {e}");
            std::process::exit(1);
        }
    }
    let _ = nix::unistd::setsid();
    let ready = match redirect_stdio(&cfg) {
        Ok(r) => r,
        Err(e) => {
            println!("error: set up stdio: {e}");
            std::process::exit(1);
        }
    };
    let mut ready = std::fs::File::from(ready);
    match Shim::new(cfg) {
        Ok(mut shim) => {
            let _ = writeln!(ready, "ok {}", std::process::id());
            drop(ready);
            shim.run();
            std::process::exit(0);
        }
        Err(e) => {
            let _ = writeln!(ready, "error: {e}");
            std::process::exit(1);
        }
    }
}

/// A minimal init for `--init`: runs the program, forwards every signal to it, reaps
/// every orphan, and exits as the program did.
fn init(argv: &[String]) -> i32 {
    if argv.is_empty() {
        eprintln!("docker-init: no program given");
        return 2;
    }
    let all = SigSet::all();
    let _ = all.thread_block();
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: the closure only calls sigprocmask, which is async-signal-safe: the program
    // starts with no signal blocked, whatever this init blocks.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let empty = SigSet::empty();
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&empty),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c.id() as i32,
        Err(e) => {
            eprintln!("docker-init: exec {}: {e}", argv[0]);
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p.as_raw() == child => return c,
                Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == child => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(Pid::from_raw(child), sig);
            }
        }
    }
}

/// Keeps the readiness pipe (stdout) aside and points stdio at /dev/null and the shim's log.
fn redirect_stdio(cfg: &ShimConfig) -> std::io::Result<OwnedFd> {
    let ready = std::io::stdout().as_fd().try_clone_to_owned()?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let log_path = cfg.state_file.with_file_name("shim.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    dup2(null.as_raw_fd(), 0)?;
    dup2(null.as_raw_fd(), 1)?;
    dup2(log.as_raw_fd(), 2)?;
    Ok(ready)
}

fn dup2(from: RawFd, to: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 on descriptors this process owns; `to` is one of 0..=2, which std does not
    // hold as an owned object anywhere.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn log(msg: &str) {
    eprintln!("{} {msg}", berth_shim::rfc3339(SystemTime::now()));
}

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
            self.dead = true;
        }
    }
}

#[derive(Debug)]
struct Shim {
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
    mounted: Vec<PathBuf>,
    finished: Option<Instant>,
    /// The state changed since the state file was last written.
    dirty: bool,
}

impl Shim {
    fn new(cfg: ShimConfig) -> Result<Shim, String> {
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
            finished: None,
            dirty: false,
        };
        let res = shim.mount_rootfs().and_then(|_| shim.create());
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

    fn mount_rootfs(&mut self) -> Result<(), String> {
        for m in self.cfg.rootfs_mounts.clone() {
            m.mount().map_err(|e| {
                format!("mount the root file system on {}: {e}", m.target.display())
            })?;
            self.mounted.push(m.target);
        }
        Ok(())
    }

    fn unmount_rootfs(&mut self) {
        while let Some(t) = self.mounted.pop() {
            if let Err(e) = berth_shim::MountSpec::unmount(&t) {
                log(&format!("unmount {}: {e}", t.display()));
            }
        }
    }

    /// Creates the container with fresh stdio; its process waits for [`Shim::start`].
    fn create(&mut self) -> Result<(), String> {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| e.to_string())?;
        let mut console = None;
        let (child_in, child_out, child_err): (OwnedFd, OwnedFd, OwnedFd);
        self.outputs.retain(|o| o.2 != 0);
        self.input = None;
        self.pty = None;
        if self.cfg.tty {
            // Beside the control socket, in the exec root: a unix socket path must stay
            // under 108 bytes.
            let path = self.cfg.socket.with_extension("tty");
            let _ = std::fs::remove_file(&path);
            console = Some((
                UnixListener::bind(&path).map_err(|e| format!("console socket: {e}"))?,
                path,
            ));
            child_in = null.try_clone().map_err(|e| e.to_string())?.into();
            child_out = null.try_clone().map_err(|e| e.to_string())?.into();
            child_err = null.try_clone().map_err(|e| e.to_string())?.into();
        } else {
            child_in = if self.cfg.open_stdin {
                let (r, w) = pipe()?;
                self.input = Some(Input::new(w));
                r
            } else {
                null.try_clone().map_err(|e| e.to_string())?.into()
            };
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            set_nonblocking(or.as_raw_fd());
            set_nonblocking(er.as_raw_fd());
            self.outputs.push((STDOUT, or, 0));
            self.outputs.push((STDERR, er, 0));
            child_out = ow;
            child_err = ew;
        }
        // The runtime hands this process's 0, 1 and 2 to the container.
        let saved_err = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        dup2(child_in.as_raw_fd(), 0).map_err(|e| e.to_string())?;
        dup2(child_out.as_raw_fd(), 1).map_err(|e| e.to_string())?;
        dup2(child_err.as_raw_fd(), 2).map_err(|e| e.to_string())?;
        let res = berth_runtime::container::create(&CreateOptions {
            id: self.cfg.id.clone(),
            bundle: self.cfg.bundle.clone(),
            root: self.cfg.runtime_root.clone(),
            console_socket: console.as_ref().map(|(_, p)| p.clone()),
            pid_file: None,
            no_pivot: false,
            preserve_fds: 0,
            mode: StartMode::Direct,
            cgroup_layout: self.cfg.cgroup_layout,
        });
        let _ = dup2(null.as_raw_fd(), 0);
        let _ = dup2(null.as_raw_fd(), 1);
        let _ = dup2(saved_err.as_raw_fd(), 2);
        drop((child_in, child_out, child_err));
        let created = res.map_err(|e| e.to_string())?;
        if let Some((l, path)) = console {
            let master = recv_master(&l).map_err(|e| format!("receive the terminal: {e}"));
            let _ = std::fs::remove_file(&path);
            let master = master?;
            set_nonblocking(master.as_raw_fd());
            self.outputs
                .push((STDOUT, master.try_clone().map_err(|e| e.to_string())?, 0));
            self.input = Some(Input::new(master.try_clone().map_err(|e| e.to_string())?));
            self.pty = Some(master);
        }
        self.state.pid = created.container().state.pid;
        self.created = Some(created);
        Ok(())
    }

    /// Runs the created process.
    fn start(&mut self) -> Result<(), String> {
        let Some(created) = self.created.take() else {
            return Err("container already started".into());
        };
        let running = created.start().map_err(|e| e.to_string())?;
        let c = running.into_container();
        self.state.pid = c.state.pid;
        self.container = Some(c);
        self.state.status = Status::Running;
        self.state.started_at = berth_shim::rfc3339(SystemTime::now());
        self.state.error.clear();
        self.started = Instant::now();
        self.save();
        Ok(())
    }

    /// Tells subscribers of a state change; the state file is written by [`Shim::persist`]
    /// once the current event has been handled, so a reply (a start's, say) is never held
    /// back behind the file's fsyncs.
    fn save(&mut self) {
        let mut line = serde_json::to_vec(&self.state).expect("state serialises");
        line.push(b'\n');
        for c in &mut self.clients {
            if c.kind == Kind::Subscriber {
                c.queue(&line);
            }
        }
        self.dirty = true;
    }

    /// Writes the state file, crash-safely, if the state changed.
    fn persist(&mut self) {
        if std::mem::take(&mut self.dirty) {
            if let Err(e) = self.state.save(&self.cfg.state_file) {
                log(&e.to_string());
            }
        }
    }

    fn run(&mut self) {
        loop {
            self.persist();
            let now = Instant::now();
            if let Some(f) = self.finished {
                let flushed = self.clients.iter().all(|c| c.out.is_empty());
                if flushed || now >= f + LINGER {
                    break;
                }
            }
            if self.kill_at.is_some_and(|t| now >= t) {
                self.kill_at = None;
                if let Some(c) = &self.container {
                    let _ = c.kill(Signal::SIGKILL, true);
                }
            }
            if self.restart_at.is_some_and(|t| now >= t) {
                self.restart_at = None;
                self.restart();
            }
            let deadline = [
                self.kill_at,
                self.restart_at,
                self.finished.map(|f| f + LINGER),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = deadline
                .map(|d| d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1)
                .unwrap_or(-1);
            self.poll_once(timeout);
        }
        self.persist();
        for c in &mut self.clients {
            c.flush();
        }
        let _ = std::fs::remove_file(&self.cfg.socket);
    }

    fn poll_once(&mut self, timeout: i32) {
        // Slots: 0 listener, 1 signalfd, 2 the container's input, then outputs, then
        // clients, then the execs' inputs.
        let writable = |i: Option<&Input>| match i.and_then(Input::poll_fd) {
            Some(fd) => pollfd(fd, libc::POLLOUT),
            None => pollfd(-1, 0),
        };
        let mut fds = vec![
            pollfd(self.listener.as_raw_fd(), libc::POLLIN),
            pollfd(self.sigfd.as_fd().as_raw_fd(), libc::POLLIN),
            writable(self.input.as_ref()),
        ];
        for (_, fd, _) in &self.outputs {
            fds.push(pollfd(fd.as_raw_fd(), libc::POLLIN));
        }
        for c in &self.clients {
            let mut ev = 0;
            if !(c.eof || self.input_full(&c.kind)) {
                ev |= libc::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(pollfd(c.stream.as_raw_fd(), ev));
        }
        let first_exec = fds.len();
        for e in &self.execs {
            fds.push(writable(e.input.as_ref()));
        }
        // SAFETY: `fds` is a valid, initialised array of pollfd of the length passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            return;
        }
        let ready = |i: usize| fds[i].revents != 0;
        if ready(2) {
            if let Some(i) = &mut self.input {
                i.pump();
            }
        }
        for (k, fd) in fds.iter().enumerate().skip(first_exec) {
            if fd.revents != 0 {
                if let Some(i) = &mut self.execs[k - first_exec].input {
                    i.pump();
                }
            }
        }
        // The slots were laid out for these outputs; reaping (which replaces them) comes last.
        let nout = first_exec - 3 - self.clients.len();
        let mut closed = Vec::new();
        for i in 0..nout {
            if ready(3 + i) && !self.read_output(i) {
                closed.push(i);
            }
        }
        for (k, fd) in fds.iter().enumerate().take(first_exec).skip(3 + nout) {
            if fd.revents & libc::POLLOUT != 0 {
                self.clients[k - 3 - nout].flush();
            }
            if fd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_client(k - 3 - nout);
            }
        }
        for i in closed.into_iter().rev() {
            self.outputs.remove(i);
        }
        if ready(0) {
            while let Ok((s, _)) = self.listener.accept() {
                let _ = s.set_nonblocking(true);
                self.clients.push(Client {
                    stream: s,
                    kind: Kind::Pending,
                    inbuf: Vec::new(),
                    out: VecDeque::new(),
                    eof: false,
                    dead: false,
                });
            }
        }
        if ready(1) {
            while let Ok(Some(_)) = self.sigfd.read_signal() {}
            self.reap();
        }
        // Last: reaping may have finished clients (an exec's stream).
        self.clients.retain(|c| !c.dead);
    }

    /// Reads what output stream `i` has, up to [`OUTPUT_BURST`] reads, so that a container
    /// printing without end cannot starve the control socket (poll reports the rest on the
    /// next round); false once it is closed.
    fn read_output(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        for _ in 0..OUTPUT_BURST {
            let (stream, fd, owner) = &self.outputs[i];
            let (stream, owner) = (*stream, *owner);
            // SAFETY: reading into a stack buffer of the given length from a descriptor we own.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => true,
                    std::io::ErrorKind::Interrupted => continue,
                    // EIO: the pty's last slave is closed.
                    _ => false,
                };
            }
            if n == 0 {
                return false;
            }
            let data = &buf[..n as usize];
            let hdr = frame_header(stream, data.len());
            if owner != 0 {
                for c in &mut self.clients {
                    if c.kind == (Kind::Exec { key: owner }) {
                        c.queue(&hdr);
                        c.queue(data);
                    }
                }
                continue;
            }
            if let Err(e) = self.log.write(stream, data) {
                log(&format!("write log: {e}"));
            }
            for c in &mut self.clients {
                if let Kind::Attach { stdout, stderr, .. } = c.kind {
                    if (stream == STDOUT && stdout) || (stream == STDERR && stderr) {
                        c.queue(&hdr);
                        c.queue(data);
                    }
                }
            }
        }
        true
    }

    /// The input that a client of this kind feeds is at its limit.
    fn input_full(&self, kind: &Kind) -> bool {
        match kind {
            Kind::Attach { .. } => self.input.as_ref().is_some_and(Input::full),
            Kind::Exec { key } => self
                .execs
                .iter()
                .find(|e| e.key == *key)
                .and_then(|e| e.input.as_ref())
                .is_some_and(Input::full),
            _ => false,
        }
    }

    /// The input that a client of this kind feeds, if it feeds one.
    fn input_of(&mut self, kind: &Kind) -> Option<&mut Input> {
        match kind {
            Kind::Attach { stdin: true, .. } => self.input.as_mut(),
            Kind::Exec { key } => self
                .execs
                .iter_mut()
                .find(|e| e.key == *key)
                .and_then(|e| e.input.as_mut()),
            _ => None,
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let c = &mut self.clients[i];
            if c.eof || c.dead {
                return;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.eof = true;
                    let kind = std::mem::replace(&mut c.kind, Kind::Pending);
                    if kind == Kind::Pending || kind == Kind::Subscriber {
                        c.dead = true;
                    }
                    // The writer is done: its input is closed once everything it sent has
                    // been written (a container's stdin only with StdinOnce, and never its
                    // terminal).
                    let closes = match kind {
                        Kind::Exec { .. } => true,
                        Kind::Attach { stdin: true, .. } => {
                            self.cfg.stdin_once && self.pty.is_none()
                        }
                        _ => false,
                    };
                    if closes {
                        if let Some(input) = self.input_of(&kind) {
                            input.close();
                        }
                    }
                    self.clients[i].kind = kind;
                    return;
                }
                Ok(n) => {
                    if c.kind == Kind::Pending {
                        c.inbuf.extend_from_slice(&buf[..n]);
                        if let Some(nl) = c.inbuf.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
                            let rest = std::mem::take(&mut c.inbuf);
                            self.handle(i, &line);
                            // Input sent right behind the request line.
                            let kind = std::mem::replace(&mut self.clients[i].kind, Kind::Pending);
                            if let Some(input) = self.input_of(&kind) {
                                input.push(&rest);
                            }
                            self.clients[i].kind = kind;
                        } else if c.inbuf.len() > 64 * 1024 {
                            c.dead = true;
                            return;
                        }
                        continue;
                    }
                    let kind = std::mem::replace(&mut c.kind, Kind::Pending);
                    let full = match self.input_of(&kind) {
                        Some(input) => {
                            input.push(&buf[..n]);
                            input.full()
                        }
                        None => false,
                    };
                    self.clients[i].kind = kind;
                    if full {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    fn handle(&mut self, i: usize, line: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.reply(i, Err(format!("bad request: {e}")), Kind::Closing);
                return;
            }
        };
        let res = match req {
            Request::State => {
                let st = self.state.clone();
                self.reply_state(i, st, Kind::Closing);
                return;
            }
            Request::Subscribe => {
                let st = self.state.clone();
                self.reply_state(i, st, Kind::Subscriber);
                return;
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.reply(
                    i,
                    Ok(()),
                    Kind::Attach {
                        stdin,
                        stdout,
                        stderr,
                    },
                );
                return;
            }
            Request::Exec {
                key,
                process,
                tty,
                stdin,
            } => {
                match self.exec(key, process, tty, stdin) {
                    Ok(()) => self.reply(i, Ok(()), Kind::Exec { key }),
                    Err(e) => self.reply(i, Err(e), Kind::Closing),
                }
                return;
            }
            Request::ExecResize { key, height, width } => {
                match self
                    .execs
                    .iter()
                    .find(|e| e.key == key)
                    .and_then(|e| e.pty.as_ref())
                {
                    Some(p) => {
                        berth_runtime::console::set_size(p.as_raw_fd(), height, width);
                        Ok(())
                    }
                    None => Err("the exec process has no terminal".into()),
                }
            }
            Request::Stats => {
                let r = match (&self.container, self.state.status) {
                    (Some(c), Status::Running | Status::Paused) => c
                        .stats()
                        .map(|st| serde_json::json!({"stats": st, "pids": c.pids().unwrap_or_default()}))
                        .map_err(|e| e.to_string()),
                    _ => Err(format!("container {} is not running", self.cfg.id)),
                };
                let line = match r {
                    Ok(data) => Reply {
                        error: String::new(),
                        state: None,
                        data: Some(data),
                    },
                    Err(e) => Reply {
                        error: e,
                        state: None,
                        data: None,
                    },
                };
                let mut bytes = serde_json::to_vec(&line).expect("reply serialises");
                bytes.push(b'\n');
                let c = &mut self.clients[i];
                c.kind = Kind::Closing;
                c.queue(&bytes);
                c.flush();
                return;
            }
            Request::Update { resources, restart } => self.update(resources, restart),
            Request::Start => {
                let r = self.start();
                let ok = r.is_ok();
                self.reply(i, r, Kind::Closing);
                // After the answer, so the start is not kept waiting.
                if ok {
                    trim_memory();
                }
                return;
            }
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Stop { signal, timeout } => self.stop(signal, timeout),
            Request::Pause => self.pause(true),
            Request::Resume => self.pause(false),
            Request::Resize { height, width } => match &self.pty {
                Some(p) => {
                    berth_runtime::console::set_size(p.as_raw_fd(), height, width);
                    Ok(())
                }
                None => Err("the container has no terminal".into()),
            },
        };
        self.reply(i, res, Kind::Closing);
    }

    fn reply(&mut self, i: usize, res: Result<(), String>, kind: Kind) {
        let r = Reply {
            error: res.err().unwrap_or_default(),
            state: None,
            data: None,
        };
        let mut line = serde_json::to_vec(&r).expect("reply serialises");
        line.push(b'\n');
        let c = &mut self.clients[i];
        c.kind = kind;
        c.queue(&line);
        c.flush();
    }

    fn reply_state(&mut self, i: usize, st: ShimState, kind: Kind) {
        let mut line = serde_json::to_vec(&Reply {
            error: String::new(),
            state: Some(st),
            data: None,
        })
        .expect("reply serialises");
        line.push(b'\n');
        let c = &mut self.clients[i];
        c.kind = kind;
        c.queue(&line);
        c.flush();
    }

    fn signal(sig: i32) -> Result<Signal, String> {
        Signal::try_from(sig).map_err(|_| format!("invalid signal: {sig}"))
    }

    fn kill(&mut self, sig: i32, all: bool) -> Result<(), String> {
        let sig = Self::signal(sig)?;
        match (&self.container, self.state.status) {
            (Some(c), Status::Running | Status::Paused) => {
                c.kill(sig, all).map_err(|e| e.to_string())
            }
            _ => Err(format!("container {} is not running", self.cfg.id)),
        }
    }

    fn stop(&mut self, sig: i32, timeout: i64) -> Result<(), String> {
        let sig = Self::signal(sig)?;
        self.state.manual_stop = true;
        match self.state.status {
            Status::Restarting => {
                self.restart_at = None;
                self.finish();
                Ok(())
            }
            Status::Running | Status::Paused => {
                self.save();
                if let Some(c) = &self.container {
                    let _ = c.kill(sig, false);
                    if self.state.status == Status::Paused {
                        let _ = c.resume();
                    }
                }
                if timeout >= 0 {
                    self.kill_at = Some(Instant::now() + Duration::from_secs(timeout as u64));
                }
                Ok(())
            }
            Status::Created => {
                // Never started: kill the waiting init.
                if let Some(c) = self.created.take() {
                    let _ = c.container().delete(true);
                }
                self.state.status = Status::Exited;
                self.finish();
                Ok(())
            }
            Status::Exited => Ok(()),
        }
    }

    fn update(
        &mut self,
        resources: serde_json::Value,
        restart: Option<berth_shim::RestartPolicy>,
    ) -> Result<(), String> {
        let r: oci_spec::runtime::LinuxResources =
            serde_json::from_value(resources).map_err(|e| format!("resources: {e}"))?;
        if let Some(c) = &self.container {
            c.cgroup()
                .and_then(|cg| cg.apply(&r))
                .map_err(|e| e.to_string())?;
        }
        if let Some(p) = restart {
            self.cfg.restart = p;
        }
        Ok(())
    }

    fn pause(&mut self, on: bool) -> Result<(), String> {
        let c = self
            .container
            .as_ref()
            .ok_or_else(|| format!("container {} is not running", self.cfg.id))?;
        match (on, self.state.status) {
            (true, Status::Running) => {
                c.pause().map_err(|e| e.to_string())?;
                self.state.status = Status::Paused;
            }
            (false, Status::Paused) => {
                c.resume().map_err(|e| e.to_string())?;
                self.state.status = Status::Running;
            }
            (true, Status::Paused) => {
                return Err(format!("container {} is already paused", self.cfg.id))
            }
            (false, _) => return Err(format!("container {} is not paused", self.cfg.id)),
            _ => return Err(format!("container {} is not running", self.cfg.id)),
        }
        self.save();
        Ok(())
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.state.pid => {
                    self.exited(code)
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.state.pid => {
                    self.exited(128 + sig as i32)
                }
                Ok(WaitStatus::Exited(pid, code)) => self.exec_exited(pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.exec_exited(pid.as_raw(), 128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// An exec process exited: its last output, then a frame with its exit code (stream
    /// [`berth_shim::EXIT`]), then the end of its client's stream.
    fn exec_exited(&mut self, pid: i32, code: i32) {
        let Some(pos) = self.execs.iter().position(|e| e.pid == pid) else {
            return;
        };
        let ex = self.execs.remove(pos);
        for i in (0..self.outputs.len()).rev() {
            if self.outputs[i].2 == ex.key {
                self.read_output(i);
            }
        }
        self.outputs.retain(|o| o.2 != ex.key);
        let text = code.to_string();
        let hdr = frame_header(berth_shim::EXIT, text.len());
        for c in &mut self.clients {
            if c.kind == (Kind::Exec { key: ex.key }) {
                c.queue(&hdr);
                c.queue(text.as_bytes());
                c.kind = Kind::Closing;
                c.flush();
            }
        }
    }

    /// Starts an exec process with its own stdio; the client's connection becomes its stream.
    fn exec(
        &mut self,
        key: u64,
        process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<(), String> {
        let c = match (&self.container, self.state.status) {
            (Some(c), Status::Running) => c,
            _ => return Err(format!("container {} is not running", self.cfg.id)),
        };
        let process: oci_spec::runtime::Process =
            serde_json::from_value(process).map_err(|e| format!("exec process: {e}"))?;
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| e.to_string())?;
        let mut outs = Vec::new();
        let mut child_fds: Vec<OwnedFd> = Vec::new();
        let mut input = None;
        let mut console = None;
        if tty {
            let path = self.cfg.socket.with_extension(format!("e{key}"));
            let _ = std::fs::remove_file(&path);
            console = Some((
                UnixListener::bind(&path).map_err(|e| format!("console socket: {e}"))?,
                path,
            ));
            for _ in 0..3 {
                child_fds.push(null.try_clone().map_err(|e| e.to_string())?.into());
            }
        } else {
            if stdin {
                let (r, w) = pipe()?;
                input = Some(Input::new(w));
                child_fds.push(r);
            } else {
                child_fds.push(null.try_clone().map_err(|e| e.to_string())?.into());
            }
            for stream in [STDOUT, STDERR] {
                let (r, w) = pipe()?;
                set_nonblocking(r.as_raw_fd());
                outs.push((stream, r, key));
                child_fds.push(w);
            }
        }
        let saved_err = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        for (n, fd) in child_fds.iter().enumerate() {
            dup2(fd.as_raw_fd(), n as RawFd).map_err(|e| e.to_string())?;
        }
        let res = c.exec(&berth_runtime::ExecOptions {
            process,
            console_socket: console.as_ref().map(|(_, p)| p.clone()),
            pid_file: None,
            detach: true,
            preserve_fds: 0,
        });
        let _ = dup2(null.as_raw_fd(), 0);
        let _ = dup2(null.as_raw_fd(), 1);
        let _ = dup2(saved_err.as_raw_fd(), 2);
        drop(child_fds);
        let pid = match res {
            Ok(p) => p,
            Err(e) => {
                if let Some((_, p)) = &console {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e.to_string());
            }
        };
        let mut pty = None;
        if let Some((l, path)) = console {
            let master = recv_master(&l).map_err(|e| format!("receive the terminal: {e}"));
            let _ = std::fs::remove_file(&path);
            let master = master?;
            set_nonblocking(master.as_raw_fd());
            outs.push((STDOUT, master.try_clone().map_err(|e| e.to_string())?, key));
            input = Some(Input::new(master.try_clone().map_err(|e| e.to_string())?));
            pty = Some(master);
        }
        self.outputs.extend(outs);
        self.execs.push(ExecProc {
            key,
            pid,
            input,
            pty,
        });
        Ok(())
    }

    /// Init exited: take the rest of its output, clean up, restart or finish.
    fn exited(&mut self, code: i32) {
        for i in (0..self.outputs.len()).rev() {
            if self.outputs[i].2 == 0 {
                self.read_output(i);
            }
        }
        self.outputs.retain(|o| o.2 != 0);
        let _ = self.log.flush_partial();
        self.input = None;
        self.pty = None;
        self.kill_at = None;
        self.state.oom_killed = code == 137 && self.oom_killed();
        if let Some(c) = self.container.take() {
            if let Err(e) = c.delete(true) {
                log(&format!("delete container: {e}"));
            }
        }
        self.state.exit_code = code;
        self.state.pid = 0;
        self.state.exits += 1;
        self.state.finished_at = berth_shim::rfc3339(SystemTime::now());
        let restart =
            self.cfg
                .restart
                .should_restart(code, self.state.restart_count, self.state.manual_stop);
        if restart {
            // Docker's back-off: 100 ms, doubled on each restart, at most a minute, back to
            // 100 ms once a run lasted 10 s.
            if self.started.elapsed() >= Duration::from_secs(10) {
                self.backoff = Duration::from_millis(100);
            }
            self.restart_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
            self.state.status = Status::Restarting;
            self.save();
        } else {
            self.finish();
        }
    }

    /// Whether the memory cgroup recorded an OOM kill (cgroup v1 `memory.oom_control`).
    fn oom_killed(&self) -> bool {
        let Some(c) = &self.container else {
            return false;
        };
        let rel = c
            .state
            .cgroup_path
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string();
        let v1 = Path::new("/sys/fs/cgroup/memory")
            .join(&rel)
            .join("memory.oom_control");
        let v2 = Path::new("/sys/fs/cgroup").join(&rel).join("memory.events");
        for (p, key) in [(v1, "oom_kill "), (v2, "oom_kill ")] {
            if let Ok(s) = std::fs::read_to_string(p) {
                if let Some(n) = s.lines().find_map(|l| l.strip_prefix(key)) {
                    return n.trim().parse::<u64>().unwrap_or(0) > 0;
                }
            }
        }
        false
    }

    fn restart(&mut self) {
        self.state.restart_count += 1;
        let res = self.create().and_then(|_| self.start());
        if res.is_ok() {
            trim_memory();
        }
        if let Err(e) = res {
            log(&format!("restart: {e}"));
            self.state.error = e;
            self.state.exit_code = 128;
            self.finish();
        }
    }

    /// The container is done for good: undo the root file system, close streams, linger.
    fn finish(&mut self) {
        self.unmount_rootfs();
        self.state.status = Status::Exited;
        self.state.pid = 0;
        if self.state.finished_at.is_empty() {
            self.state.finished_at = berth_shim::rfc3339(SystemTime::now());
        }
        self.save();
        for c in &mut self.clients {
            if c.kind != Kind::Pending {
                c.kind = Kind::Closing;
                c.flush();
            }
        }
        self.finished = Some(Instant::now());
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
