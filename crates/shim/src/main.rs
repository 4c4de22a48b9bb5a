//! `berth-shim SHIM_JSON`: supervises one container (see the library's docs for the protocol).
//!
//! The process forks once: the parent exits at once, and the child (in its own session, so
//! that neither berthd's exit nor a signal to berthd's process group reaches it) mounts the
//! root file system, creates the container through the runtime library, listens on its socket
//! and then writes `ok <pid>` or `error: <why>` to the stdout it inherited, which berthd reads.
//!
//! `berth-shim --spare DIR`: the same, started before it is needed. It forks and detaches at
//! once, then waits for one line on its stdin: the path of a SHIM_JSON (under DIR, the
//! containers directory it serves, named so that `ps` tells whose spare it is). It then goes
//! on exactly as above. The end of its stdin (berthd gone) ends it. berthd keeps one spare
//! ready, so that a container's start does not wait for a shim's exec and start-up (on
//! this machine glibc's start-up alone is 0.6 ms: its CPUID probing of the caches traps to
//! the hypervisor).
//!
//! One thread, one poll(2) loop, no async runtime: the shim must stay small (under 2 MiB
//! resident while idle). It is a child subreaper, so it reaps the container's init even when
//! the runtime had to fork twice to create it.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::SystemTime;

mod input;
mod supervisor;

use berth_shim::ShimConfig;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use supervisor::Shim;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--init`: bind-mounted as /sbin/docker-init, run as `docker-init -- PROGRAM ARGS`.
    if args.get(1).map(String::as_str) == Some("--") {
        std::process::exit(init(&args[2..]));
    }
    let spare = args.len() == 3 && args[1] == "--spare";
    if args.len() != 2 && !spare {
        eprintln!("usage: berth-shim SHIM_JSON | berth-shim --spare DIR");
        std::process::exit(2);
    }
    // Anything that enters a container first runs from a protected copy (CVE-2019-5736).
    if let Err(e) = berth_runtime::selfexe::ensure_cloned() {
        println!("error: protect the shim binary: {e}");
        std::process::exit(1);
    }
    if spare {
        // Idle-scheduled until it gets a container (berthd set it too, from outside).
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler on this process with a valid parameter.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        detach();
        let mut path = String::new();
        // Nothing (berthd gone) or no path: nothing to serve.
        if std::io::stdin().read_line(&mut path).unwrap_or(0) == 0 || path.trim().is_empty() {
            std::process::exit(0);
        }
        // Started under SCHED_IDLE (see the engine's spare.rs): the container and its shim run
        // under the normal policy.
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler on this process with a valid parameter.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) } != 0 {
            println!(
                "error: leave the spare's idle scheduling: {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(1);
        }
        let cfg = read_config(path.trim());
        serve(cfg);
    }
    let cfg = read_config(&args[1]);
    detach();
    serve(cfg);
}

/// The shim's config, or the end of the process with berthd told why.
fn read_config(path: &str) -> ShimConfig {
    match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            println!("error: read {path}: {e}");
            std::process::exit(1);
        }
    }
}

/// Forks: the parent exits at once (its starter reaps it), the child goes on in a session of
/// its own.
fn detach() {
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
}

/// Creates and supervises the container of `cfg`; never returns.
fn serve(cfg: ShimConfig) -> ! {
    let ready = match redirect_stdio(&cfg) {
        Ok(r) => r,
        Err(e) => {
            println!("error: set up stdio: {e}");
            std::process::exit(1);
        }
    };
    let mut ready = std::fs::File::from(ready);
    // Only when berthd logs at debug: a subscriber costs start-up time on every container.
    if matches!(cfg.log_level.as_str(), "debug" | "trace") {
        let level = if cfg.log_level == "trace" {
            tracing::Level::TRACE
        } else {
            tracing::Level::DEBUG
        };
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let span = tracing::debug_span!("shim", container = %cfg.id);
    let _entered = span.enter();
    match Shim::new(cfg) {
        Ok(mut shim) => {
            let _ = writeln!(ready, "ok {}", std::process::id());
            drop(ready);
            shim.run();
            std::process::exit(0);
        }
        Err(e) => {
            // `error(<errno>): ` when the runtime met an OS error, so the engine can tell a
            // missing program from a refused one.
            let _ = match e.errno {
                Some(n) => writeln!(ready, "error({n}): {e}"),
                None => writeln!(ready, "error: {e}"),
            };
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
