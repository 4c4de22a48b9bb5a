//! `create`: a container record from a create request, its mounts and networks resolved.

use super::*;

impl Containers {
    /// `POST /containers/create`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn create(
        &self,
        name: Option<&str>,
        body: CreateRequest,
    ) -> Result<(ContainerId, Vec<String>), EngineError> {
        let image_ref = body
            .config
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| invalid("config cannot be empty in order to create a container"))?;
        let (image_id, icfg) = self.images.resolve(&image_ref)?;
        let mut host_config = body.host_config.clone().unwrap_or_default();
        let mut config: ContainerConfig = body.config.clone();
        // The image fills what the request left empty, by dockerd's rules.
        let merged = berth_image::defaults::merge(image_settings(&config), &icfg.config)
            .map_err(|e| invalid(e.to_string()))?;
        let (path, argv) = (merged.path, merged.args);
        let st = merged.settings;
        config.user = st.user;
        config.exposed_ports =
            (!st.exposed_ports.is_empty()).then(|| st.exposed_ports.into_iter().collect());
        config.env = Some(st.env);
        config.labels = Some(st.labels.into_iter().collect());
        config.entrypoint = st.entrypoint;
        config.cmd = st.cmd;
        config.healthcheck = st.healthcheck.map(|h| HealthConfig {
            test: h.test,
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
            start_interval: h.start_interval,
        });
        config.working_dir = st.working_dir;
        config.volumes = (!st.volumes.is_empty()).then(|| st.volumes.into_iter().collect());
        config.stop_signal = st.stop_signal;
        config.image = Some(image_ref.clone());
        if let Some(sig) = &config.stop_signal {
            parse_signal(sig)?;
        }
        if let Some(hc) = &config.healthcheck {
            crate::model::health::HealthCheck::validate(hc).map_err(invalid)?;
        }
        let restart = restart_policy(&host_config)?;
        if restart != RestartPolicy::No && host_config.auto_remove.unwrap_or(false) {
            return Err(invalid(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        if let Some(iso) = host_config
            .isolation
            .as_deref()
            .filter(|i| !i.is_empty() && !i.eq_ignore_ascii_case("default"))
        {
            return Err(invalid(format!(
                "invalid isolation: {iso:?} - linux only supports 'default'"
            )));
        }
        host_config.log_config = Some(crate::logconfig::normalized(&host_config)?);
        // One runtime, under the names `info` lists: `runc`, the name dockerd gives its
        // default runtime (berth's runtime is runc-compatible; clients and Compose files ask
        // for it by that name, and read it back from inspect), and `berth`. The name asked for
        // is kept, as dockerd keeps it. Anything else is refused as dockerd refuses a runtime
        // it has not configured.
        match host_config.runtime.as_deref() {
            None | Some("") => host_config.runtime = Some("runc".into()),
            Some("berth" | "runc") => {}
            Some(other) => {
                return Err(invalid(format!("unknown or invalid runtime name: {other}")))
            }
        }
        crate::logconfig::settings(&host_config, self.s.log_max_size, self.s.log_max_file)?;
        if host_config
            .network_mode
            .as_deref()
            .is_none_or(str::is_empty)
        {
            host_config.network_mode = Some("bridge".into());
        }
        for l in host_config.links.iter().flatten() {
            let (target, _) = super::links::parse_link(l)?;
            self.find(target)
                .map_err(|_| invalid(format!("could not get container for {target}")))?;
        }
        let id = ContainerId::random();
        let networks = self.requested_networks(&host_config, body.networking_config.as_ref())?;
        let config_volumes: Vec<String> = config.volumes.iter().flatten().cloned().collect();
        let mut wanted_mounts = crate::mounts::wanted(&host_config, &config_volumes, &[])?;
        for vf in host_config.volumes_from.iter().flatten() {
            let (src, mode) = vf.split_once(':').unwrap_or((vf.as_str(), ""));
            let force_ro = match mode {
                "" => None,
                "ro" => Some(true),
                "rw" => Some(false),
                m => return Err(invalid(format!("invalid mode for volumes-from: {m}"))),
            };
            let other = self
                .find(src)
                .map_err(|_| not_found(format!("No such container: {src}")))?;
            for mp in other.record().mounts {
                if wanted_mounts
                    .iter()
                    .any(|w| w.point.destination == mp.destination)
                {
                    continue;
                }
                let mut point = mp.clone();
                if let Some(ro) = force_ro {
                    point.rw = !ro;
                }
                point.copy = false;
                wanted_mounts.push(crate::mounts::Wanted {
                    point,
                    labels: Default::default(),
                    driver_opts: Default::default(),
                    anonymous: false,
                    create_source: false,
                });
            }
        }
        if let Some(target) = host_config
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            // Docker's rules for sharing another container's network namespace.
            if config.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                return Err(invalid(
                    "conflicting options: hostname and the network mode",
                ));
            }
            let publishes = host_config.port_bindings.as_ref().is_some_and(|b| {
                b.values()
                    .any(|v| v.as_ref().is_some_and(|l| !l.is_empty()))
            }) || host_config.publish_all_ports.unwrap_or(false);
            if publishes {
                return Err(invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            let t = self
                .find(target)
                .map_err(|_| not_found(format!("No such container: {target}")))?;
            // The joined container's name is what the hostname shows, as with docker.
            config.hostname = t.record().config.hostname.clone();
        }
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            config.hostname = Some(id.short().to_string());
        }
        // The spec is assembled once now so that bad input fails at create, as with Docker
        // (its conversion to the OCI type, a check of berth's own code, waits for the start).
        crate::spec::check(
            id.as_str(),
            &config,
            &host_config,
            &path,
            &argv,
            &crate::spec::Paths {
                rootfs: Path::new("/"),
                dir: Path::new("/"),
                layers: &self
                    .images
                    .layer_dirs(&image_id, &self.dir(id.as_str()).join("upper"))?,
                init: Some(&self.s.shim_bin),
                netns: None,
                joined: &[],
                mounts: &[],
                cgroup_driver: self.s.cgroup_driver,
            },
        )?;
        let mut entries = self.entries.lock().expect("entries");
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = crate::name::validate(n).map_err(|e| invalid(e.to_string()))?;
                if let Some(other) = entries.values().find(|e| e.record().name == n) {
                    return Err(conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.record().id
                    )));
                }
                n
            }
            None => crate::name::random(|n| entries.values().any(|e| e.record().name == n)),
        };
        let rec = Record {
            schema: SCHEMA,
            id: id.clone(),
            name,
            created: berth_shim::rfc3339(SystemTime::now()),
            image: image_id,
            image_ref,
            path,
            args: argv,
            config,
            host_config,
            networks: Some(networks),
            mounts: self.make_mounts(wanted_mounts)?,
        };
        let dir = self.dir(&rec.id);
        std::fs::create_dir_all(&dir).map_err(io_err("create the container directory"))?;
        // A `--rm` container does not outlive its run, nor a crash (berthd removes it at its
        // next start, run or not), so its record is written without the two fsyncs (0.75 ms
        // of `run --rm` on this machine's disk). A killed berthd still never leaves it torn.
        if rec.host_config.auto_remove.unwrap_or(false) {
            berth_durable::replace_record(&dir.join("config.json"), &rec)?;
        } else {
            berth_durable::save(&dir.join("config.json"), &rec)?;
        }
        entries.insert(rec.id.clone(), Arc::new(new_entry(rec.clone(), None)));
        drop(entries);
        self.publish("create", &rec, &[]);
        Ok((rec.id, Vec::new()))
    }

    /// Creates what the mounts need: missing `-v` bind sources (as docker does) and the
    /// volumes, named or anonymous. Runs after every check of the request has passed.
    pub(super) fn make_mounts(
        &self,
        wanted: Vec<crate::mounts::Wanted>,
    ) -> Result<Vec<crate::mounts::MountPoint>, EngineError> {
        let mut out = Vec::new();
        for w in wanted {
            let mut p = w.point;
            match p.typ.as_str() {
                "bind" if w.create_source && !Path::new(&p.source).exists() => {
                    std::fs::create_dir_all(&p.source).map_err(|e| {
                        invalid(format!("create the bind source {}: {e}", p.source))
                    })?;
                }
                "volume" => {
                    let name = p.name.as_deref().filter(|_| !w.anonymous);
                    let v =
                        self.volumes
                            .create(name, None, w.labels.clone(), w.driver_opts.clone())?;
                    p.name = Some(v.name);
                }
                _ => {}
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The containers (ids) whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.entries
            .lock()
            .expect("entries")
            .values()
            .map(|e| e.record())
            .filter(|r| r.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
            .map(|r| r.id.to_string())
            .collect()
    }

    /// The OCI mounts of a container's mount points, parents before children.
    pub(super) fn oci_mounts(&self, rec: &Record) -> Result<Vec<serde_json::Value>, EngineError> {
        let mut out = Vec::new();
        for (index, m) in rec.mounts.clone().into_iter().enumerate() {
            let ro = if m.rw { None } else { Some("ro") };
            let bind = |src: &str, prop: &str| {
                let mut o = vec!["rbind".to_string(), prop.to_string()];
                o.extend(ro.map(String::from));
                serde_json::json!({"destination": m.destination, "type": "bind", "source": src, "options": o})
            };
            match m.typ.as_str() {
                "bind" => out.push(bind(&m.source, &m.propagation)),
                "tmpfs" => {
                    let mut o = vec![
                        "nosuid".to_string(),
                        "nodev".to_string(),
                        "noexec".to_string(),
                    ];
                    o.extend(
                        m.tmpfs
                            .split(',')
                            .filter(|x| !x.is_empty())
                            .map(String::from),
                    );
                    o.extend(ro.map(String::from));
                    out.push(serde_json::json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o}));
                }
                "volume" => {
                    let name = m.name.clone().unwrap_or_default();
                    let v = self.volumes.get(&name)?;
                    let typ = v.options.get("type").cloned().unwrap_or_default();
                    let o_opt = v.options.get("o").cloned().unwrap_or_default();
                    let bound = o_opt.split(',').any(|x| x == "bind");
                    if !m.subpath.is_empty() {
                        if !bound && !typ.is_empty() && typ != "none" {
                            return Err(invalid(format!(
                                "cannot mount subpath {}: volume {name} is mounted by type {typ}; a subpath needs a local directory",
                                m.subpath
                            )));
                        }
                        let base = match bound {
                            true => {
                                PathBuf::from(v.options.get("device").cloned().unwrap_or_default())
                            }
                            false => self.volumes.data_dir(&name),
                        };
                        let src =
                            subpath::prepare(&self.s.exec_root, &rec.id, index, &base, &m.subpath)?;
                        out.push(bind(&src.display().to_string(), "rprivate"));
                    } else if bound {
                        let dev = v.options.get("device").cloned().unwrap_or_default();
                        out.push(bind(&dev, "rprivate"));
                    } else if !typ.is_empty() && typ != "none" {
                        let mut o: Vec<String> = o_opt
                            .split(',')
                            .filter(|x| !x.is_empty())
                            .map(String::from)
                            .collect();
                        o.extend(ro.map(String::from));
                        let src = v
                            .options
                            .get("device")
                            .cloned()
                            .unwrap_or_else(|| typ.clone());
                        out.push(serde_json::json!({"destination": m.destination, "type": typ, "source": src, "options": o}));
                    } else {
                        out.push(bind(
                            &self.volumes.data_dir(&name).display().to_string(),
                            "rprivate",
                        ));
                    }
                }
                other => return Err(invalid(format!("unknown mount type {other}"))),
            }
        }
        Ok(out)
    }

    /// Docker's copy-up: a plain volume that is new and empty gets the image's content at
    /// its mount point, once (not with `nocopy`). The path is resolved inside the
    /// container's root, so an image's symlink cannot point the copy at a host path.
    pub(super) async fn populate_volumes(
        self: &Arc<Self>,
        rec: &Record,
    ) -> Result<(), EngineError> {
        let todo: Vec<(String, String)> = rec
            .mounts
            .iter()
            .filter(|m| m.typ == "volume" && m.copy && m.subpath.is_empty())
            .filter_map(|m| {
                let name = m.name.clone()?;
                let v = self.volumes.get(&name).ok()?;
                let empty = std::fs::read_dir(self.volumes.data_dir(&name))
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                (v.is_plain() && !v.populated && empty).then(|| (name, m.destination.clone()))
            })
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        let list = todo.clone();
        let tmp = self.s.exec_root.join("copyup");
        self.with_stopped_root(rec, move |root| {
            for (name, dst) in &list {
                let data = me.volumes.data_dir(name);
                crate::archive::copy_tree(root, Path::new(dst), &data, &tmp)?;
            }
            Ok(())
        })
        .await?;
        for (name, _) in todo {
            self.volumes.mark_populated(&name)?;
        }
        Ok(())
    }

    /// The networks a new container asks for: its network mode (a network's name, `bridge`
    /// by default) first, then the other networks of `EndpointsConfig`, with their aliases,
    /// addresses and MAC addresses. Every one must exist.
    pub(super) fn requested_networks(
        &self,
        hc: &HostConfig,
        nc: Option<&NetworkingConfig>,
    ) -> Result<Vec<crate::network::EndpointRequest>, EngineError> {
        let raw_mode = hc.network_mode.as_deref().unwrap_or("bridge");
        let mode = if raw_mode == "default" || raw_mode.is_empty() {
            crate::network::DEFAULT_NETWORK
        } else {
            raw_mode
        };
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Ok(Vec::new());
        }
        if mode == crate::network::DEFAULT_NETWORK && self.network.config().bridge == "none" {
            // `bridge: none` in daemon.json: a namespace of its own, unconnected.
            return Ok(Vec::new());
        }
        let eps = nc
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let mut names: Vec<String> = vec![mode.to_string()];
        let mut others: Vec<&String> = eps
            .keys()
            .filter(|k| ![mode, raw_mode, "default"].contains(&k.as_str()))
            .collect();
        others.sort();
        names.extend(others.into_iter().cloned());
        let mut out = Vec::new();
        for name in names {
            let n = self.network.find(&name)?;
            if !matches!(n.driver.as_str(), "bridge") {
                return Err(invalid(format!(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode or host mode: {}",
                    n.name
                )));
            }
            let ep = eps.get(&name).or_else(|| {
                (name == mode)
                    .then(|| eps.get(raw_mode).or_else(|| eps.get("default")))
                    .flatten()
            });
            let req = crate::network::endpoint_request(&n, ep)?;
            if out
                .iter()
                .any(|r: &crate::network::EndpointRequest| r.network == req.network)
            {
                continue;
            }
            out.push(req);
        }
        Ok(out)
    }
}

/// What a create request sets of the settings an image can supply.
fn image_settings(c: &ContainerConfig) -> berth_image::defaults::Settings {
    berth_image::defaults::Settings {
        user: c.user.clone(),
        exposed_ports: c.exposed_ports.iter().flatten().cloned().collect(),
        env: c.env.clone().unwrap_or_default(),
        labels: c.labels.clone().unwrap_or_default().into_iter().collect(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        healthcheck: c
            .healthcheck
            .clone()
            .map(|h| berth_image::config::Healthcheck {
                test: h.test,
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            }),
        working_dir: c.working_dir.clone(),
        volumes: c.volumes.iter().flatten().cloned().collect(),
        stop_signal: c.stop_signal.clone(),
    }
}
