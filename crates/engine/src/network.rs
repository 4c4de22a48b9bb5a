//! The default bridge network: each container started in bridge mode gets a persistent
//! network namespace (`<exec-root>/netns/<id>`), a veth pair whose host end is enslaved to the
//! bridge (`berth0` unless configured), an address from the bridge's subnet (allocations kept
//! in `<data-root>/network/<bridge>.json`), a default route, and its published ports in
//! berth's nftables table. The container's spec joins the namespace by path, so a restart by
//! the shim keeps the address and the ports.
//!
//! What a container holds is written to `<container dir>/network.json` before the container
//! runs, so a crash at any point leaves a record to undo: [`NetworkService::detach`] at
//! removal, and [`NetworkService::reconcile`] when berthd starts (namespaces, veths and
//! addresses of containers that no longer exist).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_network::firewall::{self, Firewall, NetworkRule, PortMap, Proto};
use berth_network::ipam::{self, Allocations, Pool, Subnet};
use berth_network::netlink::Netlink;
use berth_network::netns::NetNs;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, unavailable, EngineError};

/// Bridge settings (daemon.json `bridge`, `bip`, `default-address-pools`, `mtu`, `iptables`).
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
        }
    }
}

/// What one container holds on the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub netns: PathBuf,
    pub bridge: String,
    pub veth: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub ports: Vec<PortMap>,
}

fn net_err(e: berth_network::Error) -> EngineError {
    match e {
        berth_network::Error::Invalid(m) | berth_network::Error::Exhausted(m) => invalid(m),
        other => unavailable(other.to_string()),
    }
}

/// The bridge network service.
#[derive(Debug)]
pub struct NetworkService {
    cfg: NetworkConfig,
    state_dir: PathBuf,
    netns_dir: PathBuf,
    /// The bridge's allocations once the bridge is set up.
    ipam: Mutex<Option<Allocations>>,
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

impl NetworkService {
    pub fn new(cfg: NetworkConfig, data_root: &Path, exec_root: &Path) -> Self {
        NetworkService {
            state_dir: data_root.join("network"),
            netns_dir: exec_root.join("netns"),
            cfg,
            ipam: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    fn ipam_path(&self) -> PathBuf {
        self.state_dir.join(format!("{}.json", self.cfg.bridge))
    }

    /// Creates (or adopts) the bridge, its address and NAT; loads the allocations.
    fn ensure_bridge(&self, ipam: &mut Option<Allocations>) -> Result<(), EngineError> {
        if ipam.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| unavailable(format!("create {}: {e}", self.state_dir.display())))?;
        let mut nl = Netlink::open().map_err(net_err)?;
        let saved = Allocations::load_or(&self.ipam_path(), || {
            Err(berth_network::Error::NotFound(
                "no saved allocations".into(),
            ))
        })
        .ok();
        let alloc = match (&self.cfg.bip, saved) {
            (Some((gw, subnet)), Some(s)) if s.subnet == *subnet && s.gateway == *gw => s,
            (Some((gw, subnet)), _) => Allocations::new(*subnet, Some(*gw)).map_err(net_err)?,
            (None, Some(s)) => s,
            (None, None) => {
                // A subnet that no route of the host overlaps (except the bridge's own,
                // when it exists already).
                let own: Vec<(Ipv4Addr, u8)> = nl
                    .addresses(&self.cfg.bridge)
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
                    let sn = ipam::choose_subnet(&self.cfg.pools, &[], &routes).map_err(net_err)?;
                    Allocations::new(sn, None).map_err(net_err)?
                }
            }
        };
        match nl.link(&self.cfg.bridge) {
            Ok(_) => {}
            Err(berth_network::Error::NotFound(_)) => nl
                .add_bridge(&self.cfg.bridge, self.cfg.mtu)
                .map_err(net_err)?,
            Err(e) => return Err(net_err(e)),
        }
        nl.add_address(
            &self.cfg.bridge,
            IpAddr::V4(alloc.gateway),
            alloc.subnet.prefix,
        )
        .map_err(net_err)?;
        nl.set_up(&self.cfg.bridge).map_err(net_err)?;
        if self.cfg.iptables {
            firewall::prepare_bridge(&self.cfg.bridge).map_err(net_err)?;
            self.firewall()?
                .sync_networks(&[NetworkRule {
                    bridge: self.cfg.bridge.clone(),
                    subnet: alloc.subnet,
                    masquerade: true,
                }])
                .map_err(net_err)?;
        }
        alloc.save(&self.ipam_path()).map_err(net_err)?;
        tracing::info!(bridge = %self.cfg.bridge, subnet = %alloc.subnet, "bridge network ready");
        *ipam = Some(alloc);
        Ok(())
    }

    fn firewall(&self) -> Result<Firewall, EngineError> {
        Firewall::new(&self.cfg.table).map_err(net_err)
    }

    /// The namespace file of a container.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(&id[..24.min(id.len())])
    }

    /// Connects container `id` to the bridge and publishes `ports`. Blocking (netlink).
    pub fn attach(&self, id: &str, ports: &[PortRequest]) -> Result<Attachment, EngineError> {
        let mut guard = self.ipam.lock().expect("ipam");
        self.ensure_bridge(&mut guard)?;
        let alloc = guard.as_mut().expect("set up above");
        if !ports.is_empty() && !self.cfg.iptables {
            return Err(invalid(
                "publishing ports needs berthd's nftables rules (iptables is false)",
            ));
        }
        let ip = alloc.allocate(id, None).map_err(net_err)?;
        alloc.save(&self.ipam_path()).map_err(net_err)?;
        let (subnet, gateway) = (alloc.subnet, alloc.gateway);
        drop(guard);
        let short = &id[..12.min(id.len())];
        let o = ip.octets();
        let att = Attachment {
            netns: self.netns_path(id),
            bridge: self.cfg.bridge.clone(),
            veth: format!("vb{short}"),
            ip,
            prefix: subnet.prefix,
            gateway,
            mac: format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
            ports: resolve_ports(ports, ip)?,
        };
        // The ports are published last; a failure before or while publishing is undone
        // without them (the keys may be another container's: that is why publishing failed).
        let unpublished = Attachment {
            ports: Vec::new(),
            ..att.clone()
        };
        let r = self.plumb(&att).and_then(|()| {
            if att.ports.is_empty() {
                Ok(())
            } else {
                self.firewall()?
                    .publish(owner(&att.netns), &att.ports)
                    .map_err(net_err)
            }
        });
        if let Err(e) = r {
            let _ = self.detach(id, &unpublished);
            return Err(e);
        }
        Ok(att)
    }

    fn plumb(&self, a: &Attachment) -> Result<(), EngineError> {
        let _ = NetNs::remove(&a.netns);
        let ns = NetNs::create(&a.netns).map_err(net_err)?;
        let mut nl = Netlink::open().map_err(net_err)?;
        let _ = nl.del_link(&a.veth);
        let mut mac = [0u8; 6];
        for (i, part) in a.mac.split(':').enumerate().take(6) {
            mac[i] = u8::from_str_radix(part, 16).unwrap_or(0);
        }
        let fd = ns.fd().map_err(net_err)?;
        nl.add_veth_into(
            &a.veth,
            "eth0",
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            Some(mac),
            self.cfg.mtu,
        )
        .map_err(net_err)?;
        nl.set_controller(&a.veth, &a.bridge).map_err(net_err)?;
        nl.set_up(&a.veth).map_err(net_err)?;
        let (ip, prefix, gw) = (a.ip, a.prefix, a.gateway);
        ns.run(move || {
            let mut inner = Netlink::open()?;
            inner.add_address("eth0", IpAddr::V4(ip), prefix)?;
            inner.set_up("eth0")?;
            inner.add_default_route(IpAddr::V4(gw))
        })
        .map_err(net_err)?;
        Ok(())
    }

    /// Undoes an attachment: published ports, the veth, the namespace, the address. Parts
    /// already gone are fine.
    pub fn detach(&self, id: &str, a: &Attachment) -> Result<(), EngineError> {
        if !a.ports.is_empty() && self.cfg.iptables {
            self.firewall()?
                .unpublish(owner(&a.netns), &a.ports)
                .map_err(net_err)?;
        }
        // The veth is not deleted here: once the namespace is unmounted and its last process
        // gone, the kernel destroys the namespace and, with its `eth0`, the host end — without
        // the RCU grace period a synchronous delete waits for. (A veth whose namespace is
        // still held is caught by `reconcile`.)
        NetNs::remove(&a.netns).map_err(net_err)?;
        let mut guard = self.ipam.lock().expect("ipam");
        let mut alloc = match guard.take() {
            Some(a) => a,
            None => match Allocations::load_or(&self.ipam_path(), || {
                Err(berth_network::Error::NotFound("no allocations".into()))
            }) {
                Ok(a) => a,
                Err(_) => return Ok(()),
            },
        };
        alloc.release(id);
        let r = alloc.save(&self.ipam_path()).map_err(net_err);
        *guard = Some(alloc);
        r
    }

    /// At daemon start: removes namespaces, veths and addresses of containers not in `known`
    /// (ids), left by a crash or by containers removed while berthd was down.
    pub fn reconcile(&self, known: &BTreeSet<String>) {
        let short: BTreeSet<&str> = known.iter().map(|k| &k[..12.min(k.len())]).collect();
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
        if let Ok(mut nl) = Netlink::open() {
            // Only veths on this daemon's own bridge: links elsewhere are not berth's to judge.
            if let Ok(bridge) = nl.link(&self.cfg.bridge) {
                for l in nl.links().unwrap_or_default() {
                    if let Some(s) = l.name.strip_prefix("vb") {
                        if l.controller == Some(bridge.index) && s.len() == 12 && !short.contains(s)
                        {
                            let _ = nl.del_link(&l.name);
                        }
                    }
                }
            }
        }
        let mut guard = self.ipam.lock().expect("ipam");
        if let Ok(mut alloc) = Allocations::load_or(&self.ipam_path(), || {
            Err(berth_network::Error::NotFound("no allocations".into()))
        }) {
            let before = alloc.allocated.len();
            alloc.allocated.retain(|_, owner| known.contains(owner));
            if alloc.allocated.len() != before {
                let _ = alloc.save(&self.ipam_path());
            }
            if guard.is_some() {
                *guard = Some(alloc);
            }
        }
    }
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
