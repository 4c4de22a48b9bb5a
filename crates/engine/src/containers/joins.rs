//! Namespaces a container joins from another one (`--ipc`, `--pid`, `--uts
//! container:<x>`; the network's are in `networking`): the running target's
//! `/proc/<pid>/ns/<kind>`, with dockerd's rule that only a `shareable` IPC namespace is
//! joined. A pod's containers join its sandbox this way.

use super::*;

impl Containers {
    /// The namespaces `rec` joins, by kind, resolved when it starts.
    pub(super) fn joined_namespaces(
        &self,
        rec: &Record,
    ) -> Result<Vec<(&'static str, PathBuf)>, EngineError> {
        let hc = &rec.host_config;
        let mut out = Vec::new();
        for (kind, mode, what) in [
            ("ipc", &hc.ipc_mode, "IPC"),
            ("pid", &hc.pid_mode, "PID"),
            ("uts", &hc.uts_mode, "UTS"),
        ] {
            let Some(target) = mode.as_deref().and_then(|m| m.strip_prefix("container:")) else {
                continue;
            };
            let t = self
                .find(target)
                .map_err(|_| not_found(format!("No such container: {target}")))?;
            let trec = t.record();
            if trec.id == rec.id {
                return Err(invalid(format!("cannot join own {what} namespace")));
            }
            if kind == "ipc" && trec.host_config.ipc_mode.as_deref() != Some("shareable") {
                return Err(invalid(format!(
                    "can't join IPC of container {}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                    trec.id
                )));
            }
            let pid = t
                .view()
                .shim
                .as_ref()
                .filter(|s| matches!(s.status, Status::Running | Status::Paused))
                .map(|s| s.pid)
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    unavailable(format!(
                        "cannot join {what} of a non running container: {}",
                        trec.id
                    ))
                })?;
            out.push((kind, PathBuf::from(format!("/proc/{pid}/ns/{kind}"))));
        }
        Ok(out)
    }
}
