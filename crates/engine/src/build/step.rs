//! One step of a stage: the metadata instructions, committed as image configs, and the dispatch to RUN and COPY/ADD.

use super::*;

impl Builder {
    /// A metadata step: a new config, no layer.
    pub(super) async fn meta_commit(
        &self,
        job: &Job,
        st: &mut St,
        history: Value,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        self.meta_commit_keyed(job, st, history, "", out).await
    }

    /// [`Builder::meta_commit`] with more in the key than the config (ARG's values).
    pub(super) async fn meta_commit_keyed(
        &self,
        job: &Job,
        st: &mut St,
        history: Value,
        key_extra: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let created_by = history["created_by"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = self.key(st, &created_by, key_extra);
        if self.reuse(job, st, &key, out) {
            return Ok(());
        }
        let images = self.images.clone();
        let base = st.image.clone();
        let cfg = Value::Object(st.config.clone());
        let id = tokio::task::spawn_blocking(move || {
            images.commit_step(base.as_deref(), None, cfg, history, &[])
        })
        .await
        .map_err(|e| unavailable(e.to_string()))??;
        self.adopt(st, key, id, out);
        Ok(())
    }

    pub(super) async fn step(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        st: &mut St,
        step: &Step,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let esc = job.escape;
        let vars = st.vars();
        let ex = |t: &str| shell::expand(t, esc, &vars).map_err(|e| invalid(e.0));
        let nop = |what: String| json!({"created_by": format!("/bin/sh -c #(nop) {what}")});
        match step {
            Step::Env(text) => {
                let pairs = shell::pairs(text, esc, &vars, true).map_err(|e| invalid(e.0))?;
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| need_equals(&k))?;
                    shown.push(format!("{k}={v}"));
                    st.set_env(&k, &v);
                }
                self.meta_commit(job, st, nop(format!(" ENV {}", shown.join(" "))), out)
                    .await
            }
            Step::Label(text) => {
                let pairs = shell::pairs(text, esc, &vars, true).map_err(|e| invalid(e.0))?;
                let mut labels = st
                    .config
                    .get("Labels")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| need_equals(&k))?;
                    shown.push(format!("{k}={v}"));
                    labels.insert(k, json!(v));
                }
                st.config.insert("Labels".into(), Value::Object(labels));
                self.meta_commit(job, st, nop(format!(" LABEL {}", shown.join(" "))), out)
                    .await
            }
            Step::Arg(text) => {
                let pairs = shell::pairs(text, esc, &vars, false).map_err(|e| invalid(e.0))?;
                let mut shown = Vec::new();
                for (k, default) in pairs {
                    job.consumed.lock().expect("consumed").insert(k.clone());
                    let value = job
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| job.meta.get(&k).cloned());
                    st.args.retain(|(n, _)| n != &k);
                    match value {
                        Some(v) => {
                            shown.push(format!("{k}={v}"));
                            st.args.push((k, v));
                        }
                        None => shown.push(k),
                    }
                }
                // ARG changes no config; docker still records a step.
                let key_extra = serde_json::to_string(&st.args).expect("serialises");
                self.meta_commit_keyed(
                    job,
                    st,
                    nop(format!(" ARG {}", shown.join(" "))),
                    &key_extra,
                    out,
                )
                .await
            }
            Step::Workdir(t) => {
                let w = ex(t)?;
                let joined = if w.starts_with('/') {
                    PathBuf::from(&w)
                } else {
                    Path::new(&st.workdir()).join(&w)
                };
                let clean = Path::new("/")
                    .join(buildfs::clean_rel(&joined.to_string_lossy()).unwrap_or_default());
                let wd = clean.display().to_string();
                st.config.insert("WorkingDir".into(), json!(wd));
                let created_by = format!("/bin/sh -c #(nop) WORKDIR {wd}");
                let key = self.key(st, &created_by, "");
                if self.reuse(job, st, &key, out) {
                    return Ok(());
                }
                // The directory is made now, owned by root, as docker's builder makes it.
                let images = self.images.clone();
                let base = st.image.clone();
                let cfg = Value::Object(st.config.clone());
                let dir = self.scratch();
                let id = tokio::task::spawn_blocking(move || {
                    let m = RootMount::new(&images, base.as_deref(), dir)?;
                    let exists = buildfs::is_dir_in(&m.root, Path::new(&wd));
                    let rootfd: std::os::fd::OwnedFd = std::fs::File::open(&m.root)
                        .map_err(|e| unavailable(e.to_string()))?
                        .into();
                    if !exists {
                        buildfs::make_dirs(&rootfd, Path::new(&wd), (0, 0), 0o755)
                            .map_err(|e| invalid(format!("WORKDIR {wd}: {e}")))?;
                    }
                    drop(rootfd);
                    let history = json!({"created_by": created_by});
                    let upper = (!exists).then_some(m.upper.as_path());
                    images.commit_step(base.as_deref(), upper, cfg, history, &[])
                })
                .await
                .map_err(|e| unavailable(e.to_string()))??;
                self.adopt(st, key, id, out);
                Ok(())
            }
            Step::User(t) => {
                let u = ex(t)?;
                st.config.insert("User".into(), json!(u));
                self.meta_commit(job, st, nop(format!("USER {u}")), out)
                    .await
            }
            Step::Cmd(c) => {
                let v = self.command_argv(st, c);
                st.config.insert("Cmd".into(), json!(v));
                st.cmd_set = true;
                self.meta_commit(
                    job,
                    st,
                    nop(format!(
                        " CMD {}",
                        serde_json::to_string(&v).unwrap_or_default()
                    )),
                    out,
                )
                .await
            }
            Step::Entrypoint(c) => {
                let v = self.command_argv(st, c);
                st.config.insert("Entrypoint".into(), json!(v));
                if !st.cmd_set {
                    st.config.insert("Cmd".into(), Value::Null);
                }
                self.meta_commit(
                    job,
                    st,
                    nop(format!(
                        " ENTRYPOINT {}",
                        serde_json::to_string(&v).unwrap_or_default()
                    )),
                    out,
                )
                .await
            }
            Step::Expose(t) => {
                let words = shell::words(t, esc, &vars).map_err(|e| invalid(e.0))?;
                let mut ports = st
                    .config
                    .get("ExposedPorts")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let mut shown = Vec::new();
                for w in words {
                    for k in expose_keys(&w).map_err(invalid)? {
                        shown.push(k.clone());
                        ports.insert(k, json!({}));
                    }
                }
                st.config
                    .insert("ExposedPorts".into(), Value::Object(ports));
                self.meta_commit(job, st, nop(format!(" EXPOSE {}", shown.join(" "))), out)
                    .await
            }
            Step::Volume(words) => {
                let mut vols = st
                    .config
                    .get("Volumes")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let mut shown = Vec::new();
                for w in words {
                    let v = ex(w)?;
                    if v.trim().is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string"));
                    }
                    shown.push(v.clone());
                    vols.insert(v, json!({}));
                }
                st.config.insert("Volumes".into(), Value::Object(vols));
                self.meta_commit(job, st, nop(format!(" VOLUME [{}]", shown.join(" "))), out)
                    .await
            }
            Step::Shell(v) => {
                st.config.insert("Shell".into(), json!(v));
                self.meta_commit(
                    job,
                    st,
                    nop(format!(
                        "SHELL {}",
                        serde_json::to_string(v).unwrap_or_default()
                    )),
                    out,
                )
                .await
            }
            Step::StopSignal(t) => {
                let s = ex(t)?;
                crate::containers::parse_signal(&s)
                    .map_err(|_| invalid(format!("Invalid signal: {s}")))?;
                st.config.insert("StopSignal".into(), json!(s));
                self.meta_commit(job, st, nop(format!(" STOPSIGNAL {s}")), out)
                    .await
            }
            Step::Maintainer(t) => {
                // The Author field of the image; berth keeps only the history entry.
                self.meta_commit(job, st, nop(format!(" MAINTAINER {t}")), out)
                    .await
            }
            Step::Onbuild(t) => {
                let mut v: Vec<String> = st
                    .config
                    .get("OnBuild")
                    .and_then(|x| serde_json::from_value(x.clone()).ok())
                    .unwrap_or_default();
                v.push(t.clone());
                st.config.insert("OnBuild".into(), json!(v));
                self.meta_commit(job, st, nop(format!(" ONBUILD {t}")), out)
                    .await
            }
            Step::Healthcheck(h) => {
                let hc = match h {
                    None => json!({"Test": ["NONE"]}),
                    Some((opts, cmd)) => {
                        let test = match cmd {
                            Command::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                            Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                        };
                        let mut m = serde_json::Map::new();
                        m.insert("Test".into(), json!(test));
                        for (k, v) in opts {
                            let field = match k.as_str() {
                                "interval" => "Interval",
                                "timeout" => "Timeout",
                                "start-period" => "StartPeriod",
                                "start-interval" => "StartInterval",
                                "retries" => "Retries",
                                _ => continue,
                            };
                            let val = if field == "Retries" {
                                v.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
                                    invalid(format!("--retries must be a positive integer: {v}"))
                                })?
                            } else {
                                duration_ns(v).ok_or_else(|| {
                                    invalid(format!("time: invalid duration \"{v}\""))
                                })?
                            };
                            if val != 0 {
                                m.insert(field.into(), json!(val));
                            }
                        }
                        Value::Object(m)
                    }
                };
                st.config.insert("Healthcheck".into(), hc.clone());
                self.meta_commit(job, st, nop(format!(" HEALTHCHECK {hc}")), out)
                    .await
            }
            Step::Run {
                command,
                mounts,
                network,
                heredocs,
            } => {
                self.run_step(
                    job,
                    idx,
                    st,
                    command,
                    mounts,
                    network.as_deref(),
                    heredocs,
                    out,
                )
                .await
            }
            Step::Copy {
                add,
                args,
                from,
                chown,
                chmod,
                link: _,
                heredocs,
                json,
            } => {
                self.copy_step(
                    job,
                    idx,
                    st,
                    *add,
                    args,
                    *json,
                    from.as_deref(),
                    chown.as_deref(),
                    chmod.as_deref(),
                    heredocs,
                    out,
                )
                .await
            }
        }
    }
}
