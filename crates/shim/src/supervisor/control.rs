//! Requests on the control socket: state, subscribe, attach, start, kill, stop, update, pause, resize and exec, and their replies.

use super::*;

impl Shim {
    pub(super) fn handle(&mut self, i: usize, line: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.reply(i, Err(format!("bad request: {e}")), Kind::Closing);
                return;
            }
        };
        let span = tracing::debug_span!("request", op = %req.op());
        let _entered = span.enter();
        tracing::trace!(?req, "received");
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
                    Ok::<(), Failure>(()),
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
                    Ok(()) => self.reply(i, Ok::<(), Failure>(()), Kind::Exec { key }),
                    Err(e) => self.reply(i, Err(e), Kind::Closing),
                }
                return;
            }
            Request::ExecKill { key, signal } => {
                match self.execs.iter().find(|e| e.key == key).map(|e| e.pid) {
                    Some(pid) => Self::signal(signal).and_then(|sig| {
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
                            .map_err(|e| format!("kill exec process {pid}: {e}"))
                    }),
                    // Already gone: nothing to do.
                    None => Ok(()),
                }
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
                        errno: None,
                        state: None,
                        data: Some(data),
                    },
                    Err(e) => Reply {
                        error: e,
                        errno: None,
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
            Request::Update { resources, restart } => self.update(*resources, restart),
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
            Request::ReopenLog => self
                .log
                .reopen()
                .map_err(|e| format!("reopen the log: {e}")),
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

    pub(super) fn reply(&mut self, i: usize, res: Result<(), impl Into<Failure>>, kind: Kind) {
        let (error, errno) = match res {
            Ok(()) => (String::new(), None),
            Err(e) => {
                let f: Failure = e.into();
                (f.message, f.errno)
            }
        };
        if error.is_empty() {
            tracing::debug!("done");
        } else {
            tracing::debug!(%error, ?errno, "failed");
        }
        let r = Reply {
            error,
            errno,
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

    pub(super) fn reply_state(&mut self, i: usize, st: ShimState, kind: Kind) {
        let mut line = serde_json::to_vec(&Reply {
            error: String::new(),
            errno: None,
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

    pub(super) fn signal(sig: i32) -> Result<Signal, String> {
        Signal::try_from(sig).map_err(|_| format!("invalid signal: {sig}"))
    }

    pub(super) fn kill(&mut self, sig: i32, all: bool) -> Result<(), String> {
        let sig = Self::signal(sig)?;
        match (&self.container, self.state.status) {
            (Some(c), Status::Running | Status::Paused) => {
                c.kill(sig, all).map_err(|e| e.to_string())
            }
            _ => Err(format!("container {} is not running", self.cfg.id)),
        }
    }

    pub(super) fn stop(&mut self, sig: i32, timeout: i64) -> Result<(), String> {
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

    pub(super) fn update(
        &mut self,
        resources: oci_spec::runtime::LinuxResources,
        restart: Option<berth_shim::RestartPolicy>,
    ) -> Result<(), String> {
        if let Some(c) = &self.container {
            c.cgroup()
                .and_then(|cg| cg.apply(&resources))
                .map_err(|e| e.to_string())?;
        }
        if let Some(p) = restart {
            self.cfg.restart = p;
        }
        Ok(())
    }

    pub(super) fn pause(&mut self, on: bool) -> Result<(), String> {
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

    /// Starts an exec process with its own stdio; the client's connection becomes its stream.
    pub(super) fn exec(
        &mut self,
        key: u64,
        process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<(), Failure> {
        let c = match (&self.container, self.state.status) {
            (Some(c), Status::Running) => c,
            _ => return Err(format!("container {} is not running", self.cfg.id).into()),
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
                return Err(e.into());
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
}
