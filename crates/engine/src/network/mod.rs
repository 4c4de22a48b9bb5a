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
//!
//! Rooms: `records` (records, pre-defined networks, create, remove, prune), `ready` (a
//! network's bridge, firewall and DNS server on the host), `attach` (a container's endpoints:
//! attach, connect, disconnect, detach, reconcile), `ports` (published ports and endpoint
//! settings from the API's config). The kernel work itself is in `berth_network::bridge`.

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

mod attach;
mod ports;
mod ready;
mod records;

pub use ports::{endpoint_request, port_requests};
use ports::{parse_mac, resolve_ports};

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
    /// `--ip-range`: where containers' addresses are chosen from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Subnet>,
    /// Dual stack (`--ipv6`): the IPv6 subnet and gateway.
    #[serde(default)]
    pub subnet6: Option<Subnet6>,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// `--ip-range` of the IPv6 subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range6: Option<Subnet6>,
    /// `IPAM.Options` as the client sent them (none: `null` in inspect, as dockerd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `--aux-address` (`AuxiliaryAddresses` of the IPv4 pool): addresses kept from containers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
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
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `AuxiliaryAddresses` of the pools, by name.
    pub aux_addresses: BTreeMap<String, String>,
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
    /// Kept and shown as given: the bridge driver acts on no endpoint option.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// `EndpointSettings.Links` (`target:alias`): on a user network, names only this
    /// container resolves, to the target's address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `IPAMConfig.LinkLocalIPs`: extra addresses of its interface on this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<IpAddr>,
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
    /// As asked for (see [`EndpointRequest`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<IpAddr>,
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

/// dockerd takes any name (spaces, colons, any script); berth refuses only what it could not
/// route or print: a `/` (the API's paths end at the name) and control characters.
fn valid_network_name(n: &str) -> bool {
    !n.is_empty() && !n.chars().any(|c| c == '/' || c.is_control())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container::PortBinding;

    #[test]
    fn port_requests_from_bindings_and_exposed_ports() {
        let mut b = crate::model::container::PortMap::new();
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
        let mut bad = crate::model::container::PortMap::new();
        bad.insert("x/tcp".into(), None);
        assert!(port_requests(Some(&bad), &[], false).is_err());
        let mut bad = crate::model::container::PortMap::new();
        bad.insert("80/sctp".into(), None);
        assert!(port_requests(Some(&bad), &[], false).is_err());
    }
}
