//! The container lifecycle: create, start, state, kill, pause, resume, delete and exec.
//!
//! Creating a container, step by step (the parent is the runtime process):
//! 1. validate the bundle, make the state directory and the cgroup (limits applied);
//! 2. block all signals, fork **stage 1**; put it in the cgroup, set its oom score, say `Go`;
//! 3. stage 1 unshares the user namespace (the parent writes its id maps), joins namespaces
//!    given by path, unshares the rest, and clones **init** with `CLONE_PARENT`, so init is the
//!    parent's child and enters the new pid namespace as pid 1; stage 1 reports init's pid and
//!    exits;
//! 4. init builds the rootfs (the parent runs createRuntime hooks when asked), pivots into it,
//!    sets up the process and reports `Ready`;
//! 5. `create` saves the state and exits, leaving init blocked on the `exec.fifo`; `start`
//!    writes to the fifo and init execs the user program. `run` does both in one process and
//!    signals init over the channel instead of the fifo.
//!
//! Any error tears down what exists so far: init is killed, the cgroup removed, the state
//! directory deleted. Mounts live in init's mount namespace and vanish with it.
//!
//! Rooms: `create` (the parent's side of `create`), `init` (stage 1 and init, in the
//! children); the verbs on an existing container (start, kill, pause, exec, delete) are here.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxSeccomp, Process, Spec};

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::rootfs::CgroupMount;
use crate::spec::Bundle;
use crate::state::{ContainerState, Status};
use crate::sync::{Channel, Msg};
use crate::sys::{self, Forked};
use crate::{console, hooks, seccomp, seccomp_cache};

mod create;
mod init;

pub use create::create;
use init::{direct_init, finish_process, stage1, First};

/// How `create` hands over to the user process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Leave init waiting on the exec fifo for a later `start` (runc's create).
    Fifo,
    /// The caller starts it through [`Created::start`] (runc's run).
    Direct,
}

/// Options of `create`.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    /// The runtime's state root (`--root`).
    pub root: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    /// Extra descriptors (3..3+n) passed to the container.
    pub preserve_fds: u32,
    pub mode: StartMode,
    /// The cgroup hierarchies to place the container in.
    pub cgroup_layout: crate::cgroups::Layout,
    /// The systemd cgroup driver (`--systemd-cgroup`): the cgroup is a transient scope that
    /// systemd makes, and the cgroups path is `slice:prefix:name`.
    pub systemd_cgroup: bool,
}

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// A container known to the runtime.
#[derive(Debug)]
pub struct Container {
    pub state: ContainerState,
    root: PathBuf,
}

/// A container just created in [`StartMode::Direct`].
#[derive(Debug)]
pub struct Created {
    pub container: Container,
    chan: Channel,
    old_mask: SigSet,
}

/// Extra state saved beside `state.json`: what `exec` needs from the spec.
#[derive(Debug, serde::Serialize, serde::Deserialize, Default)]
struct ExecDefaults {
    seccomp: Option<LinuxSeccomp>,
}

const FIFO: &str = "exec.fifo";

fn state_json(st: &ContainerState, status: Status) -> Vec<u8> {
    serde_json::to_vec(&st.output(status)).expect("state serialises")
}

/// Blocks every signal, returning the previous mask.
fn block_signals() -> Result<SigSet> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .ctx(|| "block signals".to_string())?;
    Ok(old)
}

fn restore_signals(old: &SigSet) {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
}

/// Writes a pid file atomically (no fsync: a pid does not outlive the boot).
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    berth_durable::replace(path, pid.to_string().as_bytes()).map_err(|e| Error::Io {
        context: "write pid file".into(),
        source: std::io::Error::other(e),
    })
}

/// The cgroup path: the spec's, or `/berth/<id>`; with the systemd driver, the `container`
/// cgroup inside the scope the spec's `slice:prefix:name` names, and the scope.
fn cgroup_path(
    spec: &Spec,
    id: &str,
    systemd: bool,
) -> Result<(PathBuf, Option<crate::cgroups::systemd::Scope>)> {
    let given = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    if systemd {
        use crate::cgroups::systemd;
        let given = given.unwrap_or_default();
        let scope = systemd::Scope::parse(&given.to_string_lossy(), id)?;
        let under = scope.cgroup()?;
        let path = systemd::manager_root()?
            .join(under.strip_prefix("/").unwrap_or(&under))
            .join(systemd::LEAF);
        return Ok((path, Some(scope)));
    }
    Ok((cgroupfs_path(given, id)?, None))
}

fn cgroupfs_path(given: Option<PathBuf>, id: &str) -> Result<PathBuf> {
    match given {
        Some(p) if p.to_string_lossy().contains(':') => Err(Error::spec(
            "linux.cgroupsPath",
            format!(
                "{}: a systemd cgroups path (slice:prefix:name) needs the systemd cgroup \
                 driver (--systemd-cgroup)",
                p.display()
            ),
        )),
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        _ => Ok(PathBuf::from("/berth").join(id)),
    }
}

/// Everything init needs, prepared by the parent before forking.
struct InitContext<'a> {
    bundle: &'a Bundle,
    plan: Plan,
    chan: Channel,
    console: Option<OwnedFd>,
    cgroup_mounts: Vec<CgroupMount>,
    /// The exec fifo, opened read-write by the parent so that init (which may be an unmapped
    /// user in a user namespace, or already past pivot_root) never needs its host path.
    fifo: Option<std::fs::File>,
    no_pivot: bool,
    preserve_fds: u32,
    mode: StartMode,
    /// The compiled seccomp filter, made (or read from the cache) before init exists.
    seccomp: Option<seccomp::Program>,
}

impl Created {
    /// Lets init exec the user program; returns once the exec happened (or failed).
    pub fn start(mut self) -> Result<Running> {
        self.chan.send(&Msg::Start)?;
        // The channel is close-on-exec: end of file means init has exec'd.
        match self.chan.recv() {
            Err(Error::Sync(_)) => {}
            Ok(Msg::Error { message, errno }) => {
                let _ = self.container.delete(true);
                restore_signals(&self.old_mask);
                return Err(Error::Child { message, errno });
            }
            Ok(other) => return Err(Error::Sync(format!("unexpected {other:?}"))),
            Err(e) => return Err(e),
        }
        self.container.state.started = true;
        self.container.state.save(&self.container.root)?;
        self.container.run_poststart();
        Ok(Running {
            container: self.container,
            old_mask: self.old_mask,
        })
    }

    /// The created container.
    pub fn container(&self) -> &Container {
        &self.container
    }
}

/// A container started by [`Created::start`], with signals still blocked so none is lost.
#[derive(Debug)]
pub struct Running {
    pub container: Container,
    old_mask: SigSet,
}

impl Running {
    /// Gives up waiting here: the caller (a shim with its own event loop) reaps init itself.
    /// Every signal stays blocked, so the caller takes them with a signalfd.
    pub fn into_container(self) -> Container {
        self.container
    }

    /// Waits for init to exit, forwarding signals to it; returns the exit code as a shell
    /// reports it (128 + signal for a killed process) and the container, for `delete`.
    /// Restores the signal mask.
    pub fn wait(self) -> (Result<i32>, Container) {
        let code = wait_forwarding(self.container.state.pid);
        restore_signals(&self.old_mask);
        (code, self.container)
    }
}

/// Waits for `pid` (a child of this process) with every signal blocked: SIGCHLD is taken with
/// sigwait, so an exit that happens before we wait is still seen; other signals go to `pid`.
fn wait_forwarding(pid: i32) -> Result<i32> {
    let target = Pid::from_raw(pid);
    let all = SigSet::all();
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => {
                return Err(Error::wrong_state(
                    &pid.to_string(),
                    "not a child of this process",
                ))
            }
            Err(e) => return Err(e).ctx(|| format!("wait for {pid}")),
        }
        let sig = all.wait().ctx(|| "sigwait".to_string())?;
        match sig {
            Signal::SIGCHLD => continue,
            // Job-control stops of the runtime itself are not for the container.
            Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU => {}
            s => {
                let _ = kill(target, s);
            }
        }
    }
}

impl Container {
    /// Loads container `id` from the runtime root.
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        Ok(Container {
            state: ContainerState::load(root, id)?,
            root: root.to_path_buf(),
        })
    }

    /// Lists every container under the root.
    pub fn list(root: &Path) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).ctx(|| format!("read {}", root.display())),
        };
        for e in entries.flatten() {
            if let Some(id) = e.file_name().to_str() {
                if let Ok(c) = Container::load(root, id) {
                    out.push(c);
                }
            }
        }
        out.sort_by(|a, b| a.state.created.cmp(&b.state.created));
        Ok(out)
    }

    /// The container's cgroup, in the hierarchies it was created in.
    pub fn cgroup(&self) -> Result<Cgroup> {
        Cgroup::open(&self.state.cgroup_path, self.state.cgroup_layout)
    }

    /// The current status.
    pub fn status(&self) -> Status {
        let frozen = self.state.init_alive() && self.cgroup().is_ok_and(|c| c.frozen());
        self.state.status(frozen)
    }

    /// `start`: lets a created container run its process.
    pub fn start(&mut self) -> Result<()> {
        let st = self.status();
        if st != Status::Created {
            return Err(Error::wrong_state(
                &self.state.id,
                format!("cannot start a container that is {st}"),
            ));
        }
        let fifo = ContainerState::dir(&self.root, &self.state.id).join(FIFO);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo)
            .map_err(|e| {
                Error::wrong_state(
                    &self.state.id,
                    format!("cannot start: init is not waiting ({e})"),
                )
            })?;
        f.write_all(b"0").ctx(|| "write exec fifo".to_string())?;
        drop(f);
        self.wait_for_exec(&fifo);
        let _ = std::fs::remove_file(&fifo);
        self.state.started = true;
        self.state.save(&self.root)?;
        self.run_poststart();
        Ok(())
    }

    /// Waits until init has exec'd the user program, so that poststart hooks run after it, as
    /// the spec says (and not, as in runc, possibly before). Init holds the fifo open until
    /// execve closes it; once no reader is left, opening it for writing fails with ENXIO.
    fn wait_for_exec(&self, fifo: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && self.state.init_alive() {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(fifo)
            {
                Ok(_) => std::thread::sleep(Duration::from_micros(200)),
                Err(_) => return,
            }
        }
    }

    fn run_poststart(&self) {
        if let Some(h) = self
            .state
            .hooks
            .as_ref()
            .and_then(|h| h.poststart().as_ref())
        {
            hooks::run_logged(h, &state_json(&self.state, Status::Running));
        }
    }

    /// Sends `sig` to init, or with `all` to every process in the container's cgroup.
    pub fn kill(&self, sig: Signal, all: bool) -> Result<()> {
        let st = self.status();
        if st == Status::Stopped {
            return Err(Error::wrong_state(&self.state.id, "container not running"));
        }
        if all {
            let cg = self.cgroup()?;
            for p in cg.pids()? {
                let _ = kill(Pid::from_raw(p), sig);
            }
            if st == Status::Paused {
                // A frozen process only sees the signal once thawed.
                let _ = cg.freeze(false);
            }
            Ok(())
        } else {
            kill(Pid::from_raw(self.state.pid), sig)
                .ctx(|| format!("container {}: kill", self.state.id))
        }
    }

    /// Freezes the container.
    pub fn pause(&self) -> Result<()> {
        match self.status() {
            Status::Running | Status::Created => self.cgroup()?.freeze(true),
            s => Err(Error::wrong_state(
                &self.state.id,
                format!("cannot pause a container that is {s}"),
            )),
        }
    }

    /// Thaws the container.
    pub fn resume(&self) -> Result<()> {
        match self.status() {
            Status::Paused => self.cgroup()?.freeze(false),
            s => Err(Error::wrong_state(
                &self.state.id,
                format!("cannot resume a container that is {s}"),
            )),
        }
    }

    /// Process ids in the container (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.cgroup()?.pids()
    }

    /// Cgroup statistics.
    pub fn stats(&self) -> Result<crate::cgroups::Stats> {
        self.cgroup()?.stats()
    }

    /// Removes the container. A running or paused one needs `force` (it is killed); a created
    /// one is killed without it, as runc does.
    pub fn delete(&self, force: bool) -> Result<()> {
        let st = self.status();
        // The spec: deleting a container that is not stopped is an error (runc kills a
        // created one instead; engines pass --force when they mean it).
        if st != Status::Stopped && !force {
            return Err(Error::wrong_state(
                &self.state.id,
                format!(
                    "cannot delete container {} that is not stopped: {st}",
                    self.state.id
                ),
            ));
        }
        let cg = self.cgroup().ok();
        let mut cgroup_err = None;
        if st != Status::Stopped {
            let _ = kill(Pid::from_raw(self.state.pid), Signal::SIGKILL);
            if let Some(cg) = &cg {
                if st == Status::Paused {
                    let _ = cg.freeze(false);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.state.init_alive() && Instant::now() < deadline {
                // init may be our child (run) or someone else's (create).
                let _ = waitpid(Pid::from_raw(self.state.pid), Some(WaitPidFlag::WNOHANG));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if let Some(cg) = &cg {
            // Without a pid namespace, processes can outlive init.
            if let Ok(pids) = cg.pids() {
                for p in pids {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
            // A cgroup that will not go (a process still exiting under load) must not leave
            // the state behind too: a new container of this id could never be created.
            cgroup_err = cg.destroy().err();
            if let Some(unit) = &self.state.systemd_unit {
                let stopped = cg.release_scope(unit);
                cgroup_err = cgroup_err.or(stopped.err());
            }
        }
        if let Some(h) = self
            .state
            .hooks
            .as_ref()
            .and_then(|h| h.poststop().as_ref())
        {
            hooks::run_logged(h, &state_json(&self.state, Status::Stopped));
        }
        let dir = ContainerState::dir(&self.root, &self.state.id);
        std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()))?;
        cgroup_err.map_or(Ok(()), Err)
    }

    /// Runs an extra process in the container's namespaces and cgroup. Returns its pid when
    /// detached, else waits and returns its exit code.
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32> {
        let st = self.status();
        if !matches!(st, Status::Running | Status::Created) {
            return Err(Error::wrong_state(
                &self.state.id,
                format!("cannot exec in a container that is {st}"),
            ));
        }
        let dir = ContainerState::dir(&self.root, &self.state.id);
        let defaults: ExecDefaults = std::fs::read(dir.join("exec.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        let pid = self.state.pid;
        // Open every namespace now, user first, mount last.
        let mut order: Vec<&str> = self.state.namespaces.iter().map(String::as_str).collect();
        order.sort_by_key(|n| match *n {
            "user" => 0,
            "mnt" => 2,
            _ => 1,
        });
        let mut fds = Vec::new();
        for name in order {
            let Some(flag) = namespaces::flag_for_proc_name(name) else {
                continue;
            };
            let path = format!("/proc/{pid}/ns/{name}");
            let fd = nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| format!("open {path}"))?;
            fds.push((flag, fd));
        }
        let in_userns = self.state.namespaces.iter().any(|n| n == "user");
        let cg = self.cgroup()?;
        let console = match (
            &opts.console_socket,
            opts.process.terminal().unwrap_or(false),
        ) {
            (Some(p), true) => Some(console::connect(p)?),
            (None, true) => {
                return Err(Error::spec(
                    "process.terminal",
                    "a terminal was asked for: pass --console-socket",
                ))
            }
            _ => None,
        };
        let seccomp = defaults
            .seccomp
            .as_ref()
            .map(|s| seccomp_cache::program(&seccomp_cache::dir(&self.root), s))
            .transpose()?;
        let (parent, child) = Channel::pair()?;
        let old_mask = block_signals()?;
        let stage1 = match sys::fork().ctx(|| "fork".to_string()) {
            Ok(Forked::Child) => {
                exec_stage1(&child, fds, console, opts, seccomp.as_ref(), in_userns)
            }
            Ok(Forked::Parent(p)) => p,
            Err(e) => {
                restore_signals(&old_mask);
                return Err(e);
            }
        };
        drop(child);
        drop(console);
        let r = (|| {
            cg.add(stage1)?;
            if let Some(v) = opts.process.oom_score_adj() {
                std::fs::write(format!("/proc/{stage1}/oom_score_adj"), v.to_string())
                    .ctx(|| format!("process.oomScoreAdj: set {v}"))?;
            }
            parent.send(&Msg::Go)?;
            parent.expect_pid()
        })();
        let _ = waitpid(Pid::from_raw(stage1), None);
        let proc_pid = match r {
            Ok(p) => p,
            Err(e) => {
                restore_signals(&old_mask);
                return Err(e);
            }
        };
        // End of file: the process exec'd. An Error: it did not.
        match parent.recv() {
            Err(Error::Sync(_)) => {}
            Ok(Msg::Error { message, errno }) => {
                let _ = waitpid(Pid::from_raw(proc_pid), None);
                restore_signals(&old_mask);
                return Err(Error::Child { message, errno });
            }
            other => {
                restore_signals(&old_mask);
                return Err(Error::Sync(format!("unexpected {other:?}")));
            }
        }
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, proc_pid)?;
        }
        if opts.detach {
            restore_signals(&old_mask);
            return Ok(proc_pid);
        }
        let code = wait_forwarding(proc_pid);
        restore_signals(&old_mask);
        code
    }
}

fn exec_stage1(
    chan: &Channel,
    fds: Vec<(CloneFlags, OwnedFd)>,
    console: Option<OwnedFd>,
    opts: &ExecOptions,
    seccomp_profile: Option<&seccomp::Program>,
    in_userns: bool,
) -> ! {
    let r = (|| -> Result<()> {
        chan.expect(Msg::Go)?;
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        namespaces::join(fds)?;
        match sys::clone_parent().ctx(|| "clone".to_string())? {
            Forked::Child => {
                let r = (|| {
                    if let Some(sock) = &console {
                        let (master, slave, name) = console::open_pty()?;
                        if let Some(sz) = opts.process.console_size() {
                            console::set_size(
                                master.as_raw_fd(),
                                sz.height() as u16,
                                sz.width() as u16,
                            );
                        }
                        console::send_master(sock, &master, &name)?;
                        drop(master);
                        console::make_controlling(&slave)?;
                    }
                    finish_process(
                        &opts.process,
                        seccomp_profile,
                        in_userns,
                        opts.preserve_fds,
                        |_, _, _| Ok(()),
                    )
                })();
                let Err(e) = r;
                let _ = chan.send(&Msg::failure(&e));
                sys::exit_child(1);
            }
            Forked::Parent(pid) => chan.send(&Msg::Pid(pid)),
        }
    })();
    match r {
        Ok(()) => sys::exit_child(0),
        Err(e) => {
            let _ = chan.send(&Msg::failure(&e));
            sys::exit_child(1)
        }
    }
}

/// Parses a signal as runc accepts it: a number, `KILL`, or `SIGKILL` (names from
/// [`crate::signal`]).
pub fn parse_signal(s: &str) -> Result<Signal> {
    let n = crate::signal::parse(s).map_err(|e| Error::spec("signal", e.to_string()))?;
    Signal::try_from(n).map_err(|_| Error::spec("signal", format!("{s}: unknown signal")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
    }
}
