//! Pods: the engine's vocabulary for a Kubernetes pod sandbox, whatever front end asks for it.
//! A pod is a set of namespaces its containers share (network, IPC and UTS; PID when asked),
//! held open by a holder process in a sandbox container of the engine's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whose namespace a pod uses for one kind: the pod's own, or the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// A namespace of the pod's own, shared by its containers.
    #[default]
    Pod,
    /// The host's.
    Host,
    /// Each container its own (PID only).
    Container,
}

/// What a pod is asked to be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodConfig {
    /// The orchestrator's identity of the pod: name, namespace, uid and attempt.
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    pub hostname: String,
    /// Where the containers' logs go (the kubelet's `/var/log/pods/...`).
    pub log_directory: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub dns_servers: Vec<String>,
    pub dns_searches: Vec<String>,
    pub dns_options: Vec<String>,
    pub network: Sharing,
    pub ipc: Sharing,
    pub pid: Sharing,
    /// The cgroup the pod's containers go under (the kubelet's pod cgroup).
    pub cgroup_parent: String,
    pub sysctls: BTreeMap<String, String>,
    pub privileged: bool,
}

impl PodConfig {
    /// The sandbox container's name, unique per pod attempt (as dockershim named it).
    pub fn sandbox_name(&self) -> String {
        format!(
            "k8s_POD_{}_{}_{}_{}",
            self.name, self.namespace, self.uid, self.attempt
        )
    }
}

/// A pod's state: ready while its holder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodState {
    Ready,
    NotReady,
}

/// A pod as the engine keeps it (`<data-root>/pods/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    /// 64 hex digits.
    pub id: String,
    pub config: PodConfig,
    /// The sandbox container's id.
    pub sandbox: String,
    /// Nanoseconds since the epoch.
    pub created: i64,
    /// Stopped by request: not ready whatever its holder does.
    pub stopped: bool,
    /// Its containers, in the order they were made.
    #[serde(default)]
    pub containers: Vec<PodContainer>,
}

impl berth_durable::Record for PodRecord {
    const KIND: &'static str = "pod";
    const SCHEMA: u32 = 1;
}

/// A host path a pod's container sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMount {
    pub host_path: String,
    pub container_path: String,
    pub readonly: bool,
    /// `rslave` or `rshared` (empty: private).
    #[serde(default)]
    pub propagation: String,
}

/// What a pod's container is asked to be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodContainerConfig {
    pub name: String,
    pub attempt: u32,
    /// The image as asked for (a reference or an id).
    pub image: String,
    /// Replaces the image's entrypoint (and then its command too).
    pub command: Vec<String>,
    /// Replaces the image's command.
    pub args: Vec<String>,
    pub working_dir: String,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<PodMount>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The log file, relative to the pod's log directory (none: no CRI log).
    pub log_path: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub privileged: bool,
    /// `uid`, `uid:gid` or a user name, as the image's USER is written.
    pub user: String,
    pub readonly_rootfs: bool,
    /// Extra group ids of the process.
    #[serde(default)]
    pub supplemental_groups: Vec<i64>,
    #[serde(default)]
    pub no_new_privs: bool,
    /// The paths masked and made read-only (exactly these; empty: none).
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// The seccomp profile: `unconfined`, `default` (docker's), or a profile file's path.
    #[serde(default)]
    pub seccomp: String,
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// Bytes (0: no limit).
    pub memory_limit: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
}

/// A pod's container as the engine keeps it in its pod's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodContainer {
    /// The engine container's id.
    pub id: String,
    pub config: PodContainerConfig,
    /// The image's id when the container was made.
    pub image_id: String,
    /// Nanoseconds since the epoch.
    pub created: i64,
}

impl PodContainerConfig {
    /// The engine container's name (as dockershim named it).
    pub fn container_name(&self, pod: &PodConfig) -> String {
        format!(
            "k8s_{}_{}_{}_{}_{}",
            self.name, pod.name, pod.namespace, pod.uid, self.attempt
        )
    }
}
