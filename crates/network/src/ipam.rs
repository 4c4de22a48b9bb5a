//! IP address management: IPv4 subnets, choosing a subnet that collides with nothing on the
//! host, and address allocation persisted to a file (written to a temporary name, synced and
//! renamed) so that addresses survive daemon restarts and crashes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// An IPv4 subnet (`172.30.0.0/16`), always stored with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if prefix > 30 {
            return Err(Error::Invalid(format!(
                "subnet {addr}/{prefix}: a /{prefix} has no room for a gateway and a container"
            )));
        }
        let mask = Self::mask_of(prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    /// Parses `a.b.c.d/n`; host bits must be zero, as docker requires.
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = || Error::Invalid(format!("invalid CIDR address: {s}"));
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
        let sn = Subnet::new(addr, prefix)?;
        if sn.network != addr {
            return Err(Error::Invalid(format!(
                "invalid subnet {s}: it has host bits set (did you mean {sn}?)"
            )));
        }
        Ok(sn)
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn mask(&self) -> u32 {
        Self::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = Self::mask_of(self.prefix.min(other.prefix));
        u32::from(self.network) & m == u32::from(other.network) & m
    }

    /// The first host address: the gateway by convention.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// Number of addresses.
    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An IPv6 subnet (`fd42:1::/64`), stored with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet6 {
    pub network: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    fn mask_of(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix))
        }
    }

    /// Parses `addr/n`; host bits must be zero, and a /127 or longer leaves no room.
    pub fn parse(s: &str) -> Result<Subnet6> {
        let bad = || Error::Invalid(format!("invalid CIDR address: {s}"));
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 128).ok_or_else(bad)?;
        if prefix > 126 {
            return Err(Error::Invalid(format!(
                "subnet {s}: a /{prefix} has no room for a gateway and a container"
            )));
        }
        let network = Ipv6Addr::from(u128::from(addr) & Self::mask_of(prefix));
        if network != addr {
            return Err(Error::Invalid(format!(
                "invalid subnet {s}: it has host bits set (did you mean {network}/{prefix}?)"
            )));
        }
        Ok(Subnet6 { network, prefix })
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & Self::mask_of(self.prefix) == u128::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = Self::mask_of(self.prefix.min(other.prefix));
        u128::from(self.network) & m == u128::from(other.network) & m
    }

    /// The first host address: the gateway by convention.
    pub fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }

    fn last(&self) -> u128 {
        u128::from(self.network) | !Self::mask_of(self.prefix)
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Subnet6 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subnet6 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subnet6::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The IPv6 addresses allocated in one subnet, by owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations6 {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
    #[serde(default)]
    pub allocated: BTreeMap<Ipv6Addr, String>,
    /// `--ip-range`: the part of the subnet that addresses are chosen from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Subnet6>,
}

impl Allocations6 {
    pub fn new(subnet: Subnet6, gateway: Option<Ipv6Addr>) -> Result<Self> {
        let gateway = gateway.unwrap_or_else(|| subnet.gateway());
        if !subnet.contains(gateway) || gateway == subnet.network {
            return Err(Error::Invalid(format!(
                "gateway {gateway} is not a host address of {subnet}"
            )));
        }
        Ok(Allocations6 {
            subnet,
            gateway,
            allocated: BTreeMap::new(),
            range: None,
        })
    }

    /// Chooses addresses only from `range`, which must lie within the subnet.
    pub fn with_range(mut self, range: Option<Subnet6>) -> Result<Self> {
        if let Some(r) = range {
            if !self.subnet.contains(r.network) || !self.subnet.contains(Ipv6Addr::from(r.last())) {
                return Err(Error::Invalid(format!(
                    "the IP range {r} is not within the subnet {}",
                    self.subnet
                )));
            }
        }
        self.range = range;
        Ok(self)
    }

    /// `wanted` if given and free, else the lowest free address after the subnet's first.
    pub fn allocate(&mut self, owner: &str, wanted: Option<Ipv6Addr>) -> Result<Ipv6Addr> {
        if let Some((ip, _)) = self.allocated.iter().find(|(_, o)| *o == owner) {
            if wanted.is_none_or(|w| w == *ip) {
                return Ok(*ip);
            }
        }
        let usable = |ip: Ipv6Addr| {
            self.subnet.contains(ip) && ip != self.subnet.network && ip != self.gateway
        };
        if let Some(ip) = wanted {
            if !usable(ip) {
                return Err(Error::Invalid(format!(
                    "address {ip} is not a usable host address of {}",
                    self.subnet
                )));
            }
            if self.allocated.get(&ip).is_some_and(|o| o != owner) {
                return Err(Error::Invalid(format!("Address already in use: {ip}")));
            }
            self.allocated.insert(ip, owner.to_string());
            return Ok(ip);
        }
        // As docker's allocator: a range's own first address is never handed out.
        let pool = self.range.unwrap_or(self.subnet);
        let mut n = u128::from(pool.network) + 1;
        while n <= pool.last() {
            let ip = Ipv6Addr::from(n);
            if usable(ip) && !self.allocated.contains_key(&ip) {
                self.allocated.insert(ip, owner.to_string());
                return Ok(ip);
            }
            n += 1;
        }
        Err(Error::Exhausted(format!(
            "no available IPv6 addresses on this network's address pools: {}",
            pool
        )))
    }
}

/// A pool subnets are carved from (`default-address-pools`: base and size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

/// Docker's default pools: 172.17.0.0/16 … 172.31.0.0/16 (as aligned blocks), then /20s of
/// 192.168.0.0/16.
pub fn default_pools() -> Vec<Pool> {
    let pool = |a: [u8; 4], prefix: u8, size: u8| Pool {
        base: Subnet {
            network: Ipv4Addr::from(a),
            prefix,
        },
        size,
    };
    vec![
        pool([172, 17, 0, 0], 16, 16),
        pool([172, 18, 0, 0], 15, 16),
        pool([172, 20, 0, 0], 14, 16),
        pool([172, 24, 0, 0], 13, 16),
        pool([192, 168, 0, 0], 16, 20),
    ]
}

/// The first subnet from `pools` that overlaps none of `taken` (other networks) and none of
/// the host's routes (a default route, 0.0.0.0/0, is not a collision).
pub fn choose_subnet(
    pools: &[Pool],
    taken: &[Subnet],
    routes: &[(Ipv4Addr, u8)],
) -> Result<Subnet> {
    let routes: Vec<Subnet> = routes
        .iter()
        .filter(|(_, p)| *p > 0)
        .filter_map(|(n, p)| Subnet::new(*n, (*p).min(30)).ok())
        .collect();
    for pool in pools {
        if pool.size < pool.base.prefix || pool.size > 30 {
            return Err(Error::Invalid(format!(
                "address pool {}: size /{} does not fit",
                pool.base, pool.size
            )));
        }
        let count = 1u64 << (pool.size - pool.base.prefix);
        let step = 1u64 << (32 - u32::from(pool.size));
        for i in 0..count {
            let net = Ipv4Addr::from((u64::from(u32::from(pool.base.network)) + i * step) as u32);
            let cand = Subnet::new(net, pool.size)?;
            if taken
                .iter()
                .chain(routes.iter())
                .all(|t| !t.overlaps(&cand))
            {
                return Ok(cand);
            }
        }
    }
    Err(Error::Exhausted(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
    ))
}

/// The addresses allocated in one subnet, by owner (a container id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Address → owner.
    #[serde(default)]
    pub allocated: BTreeMap<Ipv4Addr, String>,
    /// `--ip-range`: the part of the subnet that addresses are chosen from (an address
    /// asked for by `--ip` may lie anywhere in the subnet, as with docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Subnet>,
    /// The network's IPv6 subnet and its allocations, on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<Allocations6>,
    /// `--aux-address`es: never given to a container, asked for or not.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub reserved: BTreeSet<Ipv4Addr>,
}

impl berth_durable::Record for Allocations {
    const KIND: &'static str = "address allocations";
    const SCHEMA: u32 = 1;
}

impl Allocations {
    pub fn new(subnet: Subnet, gateway: Option<Ipv4Addr>) -> Result<Self> {
        let gateway = gateway.unwrap_or_else(|| subnet.gateway());
        if !subnet.contains(gateway) || gateway == subnet.network || gateway == subnet.broadcast() {
            return Err(Error::Invalid(format!(
                "gateway {gateway} is not a host address of {subnet}"
            )));
        }
        Ok(Allocations {
            subnet,
            gateway,
            allocated: BTreeMap::new(),
            range: None,
            v6: None,
            reserved: BTreeSet::new(),
        })
    }

    /// Keeps `reserved` (auxiliary addresses, which must lie in the subnet) from containers.
    pub fn with_reserved(mut self, reserved: impl IntoIterator<Item = Ipv4Addr>) -> Result<Self> {
        for ip in reserved {
            if !self.subnet.contains(ip) {
                return Err(Error::Invalid(format!(
                    "no matching subnet for aux-address {ip}"
                )));
            }
            self.reserved.insert(ip);
        }
        Ok(self)
    }

    /// Chooses addresses only from `range`, which must lie within the subnet.
    pub fn with_range(mut self, range: Option<Subnet>) -> Result<Self> {
        if let Some(r) = range {
            if !self.subnet.contains(r.network) || !self.subnet.contains(r.broadcast()) {
                return Err(Error::Invalid(format!(
                    "the IP range {r} is not within the subnet {}",
                    self.subnet
                )));
            }
        }
        self.range = range;
        Ok(self)
    }

    /// Reads allocations from `path`, or starts empty ones when there is no file yet.
    pub fn load_or(path: &Path, fresh: impl FnOnce() -> Result<Self>) -> Result<Self> {
        match berth_durable::load(path) {
            Ok(a) => Ok(a),
            Err(e) if e.is_not_found() => fresh(),
            Err(e) => Err(Error::Invalid(e.to_string())),
        }
    }

    /// Writes the allocations crash-safely.
    pub fn save(&self, path: &Path) -> Result<()> {
        berth_durable::save(path, self)
            .map_err(|e| io("save address allocations")(std::io::Error::other(e)))
    }

    /// An address for `owner`: `wanted` if given (it must be a free host address of the
    /// subnet), else the lowest free one. An owner asking again gets the address it has.
    pub fn allocate(&mut self, owner: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some((ip, _)) = self.allocated.iter().find(|(_, o)| *o == owner) {
            if wanted.is_none_or(|w| w == *ip) {
                return Ok(*ip);
            }
        }
        let usable = |ip: Ipv4Addr| {
            self.subnet.contains(ip)
                && ip != self.subnet.network
                && ip != self.subnet.broadcast()
                && ip != self.gateway
        };
        if let Some(ip) = wanted {
            if !usable(ip) {
                return Err(Error::Invalid(format!(
                    "address {ip} is not a usable host address of {}",
                    self.subnet
                )));
            }
            if self.reserved.contains(&ip) {
                return Err(Error::Invalid(format!("Address already in use: {ip}")));
            }
            if let Some(o) = self.allocated.get(&ip) {
                if o != owner {
                    return Err(Error::Invalid(format!("Address already in use: {ip}")));
                }
            }
            self.allocated.insert(ip, owner.to_string());
            return Ok(ip);
        }
        // As docker's allocator: a range's own first address is never handed out.
        let pool = self.range.unwrap_or(self.subnet);
        let base = u32::from(pool.network);
        for off in 1..pool.size() {
            let ip = Ipv4Addr::from(base + off as u32);
            if usable(ip) && !self.allocated.contains_key(&ip) && !self.reserved.contains(&ip) {
                self.allocated.insert(ip, owner.to_string());
                return Ok(ip);
            }
        }
        Err(Error::Exhausted(format!(
            "no available IPv4 addresses on this network's address pools: {}",
            pool
        )))
    }

    /// Frees whatever `owner` holds (IPv4 and IPv6).
    pub fn release(&mut self, owner: &str) {
        self.allocated.retain(|_, o| o != owner);
        if let Some(v6) = &mut self.v6 {
            v6.allocated.retain(|_, o| o != owner);
        }
    }

    /// Keeps only the owners `keep` accepts (IPv4 and IPv6); whether anything went.
    pub fn retain_owners(&mut self, keep: impl Fn(&str) -> bool) -> bool {
        let before = self.allocated.len() + self.v6.as_ref().map_or(0, |v| v.allocated.len());
        self.allocated.retain(|_, o| keep(o));
        if let Some(v6) = &mut self.v6 {
            v6.allocated.retain(|_, o| keep(o));
        }
        before != self.allocated.len() + self.v6.as_ref().map_or(0, |v| v.allocated.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(s: &str) -> Subnet {
        Subnet::parse(s).unwrap()
    }

    #[test]
    fn parses_and_compares_subnets() {
        let a = sn("10.1.0.0/16");
        assert!(a.contains("10.1.255.254".parse().unwrap()));
        assert!(!a.contains("10.2.0.1".parse().unwrap()));
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(a.broadcast(), Ipv4Addr::new(10, 1, 255, 255));
        assert!(a.overlaps(&sn("10.1.2.0/24")) && sn("10.0.0.0/8").overlaps(&a));
        assert!(!a.overlaps(&sn("10.2.0.0/16")));
        for bad in [
            "10.1.0.0",
            "10.1.0.0/33",
            "10.1.0.1/16",
            "x/8",
            "10.0.0.0/31",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chooses_a_subnet_clear_of_networks_and_routes() {
        let pools = default_pools();
        assert_eq!(
            choose_subnet(&pools, &[], &[]).unwrap(),
            sn("172.17.0.0/16")
        );
        let routes = [
            (Ipv4Addr::UNSPECIFIED, 0),
            (Ipv4Addr::new(172, 17, 5, 0), 24),
        ];
        assert_eq!(
            choose_subnet(&pools, &[sn("172.18.0.0/16")], &routes).unwrap(),
            sn("172.19.0.0/16"),
            "the default route is no collision; 172.17 has a host route, 172.18 a network"
        );
        let all: Vec<Subnet> = (17..32).map(|i| sn(&format!("172.{i}.0.0/16"))).collect();
        assert_eq!(
            choose_subnet(&pools, &all, &[]).unwrap(),
            sn("192.168.0.0/20")
        );
        let tiny = [Pool {
            base: sn("10.9.0.0/24"),
            size: 24,
        }];
        assert!(matches!(
            choose_subnet(&tiny, &[sn("10.9.0.0/24")], &[]),
            Err(Error::Exhausted(_))
        ));
    }

    #[test]
    fn allocates_releases_and_persists() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("net.json");
        let mut a =
            Allocations::load_or(&path, || Allocations::new(sn("10.5.0.0/29"), None)).unwrap();
        let ip1 = a.allocate("c1", None).unwrap();
        assert_eq!(ip1, Ipv4Addr::new(10, 5, 0, 2), "the gateway .1 is skipped");
        assert_eq!(
            a.allocate("c1", None).unwrap(),
            ip1,
            "the same owner keeps its address"
        );
        let ip2 = a.allocate("c2", Some(Ipv4Addr::new(10, 5, 0, 6))).unwrap();
        assert_eq!(ip2, Ipv4Addr::new(10, 5, 0, 6));
        assert!(a.allocate("c3", Some(ip2)).is_err(), "taken");
        assert!(
            a.allocate("c3", Some(Ipv4Addr::new(10, 5, 0, 7))).is_err(),
            "broadcast"
        );
        assert!(
            a.allocate("c3", Some(Ipv4Addr::new(10, 6, 0, 2))).is_err(),
            "outside"
        );
        a.save(&path).unwrap();
        let mut b = Allocations::load_or(&path, || unreachable!()).unwrap();
        assert_eq!(a, b, "survives a restart");
        for o in ["c3", "c4", "c5"] {
            b.allocate(o, None).unwrap();
        }
        assert!(matches!(b.allocate("c6", None), Err(Error::Exhausted(_))));
        b.release("c2");
        assert_eq!(
            b.allocate("c6", None).unwrap(),
            ip2,
            "a released address is reused"
        );
    }

    #[test]
    fn ipv6_subnets_and_allocations() {
        let s = Subnet6::parse("fd42:0:1::/64").unwrap();
        assert_eq!(s.gateway(), "fd42:0:1::1".parse::<Ipv6Addr>().unwrap());
        assert!(s.contains("fd42:0:1::ffff".parse().unwrap()));
        assert!(!s.contains("fd42:0:2::1".parse().unwrap()));
        assert!(s.overlaps(&Subnet6::parse("fd42::/32").unwrap()));
        assert!(!s.overlaps(&Subnet6::parse("fd42:0:2::/64").unwrap()));
        for bad in [
            "fd42::1/64",
            "fd42::/129",
            "fd42::/127",
            "nope/64",
            "fd42::",
        ] {
            assert!(Subnet6::parse(bad).is_err(), "{bad}");
        }
        let mut a = Allocations6::new(s, None).unwrap();
        let ip = a.allocate("c1", None).unwrap();
        assert_eq!(ip, "fd42:0:1::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(a.allocate("c1", None).unwrap(), ip);
        let want: Ipv6Addr = "fd42:0:1::77".parse().unwrap();
        assert_eq!(a.allocate("c2", Some(want)).unwrap(), want);
        assert!(a.allocate("c3", Some(want)).is_err(), "taken");
        assert!(a.allocate("c3", Some(s.gateway())).is_err(), "the gateway");
        assert!(
            a.allocate("c3", Some("fd43::2".parse().unwrap())).is_err(),
            "outside"
        );
        let mut all = Allocations::new(sn("10.5.0.0/24"), None).unwrap();
        all.v6 = Some(a);
        let back: Allocations = serde_json::from_slice(&serde_json::to_vec(&all).unwrap()).unwrap();
        assert_eq!(back, all);
        all.release("c1");
        assert_eq!(all.v6.as_ref().unwrap().allocated.len(), 1);
        assert!(all.retain_owners(|o| o != "c2"));
        assert!(all.v6.as_ref().unwrap().allocated.is_empty());
    }

    #[test]
    fn a_range_bounds_the_chosen_addresses_not_the_asked_for_ones() {
        let mut a = Allocations::new(sn("10.5.0.0/24"), None)
            .unwrap()
            .with_range(Some(sn("10.5.0.128/30")))
            .unwrap();
        // dockerd 20.10 gives .129, .130, .131 for this range.
        let got: Vec<Ipv4Addr> = (0..3)
            .map(|i| a.allocate(&format!("c{i}"), None).unwrap())
            .collect();
        assert_eq!(
            got,
            ["10.5.0.129", "10.5.0.130", "10.5.0.131"].map(|s| s.parse::<Ipv4Addr>().unwrap())
        );
        assert!(a.allocate("c9", None).is_err(), "the range is full");
        let asked: Ipv4Addr = "10.5.0.7".parse().unwrap();
        assert_eq!(a.allocate("c9", Some(asked)).unwrap(), asked);
        assert!(Allocations::new(sn("10.5.0.0/24"), None)
            .unwrap()
            .with_range(Some(sn("10.6.0.0/25")))
            .is_err());
        let s6 = |s: &str| Subnet6::parse(s).unwrap();
        let mut a6 = Allocations6::new(s6("fd42:0:1::/64"), None)
            .unwrap()
            .with_range(Some(s6("fd42:0:1::100/120")))
            .unwrap();
        assert_eq!(
            a6.allocate("c1", None).unwrap(),
            "fd42:0:1::101".parse::<Ipv6Addr>().unwrap()
        );
        assert!(Allocations6::new(s6("fd42:0:1::/64"), None)
            .unwrap()
            .with_range(Some(s6("fd43::/120")))
            .is_err());
    }

    #[test]
    fn auxiliary_addresses_are_never_handed_out() {
        let sn = Subnet::parse("10.9.0.0/29").unwrap();
        let aux = Ipv4Addr::new(10, 9, 0, 2);
        let mut a = Allocations::new(sn, None)
            .unwrap()
            .with_reserved([aux])
            .unwrap();
        assert_eq!(a.allocate("c1", None).unwrap(), Ipv4Addr::new(10, 9, 0, 3));
        assert!(
            a.allocate("c2", Some(aux)).is_err(),
            "not even when asked for"
        );
        assert!(Allocations::new(sn, None)
            .unwrap()
            .with_reserved([Ipv4Addr::new(10, 8, 0, 2)])
            .is_err());
    }
}
