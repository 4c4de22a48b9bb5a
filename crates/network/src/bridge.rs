//! A bridge network's kernel side: the bridge with its gateway addresses, and a container's
//! veth pair plumbed into the container's namespace with its addresses and default routes.
//! The engine decides which addresses and names to use; this module only makes the kernel
//! hold them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use crate::netlink::Netlink;
use crate::netns::NetNs;
use crate::{firewall, Error, Result};

/// A bridge as a network wants it.
#[derive(Debug, Clone)]
pub struct Bridge<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    /// The gateway's address and the subnet's prefix length.
    pub v4: (Ipv4Addr, u8),
    pub v6: Option<(Ipv6Addr, u8)>,
    /// Whether berth's nftables rules manage it (`iptables` of the daemon).
    pub firewall: bool,
}

/// Creates the bridge if it is missing, gives it its gateway addresses and brings it up.
/// An existing bridge is kept (with the addresses it has).
pub fn ensure(nl: &mut Netlink, b: &Bridge<'_>) -> Result<()> {
    match nl.link(b.name) {
        Ok(_) => {}
        Err(Error::NotFound(_)) => nl.add_bridge(b.name, b.mtu)?,
        Err(e) => return Err(e),
    }
    if let Some((gw, prefix)) = b.v6 {
        nl.add_address(b.name, IpAddr::V6(gw), prefix)?;
    }
    nl.add_address(b.name, IpAddr::V4(b.v4.0), b.v4.1)?;
    nl.set_up(b.name)?;
    if b.firewall {
        firewall::prepare_bridge(b.name)?;
    }
    Ok(())
}

/// One interface of a container on a bridge.
#[derive(Debug, Clone)]
pub struct Veth<'a> {
    /// The host end's name (on the bridge).
    pub host: &'a str,
    /// The container end's name (`eth0`, ...).
    pub ifname: &'a str,
    pub bridge: &'a str,
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// Address, prefix length and gateway on a dual-stack network.
    pub v6: Option<(Ipv6Addr, u8, Option<Ipv6Addr>)>,
    /// Link-local addresses the container asked for (`IPAMConfig.LinkLocalIPs`), with
    /// their prefix lengths.
    pub link_local: Vec<(IpAddr, u8)>,
}

/// Creates the veth pair with its container end inside `ns`, puts the host end on the bridge,
/// and gives the container end its addresses (and, with `default_route`, the default routes
/// through the gateways). A host end left by an earlier attempt is replaced.
pub fn plumb(ns: &NetNs, v: &Veth<'_>, default_route: bool) -> Result<()> {
    let mut nl = Netlink::open()?;
    let _ = nl.del_link(v.host);
    let fd = ns.fd()?;
    nl.add_veth_into(v.host, v.ifname, fd.as_raw_fd(), Some(v.mac), v.mtu)?;
    nl.set_controller(v.host, v.bridge)?;
    nl.set_up(v.host)?;
    let (ip, prefix, gw, ifname, v6) = (v.ip, v.prefix, v.gateway, v.ifname.to_string(), v.v6);
    let link_local = v.link_local.clone();
    ns.run(move || {
        let mut inner = Netlink::open()?;
        inner.add_address(&ifname, IpAddr::V4(ip), prefix)?;
        if let Some((a, p, _)) = v6 {
            inner.add_address(&ifname, IpAddr::V6(a), p)?;
        }
        for (a, p) in link_local {
            inner.add_address(&ifname, a, p)?;
        }
        inner.set_up(&ifname)?;
        if default_route {
            inner.add_default_route(IpAddr::V4(gw))?;
            if let Some((_, _, Some(g6))) = v6 {
                inner.add_default_route(IpAddr::V6(g6))?;
            }
        }
        Ok(())
    })
}

/// Removes a link: a veth's host end (and with it the container end) or a bridge. One
/// already gone is fine.
pub fn delete_link(host: &str) -> Result<()> {
    match Netlink::open()?.del_link(host) {
        Ok(()) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `02:42:ac:11:00:02` → bytes; a multicast address is refused (the kernel refuses it as a
/// link's address).
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || Error::Invalid(format!("invalid MAC address: {s}"));
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(Error::Invalid(format!(
            "invalid MAC address: {s} is a multicast address"
        )));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [0x02, 0x42, 0xac, 0x11, 0, 2]
        );
        for bad in ["02:42:ac:11:00", "02:42:ac:11:00:0g", "2:42:ac:11:00:02"] {
            assert!(
                parse_mac(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("invalid MAC"),
                "{bad}"
            );
        }
        assert!(parse_mac("01:00:5e:00:00:01")
            .unwrap_err()
            .to_string()
            .contains("multicast"));
    }
}
