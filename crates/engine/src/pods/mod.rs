//! Pod sandboxes. A pod is a sandbox container of the engine's own running berth's holder
//! ([`holder`]): it owns the network namespace (loopback only until CNI comes), the IPC
//! namespace (shareable) and the hostname the pod's containers will share, or uses the
//! host's when the pod asks for them. The pod's id is its sandbox container's id; the pod's
//! record (`<data-root>/pods/<id>.json`) keeps what the orchestrator asked for, so that a
//! berthd restart finds its pods with their names, labels and annotations.
//!
//! Sandbox containers and the pods' containers ([`containers`]) carry the label
//! `io.berth.namespace=k8s.io`.

mod containers;
pub mod holder;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::containers::Containers;
use crate::error::{not_found, unavailable, EngineError};
use crate::images::ImageService;
use crate::lifecycle::State;
use crate::model::{
    ContainerConfig, CreateRequest, HostConfig, PodConfig, PodRecord, PodState, Sharing,
};

/// The label that sets the engine's CRI objects apart, and its value.
pub const NAMESPACE_LABEL: &str = "io.berth.namespace";
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The label naming the pod a container belongs to.
pub const POD_LABEL: &str = "io.berth.pod";

/// Whether a container is one of the CRI's (a pod's sandbox or container).
pub fn in_cri_namespace(c: &ContainerConfig) -> bool {
    c.labels
        .as_ref()
        .and_then(|l| l.get(NAMESPACE_LABEL))
        .is_some_and(|v| v == CRI_NAMESPACE)
}

#[derive(Debug)]
pub struct Pods {
    dir: PathBuf,
    containers: Arc<Containers>,
    images: Arc<ImageService>,
    records: Mutex<HashMap<String, PodRecord>>,
    /// Pod operations one at a time (each is a container create, start, stop or removal).
    op: tokio::sync::Mutex<()>,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Pods {
    /// Opens the pods kept under `data_root`.
    pub fn open(
        data_root: &std::path::Path,
        containers: Arc<Containers>,
        images: Arc<ImageService>,
    ) -> Result<Self, EngineError> {
        let dir = data_root.join("pods");
        std::fs::create_dir_all(&dir)
            .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        let mut records = HashMap::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                match berth_durable::load::<PodRecord>(&p) {
                    Ok(r) => {
                        records.insert(r.id.clone(), r);
                    }
                    Err(err) => tracing::warn!(path = %p.display(), error = %err, "pod record"),
                }
            }
        }
        Ok(Pods {
            dir,
            containers,
            images,
            records: Mutex::new(records),
            op: tokio::sync::Mutex::new(()),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn save(&self, r: &PodRecord) -> Result<(), EngineError> {
        berth_durable::replace_record(&self.path(&r.id), r)
            .map_err(|e| unavailable(format!("save pod {}: {e}", r.id)))
    }

    /// Saves a pod's record and keeps it as the current one.
    fn keep(&self, r: PodRecord) -> Result<(), EngineError> {
        self.save(&r)?;
        self.records.lock().expect("pods").insert(r.id.clone(), r);
        Ok(())
    }

    /// Makes and starts a pod; returns its id.
    #[tracing::instrument(level = "debug", skip_all, fields(pod = %config.name))]
    pub async fn run(&self, config: PodConfig) -> Result<String, EngineError> {
        let _op = self.op.lock().await;
        holder::ensure(&self.images)?;
        let req = sandbox_request(&config, holder::reference());
        let (id, _) = self.containers.create(Some(&config.sandbox_name()), req)?;
        let id = id.to_string();
        if let Err(e) = self.containers.start(&id).await {
            let _ = self.containers.remove(&id, true).await;
            return Err(e);
        }
        let rec = PodRecord {
            id: id.clone(),
            config,
            sandbox: id.clone(),
            created: now_nanos(),
            stopped: false,
            containers: Vec::new(),
        };
        if let Err(e) = self.keep(rec) {
            let _ = self.containers.remove(&id, true).await;
            return Err(e);
        }
        Ok(id)
    }

    /// The pod with this id or unique id prefix.
    pub fn get(&self, id: &str) -> Result<PodRecord, EngineError> {
        let records = self.records.lock().expect("pods");
        by_id(
            records.values().map(|r| (r.id.as_str(), r)),
            id,
            "pod sandbox",
        )
        .cloned()
    }

    /// Ready while its holder runs and no stop was asked for.
    pub fn state(&self, r: &PodRecord) -> PodState {
        let running = self
            .containers
            .find(&r.sandbox)
            .is_ok_and(|e| e.view().state() == State::Running);
        if running && !r.stopped {
            PodState::Ready
        } else {
            PodState::NotReady
        }
    }

    /// Every pod, oldest first.
    pub fn list(&self) -> Vec<PodRecord> {
        let mut all: Vec<PodRecord> = self
            .records
            .lock()
            .expect("pods")
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|r| r.created);
        all
    }

    /// Stops the pod's containers at once, then its holder. Stopping a stopped pod does
    /// nothing.
    /// A pod that is not there is stopped already (the CRI's idempotence).
    pub async fn stop(&self, id: &str) -> Result<(), EngineError> {
        let _op = self.op.lock().await;
        let mut rec = match self.get(id) {
            Ok(r) => r,
            Err(e) if e.kind == crate::error::Kind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in &rec.containers {
            self.kill_engine_container(&c.id).await?;
        }
        self.kill_engine_container(&rec.sandbox).await?;
        if !rec.stopped {
            rec.stopped = true;
            self.keep(rec)?;
        }
        Ok(())
    }

    /// Removes the pod, its containers and its sandbox; a pod that is not there is already
    /// removed.
    pub async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let _op = self.op.lock().await;
        let rec = match self.get(id) {
            Ok(r) => r,
            Err(e) if e.kind == crate::error::Kind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in &rec.containers {
            self.remove_engine_container(&c.id).await?;
        }
        self.remove_engine_container(&rec.sandbox).await?;
        let _ = std::fs::remove_file(self.path(&rec.id));
        self.records.lock().expect("pods").remove(&rec.id);
        Ok(())
    }
}

/// The item whose id is `id`, or the only one whose id starts with it.
pub(crate) fn by_id<'a, T>(
    items: impl Iterator<Item = (&'a str, T)> + Clone,
    id: &str,
    what: &str,
) -> Result<T, EngineError> {
    if let Some((_, t)) = items.clone().find(|(k, _)| *k == id) {
        return Ok(t);
    }
    let mut found = items.filter(|(k, _)| !id.is_empty() && k.starts_with(id));
    match (found.next(), found.next()) {
        (Some((_, t)), None) => Ok(t),
        (Some(_), Some(_)) => Err(crate::error::invalid(format!(
            "{what} id prefix {id} is ambiguous"
        ))),
        _ => Err(not_found(format!("{what} {id} not found"))),
    }
}

/// The sandbox container for a pod: the holder image, the pod's hostname, DNS and sysctls,
/// its own network (loopback only for now) and shareable IPC namespace unless the host's
/// are asked for.
fn sandbox_request(c: &PodConfig, image: String) -> CreateRequest {
    let mut labels: HashMap<String, String> = c.labels.clone().into_iter().collect();
    labels.insert(NAMESPACE_LABEL.into(), CRI_NAMESPACE.into());
    labels.insert("io.kubernetes.pod.name".into(), c.name.clone());
    labels.insert("io.kubernetes.pod.namespace".into(), c.namespace.clone());
    labels.insert("io.kubernetes.pod.uid".into(), c.uid.clone());
    let host_net = c.network == Sharing::Host;
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    CreateRequest {
        config: ContainerConfig {
            image: Some(image),
            hostname: (!host_net && !c.hostname.is_empty()).then(|| c.hostname.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        host_config: Some(HostConfig {
            network_mode: Some(if host_net { "host" } else { "none" }.into()),
            ipc_mode: Some(
                if c.ipc == Sharing::Host {
                    "host"
                } else {
                    "shareable"
                }
                .into(),
            ),
            pid_mode: (c.pid == Sharing::Host).then(|| "host".into()),
            uts_mode: host_net.then(|| "host".into()),
            dns: nonempty(&c.dns_servers),
            dns_search: nonempty(&c.dns_searches),
            dns_options: nonempty(&c.dns_options),
            sysctls: (!c.sysctls.is_empty()).then(|| c.sysctls.clone().into_iter().collect()),
            privileged: c.privileged.then_some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}
