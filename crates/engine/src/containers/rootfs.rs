//! Work on a container's root file system, mounted or not: archive copies, export and commit.

use super::*;

impl Containers {
    /// Runs `f` on the container's root file system: the mounted one of a running container
    /// (frozen meanwhile, so that its processes cannot change paths under `f`), or one mounted
    /// for the occasion. Without its volumes and binds (what `export` and `commit` see).
    pub async fn with_root<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        freeze: bool,
        f: impl FnOnce(&Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        self.root_view(name, freeze, f).await
    }

    /// Runs `f` on the container's file system as its processes see it, volumes and binds
    /// included (what `cp` sees). A path under one of the container's bind or volume mounts
    /// is looked up in that mount's host directory (the deepest mount holding the path), with
    /// the same in-root resolution: a symlink in a volume resolves inside the volume. Other
    /// paths are looked up in the container's root. A running container is frozen meanwhile.
    pub async fn with_view<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
        f: impl FnOnce(&Path, &Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let rec = self.find(name)?.record();
        let clean: PathBuf = Path::new("/").join(path).components().collect();
        let mut best: Option<(usize, PathBuf, PathBuf)> = None;
        for m in self.oci_mounts(&rec)? {
            if m["type"] != "bind" {
                continue;
            }
            let (Some(src), Some(dst)) = (m["source"].as_str(), m["destination"].as_str()) else {
                continue;
            };
            if let Ok(rest) = clean.strip_prefix(dst) {
                let depth = Path::new(dst).components().count();
                if best.as_ref().is_none_or(|(d, _, _)| depth > *d) {
                    best = Some((depth, PathBuf::from(src), Path::new("/").join(rest)));
                }
            }
        }
        // The generated /etc files are bind mounts of files in the container's directory:
        // the container sees those, not the image's placeholders.
        if best.is_none() {
            let dir = self.dir(&rec.id);
            for f in MOUNT_POINTS {
                let file = Path::new(f).file_name().expect("a file name");
                if clean == Path::new("/").join(f) && dir.join(file).is_file() {
                    best = Some((2, dir.clone(), Path::new("/").join(file)));
                }
            }
        }
        // `dir/.` (docker's "the contents of") follows a link that `dir` is: keep the dot.
        let dot = path.as_os_str().as_encoded_bytes().ends_with(b"/.");
        if let Some((_, src, rest)) = best {
            let rest = if dot { rest.join(".") } else { rest };
            // Frozen too: the container must not swap a directory of the volume for a
            // symlink while it is read.
            return self.root_view(name, true, move |_| f(&src, &rest)).await;
        }
        let p = if dot { clean.join(".") } else { clean };
        self.root_view(name, true, move |root| f(root, &p)).await
    }

    pub(super) async fn root_view<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        freeze: bool,
        f: impl FnOnce(&Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let dir = self.dir(&rec.id);
        let state = e.view().state();
        if matches!(state, State::Running | State::Paused | State::Restarting) {
            let sock = self.socket(&rec.id);
            // Fail closed: a container that could not be frozen could swap a directory for a
            // symlink between the resolution of a path and its use, so nothing is done.
            let mut thaw = false;
            if freeze && state == State::Running {
                match shim_call(&sock, &Request::Pause).await {
                    Ok(()) => thaw = true,
                    // Paused meanwhile by its user: frozen all the same.
                    Err(_) if e.view().state() == State::Paused => {}
                    Err(err) => {
                        return Err(unavailable(format!(
                            "the container could not be frozen for the copy, so nothing was \
                             copied: {}",
                            err.message
                        )))
                    }
                }
            }
            let root = dir.join("rootfs");
            let r = tokio::task::spawn_blocking(move || f(&root))
                .await
                .map_err(|err| unavailable(err.to_string()));
            if thaw {
                let _ = shim_call(&sock, &Request::Resume).await;
            }
            return r?;
        }
        self.with_stopped_root(&rec, f).await
    }

    /// Runs `f` on the root of a container that does not run: its image's layers and its
    /// writable layer mounted at a private place for the duration.
    pub(super) async fn with_stopped_root<T: Send + 'static>(
        &self,
        rec: &Record,
        f: impl FnOnce(&Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        // The last run's shim may still be unmounting the root (it tells the exit first).
        old_shim_gone(&self.socket(&rec.id), Duration::from_secs(2)).await;
        let dir = self.dir(&rec.id);
        let target = self.s.exec_root.join("mnt").join(&rec.id[..24]);
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&target, &upper, &work] {
            std::fs::create_dir_all(d).map_err(io_err("mount the container's root"))?;
        }
        let mounts = self
            .images
            .rootfs_mounts(&rec.image, &upper, &work, &target)?;
        tokio::task::spawn_blocking(move || {
            let mut done = Vec::new();
            let mut res = Ok(());
            for m in mounts.into_iter().map(mount_spec) {
                if let Err(err) = m.mount() {
                    res = Err(unavailable(format!("mount the container's root: {err}")));
                    break;
                }
                done.push(m.target.clone());
            }
            let out = res.and_then(|_| f(&target));
            for t in done.iter().rev() {
                let _ = berth_shim::MountSpec::unmount(t);
            }
            let _ = std::fs::remove_dir(&target);
            out
        })
        .await
        .map_err(|err| unavailable(err.to_string()))?
    }

    /// `docker export`: the container's file system as a tar at `out`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn export(self: &Arc<Self>, name: &str, out: PathBuf) -> Result<(), EngineError> {
        self.with_root(name, false, move |root| {
            let f = std::fs::File::create(&out).map_err(io_err("export"))?;
            Ok(berth_image::export::export(
                root,
                std::io::BufWriter::new(f),
            )?)
        })
        .await
    }

    /// `POST /commit`: a new image from the container's image and its writable layer.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub fn commit(
        &self,
        name: &str,
        repo_tag: Option<&str>,
        comment: &str,
        author: &str,
        changes: &[String],
    ) -> Result<String, EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let c = &rec.config;
        let run = serde_json::json!({
            "User": c.user, "Env": c.env, "Entrypoint": c.entrypoint, "Cmd": c.cmd,
            "WorkingDir": c.working_dir, "Labels": c.labels, "StopSignal": c.stop_signal,
            "ExposedPorts": c.exposed_ports.as_ref().map(|p| p.iter().map(|k| (k.clone(), serde_json::json!({}))).collect::<serde_json::Map<_, _>>()),
        });
        let id = self.images.commit(
            &rec.image,
            &self.dir(&rec.id).join("upper"),
            run,
            changes,
            &berth_image::store::CommitNote { comment, author },
            repo_tag,
        )?;
        self.publish("commit", &rec, &[]);
        Ok(id)
    }
}
