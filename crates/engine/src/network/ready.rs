//! Making a network usable on the host: its bridge, addresses, firewall rules and DNS server, and its address allocations on disk.

use super::*;

impl NetworkService {
    pub(super) fn ipam_path(&self, bridge: &str) -> PathBuf {
        self.state_dir.join(format!("{bridge}.json"))
    }

    /// A network's saved allocations, if it has any yet.
    pub(super) fn saved_allocations(&self, bridge: &str) -> Option<Allocations> {
        Allocations::load_or(&self.ipam_path(bridge), || {
            Err(berth_network::Error::NotFound(
                "no saved allocations".into(),
            ))
        })
        .ok()
    }

    /// Changes a network's allocations (the loaded ones if it is set up, else its file) and
    /// saves them when `f` says it changed something.
    pub(super) fn edit_allocations(
        &self,
        inner: &mut Inner,
        network_id: &str,
        bridge: &str,
        f: impl FnOnce(&mut Allocations) -> bool,
    ) {
        let mut from_file;
        let alloc = match inner.ready.get_mut(network_id) {
            Some(a) => a,
            None => match self.saved_allocations(bridge) {
                Some(a) => {
                    from_file = a;
                    &mut from_file
                }
                None => return,
            },
        };
        if f(alloc) {
            let _ = alloc.save(&self.ipam_path(bridge));
        }
    }

    /// The firewall's view of every network that is set up.
    pub(super) fn sync_firewall(&self, inner: &Inner) -> Result<(), EngineError> {
        if !self.cfg.iptables {
            return Ok(());
        }
        let rules: Vec<NetworkRule> = inner
            .nets
            .values()
            .filter_map(|n| {
                inner.ready.get(&n.id).map(|a| NetworkRule {
                    bridge: n.bridge.clone(),
                    subnet: a.subnet,
                    masquerade: n.masquerade(),
                    internal: n.internal,
                    subnet6: a.v6.as_ref().map(|v| v.subnet),
                })
            })
            .collect();
        self.firewall()?.sync_networks(&rules).map_err(net_err)
    }

    /// Creates (or adopts) a network's bridge, its address, NAT and DNS; loads its allocations.
    pub(super) fn ensure_ready(&self, inner: &mut Inner, id: &str) -> Result<(), EngineError> {
        if inner.ready.contains_key(id) {
            return Ok(());
        }
        let n = inner
            .nets
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(format!("network {id} not found")))?;
        if n.driver != "bridge" {
            return Err(invalid(format!("network {} has no bridge", n.name)));
        }
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| unavailable(format!("create {}: {e}", self.state_dir.display())))?;
        let mut nl = Netlink::open().map_err(net_err)?;
        let path = self.ipam_path(&n.bridge);
        let saved = self.saved_allocations(&n.bridge);
        let alloc = match ((n.subnet, n.gateway), saved) {
            ((Some(sn), Some(gw)), Some(s)) if s.subnet == sn && s.gateway == gw => s,
            ((Some(sn), gw), _) => Allocations::new(sn, gw)
                .and_then(|a| a.with_range(n.range))
                .and_then(|a| a.with_reserved(n.aux_addresses.values().copied()))
                .map_err(net_err)?,
            ((None, _), Some(s)) => s,
            ((None, _), None) => {
                // The default bridge without `bip`: a subnet that no route of the host
                // overlaps (except the bridge's own, when it exists already), nor any network.
                let own: Vec<(Ipv4Addr, u8)> = nl
                    .addresses(&n.bridge)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(ip, p)| match ip {
                        IpAddr::V4(v) => Some((v, p)),
                        IpAddr::V6(_) => None,
                    })
                    .collect();
                if let Some((ip, p)) = own.first() {
                    let sn = Subnet::new(*ip, *p).map_err(net_err)?;
                    Allocations::new(sn, Some(*ip)).map_err(net_err)?
                } else {
                    let routes = nl.ipv4_routes().map_err(net_err)?;
                    let taken: Vec<Subnet> = inner.nets.values().filter_map(|o| o.subnet).collect();
                    let sn =
                        ipam::choose_subnet(&self.cfg.pools, &taken, &routes).map_err(net_err)?;
                    Allocations::new(sn, None).map_err(net_err)?
                }
            }
        };
        let mut alloc = alloc;
        match (n.subnet6, &alloc.v6) {
            (Some(sn6), Some(v6)) if v6.subnet == sn6 && Some(v6.gateway) == n.gateway6 => {}
            (Some(sn6), _) => {
                alloc.v6 = Some(
                    Allocations6::new(sn6, n.gateway6)
                        .and_then(|a| a.with_range(n.range6))
                        .map_err(net_err)?,
                )
            }
            (None, _) => alloc.v6 = None,
        }
        bridge::ensure(
            &mut nl,
            &bridge::Bridge {
                name: &n.bridge,
                mtu: n.mtu(&self.cfg),
                v4: (alloc.gateway, alloc.subnet.prefix),
                v6: alloc.v6.as_ref().map(|v6| (v6.gateway, v6.subnet.prefix)),
                firewall: self.cfg.iptables,
            },
        )
        .map_err(net_err)?;
        alloc.save(&path).map_err(net_err)?;
        let (subnet, gateway) = (alloc.subnet, alloc.gateway);
        inner.ready.insert(id.to_string(), alloc);
        if let Err(e) = self.sync_firewall(inner) {
            inner.ready.remove(id);
            return Err(e);
        }
        if n.has_dns() {
            // Network operations run on tokio's blocking threads, which know the runtime.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let fallback = {
                        let d = self.cfg.dns.clone();
                        Arc::new(move || {
                            if d.is_empty() {
                                berth_network::dns::host_resolvers()
                            } else {
                                d.clone()
                            }
                        })
                    };
                    match berth_network::dns::Server::start(
                        &rt,
                        n.id.clone(),
                        gateway,
                        subnet,
                        self.dns.clone(),
                        fallback,
                    ) {
                        Ok(s) => {
                            inner.servers.insert(n.id.clone(), s);
                        }
                        Err(e) => {
                            inner.ready.remove(id);
                            return Err(unavailable(format!(
                                "start the DNS server of network {} on {gateway}:53: {e}",
                                n.name
                            )));
                        }
                    }
                }
                Err(_) => {
                    inner.ready.remove(id);
                    return Err(unavailable(format!(
                        "network {}: no runtime to serve its DNS from",
                        n.name
                    )));
                }
            }
        }
        tracing::info!(network = %n.name, bridge = %n.bridge, subnet = %subnet, "network ready");
        Ok(())
    }

    pub(super) fn firewall(&self) -> Result<Firewall, EngineError> {
        Firewall::new(&self.cfg.table).map_err(net_err)
    }
}
