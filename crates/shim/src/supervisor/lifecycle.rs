//! The container's life in the shim: created, started, exited, restarted, finished; its root file system; its state, told to subscribers and written to its state file.

use super::*;

impl Shim {
    pub(super) fn mount_rootfs(&mut self) -> Result<(), String> {
        for m in self.cfg.rootfs_mounts.clone() {
            m.mount().map_err(|e| {
                format!("mount the root file system on {}: {e}", m.target.display())
            })?;
            self.mounted.push(m.target);
        }
        Ok(())
    }

    pub(super) fn unmount_rootfs(&mut self) {
        while let Some(t) = self.mounted.pop() {
            match berth_shim::MountSpec::unmount(&t) {
                // A removal renamed the container's directory after the exit was told; it
                // unmounts the root itself once this shim is gone. (No descriptor of the root
                // is kept to unmount it wherever it went: every process of the container is
                // forked from this shim, and such a descriptor reached them until their exec.)
                Err(nix::errno::Errno::ENOENT) if self.told => {}
                Err(e) => log(&format!("unmount {}: {e}", t.display())),
                Ok(()) => {}
            }
        }
    }

    /// Creates the container with fresh stdio; its process waits for [`Shim::start`].
    pub(super) fn create(&mut self) -> Result<(), Failure> {
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
            systemd_cgroup: self.cfg.systemd_cgroup,
        });
        let _ = dup2(null.as_raw_fd(), 0);
        let _ = dup2(null.as_raw_fd(), 1);
        let _ = dup2(saved_err.as_raw_fd(), 2);
        drop((child_in, child_out, child_err));
        let created = res?;
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
        tracing::debug!(pid = self.state.pid, "created");
        self.created = Some(created);
        Ok(())
    }

    /// Runs the created process.
    pub(super) fn start(&mut self) -> Result<(), Failure> {
        let Some(created) = self.created.take() else {
            return Err(String::from("container already started").into());
        };
        // Read while init waits for the start (a short-lived one may be gone right after).
        self.pid_ns_init = leads_pid_namespace(created.container.state.pid);
        let running = created.start()?;
        let c = running.into_container();
        self.state.pid = c.state.pid;
        self.container = Some(c);
        self.state.status = Status::Running;
        self.state.started_at = berth_shim::rfc3339(SystemTime::now());
        self.state.error.clear();
        tracing::debug!(pid = self.state.pid, "started");
        self.started = Instant::now();
        self.save();
        Ok(())
    }

    /// Tells subscribers of a state change; the state file is written by [`Shim::persist`]
    /// once the current event has been handled, so a reply (a start's, say) is never held
    /// back behind the file's fsyncs.
    pub(super) fn save(&mut self) {
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
    pub(super) fn persist(&mut self) {
        if std::mem::take(&mut self.dirty) {
            // A removal renames the container's directory once the exit is told: the last
            // state has no file to go to then, and needs none.
            if self.told && !self.cfg.state_file.parent().is_some_and(|d| d.exists()) {
                return;
            }
            if let Err(e) = self.state.save(&self.cfg.state_file) {
                log(&e.to_string());
            }
        }
    }

    pub(super) fn reap(&mut self) {
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
    pub(super) fn exec_exited(&mut self, pid: i32, code: i32) {
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

    /// Init exited: take the rest of its output, clean up, restart or finish.
    pub(super) fn exited(&mut self, code: i32) {
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
        tracing::debug!(code, oom_killed = self.state.oom_killed, "exited");
        self.state.exit_code = code;
        self.state.pid = 0;
        self.state.exits += 1;
        self.state.finished_at = berth_shim::rfc3339(SystemTime::now());
        let restart =
            self.cfg
                .restart
                .should_restart(code, self.state.restart_count, self.state.manual_stop);
        // The end is told before the clean-up (the cgroup's removal, the root's unmount: some
        // milliseconds, most of it the unmount's RCU grace period) when no process of the
        // container is left: in its own pid namespace, init's exit took every other process
        // with it. berthd waits for this shim to be gone before it reuses the root or the
        // socket (a start, a stopped container's root, a removal's deletion).
        if !restart
            && (self.pid_ns_init
                || self
                    .container
                    .as_ref()
                    .is_some_and(|c| c.pids().is_ok_and(|p| p.is_empty())))
        {
            self.tell_end();
        }
        if let Some(c) = self.container.take() {
            if let Err(e) = c.delete(true) {
                log(&format!("delete container: {e}"));
            }
        }
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
    pub(super) fn oom_killed(&self) -> bool {
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

    pub(super) fn restart(&mut self) {
        self.state.restart_count += 1;
        let res = self.create().and_then(|_| self.start());
        if res.is_ok() {
            trim_memory();
        }
        if let Err(e) = res {
            log(&format!("restart: {e}"));
            self.state.error = e.message;
            self.state.exit_code = 128;
            self.finish();
        }
    }

    /// The container is done for good: undo the root file system, tell the end (if not yet
    /// told), linger.
    pub(super) fn finish(&mut self) {
        self.unmount_rootfs();
        if !self.told {
            self.tell_end();
        }
        self.finished = Some(Instant::now());
    }

    /// Tells subscribers the final state and ends every stream (subscriptions, attached
    /// clients), at once rather than at the next poll round.
    fn tell_end(&mut self) {
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
        self.told = true;
    }
}

/// Whether `pid` is the first process of a pid namespace of its own (its innermost pid, the
/// last of `NSpid`, is 1): its exit then ends every other process of the container, without a
/// look at the cgroup (which costs a parse of the mount table on the exit's path).
fn leads_pid_namespace(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|v| {
                let ids: Vec<&str> = v.split_whitespace().collect();
                ids.len() > 1 && ids.last() == Some(&"1")
            })
    })
}
