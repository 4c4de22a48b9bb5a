//! The spare shim: one `berth-shim --spare` kept started and detached, waiting on its stdin for
//! the config of the next container to start. A start hands it the config's path instead of
//! spawning a shim, which takes the shim's exec and start-up (about 1.5 ms of `run --rm` on
//! this machine, most of it glibc's CPUID probing under the hypervisor) off the start's path.
//! After each start a new spare is made, in the background. Without a spare (two starts at
//! once, or one that died) a start spawns its shim as before.
//!
//! A spare holds nothing of a container until it gets a config; it ends when its stdin ends,
//! so a berthd that exits (or is killed) leaves none behind.

use super::*;

/// A detached spare shim's pipes: its stdin takes the config's path, its stdout gives the
/// ready line (`ok <pid>` or `error: …`), as a freshly spawned shim's does.
#[derive(Debug)]
pub(super) struct Spare {
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
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
        tokio::spawn(async move {
            match me.spawn_spare().await {
                Ok(s) => *me.spare.lock().expect("spare") = Some(s),
                Err(e) => tracing::debug!(error = %e, "no spare shim"),
            }
            me.refilling
                .store(false, std::sync::atomic::Ordering::SeqCst);
        });
    }

    async fn spawn_spare(&self) -> std::io::Result<Spare> {
        let mut cmd = tokio::process::Command::new(&self.s.shim_bin);
        cmd.arg("--spare")
            .arg(self.s.data_root.join("containers"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn()?;
        // The spare starts up under SCHED_IDLE: only on a CPU nothing else wants, so it never
        // slows the start (or the exit) of the container running meanwhile. The shim goes
        // back to the normal policy when it gets its container. Set from here rather than
        // before the exec: a `pre_exec` would make the spawn fork berthd (its page tables,
        // then copy-on-write faults in berthd) instead of a vfork-style spawn; the spare sets
        // it on itself too, as soon as it runs its own code.
        if let Some(pid) = child.id() {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: sched_setscheduler on our child's pid with a valid parameter.
            unsafe { libc::sched_setscheduler(pid as i32, libc::SCHED_IDLE, &param) };
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the spare shim's pipes"));
        };
        // The first process exits once the spare proper has detached.
        let status = child.wait().await?;
        if !status.success() {
            return Err(std::io::Error::other(format!("the spare shim: {status}")));
        }
        Ok(Spare { stdin, stdout })
    }

    /// Hands the config at `config` to the spare, if there is a live one; returns the pipe
    /// its ready line comes on.
    pub(super) async fn use_spare(&self, config: &Path) -> Option<tokio::process::ChildStdout> {
        let Spare { mut stdin, stdout } = self.spare.lock().expect("spare").take()?;
        let mut line = config.as_os_str().as_encoded_bytes().to_vec();
        line.push(b'\n');
        // A spare that died refuses the write (EPIPE): the start spawns a shim instead.
        stdin.write_all(&line).await.ok()?;
        Some(stdout)
    }
}
