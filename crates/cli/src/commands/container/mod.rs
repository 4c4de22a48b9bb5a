//! Container commands, with docker's flags, output and exit codes (125 for a daemon error in
//! run/create, 126/127 when the program cannot be run or found, the container's own code for
//! `run`). One file per group of verbs: `run` (run, create), `lifecycle` (start, stop,
//! restart, kill, pause, unpause, rm, wait, rename, update), `ps`, `logs` (logs, attach),
//! `exec`, `stats` (top, stats), `files` (cp, diff, commit, export), `inspect`, `health` (the
//! `--health-*` flags), `pulling` (run's and create's `--pull`); `port` is here.

use serde_json::Value;

use crate::api::Api;

mod exec;
mod files;
mod health;
mod inspect;
mod lifecycle;
mod logs;
mod moreflags;
mod ps;
mod pulling;
mod run;
mod stats;

pub use exec::*;
pub use files::*;
pub use inspect::*;
pub use lifecycle::*;
pub use logs::*;
pub use ps::*;
pub use run::*;
pub use stats::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(binary_size(716.0 * 1024.0), "716KiB");
        assert_eq!(binary_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(binary_size(1536.0), "1.5KiB");
        assert_eq!(
            ellipsis("sh -c i=0; while true; do", 20),
            "sh -c i=0; while tr…"
        );
    }

    #[test]
    fn cp_paths() {
        assert_eq!(
            split_container_path("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_container_path("./a:b"), None);
        assert_eq!(split_container_path("/tmp/x"), None);
        // {"mode":2147484141} in base64.
        assert!(stat_is_dir("eyJtb2RlIjoyMTQ3NDg0MTQxfQ=="));
        assert!(!stat_is_dir("eyJtb2RlIjo0MjB9"));
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            parse_restart("on-failure:3").unwrap()["MaximumRetryCount"],
            3
        );
        assert!(parse_restart("sometimes").is_err());
    }
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    #[arg(add = crate::complete::containers())]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// `berth port`: the container's published ports, from its inspect document.
pub async fn port(api: &Api, a: PortArgs) -> anyhow::Result<i32> {
    let v = api
        .get(&format!("/containers/{}/json", crate::api::q(&a.container)))
        .await?;
    let filter = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    let mut keys: Vec<(&String, &Value)> = v["NetworkSettings"]["Ports"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    keys.sort_by_key(|(k, _)| {
        let (n, p) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), p.to_string())
    });
    for (k, list) in keys {
        if filter.as_ref().is_some_and(|f| f != k) {
            continue;
        }
        for b in list.as_array().into_iter().flatten() {
            found = true;
            let addr = format!(
                "{}:{}",
                b["HostIp"].as_str().unwrap_or("0.0.0.0"),
                b["HostPort"].as_str().unwrap_or("")
            );
            if filter.is_some() {
                println!("{addr}");
            } else {
                println!("{k} -> {addr}");
            }
        }
    }
    if let (Some(f), false) = (&filter, found) {
        anyhow::bail!("Error: No public port '{f}' published for {}", a.container);
    }
    Ok(0)
}
