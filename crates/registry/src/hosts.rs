//! Per-registry settings.
//!
//! - **TLS** follows docker's `certs.d` layout: `<certs-dir>/<host[:port]>/*.crt` are extra
//!   CA roots (added to the system roots from `/etc/ssl/certs/ca-certificates.crt`), and each
//!   `<name>.cert` with its `<name>.key` is a client certificate.
//! - **Insecure registries** (`insecure-registries` in daemon.json: `host[:port]` or CIDR) are
//!   spoken to over HTTPS without certificate verification, falling back to plain HTTP. A
//!   loopback registry may also use plain HTTP, as with dockerd; unlike dockerd, HTTPS to a
//!   loopback registry is still verified unless it is listed as insecure.
//! - **Mirrors** for any registry, in a containerd-style `<certs-dir>/<host>/hosts.toml`:
//!   ```toml
//!   server = "https://registry.example"          # optional: the upstream's address
//!   [host."http://127.0.0.1:5001"]
//!   capabilities = ["pull", "resolve"]
//!   skip_verify = false
//!   ca = "/path/to/ca.crt"                        # or a list
//!   ```
//!   Hosts with the `pull` capability are tried in order before the upstream; pushes always go
//!   to the upstream. daemon.json's `registry-mirrors` are mirrors of docker.io.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig};

use crate::error::{Error, Result};

/// docker.io's API host.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Settings for every registry, from daemon.json and flags.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Docker's `certs.d` layout (berth's default `/etc/berth/certs.d`).
    pub certs_dir: PathBuf,
    /// `insecure-registries`: `host`, `host:port` or a CIDR.
    pub insecure: Vec<String>,
    /// `registry-mirrors`: mirrors of docker.io.
    pub docker_io_mirrors: Vec<String>,
    /// System CA bundle.
    pub system_roots: PathBuf,
    /// Layers downloaded at once per pull (dockerd's `max-concurrent-downloads`, default 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once per push (dockerd's `max-concurrent-uploads`, default 5).
    pub max_concurrent_uploads: usize,
    /// Blobs larger than this are pushed in chunks of this size (default 64 MiB).
    pub push_chunk_size: u64,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Most time a read may stall before the connection counts as broken.
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
            insecure: Vec::new(),
            docker_io_mirrors: Vec::new(),
            system_roots: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            push_chunk_size: 64 << 20,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// One place to send requests for a registry: the upstream or a mirror.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host[:port]`: what credentials and `certs.d` are keyed by.
    pub host: String,
    /// `https://host` or `http://host`; `None` until probed (insecure and loopback hosts).
    pub url: Option<String>,
    /// A mirror (pull only) rather than the upstream.
    pub mirror: bool,
    /// May fall back to plain HTTP when HTTPS fails (insecure or loopback).
    pub http_fallback: bool,
    pub agent: ureq::Agent,
}

#[derive(Debug, Default, Deserialize)]
struct HostsToml {
    server: Option<String>,
    #[serde(default)]
    host: BTreeMap<String, HostEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct HostEntry {
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    skip_verify: bool,
    ca: Option<StringOrList>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl RegistryOptions {
    /// The endpoints for `domain` (a reference's registry: `docker.io`, `localhost:5000`):
    /// mirrors first, the upstream last.
    pub fn endpoints(&self, domain: &str) -> Result<Vec<Endpoint>> {
        let hosts_file = self.certs_dir.join(domain).join("hosts.toml");
        let hosts: HostsToml = match std::fs::read_to_string(&hosts_file) {
            Ok(s) => toml::from_str(&s)
                .map_err(|e| Error::Config(format!("{}: {e}", hosts_file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostsToml::default(),
            Err(e) => return Err(crate::error::io(hosts_file.display().to_string())(e)),
        };
        let mut out = Vec::new();
        let mut mirrors: Vec<(String, HostEntry)> = hosts.host.into_iter().collect();
        if domain == "docker.io" {
            for m in &self.docker_io_mirrors {
                mirrors.push((
                    m.clone(),
                    HostEntry {
                        capabilities: vec!["pull".into(), "resolve".into()],
                        ..HostEntry::default()
                    },
                ));
            }
        }
        for (url, entry) in mirrors {
            if !entry.capabilities.is_empty() && !entry.capabilities.iter().any(|c| c == "pull") {
                continue;
            }
            let (scheme, host) = split_url(&url)?;
            let mut extra = Vec::new();
            match &entry.ca {
                Some(StringOrList::One(p)) => extra.push(PathBuf::from(p)),
                Some(StringOrList::Many(ps)) => extra.extend(ps.iter().map(PathBuf::from)),
                None => {}
            }
            let insecure = entry.skip_verify || self.is_insecure(&host);
            out.push(Endpoint {
                url: scheme.map(|s| format!("{s}://{host}")),
                mirror: true,
                http_fallback: scheme.is_none() && (insecure || is_loopback(&host)),
                agent: self.agent(&host, &extra, insecure)?,
                host,
            });
        }
        let (scheme, api_host) = match hosts.server.as_deref() {
            Some(s) => split_url(s)?,
            None if domain == "docker.io" => (Some("https"), DOCKER_HUB_API.to_string()),
            None => (None, domain.to_string()),
        };
        let insecure = self.is_insecure(&api_host);
        out.push(Endpoint {
            url: match scheme {
                Some(s) => Some(format!("{s}://{api_host}")),
                None if !insecure && !is_loopback(&api_host) => Some(format!("https://{api_host}")),
                None => None,
            },
            mirror: false,
            http_fallback: scheme.is_none() && (insecure || is_loopback(&api_host)),
            agent: self.agent(domain, &[], insecure)?,
            host: domain.to_string(),
        });
        Ok(out)
    }

    /// Whether `host[:port]` is listed in `insecure-registries` (by name or CIDR).
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = strip_port(host);
        self.insecure.iter().any(|entry| {
            if entry == host || entry == name {
                return true;
            }
            match (entry.split_once('/'), name.parse::<IpAddr>()) {
                (Some((net, bits)), Ok(ip)) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }

    /// An HTTP agent with the TLS settings for `host`.
    fn agent(&self, host: &str, extra_cas: &[PathBuf], insecure: bool) -> Result<ureq::Agent> {
        let mut roots: Vec<Certificate<'static>> = Vec::new();
        if let Ok(pem) = std::fs::read(&self.system_roots) {
            roots.extend(certs_in(&pem));
        }
        let dir = self.certs_dir.join(host);
        let mut client_cert = None;
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            names.sort();
            for p in names {
                match p.extension().and_then(|e| e.to_str()) {
                    Some("crt") => roots.extend(certs_in(&read(&p)?)),
                    Some("cert") => {
                        let key = p.with_extension("key");
                        let chain = certs_in(&read(&p)?);
                        let key_pem = std::fs::read(&key).map_err(|_| {
                            Error::Config(format!(
                                "missing key {} for client certificate {}",
                                key.display(),
                                p.display()
                            ))
                        })?;
                        let key = ureq::tls::PrivateKey::from_pem(&key_pem).map_err(|e| {
                            Error::Config(format!("{}: {e}", p.with_extension("key").display()))
                        })?;
                        client_cert = Some(ClientCert::new_with_certs(&chain, key));
                    }
                    Some("key") if !p.with_extension("cert").exists() => {
                        return Err(Error::Config(format!(
                            "missing client certificate {} for key {}",
                            p.with_extension("cert").display(),
                            p.display()
                        )));
                    }
                    _ => {}
                }
            }
        }
        for p in extra_cas {
            roots.extend(certs_in(&read(p)?));
        }
        let tls = TlsConfig::builder()
            .root_certs(if roots.is_empty() {
                RootCerts::WebPki
            } else {
                RootCerts::Specific(Arc::new(roots))
            })
            .client_cert(client_cert)
            .disable_verification(insecure)
            .build();
        Ok(ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .accept_encoding("identity")
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .max_idle_connections_per_host(16)
            .tls_config(tls)
            .build()
            .into())
    }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(crate::error::io(p.display().to_string()))
}

fn certs_in(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// `https://host:port/` → (Some("https"), "host:port"); `host:port` → (None, "host:port").
fn split_url(s: &str) -> Result<(Option<&'static str>, String)> {
    let (scheme, rest) = if let Some(r) = s.strip_prefix("https://") {
        (Some("https"), r)
    } else if let Some(r) = s.strip_prefix("http://") {
        (Some("http"), r)
    } else if s.contains("://") {
        return Err(Error::Config(format!(
            "registry address {s:?}: only http:// and https:// are supported"
        )));
    } else {
        (None, s)
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(Error::Config(format!(
            "registry address {s:?}: want scheme://host[:port] without a path"
        )));
    }
    Ok((scheme, host.to_string()))
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// Loopback registries may speak plain HTTP (as with dockerd's default 127.0.0.0/8).
pub fn is_loopback(host: &str) -> bool {
    let name = strip_port(host);
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> RegistryOptions {
        RegistryOptions {
            certs_dir: dir.to_path_buf(),
            insecure: vec!["10.0.0.0/8".into(), "reg.example:5000".into()],
            ..RegistryOptions::default()
        }
    }

    #[test]
    fn insecure_by_name_port_and_cidr() {
        let d = tempfile::tempdir().unwrap();
        let o = opts(d.path());
        assert!(o.is_insecure("10.1.2.3:5000"));
        assert!(o.is_insecure("reg.example:5000"));
        assert!(!o.is_insecure("reg.example:5001"));
        assert!(!o.is_insecure("11.0.0.1"));
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("example.com:5000"));
    }

    #[test]
    fn endpoints_with_mirrors_from_hosts_toml() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("reg.example")).unwrap();
        std::fs::write(
            d.path().join("reg.example/hosts.toml"),
            "server = \"https://reg.example\"\n[host.\"http://127.0.0.1:5001\"]\ncapabilities = [\"pull\", \"resolve\"]\n[host.\"https://push-only:1\"]\ncapabilities = [\"push\"]\n",
        )
        .unwrap();
        let eps = opts(d.path()).endpoints("reg.example").unwrap();
        assert_eq!(eps.len(), 2);
        assert!(eps[0].mirror);
        assert_eq!(eps[0].url.as_deref(), Some("http://127.0.0.1:5001"));
        assert!(!eps[1].mirror);
        assert_eq!(eps[1].url.as_deref(), Some("https://reg.example"));
        // docker.io goes to its API host; a loopback registry is probed.
        let hub = opts(d.path()).endpoints("docker.io").unwrap();
        assert_eq!(hub[0].url.as_deref(), Some("https://registry-1.docker.io"));
        let lo = opts(d.path()).endpoints("127.0.0.1:5000").unwrap();
        assert!(lo[0].url.is_none() && lo[0].http_fallback);
        assert!(
            !opts(d.path()).is_insecure("127.0.0.1:5000"),
            "loopback is not unverified"
        );
    }

    #[test]
    fn bad_hosts_toml_and_addresses_are_errors() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("r")).unwrap();
        std::fs::write(d.path().join("r/hosts.toml"), "server = [").unwrap();
        assert!(matches!(
            opts(d.path()).endpoints("r"),
            Err(Error::Config(m)) if m.contains("hosts.toml")
        ));
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("https://x/path").is_err());
    }
}
