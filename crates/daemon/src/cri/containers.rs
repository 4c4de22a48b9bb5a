//! The CRI's container RPCs, translated to and from the engine's pod containers
//! ([`berth_engine::pods`]): create, start, stop, remove, status, list and exec sync.

use std::collections::HashMap;

use berth_engine::lifecycle::Phase;
use berth_engine::model::{PodContainer, PodContainerConfig, PodMount, PodRecord};
use berth_engine::Engine;
use k8s_cri::v1;
use tonic::Status;

use super::{status_of, string_map};

/// ExecSync keeps at most this much of each stream (the kubelet's probes read little).
const EXEC_SYNC_LIMIT: usize = 16 << 20;

/// A CreateContainer request as the engine's pod container config.
pub fn config_of(c: v1::ContainerConfig) -> Result<PodContainerConfig, Status> {
    let m = c
        .metadata
        .ok_or_else(|| Status::invalid_argument("container config: no metadata"))?;
    if m.name.is_empty() {
        return Err(Status::invalid_argument("container metadata: no name"));
    }
    let image = c
        .image
        .map(|i| i.image)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Status::invalid_argument("container config: no image"))?;
    let linux = c.linux.unwrap_or_default();
    let res = linux.resources.unwrap_or_default();
    let sec = linux.security_context.unwrap_or_default();
    let caps = sec.capabilities.unwrap_or_default();
    if sec.run_as_group.is_some() && sec.run_as_user.is_none() && sec.run_as_username.is_empty() {
        return Err(Status::invalid_argument(
            "run_as_group should only be specified when run_as_user or run_as_username is specified",
        ));
    }
    let user = match (&sec.run_as_user, &sec.run_as_group) {
        (_, _) if !sec.run_as_username.is_empty() => sec.run_as_username.clone(),
        (Some(u), Some(g)) => format!("{}:{}", u.value, g.value),
        (Some(u), None) => u.value.to_string(),
        (None, _) => String::new(),
    };
    if c.mounts.iter().any(|m| m.image.is_some()) {
        return Err(Status::unimplemented(
            "image volumes are not supported by berth",
        ));
    }
    Ok(PodContainerConfig {
        name: m.name,
        attempt: m.attempt,
        image,
        command: c.command,
        args: c.args,
        working_dir: c.working_dir,
        env: c.envs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        mounts: c
            .mounts
            .into_iter()
            .map(|m| PodMount {
                propagation: match v1::MountPropagation::try_from(m.propagation) {
                    Ok(v1::MountPropagation::PropagationHostToContainer) => "rslave".into(),
                    Ok(v1::MountPropagation::PropagationBidirectional) => "rshared".into(),
                    _ => String::new(),
                },
                host_path: m.host_path,
                container_path: m.container_path,
                readonly: m.readonly,
            })
            .collect(),
        labels: c.labels.into_iter().collect(),
        annotations: c.annotations.into_iter().collect(),
        log_path: c.log_path,
        tty: c.tty,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        privileged: sec.privileged,
        user,
        readonly_rootfs: sec.readonly_rootfs,
        supplemental_groups: sec.supplemental_groups.clone(),
        no_new_privs: sec.no_new_privs,
        masked_paths: sec.masked_paths.clone(),
        readonly_paths: sec.readonly_paths.clone(),
        // The deprecated path is what older kubelets and critest's SeccompProfilePath specs send.
        #[allow(deprecated)]
        seccomp: seccomp_of(sec.seccomp.as_ref(), &sec.seccomp_profile_path)?,
        add_capabilities: caps.add_capabilities,
        drop_capabilities: caps.drop_capabilities,
        memory_limit: res.memory_limit_in_bytes,
        cpu_shares: res.cpu_shares,
        cpu_quota: res.cpu_quota,
        cpu_period: res.cpu_period,
    })
}

/// The seccomp profile a container asks for, as the engine names it: the profile object, or
/// the older `seccomp_profile_path` (`unconfined`, `runtime/default`, `docker/default`,
/// `localhost/<path>`); none is unconfined (the CRI's default).
fn seccomp_of(p: Option<&v1::SecurityProfile>, path: &str) -> Result<String, Status> {
    if let Some(p) = p {
        return match v1::security_profile::ProfileType::try_from(p.profile_type) {
            Ok(v1::security_profile::ProfileType::RuntimeDefault) => Ok("default".into()),
            Ok(v1::security_profile::ProfileType::Unconfined) => Ok("unconfined".into()),
            Ok(v1::security_profile::ProfileType::Localhost) if !p.localhost_ref.is_empty() => {
                Ok(p.localhost_ref.clone())
            }
            _ => Err(Status::invalid_argument(
                "seccomp: a localhost profile needs its path",
            )),
        };
    }
    Ok(match path {
        "" | "unconfined" => "unconfined".into(),
        "runtime/default" | "docker/default" => "default".into(),
        p => match p.strip_prefix("localhost/") {
            Some(file) => file.to_string(),
            None => return Err(Status::invalid_argument(format!("seccomp profile {p:?}"))),
        },
    })
}

/// An RFC 3339 time as nanoseconds since the epoch (0 when there is none).
fn nanos(t: &str) -> i64 {
    berth_engine::time::parse_rfc3339(t)
        .map(|n| n as i64)
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

/// The CRI's state of an engine container, and its status.
fn engine_status(engine: &Engine, id: &str) -> (i32, Option<berth_engine::lifecycle::Status>) {
    let Ok(e) = engine.containers.find(id) else {
        return (v1::ContainerState::ContainerUnknown as i32, None);
    };
    let st = e.view().status();
    let state = match st.phase {
        Phase::Created => v1::ContainerState::ContainerCreated,
        Phase::Running { .. } | Phase::Paused { .. } | Phase::Restarting { .. } => {
            v1::ContainerState::ContainerRunning
        }
        Phase::Exited { .. } => v1::ContainerState::ContainerExited,
        Phase::Removing | Phase::Dead => v1::ContainerState::ContainerUnknown,
    };
    (state as i32, Some(st))
}

fn metadata(c: &PodContainer) -> v1::ContainerMetadata {
    v1::ContainerMetadata {
        name: c.config.name.clone(),
        attempt: c.config.attempt,
    }
}

fn image_spec(c: &PodContainer) -> v1::ImageSpec {
    v1::ImageSpec {
        image: c.config.image.clone(),
        ..Default::default()
    }
}

/// `ContainerStatus`.
pub fn status(
    engine: &Engine,
    id: &str,
    verbose: bool,
) -> Result<v1::ContainerStatusResponse, Status> {
    let (pod, c) = engine.pods.container(id).map_err(status_of)?;
    let (state, st) = engine_status(engine, &c.id);
    let exited = state == v1::ContainerState::ContainerExited as i32;
    let (started, finished, code, oom, error) = st
        .map(|s| {
            (
                s.started_at,
                s.finished_at,
                s.exit_code,
                s.oom_killed,
                s.error,
            )
        })
        .unwrap_or_default();
    let reason = match () {
        _ if !exited => String::new(),
        _ if oom => "OOMKilled".into(),
        _ if code == 0 => "Completed".into(),
        _ => "Error".into(),
    };
    let log_path = if pod.config.log_directory.is_empty() || c.config.log_path.is_empty() {
        String::new()
    } else {
        std::path::Path::new(&pod.config.log_directory)
            .join(&c.config.log_path)
            .display()
            .to_string()
    };
    let mut info = HashMap::new();
    if verbose {
        info.insert(
            "info".to_string(),
            serde_json::json!({"sandboxID": pod.id, "config": c.config}).to_string(),
        );
    }
    Ok(v1::ContainerStatusResponse {
        status: Some(v1::ContainerStatus {
            id: c.id.clone(),
            metadata: Some(metadata(&c)),
            state,
            created_at: c.created,
            started_at: nanos(&started),
            finished_at: if exited { nanos(&finished) } else { 0 },
            exit_code: if exited { code } else { 0 },
            image: Some(image_spec(&c)),
            image_ref: c.image_id.clone(),
            reason,
            message: error,
            labels: string_map(&c.config.labels),
            annotations: string_map(&c.config.annotations),
            mounts: c
                .config
                .mounts
                .iter()
                .map(|m| v1::Mount {
                    container_path: m.container_path.clone(),
                    host_path: m.host_path.clone(),
                    readonly: m.readonly,
                    propagation: match m.propagation.as_str() {
                        "rslave" => v1::MountPropagation::PropagationHostToContainer,
                        "rshared" => v1::MountPropagation::PropagationBidirectional,
                        _ => v1::MountPropagation::PropagationPrivate,
                    } as i32,
                    ..Default::default()
                })
                .collect(),
            log_path,
            image_id: c.image_id.clone(),
            ..Default::default()
        }),
        info,
    })
}

fn listed(engine: &Engine, pod: &PodRecord, c: &PodContainer) -> v1::Container {
    v1::Container {
        id: c.id.clone(),
        pod_sandbox_id: pod.id.clone(),
        metadata: Some(metadata(c)),
        image: Some(image_spec(c)),
        image_ref: c.image_id.clone(),
        state: engine_status(engine, &c.id).0,
        created_at: c.created,
        labels: string_map(&c.config.labels),
        annotations: string_map(&c.config.annotations),
        image_id: c.image_id.clone(),
    }
}

/// `ListContainers` with its filter: id (or prefix), state, pod, labels.
pub fn list(engine: &Engine, filter: Option<v1::ContainerFilter>) -> Vec<v1::Container> {
    let f = filter.unwrap_or_default();
    engine
        .pods
        .all_containers()
        .iter()
        .filter(|(p, _)| f.pod_sandbox_id.is_empty() || p.id.starts_with(&f.pod_sandbox_id))
        .map(|(p, c)| listed(engine, p, c))
        .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
        .filter(|c| f.state.as_ref().is_none_or(|s| s.state == c.state))
        .filter(|c| {
            f.label_selector
                .iter()
                .all(|(k, v)| c.labels.get(k) == Some(v))
        })
        .collect()
}

/// `ExecSync`: the command's output and exit code; a timeout (seconds, 0: none) is an error.
pub async fn exec_sync(
    engine: &Engine,
    r: v1::ExecSyncRequest,
) -> Result<v1::ExecSyncResponse, Status> {
    let (_, c) = engine.pods.container(&r.container_id).map_err(status_of)?;
    if r.cmd.is_empty() {
        return Err(Status::invalid_argument("exec sync: no command"));
    }
    let timeout = (r.timeout > 0).then(|| std::time::Duration::from_secs(r.timeout as u64));
    let got = engine
        .containers
        .exec_capture(&c.id, r.cmd, timeout, EXEC_SYNC_LIMIT)
        .await
        .map_err(status_of)?
        .ok_or_else(|| {
            Status::deadline_exceeded(format!(
                "command timed out after {}s and was killed",
                r.timeout
            ))
        })?;
    Ok(v1::ExecSyncResponse {
        stdout: got.stdout,
        stderr: got.stderr,
        exit_code: got.exit_code as i32,
    })
}
