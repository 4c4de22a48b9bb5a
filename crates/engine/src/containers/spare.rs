//! The spare shim: one `berth-shim --spare` kept started and detached, waiting on its stdin for
//! the config of the next container to start. A start hands it the config's path instead of
//! spawning a shim, which takes the shim's exec and start-up (about 1.5 ms of `run --rm` on
//! this machine, most of it glibc's CPUID probing under the hypervisor) off the start's path.
//! After each start a new spare is made, in the background, once the started container has
//! exited or run for 20 ms (interleaved `run --rm` pairs: 0.69 ms faster than making it as
//! soon as the start was answered, when its exec landed on the short container's exit). Without a spare (two starts at
//! once, or one that died) a start spawns its shim as before.
//!
//! The spare is spawned from a thread of its own (not a tokio worker) under the normal policy,
//! and made SCHED_IDLE as soon as the spawn returns (the spare also does it itself first
//! thing), so that its start-up only uses a CPU nothing else wants; the shim takes the normal
//! policy back when it gets its container. The spawn itself is not run idle: until its exec
//! completes, a spawned child holds copies of berthd's descriptors (the API's listening
//! socket, clients' connections), and an idle child starved under load held them for long
//! enough that a berthd killed meanwhile seemed still to listen (the crash tests saw it).
//!
//! A spare holds nothing of a container until it gets a config; it ends when its stdin ends,
//! so a berthd that exits (or is killed) leaves none behind.

use std::io::Write;

use super::*;

/// A detached spare shim's pipes: its stdin takes the config's path, its stdout gives the
/// ready line (`ok <pid>` or `error: …`), as a freshly spawned shim's does.
#[derive(Debug)]
pub(super) struct Spare {
    stdin: std::process::ChildStdin,
    stdout: std::process::ChildStdout,
}

impl Containers {
    /// Makes a new spare in the background, unless there is one or one is being made.
    pub(super) fn refill_spare(self: &Arc<Self>) {
        if self.spare.lock().expect("spare").is_some()
            || self
                .refilling
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("spare-shim".into())
            .spawn(move || {
                match me.spawn_spare() {
                    Ok(s) => *me.spare.lock().expect("spare") = Some(s),
                    Err(e) => tracing::debug!(error = %e, "no spare shim"),
                }
                me.refilling
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.refilling
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn spawn_spare(&self) -> std::io::Result<Spare> {
        let mut child = std::process::Command::new(&self.s.shim_bin)
            .arg("--spare")
            .arg(self.s.data_root.join("containers"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler on our child's pid with a valid parameter.
        unsafe { libc::sched_setscheduler(child.id() as i32, libc::SCHED_IDLE, &param) };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the spare shim's pipes"));
        };
        // The first process exits once the spare proper has detached.
        let status = child.wait()?;
        if !status.success() {
            return Err(std::io::Error::other(format!("the spare shim: {status}")));
        }
        Ok(Spare { stdin, stdout })
    }

    /// Hands the config at `config` to the spare, if there is a live one; returns the pipe
    /// its ready line comes on.
    pub(super) fn use_spare(&self, config: &Path) -> Option<tokio::process::ChildStdout> {
        let Spare { mut stdin, stdout } = self.spare.lock().expect("spare").take()?;
        let mut line = config.as_os_str().as_encoded_bytes().to_vec();
        line.push(b'\n');
        // One short line into an empty pipe does not block. A spare that died refuses it
        // (EPIPE): the start spawns a shim instead.
        stdin.write_all(&line).ok()?;
        tokio::process::ChildStdout::from_std(stdout).ok()
    }
}
