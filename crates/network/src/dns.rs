//! The embedded DNS server of user-defined networks.
//!
//! Each user network gets a UDP server on its gateway address, port 53, run by berthd in the
//! host's network namespace (as podman's aardvark-dns does; docker instead answers on
//! 127.0.0.11 inside each container). A container's `/etc/resolv.conf` names that gateway.
//! The server answers `A` (and `PTR`) queries for the names of the containers on *that*
//! network — their names, short ids and network aliases — and only to clients on that network
//! (a query from any other address is refused, so one network cannot read another's names).
//! Every other query is relayed, as it came, to the asking container's `--dns` servers, else to
//! berthd's `dns` setting, else to the host's resolvers in `/etc/resolv.conf`; berthd runs in
//! the host's namespace, so loopback resolvers of the host work too.
//!
//! Messages are parsed and written with `simple-dns`; the relay never parses what it passes on.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::ipam::Subnet;
use simple_dns::rdata::{RData, A, AAAA, PTR};
use simple_dns::{Name, Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

/// How long answers about containers may be cached (docker's embedded DNS uses 600 s).
const TTL: u32 = 600;
/// How long an upstream server has to answer before the next one is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// One container's names on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    pub container: String,
    /// Its name (without the slash), short id and aliases, lower case.
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
    /// On a dual-stack network.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// Its own `--dns` servers, used for what the network does not answer.
    pub upstream: Vec<IpAddr>,
    /// Its links on this network (`EndpointSettings.Links`), as (alias, target container
    /// name), lower case: names only this container resolves, to the target's addresses.
    pub links: Vec<(String, String)>,
}

/// The names of every network, by network id.
#[derive(Debug, Default)]
pub struct DnsTable {
    map: RwLock<HashMap<String, Vec<DnsEntry>>>,
}

impl DnsTable {
    pub fn add(&self, network: &str, e: DnsEntry) {
        let mut m = self.map.write().expect("dns table");
        let list = m.entry(network.to_string()).or_default();
        list.retain(|x| x.container != e.container);
        list.push(e);
    }

    pub fn remove(&self, network: &str, container: &str) {
        let mut m = self.map.write().expect("dns table");
        if let Some(list) = m.get_mut(network) {
            list.retain(|x| x.container != container);
        }
    }

    pub fn remove_container(&self, container: &str) {
        let mut m = self.map.write().expect("dns table");
        for list in m.values_mut() {
            list.retain(|x| x.container != container);
        }
    }

    /// The entries of a network (running containers only).
    pub fn entries(&self, network: &str) -> Vec<DnsEntry> {
        self.map
            .read()
            .expect("dns table")
            .get(network)
            .cloned()
            .unwrap_or_default()
    }

    /// The addresses of `name` for the container at `client` on `network`: the names of
    /// every network that container is on count (its own network's first), as with docker.
    fn lookup(&self, network: &str, client: Ipv4Addr, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let m = self.map.read().expect("dns table");
        let who = m
            .get(network)
            .and_then(|l| l.iter().find(|e| e.ip == client))
            .map(|e| e.container.clone());
        let mut nets: Vec<&String> = vec![];
        if let Some((k, _)) = m.get_key_value(network) {
            nets.push(k);
        }
        if let Some(c) = &who {
            for (k, l) in m.iter() {
                if k != network && l.iter().any(|e| e.container == *c) {
                    nets.push(k);
                }
            }
        }
        let mut out = Vec::new();
        // A link's alias, for the container that made the link only: the target, looked up
        // by its name on this network when asked (it may start after the linking one).
        let linked = m
            .get(network)
            .and_then(|l| l.iter().find(|e| e.ip == client))
            .and_then(|e| e.links.iter().find(|(alias, _)| *alias == name))
            .map(|(_, target)| target.clone());
        if let Some(target) = linked {
            for e in m.get(network).into_iter().flatten() {
                if e.names.first() == Some(&target) {
                    out.push(IpAddr::V4(e.ip));
                    out.extend(e.ip6.map(IpAddr::V6));
                }
            }
            return out;
        }
        for k in nets {
            for e in m.get(k).into_iter().flatten() {
                if e.names.contains(&name) {
                    for ip in std::iter::once(IpAddr::V4(e.ip)).chain(e.ip6.map(IpAddr::V6)) {
                        if !out.contains(&ip) {
                            out.push(ip);
                        }
                    }
                }
            }
        }
        out
    }

    fn reverse(&self, network: &str, ip: Ipv4Addr) -> Option<String> {
        self.entries(network)
            .into_iter()
            .find(|e| e.ip == ip)
            .and_then(|e| e.names.first().cloned())
    }

    fn upstream_of(&self, network: &str, ip: Ipv4Addr) -> Vec<IpAddr> {
        self.entries(network)
            .into_iter()
            .find(|e| e.ip == ip)
            .map(|e| e.upstream)
            .unwrap_or_default()
    }
}

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct Server {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Serves network `network` on `gateway:53`. `fallback` gives the upstream servers for
    /// containers without `--dns` of their own.
    pub fn start(
        rt: &tokio::runtime::Handle,
        network: String,
        gateway: Ipv4Addr,
        subnet: Subnet,
        table: Arc<DnsTable>,
        fallback: Arc<dyn Fn() -> Vec<IpAddr> + Send + Sync>,
    ) -> std::io::Result<Server> {
        let std_sock = std::net::UdpSocket::bind((gateway, 53))?;
        std_sock.set_nonblocking(true)?;
        let _guard = rt.enter();
        let sock = Arc::new(tokio::net::UdpSocket::from_std(std_sock)?);
        let task = rt.spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "dns receive");
                        continue;
                    }
                };
                let query = buf[..n].to_vec();
                let client = match from.ip() {
                    IpAddr::V4(v) if subnet.contains(v) => v,
                    _ => {
                        // Not one of this network's containers.
                        if let Some(r) = refusal(&query, RCODE::Refused) {
                            let _ = sock.send_to(&r, from).await;
                        }
                        continue;
                    }
                };
                match answer(&table, &network, client, &query) {
                    Answer::Reply(r) => {
                        let _ = sock.send_to(&r, from).await;
                    }
                    Answer::Drop => {}
                    Answer::Forward => {
                        let mut servers = table.upstream_of(&network, client);
                        if servers.is_empty() {
                            servers = fallback();
                        }
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            let reply = match relay(&query, &servers).await {
                                Some(r) => Some(r),
                                None => refusal(&query, RCODE::ServerFailure),
                            };
                            if let Some(r) = reply {
                                let _ = sock.send_to(&r, from).await;
                            }
                        });
                    }
                }
            }
        });
        Ok(Server { task })
    }
}

enum Answer {
    Reply(Vec<u8>),
    Forward,
    Drop,
}

/// The reply to a query this network answers itself, or what to do with it.
fn answer(table: &DnsTable, network: &str, client: Ipv4Addr, query: &[u8]) -> Answer {
    let Ok(q) = Packet::parse(query) else {
        return Answer::Drop;
    };
    if q.has_flags(PacketFlag::RESPONSE) || q.questions.len() != 1 {
        return match refusal(query, RCODE::FormatError) {
            Some(r) => Answer::Reply(r),
            None => Answer::Drop,
        };
    }
    let question = &q.questions[0];
    let qname = question.qname.to_string();
    let mut reply = Packet::new_reply(q.id());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if q.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.questions.push(question.clone());
    let Ok(name) = Name::new(&qname) else {
        return Answer::Forward;
    };
    // Reverse lookups of this network's addresses.
    if question.qtype == QTYPE::TYPE(TYPE::PTR) {
        if let Some(ip) = reverse_ip(&qname) {
            if let Some(target) = table.reverse(network, ip) {
                let Ok(t) = Name::new(&target) else {
                    return Answer::Forward;
                };
                reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
                reply.answers.push(ResourceRecord::new(
                    name,
                    CLASS::IN,
                    TTL,
                    RData::PTR(PTR(t)),
                ));
                return build(&reply);
            }
        }
        return Answer::Forward;
    }
    let ips = table.lookup(network, client, &qname);
    if ips.is_empty() {
        return Answer::Forward;
    }
    reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    // A name that exists but has no record of the type asked (AAAA on an IPv4-only
    // network) gets an empty answer, so that resolvers do not go on to ask the outside world.
    let want_a = matches!(question.qtype, QTYPE::TYPE(TYPE::A) | QTYPE::ANY);
    let want_aaaa = matches!(question.qtype, QTYPE::TYPE(TYPE::AAAA) | QTYPE::ANY);
    for ip in ips {
        let rdata = match ip {
            IpAddr::V4(v4) if want_a => RData::A(A::from(v4)),
            IpAddr::V6(v6) if want_aaaa => RData::AAAA(AAAA::from(v6)),
            _ => continue,
        };
        reply
            .answers
            .push(ResourceRecord::new(name.clone(), CLASS::IN, TTL, rdata));
    }
    build(&reply)
}

fn build(p: &Packet) -> Answer {
    match p.build_bytes_vec_compressed() {
        Ok(b) => Answer::Reply(b),
        Err(_) => Answer::Drop,
    }
}

/// An error reply to `query` with the question echoed.
fn refusal(query: &[u8], code: RCODE) -> Option<Vec<u8>> {
    let q = Packet::parse(query).ok()?;
    let mut r = Packet::new_reply(q.id());
    *r.rcode_mut() = code;
    if let Some(question) = q.questions.first() {
        r.questions.push(question.clone());
    }
    r.build_bytes_vec().ok()
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn reverse_ip(name: &str) -> Option<Ipv4Addr> {
    let rest = name
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .strip_suffix(".in-addr.arpa")?
        .to_string();
    let parts: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    if parts.len() != 4 {
        return None;
    }
    Some(Ipv4Addr::new(parts[3], parts[2], parts[1], parts[0]))
}

/// Sends `query` to each server in turn (port 53) and returns the first answer.
async fn relay(query: &[u8], servers: &[IpAddr]) -> Option<Vec<u8>> {
    for s in servers {
        let bind: SocketAddr = match s {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(query, (*s, 53)).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let got = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            loop {
                let (n, from) = sock.recv_from(&mut buf).await.ok()?;
                // Only the server asked, and only an answer to this query.
                if from.ip() == *s && n >= 2 && buf[..2] == query[..2] {
                    return Some(buf[..n].to_vec());
                }
            }
        })
        .await;
        if let Ok(Some(r)) = got {
            return Some(r);
        }
    }
    None
}

/// The host's resolvers, from `/etc/resolv.conf`.
pub fn host_resolvers() -> Vec<IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(0x1234);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(simple_dns::Question::new(
            Name::new(name).unwrap(),
            QTYPE::TYPE(qtype),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    const C: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 9);

    fn table() -> DnsTable {
        let t = DnsTable::default();
        t.add(
            "n1",
            DnsEntry {
                container: "c1".into(),
                names: vec!["web".into(), "www".into()],
                ip: Ipv4Addr::new(10, 1, 0, 2),
                ip6: None,
                upstream: vec![],
                links: vec![],
            },
        );
        t
    }

    #[test]
    fn answers_names_and_aliases_of_its_network_only() {
        let t = table();
        for name in ["web", "WWW.", "web."] {
            let Answer::Reply(r) = answer(&t, "n1", C, &query(name, TYPE::A)) else {
                panic!("{name} is answered");
            };
            let p = Packet::parse(&r).unwrap();
            assert_eq!(p.id(), 0x1234);
            assert_eq!(p.answers.len(), 1);
            assert_eq!(
                p.answers[0].rdata,
                RData::A(A::from(Ipv4Addr::new(10, 1, 0, 2)))
            );
        }
        assert!(matches!(
            answer(&t, "n2", C, &query("web", TYPE::A)),
            Answer::Forward
        ));
        assert!(matches!(
            answer(&t, "n1", C, &query("example.org", TYPE::A)),
            Answer::Forward
        ));
        let Answer::Reply(r) = answer(&t, "n1", C, &query("web", TYPE::AAAA)) else {
            panic!("AAAA of a known name is answered");
        };
        assert!(Packet::parse(&r).unwrap().answers.is_empty());
        let Answer::Reply(r) = answer(&t, "n1", C, &query("2.0.1.10.in-addr.arpa", TYPE::PTR))
        else {
            panic!("PTR is answered");
        };
        assert_eq!(Packet::parse(&r).unwrap().answers.len(), 1);
        t.remove_container("c1");
        assert!(matches!(
            answer(&t, "n1", C, &query("web", TYPE::A)),
            Answer::Forward
        ));
        assert!(matches!(answer(&t, "n1", C, b"\x00\x01junk"), Answer::Drop));
    }

    #[test]
    fn a_container_on_two_networks_resolves_names_of_both() {
        let t = table();
        let e = |c: &str, n: &str, ip: [u8; 4]| DnsEntry {
            container: c.into(),
            names: vec![n.into()],
            ip: Ipv4Addr::from(ip),
            ip6: Some(std::net::Ipv6Addr::new(
                0xfd42,
                0,
                0,
                0,
                0,
                0,
                0,
                u16::from(ip[3]),
            )),
            upstream: vec![],
            links: vec![],
        };
        t.add("n2", e("c2", "two", [10, 2, 0, 2]));
        t.add("n2", e("c3", "three", [10, 2, 0, 3]));
        t.add("n1", e("c3", "three", [10, 1, 0, 3]));
        // c3 asks its n2 server for web, which is on n1 (where c3 is too).
        let Answer::Reply(r) = answer(&t, "n2", Ipv4Addr::new(10, 2, 0, 3), &query("web", TYPE::A))
        else {
            panic!("web is answered for a container on n1 and n2");
        };
        assert_eq!(Packet::parse(&r).unwrap().answers.len(), 1);
        let Answer::Reply(r) = answer(
            &t,
            "n2",
            Ipv4Addr::new(10, 2, 0, 2),
            &query("three", TYPE::AAAA),
        ) else {
            panic!("AAAA of a dual-stack container is answered");
        };
        let p = Packet::parse(&r).unwrap();
        assert_eq!(p.answers.len(), 1);
        assert!(matches!(p.answers[0].rdata, RData::AAAA(_)));
        // c2 is on n2 only: web is not its business.
        assert!(matches!(
            answer(&t, "n2", Ipv4Addr::new(10, 2, 0, 2), &query("web", TYPE::A)),
            Answer::Forward
        ));
    }

    #[test]
    fn a_link_alias_is_the_linking_containers_own_name_for_its_target() {
        let t = table();
        let me = Ipv4Addr::new(10, 1, 0, 5);
        t.add(
            "n1",
            DnsEntry {
                container: "c5".into(),
                names: vec!["client".into()],
                ip: me,
                ip6: None,
                upstream: vec![],
                links: vec![("db".into(), "web".into())],
            },
        );
        let Answer::Reply(r) = answer(&t, "n1", me, &query("DB", TYPE::A)) else {
            panic!("the alias is answered for the linking container");
        };
        assert_eq!(
            Packet::parse(&r).unwrap().answers[0].rdata,
            RData::A(A::from(Ipv4Addr::new(10, 1, 0, 2)))
        );
        assert!(
            matches!(answer(&t, "n1", C, &query("db", TYPE::A)), Answer::Forward),
            "another container does not see the alias"
        );
        t.remove_container("c1");
        assert!(
            matches!(answer(&t, "n1", me, &query("db", TYPE::A)), Answer::Forward),
            "the target gone: the alias resolves to nothing"
        );
    }
}
