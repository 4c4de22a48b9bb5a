//! `/info`: what `docker info` prints about the daemon and the host.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use berth_engine::Engine;

fn read(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn mem_total() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn os_name() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// A proxy setting from berthd's environment, as dockerd reports it (upper or lower case).
fn proxy(name: &str) -> String {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_lowercase()))
        .unwrap_or_default()
}

/// `GET /info`.
pub async fn info(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    let cg = berth_engine::cgroups::CgroupInfo::detect(engine.containers.cgroup_layout());
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (running, paused, stopped) = engine.containers.counts();
    Json(serde_json::json!({
        "ID": "",
        "Containers": running + paused + stopped, "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": stopped,
        "Images": engine.images.count(),
        "Driver": "overlay",
        "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": cg.has("memory"), "SwapLimit": cg.has("memory"),
        "CpuCfsPeriod": cg.has("cpu"), "CpuCfsQuota": cg.has("cpu"),
        "CPUShares": cg.has("cpu"), "CPUSet": cg.has("cpuset"), "PidsLimit": cg.has("pids"),
        "IPv4Forwarding": read("/proc/sys/net/ipv4/ip_forward") == "1",
        "BridgeNfIptables": read("/proc/sys/net/bridge/bridge-nf-call-iptables") == "1",
        "BridgeNfIp6tables": read("/proc/sys/net/bridge/bridge-nf-call-ip6tables") == "1",
        // berth sets no kernel memory limits (cgroup v1's kmem is deprecated).
        "KernelMemory": false, "KernelMemoryTCP": false, "GenericResources": null,
        "HttpProxy": proxy("HTTP_PROXY"), "HttpsProxy": proxy("HTTPS_PROXY"),
        "NoProxy": proxy("NO_PROXY"),
        "Debug": false, "NFd": 0, "OomKillDisable": false, "NGoroutines": 0,
        "SystemTime": "", "LoggingDriver": "json-file",
        "CgroupDriver": engine.containers.cgroup_driver().name(), "CgroupVersion": cg.version.to_string(),
        // berth's own: the hierarchies containers are placed in, and what can limit them.
        "CgroupHierarchy": cg.layout_name(), "CgroupControllers": cg.controllers,
        "NEventsListener": 0,
        "KernelVersion": read("/proc/sys/kernel/osrelease"),
        "OperatingSystem": os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": ncpu, "MemTotal": mem_total(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": [],
        },
        "DockerRootDir": engine.data_root,
        "Name": read("/proc/sys/kernel/hostname"),
        "Labels": [], "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"berth": {"path": "berth-runtime"}, "runc": {"path": "berth-runtime"}}, "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""}, "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": null
    }))
}

#[derive(Debug, serde::Deserialize)]
pub struct CheckQuery {
    repair: Option<String>,
}

/// `POST /system/check` (berth's own, not in Docker's API): the store's and the containers'
/// invariants, repaired where safe with `repair=1`.
pub async fn check(
    State(engine): State<Arc<Engine>>,
    axum::extract::Query(q): axum::extract::Query<CheckQuery>,
) -> Result<Json<serde_json::Value>, crate::ApiError> {
    let repair = crate::query::opt_bool(&q.repair);
    let e = engine.clone();
    let mut findings = tokio::task::spawn_blocking(move || e.images.check(repair))
        .await
        .map_err(|e| crate::ApiError {
            status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        })??;
    findings.extend(engine.containers.check(repair).await);
    let count = |s: &str| {
        findings
            .iter()
            .filter(|f| f.severity == s && !f.repaired)
            .count()
    };
    Ok(Json(serde_json::json!({
        "Errors": count("error"),
        "Repairable": count("repairable"),
        "Removable": count("removable"),
        "Repaired": findings.iter().filter(|f| f.repaired).count(),
        "Findings": findings,
    })))
}
