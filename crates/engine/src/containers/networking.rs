//! A container's networks: attachment at start, connect and disconnect while it runs, release when it stops, and its `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.

use super::*;

impl Containers {
    /// The networks of a container, for records written before they were kept.
    pub fn networks_of(&self, rec: &Record) -> Vec<crate::network::EndpointRequest> {
        if let Some(n) = &rec.networks {
            return n.clone();
        }
        let bridge_mode = matches!(
            rec.host_config.network_mode.as_deref(),
            None | Some("") | Some("bridge") | Some("default")
        );
        if bridge_mode && self.network.config().bridge != "none" {
            vec![crate::network::EndpointRequest {
                network: crate::network::DEFAULT_NETWORK.into(),
                ..Default::default()
            }]
        } else {
            Vec::new()
        }
    }

    pub(super) fn member(rec: &Record) -> crate::network::Member {
        crate::network::Member {
            id: rec.id.to_string(),
            name: rec.name.clone(),
            dns: rec
                .host_config
                .dns
                .iter()
                .flatten()
                .filter_map(|d| d.parse().ok())
                .collect(),
        }
    }

    /// For `--network container:<target>`: the target's network namespace (its bridge
    /// namespace file, or its init's `/proc/<pid>/ns/net`) and its directory. The target must
    /// be running, as with docker.
    pub(super) fn joined_netns(
        &self,
        target: &str,
        me: &str,
    ) -> Result<(PathBuf, PathBuf), EngineError> {
        let t = self
            .find(target)
            .map_err(|_| not_found(format!("No such container: {target}")))?;
        let rec = t.record();
        if rec.id == me {
            return Err(invalid("cannot join own network"));
        }
        let v = t.view();
        // Not a conflict of this container's state: the start fails and takes the failure
        // path (recorded exit, `--rm` removal), as a missing program would.
        if !matches!(v.state(), State::Running | State::Paused) {
            return Err(unavailable(format!(
                "cannot join network of a non running container: {}",
                rec.id
            )));
        }
        if let Some(a) = self.attachment(&rec.id) {
            if berth_network::netns::NetNs::is_live(&a.netns) {
                return Ok((a.netns, self.dir(&rec.id)));
            }
        }
        let pid = v
            .shim
            .as_ref()
            .map(|s| s.pid)
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                unavailable(format!(
                    "cannot join network of a non running container: {}",
                    rec.id
                ))
            })?;
        Ok((
            PathBuf::from(format!("/proc/{pid}/ns/net")),
            self.dir(&rec.id),
        ))
    }

    /// What the container holds on the bridge, if anything (`<dir>/network.json`).
    pub fn attachment(&self, id: &str) -> Option<crate::network::Attachment> {
        berth_durable::load(&self.dir(id).join("network.json")).ok()
    }

    /// The container's bridge attachment: the one it has when its namespace is still there
    /// (a restart), else a new one (first start, or after a reboot emptied the exec root).
    pub(super) async fn ensure_attached(
        &self,
        rec: &Record,
    ) -> Result<crate::network::Attachment, EngineError> {
        let path = self.dir(&rec.id).join("network.json");
        let wanted: Vec<String> = self
            .networks_of(rec)
            .iter()
            .map(|r| {
                self.network
                    .find(&r.network)
                    .map(|n| n.id)
                    .unwrap_or_else(|_| r.network.clone())
            })
            .collect();
        if let Some(a) = self.attachment(&rec.id) {
            // Kept only if it is what the record asks for now: a stop's release may not have
            // run yet when a `network connect` and a start come right after it.
            let same = a
                .endpoints
                .iter()
                .map(|e| e.network_id.clone())
                .eq(wanted.iter().cloned());
            if same && berth_network::netns::NetNs::is_live(&a.netns) {
                return Ok(a);
            }
            let (net, id) = (self.network.clone(), rec.id.clone());
            let _ = tokio::task::spawn_blocking(move || net.detach(&id, &a)).await;
        }
        let exposed = rec.config.exposed_ports.clone().unwrap_or_default();
        let ports = crate::network::port_requests(
            rec.host_config.port_bindings.as_ref(),
            &exposed,
            rec.host_config.publish_all_ports.unwrap_or(false),
        )?;
        let (net, m, reqs) = (
            self.network.clone(),
            Self::member(rec),
            self.networks_of(rec),
        );
        let a = tokio::task::spawn_blocking(move || net.attach(&m, &reqs, &ports))
            .await
            .map_err(|e| unavailable(format!("attach to the network: {e}")))??;
        berth_durable::save(&path, &a)?;
        self.publish_endpoints("connect", &a, rec);
        Ok(a)
    }

    /// `POST /networks/{id}/connect`: on the network from the next start, and at once if
    /// the container runs.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %container))]
    pub async fn connect(
        &self,
        container: &str,
        network: &str,
        ep: Option<&EndpointSettings>,
    ) -> Result<(), EngineError> {
        let e = self.find(container)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let mode = rec.host_config.network_mode.as_deref().unwrap_or("");
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
            )));
        }
        let n = self.network.find(network)?;
        let req = crate::network::endpoint_request(&n, ep)?;
        let mut nets = self.networks_of(&rec);
        if nets.iter().any(|r| {
            r.network == n.name || self.network.find(&r.network).is_ok_and(|x| x.id == n.id)
        }) {
            return Err(forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        if matches!(e.view().state(), State::Running | State::Paused) {
            if let Some(mut a) = self.attachment(&rec.id) {
                if berth_network::netns::NetNs::is_live(&a.netns) {
                    let dns_before = a.dns_server();
                    let (net, m, r2) = (self.network.clone(), Self::member(&rec), req.clone());
                    let a = tokio::task::spawn_blocking(move || {
                        net.connect(&m, &mut a, &r2).map(|()| a)
                    })
                    .await
                    .map_err(|e| unavailable(format!("connect: {e}")))??;
                    berth_durable::save(&self.dir(&rec.id).join("network.json"), &a)?;
                    self.dns_changed(&rec, dns_before, &a)?;
                }
            }
        }
        nets.push(req);
        let mut rec = e.record();
        rec.networks = Some(nets);
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec.clone();
        self.publish_network("connect", &n, &rec);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %container))]
    pub async fn disconnect(
        &self,
        container: &str,
        network: &str,
        force: bool,
    ) -> Result<(), EngineError> {
        let e = self.find(container)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let n = self.network.find(network);
        let mut nets = self.networks_of(&rec);
        let pos = nets.iter().position(|r| match &n {
            Ok(n) => {
                r.network == n.name || self.network.find(&r.network).is_ok_and(|x| x.id == n.id)
            }
            Err(_) => force && r.network == network,
        });
        let Some(pos) = pos else {
            return Err(forbidden(format!(
                "container {} is not connected to network {network}",
                rec.id
            )));
        };
        if let (Ok(n), Some(mut a)) = (&n, self.attachment(&rec.id)) {
            if a.endpoints.iter().any(|x| x.network_id == n.id)
                && berth_network::netns::NetNs::is_live(&a.netns)
            {
                let dns_before = a.dns_server();
                let (net, id, nid) = (self.network.clone(), rec.id.clone(), n.id.clone());
                let a = tokio::task::spawn_blocking(move || {
                    net.disconnect(&id, &mut a, &nid).map(|()| a)
                })
                .await
                .map_err(|e| unavailable(format!("disconnect: {e}")))??;
                berth_durable::save(&self.dir(&rec.id).join("network.json"), &a)?;
                self.dns_changed(&rec, dns_before, &a)?;
            }
        }
        nets.remove(pos);
        let mut rec = e.record();
        rec.networks = Some(nets);
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec.clone();
        if let Ok(n) = &n {
            self.publish_network("disconnect", n, &rec);
        }
        Ok(())
    }

    /// A running container whose nameserver changed with a connect or disconnect (it joined
    /// its first user network, or left the one whose DNS it used) gets a new resolv.conf, as
    /// with docker. The files are rewritten in place: they are bind-mounted.
    pub(super) fn dns_changed(
        &self,
        rec: &Record,
        before: Option<std::net::Ipv4Addr>,
        a: &crate::network::Attachment,
    ) -> Result<(), EngineError> {
        if before == a.dns_server() {
            return Ok(());
        }
        write_etc_files(
            &self.dir(&rec.id),
            rec.config.hostname.as_deref().unwrap_or_default(),
            &rec.host_config,
            Some(a),
            &self.network.config().dns,
        )
    }

    /// A `connect` or `disconnect` event for each network of an attachment, as dockerd sends
    /// when a container starts and stops.
    fn publish_endpoints(&self, action: &str, a: &crate::network::Attachment, rec: &Record) {
        for ep in &a.endpoints {
            if let Ok(n) = self.network.find(&ep.network_id) {
                self.publish_network(action, &n, rec);
            }
        }
    }

    pub(super) fn publish_network(&self, action: &str, n: &crate::network::Network, rec: &Record) {
        let attrs = BTreeMap::from([
            ("container".to_string(), rec.id.to_string()),
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]);
        self.events
            .publish(crate::events::ObjectType::Network, action, &n.id, attrs);
    }

    /// A container that stopped for good gives back its published ports, veth, namespace and
    /// address, as with docker (its next start attaches it anew). Skipped when another start
    /// came first.
    pub(super) async fn release_network(&self, e: &Arc<Entry>, gen: u64) {
        let _op = e.op.lock().await;
        let stale = gen != 0 && e.generation.load(std::sync::atomic::Ordering::SeqCst) != gen;
        if stale || e.view().state() != State::Exited || e.view().removed {
            return;
        }
        self.detach_network(&e.record().id).await;
    }

    /// Detaches a container that is not running from its networks; the caller holds its
    /// operation lock.
    pub(super) async fn detach_network(&self, id: &str) {
        let Some(a) = self.attachment(id) else {
            return;
        };
        let (net, id2, a2) = (self.network.clone(), id.to_string(), a.clone());
        match tokio::task::spawn_blocking(move || net.detach(&id2, &a2)).await {
            Ok(Ok(())) => {
                let _ = std::fs::remove_file(self.dir(id).join("network.json"));
                if let Ok(e) = self.find(id) {
                    self.publish_endpoints("disconnect", &a, &e.record());
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(container = %id, error = %err, "releasing the network failed")
            }
            Err(err) => {
                tracing::warn!(container = %id, error = %err, "releasing the network failed")
            }
        }
    }
}

/// `hostname`, `hosts` and `resolv.conf` for the container. On a user network the
/// nameserver is that network's embedded DNS server (its gateway), which forwards what it does
/// not know to the container's `--dns` servers or the host's.
pub(super) fn write_etc_files(
    dir: &Path,
    hostname: &str,
    hc: &HostConfig,
    att: Option<&crate::network::Attachment>,
    daemon_dns: &[std::net::IpAddr],
) -> Result<(), EngineError> {
    let ip = att.and_then(|a| a.primary()).map(|e| e.ip);
    let w = |name: &str, data: String| -> Result<(), EngineError> {
        std::fs::write(dir.join(name), data).map_err(io_err("write the container's /etc files"))
    };
    w("hostname", format!("{hostname}\n"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in hc.extra_hosts.iter().flatten() {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    if let Some(ip) = ip {
        hosts.push_str(&format!("{ip}\t{hostname}\n"));
    }
    w("hosts", hosts)?;
    // Docker's resolv.conf: the nameservers (the embedded DNS on a user network; else
    // `--dns`, else berthd's `dns`, else the host's own minus loopback resolvers, which the
    // container cannot reach), then the host's search and options lines unless `--dns-search`
    // or `--dns-option` replace them.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let embedded = att.and_then(|a| a.dns_server());
    let mut resolv = String::new();
    if let Some(gw) = embedded {
        resolv.push_str(&format!("nameserver {gw}\n"));
    } else if hc.dns.as_ref().is_some_and(|d| !d.is_empty()) {
        for d in hc.dns.iter().flatten() {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
    } else if !daemon_dns.is_empty() {
        for d in daemon_dns {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
    } else {
        for l in host.lines().filter(|l| l.starts_with("nameserver")) {
            let lo = l.contains("127.") || l.contains("::1");
            if !lo {
                resolv.push_str(l);
                resolv.push('\n');
            }
        }
    }
    let search: Vec<&str> = hc.dns_search.iter().flatten().map(|s| s.as_str()).collect();
    if !search.is_empty() {
        resolv.push_str(&format!("search {}\n", search.join(" ")));
    } else {
        for l in host
            .lines()
            .filter(|l| l.starts_with("search") || l.starts_with("domain"))
        {
            resolv.push_str(l);
            resolv.push('\n');
        }
    }
    let opts: Vec<&str> = hc
        .dns_options
        .iter()
        .flatten()
        .map(|s| s.as_str())
        .collect();
    if !opts.is_empty() {
        resolv.push_str(&format!("options {}\n", opts.join(" ")));
    } else if embedded.is_some() {
        resolv.push_str("options ndots:0\n");
    } else {
        for l in host.lines().filter(|l| l.starts_with("options")) {
            resolv.push_str(l);
            resolv.push('\n');
        }
    }
    w("resolv.conf", resolv)
}
