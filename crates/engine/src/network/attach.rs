//! A container on its networks: endpoints allocated, veths plumbed into its namespace, published ports; connect, disconnect, detach, and the reconciliation after a restart.

use super::*;

impl NetworkService {
    /// The namespace file of a container.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(&id[..24.min(id.len())])
    }

    /// Allocates an endpoint on network `req.network` for `m`.
    pub(super) fn new_endpoint(
        &self,
        inner: &mut Inner,
        m: &Member,
        req: &EndpointRequest,
        index: usize,
    ) -> Result<Endpoint, EngineError> {
        let n = Self::find_in(inner, &req.network)?.clone();
        match n.driver.as_str() {
            "bridge" => {}
            _ => {
                return Err(invalid(format!(
                    "container cannot be connected to network {}: it is the {} network",
                    n.name, n.driver
                )))
            }
        }
        if n.is_default() {
            if req.ip.is_some() {
                return Err(invalid(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            if !req.aliases.is_empty() {
                return Err(invalid(
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
        }
        let mac = match &req.mac {
            Some(m) if !m.is_empty() => Some(parse_mac(m)?),
            _ => None,
        };
        self.ensure_ready(inner, &n.id)?;
        let alloc = inner.ready.get_mut(&n.id).expect("set up above");
        if req.ip6.is_some() && alloc.v6.is_none() {
            return Err(invalid(format!(
                "network {} has no IPv6: an IPv6 address (--ip6) needs a network made with --ipv6",
                n.name
            )));
        }
        let ip = alloc.allocate(&m.id, req.ip).map_err(net_err)?;
        let v6 = match alloc.v6.as_mut() {
            Some(v6) => match v6.allocate(&m.id, req.ip6) {
                Ok(ip6) => Some((ip6, v6.subnet.prefix, v6.gateway)),
                Err(e) => {
                    alloc.release(&m.id);
                    return Err(net_err(e));
                }
            },
            None => None,
        };
        alloc.save(&self.ipam_path(&n.bridge)).map_err(net_err)?;
        let o = ip.octets();
        let mac = mac.unwrap_or([0x02, 0x42, o[0], o[1], o[2], o[3]]);
        let mut dns_names = Vec::new();
        if n.has_dns() {
            dns_names.push(m.name.clone());
            dns_names.extend(req.aliases.iter().cloned());
            dns_names.push(m.id[..12.min(m.id.len())].to_string());
        }
        Ok(Endpoint {
            network_id: n.id.clone(),
            network: n.name.clone(),
            endpoint_id: random_id(),
            bridge: n.bridge.clone(),
            veth: format!("vb{}{index:02x}", &m.id[..11.min(m.id.len())]),
            ifname: format!("eth{index}"),
            ip,
            prefix: alloc.subnet.prefix,
            gateway: alloc.gateway,
            mac: mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            aliases: req.aliases.clone(),
            dns_names,
            internal: n.internal,
            ip6: v6.map(|v| v.0),
            prefix6: v6.map_or(0, |v| v.1),
            gateway6: v6.map(|v| v.2),
            links: req.links.clone(),
            link_local_ips: req.link_local_ips.clone(),
        })
    }

    pub(super) fn register(&self, m: &Member, e: &Endpoint) {
        if e.dns_names.is_empty() {
            return;
        }
        self.dns.add(
            &e.network_id,
            DnsEntry {
                container: m.id.clone(),
                names: e.dns_names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                ip: e.ip,
                ip6: e.ip6,
                upstream: m.dns.clone(),
                links: e
                    .links
                    .iter()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(t, a)| (a.to_ascii_lowercase(), t.to_ascii_lowercase()))
                    .collect(),
            },
        );
    }

    /// After a daemon restart: the names of a running container's endpoints.
    pub fn register_all(&self, m: &Member, a: &Attachment) {
        for e in &a.endpoints {
            self.register(m, e);
        }
    }

    pub(super) fn release(&self, inner: &mut Inner, network_id: &str, bridge: &str, owner: &str) {
        self.edit_allocations(inner, network_id, bridge, |a| {
            a.release(owner);
            true
        });
    }

    /// Connects container `m` to `reqs` (in order: the first carries the default route and the
    /// published `ports`). Blocking (netlink).
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn attach(
        &self,
        m: &Member,
        reqs: &[EndpointRequest],
        ports: &[PortRequest],
    ) -> Result<Attachment, EngineError> {
        if !ports.is_empty() && !self.cfg.iptables {
            return Err(invalid(
                "publishing ports needs berthd's nftables rules (iptables is false)",
            ));
        }
        let mut endpoints: Vec<Endpoint> = Vec::new();
        {
            let mut inner = self.inner.lock().expect("networks");
            for (i, r) in reqs.iter().enumerate() {
                match self.new_endpoint(&mut inner, m, r, i) {
                    Ok(e) => endpoints.push(e),
                    Err(err) => {
                        for e in &endpoints {
                            self.release(&mut inner, &e.network_id, &e.bridge, &m.id);
                        }
                        return Err(err);
                    }
                }
            }
        }
        let requests = ports;
        let resolve = |endpoints: &[Endpoint]| match endpoints.first() {
            Some(p) => resolve_ports(requests, p.ip),
            None => Ok(Vec::new()),
        };
        let ports = resolve(&endpoints);
        let att = Attachment {
            netns: self.netns_path(&m.id),
            endpoints,
            ports: Vec::new(),
        };
        let mut ports = match ports {
            Ok(p) => p,
            Err(e) => {
                let _ = self.detach(&m.id, &att);
                return Err(e);
            }
        };
        // The ports are published last; a failure before or while publishing is undone
        // without them (the keys may be another container's: that is why publishing failed).
        let r = (|| {
            let _ = NetNs::remove(&att.netns);
            let ns = NetNs::create(&att.netns).map_err(net_err)?;
            for (i, e) in att.endpoints.iter().enumerate() {
                self.plumb(&ns, e, i == 0 && !e.internal)?;
            }
            if !ports.is_empty() {
                // A host port the kernel offered as free (`-p 127.0.0.1::80`) may be one
                // another container published a moment ago: its rules hold no socket. The
                // firewall refuses the duplicate; such a port is chosen again, a few times.
                let ephemeral = requests.iter().any(|r| r.host_port.is_none());
                let mut tries = 0;
                loop {
                    match self.firewall()?.publish(owner(&att.netns), &ports) {
                        Ok(()) => break,
                        Err(e)
                            if ephemeral
                                && tries < 8
                                && e.to_string().contains("already allocated") =>
                        {
                            tries += 1;
                            ports = resolve(&att.endpoints)?;
                        }
                        Err(e) => return Err(net_err(e)),
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            let _ = self.detach(&m.id, &att);
            return Err(e);
        }
        for e in &att.endpoints {
            self.register(m, e);
        }
        Ok(Attachment { ports, ..att })
    }

    pub(super) fn plumb(
        &self,
        ns: &NetNs,
        e: &Endpoint,
        default_route: bool,
    ) -> Result<(), EngineError> {
        let mtu = {
            let inner = self.inner.lock().expect("networks");
            inner.nets.get(&e.network_id).and_then(|n| n.mtu(&self.cfg))
        };
        let veth = bridge::Veth {
            host: &e.veth,
            ifname: &e.ifname,
            bridge: &e.bridge,
            mac: bridge::parse_mac(&e.mac).map_err(net_err)?,
            mtu,
            ip: e.ip,
            prefix: e.prefix,
            gateway: e.gateway,
            v6: e.ip6.map(|a| (a, e.prefix6, e.gateway6)),
            link_local: e
                .link_local_ips
                .iter()
                .map(|a| (*a, ports::link_local_prefix(a)))
                .collect(),
        };
        bridge::plumb(ns, &veth, default_route).map_err(net_err)
    }

    /// `network connect` of a running container: one more interface in its namespace.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn connect(
        &self,
        m: &Member,
        att: &mut Attachment,
        req: &EndpointRequest,
    ) -> Result<(), EngineError> {
        let n = self.find(&req.network)?;
        if att.endpoints.iter().any(|e| e.network_id == n.id) {
            return Err(forbidden(format!(
                "endpoint with name {} already exists in network {}",
                m.name, n.name
            )));
        }
        let index = (0..)
            .find(|i| !att.endpoints.iter().any(|e| e.ifname == format!("eth{i}")))
            .expect("a free index");
        let e = {
            let mut inner = self.inner.lock().expect("networks");
            self.new_endpoint(&mut inner, m, req, index)?
        };
        let ns = NetNs::open(&att.netns).map_err(net_err);
        let r = ns.and_then(|ns| {
            self.plumb(
                &ns,
                &e,
                !e.internal && att.endpoints.iter().all(|x| x.internal),
            )
        });
        if let Err(err) = r {
            let _ = bridge::delete_link(&e.veth);
            let mut inner = self.inner.lock().expect("networks");
            self.release(&mut inner, &e.network_id, &e.bridge, &m.id);
            return Err(err);
        }
        self.register(m, &e);
        att.endpoints.push(e);
        Ok(())
    }

    /// `network disconnect` of a running container: its interface on that network goes.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn disconnect(
        &self,
        id: &str,
        att: &mut Attachment,
        network_id: &str,
    ) -> Result<(), EngineError> {
        let Some(pos) = att
            .endpoints
            .iter()
            .position(|e| e.network_id == network_id)
        else {
            return Err(not_found("container is not connected to the network"));
        };
        let e = att.endpoints.remove(pos);
        if pos == 0 && !att.ports.is_empty() && self.cfg.iptables {
            // The published ports led to this address.
            self.firewall()?
                .unpublish(owner(&att.netns), &att.ports)
                .map_err(net_err)?;
            att.ports.clear();
        }
        self.dns.remove(&e.network_id, id);
        bridge::delete_link(&e.veth).map_err(net_err)?;
        let mut inner = self.inner.lock().expect("networks");
        self.release(&mut inner, &e.network_id, &e.bridge, id);
        Ok(())
    }

    /// Undoes an attachment: published ports, the namespace (and with it the veths), the
    /// addresses. Parts already gone are fine.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn detach(&self, id: &str, a: &Attachment) -> Result<(), EngineError> {
        if !a.ports.is_empty() && self.cfg.iptables {
            self.firewall()?
                .unpublish(owner(&a.netns), &a.ports)
                .map_err(net_err)?;
        }
        self.dns.remove_container(id);
        // The veths are not deleted here: once the namespace is unmounted and its last
        // process gone, the kernel destroys the namespace and, with its interfaces, the host
        // ends — without the RCU grace period a synchronous delete waits for. (A veth whose
        // namespace is still held is caught by `reconcile`.)
        NetNs::remove(&a.netns).map_err(net_err)?;
        let mut inner = self.inner.lock().expect("networks");
        for e in &a.endpoints {
            self.release(&mut inner, &e.network_id, &e.bridge, id);
        }
        Ok(())
    }

    /// Undoes what a start cut short by a crash may have left of container `id` when no
    /// attachment was recorded (the record is written once the namespace is plumbed): its
    /// namespace (and with it the veths), its names, its addresses. `reconcile` at the next
    /// start keeps these for a container that still exists, so its removal must sweep them;
    /// a container that never reached the network costs a look at each network's addresses.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn forget(&self, id: &str) {
        let ns = self.netns_path(id);
        if ns.exists() {
            tracing::info!(netns = %ns.display(), "removing the namespace of a start cut short");
            let _ = NetNs::remove(&ns);
        }
        self.dns.remove_container(id);
        let mut inner = self.inner.lock().expect("networks");
        let bridges = Self::bridges(&inner);
        for (nid, b) in &bridges {
            self.edit_allocations(&mut inner, nid, b, |a| a.retain_owners(|o| o != id));
        }
    }

    /// At daemon start: sets up the user networks again (their bridges may be gone after a
    /// reboot; their DNS servers start), and removes namespaces, veths and addresses of
    /// containers not in `known` (ids), left by a crash or by containers removed while berthd
    /// was down.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn reconcile(&self, known: &BTreeSet<String>) {
        let short: BTreeSet<&str> = known.iter().map(|k| &k[..11.min(k.len())]).collect();
        for e in std::fs::read_dir(&self.netns_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if !known.iter().any(|k| k.starts_with(&name)) {
                tracing::info!(netns = %name, "removing the namespace of a container that is gone");
                let _ = NetNs::remove(&e.path());
            }
        }
        let mut inner = self.inner.lock().expect("networks");
        let ids: Vec<String> = inner
            .nets
            .values()
            .filter(|n| n.driver == "bridge" && !n.is_default())
            .map(|n| n.id.clone())
            .collect();
        for id in ids {
            if let Err(e) = self.ensure_ready(&mut inner, &id) {
                tracing::warn!(network = %id, error = %e, "setting up the network failed");
            }
        }
        let bridges = Self::bridges(&inner);
        if let Ok(mut nl) = Netlink::open() {
            let links = nl.links().unwrap_or_default();
            // Only veths on this daemon's own bridges: links elsewhere are not berth's.
            for (_, b) in &bridges {
                if let Ok(bridge) = nl.link(b) {
                    for l in &links {
                        if let Some(s) = l.name.strip_prefix("vb") {
                            if l.controller == Some(bridge.index)
                                && s.len() == 13
                                && !short.contains(&s[..11])
                            {
                                let _ = nl.del_link(&l.name);
                            }
                        }
                    }
                }
            }
        }
        for (id, b) in &bridges {
            self.edit_allocations(&mut inner, id, b, |a| {
                a.retain_owners(|o| known.contains(o))
            });
        }
    }
}

impl NetworkService {
    /// Every bridge network's id and bridge name.
    fn bridges(inner: &Inner) -> Vec<(String, String)> {
        inner
            .nets
            .values()
            .filter(|n| n.driver == "bridge")
            .map(|n| (n.id.clone(), n.bridge.clone()))
            .collect()
    }
}

/// The firewall owner name of an attachment: its namespace file's name (24 hex digits).
fn owner(netns: &Path) -> &str {
    netns
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("unknown")
}
