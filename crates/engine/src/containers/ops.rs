//! Lifecycle operations on a created or started container: stop, restart, kill, pause, resize, wait, remove, rename, update and prune.

use super::*;

impl Containers {
    /// `POST /containers/{id}/stop`: the stop signal, SIGKILL after the timeout.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn stop(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        self.stop_locked(&e, signal, timeout).await
    }

    pub(super) async fn stop_locked(
        &self,
        e: &Arc<Entry>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let rec = e.record();
        if !e.view().active() {
            return Err(not_modified());
        }
        // As dockerd: health checks end when a stop begins, so a probe cut short by the stop
        // is not counted as a failure.
        e.stop_health_checks();
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => rec
                .config
                .stop_signal
                .as_deref()
                .map(parse_signal)
                .transpose()?
                .unwrap_or(15),
        };
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        // As dockerd: a `kill` event for the stop signal, and one for SIGKILL when the
        // timeout runs out (timed from before the request, so that it comes before the
        // shim's kill and the `die`).
        let asked = tokio::time::Instant::now();
        self.publish("kill", &rec, &[("signal", sig.to_string())]);
        shim_call(
            &self.socket(&rec.id),
            &Request::Stop {
                signal: sig,
                timeout,
            },
        )
        .await?;
        let exited = |v: &View| v.state() == State::Exited;
        if timeout >= 0 {
            let grace = Duration::from_secs(timeout as u64).saturating_sub(asked.elapsed());
            if !wait_for(&e.watch(), exited, grace).await {
                self.publish("kill", &rec, &[("signal", "9".to_string())]);
            }
        }
        let limit = if timeout < 0 {
            Duration::MAX
        } else {
            Duration::from_secs(30)
        };
        if !wait_for(&e.watch(), exited, limit).await {
            return Err(unavailable(format!("container {} did not stop", rec.id)));
        }
        self.publish("stop", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        match self.stop_locked(&e, signal, timeout).await {
            Ok(()) => {}
            Err(err) if err.kind == crate::error::Kind::NotModified => {}
            Err(err) => return Err(err),
        }
        self.start_locked(&e).await?;
        self.publish("restart", &e.record(), &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        if !matches!(e.view().state(), State::Running | State::Paused) {
            return Err(conflict(format!(
                "Cannot kill container: {name}: Container {} is not running",
                rec.id
            )));
        }
        let exits_before = e.view().exits;
        shim_call(
            &self.socket(&rec.id),
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await?;
        self.publish("kill", &rec, &[("signal", sig.to_string())]);
        if sig == 9 {
            // As dockerd: a SIGKILL returns once the process has exited (a restart policy may
            // bring it back right after).
            wait_for(
                &e.watch(),
                |v| v.exits > exits_before || !v.active() || v.removed,
                Duration::from_secs(10),
            )
            .await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn pause(&self, name: &str, on: bool) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let st = e.view().state();
        let ev = if on {
            crate::lifecycle::Event::Pause
        } else {
            crate::lifecycle::Event::Unpause
        };
        st.on(ev, &rec.id).map_err(|err| conflict(err.0))?;
        let req = if on { Request::Pause } else { Request::Resume };
        shim_call(&self.socket(&rec.id), &req).await?;
        let want = if on { State::Paused } else { State::Running };
        wait_for(&e.watch(), |v| v.state() == want, Duration::from_secs(5)).await;
        self.publish(if on { "pause" } else { "unpause" }, &rec, &[]);
        Ok(())
    }

    /// Makes a running container's shim open its log file again (the CRI's
    /// ReopenContainerLog, after the kubelet rotated it).
    pub async fn reopen_log(&self, name: &str) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if e.view().state() != State::Running {
            return Err(conflict(format!("container {} is not running", rec.id)));
        }
        shim_call(&self.socket(&rec.id), &Request::ReopenLog).await
    }

    /// `POST /containers/{id}/resize`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if !e.view().active() {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        shim_call(&self.socket(&rec.id), &Request::Resize { height, width }).await
    }

    /// `POST /containers/{id}/wait`: the exit code once `condition` holds.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn wait(&self, name: &str, condition: WaitCondition) -> Result<i64, EngineError> {
        let e = self.find(name)?;
        let mut rx = e.watch();
        let start_exits = rx.borrow().exits;
        let cond: Box<dyn Fn(&View) -> bool + Send + Sync> = match condition {
            // As dockerd: an exit counts even when the restart policy brings it back at once
            // (`wait` on an `always` container returns at its first exit).
            WaitCondition::NotRunning => {
                Box::new(move |v: &View| !v.active() || v.exits > start_exits || v.removed)
            }
            WaitCondition::NextExit => Box::new(move |v: &View| v.exits > start_exits || v.removed),
            WaitCondition::Removed => Box::new(|v: &View| v.removed),
        };
        let v = rx
            .wait_for(|v| cond(v))
            .await
            .map_err(|_| unavailable("the container went away"))?
            .clone();
        Ok(v.shim.map_or(0, |s| s.exit_code as i64))
    }

    /// `DELETE /containers/{id}`.
    /// `DELETE /containers/{id}?v=`: with `volumes`, its anonymous volumes go too (those no
    /// other container uses), as with docker's `rm -v` and `run --rm`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn remove_with_volumes(
        &self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let mounts = self.find(name)?.record().mounts;
        self.remove(name, force).await?;
        if volumes {
            for m in mounts {
                let Some(v) = m.name.as_deref() else { continue };
                if self.volumes.get(v).is_ok_and(|x| x.anonymous) {
                    let users = self.volume_users(v);
                    if let Err(e) = self.volumes.remove(v, &users) {
                        tracing::debug!(volume = v, error = %e, "anonymous volume kept");
                    }
                }
            }
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn remove(&self, name: &str, force: bool) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let st = e.view().state();
        if e.view().removed {
            return Err(not_found(format!("No such container: {name}")));
        }
        st.on(crate::lifecycle::Event::Remove { force }, &rec.name)
            .map_err(|err| match st {
                State::Running | State::Paused | State::Restarting => conflict(format!(
                    "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
                    st.api_name(),
                    rec.id
                )),
                _ => conflict(err.0),
            })?;
        if st == State::Restarting && !force {
            return Err(conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                rec.id
            )));
        }
        e.transition(Change::Removing)
            .map_err(|err| conflict(err.0))?;
        let sock = self.socket(&rec.id);
        // A connection of our own to the shim: it ends (EOF) when the shim process is gone,
        // which is what the removal waits for below.
        let shim_conn = UnixStream::connect(&sock).await.ok();
        if e.view().active() || shim_conn.is_some() {
            // A container that has exited (a `--rm` one, at its end) needs no kill: its shim
            // is only finishing, and a request would wait behind that.
            if st != State::Exited {
                let _ = shim_call(
                    &sock,
                    &Request::Stop {
                        signal: 9,
                        timeout: 0,
                    },
                )
                .await;
            }
            if !wait_for(
                &e.watch(),
                |v| v.shim.as_ref().is_none_or(|s| s.status == Status::Exited),
                Duration::from_secs(30),
            )
            .await
            {
                let _ = e.transition(Change::RemovalAborted);
                return Err(unavailable(format!("could not kill container {}", rec.id)));
            }
        }
        let dir = self.dir(&rec.id);
        // The subpath mounts are berthd's own binds; with every process of the container
        // gone they are nobody's, and they go before the answer (a `volume rm` right after
        // must find the volume unused).
        subpath::release(&self.s.exec_root, &rec.id);
        if let Some(a) = self.attachment(&rec.id) {
            let (net, id) = (self.network.clone(), rec.id.clone());
            tokio::task::spawn_blocking(move || net.detach(&id, &a))
                .await
                .map_err(|e| unavailable(format!("detach from the network: {e}")))??;
            let _ = std::fs::remove_file(dir.join("network.json"));
        } else if !self.networks_of(&rec).is_empty() {
            // Only a container meant for a network can have been cut short attaching to one
            // (a `--network none` removal, `run --rm`'s hot path, skips the look).
            let (net, id) = (self.network.clone(), rec.id.clone());
            let _ = tokio::task::spawn_blocking(move || net.forget(&id)).await;
        }
        // Rename first, so that a crash half-way leaves no half-removed record behind. The
        // renamed directory is deleted after the answer: nothing reads it any more, and a
        // berthd that dies meanwhile finishes the deletion at its next start.
        let name = format!(".removing-{}", rec.id);
        let trash = self.s.data_root.join("containers").join(&name);
        std::fs::rename(&dir, &trash).map_err(io_err("remove the container"))?;
        self.trash.lock().expect("trash").insert(name.clone());
        let pending = self.trash.clone();
        tokio::spawn(async move {
            // The shim unmounts the root after it has told the exit (or fails to, when the
            // rename came first); its end of our connection closes when it is gone (it sends
            // nothing to a client that asked for nothing). The root and the files go only
            // then: they are nobody's any more, and the answer need not wait for them.
            if let Some(s) = shim_conn {
                shim_gone(s, Duration::from_secs(10)).await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                let _ = berth_shim::MountSpec::unmount(&trash.join("rootfs"));
                let _ = std::fs::remove_dir_all(&trash);
                pending.lock().expect("trash").remove(&name);
            })
            .await;
        });
        self.entries.lock().expect("entries").remove(&rec.id);
        // Its exec instances go with it (as with dockerd), or they would pile up for ever.
        self.execs
            .lock()
            .expect("execs")
            .retain(|_, x| x.container != rec.id);
        let _ = e.transition(Change::Removed);
        self.publish("destroy", &rec, &[]);
        Ok(())
    }

    /// Waits (at most `within`) for the removals that answered but are still deleting in the
    /// background: berthd's shutdown lets them finish, so that a stopped berthd leaves no
    /// `.removing-<id>` directory with a root file system still mounted (the next start would
    /// finish it, but there may be none). Whether none is left.
    pub async fn removals_done(&self, within: Duration) -> bool {
        let end = tokio::time::Instant::now() + within;
        while !self.trash.lock().expect("trash").is_empty() {
            if tokio::time::Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// `POST /containers/{id}/rename`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub fn rename(&self, name: &str, new: &str) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let new = crate::name::validate(new).map_err(|err| invalid(err.to_string()))?;
        let entries = self.entries.lock().expect("entries");
        if let Some(other) = entries.values().find(|x| x.record().name == new) {
            return Err(conflict(format!(
                "Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.record().id
            )));
        }
        let mut rec = e.rec.lock().expect("record lock");
        let old = rec.name.clone();
        rec.name = new;
        if let Err(err) = self.save_record(&rec) {
            rec.name = old;
            return Err(err);
        }
        let r = rec.clone();
        drop(rec);
        drop(entries);
        self.publish("rename", &r, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/{id}/update`: new resource limits (and restart policy), applied to
    /// the running container's cgroup and kept in its record for later starts.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn update(&self, name: &str, u: ResourceUpdate) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        let mut rec = e.record();
        let mut new = rec.host_config.clone();
        let set = |slot: &mut Option<i64>, v: Option<i64>| {
            if v.is_some() {
                *slot = v;
            }
        };
        set(&mut new.cpu_shares, u.cpu_shares);
        set(&mut new.memory, u.memory);
        set(&mut new.memory_swap, u.memory_swap);
        set(&mut new.memory_reservation, u.memory_reservation);
        set(&mut new.nano_cpus, u.nano_cpus);
        set(&mut new.cpu_quota, u.cpu_quota);
        set(&mut new.cpu_period, u.cpu_period);
        set(&mut new.pids_limit, u.pids_limit);
        if u.cpuset_cpus.is_some() {
            new.cpuset_cpus = u.cpuset_cpus.clone();
        }
        if u.cpuset_mems.is_some() {
            new.cpuset_mems = u.cpuset_mems.clone();
        }
        // NanoCpus and a CFS quota exclude each other: the newer one wins.
        if u.nano_cpus.is_some_and(|n| n > 0) {
            new.cpu_quota = Some(0);
            new.cpu_period = Some(0);
        }
        if let Some(r) = u.restart {
            new.restart_policy = Some(crate::model::container::RestartPolicyConfig {
                name: Some(r.name().to_string()),
                maximum_retry_count: Some(i64::from(r.max_retries())),
            });
        }
        let resources = crate::spec::resources(&new, new.privileged.unwrap_or(false))?;
        if u.restart.is_some_and(|r| r != RestartPolicy::No) && auto_remove(&rec) {
            return Err(invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        if e.view().active() {
            shim_call(
                &self.socket(&rec.id),
                &Request::Update {
                    resources: Box::new(resources),
                    restart: u.restart.map(RestartPolicy::to_shim),
                },
            )
            .await?;
        }
        rec.host_config = new;
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec.clone();
        self.publish("update", &rec, &[]);
        Ok(())
    }

    /// `docker container prune`: removes every stopped container (created or exited) whose
    /// labels match `labels` (`key` or `key=value`); returns their ids and the bytes freed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn prune(&self, labels: &[String]) -> Result<(Vec<ContainerId>, u64), EngineError> {
        let mut gone = Vec::new();
        let mut freed = 0;
        for e in self.all() {
            let rec = e.record();
            // The CRI's containers are the kubelet's to remove (their logs and exit codes
            // are what it reports), never a Docker client's prune.
            if crate::pods::in_cri_namespace(&rec.config) {
                continue;
            }
            if !matches!(
                e.view().state(),
                State::Created | State::Exited | State::Dead
            ) {
                continue;
            }
            let l = rec.config.labels.clone().unwrap_or_default();
            let matches = labels.iter().all(|f| match f.split_once('=') {
                Some((k, v)) => l.get(k).is_some_and(|x| x == v),
                None => l.contains_key(f),
            });
            if !matches {
                continue;
            }
            let size = self.size_rw(&rec.id);
            if self.remove(&rec.id, false).await.is_ok() {
                gone.push(rec.id);
                freed += size;
            }
        }
        Ok((gone, freed))
    }
}

/// `SIGTERM`, `TERM`, `15` → 15, from the runtime's signal table; an unknown signal is the
/// user's mistake.
pub fn parse_signal(s: &str) -> Result<i32, EngineError> {
    berth_shim::signal::parse(s).map_err(|e| invalid(e.to_string()))
}
