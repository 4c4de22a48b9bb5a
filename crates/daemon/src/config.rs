//! Daemon configuration: dockerd's flag names, and `/etc/berth/daemon.json` with dockerd's keys
//! (`hosts`, `data-root`, `exec-root`, `pidfile`, `log-level`, `log-driver`, `log-opts`,
//! `insecure-registries`, `registry-mirrors`, `max-concurrent-downloads`,
//! `max-concurrent-uploads`) and berth's `certs-dir`. Flags win over the file; list flags add to
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
