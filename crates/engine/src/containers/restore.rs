//! Re-adopting live shims after berthd starts, and the consistency check (`berth system check`).

use super::*;

impl Containers {
    /// Re-adopts the shims of containers that were running when berthd stopped.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn restore(self: &Arc<Self>) {
        self.refill_spare();
        let all: Vec<Arc<Entry>> = self
            .entries
            .lock()
            .expect("entries")
            .values()
            .cloned()
            .collect();
        let known: std::collections::BTreeSet<String> =
            all.iter().map(|e| e.record().id.to_string()).collect();
        let net = self.network.clone();
        let _ = tokio::task::spawn_blocking(move || net.reconcile(&known)).await;
        for e in all {
            let v = e.view();
            // A start cut short between plumbing the namespace and recording the attachment
            // left a namespace that `reconcile` keeps (the container exists); unless the
            // container runs, nothing else will release it.
            let id = e.record().id;
            let stopped = v.shim.as_ref().is_none_or(|s| s.status == Status::Exited);
            if stopped && self.network.netns_path(&id).exists() && self.attachment(&id).is_none() {
                let net = self.network.clone();
                let _ = tokio::task::spawn_blocking(move || net.forget(&id)).await;
            }
            let Some(st) = v.shim.clone() else {
                // Created with --rm but never started (its `run` was cut short): as dockerd
                // does at start-up, it goes.
                if auto_remove(&e.record()) {
                    let _ = self.remove_with_volumes(&e.record().id, true, true).await;
                }
                continue;
            };
            self.load_health(&e);
            if st.status == Status::Exited {
                if auto_remove(&e.record()) {
                    let _ = self.remove_with_volumes(&e.record().id, true, true).await;
                } else {
                    self.release_network(&e, 0).await;
                }
                continue;
            }
            let id = e.record().id;
            match UnixStream::connect(self.socket(&id)).await {
                Ok(_) => {
                    tracing::info!(container = %id, "re-adopted a running container");
                    if let Some(a) = self.attachment(&id) {
                        self.network.register_all(&Self::member(&e.record()), &a);
                    }
                    tokio::spawn(self.clone().monitor(e.clone(), 0));
                    self.watch_health(e.clone(), true);
                }
                Err(_) => {
                    // The shim is gone without writing a final state: it crashed or the
                    // machine rebooted. Record the container as exited.
                    let fresh = ShimState::load(&self.dir(&id).join("state.json")).ok();
                    let mut st = fresh.unwrap_or(st);
                    if st.status != Status::Exited {
                        st.status = Status::Exited;
                        st.exit_code = 255;
                        st.pid = 0;
                        st.error = "the container's shim exited unexpectedly".into();
                        st.finished_at = berth_shim::rfc3339(SystemTime::now());
                        let _ = st.save(&self.dir(&id).join("state.json"));
                        let _ = berth_shim::MountSpec::unmount(&self.dir(&id).join("rootfs"));
                    }
                    let _ = e.transition(Change::Reported {
                        state: Box::new(st),
                        exits: 0,
                    });
                    if auto_remove(&e.record()) {
                        let _ = self.remove_with_volumes(&id, true, true).await;
                    }
                }
            }
        }
    }

    /// The containers' invariants: each record's image is in the store; a container recorded
    /// as running has a live shim; a stopped one has no root file system mounted; every
    /// directory under `containers/` has a record. With `repair`: a container whose shim is
    /// gone is recorded as exited (as at start-up), a stale root mount is unmounted, and a
    /// directory without a record (an interrupted create) is removed when nothing is mounted
    /// in it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn check(&self, repair: bool) -> Vec<berth_image::store::Finding> {
        use berth_image::store::Finding;
        let mut out = Vec::new();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounted = |p: &Path| {
            let p = p.display().to_string();
            mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|m| m == p || m.starts_with(&format!("{p}/")))
        };
        let all: Vec<Arc<Entry>> = self
            .entries
            .lock()
            .expect("entries")
            .values()
            .cloned()
            .collect();
        for e in all {
            let rec = e.record();
            let subject = format!("container {}", &rec.id[..12.min(rec.id.len())]);
            if !self.images.has(&rec.image) {
                out.push(Finding::new(
                    "error",
                    subject.clone(),
                    format!("its image {} is not in the store", rec.image),
                ));
            }
            let st = e.view().shim;
            // A shim that has not reported its exit is alive (created, running, paused,
            // restarting), or should be.
            let live = st.as_ref().is_some_and(|s| s.status != Status::Exited);
            let rootfs = self.dir(&rec.id).join("rootfs");
            if live {
                if UnixStream::connect(self.socket(&rec.id)).await.is_err() {
                    let mut f = Finding::new(
                        "repairable",
                        subject,
                        "recorded as live, but its shim is gone",
                    );
                    if repair {
                        let mut st = st.expect("live means a state");
                        st.status = Status::Exited;
                        st.exit_code = 255;
                        st.pid = 0;
                        st.error = "the container's shim exited unexpectedly".into();
                        st.finished_at = berth_shim::rfc3339(SystemTime::now());
                        let _ = st.save(&self.dir(&rec.id).join("state.json"));
                        let _ = berth_shim::MountSpec::unmount(&rootfs);
                        let _ = e.transition(Change::Reported {
                            state: Box::new(st),
                            exits: 0,
                        });
                        f.repaired = true;
                    }
                    out.push(f);
                }
            } else if mounted(&rootfs) {
                let mut f = Finding::new(
                    "repairable",
                    subject,
                    "stopped, but its root file system is still mounted",
                );
                if repair && berth_shim::MountSpec::unmount(&rootfs).is_ok() {
                    f.repaired = true;
                }
                out.push(f);
            }
        }
        // Under the entries lock, so that a create (which holds it while it writes the
        // record) is never mistaken for a leftover.
        let entries = self.entries.lock().expect("entries");
        for d in std::fs::read_dir(self.s.data_root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = d.file_name().to_string_lossy().to_string();
            if self.trash.lock().expect("trash").contains(&name) {
                // Being deleted right now, by this berthd.
                continue;
            }
            let problem = if name.starts_with(".removing-") {
                "a removal cut short"
            } else if entries.contains_key(name.as_str()) || d.path().join("config.json").is_file()
            {
                continue;
            } else {
                "no record (an interrupted create)"
            };
            let mut f = Finding::new("repairable", format!("container directory {name}"), problem);
            if repair && !mounted(&d.path()) && std::fs::remove_dir_all(d.path()).is_ok() {
                f.repaired = true;
            }
            out.push(f);
        }
        out
    }
}
