//! A pod's containers: engine containers that join their pod's sandbox (its network, IPC and
//! UTS namespaces, and PID when the pod shares it), log in the CRI's format at the path the
//! orchestrator gave under the pod's log directory, and are kept in the pod's record.

use super::*;
use crate::error::conflict;
use crate::model::container::LogConfig;
use crate::model::{PodContainer, PodContainerConfig};

impl Pods {
    /// Makes a container in a ready pod; returns its id.
    #[tracing::instrument(level = "debug", skip_all, fields(pod = %pod, container = %cfg.name))]
    pub async fn create_container(
        &self,
        pod: &str,
        cfg: PodContainerConfig,
    ) -> Result<String, EngineError> {
        let _op = self.op.lock().await;
        let mut rec = self.get(pod)?;
        if self.state(&rec) != PodState::Ready {
            return Err(conflict(format!("pod sandbox {} is not ready", rec.id)));
        }
        let (image_id, _) = self.images.resolve(&cfg.image)?;
        let req = container_request(&rec, &cfg);
        let (id, _) = self
            .containers
            .create(Some(&cfg.container_name(&rec.config)), req)?;
        let id = id.to_string();
        rec.containers.push(PodContainer {
            id: id.clone(),
            config: cfg,
            image_id,
            created: now_nanos(),
        });
        if let Err(e) = self.keep(rec) {
            let _ = self.containers.remove(&id, true).await;
            return Err(e);
        }
        Ok(id)
    }

    /// Every pod's containers, with their pods.
    pub fn all_containers(&self) -> Vec<(PodRecord, PodContainer)> {
        let mut out: Vec<(PodRecord, PodContainer)> = self
            .list()
            .into_iter()
            .flat_map(|p| {
                let cs = p.containers.clone();
                cs.into_iter().map(move |c| (p.clone(), c))
            })
            .collect();
        out.sort_by_key(|(_, c)| c.created);
        out
    }

    /// The pod container with this id or unique id prefix, with its pod.
    pub fn container(&self, id: &str) -> Result<(PodRecord, PodContainer), EngineError> {
        let all = self.all_containers();
        by_id(all.iter().map(|f| (f.1.id.as_str(), f)), id, "container").cloned()
    }

    /// Removes a pod's container (a running one is killed); one that is not there is
    /// already removed.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let _op = self.op.lock().await;
        let (mut rec, c) = match self.container(id) {
            Ok(f) => f,
            Err(e) if e.kind == crate::error::Kind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        self.remove_engine_container(&c.id).await?;
        rec.containers.retain(|x| x.id != c.id);
        self.keep(rec)
    }

    /// Removes an engine container; one already gone is no error.
    pub(super) async fn remove_engine_container(&self, id: &str) -> Result<(), EngineError> {
        match self.containers.remove(id, true).await {
            Err(e) if e.kind != crate::error::Kind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Stops an engine container at once; one stopped or gone is no error, nor is a shim
    /// that went away under the stop because its container ended meanwhile.
    pub(super) async fn kill_engine_container(&self, id: &str) -> Result<(), EngineError> {
        match self.containers.stop(id, None, Some(0)).await {
            Err(e)
                if e.kind != crate::error::Kind::NotFound
                    && e.kind != crate::error::Kind::NotModified =>
            {
                let ended = self.containers.find(id).is_ok_and(|c| {
                    !matches!(
                        c.view().state(),
                        State::Running | State::Paused | State::Restarting
                    )
                });
                if ended {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            _ => Ok(()),
        }
    }
}

/// The engine container for a pod's container.
fn container_request(pod: &PodRecord, c: &PodContainerConfig) -> CreateRequest {
    let p = &pod.config;
    let sandbox = format!("container:{}", pod.sandbox);
    let join = |s: Sharing| match s {
        Sharing::Host => Some("host".to_string()),
        Sharing::Pod => Some(sandbox.clone()),
        Sharing::Container => None,
    };
    let mut labels: HashMap<String, String> = c.labels.clone().into_iter().collect();
    labels.insert(NAMESPACE_LABEL.into(), CRI_NAMESPACE.into());
    labels.insert(POD_LABEL.into(), pod.id.clone());
    labels.insert("io.kubernetes.container.name".into(), c.name.clone());
    labels.insert("io.kubernetes.pod.name".into(), p.name.clone());
    labels.insert("io.kubernetes.pod.namespace".into(), p.namespace.clone());
    labels.insert("io.kubernetes.pod.uid".into(), p.uid.clone());
    let log_config = (!p.log_directory.is_empty() && !c.log_path.is_empty()).then(|| LogConfig {
        typ: Some(crate::logconfig::CRI_DRIVER.into()),
        config: Some(HashMap::from([(
            "path".to_string(),
            std::path::Path::new(&p.log_directory)
                .join(&c.log_path)
                .display()
                .to_string(),
        )])),
    });
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let positive = |n: i64| (n > 0).then_some(n);
    CreateRequest {
        config: ContainerConfig {
            image: Some(c.image.clone()),
            entrypoint: nonempty(&c.command),
            cmd: nonempty(&c.args),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: (!c.working_dir.is_empty()).then(|| c.working_dir.clone()),
            user: (!c.user.is_empty()).then(|| c.user.clone()),
            tty: Some(c.tty),
            open_stdin: Some(c.stdin),
            stdin_once: Some(c.stdin_once),
            labels: Some(labels),
            ..Default::default()
        },
        host_config: Some(HostConfig {
            network_mode: join(if p.network == Sharing::Host {
                Sharing::Host
            } else {
                Sharing::Pod
            }),
            ipc_mode: join(p.ipc),
            pid_mode: join(p.pid),
            uts_mode: join(if p.network == Sharing::Host {
                Sharing::Host
            } else {
                Sharing::Pod
            }),
            binds: Some(
                c.mounts
                    .iter()
                    .map(|m| {
                        let mut opts: Vec<&str> = Vec::new();
                        if m.readonly {
                            opts.push("ro");
                        }
                        if !m.propagation.is_empty() {
                            opts.push(&m.propagation);
                        }
                        match opts.is_empty() {
                            true => format!("{}:{}", m.host_path, m.container_path),
                            false => {
                                format!("{}:{}:{}", m.host_path, m.container_path, opts.join(","))
                            }
                        }
                    })
                    .collect(),
            ),
            log_config,
            privileged: c.privileged.then_some(true),
            readonly_rootfs: c.readonly_rootfs.then_some(true),
            group_add: nonempty(&c.supplemental_groups.iter().map(i64::to_string).collect()),
            security_opt: Some(security_opts(c)),
            masked_paths: Some(c.masked_paths.clone()),
            readonly_paths: Some(c.readonly_paths.clone()),
            cap_add: nonempty(&c.add_capabilities),
            cap_drop: nonempty(&c.drop_capabilities),
            memory: positive(c.memory_limit),
            cpu_shares: positive(c.cpu_shares),
            cpu_quota: positive(c.cpu_quota),
            cpu_period: positive(c.cpu_period),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The security options of a pod's container: its seccomp profile (unconfined unless one
/// is asked for, as the CRI's default is) and no-new-privileges.
fn security_opts(c: &PodContainerConfig) -> Vec<String> {
    let mut opts = Vec::new();
    match c.seccomp.as_str() {
        "default" => {}
        "" | "unconfined" => opts.push("seccomp=unconfined".to_string()),
        path => opts.push(format!("seccomp={path}")),
    }
    if c.no_new_privs {
        opts.push("no-new-privileges=true".into());
    }
    opts
}
