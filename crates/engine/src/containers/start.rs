//! `start`: the OCI bundle and shim configuration, the shim, and the monitor that follows the shim until the container exits for good.

use super::*;

/// How long after a start the next spare shim is made, unless the container exits sooner.
const SPARE_DELAY: Duration = Duration::from_millis(20);

impl Containers {
    /// `POST /containers/{id}/start`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let (res, removal) = {
            let _op = e.op.lock().await;
            self.start_and_tell(&e).await
        };
        // As dockerd: an --rm container whose start failed is gone before the failure is
        // answered (the docker CLI's wait for its removal then ends before the CLI gives up
        // on it). The removal takes the container's lock, released above.
        if let Some(r) = removal {
            let _ = r.await;
        }
        res
    }

    pub(super) async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<(), EngineError> {
        self.start_and_tell(e).await.0
    }

    /// Starts; on failure records it, and removes an --rm container in a task of its own
    /// (returned, for a caller that can wait for it without the container's lock).
    async fn start_and_tell(
        self: &Arc<Self>,
        e: &Arc<Entry>,
    ) -> (Result<(), EngineError>, Option<tokio::task::JoinHandle<()>>) {
        let mut removal = None;
        let res = self.start_inner(e).await;
        // The next start's shim, made once this one is done and its container has exited or
        // run for a moment: the spare's exec and start-up (glibc's, before it can make itself
        // idle) would otherwise compete, on a machine of two cores, with this start and with
        // a short container's exit.
        let (me, watch) = (self.clone(), e.watch());
        tokio::spawn(async move {
            wait_for(&watch, |v| v.state() != State::Running, SPARE_DELAY).await;
            me.refill_spare();
        });
        if let Err(err) = &res {
            if err.kind != crate::error::Kind::NotModified
                && err.kind != crate::error::Kind::Conflict
            {
                // Waiting attach clients get their stream closed; the failure is recorded
                // as Docker records it (exit code 127 for a missing program, 126 when it
                // cannot run, 128 otherwise, and the error), and an --rm container goes
                // away. A container that never ran stays `created`, as on dockerd (whose
                // state is "exited" only once a start has happened).
                e.attach_waiters.lock().expect("waiters").clear();
                let rec = e.record();
                let mut st = e.view().shim.unwrap_or_else(|| failed_state(err));
                st.status = if st.started_at.is_empty() {
                    Status::Created
                } else {
                    Status::Exited
                };
                st.pid = 0;
                st.exit_code = err.start_exit_code();
                st.error = err.message.clone();
                let _ = st.save(&self.dir(&rec.id).join("state.json"));
                let _ = e.transition(Change::Reported {
                    state: Box::new(st),
                    exits: 1,
                });
                self.publish(
                    "die",
                    &rec,
                    &[("exitCode", err.start_exit_code().to_string())],
                );
                if auto_remove(&rec) {
                    let me = self.clone();
                    removal = Some(tokio::spawn(async move {
                        let _ = me.remove_with_volumes(&rec.id, true, true).await;
                    }));
                } else {
                    // A start that failed after the network was attached gives it back, as a
                    // stop does: its address, veth, namespace and published ports.
                    self.detach_network(&rec.id).await;
                }
            }
        }
        (res, removal)
    }

    pub(super) async fn start_inner(self: &Arc<Self>, e: &Arc<Entry>) -> Result<(), EngineError> {
        let rec = e.record();
        // As dockerd: starting a running (or restarting) container is not an error, just
        // nothing to do; anything else the lifecycle refuses is a conflict in its words.
        let st = e.view().state();
        if matches!(st, State::Running | State::Restarting) {
            return Err(not_modified());
        }
        st.on(crate::lifecycle::Event::Start, &rec.name)
            .map_err(|err| conflict(err.0))?;
        // The last run's shim reports the exit before it writes its last state and removes
        // its socket: a start right after `wait` (sooner still with the spare shim) must not
        // have the new shim's socket and state file removed or overwritten by the old one.
        old_shim_gone(&self.socket(&rec.id), Duration::from_secs(2)).await;
        let dir = self.dir(&rec.id);
        let (upper, work, rootfs, bundle) = (
            dir.join("upper"),
            dir.join("work"),
            dir.join("rootfs"),
            dir.join("bundle"),
        );
        for d in [&upper, &work, &rootfs, &bundle] {
            std::fs::create_dir_all(d).map_err(io_err("create the container's directories"))?;
        }
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let joined = match rec
            .host_config
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            Some(t) => Some(self.joined_netns(t, &rec.id)?),
            None => None,
        };
        let joined_ns = self.joined_namespaces(&rec)?;
        let attachment = if self.networks_of(&rec).is_empty() {
            None
        } else {
            Some(self.ensure_attached(&rec).await?)
        };
        // Legacy links: the linked containers' variables and hosts entries (copies of the
        // settings only for a container that has links).
        let (config, host_config) = match self.legacy_links(&rec)? {
            None => (
                std::borrow::Cow::Borrowed(&rec.config),
                std::borrow::Cow::Borrowed(&rec.host_config),
            ),
            Some(links) => {
                let (mut config, mut host_config) = (rec.config.clone(), rec.host_config.clone());
                host_config
                    .extra_hosts
                    .get_or_insert_with(Vec::new)
                    .extend(links.hosts);
                let own = config.env.take().unwrap_or_default();
                config.env = Some(links.env.into_iter().chain(own).collect());
                (
                    std::borrow::Cow::Owned(config),
                    std::borrow::Cow::Owned(host_config),
                )
            }
        };
        write_etc_files(
            &dir,
            &hostname,
            &host_config,
            attachment.as_ref(),
            &self.network.config().dns,
        )?;
        if let Some((_, target_dir)) = &joined {
            // The joined container's hosts and resolv.conf, as docker shares them.
            for f in ["hosts", "resolv.conf"] {
                let _ = std::fs::copy(target_dir.join(f), dir.join(f));
            }
        }
        self.populate_volumes(&rec).await?;
        let user_mounts = self.oci_mounts(&rec)?;
        let mounts = self
            .images
            .rootfs_mounts(&rec.image, &upper, &work, &rootfs)?;
        let layers = self.images.layer_dirs(&rec.image, &upper)?;
        let spec = crate::spec::build(
            &rec.id,
            &config,
            &host_config,
            &rec.path,
            &rec.args,
            &crate::spec::Paths {
                rootfs: &rootfs,
                dir: &dir,
                layers: &layers,
                init: Some(&self.s.shim_bin),
                netns: attachment
                    .as_ref()
                    .map(|a| a.netns.as_path())
                    .or(joined.as_ref().map(|(p, _)| p.as_path())),
                joined: &joined_ns,
                mounts: &user_mounts,
                cgroup_driver: self.s.cgroup_driver,
            },
        )?;
        write_run_file(
            &bundle.join("config.json"),
            &serde_json::to_vec(&spec).expect("spec serialises"),
        )?;
        let logs =
            crate::logconfig::settings(&rec.host_config, self.s.log_max_size, self.s.log_max_file)?;
        if let Some(parent) = logs.cri_path.as_deref().and_then(Path::parent) {
            std::fs::create_dir_all(parent).map_err(io_err("create the log's directory"))?;
        }
        let cfg = ShimConfig {
            id: rec.id.to_string(),
            bundle: bundle.clone(),
            runtime_root: self.s.exec_root.join("runtime"),
            socket: self.socket(&rec.id),
            state_file: dir.join("state.json"),
            rootfs_mounts: mounts.into_iter().map(mount_spec).collect(),
            log: berth_shim::LogConfig {
                path: logs
                    .cri_path
                    .clone()
                    .unwrap_or_else(|| dir.join(format!("{}-json.log", rec.id))),
                max_size: logs.max_size,
                max_file: logs.max_file,
                disabled: logs.disabled,
                format: if logs.cri_path.is_some() {
                    berth_shim::LogFormat::Cri
                } else {
                    berth_shim::LogFormat::JsonFile
                },
            },
            restart: restart_policy(&rec.host_config)?.to_shim(),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            tty: rec.config.tty.unwrap_or(false),
            autostart: false,
            cgroup_layout: self.s.cgroup_layout,
            systemd_cgroup: self.s.cgroup_driver == crate::cgroups::CgroupDriver::Systemd,
            // berthd's level: the shim logs its spans at debug and trace only.
            log_level: tracing::level_filters::LevelFilter::current()
                .to_string()
                .to_lowercase(),
        };
        write_run_file(
            &dir.join("shim.json"),
            &serde_json::to_vec_pretty(&cfg).expect("shim config serialises"),
        )?;
        let _ = std::fs::remove_file(dir.join("state.json"));
        // The shim reports `ok <pid>` or `error: ...` on its stdout once the container is
        // created, then detaches.
        // Only the first line counts: the container's init, forked from the shim before it
        // answered, holds a copy of the pipe until it execs.
        let mut line = String::new();
        if let Some(out) = self.use_spare(&dir.join("shim.json")) {
            let _ = BufReader::new(out).read_line(&mut line).await;
        } else {
            let mut child = tokio::process::Command::new(&self.s.shim_bin)
                .arg(dir.join("shim.json"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| unavailable(format!("run {}: {e}", self.s.shim_bin.display())))?;
            if let Some(out) = child.stdout.take() {
                let _ = BufReader::new(out).read_line(&mut line).await;
            }
            // The first process exits right after forking the shim proper.
            let _ = child.wait().await;
        }
        let line = line.trim().to_string();
        if !line.starts_with("ok") {
            let (msg, errno) = shim_failure(&line);
            return Err(start_error(msg, errno));
        }
        let gen = e
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        // Attach clients that were waiting for the container get connected before it runs,
        // so that they see all of its output.
        let waiters: Vec<AttachWaiter> =
            std::mem::take(&mut *e.attach_waiters.lock().expect("waiters"));
        for w in waiters {
            let r = shim_stream(&self.socket(&rec.id), &w.req).await;
            let _ = w.tx.send(r);
        }
        let monitor = tokio::spawn(self.clone().monitor(e.clone(), gen));
        if let Err(err) = shim_call(&self.socket(&rec.id), &Request::Start).await {
            // The shim stays to report the failure; stop it.
            let _ = shim_call(
                &self.socket(&rec.id),
                &Request::Stop {
                    signal: 9,
                    timeout: 0,
                },
            )
            .await;
            // Not the monitor itself: it may be waiting for this operation's lock (--rm).
            wait_for(
                &e.watch(),
                |v| v.state() == State::Exited,
                Duration::from_secs(10),
            )
            .await;
            drop(monitor);
            return Err(start_error(&err.message, err.errno));
        }
        // The subscription may lag: show the start at once.
        wait_for(
            &e.watch(),
            |v| v.state() != State::Created,
            Duration::from_secs(5),
        )
        .await;
        self.publish_volumes("mount", &rec);
        self.publish("start", &rec, &[]);
        self.watch_health(e.clone(), false);
        Ok(())
    }

    /// Follows a shim's state until it exits; then finishes the container's run.
    pub(super) async fn monitor(self: Arc<Self>, e: Arc<Entry>, gen: u64) {
        let id = e.record().id;
        let sock = self.socket(&id);
        let mut last_exits = None::<u64>;
        let mut final_seen = false;
        if let Ok(mut s) = UnixStream::connect(&sock).await {
            let mut line = serde_json::to_vec(&Request::Subscribe).expect("request");
            line.push(b'\n');
            if s.write_all(&line).await.is_ok() {
                let mut lines = BufReader::new(s).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    // The first line is a reply carrying the state; later ones are states.
                    let st = match serde_json::from_str::<ShimState>(&l) {
                        Ok(s) => Some(s),
                        Err(_) => serde_json::from_str::<Reply>(&l).ok().and_then(|r| r.state),
                    };
                    let Some(st) = st else { continue };
                    let new_exits = match last_exits {
                        Some(n) => st.exits.saturating_sub(n),
                        None => 0,
                    };
                    last_exits = Some(st.exits);
                    final_seen = st.status == Status::Exited;
                    let rec = e.record();
                    if new_exits > 0 {
                        self.publish("die", &rec, &[("exitCode", st.exit_code.to_string())]);
                        if final_seen {
                            self.publish_volumes("unmount", &rec);
                        }
                    }
                    let restarted = st.status == Status::Running
                        && e.view()
                            .shim
                            .as_ref()
                            .is_some_and(|p| p.status == Status::Restarting);
                    let _ = e.transition(Change::Reported {
                        state: Box::new(st),
                        exits: new_exits,
                    });
                    if restarted {
                        self.publish("restart", &rec, &[]);
                    }
                }
            }
        }
        if e.generation.load(std::sync::atomic::Ordering::SeqCst) != gen && gen != 0 {
            return;
        }
        if !final_seen {
            // The shim went away without telling us the end: read what it recorded.
            let st = ShimState::load(&self.dir(&id).join("state.json")).ok();
            if let Some(mut st) = st {
                if st.status != Status::Exited {
                    st.status = Status::Exited;
                    st.exit_code = 255;
                    st.error = "the container's shim exited unexpectedly".into();
                }
                let exits = last_exits.map_or(1, |n| st.exits.saturating_sub(n).max(1));
                let _ = e.transition(Change::Reported {
                    state: Box::new(st),
                    exits,
                });
            }
            let rec = e.record();
            let code = e.view().shim.map_or(255, |s| s.exit_code);
            self.publish("die", &rec, &[("exitCode", code.to_string())]);
            self.publish_volumes("unmount", &rec);
        }
        let rec = e.record();
        if auto_remove(&rec) && !e.view().removing {
            if let Err(err) = self.remove_with_volumes(&rec.id, true, true).await {
                if err.kind != crate::error::Kind::NotFound {
                    tracing::warn!(container = %rec.id, error = %err, "auto-remove failed");
                }
            }
        } else {
            self.release_network(&e, gen).await;
        }
    }
}

/// The image store's mount as the shim (and [`berth_shim::MountSpec::mount`]) takes it.
pub(super) fn mount_spec(m: berth_image::store::Mount) -> berth_shim::MountSpec {
    berth_shim::MountSpec {
        fstype: m.fstype,
        source: m.source,
        target: m.target,
        options: m.options,
    }
}

/// The shim's `error: <message>` or `error(<errno>): <message>` line.
fn shim_failure(line: &str) -> (&str, Option<i32>) {
    if let Some(rest) = line.strip_prefix("error(") {
        if let Some((n, msg)) = rest.split_once("): ") {
            if let Ok(n) = n.parse() {
                return (msg, Some(n));
            }
        }
    }
    (line.strip_prefix("error: ").unwrap_or(line), None)
}

/// dockerd's error for a container that could not be created: a bad request when the
/// program is missing or may not be run (the user's mistake), a server error otherwise.
fn start_error(msg: &str, errno: Option<i32>) -> EngineError {
    let m =
        format!("failed to create task for container: OCI runtime create failed: {msg}: unknown");
    match crate::error::start_exit_code(errno) {
        127 | 126 => invalid(m),
        _ => unavailable(m),
    }
    .with_errno(errno)
}

impl Containers {
    /// A volume `mount` or `unmount` event for each volume of the container, as dockerd
    /// sends when it starts and stops.
    fn publish_volumes(&self, action: &str, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m.typ == "volume") {
            let Some(name) = &m.name else { continue };
            let mut attrs = BTreeMap::from([
                ("container".to_string(), rec.id.to_string()),
                ("driver".to_string(), "local".to_string()),
            ]);
            if action == "mount" {
                attrs.insert("destination".into(), m.destination.clone());
                attrs.insert("propagation".into(), m.propagation.clone());
                attrs.insert("read/write".into(), m.rw.to_string());
            }
            self.events
                .publish(crate::events::ObjectType::Volume, action, name, attrs);
        }
    }
}

/// The restart policy of a host config, checked.
pub(super) fn restart_policy(hc: &HostConfig) -> Result<RestartPolicy, EngineError> {
    let p = hc.restart_policy.clone().unwrap_or_default();
    let name = p.name.map(|n| n.to_string()).unwrap_or_default();
    RestartPolicy::parse(&name, p.maximum_retry_count.unwrap_or(0))
}
