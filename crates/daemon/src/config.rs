//! Daemon configuration: dockerd's flag names, and `/etc/berth/daemon.json` with dockerd's keys
//! (`hosts`, `data-root`, `exec-root`, `pidfile`, `log-level`, `log-driver`, `log-opts`,
//! `insecure-registries`, `registry-mirrors`, `max-concurrent-downloads`,
//! `max-concurrent-uploads`, `bridge`, `bip`, `iptables`, `mtu`, `default-address-pools`, `dns`, `tls`, `tlsverify`, `tlscacert`, `tlscert`, `tlskey`)
//! and berth's `certs-dir` and `cri-socket`. Flags win over the file; list flags add to
//! the file's lists.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `daemon.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub log_level: Option<String>,
    /// Only `json-file` (and `local`, which berth writes as json-file too).
    pub log_driver: Option<String>,
    /// `max-size` and `max-file` for every container's log.
    #[serde(default)]
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// Registries reached over plain HTTP or unverified HTTPS (`host[:port]` or CIDR).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Mirrors of docker.io.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// berth's: the certs.d directory (default `/etc/berth/certs.d`).
    pub certs_dir: Option<PathBuf>,
    pub max_concurrent_downloads: Option<usize>,
    pub max_concurrent_uploads: Option<usize>,
    /// berth's: blobs larger than this many bytes are pushed in chunks of this size.
    pub push_chunk_size: Option<u64>,
    /// The default bridge's name (`none`: no default bridge).
    pub bridge: Option<String>,
    /// The default bridge's address and subnet, `172.30.0.1/16`.
    pub bip: Option<String>,
    /// Manage NAT and published ports with nftables (default true).
    pub iptables: Option<bool>,
    pub mtu: Option<u32>,
    /// Pools the default bridge's subnet is chosen from: `[{"base": "10.10.0.0/16", "size": 24}]`.
    #[serde(default)]
    pub default_address_pools: Vec<AddressPool>,
    /// Default DNS servers of containers (and the upstream of the embedded DNS).
    #[serde(default)]
    pub dns: Vec<String>,
    /// TCP listeners: TLS with client certificates verified (dockerd's keys).
    pub tlsverify: Option<bool>,
    pub tls: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    /// berth's: `host` or `unified` (see `--cgroup-hierarchy`).
    pub cgroup_hierarchy: Option<String>,
    /// berth's: turn the kernel's `favordynmods` on for the host at start (see
    /// `--cgroup-favordynmods`).
    pub cgroup_favordynmods: Option<bool>,
    /// berth's: where to serve the CRI v1 API (default `<exec-root>/cri.sock`).
    pub cri_socket: Option<PathBuf>,
    /// dockerd's runtime options (`native.cgroupdriver=cgroupfs`).
    #[serde(default)]
    pub exec_opts: Vec<String>,
}

/// One `default-address-pools` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

/// The cgroup driver from `exec-opts` (the flags' options are added to the file's, the last
/// one wins), checked against the host: systemd must be the init system for its driver.
pub fn cgroup_driver(
    file: &FileConfig,
    exec_opts: &[String],
) -> anyhow::Result<berth_engine::cgroups::CgroupDriver> {
    use berth_engine::cgroups::CgroupDriver;
    let mut driver = CgroupDriver::Cgroupfs;
    for opt in file.exec_opts.iter().chain(exec_opts) {
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid exec-opt {opt:?}: want key=value"))?;
        driver = match (key.trim(), value.trim()) {
            ("native.cgroupdriver", "cgroupfs") => CgroupDriver::Cgroupfs,
            ("native.cgroupdriver", "systemd") => CgroupDriver::Systemd,
            ("native.cgroupdriver", d) => {
                anyhow::bail!("native.cgroupdriver={d}: unknown cgroup driver (cgroupfs, systemd)")
            }
            (k, _) => anyhow::bail!("invalid exec-opt {k:?}: berth knows native.cgroupdriver"),
        };
    }
    driver
        .check()
        .map_err(|e| anyhow::anyhow!("native.cgroupdriver={}: {e}", driver.name()))?;
    Ok(driver)
}

/// The cgroup layout from `--cgroup-hierarchy` or the file.
pub fn cgroup_layout(
    file: &FileConfig,
    flag: Option<&str>,
) -> anyhow::Result<berth_engine::cgroups::CgroupLayout> {
    let name = flag.or(file.cgroup_hierarchy.as_deref()).unwrap_or("host");
    let layout = berth_engine::cgroups::CgroupLayout::parse(name)
        .map_err(|_| anyhow::anyhow!("cgroup-hierarchy {name:?}: want host or unified"))?;
    // The layout must be usable here (unified needs a cgroup2 mount): refused at start.
    berth_engine::cgroups::CgroupHierarchies::detect_for(layout)
        .map_err(|e| anyhow::anyhow!("cgroup-hierarchy {name}: {e}"))?;
    Ok(layout)
}

/// The default bridge's settings from flags and the file.
pub fn network_config(
    file: &FileConfig,
    bridge: Option<String>,
    bip: Option<String>,
    iptables: Option<bool>,
) -> anyhow::Result<berth_engine::network::NetworkConfig> {
    use berth_engine::network::{Pool, Subnet};
    let mut cfg = berth_engine::network::NetworkConfig::default();
    if let Some(b) = bridge.or(file.bridge.clone()) {
        let ok = b.len() <= 15
            && !b.is_empty()
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !ok {
            anyhow::bail!("bridge {b:?}: an interface name of at most 15 letters, digits, - and _");
        }
        if b != "berth0" {
            cfg.table = format!("berth-{b}");
        }
        cfg.bridge = b;
    }
    if let Some(bip) = bip.or(file.bip.clone()) {
        let (a, p) = bip.split_once('/').ok_or_else(|| {
            anyhow::anyhow!("bip {bip:?}: want address/prefix, like 172.30.0.1/16")
        })?;
        let gw: std::net::Ipv4Addr = a
            .parse()
            .map_err(|_| anyhow::anyhow!("bip {bip:?}: invalid address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| anyhow::anyhow!("bip {bip:?}: invalid prefix"))?;
        let sn = Subnet::new(gw, prefix).map_err(|e| anyhow::anyhow!("bip {bip:?}: {e}"))?;
        cfg.bip = Some((gw, sn));
    }
    if !file.default_address_pools.is_empty() {
        cfg.pools = file
            .default_address_pools
            .iter()
            .map(|p| {
                Ok(Pool {
                    base: Subnet::parse(&p.base)
                        .map_err(|e| anyhow::anyhow!("default-address-pools: {e}"))?,
                    size: p.size,
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    cfg.iptables = iptables.or(file.iptables).unwrap_or(true);
    cfg.mtu = file.mtu;
    cfg.dns = file
        .dns
        .iter()
        .map(|d| {
            d.parse()
                .map_err(|_| anyhow::anyhow!("dns: {d:?} is not an IP address"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(cfg)
}

impl FileConfig {
    /// Reads the file; a missing default file is an empty config, a missing explicit one is an
    /// error.
    pub fn load(path: &Path, explicit: bool) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(FileConfig::default())
            }
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }
}

/// `unix:///run/berth/berth.sock` → `/run/berth/berth.sock`.
pub fn unix_path(host: &str) -> anyhow::Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => anyhow::bail!("invalid host {host:?}: only unix:///path sockets are supported"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cgroup_layout_and_driver_options() {
        use berth_engine::cgroups::CgroupDriver;
        let f = FileConfig::default();
        assert!(cgroup_layout(&f, Some("host")).is_ok());
        let e = cgroup_layout(&f, Some("bogus")).unwrap_err().to_string();
        assert!(e.contains("want host or unified"), "{e}");
        let opts = ["native.cgroupdriver=cgroupfs".to_string()];
        assert_eq!(cgroup_driver(&f, &opts).unwrap(), CgroupDriver::Cgroupfs);
        // This machine's init is not systemd (the e2e tests run one in a namespace).
        let opts = ["native.cgroupdriver=systemd".to_string()];
        match cgroup_driver(&f, &opts) {
            Ok(d) => assert!(
                berth_engine::cgroups::CgroupDriver::Systemd == d
                    && std::path::Path::new("/run/systemd/system").is_dir()
            ),
            Err(e) => assert!(
                e.to_string().contains("needs systemd as the init system"),
                "{e}"
            ),
        }
        let opts = ["native.cgroupdriver=bogus".to_string()];
        assert!(cgroup_driver(&f, &opts).is_err());
        let opts = ["nosuch=1".to_string()];
        assert!(cgroup_driver(&f, &opts).is_err());
    }

    use super::*;

    #[test]
    fn parses_daemon_json_and_hosts() {
        let c: FileConfig = serde_json::from_str(
            r#"{"hosts": ["unix:///tmp/x.sock"], "data-root": "/d", "log-level": "debug"}"#,
        )
        .unwrap();
        assert_eq!(c.data_root.as_deref(), Some(Path::new("/d")));
        assert!(
            serde_json::from_str::<FileConfig>(r#"{"bogus": 1}"#).is_err(),
            "unknown keys are refused"
        );
        assert_eq!(
            unix_path("unix:///run/berth/berth.sock").unwrap(),
            PathBuf::from("/run/berth/berth.sock")
        );
        assert!(unix_path("tcp://0.0.0.0:2375").is_err());
    }
}
