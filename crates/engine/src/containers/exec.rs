//! Exec instances: processes started in a running container through its shim.

use super::*;

impl Containers {
    /// `POST /containers/{id}/exec`: records what to run; returns the exec id.
    #[tracing::instrument(level = "debug", skip_all, fields(exec = %name))]
    pub fn exec_create(&self, name: &str, spec: ExecSpec) -> Result<ExecId, EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if e.view().state() != State::Running {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        if spec.cmd.is_empty() {
            return Err(invalid("No exec command specified"));
        }
        let id = ExecId::random();
        let x = ExecRecord {
            id: id.clone(),
            container: rec.id.clone(),
            key: self
                .next_exec_key
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            spec,
            running: false,
            started: false,
            exit_code: None,
        };
        let action = exec_action("exec_create", &x.spec.cmd);
        self.execs.lock().expect("execs").insert(id.clone(), x);
        self.publish(&action, &rec, &[("execID", id.to_string())]);
        Ok(id)
    }

    /// An exec instance.
    pub fn exec_get(&self, id: &str) -> Result<ExecRecord, EngineError> {
        ExecId::parse(id)
            .and_then(|x| self.execs.lock().expect("execs").get(&x).cloned())
            .ok_or_else(|| not_found(format!("No such exec instance: {id}")))
    }

    /// Records an exec process's exit code.
    pub fn exec_finished(&self, id: &str, code: i64) {
        let Some(id) = ExecId::parse(id) else { return };
        let container = match self.execs.lock().expect("execs").get_mut(&id) {
            Some(x) => {
                x.running = false;
                x.exit_code = Some(code);
                x.container.clone()
            }
            None => return,
        };
        if let Ok(e) = self.find(container.as_str()) {
            let attrs = [("execID", id.to_string()), ("exitCode", code.to_string())];
            self.publish("exec_die", &e.record(), &attrs);
        }
    }

    /// `POST /exec/{id}/start`: runs the process (with a terminal if it was created with
    /// one). Returns whether it has a terminal and its stream (Docker frames, then a frame of
    /// stream [`berth_shim::EXIT`] with the exit code), or with `detach` nothing (the exit
    /// code is collected in the background).
    /// What [`Containers::exec_start`] would refuse, checked without starting anything (the
    /// API answers these before it hijacks the connection).
    pub fn exec_can_start(&self, id: &str) -> Result<(), EngineError> {
        let container = {
            let mut execs = self.execs.lock().expect("execs");
            exec_to_start(&mut execs, id)?.container.clone()
        };
        let e = self.find(&container)?;
        if e.view().state() != State::Running {
            return Err(conflict(format!(
                "Container {} is not running",
                e.record().id
            )));
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(exec = %id))]
    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
    ) -> Result<Option<(bool, UnixStream)>, EngineError> {
        let x = {
            let mut execs = self.execs.lock().expect("execs");
            let x = exec_to_start(&mut execs, id)?;
            x.started = true;
            x.running = true;
            x.clone()
        };
        let e = self.find(&x.container)?;
        let rec = e.record();
        if e.view().state() != State::Running {
            self.exec_finished(id, 126);
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        let dir = self.dir(&rec.id);
        let spec: serde_json::Value = std::fs::read(dir.join("bundle/config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .ok_or_else(|| unavailable("the container's bundle is unreadable"))?;
        let mut p = spec["process"].clone();
        p["args"] = serde_json::json!(x.spec.cmd);
        p["terminal"] = serde_json::json!(x.spec.tty);
        if let Some(o) = p.as_object_mut() {
            o.remove("consoleSize");
        }
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for v in &x.spec.env {
            let k = v.split('=').next().unwrap_or(v);
            env.retain(|o| o.split('=').next() != Some(k));
            env.push(v.clone());
        }
        p["env"] = serde_json::json!(env);
        if !x.spec.workdir.is_empty() {
            p["cwd"] = serde_json::json!(x.spec.workdir);
        }
        if !x.spec.user.is_empty() {
            let layers = self.images.layer_dirs(&rec.image, &dir.join("upper"))?;
            let (uid, gid, extra) = crate::spec::resolve_user(&x.spec.user, &layers)?;
            p["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": extra});
        }
        if x.spec.privileged {
            let all = crate::spec::available_caps();
            p["capabilities"] =
                serde_json::json!({"bounding": all, "effective": all, "permitted": all});
        }
        let req = Request::Exec {
            key: x.key,
            process: p,
            tty: x.spec.tty,
            stdin: x.spec.stdin && !detach,
        };
        let stream = match shim_stream(&self.socket(&rec.id), &req).await {
            Ok(s) => s,
            Err(err) => {
                // As dockerd: 127 for a program not found, 126 for anything else that kept
                // it from running (the exit code a hijacked client reads back).
                let code = match err.start_exit_code() {
                    127 => 127,
                    _ => 126,
                };
                self.exec_finished(id, code);
                // dockerd's words around the runtime's.
                let m = format!(
                    "OCI runtime exec failed: exec failed: {}: unknown",
                    err.message
                );
                let errno = err.errno;
                return Err(if code == 127 || errno == Some(libc::EACCES) {
                    invalid(m)
                } else {
                    unavailable(m)
                }
                .with_errno(errno));
            }
        };
        let action = exec_action("exec_start", &x.spec.cmd);
        self.publish(&action, &rec, &[("execID", id.to_string())]);
        if !detach {
            return Ok(Some((x.spec.tty, stream)));
        }
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let code = drain_exit(stream).await;
            me.exec_finished(&id, code);
        });
        Ok(None)
    }

    /// `POST /exec/{id}/resize`.
    #[tracing::instrument(level = "debug", skip_all, fields(exec = %id))]
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let x = self.exec_get(id)?;
        if !x.running {
            return Err(conflict(format!("Exec {id} is not running")));
        }
        shim_call(
            &self.socket(&x.container),
            &Request::ExecResize {
                key: x.key,
                height,
                width,
            },
        )
        .await
    }
}

/// An exec event's action as dockerd names it: `exec_create: <program> <args>`.
fn exec_action(what: &str, cmd: &[String]) -> String {
    let (program, args) = cmd
        .split_first()
        .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
    format!("{what}: {program} {}", args.join(" "))
}

/// The exec instance `id`, refused once it has run.
fn exec_to_start<'a>(
    execs: &'a mut HashMap<ExecId, ExecRecord>,
    id: &str,
) -> Result<&'a mut ExecRecord, EngineError> {
    let x = ExecId::parse(id)
        .and_then(|k| execs.get_mut(&k))
        .ok_or_else(|| not_found(format!("No such exec instance: {id}")))?;
    if x.started {
        return Err(conflict(format!(
            "Error: Exec command {id} has already run"
        )));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_actions_name_the_command_as_dockerd_does() {
        let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exec_action("exec_create", &cmd(&["touch", "/tmp/ok"])),
            "exec_create: touch /tmp/ok"
        );
        assert_eq!(exec_action("exec_start", &cmd(&["ps"])), "exec_start: ps ");
    }
}

/// What [`Containers::exec_capture`] collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

impl Containers {
    /// Runs `cmd` in a running container and collects its stdout and stderr (each up to
    /// `limit` bytes; the rest is read and dropped) and its exit code (the CRI's ExecSync).
    /// At `timeout` the process is killed and None is answered. The exec leaves no record.
    pub async fn exec_capture(
        self: &Arc<Self>,
        name: &str,
        cmd: Vec<String>,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Captured>, EngineError> {
        use tokio::io::AsyncReadExt;
        let rec = self.find(name)?.record();
        let spec = ExecSpec {
            cmd,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let id = self.exec_create(name, spec)?;
        let key = self.exec_get(id.as_str()).map(|x| x.key).unwrap_or(0);
        let started = self.exec_start(id.as_str(), false).await;
        let forget = |me: &Self| me.execs.lock().expect("execs").remove(&id);
        let mut stream = match started {
            Ok(Some((_, s))) => s,
            Ok(None) => {
                forget(self);
                return Err(unavailable("the exec did not start"));
            }
            Err(e) => {
                forget(self);
                return Err(e);
            }
        };
        let mut out = Captured {
            exit_code: -1,
            ..Default::default()
        };
        let read = async {
            let mut hdr = [0u8; 8];
            while stream.read_exact(&mut hdr).await.is_ok() {
                let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
                let mut data = vec![0u8; len];
                if stream.read_exact(&mut data).await.is_err() {
                    break;
                }
                let sink = match hdr[0] {
                    berth_shim::EXIT => {
                        out.exit_code = String::from_utf8_lossy(&data).trim().parse().unwrap_or(-1);
                        continue;
                    }
                    berth_shim::STDERR => &mut out.stderr,
                    _ => &mut out.stdout,
                };
                let room = limit.saturating_sub(sink.len());
                sink.extend_from_slice(&data[..data.len().min(room)]);
            }
        };
        let finished = match timeout {
            Some(t) => tokio::time::timeout(t, read).await.is_ok(),
            None => {
                read.await;
                true
            }
        };
        if !finished {
            let _ = shim_call(&self.socket(&rec.id), &Request::ExecKill { key, signal: 9 }).await;
        }
        forget(self);
        Ok(finished.then_some(out))
    }
}
