//! A build: its stages as parallel tasks, each stage's base image, and the results stages hand each other.

use super::*;

impl Builder {
    /// Runs a build of the context at `context` (a directory berth owns), sending its output
    /// to `out`. Returns the image id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn build(
        self: &Arc<Self>,
        context: PathBuf,
        opts: BuildOptions,
        out: mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        for t in &opts.tags {
            berth_image::ImageRef::parse(t)
                .map_err(|e| invalid(format!("invalid reference format: {t}: {e}")))?;
        }
        let df_rel = buildfs::clean_rel(&opts.dockerfile).ok_or_else(|| {
            invalid(format!(
                "forbidden path outside the build context: {} ()",
                opts.dockerfile
            ))
        })?;
        let text = berth_image::layer::read_beneath(&context, &df_rel).map_err(|e| {
            invalid(format!(
                "Cannot locate specified Dockerfile: {} ({e})",
                opts.dockerfile
            ))
        })?;
        let text = String::from_utf8(text)
            .map_err(|_| invalid(format!("{}: the Dockerfile is not UTF-8", opts.dockerfile)))?;
        let name = opts.dockerfile.clone();
        let df = dockerfile::parse(&text, &name).map_err(|e| invalid(e.to_string()))?;
        let ignore = Ignore::for_context(&context, &context.join(&df_rel))
            .map_err(|e| invalid(format!(".dockerignore: {e}")))?;
        let args: Env = opts.build_args.clone().into_iter().collect();
        let stages = berth_build::stages(&df, &args, &name).map_err(|e| invalid(e.to_string()))?;
        let mut all_steps = Vec::new();
        for s in &stages {
            let mut v = Vec::new();
            for i in &s.instructions {
                v.push((
                    i.clone(),
                    steps::step(i, &name).map_err(|e| invalid(e.to_string()))?,
                ));
            }
            all_steps.push(v);
        }
        let target = match &opts.target {
            Some(t) => stages
                .iter()
                .find(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .map(|s| s.index)
                .ok_or_else(|| {
                    invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => stages.len() - 1,
        };
        // The meta args (before the first FROM) with their values.
        let mut meta = Env::new();
        for i in &df.instructions {
            if i.keyword == "FROM" {
                break;
            }
            if let dockerfile::Args::Text(t) = &i.args {
                for (k, v) in shell::pairs(t, df.directives.escape, &meta, false)
                    .map_err(|e| invalid(format!("{name}:{}: {}", i.line, e.0)))?
                {
                    let val = args.get(&k).cloned().or(v).unwrap_or_default();
                    meta.insert(k, val);
                }
            }
        }
        // Which stages each needs.
        let deps: Vec<BTreeSet<usize>> = stages
            .iter()
            .map(|s| {
                let mut d = BTreeSet::new();
                if let Some(b) = s.base_stage(&stages) {
                    d.insert(b);
                }
                for (_, st) in &all_steps[s.index] {
                    let from = match st {
                        Step::Copy { from: Some(f), .. } => vec![f.clone()],
                        Step::Run { mounts, .. } => mounts
                            .iter()
                            .filter_map(|m| {
                                m.options
                                    .iter()
                                    .find(|(k, _)| k == "from")
                                    .and_then(|(_, v)| v.clone())
                            })
                            .collect(),
                        _ => vec![],
                    };
                    for f in from {
                        let f = shell::expand(&f, df.directives.escape, &meta).unwrap_or(f);
                        if let Some(i) = stage_named(&stages, &f, s.index) {
                            d.insert(i);
                        }
                    }
                }
                d
            })
            .collect();
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if needed.insert(i) {
                todo.extend(deps[i].iter().copied());
            }
        }
        let mut offset = vec![0; stages.len()];
        let mut total = 0;
        for &i in &needed {
            offset[i] = total + 1;
            total += 1 + all_steps[i].len();
        }
        if !opts.labels.is_empty() {
            total += 1;
        }
        let mut results = Vec::new();
        let mut receivers = Vec::new();
        for _ in &stages {
            let (tx, rx) = watch::channel(None);
            results.push(tx);
            receivers.push(rx);
        }
        let cache_allowed = self.cache_allowed(&opts.cache_from);
        let job = Arc::new(Job {
            cache_allowed,
            context,
            ignore,
            opts,
            escape: df.directives.escape,
            stages,
            steps: all_steps,
            meta,
            offset,
            total,
            results,
            consumed: Default::default(),
            target,
        });
        // One task per needed stage; output per stage, printed in order.
        let mut outputs = Vec::new();
        for &i in &needed {
            let (tx, rx) = mpsc::unbounded_channel();
            outputs.push((i, rx));
            let me = self.clone();
            let job = job.clone();
            let dep_rx: Vec<_> = deps[i].iter().map(|d| receivers[*d].clone()).collect();
            tokio::spawn(async move {
                let mut failed = None;
                for mut r in dep_rx {
                    let v = r.wait_for(|v| v.is_some()).await.map(|v| v.clone());
                    if !matches!(v, Ok(Some(Ok(_)))) {
                        failed = Some("a stage this one needs failed".to_string());
                    }
                }
                let res = match failed {
                    Some(f) => Err(f),
                    None => me.run_stage(&job, i, &tx).await.map_err(|e| e.message),
                };
                let _ = job.results[i].send(Some(res));
            });
        }
        for (i, mut rx) in outputs {
            while let Some(m) = rx.recv().await {
                let _ = out.send(m);
            }
            let mut r = receivers[i].clone();
            let res = r
                .wait_for(|v| v.is_some())
                .await
                .map_err(|_| unavailable("the build stopped"))?
                .clone()
                .expect("set");
            if let Err(e) = res {
                self.save_cache();
                return Err(unavailable(e));
            }
        }
        let id = receivers[target]
            .borrow()
            .clone()
            .and_then(Result::ok)
            .ok_or_else(|| unavailable("the build stopped"))?;
        // Build args nobody declared.
        let consumed = job.consumed.lock().expect("consumed").clone();
        let unused: Vec<&String> = job
            .opts
            .build_args
            .keys()
            .filter(|k| !consumed.contains(*k) && !job.meta.contains_key(*k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            let _ = out.send(Message::Stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            )));
        }
        for t in &job.opts.tags {
            self.images.tag_id(&id, t)?;
        }
        {
            let mut c = self.cache.lock().expect("build cache");
            c.results.insert(id.clone());
        }
        self.save_cache();
        let _ = out.send(Message::Aux(id.clone()));
        let _ = out.send(Message::Stream(format!(
            "Successfully built {}\n",
            short(&id)
        )));
        for t in &job.opts.tags {
            let f = berth_image::ImageRef::parse(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone());
            let _ = out.send(Message::Stream(format!("Successfully tagged {f}\n")));
        }
        Ok(id)
    }

    /// An image for a base or a `--from`: found locally, else (or with `--pull`) pulled.
    pub(super) async fn image_for(
        &self,
        job: &Job,
        reference: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        if !job.opts.pull {
            if let Ok((id, _)) = self.images.resolve(reference) {
                return Ok(id);
            }
        }
        let images = self.images.clone();
        let r = reference.to_string();
        let creds = berth_image::ImageRef::parse(reference)
            .ok()
            .and_then(|x| job.opts.auth.get(&x.domain).cloned());
        let _ = out.send(Message::Stream(format!("Pulling {reference}\n")));
        let res = tokio::task::spawn_blocking(move || {
            let p = images.pull_resolve(&r, None, creds)?;
            let cancel = std::sync::atomic::AtomicBool::new(false);
            p.run(&|_| {}, &cancel)
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
        // With `--pull` and no registry reachable docker fails too, rather than use a local copy.
        res.map(|o| o.id)
    }

    pub(super) async fn run_stage(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        let stage = &job.stages[idx];
        let say = |s: String| {
            let _ = out.send(Message::Stream(s));
        };
        let mut n = job.offset[idx];
        say(format!(
            "Step {n}/{} : FROM {}{}\n",
            job.total,
            stage.base,
            stage
                .name
                .as_ref()
                .map(|x| format!(" AS {x}"))
                .unwrap_or_default()
        ));
        let mut st = St {
            image: None,
            config: serde_json::Map::new(),
            args: Vec::new(),
            cmd_set: false,
        };
        if let Some(b) = stage.base_stage(&job.stages) {
            st.image = Some(Self::stage_result(job, b).await?);
        } else if !stage.base.eq_ignore_ascii_case("scratch") {
            st.image = Some(self.image_for(job, &stage.base, out).await?);
        }
        let mut triggers = Vec::new();
        if let Some(id) = &st.image {
            let (_, cfg) = self.images.config_json(id)?;
            st.config = cfg["config"].as_object().cloned().unwrap_or_default();
            if let Some(t) = st.config.remove("OnBuild") {
                triggers = serde_json::from_value::<Vec<String>>(t).unwrap_or_default();
            }
        }
        if !st.env_list().iter().any(|e| e.starts_with("PATH=")) {
            let mut env = st.env_list();
            env.push(DEFAULT_PATH.into());
            st.config.insert("Env".into(), json!(env));
        }
        if let Some(id) = &st.image {
            say(format!(" ---> {}\n", short(id)));
        }
        let mut todo: Vec<(Instruction, Step)> = Vec::new();
        if !triggers.is_empty() {
            say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let d = dockerfile::parse(t, "ONBUILD").map_err(|e| invalid(e.to_string()))?;
                for i in d.instructions {
                    let s = steps::step(&i, "ONBUILD").map_err(|e| invalid(e.to_string()))?;
                    todo.push((i, s));
                }
            }
        }
        let trigger_count = todo.len();
        todo.extend(job.steps[idx].iter().cloned());
        if idx == job.target && !job.opts.labels.is_empty() {
            let text = job
                .opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", shell_quote(k), shell_quote(v)))
                .collect::<Vec<_>>()
                .join(" ");
            let i = Instruction {
                keyword: "LABEL".into(),
                flags: vec![],
                args: dockerfile::Args::Text(text.clone()),
                heredocs: vec![],
                line: 0,
            };
            todo.push((i, Step::Label(text)));
        }
        for (k, (inst, step)) in todo.iter().enumerate() {
            if k >= trigger_count {
                n += 1;
                say(format!(
                    "Step {n}/{} : {}\n",
                    job.total,
                    instruction_text(inst)
                ));
            }
            self.step(job, idx, &mut st, step, out).await.map_err(|e| {
                if inst.line > 0 && e.kind == crate::error::Kind::InvalidArgument {
                    invalid(format!(
                        "{}:{}: {}",
                        job.opts.dockerfile, inst.line, e.message
                    ))
                } else {
                    e
                }
            })?;
        }
        match st.image {
            Some(id) => Ok(id),
            // `FROM scratch` and nothing else: an image with no layer and the default config.
            None => {
                let history = json!({"created_by": "/bin/sh -c #(nop) FROM scratch"});
                self.meta_commit(job, &mut st, history, out).await?;
                Ok(st.image.expect("committed"))
            }
        }
    }

    /// The image an earlier stage built (waits for it to finish).
    pub(super) async fn stage_result(job: &Job, i: usize) -> Result<String, EngineError> {
        let mut r = job.results[i].subscribe();
        let done = r
            .wait_for(|v| v.is_some())
            .await
            .map_err(|_| unavailable("the build stopped"))?
            .clone();
        done.and_then(Result::ok)
            .ok_or_else(|| unavailable("a stage this one needs failed"))
    }

    /// The image a `--from` names: an earlier stage's result, or an image.
    pub(super) async fn image_of_from(
        &self,
        job: &Job,
        idx: usize,
        name: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        if let Some(i) = stage_named(&job.stages, name, idx) {
            return Self::stage_result(job, i).await;
        }
        if job.stages[idx..]
            .iter()
            .any(|s| s.name.as_deref() == Some(&name.to_ascii_lowercase()))
        {
            return Err(invalid(format!(
                "invalid from flag value {name}: stage {name} is not defined before this one"
            )));
        }
        self.image_for(job, name, out).await
    }
}
