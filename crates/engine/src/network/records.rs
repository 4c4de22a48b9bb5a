//! Network records: loading and saving them, the pre-defined networks, lookups, create and remove, and prune.

use super::*;

impl NetworkService {
    pub(super) fn records_dir(&self) -> PathBuf {
        self.state_dir.join("networks")
    }

    pub(super) fn save(&self, n: &Network) -> Result<(), EngineError> {
        let dir = self.records_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        Ok(berth_durable::save(&dir.join(format!("{}.json", n.id)), n)?)
    }

    /// Reads the records and creates the pre-defined networks that are missing.
    pub(super) fn load(&self) -> Result<(), EngineError> {
        let mut inner = self.inner.lock().expect("networks");
        for e in std::fs::read_dir(self.records_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                match berth_durable::load::<Network>(&p) {
                    Ok(n) => {
                        inner.nets.insert(n.id.clone(), n);
                    }
                    Err(e) => tracing::warn!(error = %e, "network record skipped"),
                }
            }
        }
        let now = berth_shim::rfc3339(std::time::SystemTime::now());
        let mut wanted = vec![("host", "host"), ("none", "null")];
        if self.cfg.bridge != "none" {
            wanted.push((DEFAULT_NETWORK, "bridge"));
        }
        for (name, driver) in wanted {
            let existing = inner.nets.values().find(|n| n.name == name).cloned();
            let mut n = existing.clone().unwrap_or_else(|| Network {
                id: random_id(),
                name: name.into(),
                driver: driver.into(),
                created: now.clone(),
                internal: false,
                attachable: false,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                bridge: String::new(),
                subnet: None,
                gateway: None,
                range: None,
                subnet6: None,
                gateway6: None,
                range6: None,
                ipam_options: None,
                aux_addresses: BTreeMap::new(),
            });
            if name == DEFAULT_NETWORK {
                n.bridge = self.cfg.bridge.clone();
                n.options = BTreeMap::from([
                    (
                        "com.docker.network.bridge.default_bridge".into(),
                        "true".into(),
                    ),
                    ("com.docker.network.bridge.enable_icc".into(), "true".into()),
                    (
                        "com.docker.network.bridge.enable_ip_masquerade".into(),
                        "true".into(),
                    ),
                    (
                        "com.docker.network.bridge.host_binding_ipv4".into(),
                        "0.0.0.0".into(),
                    ),
                    (
                        "com.docker.network.bridge.name".into(),
                        self.cfg.bridge.clone(),
                    ),
                    (
                        "com.docker.network.driver.mtu".into(),
                        self.cfg.mtu.unwrap_or(1500).to_string(),
                    ),
                ]);
                if let Some((gw, sn)) = self.cfg.bip {
                    n.subnet = Some(sn);
                    n.gateway = Some(gw);
                }
            }
            if existing.as_ref() != Some(&n) {
                self.save(&n)?;
            }
            inner.nets.insert(n.id.clone(), n);
        }
        Ok(())
    }

    /// Every network, by name.
    pub fn list(&self) -> Vec<Network> {
        let mut v: Vec<Network> = self
            .inner
            .lock()
            .expect("networks")
            .nets
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A network by full id, name, or id prefix (docker's order).
    pub fn find(&self, key: &str) -> Result<Network, EngineError> {
        let inner = self.inner.lock().expect("networks");
        Self::find_in(&inner, key).cloned()
    }

    pub(super) fn find_in<'a>(inner: &'a Inner, key: &str) -> Result<&'a Network, EngineError> {
        if let Some(n) = inner.nets.get(key) {
            return Ok(n);
        }
        if let Some(n) = inner.nets.values().find(|n| n.name == key) {
            return Ok(n);
        }
        let by_prefix: Vec<&Network> = if key.is_empty() {
            Vec::new()
        } else {
            inner
                .nets
                .values()
                .filter(|n| n.id.starts_with(key))
                .collect()
        };
        match by_prefix.as_slice() {
            [one] => Ok(one),
            [] => Err(not_found(format!("network {key} not found"))),
            _ => Err(not_found(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                by_prefix.len()
            ))),
        }
    }

    /// The subnet and gateway of a network, as set up (or as recorded).
    pub fn addressing(&self, n: &Network) -> Option<(Subnet, Ipv4Addr)> {
        let inner = self.inner.lock().expect("networks");
        if let Some(a) = inner.ready.get(&n.id) {
            return Some((a.subnet, a.gateway));
        }
        if let (Some(s), Some(g)) = (n.subnet, n.gateway) {
            return Some((s, g));
        }
        self.saved_allocations(&n.bridge)
            .map(|a| (a.subnet, a.gateway))
    }

    /// `POST /networks/create`. The bridge is set up at once; any failure undoes it all.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn create(&self, req: CreateRequest) -> Result<Network, EngineError> {
        if !valid_network_name(&req.name) {
            return Err(invalid(format!(
                "invalid network name {:?}: berth takes any name without '/' or control characters",
                req.name
            )));
        }
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or("bridge".into());
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )))
            }
            other => return Err(not_found(format!("plugin \"{other}\" not found"))),
        }
        if let Some(d) = req
            .ipam_driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "default")
        {
            return Err(not_found(format!("plugin \"{d}\" not found")));
        }

        for k in req.options.keys() {
            if !matches!(
                k.as_str(),
                "com.docker.network.bridge.name"
                    | "com.docker.network.driver.mtu"
                    | "com.docker.network.bridge.enable_ip_masquerade"
                    | "com.docker.network.bridge.enable_icc"
                    | "com.docker.network.bridge.host_binding_ipv4"
            ) {
                return Err(invalid(format!("unknown bridge network option: {k}")));
            }
        }
        // One IPv4 pool and, with --ipv6, one IPv6 pool.
        let (v6_configs, v4_configs): (Vec<_>, Vec<_>) =
            req.configs.iter().cloned().partition(|(s, g, _)| {
                s.as_deref().is_some_and(|s| s.contains(':'))
                    || g.as_deref().is_some_and(|g| g.contains(':'))
            });
        if v4_configs.len() > 1 || v6_configs.len() > 1 {
            return Err(invalid(
                "only one IPv4 and one IPv6 address pool per network are supported",
            ));
        }
        if !v6_configs.is_empty() && !req.ipv6 {
            return Err(invalid(
                "an IPv6 subnet needs --ipv6 (EnableIPv6) on the network",
            ));
        }
        let mut range6 = None;
        let (subnet6, gateway6) = match v6_configs.first() {
            Some((s, g, r)) => {
                let r6 = r
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(Subnet6::parse)
                    .transpose()
                    .map_err(net_err)?;
                range6 = r6;
                let sn = Subnet6::parse(s.as_deref().unwrap_or_default()).map_err(net_err)?;
                let gw = g
                    .as_deref()
                    .filter(|g| !g.is_empty())
                    .map(|g| {
                        g.parse::<Ipv6Addr>()
                            .map_err(|_| invalid(format!("invalid gateway address: {g}")))
                    })
                    .transpose()?;
                (Some(sn), gw)
            }
            None if req.ipv6 => {
                return Err(invalid(
                    "--ipv6 needs an IPv6 --subnet (berth has no default IPv6 pool)",
                ))
            }
            None => (None, None),
        };
        let alloc6 = subnet6
            .map(|sn| Allocations6::new(sn, gateway6).and_then(|a| a.with_range(range6)))
            .transpose()
            .map_err(net_err)?;
        let (subnet, gateway, range) = v4_configs.into_iter().next().unwrap_or((None, None, None));
        let parse_sn =
            |s: &str| -> Result<Subnet, EngineError> { Subnet::parse(s).map_err(net_err) };
        let range = range
            .filter(|r| !r.is_empty())
            .map(|r| parse_sn(&r))
            .transpose()?;
        if range.is_some() && subnet.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "no matching subnet for range: an --ip-range needs a --subnet",
            ));
        }
        let subnet = subnet
            .filter(|s| !s.is_empty())
            .map(|s| parse_sn(&s))
            .transpose()?;
        let gateway = gateway
            .filter(|s| !s.is_empty())
            .map(|g| {
                g.parse::<Ipv4Addr>()
                    .map_err(|_| invalid(format!("invalid gateway address: {g}")))
            })
            .transpose()?;
        if gateway.is_some() && subnet.is_none() {
            return Err(invalid(
                "no matching subnet for gateway: a gateway needs a --subnet",
            ));
        }
        let mut inner = self.inner.lock().expect("networks");
        if inner.nets.values().any(|n| n.name == req.name) {
            return Err(conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let id = random_id();
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(b) => {
                if b.is_empty()
                    || b.len() > 15
                    || !b
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
                {
                    return Err(invalid(format!("invalid bridge name {b:?}")));
                }
                if inner.nets.values().any(|n| n.bridge == *b) {
                    return Err(conflict(format!(
                        "bridge name {b} is used by another network"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        let mut nl = Netlink::open().map_err(net_err)?;
        if nl.link(&bridge).is_ok() {
            return Err(conflict(format!(
                "a network device named {bridge} exists already on the host"
            )));
        }
        // Subnets of the other networks (set up or not) and the host's routes.
        let taken: Vec<Subnet> = inner
            .nets
            .values()
            .filter_map(|n| {
                inner
                    .ready
                    .get(&n.id)
                    .map(|a| a.subnet)
                    .or(n.subnet)
                    .or_else(|| self.saved_allocations(&n.bridge).map(|a| a.subnet))
            })
            .collect();
        if let Some(sn6) = subnet6 {
            if inner
                .nets
                .values()
                .filter_map(|n| n.subnet6)
                .any(|t| t.overlaps(&sn6))
            {
                return Err(forbidden(
                    "invalid pool request: Pool overlaps with other one on this address space",
                ));
            }
        }
        let routes = nl.ipv4_routes().map_err(net_err)?;
        let subnet = match subnet {
            Some(sn) => {
                if taken.iter().any(|t| t.overlaps(&sn)) {
                    return Err(forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space",
                    ));
                }
                let host_routes: Vec<Subnet> = routes
                    .iter()
                    .filter(|(_, p)| *p > 0)
                    .filter_map(|(n, p)| Subnet::new(*n, (*p).min(30)).ok())
                    .collect();
                if let Some(r) = host_routes.iter().find(|r| r.overlaps(&sn)) {
                    return Err(forbidden(format!(
                        "invalid pool request: {sn} overlaps with the host's route to {r}"
                    )));
                }
                sn
            }
            None => ipam::choose_subnet(&self.cfg.pools, &taken, &routes).map_err(net_err)?,
        };
        let mut aux_addresses = BTreeMap::new();
        for (name, a) in &req.aux_addresses {
            let ip = a.parse::<Ipv4Addr>().map_err(|_| {
                invalid(format!(
                    "invalid auxiliary address {a}: berth keeps IPv4 auxiliary addresses only"
                ))
            })?;
            aux_addresses.insert(name.clone(), ip);
        }
        let alloc = Allocations::new(subnet, gateway)
            .and_then(|a| a.with_range(range))
            .and_then(|a| a.with_reserved(aux_addresses.values().copied()))
            .map_err(net_err)?;
        let n = Network {
            id: id.clone(),
            name: req.name.clone(),
            driver,
            created: berth_shim::rfc3339(std::time::SystemTime::now()),
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels.clone(),
            options: req.options.clone(),
            bridge: bridge.clone(),
            subnet: Some(subnet),
            gateway: Some(alloc.gateway),
            range,
            subnet6: alloc6.as_ref().map(|a| a.subnet),
            gateway6: alloc6.as_ref().map(|a| a.gateway),
            range6,
            ipam_options: req.ipam_options.clone(),
            aux_addresses,
        };
        self.save(&n)?;
        inner.nets.insert(id.clone(), n.clone());
        if let Err(e) = self.ensure_ready(&mut inner, &id) {
            // Back to how the host was.
            inner.nets.remove(&id);
            inner.ready.remove(&id);
            inner.servers.remove(&id);
            let _ = bridge::delete_link(&bridge);
            let _ = std::fs::remove_file(self.records_dir().join(format!("{id}.json")));
            let _ = std::fs::remove_file(self.ipam_path(&bridge));
            let _ = self.sync_firewall(&inner);
            return Err(e);
        }
        tracing::info!(network = %n.name, bridge = %bridge, subnet = %subnet, "network created");
        Ok(n)
    }

    /// `DELETE /networks/{id}`.
    #[tracing::instrument(level = "debug", skip_all, fields(key = %key))]
    pub fn remove(&self, key: &str) -> Result<(), EngineError> {
        let mut inner = self.inner.lock().expect("networks");
        let n = Self::find_in(&inner, key)?.clone();
        if n.predefined() {
            return Err(forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        // Every endpoint holds an address of the network.
        let in_use = inner
            .ready
            .get(&n.id)
            .or(self.saved_allocations(&n.bridge).as_ref())
            .is_some_and(|a| !a.allocated.is_empty());
        if in_use {
            return Err(forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        inner.servers.remove(&n.id);
        inner.ready.remove(&n.id);
        if let Err(e) = bridge::delete_link(&n.bridge) {
            tracing::warn!(bridge = %n.bridge, error = %e, "removing the bridge failed")
        }
        inner.nets.remove(&n.id);
        let _ = std::fs::remove_file(self.ipam_path(&n.bridge));
        std::fs::remove_file(self.records_dir().join(format!("{}.json", n.id)))
            .map_err(|e| unavailable(format!("remove the network record: {e}")))?;
        if self.cfg.iptables {
            self.sync_firewall(&inner)?;
        }
        Ok(())
    }

    /// `POST /networks/prune`: user networks no container is on. Returns their names.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn prune(&self, keep: impl Fn(&Network) -> bool) -> Vec<String> {
        let candidates: Vec<Network> = self
            .list()
            .into_iter()
            .filter(|n| !n.predefined() && !keep(n))
            .collect();
        candidates
            .into_iter()
            .filter(|n| self.remove(&n.id).is_ok())
            .map(|n| n.name)
            .collect()
    }
}
