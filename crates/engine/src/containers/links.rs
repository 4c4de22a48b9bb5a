//! Legacy links (`--link name:alias`, `HostConfig.Links`) between containers on the default
//! bridge, as dockerd sets them up at start: the linked container must run; the linking one
//! gets `ALIAS_NAME`, `ALIAS_PORT*` for each port the linked one exposes and `ALIAS_ENV_*`
//! for its environment (HOME and PATH left out), and a hosts entry `ip alias hostname`.
//! Links on user networks (where dockerd turns them into DNS aliases) are not set up yet.

use super::*;

/// What the links of a container add at its start.
#[derive(Debug, Default)]
pub(super) struct LinkSetup {
    /// Environment, before the container's own (which wins).
    pub env: Vec<String>,
    /// `extra_hosts` entries: `alias hostname:ip`.
    pub hosts: Vec<String>,
}

/// `name:alias` (or `name`, whose alias is the name), without a leading slash.
pub fn parse_link(l: &str) -> Result<(&str, &str), EngineError> {
    let (name, alias) = l.split_once(':').unwrap_or((l, l));
    let name = name.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    if name.is_empty() || alias.is_empty() {
        return Err(invalid(format!("invalid link: {l:?}")));
    }
    Ok((name, alias))
}

impl Containers {
    /// `DELETE /containers/{parent}/{alias}?link=1`: the parent no longer links `alias`
    /// (from its next start).
    pub fn remove_link(&self, parent: &str, alias: &str) -> Result<(), EngineError> {
        let e = self.find(parent)?;
        let mut rec = e.record();
        let links = rec.host_config.links.take().unwrap_or_default();
        let before = links.len();
        let kept: Vec<String> = links
            .into_iter()
            .filter(|l| parse_link(l).map_or(true, |(_, a)| a != alias))
            .collect();
        if kept.len() == before {
            return Err(not_found(format!(
                "Could not find container for entity id /{}/{alias}",
                rec.name
            )));
        }
        rec.host_config.links = (!kept.is_empty()).then_some(kept);
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec;
        Ok(())
    }

    /// The links' environment and hosts entries for `rec`'s start; none without links, or
    /// off the default bridge (where dockerd makes them DNS aliases, not set up yet: such
    /// links are left alone as before rather than failing the start).
    pub(super) fn legacy_links(&self, rec: &Record) -> Result<Option<LinkSetup>, EngineError> {
        let links = rec.host_config.links.as_deref().unwrap_or_default();
        if links.is_empty()
            || self
                .networks_of(rec)
                .first()
                .is_none_or(|r| r.network != crate::network::DEFAULT_NETWORK)
        {
            return Ok(None);
        }
        let mut out = LinkSetup::default();
        for l in links {
            let (name, alias) = parse_link(l)?;
            let target = self
                .find(name)
                .map_err(|_| invalid(format!("could not get container for {name}")))?;
            let t = target.record();
            if target.view().state() != State::Running {
                return Err(conflict(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    t.name, rec.name
                )));
            }
            let ip = self.attachment(&t.id).and_then(|a| {
                a.endpoints
                    .iter()
                    .find(|e| e.network == crate::network::DEFAULT_NETWORK)
                    .map(|e| e.ip)
            });
            let Some(ip) = ip else {
                return Err(invalid(format!(
                    "Cannot link to /{}, as it does not belong to the default network",
                    t.name
                )));
            };
            out.env.extend(link_env(alias, &rec.name, ip, &t.config));
            let hostname = t.config.hostname.clone().unwrap_or_default();
            out.hosts.push(format!("{alias} {hostname}:{ip}"));
        }
        Ok(Some(out))
    }
}

/// Docker's link variables for one link.
fn link_env(
    alias: &str,
    me: &str,
    ip: std::net::Ipv4Addr,
    target: &ContainerConfig,
) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut env = vec![format!("{prefix}_NAME=/{me}/{alias}")];
    let mut ports: Vec<(u16, String)> = target
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((n.parse().ok()?, proto.to_string()))
        })
        .collect();
    ports.sort();
    if let Some((n, proto)) = ports.first() {
        env.push(format!("{prefix}_PORT={proto}://{ip}:{n}"));
    }
    for (n, proto) in &ports {
        let p = format!("{prefix}_PORT_{n}_{}", proto.to_uppercase());
        env.push(format!("{p}={proto}://{ip}:{n}"));
        env.push(format!("{p}_ADDR={ip}"));
        env.push(format!("{p}_PORT={n}"));
        env.push(format!("{p}_PROTO={proto}"));
    }
    for v in target.env.iter().flatten() {
        let Some((k, val)) = v.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            env.push(format!("{prefix}_ENV_{k}={val}"));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_link_variables() {
        assert_eq!(parse_link("web:db-1").unwrap(), ("web", "db-1"));
        assert_eq!(parse_link("/web").unwrap(), ("web", "web"));
        assert_eq!(parse_link("/web:/me/al").unwrap(), ("web", "al"));
        assert!(parse_link(":x").is_err());
        let cfg = ContainerConfig {
            exposed_ports: Some(vec!["8080/tcp".into(), "53/udp".into()]),
            env: Some(vec!["PATH=/bin".into(), "FOO=1".into()]),
            ..Default::default()
        };
        let env = link_env("db-1", "app", "172.17.0.2".parse().unwrap(), &cfg);
        assert_eq!(
            env,
            [
                "DB_1_NAME=/app/db-1",
                "DB_1_PORT=udp://172.17.0.2:53",
                "DB_1_PORT_53_UDP=udp://172.17.0.2:53",
                "DB_1_PORT_53_UDP_ADDR=172.17.0.2",
                "DB_1_PORT_53_UDP_PORT=53",
                "DB_1_PORT_53_UDP_PROTO=udp",
                "DB_1_PORT_8080_TCP=tcp://172.17.0.2:8080",
                "DB_1_PORT_8080_TCP_ADDR=172.17.0.2",
                "DB_1_PORT_8080_TCP_PORT=8080",
                "DB_1_PORT_8080_TCP_PROTO=tcp",
                "DB_1_ENV_FOO=1",
            ]
        );
    }
}
