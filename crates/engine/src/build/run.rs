//! RUN: the step's command in a container on the stage's root, committed as a layer.

use super::*;

impl Builder {
    pub(super) fn command_argv(&self, st: &St, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_step(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        st: &mut St,
        command: &Command,
        mounts: &[steps::RunMount],
        network: Option<&str>,
        heredocs: &[dockerfile::Heredoc],
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let Some(image) = st.image.clone() else {
            return Err(invalid(
                "RUN on a stage built from scratch: there is no shell to run it with",
            ));
        };
        let argv: Vec<String> = match command {
            Command::Exec(v) => v.clone(),
            Command::Shell(text) => {
                let mut v = st.shell();
                let only_heredoc = heredocs.len() == 1
                    && text
                        .trim()
                        .trim_start_matches("<<")
                        .trim_start_matches('-')
                        .trim_matches(['"', '\''])
                        == heredocs[0].name;
                if only_heredoc {
                    // `RUN <<EOF`: the body is the script.
                    v.push(heredocs[0].content.clone());
                } else {
                    // The shell reads the here-documents itself.
                    let mut script = text.clone();
                    for h in heredocs {
                        script.push('\n');
                        script.push_str(&h.content);
                        if !h.content.ends_with('\n') {
                            script.push('\n');
                        }
                        script.push_str(&h.name);
                    }
                    v.push(script);
                }
                v
            }
        };
        let run_args = st.run_args();
        let cmd_text = match command {
            Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
            Command::Shell(_) => argv.join(" "),
        };
        let created_by = if run_args.is_empty() {
            cmd_text.clone()
        } else {
            format!(
                "|{} {} {}",
                run_args.len(),
                run_args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                cmd_text
            )
        };
        let net = network
            .map(str::to_string)
            .or_else(|| job.opts.network.clone())
            .filter(|n| n != "default")
            .unwrap_or_else(|| "bridge".into());
        // Mounts: cache directories of berth's, tmpfs, binds from the context or a stage.
        let vars = st.vars();
        let mut binds = Vec::new();
        let mut tmpfs = HashMap::new();
        let mut skip: Vec<String> = Vec::new();
        let mut stage_roots: Vec<RootMount> = Vec::new();
        let mut scratch_dirs: Vec<ScratchDir> = Vec::new();
        let mut key_extra = format!("net={net}");
        for m in mounts {
            let opt = |k: &str| {
                m.options
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone().unwrap_or_default())
            };
            let target = shell::expand(&m.target, job.escape, &vars).map_err(|e| invalid(e.0))?;
            if !target.starts_with('/') {
                return Err(invalid(format!(
                    "--mount target {target:?} must be absolute"
                )));
            }
            skip.push(target.trim_start_matches('/').to_string());
            key_extra.push_str(&format!(";{}:{target}:{:?}", m.typ, m.options));
            match m.typ.as_str() {
                "cache" => {
                    let id = opt("id").unwrap_or_else(|| target.clone());
                    let h = hex::encode(sha2::Sha256::digest(id.as_bytes()));
                    let dir = self.cache_mounts().join(&h[..24]);
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir).map_err(|e| unavailable(e.to_string()))?;
                        let mode = opt("mode")
                            .and_then(|m| u32::from_str_radix(&m, 8).ok())
                            .unwrap_or(0o755);
                        let uid = opt("uid").and_then(|x| x.parse().ok()).unwrap_or(0);
                        let gid = opt("gid").and_then(|x| x.parse().ok()).unwrap_or(0);
                        let _ = std::os::unix::fs::chown(&dir, Some(uid), Some(gid));
                        let _ = std::fs::set_permissions(
                            &dir,
                            std::os::unix::fs::PermissionsExt::from_mode(mode),
                        );
                    }
                    binds.push(format!("{}:{target}", dir.display()));
                }
                "tmpfs" => {
                    let size = opt("size").map(|s| format!("size={s}")).unwrap_or_default();
                    tmpfs.insert(target, size);
                }
                "bind" => {
                    let src = opt("source").or_else(|| opt("src")).unwrap_or_default();
                    let rel = buildfs::clean_rel(&src).ok_or_else(|| {
                        invalid(format!(
                            "forbidden path outside the build context: {src} ()"
                        ))
                    })?;
                    let rw = opt("rw").is_some() || opt("readwrite").is_some();
                    let host = match opt("from") {
                        Some(f) => {
                            let f = shell::expand(&f, job.escape, &job.meta)
                                .map_err(|e| invalid(e.0))?;
                            let id = self.image_of_from(job, idx, &f, out).await?;
                            let images = self.images.clone();
                            let dir = self.scratch();
                            let rm = tokio::task::spawn_blocking(move || {
                                RootMount::read_only(&images, Some(&id), dir)
                            })
                            .await
                            .map_err(|e| unavailable(e.to_string()))??;
                            let p = resolved(&rm.root, &rel)?;
                            stage_roots.push(rm);
                            p
                        }
                        None => {
                            key_extra.push_str(&format!("@{}", dir_hash(&job.context.join(&rel))?));
                            let p = resolved(&job.context, &rel)?;
                            if rw {
                                // The context is kept for later builds: a writable bind gets
                                // a copy, and what the step writes there is thrown away.
                                let copy = self.scratch();
                                let srcs = buildfs::sources(
                                    &job.context,
                                    &[rel.display().to_string()],
                                    &|_| false,
                                )?;
                                let mut es = Vec::new();
                                let mut at = copy.clone();
                                for s in &srcs {
                                    let dest = if s.is_dir {
                                        PathBuf::from("/")
                                    } else {
                                        let name = s
                                            .rel
                                            .file_name()
                                            .map(PathBuf::from)
                                            .unwrap_or_else(|| "file".into());
                                        at = copy.join(&name);
                                        Path::new("/").join(name)
                                    };
                                    buildfs::entries(s, &dest, None, &|_| false, &mut es)?;
                                }
                                std::fs::create_dir_all(&copy)
                                    .map_err(|e| unavailable(e.to_string()))?;
                                buildfs::write(&copy, &es, (0, 0))?;
                                scratch_dirs.push(ScratchDir(copy.clone()));
                                at
                            } else {
                                p
                            }
                        }
                    };
                    binds.push(format!(
                        "{}:{target}:{}",
                        host.display(),
                        if rw { "rw" } else { "ro" }
                    ));
                }
                "secret" => return Err(invalid(
                    "RUN --mount=type=secret: berth's builder takes no secrets yet (no --secret)",
                )),
                other => return Err(invalid(format!("unsupported mount type {other:?}"))),
            }
        }
        let key = self.key(st, &created_by, &key_extra);
        if self.reuse(job, st, &key, out) {
            return Ok(());
        }
        let mut env = st.env_list();
        for (k, v) in &run_args {
            env.push(format!("{k}={v}"));
        }
        let user = st
            .config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let body = CreateRequest {
            config: ContainerConfig {
                image: Some(image.clone()),
                cmd: Some(argv),
                entrypoint: Some(vec![]),
                env: Some(env),
                working_dir: Some(st.workdir()),
                user: (!user.is_empty()).then_some(user),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
            host_config: Some(HostConfig {
                network_mode: Some(net),
                extra_hosts: (!job.opts.extra_hosts.is_empty())
                    .then(|| job.opts.extra_hosts.clone()),
                binds: (!binds.is_empty()).then_some(binds),
                tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
                ..Default::default()
            }),
            networking_config: None,
        };
        let (cid, _warnings) = self.containers.create(None, body)?;
        let _ = out.send(Message::Stream(format!(
            " ---> Running in {}\n",
            short(&cid)
        )));
        let result = self.run_container(&cid, out).await;
        let code = match result {
            Ok(c) => c,
            Err(e) => {
                let _ = self.containers.remove(&cid, true).await;
                return Err(e);
            }
        };
        drop(stage_roots);
        drop(scratch_dirs);
        if code != 0 {
            if job.opts.force_remove {
                let _ = self.containers.remove(&cid, true).await;
            }
            return Err(unavailable(format!(
                "The command '{cmd_text}' returned a non-zero code: {code}"
            )));
        }
        let (dir, _) = self.containers.paths(&cid);
        let images = self.images.clone();
        let cfg = Value::Object(st.config.clone());
        let history = json!({"created_by": created_by});
        let id = tokio::task::spawn_blocking(move || {
            let mut skip: Vec<&str> = skip.iter().map(String::as_str).collect();
            skip.extend(crate::model::container::MOUNT_POINTS);
            images.commit_step(Some(&image), Some(&dir.join("upper")), cfg, history, &skip)
        })
        .await
        .map_err(|e| unavailable(e.to_string()))??;
        if job.opts.remove || job.opts.force_remove {
            self.containers.remove(&cid, true).await?;
            let _ = out.send(Message::Stream(format!(
                "Removing intermediate container {}\n",
                short(&cid)
            )));
        }
        self.adopt(st, key, id, out);
        Ok(())
    }

    /// Starts the created container with its output attached; returns its exit code.
    pub(super) async fn run_container(
        self: &Arc<Self>,
        cid: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<i64, EngineError> {
        // Queued before the start, so that no output is missed.
        let attach = self.containers.attach_at_start(cid)?;
        self.containers.start(cid).await?;
        let mut stream = attach
            .await
            .map_err(|_| unavailable("the step's container went away"))??;
        let mut hdr = [0u8; 8];
        while stream.read_exact(&mut hdr).await.is_ok() {
            let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            let mut buf = vec![0u8; len];
            if stream.read_exact(&mut buf).await.is_err() {
                break;
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            // As dockerd's classic builder: a step's stderr in red (docker-py and the CLI
            // pass the escapes through).
            let text = if hdr[0] == 2 {
                format!("\x1b[91m{text}\x1b[0m")
            } else {
                text
            };
            let _ = out.send(Message::Stream(text));
        }
        self.containers
            .wait(cid, crate::model::WaitCondition::NotRunning)
            .await
    }
}
