//! Published ports and endpoint settings from a container's API config.

use super::*;

/// A container's wish for network `n` from its API endpoint settings (`EndpointsConfig`).
pub fn endpoint_request(
    n: &Network,
    ep: Option<&crate::model::container::EndpointSettings>,
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
    let mut links = Vec::new();
    for l in ep.and_then(|e| e.links.clone()).unwrap_or_default() {
        links.push(parse_link(&l)?);
    }
    let mut link_local_ips = Vec::new();
    for s in ep
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|c| c.link_local_ips.clone())
        .unwrap_or_default()
    {
        match s.parse::<IpAddr>() {
            Ok(a) if !a.is_unspecified() => link_local_ips.push(a),
            _ => return Err(invalid(format!("invalid link-local IP address: {s}"))),
        }
    }
    Ok(EndpointRequest {
        network: n.name.clone(),
        aliases,
        ip,
        ip6,
        mac,
        driver_opts: ep.and_then(|e| e.driver_opts.clone()).unwrap_or_default(),
        links,
        link_local_ips,
    })
}

/// A link as docker writes it, `target:alias` (the alias is the target's name when left out;
/// a leading `/` of the name is dropped).
fn parse_link(l: &str) -> Result<String, EngineError> {
    let (target, alias) = l.split_once(':').unwrap_or((l, l));
    let target = target.trim_start_matches('/');
    let alias = alias.trim_start_matches('/');
    if target.is_empty() || alias.is_empty() || alias.contains(':') {
        return Err(invalid(format!("invalid link format: {l}")));
    }
    Ok(format!("{target}:{alias}"))
}

/// The prefix length a link-local address is given: its link-local network's for one of
/// 169.254.0.0/16 or fe80::/10 (as /64), else the address alone.
pub(super) fn link_local_prefix(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(v4) if v4.is_link_local() => 16,
        IpAddr::V4(_) => 32,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => 64,
        IpAddr::V6(_) => 128,
    }
}

pub(super) fn parse_mac(s: &str) -> Result<[u8; 6], EngineError> {
    bridge::parse_mac(s).map_err(net_err)
}

/// Chooses host ports: a given one must be free to bind (another program may not hold it);
/// none means a free one from the kernel.
pub(super) fn resolve_ports(
    reqs: &[PortRequest],
    ip: Ipv4Addr,
) -> Result<Vec<PortMap>, EngineError> {
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
    bindings: Option<&crate::model::container::PortMap>,
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
