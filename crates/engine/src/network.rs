//! Networks, and the containers' places on them.
//!
//! A network is a record under `<data-root>/network/networks/<id>.json`. Three are
//! pre-defined, as with docker: `bridge` (the default bridge, device `berth0` unless
//! configured), `host` and `none`. User-defined networks use the bridge driver; each has a
//! bridge device (`br-<id12>`), a subnet chosen so that it collides with no other network and
//! no host route (or given), an address allocation file (`<data-root>/network/<bridge>.json`),
//! NAT, isolation from the other networks in berth's nftables table, and an embedded DNS
//! server on its gateway ([`berth_network::dns`]).
//!
//! A container on one or more networks gets a persistent network namespace
//! (`<exec-root>/netns/<id>`) with one veth per network (`eth0`, `eth1`, … inside; the host
//! end enslaved to the network's bridge), an address from each network, a default route
//! through its first network, and its published ports (to its first network's address). The
//! container's spec joins the namespace by path, so a restart by the shim keeps addresses and
//! ports; connect and disconnect add or remove one veth in the live namespace.
//!
//! What a container holds is written to `<container dir>/network.json` before the container
//! runs, so a crash at any point leaves a record to undo: [`NetworkService::detach`] at a final
//! stop and at removal, and [`NetworkService::reconcile`] when berthd starts (namespaces,
//! veths and addresses of containers that no longer exist).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_network::bridge;
use berth_network::firewall::{Firewall, NetworkRule, PortMap, Proto};
use berth_network::ipam::{self, Allocations, Allocations6};
/// Address pools and subnets, for the daemon's `bip` and `default-address-pools` settings.
pub use berth_network::ipam::{Pool, Subnet, Subnet6};
use berth_network::netlink::Netlink;
use berth_network::netns::NetNs;
use serde::{Deserialize, Serialize};

use crate::error::{conflict, forbidden, invalid, not_found, unavailable, EngineError};
use berth_network::dns::{DnsEntry, DnsTable};

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Bridge settings (daemon.json `bridge`, `bip`, `default-address-pools`, `mtu`, `iptables`,
/// `dns`).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub bridge: String,
    /// The bridge's address and subnet (`172.30.0.1/16`); chosen from the pools when absent.
    pub bip: Option<(Ipv4Addr, Subnet)>,
    pub pools: Vec<Pool>,
    pub mtu: Option<u32>,
    /// Manage NAT and published ports in nftables.
    pub iptables: bool,
    /// The nftables table (`berth`).
    pub table: String,
    /// Default DNS servers of containers (and of the embedded DNS when a container has none).
    pub dns: Vec<IpAddr>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            bip: None,
            pools: ipam::default_pools(),
            mtu: None,
            iptables: true,
            table: "berth".into(),
            dns: Vec::new(),
        }
    }
}

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The bridge device (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    /// The subnet and gateway (for the default bridge: once it has been set up).
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Dual stack (`--ipv6`): the IPv6 subnet and gateway.
    #[serde(default)]
    pub subnet6: Option<Subnet6>,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

impl berth_durable::Record for Network {
    const KIND: &'static str = "network record";
    const SCHEMA: u32 = 1;
}

impl Network {
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    /// `bridge`, `host` and `none`.
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// Whether containers on it resolve each other by name (user-defined bridges).
    pub fn has_dns(&self) -> bool {
        self.driver == "bridge" && !self.is_default()
    }

    fn masquerade(&self) -> bool {
        self.options
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .is_none_or(|v| v != "false")
    }

    fn mtu(&self, cfg: &NetworkConfig) -> Option<u32> {
        self.options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok())
            .or(cfg.mtu)
    }
}

/// `POST /networks/create`, resolved.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub ipam_driver: Option<String>,
    /// `IPAM.Config`: subnet, gateway, IP range.
    pub configs: Vec<(Option<String>, Option<String>, Option<String>)>,
}

/// A container's wish to be on a network (`--network`, `--network-alias`, `--ip`,
/// `--mac-address`, `network connect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// The network's name (as given; resolved at each start).
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub mac: Option<String>,
}

/// The container asking: for DNS names and upstream servers.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub dns: Vec<IpAddr>,
}

/// One network interface of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network: String,
    pub endpoint_id: String,
    pub bridge: String,
    /// The host end of the veth.
    pub veth: String,
    /// Its name inside (`eth0`, …).
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default)]
    pub internal: bool,
    /// On a dual-stack network: the IPv6 address, prefix and gateway.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

/// What one container holds: its namespace, its endpoints and its published ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub netns: PathBuf,
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub ports: Vec<PortMap>,
}

impl Attachment {
    /// Whether its network namespace still exists (a container that stopped may not have
    /// given it back yet).
    pub fn is_live(&self) -> bool {
        NetNs::is_live(&self.netns)
    }
}

impl berth_durable::Record for Attachment {
    const KIND: &'static str = "network attachment";
    const SCHEMA: u32 = 1;
}

impl Attachment {
    /// The first endpoint: the default route and the published ports go through it.
    pub fn primary(&self) -> Option<&Endpoint> {
        self.endpoints.first()
    }

    /// The gateway of the first network with a DNS server (the container's nameserver).
    pub fn dns_server(&self) -> Option<Ipv4Addr> {
        self.endpoints
            .iter()
            .find(|e| e.network != DEFAULT_NETWORK)
            .map(|e| e.gateway)
    }
}

fn net_err(e: berth_network::Error) -> EngineError {
    match e {
        berth_network::Error::Invalid(m) | berth_network::Error::Exhausted(m) => invalid(m),
        other => unavailable(other.to_string()),
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// By id.
    nets: BTreeMap<String, Network>,
    /// The allocations of networks whose bridge is set up, by network id.
    ready: HashMap<String, Allocations>,
    servers: HashMap<String, berth_network::dns::Server>,
}

/// The network service.
pub struct NetworkService {
    cfg: NetworkConfig,
    state_dir: PathBuf,
    netns_dir: PathBuf,
    inner: Mutex<Inner>,
    dns: Arc<DnsTable>,
}

impl std::fmt::Debug for NetworkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkService")
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// A published port asked for: `[ip:]host[-range]:container/proto`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Option<Ipv4Addr>,
    /// None: a free port chosen by the kernel.
    pub host_port: Option<u16>,
}

fn random_id() -> String {
    crate::id::ContainerId::random().as_str().to_string()
}

fn valid_network_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl NetworkService {
    pub fn new(cfg: NetworkConfig, data_root: &Path, exec_root: &Path) -> Self {
        let svc = NetworkService {
            state_dir: data_root.join("network"),
            netns_dir: exec_root.join("netns"),
            cfg,
            inner: Mutex::new(Inner::default()),
            dns: Arc::new(DnsTable::default()),
        };
        if let Err(e) = svc.load() {
            tracing::warn!(error = %e, "loading the network records failed");
        }
        svc
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    fn records_dir(&self) -> PathBuf {
        self.state_dir.join("networks")
    }

    fn ipam_path(&self, bridge: &str) -> PathBuf {
        self.state_dir.join(format!("{bridge}.json"))
    }

    /// A network's saved allocations, if it has any yet.
    fn saved_allocations(&self, bridge: &str) -> Option<Allocations> {
        Allocations::load_or(&self.ipam_path(bridge), || {
            Err(berth_network::Error::NotFound(
                "no saved allocations".into(),
            ))
        })
        .ok()
    }

    /// Changes a network's allocations (the loaded ones if it is set up, else its file) and
    /// saves them when `f` says it changed something.
    fn edit_allocations(
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

    fn save(&self, n: &Network) -> Result<(), EngineError> {
        let dir = self.records_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        Ok(berth_durable::save(&dir.join(format!("{}.json", n.id)), n)?)
    }

    /// Reads the records and creates the pre-defined networks that are missing.
    fn load(&self) -> Result<(), EngineError> {
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
                subnet6: None,
                gateway6: None,
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

    fn find_in<'a>(inner: &'a Inner, key: &str) -> Result<&'a Network, EngineError> {
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
    pub fn create(&self, req: CreateRequest) -> Result<Network, EngineError> {
        if !valid_network_name(&req.name) {
            return Err(invalid(format!(
                "invalid network name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
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
        let (subnet6, gateway6) = match v6_configs.first() {
            Some((s, g, r)) => {
                if r.as_deref().is_some_and(|r| !r.is_empty()) {
                    return Err(invalid("--ip-range is not supported by berth yet"));
                }
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
            .map(|sn| Allocations6::new(sn, gateway6))
            .transpose()
            .map_err(net_err)?;
        let (subnet, gateway, range) = v4_configs.into_iter().next().unwrap_or((None, None, None));
        if range.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(invalid("--ip-range is not supported by berth yet"));
        }
        let parse_sn =
            |s: &str| -> Result<Subnet, EngineError> { Subnet::parse(s).map_err(net_err) };
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
        let alloc = Allocations::new(subnet, gateway).map_err(net_err)?;
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
            subnet6: alloc6.as_ref().map(|a| a.subnet),
            gateway6: alloc6.as_ref().map(|a| a.gateway),
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

    /// The firewall's view of every network that is set up.
    fn sync_firewall(&self, inner: &Inner) -> Result<(), EngineError> {
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
    fn ensure_ready(&self, inner: &mut Inner, id: &str) -> Result<(), EngineError> {
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
            ((Some(sn), gw), _) => Allocations::new(sn, gw).map_err(net_err)?,
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
            (Some(sn6), _) => alloc.v6 = Some(Allocations6::new(sn6, n.gateway6).map_err(net_err)?),
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

    fn firewall(&self) -> Result<Firewall, EngineError> {
        Firewall::new(&self.cfg.table).map_err(net_err)
    }

    /// The namespace file of a container.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(&id[..24.min(id.len())])
    }

    /// Allocates an endpoint on network `req.network` for `m`.
    fn new_endpoint(
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
        })
    }

    fn register(&self, m: &Member, e: &Endpoint) {
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
            },
        );
    }

    /// After a daemon restart: the names of a running container's endpoints.
    pub fn register_all(&self, m: &Member, a: &Attachment) {
        for e in &a.endpoints {
            self.register(m, e);
        }
    }

    fn release(&self, inner: &mut Inner, network_id: &str, bridge: &str, owner: &str) {
        self.edit_allocations(inner, network_id, bridge, |a| {
            a.release(owner);
            true
        });
    }

    /// Connects container `m` to `reqs` (in order: the first carries the default route and the
    /// published `ports`). Blocking (netlink).
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
        let ports = match endpoints.first() {
            Some(p) => resolve_ports(ports, p.ip),
            None => Ok(Vec::new()),
        };
        let att = Attachment {
            netns: self.netns_path(&m.id),
            endpoints,
            ports: Vec::new(),
        };
        let ports = match ports {
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
                self.firewall()?
                    .publish(owner(&att.netns), &ports)
                    .map_err(net_err)?;
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

    fn plumb(&self, ns: &NetNs, e: &Endpoint, default_route: bool) -> Result<(), EngineError> {
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
        };
        bridge::plumb(ns, &veth, default_route).map_err(net_err)
    }

    /// `network connect` of a running container: one more interface in its namespace.
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

    /// `POST /networks/prune`: user networks no container is on. Returns their names.
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

    /// At daemon start: sets up the user networks again (their bridges may be gone after a
    /// reboot; their DNS servers start), and removes namespaces, veths and addresses of
    /// containers not in `known` (ids), left by a crash or by containers removed while berthd
    /// was down.
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
        let bridges: Vec<(String, String)> = inner
            .nets
            .values()
            .filter(|n| n.driver == "bridge")
            .map(|n| (n.id.clone(), n.bridge.clone()))
            .collect();
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

/// A container's wish for network `n` from its API endpoint settings (`EndpointsConfig`).
pub fn endpoint_request(
    n: &Network,
    ep: Option<&bollard_stubs::models::EndpointSettings>,
) -> Result<EndpointRequest, EngineError> {
    let ip = ep
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|c| c.ipv4_address.as_deref())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Ipv4Addr>()
                .map_err(|_| invalid(format!("invalid IPv4 address: {s}")))
        })
        .transpose()?;
    let ip6 = ep
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|c| c.ipv6_address.as_deref())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Ipv6Addr>()
                .map_err(|_| invalid(format!("invalid IPv6 address: {s}")))
        })
        .transpose()?;
    if n.is_default() && ip6.is_some() {
        return Err(invalid(
            "user specified IP address is supported on user defined networks only",
        ));
    }
    let mac = ep
        .and_then(|e| e.mac_address.clone())
        .filter(|m| !m.is_empty());
    if let Some(m) = &mac {
        parse_mac(m)?;
    }
    let mut aliases: Vec<String> = Vec::new();
    for a in ep.and_then(|e| e.aliases.clone()).unwrap_or_default() {
        if !a.is_empty() && !aliases.contains(&a) {
            aliases.push(a);
        }
    }
    Ok(EndpointRequest {
        network: n.name.clone(),
        aliases,
        ip,
        ip6,
        mac,
    })
}

fn parse_mac(s: &str) -> Result<[u8; 6], EngineError> {
    bridge::parse_mac(s).map_err(net_err)
}

/// The firewall owner name of an attachment: its namespace file's name (24 hex digits).
fn owner(netns: &Path) -> &str {
    netns
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("unknown")
}

/// Chooses host ports: a given one must be free to bind (another program may not hold it);
/// none means a free one from the kernel.
fn resolve_ports(reqs: &[PortRequest], ip: Ipv4Addr) -> Result<Vec<PortMap>, EngineError> {
    let mut out: Vec<PortMap> = Vec::new();
    for r in reqs {
        let bind_ip = r.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let port = match r.host_port {
            Some(p) => {
                let taken = match r.proto {
                    Proto::Tcp => std::net::TcpListener::bind((bind_ip, p)).is_err(),
                    Proto::Udp => std::net::UdpSocket::bind((bind_ip, p)).is_err(),
                };
                if taken
                    || out
                        .iter()
                        .any(|o| o.proto == r.proto && o.host_port == p && o.host_ip == r.host_ip)
                {
                    return Err(invalid(format!(
                        "driver failed programming external connectivity: Bind for {bind_ip}:{p} failed: port is already allocated"
                    )));
                }
                p
            }
            None => {
                let p = match r.proto {
                    Proto::Tcp => std::net::TcpListener::bind((bind_ip, 0))
                        .and_then(|l| l.local_addr())
                        .map(|a| a.port()),
                    Proto::Udp => std::net::UdpSocket::bind((bind_ip, 0))
                        .and_then(|l| l.local_addr())
                        .map(|a| a.port()),
                };
                p.map_err(|e| unavailable(format!("find a free port on {bind_ip}: {e}")))?
            }
        };
        out.push(PortMap {
            proto: r.proto,
            host_ip: r.host_ip,
            host_port: port,
            container_ip: ip,
            container_port: r.container_port,
        });
    }
    Ok(out)
}

/// The ports a container asks for: `PortBindings` (`80/tcp` → host IP and port or range) and,
/// with `PublishAllPorts`, every exposed port on a free host port.
pub fn port_requests(
    bindings: Option<&bollard_stubs::models::PortMap>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<PortRequest>, EngineError> {
    let parse_key = |k: &str| -> Result<(u16, Proto), EngineError> {
        let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(invalid(format!("invalid proto: {other}"))),
        };
        let port = p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format!("invalid containerPort: {p}")))?;
        Ok((port, proto))
    };
    let mut out = Vec::new();
    let mut bound = BTreeSet::new();
    for (k, list) in bindings.into_iter().flatten() {
        let (cport, proto) = parse_key(k)?;
        bound.insert((cport, proto));
        for b in list.iter().flatten() {
            let host_ip = match b
                .host_ip
                .as_deref()
                .filter(|s| !s.is_empty() && *s != "0.0.0.0")
            {
                Some(s) => Some(
                    s.parse::<Ipv4Addr>()
                        .map_err(|_| invalid(format!("invalid IP address: {s}")))?,
                ),
                None => None,
            };
            let host_port = match b.host_port.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    s.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| invalid(format!("invalid hostPort: {s}")))?,
                ),
                None => None,
            };
            out.push(PortRequest {
                proto,
                container_port: cport,
                host_ip,
                host_port,
            });
        }
    }
    if publish_all {
        for e in exposed {
            let (cport, proto) = parse_key(e)?;
            if !bound.contains(&(cport, proto)) {
                out.push(PortRequest {
                    proto,
                    container_port: cport,
                    host_ip: None,
                    host_port: None,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::PortBinding;

    #[test]
    fn port_requests_from_bindings_and_exposed_ports() {
        let mut b = bollard_stubs::models::PortMap::new();
        b.insert(
            "80/tcp".into(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("8080".into()),
            }]),
        );
        b.insert(
            "53/udp".into(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("".into()),
            }]),
        );
        let mut r = port_requests(Some(&b), &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        r.sort_by_key(|x| x.container_port);
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            PortRequest {
                proto: Proto::Udp,
                container_port: 53,
                host_ip: None,
                host_port: None
            }
        );
        assert_eq!(
            r[1],
            PortRequest {
                proto: Proto::Tcp,
                container_port: 80,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: Some(8080)
            }
        );
        assert_eq!(
            r[2].container_port, 443,
            "-P publishes what is not bound already"
        );
        let mut bad = bollard_stubs::models::PortMap::new();
        bad.insert("x/tcp".into(), None);
        assert!(port_requests(Some(&bad), &[], false).is_err());
        let mut bad = bollard_stubs::models::PortMap::new();
        bad.insert("80/sctp".into(), None);
        assert!(port_requests(Some(&bad), &[], false).is_err());
    }
}
