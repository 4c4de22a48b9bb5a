//! The CRI's pod sandbox RPCs, translated to and from the engine's pods
//! ([`berth_engine::pods`]).

use std::collections::HashMap;

use berth_engine::model::{PodConfig, PodRecord, PodState, Sharing};
use berth_engine::Engine;
use k8s_cri::v1;
use tonic::Status;

use super::{status_of, string_map};

/// The CRI's namespace mode as the engine's sharing (TARGET is not offered).
fn sharing(mode: i32, what: &str) -> Result<Sharing, Status> {
    match v1::NamespaceMode::try_from(mode) {
        Ok(v1::NamespaceMode::Pod) => Ok(Sharing::Pod),
        Ok(v1::NamespaceMode::Node) => Ok(Sharing::Host),
        Ok(v1::NamespaceMode::Container) if what == "pid" => Ok(Sharing::Container),
        _ => Err(Status::invalid_argument(format!(
            "{what} namespace mode {mode} is not supported for a pod"
        ))),
    }
}

fn mode_of(s: Sharing) -> i32 {
    match s {
        Sharing::Pod => v1::NamespaceMode::Pod as i32,
        Sharing::Host => v1::NamespaceMode::Node as i32,
        Sharing::Container => v1::NamespaceMode::Container as i32,
    }
}

/// A RunPodSandbox request's config as the engine's.
pub fn config_of(c: v1::PodSandboxConfig) -> Result<PodConfig, Status> {
    let m = c
        .metadata
        .ok_or_else(|| Status::invalid_argument("pod sandbox config: no metadata"))?;
    if m.name.is_empty() || m.namespace.is_empty() || m.uid.is_empty() {
        return Err(Status::invalid_argument(
            "pod sandbox metadata: name, namespace and uid are required",
        ));
    }
    let dns = c.dns_config.unwrap_or_default();
    let linux = c.linux.unwrap_or_default();
    let sec = linux.security_context.unwrap_or_default();
    let ns = sec.namespace_options.unwrap_or_default();
    // The pod's pid mode CONTAINER (the default when unset is POD in the proto, but the
    // kubelet sends CONTAINER unless shareProcessNamespace is set) means each container its
    // own: the holder's pid namespace is then private to it.
    let pid = sharing(ns.pid, "pid")?;
    Ok(PodConfig {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        attempt: m.attempt,
        hostname: c.hostname,
        log_directory: c.log_directory,
        labels: c.labels.into_iter().collect(),
        annotations: c.annotations.into_iter().collect(),
        dns_servers: dns.servers,
        dns_searches: dns.searches,
        dns_options: dns.options,
        network: sharing(ns.network, "network")?,
        ipc: sharing(ns.ipc, "ipc")?,
        pid,
        cgroup_parent: linux.cgroup_parent,
        sysctls: linux.sysctls.into_iter().collect(),
        privileged: sec.privileged,
    })
}

fn metadata(c: &PodConfig) -> v1::PodSandboxMetadata {
    v1::PodSandboxMetadata {
        name: c.name.clone(),
        uid: c.uid.clone(),
        namespace: c.namespace.clone(),
        attempt: c.attempt,
    }
}

fn state_of(s: PodState) -> i32 {
    match s {
        PodState::Ready => v1::PodSandboxState::SandboxReady as i32,
        PodState::NotReady => v1::PodSandboxState::SandboxNotready as i32,
    }
}

/// `PodSandboxStatus`.
pub fn status(
    engine: &Engine,
    id: &str,
    verbose: bool,
) -> Result<v1::PodSandboxStatusResponse, Status> {
    let r = engine.pods.get(id).map_err(status_of)?;
    let c = &r.config;
    let options = v1::NamespaceOption {
        network: mode_of(c.network),
        pid: mode_of(c.pid),
        ipc: mode_of(c.ipc),
        ..Default::default()
    };
    let mut info = HashMap::new();
    if verbose {
        info.insert(
            "info".to_string(),
            serde_json::json!({"sandboxContainer": r.sandbox, "config": r.config}).to_string(),
        );
    }
    Ok(v1::PodSandboxStatusResponse {
        status: Some(v1::PodSandboxStatus {
            id: r.id.clone(),
            metadata: Some(metadata(c)),
            state: state_of(engine.pods.state(&r)),
            created_at: r.created,
            // No CNI yet: a pod's network has loopback only, and no address to report.
            network: Some(v1::PodSandboxNetworkStatus::default()),
            linux: Some(v1::LinuxPodSandboxStatus {
                namespaces: Some(v1::Namespace {
                    options: Some(options),
                }),
            }),
            labels: string_map(&c.labels),
            annotations: string_map(&c.annotations),
            runtime_handler: String::new(),
        }),
        info,
        containers_statuses: Vec::new(),
        timestamp: r.created,
    })
}

fn listed(engine: &Engine, r: &PodRecord) -> v1::PodSandbox {
    v1::PodSandbox {
        id: r.id.clone(),
        metadata: Some(metadata(&r.config)),
        state: state_of(engine.pods.state(r)),
        created_at: r.created,
        labels: string_map(&r.config.labels),
        annotations: string_map(&r.config.annotations),
        runtime_handler: String::new(),
    }
}

/// `ListPodSandbox` with its filter: an id (or prefix), a state, labels that must all match.
pub fn list(engine: &Engine, filter: Option<v1::PodSandboxFilter>) -> Vec<v1::PodSandbox> {
    let f = filter.unwrap_or_default();
    engine
        .pods
        .list()
        .iter()
        .map(|r| listed(engine, r))
        .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
        .filter(|p| f.state.as_ref().is_none_or(|s| s.state == p.state))
        .filter(|p| {
            f.label_selector
                .iter()
                .all(|(k, v)| p.labels.get(k) == Some(v))
        })
        .collect()
}
