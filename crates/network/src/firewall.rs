//! NAT and published ports with nftables, in berth's own table (`table ip berth`), so berth
//! neither depends on nor disturbs other tools' iptables or nftables rules, and removing the
//! table removes everything berth added.
//!
//! ```text
//! table ip berth
//!   map tcp_any  { inet_service : verdict }            published on every local address
//!   map tcp_addr { ipv4_addr . inet_service : verdict } published on one address
//!   map udp_any, udp_addr                               the same for UDP
//!   chain c-<container>   dnat to <container ip>:<port> rules, one per published port
//!   chain prerouting  (nat)  traffic from outside to a local address → the maps
//!   chain output      (nat)  the host's own traffic to a local address (127.0.0.1 too) → the maps
//!   chain postrouting (nat)  masquerade each network's subnet leaving by another interface;
//!                            masquerade 127.0.0.0/8 entering a bridge (hairpin from loopback)
//! ```
//!
//! Each change is one nft script applied by `nft -f -` as a single transaction: it applies
//! whole or not at all. The scripts are written here as text because their shape is small and
//! fixed; nft's own parser checks them.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ipam::Subnet;

/// TCP or UDP.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PortMap {
    pub proto: Proto,
    /// The host address it is published on; `None` for every address (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// A network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRule {
    pub bridge: String,
    pub subnet: Subnet,
    /// Masquerade outbound traffic (`com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
    /// No traffic in or out of the bridge except between its own ports (`--internal`).
    pub internal: bool,
    /// The network's IPv6 subnet, on a dual-stack network.
    pub subnet6: Option<crate::ipam::Subnet6>,
}

/// berth's nftables table.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Firewall {
    /// The table `name` (berthd uses `berth`; tests use their own).
    pub fn new(name: &str) -> Result<Self> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!(
                "invalid nftables table name {name:?}"
            )));
        }
        Ok(Firewall {
            table: name.to_string(),
        })
    }

    fn apply(&self, script: &str, what: &str) -> Result<()> {
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Io {
                context: "run nft (install Debian's nftables)".into(),
                source: e,
            })?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes())
            .map_err(|e| Error::Io {
                context: "write to nft".into(),
                source: e,
            })?;
        let out = child.wait_with_output().map_err(|e| Error::Io {
            context: "wait for nft".into(),
            source: e,
        })?;
        if !out.status.success() {
            return Err(Error::Invalid(format!(
                "{what}: nft refused the rules: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Creates the table, maps and base chains, and (re)writes the postrouting chain for
    /// `networks`. Idempotent: chains are flushed and rewritten in the same transaction.
    pub fn sync_networks(&self, networks: &[NetworkRule]) -> Result<()> {
        let t = &self.table;
        let mut s = format!(
            "add table ip {t}\n\
             add map ip {t} tcp_any {{ type inet_service : verdict; }}\n\
             add map ip {t} udp_any {{ type inet_service : verdict; }}\n\
             add map ip {t} tcp_addr {{ type ipv4_addr . inet_service : verdict; }}\n\
             add map ip {t} udp_addr {{ type ipv4_addr . inet_service : verdict; }}\n\
             add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
             add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}\n\
             add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
             add chain ip {t} forward {{ type filter hook forward priority filter; policy accept; }}\n\
             add set ip {t} bridges {{ type ifname; }}\n\
             flush chain ip {t} forward\n\
             flush set ip {t} bridges\n\
             flush chain ip {t} prerouting\n\
             flush chain ip {t} output\n\
             flush chain ip {t} postrouting\n"
        );
        for chain in ["prerouting", "output"] {
            s.push_str(&format!(
                "add rule ip {t} {chain} fib daddr type local ip daddr . tcp dport vmap @tcp_addr\n\
                 add rule ip {t} {chain} fib daddr type local tcp dport vmap @tcp_any\n\
                 add rule ip {t} {chain} fib daddr type local ip daddr . udp dport vmap @udp_addr\n\
                 add rule ip {t} {chain} fib daddr type local udp dport vmap @udp_any\n"
            ));
        }
        for n in networks {
            if !valid_name(&n.bridge) {
                return Err(Error::Invalid(format!(
                    "invalid bridge name {:?}",
                    n.bridge
                )));
            }
            s.push_str(&format!(
                "add element ip {t} bridges {{ \"{}\" }}\n",
                n.bridge
            ));
            s.push_str(&isolation("ip", t, n));
            if n.masquerade && !n.internal {
                s.push_str(&format!(
                    "add rule ip {t} postrouting ip saddr {} oifname != \"{}\" masquerade\n",
                    n.subnet, n.bridge
                ));
            }
            // The host's own connections to 127.0.0.1:<published port> reach the container
            // from the bridge's address (the bridge needs route_localnet).
            s.push_str(&format!(
                "add rule ip {t} postrouting ip saddr 127.0.0.0/8 oifname \"{}\" masquerade\n",
                n.bridge
            ));
        }
        // IPv6: the same isolation and masquerade in `table ip6 <name>`, present only while
        // some network has IPv6 (adding then deleting removes it in the same transaction).
        let v6: Vec<&NetworkRule> = networks.iter().filter(|n| n.subnet6.is_some()).collect();
        s.push_str(&format!("add table ip6 {t}\n"));
        if v6.is_empty() {
            s.push_str(&format!("delete table ip6 {t}\n"));
        } else {
            s.push_str(&format!(
                "add chain ip6 {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
                 add chain ip6 {t} forward {{ type filter hook forward priority filter; policy accept; }}\n\
                 add set ip6 {t} bridges {{ type ifname; }}\n\
                 flush chain ip6 {t} postrouting\n\
                 flush chain ip6 {t} forward\n\
                 flush set ip6 {t} bridges\n"
            ));
            for n in networks {
                s.push_str(&format!(
                    "add element ip6 {t} bridges {{ \"{}\" }}\n",
                    n.bridge
                ));
            }
            for n in v6 {
                let b = &n.bridge;
                s.push_str(&isolation("ip6", t, n));
                if n.masquerade && !n.internal {
                    s.push_str(&format!(
                        "add rule ip6 {t} postrouting ip6 saddr {} oifname != \"{b}\" masquerade\n",
                        n.subnet6.expect("v6")
                    ));
                }
            }
        }
        self.apply(&s, "set up berth's nftables table")
    }

    fn chain_of(owner: &str) -> Result<String> {
        if !valid_name(owner) || owner.len() > 40 {
            return Err(Error::Invalid(format!("invalid port owner {owner:?}")));
        }
        Ok(format!("c-{owner}"))
    }

    fn element(p: &PortMap) -> (String, String) {
        let proto = p.proto.as_str();
        match p.host_ip {
            Some(ip) => (format!("{proto}_addr"), format!("{ip} . {}", p.host_port)),
            None => (format!("{proto}_any"), p.host_port.to_string()),
        }
    }

    /// Publishes `ports` for `owner` (a container id): its chain of DNAT rules and the map
    /// entries that lead to it. A port another owner has is refused (the whole change is).
    pub fn publish(&self, owner: &str, ports: &[PortMap]) -> Result<()> {
        let t = &self.table;
        let chain = Self::chain_of(owner)?;
        let mut s = format!("add chain ip {t} {chain}\nflush chain ip {t} {chain}\n");
        for p in ports {
            let proto = p.proto.as_str();
            let daddr = p
                .host_ip
                .map(|ip| format!("ip daddr {ip} "))
                .unwrap_or_default();
            s.push_str(&format!(
                "add rule ip {t} {chain} {daddr}{proto} dport {} dnat to {}:{}\n",
                p.host_port, p.container_ip, p.container_port
            ));
            let (map, key) = Self::element(p);
            // `create` fails on a key that exists: a port is published by one owner only.
            s.push_str(&format!(
                "create element ip {t} {map} {{ {key} : jump {chain} }}\n"
            ));
        }
        self.apply(&s, &format!("publish ports of {owner}"))
            .map_err(|e| match e {
                Error::Invalid(m) if m.contains("File exists") => Error::Invalid(format!(
                    "port is already allocated ({})",
                    ports
                        .iter()
                        .map(|p| format!(
                            "{}:{}",
                            p.host_ip.map_or("0.0.0.0".into(), |i| i.to_string()),
                            p.host_port
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                e => e,
            })
    }

    /// Removes `owner`'s published ports and chain. Missing ones are fine (a crash may have
    /// removed part, or all, already).
    pub fn unpublish(&self, owner: &str, ports: &[PortMap]) -> Result<()> {
        let t = &self.table;
        let chain = Self::chain_of(owner)?;
        // Each deletion alone, so one already gone does not stop the others.
        for p in ports {
            let (map, key) = Self::element(p);
            let _ = self.apply(
                &format!("delete element ip {t} {map} {{ {key} }}\n"),
                "unpublish",
            );
        }
        let _ = self.apply(&format!("delete chain ip {t} {chain}\n"), "unpublish");
        Ok(())
    }

    /// The table as nft lists it (for tests and `berth network` debugging).
    pub fn list(&self) -> Result<String> {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &self.table])
            .output()
            .map_err(|e| Error::Io {
                context: "run nft".into(),
                source: e,
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Removes the whole table (and its IPv6 sibling).
    pub fn remove(&self) -> Result<()> {
        let t = &self.table;
        let _ = self.apply(&format!("delete table ip {t}\n"), "remove the table");
        let _ = self.apply(
            &format!("add table ip6 {t}\ndelete table ip6 {t}\n"),
            "remove the table",
        );
        Ok(())
    }
}

/// The forward rules of one network in table `family t`: networks are isolated from each
/// other (nothing is forwarded from one of berth's bridges to another), and an internal
/// network forwards nothing in or out at all.
fn isolation(family: &str, t: &str, n: &NetworkRule) -> String {
    let b = &n.bridge;
    if n.internal {
        format!(
            "add rule {family} {t} forward iifname \"{b}\" oifname != \"{b}\" drop\n\
             add rule {family} {t} forward oifname \"{b}\" iifname != \"{b}\" drop\n"
        )
    } else {
        format!(
            "add rule {family} {t} forward iifname \"{b}\" oifname != \"{b}\" oifname @bridges drop\n"
        )
    }
}

/// Sets a sysctl under `/proc/sys` (`net/ipv4/ip_forward`).
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(crate::error::io(format!("write {path}")))
}

/// What a bridge needs for NAT: forwarding on, and 127.0.0.1 traffic allowed onto the bridge
/// (so that published ports answer on the host's loopback).
pub fn prepare_bridge(bridge: &str) -> Result<()> {
    if !valid_name(bridge) {
        return Err(Error::Invalid(format!("invalid bridge name {bridge:?}")));
    }
    sysctl("net/ipv4/ip_forward", "1")?;
    sysctl(&format!("net/ipv4/conf/{bridge}/route_localnet"), "1")
}
