//! Per-container state persisted under the runtime root (`<root>/<id>/state.json`), and the
//! runc-compatible JSON that `state` prints.
//!
//! Nothing about a container lives only in memory: the init pid is stored together with its
//! start time from `/proc/<pid>/stat`, so a recycled pid is never mistaken for the container.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// The lifecycle of a container as the OCI runtime spec defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The container is being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What the runtime remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// Init's start time (clock ticks since boot), guards against pid reuse.
    pub pid_start_time: u64,
    /// Creation time, RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup path the container was placed in (as given to the cgroup manager).
    pub cgroup_path: PathBuf,
    /// The hierarchies it was placed in.
    #[serde(default)]
    pub cgroup_layout: crate::cgroups::Layout,
    /// The systemd scope the cgroup is in (the systemd cgroup driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// Set once `start` has let the user process run.
    pub started: bool,
    /// Hooks to run later (poststart, poststop), copied from the spec at create time.
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// Namespaces the container created (ns type names), for `exec`.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// The JSON object `runc state` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct StateOutput {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

impl ContainerState {
    /// The directory holding this container's state.
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    /// Reads the state of container `id`.
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        crate::spec::check_id(id)?;
        let path = Self::dir(root, id).join("state.json");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).ctx(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Io {
            context: format!("parse {}", path.display()),
            source: std::io::Error::other(e),
        })
    }

    /// Writes the state atomically (`berth_durable::replace`): a killed runtime never leaves
    /// a torn file, and no fsync is paid on the start path, since the state describes
    /// processes that do not outlive the boot.
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = Self::dir(root, &self.id).join("state.json");
        let data = serde_json::to_vec(self).expect("state serialises");
        berth_durable::replace(&path, &data).map_err(|e| Error::Io {
            context: format!("save the state of {}", self.id),
            source: std::io::Error::other(e),
        })
    }

    /// Whether init is still the process we started (alive, not a zombie, same start time).
    pub fn init_alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((state, start)) => start == self.pid_start_time && state != 'Z' && state != 'X',
            None => false,
        }
    }

    /// The current status, derived from the kernel, never from memory alone.
    pub fn status(&self, frozen: bool) -> Status {
        if !self.init_alive() {
            Status::Stopped
        } else if frozen {
            Status::Paused
        } else if !self.started {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The runc-compatible state document.
    pub fn output(&self, status: Status) -> StateOutput {
        StateOutput {
            oci_version: crate::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// Reads the state letter and the start time of a process from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let data = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything, so parse after the last ')'.
    let rest = &data[data.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 overall is starttime; `rest` begins at field 3.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

/// Formats a time as RFC 3339 with nanoseconds in UTC, as runc's `created` field.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000123Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339(leap).starts_with("2000-02-29T"));
    }

    #[test]
    fn reads_own_proc_stat() {
        let (state, start) = proc_stat(std::process::id() as i32).expect("own stat");
        // The test runs on a worker thread; /proc/<pid>/stat describes the main thread.
        assert!("RS".contains(state), "{state}");
        assert!(start > 0);
        assert!(proc_stat(0).is_none());
    }

    #[test]
    fn status_of_dead_pid_is_stopped() {
        let st = ContainerState {
            id: "x".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            pid: std::process::id() as i32,
            pid_start_time: 1, // wrong start time: a recycled pid
            created: rfc3339(SystemTime::now()),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroup_path: "/x".into(),
            cgroup_layout: Default::default(),
            systemd_unit: None,
            started: true,
            hooks: None,
            namespaces: vec![],
        };
        assert_eq!(st.status(false), Status::Stopped);
        assert_eq!(st.output(Status::Stopped).pid, 0);
    }
}
