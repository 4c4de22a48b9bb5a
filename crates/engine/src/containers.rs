//! The container service: records on disk, one `berth-shim` per started container, and the
//! live view of each container that the shim's subscription keeps current.
//!
//! On disk, `<data-root>/containers/<id>/` holds `config.json` (the [`Record`]), the shim's
//! `state.json` and `shim.json`, the json-file log, the generated `hostname`, `hosts` and
//! `resolv.conf`, the OCI bundle (`bundle/config.json`) and the root file system's `upper`,
//! `work` and `rootfs` directories. Shim sockets live in `<exec-root>/shims/`.
//!
//! berthd may die at any moment: the shims carry on, and [`Containers::restore`] re-adopts
//! them by their sockets, reading the state file of those that finished in the meantime.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_shim::{Reply, Request, ShimConfig, ShimState, Status};
use bollard_stubs::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

use crate::error::{
    conflict, forbidden, invalid, not_found, not_modified, unavailable, EngineError,
};
use crate::events::Events;
use crate::id::ContainerId;
use crate::images::ImageService;
use crate::lifecycle::State;

/// Files the engine bind-mounts into every container; their empty mount points in the
/// writable layer are not the user's changes (`diff` and `commit` leave them out).
pub const MOUNT_POINTS: &[&str] = &["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// Version of the record's on-disk format.
const SCHEMA: u32 = 1;

/// What berth keeps about a container (`config.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub created: String,
    /// The image id (`sha256:...`).
    pub image: String,
    /// The image as the user named it.
    pub image_ref: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The networks it is on, in order (empty for host, none and container:<x> modes, and
    /// after a disconnect from its last network). None: a record from before networks were
    /// kept, on the network its mode names.
    #[serde(default)]
    pub networks: Option<Vec<crate::network::EndpointRequest>>,
    /// Its bind mounts, volumes and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountPoint>,
}

/// The live view of a container.
#[derive(Debug, Clone)]
pub struct View {
    /// The shim's last reported state (None: never started).
    pub shim: Option<ShimState>,
    /// Exits seen since berthd started watching (for `wait?condition=next-exit`).
    pub exits: u64,
    pub removing: bool,
    pub removed: bool,
}

impl View {
    /// The container's state as the API names it.
    pub fn state(&self) -> State {
        if self.removing || self.removed {
            return State::Removing;
        }
        match self.shim.as_ref().map(|s| s.status) {
            None | Some(Status::Created) => State::Created,
            Some(Status::Running) => State::Running,
            Some(Status::Paused) => State::Paused,
            Some(Status::Restarting) => State::Restarting,
            Some(Status::Exited) => State::Exited,
        }
    }

    fn active(&self) -> bool {
        matches!(
            self.state(),
            State::Running | State::Paused | State::Restarting
        )
    }
}

/// An attach request waiting for the container's shim.
#[derive(Debug)]
struct AttachWaiter {
    req: Request,
    tx: oneshot::Sender<Result<UnixStream, EngineError>>,
}

/// One container.
#[derive(Debug)]
pub struct Entry {
    rec: std::sync::Mutex<Record>,
    view: watch::Sender<View>,
    /// Serialises start, stop, restart and remove.
    op: tokio::sync::Mutex<()>,
    /// Bumped on every start, so that a finished shim's monitor does not act for a newer one.
    generation: std::sync::atomic::AtomicU64,
    attach_waiters: std::sync::Mutex<Vec<AttachWaiter>>,
}

impl Entry {
    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.rec.lock().expect("record lock").clone()
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver of view changes.
    pub fn watch(&self) -> watch::Receiver<View> {
        self.view.subscribe()
    }
}

/// Where the service keeps things and which binaries it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The `berth-shim` binary.
    pub shim_bin: PathBuf,
    /// Default json-file rotation (`log-opts` max-size, max-file).
    pub log_max_size: u64,
    pub log_max_file: u32,
    /// The default bridge network.
    pub network: crate::network::NetworkConfig,
    /// The cgroup hierarchies containers are placed in.
    pub cgroup_layout: berth_shim::CgroupLayout,
}

/// The container service.
#[derive(Debug)]
pub struct Containers {
    s: Settings,
    pub network: Arc<crate::network::NetworkService>,
    pub volumes: Arc<crate::volumes::Volumes>,
    images: Arc<ImageService>,
    pub events: Arc<Events>,
    entries: std::sync::Mutex<BTreeMap<String, Arc<Entry>>>,
    execs: std::sync::Mutex<HashMap<String, ExecRecord>>,
    next_exec_key: std::sync::atomic::AtomicU64,
}

/// An exec instance (`docker exec`): what to run, and how it went.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
    pub key: u64,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
}

/// Options of `logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Nanoseconds since the epoch.
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub tail: Option<usize>,
}

/// One log entry for a client.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub stream: u8,
    pub time: String,
    pub data: Vec<u8>,
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| unavailable(format!("{what}: {e}"))
}

impl berth_durable::Record for Record {
    const KIND: &'static str = "container record";
    const SCHEMA: u32 = SCHEMA;
}

/// Writes a file atomically but without fsync. Not for records (those go through
/// `berth_durable`): for files derived from the record and rewritten on every start (the OCI
/// bundle, the shim's configuration), which a crash can only leave stale, and which the
/// start path cannot afford to fsync.
fn write_run_file(path: &Path, data: &[u8]) -> Result<(), EngineError> {
    Ok(berth_durable::replace(path, data)?)
}

impl Containers {
    /// Loads every container record under the data root. Call [`Containers::restore`] once a
    /// tokio runtime runs to re-adopt live shims.
    pub fn open(
        s: Settings,
        images: Arc<ImageService>,
        events: Arc<Events>,
    ) -> Result<Self, EngineError> {
        let dir = s.data_root.join("containers");
        std::fs::create_dir_all(&dir).map_err(io_err("create the containers directory"))?;
        std::fs::create_dir_all(s.exec_root.join("shims"))
            .map_err(io_err("create the shims directory"))?;
        let mut entries = BTreeMap::new();
        for e in std::fs::read_dir(&dir).map_err(io_err("read the containers directory"))? {
            let e = e.map_err(io_err("read the containers directory"))?;
            if e.file_name().to_string_lossy().starts_with(".removing-") {
                // A removal cut short by a crash: finish it.
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            }
            let p = e.path().join("config.json");
            let rec: Record = match berth_durable::load(&p) {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(error = %err, "container skipped");
                    continue;
                }
            };
            let shim = ShimState::load(&e.path().join("state.json")).ok();
            entries.insert(rec.id.clone(), Arc::new(new_entry(rec, shim)));
        }
        let network = Arc::new(crate::network::NetworkService::new(
            s.network.clone(),
            &s.data_root,
            &s.exec_root,
        ));
        Ok(Containers {
            network,
            volumes: Arc::new(crate::volumes::Volumes::new(&s.data_root)),
            s,
            images,
            events,
            entries: std::sync::Mutex::new(entries),
            execs: std::sync::Mutex::new(HashMap::new()),
            next_exec_key: std::sync::atomic::AtomicU64::new(1),
        })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.s.data_root.join("containers").join(id)
    }

    /// The shim's socket. Unix socket paths are limited to 107 bytes, so it is named by the
    /// id's first 24 hex digits (96 random bits).
    fn socket(&self, id: &str) -> PathBuf {
        self.s
            .exec_root
            .join("shims")
            .join(format!("{}.sock", &id[..24.min(id.len())]))
    }

    /// Re-adopts the shims of containers that were running when berthd stopped.
    pub async fn restore(self: &Arc<Self>) {
        let all: Vec<Arc<Entry>> = self
            .entries
            .lock()
            .expect("entries")
            .values()
            .cloned()
            .collect();
        let known: std::collections::BTreeSet<String> = all.iter().map(|e| e.record().id).collect();
        let net = self.network.clone();
        let _ = tokio::task::spawn_blocking(move || net.reconcile(&known)).await;
        for e in all {
            let v = e.view();
            let Some(st) = v.shim.clone() else {
                // Created with --rm but never started (its `run` was cut short): as dockerd
                // does at start-up, it goes.
                if auto_remove(&e.record()) {
                    let _ = self.remove_with_volumes(&e.record().id, true, true).await;
                }
                continue;
            };
            if st.status == Status::Exited {
                if auto_remove(&e.record()) {
                    let _ = self.remove_with_volumes(&e.record().id, true, true).await;
                } else {
                    self.release_network(&e, 0).await;
                }
                continue;
            }
            let id = e.record().id;
            match UnixStream::connect(self.socket(&id)).await {
                Ok(_) => {
                    tracing::info!(container = %id, "re-adopted a running container");
                    if let Some(a) = self.attachment(&id) {
                        self.network.register_all(&Self::member(&e.record()), &a);
                    }
                    tokio::spawn(self.clone().monitor(e.clone(), 0));
                }
                Err(_) => {
                    // The shim is gone without writing a final state: it crashed or the
                    // machine rebooted. Record the container as exited.
                    let fresh = ShimState::load(&self.dir(&id).join("state.json")).ok();
                    let mut st = fresh.unwrap_or(st);
                    if st.status != Status::Exited {
                        st.status = Status::Exited;
                        st.exit_code = 255;
                        st.pid = 0;
                        st.error = "the container's shim exited unexpectedly".into();
                        st.finished_at = berth_shim::rfc3339(SystemTime::now());
                        let _ = st.save(&self.dir(&id).join("state.json"));
                        let _ = berth_shim::MountSpec::unmount(&self.dir(&id).join("rootfs"));
                    }
                    e.view.send_modify(|v| v.shim = Some(st));
                    if auto_remove(&e.record()) {
                        let _ = self.remove_with_volumes(&id, true, true).await;
                    }
                }
            }
        }
    }

    /// The containers' invariants: each record's image is in the store; a container recorded
    /// as running has a live shim; a stopped one has no root file system mounted; every
    /// directory under `containers/` has a record. With `repair`: a container whose shim is
    /// gone is recorded as exited (as at start-up), a stale root mount is unmounted, and a
    /// directory without a record (an interrupted create) is removed when nothing is mounted
    /// in it.
    pub async fn check(&self, repair: bool) -> Vec<berth_image::store::Finding> {
        use berth_image::store::Finding;
        let mut out = Vec::new();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounted = |p: &Path| {
            let p = p.display().to_string();
            mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|m| m == p || m.starts_with(&format!("{p}/")))
        };
        let all: Vec<Arc<Entry>> = self
            .entries
            .lock()
            .expect("entries")
            .values()
            .cloned()
            .collect();
        for e in all {
            let rec = e.record();
            let subject = format!("container {}", &rec.id[..12.min(rec.id.len())]);
            if !self.images.has(&rec.image) {
                out.push(Finding::new(
                    "error",
                    subject.clone(),
                    format!("its image {} is not in the store", rec.image),
                ));
            }
            let st = e.view().shim;
            // A shim that has not reported its exit is alive (created, running, paused,
            // restarting), or should be.
            let live = st.as_ref().is_some_and(|s| s.status != Status::Exited);
            let rootfs = self.dir(&rec.id).join("rootfs");
            if live {
                if UnixStream::connect(self.socket(&rec.id)).await.is_err() {
                    let mut f = Finding::new(
                        "repairable",
                        subject,
                        "recorded as live, but its shim is gone",
                    );
                    if repair {
                        let mut st = st.expect("live means a state");
                        st.status = Status::Exited;
                        st.exit_code = 255;
                        st.pid = 0;
                        st.error = "the container's shim exited unexpectedly".into();
                        st.finished_at = berth_shim::rfc3339(SystemTime::now());
                        let _ = st.save(&self.dir(&rec.id).join("state.json"));
                        let _ = berth_shim::MountSpec::unmount(&rootfs);
                        e.view.send_modify(|v| v.shim = Some(st));
                        f.repaired = true;
                    }
                    out.push(f);
                }
            } else if mounted(&rootfs) {
                let mut f = Finding::new(
                    "repairable",
                    subject,
                    "stopped, but its root file system is still mounted",
                );
                if repair && berth_shim::MountSpec::unmount(&rootfs).is_ok() {
                    f.repaired = true;
                }
                out.push(f);
            }
        }
        // Under the entries lock, so that a create (which holds it while it writes the
        // record) is never mistaken for a leftover.
        let entries = self.entries.lock().expect("entries");
        for d in std::fs::read_dir(self.s.data_root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = d.file_name().to_string_lossy().to_string();
            let problem = if name.starts_with(".removing-") {
                "a removal cut short"
            } else if entries.contains_key(&name) || d.path().join("config.json").is_file() {
                continue;
            } else {
                "no record (an interrupted create)"
            };
            let mut f = Finding::new("repairable", format!("container directory {name}"), problem);
            if repair && !mounted(&d.path()) && std::fs::remove_dir_all(d.path()).is_ok() {
                f.repaired = true;
            }
            out.push(f);
        }
        out
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn find(&self, name_or_id: &str) -> Result<Arc<Entry>, EngineError> {
        let entries = self.entries.lock().expect("entries");
        if let Some(e) = entries.get(name_or_id) {
            return Ok(e.clone());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(e) = entries.values().find(|e| e.record().name == name) {
            return Ok(e.clone());
        }
        let ids: Vec<ContainerId> = entries
            .keys()
            .filter_map(|k| ContainerId::parse(k).ok())
            .collect();
        match crate::id::find_by_prefix(&ids, name_or_id) {
            Ok(id) => Ok(entries[id.as_str()].clone()),
            Err(crate::id::IdError::Ambiguous(_)) => Err(invalid(format!(
                "multiple IDs found with provided prefix: {name_or_id}"
            ))),
            Err(_) => Err(not_found(format!("No such container: {name_or_id}"))),
        }
    }

    /// Every container, newest first.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        let mut v: Vec<Arc<Entry>> = self
            .entries
            .lock()
            .expect("entries")
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.record().created));
        v
    }

    /// Image ids that containers use.
    pub fn images_in_use(&self) -> HashMap<String, (String, bool)> {
        let mut out = HashMap::new();
        for e in self.entries.lock().expect("entries").values() {
            let r = e.record();
            let running = e.view().active();
            let ent = out
                .entry(r.image.clone())
                .or_insert((r.id[..12].to_string(), false));
            if running {
                *ent = (r.id[..12].to_string(), true);
            }
        }
        out
    }

    fn publish(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.insert("image".into(), rec.image_ref.clone());
        attrs.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.publish("container", action, &rec.id, attrs);
    }

    /// `POST /containers/create`.
    pub fn create(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>), EngineError> {
        let image_ref = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| invalid("config cannot be empty in order to create a container"))?;
        let (image_id, icfg) = self.images.resolve(&image_ref)?;
        let mut host_config = body.host_config.clone().unwrap_or_default();
        // The Config part of the body, field for field.
        let mut config: ContainerConfig = serde_json::from_value(
            serde_json::to_value(&body).map_err(|e| invalid(e.to_string()))?,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let ic = &icfg.config;
        // Entrypoint and command: the body's win; an entrypoint given without a command
        // drops the image's command, as in Docker.
        let entrypoint = match &body.entrypoint {
            Some(e) => e.clone(),
            None => ic.entrypoint.clone().unwrap_or_default(),
        };
        let cmd = match (&body.cmd, &body.entrypoint) {
            (Some(c), _) if !c.is_empty() => c.clone(),
            (_, Some(_)) => Vec::new(),
            _ => ic.cmd.clone().unwrap_or_default(),
        };
        let mut argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
        if argv.is_empty() {
            return Err(invalid("No command specified"));
        }
        let path = argv.remove(0);
        if config.entrypoint.is_none() {
            config.entrypoint = ic.entrypoint.clone();
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) && body.entrypoint.is_none() {
            config.cmd = ic.cmd.clone();
        }
        // Environment: the image's, overridden by the body's, key by key.
        let mut env: Vec<String> = ic.env.clone().unwrap_or_default();
        for e in body.env.iter().flatten() {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        config.env = Some(env);
        if config.working_dir.as_deref().is_none_or(str::is_empty) {
            config.working_dir = ic.working_dir.clone();
        }
        if config.user.as_deref().is_none_or(str::is_empty) {
            config.user = ic.user.clone();
        }
        if config.stop_signal.is_none() {
            config.stop_signal = ic.stop_signal.clone();
        }
        let mut labels: HashMap<String, String> =
            ic.labels.clone().unwrap_or_default().into_iter().collect();
        labels.extend(body.labels.clone().unwrap_or_default());
        config.labels = Some(labels);
        config.image = Some(image_ref.clone());
        if let Some(sig) = &config.stop_signal {
            parse_signal(sig)?;
        }
        let restart = restart_policy(&host_config)?;
        if restart.name != "no" && host_config.auto_remove.unwrap_or(false) {
            return Err(invalid(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        host_config.log_config = Some(crate::logconfig::normalized(&host_config)?);
        // One runtime, named as `info` lists it; anything else is refused as dockerd refuses
        // a runtime it has not configured.
        match host_config.runtime.as_deref() {
            None | Some("") | Some("berth") => host_config.runtime = Some("berth".into()),
            Some(other) => {
                return Err(invalid(format!("unknown or invalid runtime name: {other}")))
            }
        }
        crate::logconfig::settings(&host_config, self.s.log_max_size, self.s.log_max_file)?;
        if host_config
            .network_mode
            .as_deref()
            .is_none_or(str::is_empty)
        {
            host_config.network_mode = Some("bridge".into());
        }
        let id = ContainerId::random();
        let networks = self.requested_networks(&host_config, body.networking_config.as_ref())?;
        let config_volumes: Vec<String> = body.volumes.iter().flatten().cloned().collect();
        let image_volumes: Vec<String> = ic
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        let mut wanted_mounts =
            crate::mounts::wanted(&host_config, &config_volumes, &image_volumes)?;
        for vf in host_config.volumes_from.iter().flatten() {
            let (src, mode) = vf.split_once(':').unwrap_or((vf.as_str(), ""));
            let force_ro = match mode {
                "" => None,
                "ro" => Some(true),
                "rw" => Some(false),
                m => return Err(invalid(format!("invalid mode for volumes-from: {m}"))),
            };
            let other = self
                .find(src)
                .map_err(|_| not_found(format!("No such container: {src}")))?;
            for mp in other.record().mounts {
                if wanted_mounts
                    .iter()
                    .any(|w| w.point.destination == mp.destination)
                {
                    continue;
                }
                let mut point = mp.clone();
                if let Some(ro) = force_ro {
                    point.rw = !ro;
                }
                point.copy = false;
                wanted_mounts.push(crate::mounts::Wanted {
                    point,
                    labels: Default::default(),
                    driver_opts: Default::default(),
                    anonymous: false,
                    create_source: false,
                });
            }
        }
        if let Some(target) = host_config
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            // Docker's rules for sharing another container's network namespace.
            if config.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                return Err(invalid(
                    "conflicting options: hostname and the network mode",
                ));
            }
            let publishes = host_config.port_bindings.as_ref().is_some_and(|b| {
                b.values()
                    .any(|v| v.as_ref().is_some_and(|l| !l.is_empty()))
            }) || host_config.publish_all_ports.unwrap_or(false);
            if publishes {
                return Err(invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            let t = self
                .find(target)
                .map_err(|_| not_found(format!("No such container: {target}")))?;
            // The joined container's name is what the hostname shows, as with docker.
            config.hostname = t.record().config.hostname.clone();
        }
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            config.hostname = Some(id.short().to_string());
        }
        // The spec is built once now so that bad input fails at create, as with Docker.
        crate::spec::build(
            id.as_str(),
            &config,
            &host_config,
            &path,
            &argv,
            &crate::spec::Paths {
                rootfs: Path::new("/"),
                dir: Path::new("/"),
                layers: &self
                    .images
                    .layer_dirs(&image_id, &self.dir(id.as_str()).join("upper"))?,
                init: Some(&self.s.shim_bin),
                netns: None,
                mounts: &[],
            },
        )?;
        let mut entries = self.entries.lock().expect("entries");
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = crate::name::validate(n).map_err(|e| invalid(e.to_string()))?;
                if let Some(other) = entries.values().find(|e| e.record().name == n) {
                    return Err(conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.record().id
                    )));
                }
                n
            }
            None => crate::name::random(|n| entries.values().any(|e| e.record().name == n)),
        };
        let rec = Record {
            schema: SCHEMA,
            id: id.as_str().to_string(),
            name,
            created: berth_shim::rfc3339(SystemTime::now()),
            image: image_id,
            image_ref,
            path,
            args: argv,
            config,
            host_config,
            networks: Some(networks),
            mounts: self.make_mounts(wanted_mounts)?,
        };
        let dir = self.dir(&rec.id);
        std::fs::create_dir_all(&dir).map_err(io_err("create the container directory"))?;
        berth_durable::save(&dir.join("config.json"), &rec)?;
        entries.insert(rec.id.clone(), Arc::new(new_entry(rec.clone(), None)));
        drop(entries);
        self.publish("create", &rec, &[]);
        Ok((rec.id, Vec::new()))
    }

    /// Creates what the mounts need: missing `-v` bind sources (as docker does) and the
    /// volumes, named or anonymous. Runs after every check of the request has passed.
    fn make_mounts(
        &self,
        wanted: Vec<crate::mounts::Wanted>,
    ) -> Result<Vec<crate::mounts::MountPoint>, EngineError> {
        let mut out = Vec::new();
        for w in wanted {
            let mut p = w.point;
            match p.typ.as_str() {
                "bind" if w.create_source && !Path::new(&p.source).exists() => {
                    std::fs::create_dir_all(&p.source).map_err(|e| {
                        invalid(format!("create the bind source {}: {e}", p.source))
                    })?;
                }
                "volume" => {
                    let mut labels = w.labels.clone();
                    if w.anonymous {
                        labels.insert("com.docker.volume.anonymous".into(), String::new());
                    }
                    let v = self.volumes.create(
                        p.name.as_deref(),
                        None,
                        labels,
                        w.driver_opts.clone(),
                        w.anonymous,
                    )?;
                    p.name = Some(v.name);
                }
                _ => {}
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The containers (ids) whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.entries
            .lock()
            .expect("entries")
            .values()
            .map(|e| e.record())
            .filter(|r| r.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
            .map(|r| r.id)
            .collect()
    }

    /// The OCI mounts of a container's mount points, parents before children.
    fn oci_mounts(&self, rec: &Record) -> Result<Vec<serde_json::Value>, EngineError> {
        let mut out = Vec::new();
        for m in rec.mounts.clone() {
            let ro = if m.rw { None } else { Some("ro") };
            let bind = |src: &str, prop: &str| {
                let mut o = vec!["rbind".to_string(), prop.to_string()];
                o.extend(ro.map(String::from));
                serde_json::json!({"destination": m.destination, "type": "bind", "source": src, "options": o})
            };
            match m.typ.as_str() {
                "bind" => out.push(bind(&m.source, &m.propagation)),
                "tmpfs" => {
                    let mut o = vec![
                        "nosuid".to_string(),
                        "nodev".to_string(),
                        "noexec".to_string(),
                    ];
                    o.extend(
                        m.tmpfs
                            .split(',')
                            .filter(|x| !x.is_empty())
                            .map(String::from),
                    );
                    o.extend(ro.map(String::from));
                    out.push(serde_json::json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o}));
                }
                "volume" => {
                    let name = m.name.clone().unwrap_or_default();
                    let v = self.volumes.get(&name)?;
                    let typ = v.options.get("type").cloned().unwrap_or_default();
                    let o_opt = v.options.get("o").cloned().unwrap_or_default();
                    if o_opt.split(',').any(|x| x == "bind") {
                        let dev = v.options.get("device").cloned().unwrap_or_default();
                        out.push(bind(&dev, "rprivate"));
                    } else if !typ.is_empty() && typ != "none" {
                        let mut o: Vec<String> = o_opt
                            .split(',')
                            .filter(|x| !x.is_empty())
                            .map(String::from)
                            .collect();
                        o.extend(ro.map(String::from));
                        let src = v
                            .options
                            .get("device")
                            .cloned()
                            .unwrap_or_else(|| typ.clone());
                        out.push(serde_json::json!({"destination": m.destination, "type": typ, "source": src, "options": o}));
                    } else {
                        out.push(bind(
                            &self.volumes.data_dir(&name).display().to_string(),
                            "rprivate",
                        ));
                    }
                }
                other => return Err(invalid(format!("unknown mount type {other}"))),
            }
        }
        Ok(out)
    }

    /// Docker's copy-up: a plain volume that is new and empty gets the image's content at
    /// its mount point, once (not with `nocopy`). The path is resolved inside the
    /// container's root, so an image's symlink cannot point the copy at a host path.
    async fn populate_volumes(self: &Arc<Self>, rec: &Record) -> Result<(), EngineError> {
        let todo: Vec<(String, String)> = rec
            .mounts
            .iter()
            .filter(|m| m.typ == "volume" && m.copy)
            .filter_map(|m| {
                let name = m.name.clone()?;
                let v = self.volumes.get(&name).ok()?;
                let empty = std::fs::read_dir(self.volumes.data_dir(&name))
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                (v.is_plain() && !v.populated && empty).then(|| (name, m.destination.clone()))
            })
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        let list = todo.clone();
        let tmp = self.s.exec_root.join("copyup");
        self.with_stopped_root(rec, move |root| {
            for (name, dst) in &list {
                let data = me.volumes.data_dir(name);
                crate::archive::copy_tree(root, Path::new(dst), &data, &tmp)?;
            }
            Ok(())
        })
        .await?;
        for (name, _) in todo {
            self.volumes.mark_populated(&name)?;
        }
        Ok(())
    }

    fn save_record(&self, rec: &Record) -> Result<(), EngineError> {
        Ok(berth_durable::save(
            &self.dir(&rec.id).join("config.json"),
            rec,
        )?)
    }

    /// The networks a new container asks for: its network mode (a network's name, `bridge`
    /// by default) first, then the other networks of `EndpointsConfig`, with their aliases,
    /// addresses and MAC addresses. Every one must exist.
    fn requested_networks(
        &self,
        hc: &HostConfig,
        nc: Option<&bollard_stubs::models::NetworkingConfig>,
    ) -> Result<Vec<crate::network::EndpointRequest>, EngineError> {
        let raw_mode = hc.network_mode.as_deref().unwrap_or("bridge");
        let mode = if raw_mode == "default" || raw_mode.is_empty() {
            crate::network::DEFAULT_NETWORK
        } else {
            raw_mode
        };
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Ok(Vec::new());
        }
        if mode == crate::network::DEFAULT_NETWORK && self.network.config().bridge == "none" {
            // `bridge: none` in daemon.json: a namespace of its own, unconnected.
            return Ok(Vec::new());
        }
        let eps = nc
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let mut names: Vec<String> = vec![mode.to_string()];
        let mut others: Vec<&String> = eps
            .keys()
            .filter(|k| ![mode, raw_mode, "default"].contains(&k.as_str()))
            .collect();
        others.sort();
        names.extend(others.into_iter().cloned());
        let mut out = Vec::new();
        for name in names {
            let n = self.network.find(&name)?;
            if !matches!(n.driver.as_str(), "bridge") {
                return Err(invalid(format!(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode or host mode: {}",
                    n.name
                )));
            }
            let ep = eps.get(&name).or_else(|| {
                (name == mode)
                    .then(|| eps.get(raw_mode).or_else(|| eps.get("default")))
                    .flatten()
            });
            let req = crate::network::endpoint_request(&n, ep)?;
            if out
                .iter()
                .any(|r: &crate::network::EndpointRequest| r.network == req.network)
            {
                continue;
            }
            out.push(req);
        }
        Ok(out)
    }

    /// The networks of a container, for records written before they were kept.
    pub fn networks_of(&self, rec: &Record) -> Vec<crate::network::EndpointRequest> {
        if let Some(n) = &rec.networks {
            return n.clone();
        }
        let bridge_mode = matches!(
            rec.host_config.network_mode.as_deref(),
            None | Some("") | Some("bridge") | Some("default")
        );
        if bridge_mode && self.network.config().bridge != "none" {
            vec![crate::network::EndpointRequest {
                network: crate::network::DEFAULT_NETWORK.into(),
                ..Default::default()
            }]
        } else {
            Vec::new()
        }
    }

    fn member(rec: &Record) -> crate::network::Member {
        crate::network::Member {
            id: rec.id.clone(),
            name: rec.name.clone(),
            dns: rec
                .host_config
                .dns
                .iter()
                .flatten()
                .filter_map(|d| d.parse().ok())
                .collect(),
        }
    }

    /// For `--network container:<target>`: the target's network namespace (its bridge
    /// namespace file, or its init's `/proc/<pid>/ns/net`) and its directory. The target must
    /// be running, as with docker.
    fn joined_netns(&self, target: &str, me: &str) -> Result<(PathBuf, PathBuf), EngineError> {
        let t = self
            .find(target)
            .map_err(|_| not_found(format!("No such container: {target}")))?;
        let rec = t.record();
        if rec.id == me {
            return Err(invalid("cannot join own network"));
        }
        let v = t.view();
        // Not a conflict of this container's state: the start fails and takes the failure
        // path (recorded exit, `--rm` removal), as a missing program would.
        if !matches!(v.state(), State::Running | State::Paused) {
            return Err(unavailable(format!(
                "cannot join network of a non running container: {}",
                rec.id
            )));
        }
        if let Some(a) = self.attachment(&rec.id) {
            if berth_network::netns::NetNs::is_live(&a.netns) {
                return Ok((a.netns, self.dir(&rec.id)));
            }
        }
        let pid = v
            .shim
            .as_ref()
            .map(|s| s.pid)
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                unavailable(format!(
                    "cannot join network of a non running container: {}",
                    rec.id
                ))
            })?;
        Ok((
            PathBuf::from(format!("/proc/{pid}/ns/net")),
            self.dir(&rec.id),
        ))
    }

    /// What the container holds on the bridge, if anything (`<dir>/network.json`).
    pub fn attachment(&self, id: &str) -> Option<crate::network::Attachment> {
        berth_durable::load(&self.dir(id).join("network.json")).ok()
    }

    /// The container's bridge attachment: the one it has when its namespace is still there
    /// (a restart), else a new one (first start, or after a reboot emptied the exec root).
    async fn ensure_attached(
        &self,
        rec: &Record,
    ) -> Result<crate::network::Attachment, EngineError> {
        let path = self.dir(&rec.id).join("network.json");
        let wanted: Vec<String> = self
            .networks_of(rec)
            .iter()
            .map(|r| {
                self.network
                    .find(&r.network)
                    .map(|n| n.id)
                    .unwrap_or_else(|_| r.network.clone())
            })
            .collect();
        if let Some(a) = self.attachment(&rec.id) {
            // Kept only if it is what the record asks for now: a stop's release may not have
            // run yet when a `network connect` and a start come right after it.
            let same = a
                .endpoints
                .iter()
                .map(|e| e.network_id.clone())
                .eq(wanted.iter().cloned());
            if same && berth_network::netns::NetNs::is_live(&a.netns) {
                return Ok(a);
            }
            let (net, id) = (self.network.clone(), rec.id.clone());
            let _ = tokio::task::spawn_blocking(move || net.detach(&id, &a)).await;
        }
        let exposed = rec.config.exposed_ports.clone().unwrap_or_default();
        let ports = crate::network::port_requests(
            rec.host_config.port_bindings.as_ref(),
            &exposed,
            rec.host_config.publish_all_ports.unwrap_or(false),
        )?;
        let (net, m, reqs) = (
            self.network.clone(),
            Self::member(rec),
            self.networks_of(rec),
        );
        let a = tokio::task::spawn_blocking(move || net.attach(&m, &reqs, &ports))
            .await
            .map_err(|e| unavailable(format!("attach to the network: {e}")))??;
        berth_durable::save(&path, &a)?;
        Ok(a)
    }

    /// `POST /networks/{id}/connect`: on the network from the next start, and at once if
    /// the container runs.
    pub async fn connect(
        &self,
        container: &str,
        network: &str,
        ep: Option<&bollard_stubs::models::EndpointSettings>,
    ) -> Result<(), EngineError> {
        let e = self.find(container)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let mode = rec.host_config.network_mode.as_deref().unwrap_or("");
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
            )));
        }
        let n = self.network.find(network)?;
        let req = crate::network::endpoint_request(&n, ep)?;
        let mut nets = self.networks_of(&rec);
        if nets.iter().any(|r| {
            r.network == n.name || self.network.find(&r.network).is_ok_and(|x| x.id == n.id)
        }) {
            return Err(forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        if matches!(e.view().state(), State::Running | State::Paused) {
            if let Some(mut a) = self.attachment(&rec.id) {
                if berth_network::netns::NetNs::is_live(&a.netns) {
                    let dns_before = a.dns_server();
                    let (net, m, r2) = (self.network.clone(), Self::member(&rec), req.clone());
                    let a = tokio::task::spawn_blocking(move || {
                        net.connect(&m, &mut a, &r2).map(|()| a)
                    })
                    .await
                    .map_err(|e| unavailable(format!("connect: {e}")))??;
                    berth_durable::save(&self.dir(&rec.id).join("network.json"), &a)?;
                    self.dns_changed(&rec, dns_before, &a)?;
                }
            }
        }
        nets.push(req);
        let mut rec = e.record();
        rec.networks = Some(nets);
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec.clone();
        self.publish_network("connect", &n, &rec);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(
        &self,
        container: &str,
        network: &str,
        force: bool,
    ) -> Result<(), EngineError> {
        let e = self.find(container)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let n = self.network.find(network);
        let mut nets = self.networks_of(&rec);
        let pos = nets.iter().position(|r| match &n {
            Ok(n) => {
                r.network == n.name || self.network.find(&r.network).is_ok_and(|x| x.id == n.id)
            }
            Err(_) => force && r.network == network,
        });
        let Some(pos) = pos else {
            return Err(forbidden(format!(
                "container {} is not connected to network {network}",
                rec.id
            )));
        };
        if let (Ok(n), Some(mut a)) = (&n, self.attachment(&rec.id)) {
            if a.endpoints.iter().any(|x| x.network_id == n.id)
                && berth_network::netns::NetNs::is_live(&a.netns)
            {
                let dns_before = a.dns_server();
                let (net, id, nid) = (self.network.clone(), rec.id.clone(), n.id.clone());
                let a = tokio::task::spawn_blocking(move || {
                    net.disconnect(&id, &mut a, &nid).map(|()| a)
                })
                .await
                .map_err(|e| unavailable(format!("disconnect: {e}")))??;
                berth_durable::save(&self.dir(&rec.id).join("network.json"), &a)?;
                self.dns_changed(&rec, dns_before, &a)?;
            }
        }
        nets.remove(pos);
        let mut rec = e.record();
        rec.networks = Some(nets);
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec.clone();
        if let Ok(n) = &n {
            self.publish_network("disconnect", n, &rec);
        }
        Ok(())
    }

    /// A running container whose nameserver changed with a connect or disconnect (it joined
    /// its first user network, or left the one whose DNS it used) gets a new resolv.conf, as
    /// with docker. The files are rewritten in place: they are bind-mounted.
    fn dns_changed(
        &self,
        rec: &Record,
        before: Option<std::net::Ipv4Addr>,
        a: &crate::network::Attachment,
    ) -> Result<(), EngineError> {
        if before == a.dns_server() {
            return Ok(());
        }
        write_etc_files(
            &self.dir(&rec.id),
            rec.config.hostname.as_deref().unwrap_or_default(),
            &rec.host_config,
            Some(a),
            &self.network.config().dns,
        )
    }

    fn publish_network(&self, action: &str, n: &crate::network::Network, rec: &Record) {
        let attrs = BTreeMap::from([
            ("container".to_string(), rec.id.clone()),
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]);
        self.events.publish("network", action, &n.id, attrs);
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        self.start_locked(&e).await
    }

    async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<(), EngineError> {
        let res = self.start_inner(e).await;
        if let Err(err) = &res {
            if err.kind != crate::error::Kind::NotModified
                && err.kind != crate::error::Kind::Conflict
            {
                // Waiting attach clients get their stream closed; the failure is recorded
                // as Docker records it (exit code 127 for a missing program, 126 when it
                // cannot run), and an --rm container goes away.
                e.attach_waiters.lock().expect("waiters").clear();
                let rec = e.record();
                let mut st = e.view().shim.unwrap_or_else(|| failed_state(&err.message));
                st.status = Status::Exited;
                st.pid = 0;
                st.exit_code = start_exit_code(&err.message);
                st.error = err.message.clone();
                let _ = st.save(&self.dir(&rec.id).join("state.json"));
                e.view.send_modify(|v| {
                    v.shim = Some(st);
                    v.exits += 1;
                });
                self.publish(
                    "die",
                    &rec,
                    &[("exitCode", start_exit_code(&err.message).to_string())],
                );
                if auto_remove(&rec) {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _ = me.remove_with_volumes(&rec.id, true, true).await;
                    });
                }
            }
        }
        res
    }

    async fn start_inner(self: &Arc<Self>, e: &Arc<Entry>) -> Result<(), EngineError> {
        let rec = e.record();
        match e.view().state() {
            State::Running | State::Restarting => return Err(not_modified()),
            State::Paused => {
                return Err(conflict(format!(
                    "cannot start a paused container {}, try unpause instead",
                    rec.name
                )))
            }
            State::Removing | State::Dead => {
                return Err(conflict(
                    "container is marked for removal and cannot be started",
                ))
            }
            State::Created | State::Exited => {}
        }
        let dir = self.dir(&rec.id);
        let (upper, work, rootfs, bundle) = (
            dir.join("upper"),
            dir.join("work"),
            dir.join("rootfs"),
            dir.join("bundle"),
        );
        for d in [&upper, &work, &rootfs, &bundle] {
            std::fs::create_dir_all(d).map_err(io_err("create the container's directories"))?;
        }
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let joined = match rec
            .host_config
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            Some(t) => Some(self.joined_netns(t, &rec.id)?),
            None => None,
        };
        let attachment = if self.networks_of(&rec).is_empty() {
            None
        } else {
            Some(self.ensure_attached(&rec).await?)
        };
        write_etc_files(
            &dir,
            &hostname,
            &rec.host_config,
            attachment.as_ref(),
            &self.network.config().dns,
        )?;
        if let Some((_, target_dir)) = &joined {
            // The joined container's hosts and resolv.conf, as docker shares them.
            for f in ["hosts", "resolv.conf"] {
                let _ = std::fs::copy(target_dir.join(f), dir.join(f));
            }
        }
        self.populate_volumes(&rec).await?;
        let user_mounts = self.oci_mounts(&rec)?;
        let mounts = self
            .images
            .rootfs_mounts(&rec.image, &upper, &work, &rootfs)?;
        let layers = self.images.layer_dirs(&rec.image, &upper)?;
        let spec = crate::spec::build(
            &rec.id,
            &rec.config,
            &rec.host_config,
            &rec.path,
            &rec.args,
            &crate::spec::Paths {
                rootfs: &rootfs,
                dir: &dir,
                layers: &layers,
                init: Some(&self.s.shim_bin),
                netns: attachment
                    .as_ref()
                    .map(|a| a.netns.as_path())
                    .or(joined.as_ref().map(|(p, _)| p.as_path())),
                mounts: &user_mounts,
            },
        )?;
        write_run_file(
            &bundle.join("config.json"),
            &serde_json::to_vec(&spec).expect("spec serialises"),
        )?;
        let logs =
            crate::logconfig::settings(&rec.host_config, self.s.log_max_size, self.s.log_max_file)?;
        let cfg = ShimConfig {
            id: rec.id.clone(),
            bundle: bundle.clone(),
            runtime_root: self.s.exec_root.join("runtime"),
            socket: self.socket(&rec.id),
            state_file: dir.join("state.json"),
            rootfs_mounts: mounts.into_iter().map(mount_spec).collect(),
            log: berth_shim::LogConfig {
                path: dir.join(format!("{}-json.log", rec.id)),
                max_size: logs.max_size,
                max_file: logs.max_file,
                disabled: logs.disabled,
            },
            restart: restart_policy(&rec.host_config)?,
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            tty: rec.config.tty.unwrap_or(false),
            autostart: false,
            cgroup_layout: self.s.cgroup_layout,
        };
        write_run_file(
            &dir.join("shim.json"),
            &serde_json::to_vec_pretty(&cfg).expect("shim config serialises"),
        )?;
        let _ = std::fs::remove_file(dir.join("state.json"));
        // The shim reports `ok <pid>` or `error: ...` on its stdout once the container is
        // created, then detaches.
        // Only the first line counts: the container's init, forked from the shim before it
        // answered, holds a copy of the pipe until it execs.
        let mut child = tokio::process::Command::new(&self.s.shim_bin)
            .arg(dir.join("shim.json"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| unavailable(format!("run {}: {e}", self.s.shim_bin.display())))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line).await;
        }
        // The first process exits right after forking the shim proper.
        let _ = child.wait().await;
        let line = line.trim().to_string();
        if !line.starts_with("ok") {
            let msg = line.strip_prefix("error: ").unwrap_or(&line).to_string();
            return Err(start_error(&msg));
        }
        let gen = e
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        // Attach clients that were waiting for the container get connected before it runs,
        // so that they see all of its output.
        let waiters: Vec<AttachWaiter> =
            std::mem::take(&mut *e.attach_waiters.lock().expect("waiters"));
        for w in waiters {
            let r = shim_stream(&self.socket(&rec.id), &w.req).await;
            let _ = w.tx.send(r);
        }
        let monitor = tokio::spawn(self.clone().monitor(e.clone(), gen));
        if let Err(err) = shim_call(&self.socket(&rec.id), &Request::Start).await {
            // The shim stays to report the failure; stop it.
            let _ = shim_call(
                &self.socket(&rec.id),
                &Request::Stop {
                    signal: 9,
                    timeout: 0,
                },
            )
            .await;
            // Not the monitor itself: it may be waiting for this operation's lock (--rm).
            wait_for(
                &e.watch(),
                |v| v.state() == State::Exited,
                Duration::from_secs(10),
            )
            .await;
            drop(monitor);
            return Err(start_error(&err.message));
        }
        // The subscription may lag: show the start at once.
        wait_for(
            &e.watch(),
            |v| v.state() != State::Created,
            Duration::from_secs(5),
        )
        .await;
        self.publish("start", &rec, &[]);
        Ok(())
    }

    /// Follows a shim's state until it exits; then finishes the container's run.
    async fn monitor(self: Arc<Self>, e: Arc<Entry>, gen: u64) {
        let id = e.record().id;
        let sock = self.socket(&id);
        let mut last_exits = None::<u64>;
        let mut final_seen = false;
        if let Ok(mut s) = UnixStream::connect(&sock).await {
            let mut line = serde_json::to_vec(&Request::Subscribe).expect("request");
            line.push(b'\n');
            if s.write_all(&line).await.is_ok() {
                let mut lines = BufReader::new(s).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    // The first line is a reply carrying the state; later ones are states.
                    let st = match serde_json::from_str::<ShimState>(&l) {
                        Ok(s) => Some(s),
                        Err(_) => serde_json::from_str::<Reply>(&l).ok().and_then(|r| r.state),
                    };
                    let Some(st) = st else { continue };
                    let new_exits = match last_exits {
                        Some(n) => st.exits.saturating_sub(n),
                        None => 0,
                    };
                    last_exits = Some(st.exits);
                    final_seen = st.status == Status::Exited;
                    let rec = e.record();
                    if new_exits > 0 {
                        self.publish("die", &rec, &[("exitCode", st.exit_code.to_string())]);
                    }
                    let restarted = st.status == Status::Running
                        && e.view()
                            .shim
                            .as_ref()
                            .is_some_and(|p| p.status == Status::Restarting);
                    e.view.send_modify(|v| {
                        v.exits += new_exits;
                        v.shim = Some(st);
                    });
                    if restarted {
                        self.publish("restart", &rec, &[]);
                    }
                }
            }
        }
        if e.generation.load(std::sync::atomic::Ordering::SeqCst) != gen && gen != 0 {
            return;
        }
        if !final_seen {
            // The shim went away without telling us the end: read what it recorded.
            let st = ShimState::load(&self.dir(&id).join("state.json")).ok();
            e.view.send_modify(|v| {
                if let Some(mut st) = st {
                    if st.status != Status::Exited {
                        st.status = Status::Exited;
                        st.exit_code = 255;
                        st.error = "the container's shim exited unexpectedly".into();
                    }
                    let ex = last_exits.map_or(1, |n| st.exits.saturating_sub(n).max(1));
                    v.exits += ex;
                    v.shim = Some(st);
                }
            });
            let rec = e.record();
            let code = e.view().shim.map_or(255, |s| s.exit_code);
            self.publish("die", &rec, &[("exitCode", code.to_string())]);
        }
        let rec = e.record();
        if auto_remove(&rec) && !e.view().removing {
            if let Err(err) = self.remove_with_volumes(&rec.id, true, true).await {
                if err.kind != crate::error::Kind::NotFound {
                    tracing::warn!(container = %rec.id, error = %err, "auto-remove failed");
                }
            }
        } else {
            self.release_network(&e, gen).await;
        }
    }

    /// A container that stopped for good gives back its published ports, veth, namespace and
    /// address, as with docker (its next start attaches it anew). Skipped when another start
    /// came first.
    async fn release_network(&self, e: &Arc<Entry>, gen: u64) {
        let _op = e.op.lock().await;
        let stale = gen != 0 && e.generation.load(std::sync::atomic::Ordering::SeqCst) != gen;
        if stale || e.view().state() != State::Exited || e.view().removed {
            return;
        }
        let id = e.record().id;
        let Some(a) = self.attachment(&id) else {
            return;
        };
        let (net, id2) = (self.network.clone(), id.clone());
        match tokio::task::spawn_blocking(move || net.detach(&id2, &a)).await {
            Ok(Ok(())) => {
                let _ = std::fs::remove_file(self.dir(&id).join("network.json"));
            }
            Ok(Err(err)) => {
                tracing::warn!(container = %id, error = %err, "releasing the network failed")
            }
            Err(err) => {
                tracing::warn!(container = %id, error = %err, "releasing the network failed")
            }
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, SIGKILL after the timeout.
    pub async fn stop(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        self.stop_locked(&e, signal, timeout).await
    }

    async fn stop_locked(
        &self,
        e: &Arc<Entry>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let rec = e.record();
        if !e.view().active() {
            return Err(not_modified());
        }
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => rec
                .config
                .stop_signal
                .as_deref()
                .map(parse_signal)
                .transpose()?
                .unwrap_or(15),
        };
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        shim_call(
            &self.socket(&rec.id),
            &Request::Stop {
                signal: sig,
                timeout,
            },
        )
        .await?;
        let limit = if timeout < 0 {
            Duration::MAX
        } else {
            Duration::from_secs(timeout as u64 + 30)
        };
        if !wait_for(&e.watch(), |v| v.state() == State::Exited, limit).await {
            return Err(unavailable(format!("container {} did not stop", rec.id)));
        }
        self.publish("stop", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        match self.stop_locked(&e, signal, timeout).await {
            Ok(()) => {}
            Err(err) if err.kind == crate::error::Kind::NotModified => {}
            Err(err) => return Err(err),
        }
        self.start_locked(&e).await?;
        self.publish("restart", &e.record(), &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        if !matches!(e.view().state(), State::Running | State::Paused) {
            return Err(conflict(format!(
                "Cannot kill container: {name}: Container {} is not running",
                rec.id
            )));
        }
        let exits_before = e.view().exits;
        shim_call(
            &self.socket(&rec.id),
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await?;
        self.publish("kill", &rec, &[("signal", sig.to_string())]);
        if sig == 9 {
            // As dockerd: a SIGKILL returns once the process has exited (a restart policy may
            // bring it back right after).
            wait_for(
                &e.watch(),
                |v| v.exits > exits_before || !v.active() || v.removed,
                Duration::from_secs(10),
            )
            .await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(&self, name: &str, on: bool) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let st = e.view().state();
        let ev = if on {
            crate::lifecycle::Event::Pause
        } else {
            crate::lifecycle::Event::Unpause
        };
        st.on(ev, &rec.id).map_err(|err| conflict(err.0))?;
        let req = if on { Request::Pause } else { Request::Resume };
        shim_call(&self.socket(&rec.id), &req).await?;
        let want = if on { State::Paused } else { State::Running };
        wait_for(&e.watch(), |v| v.state() == want, Duration::from_secs(5)).await;
        self.publish(if on { "pause" } else { "unpause" }, &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if !e.view().active() {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        shim_call(&self.socket(&rec.id), &Request::Resize { height, width }).await
    }

    /// `POST /containers/{id}/wait`: the exit code once `condition` holds.
    pub async fn wait(&self, name: &str, condition: &str) -> Result<i64, EngineError> {
        let e = self.find(name)?;
        let mut rx = e.watch();
        let start_exits = rx.borrow().exits;
        let cond: Box<dyn Fn(&View) -> bool + Send + Sync> = match condition {
            "" | "not-running" => Box::new(|v: &View| !v.active() || v.removed),
            "next-exit" => Box::new(move |v: &View| v.exits > start_exits || v.removed),
            "removed" => Box::new(|v: &View| v.removed),
            other => return Err(invalid(format!("invalid condition: {other:?}"))),
        };
        let v = rx
            .wait_for(|v| cond(v))
            .await
            .map_err(|_| unavailable("the container went away"))?
            .clone();
        Ok(v.shim.map_or(0, |s| s.exit_code as i64))
    }

    /// `DELETE /containers/{id}`.
    /// `DELETE /containers/{id}?v=`: with `volumes`, its anonymous volumes go too (those no
    /// other container uses), as with docker's `rm -v` and `run --rm`.
    pub async fn remove_with_volumes(
        &self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let mounts = self.find(name)?.record().mounts;
        self.remove(name, force).await?;
        if volumes {
            for m in mounts {
                let Some(v) = m.name.as_deref() else { continue };
                if self.volumes.get(v).is_ok_and(|x| x.anonymous) {
                    let users = self.volume_users(v);
                    if let Err(e) = self.volumes.remove(v, &users) {
                        tracing::debug!(volume = v, error = %e, "anonymous volume kept");
                    }
                }
            }
        }
        Ok(())
    }

    pub async fn remove(&self, name: &str, force: bool) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let st = e.view().state();
        if e.view().removed {
            return Err(not_found(format!("No such container: {name}")));
        }
        st.on(crate::lifecycle::Event::Remove { force }, &rec.name)
            .map_err(|err| match st {
                State::Running | State::Paused | State::Restarting => conflict(format!(
                    "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
                    st.api_name(),
                    rec.id
                )),
                _ => conflict(err.0),
            })?;
        if st == State::Restarting && !force {
            return Err(conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                rec.id
            )));
        }
        e.view.send_modify(|v| v.removing = true);
        let sock = self.socket(&rec.id);
        if e.view().active() || UnixStream::connect(&sock).await.is_ok() {
            let _ = shim_call(
                &sock,
                &Request::Stop {
                    signal: 9,
                    timeout: 0,
                },
            )
            .await;
            if !wait_for(
                &e.watch(),
                |v| v.shim.as_ref().is_none_or(|s| s.status == Status::Exited),
                Duration::from_secs(30),
            )
            .await
            {
                e.view.send_modify(|v| v.removing = false);
                return Err(unavailable(format!("could not kill container {}", rec.id)));
            }
            // Let the shim unmount and go.
            for _ in 0..2000 {
                if !sock.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let dir = self.dir(&rec.id);
        let _ = berth_shim::MountSpec::unmount(&dir.join("rootfs"));
        if let Some(a) = self.attachment(&rec.id) {
            let (net, id) = (self.network.clone(), rec.id.clone());
            tokio::task::spawn_blocking(move || net.detach(&id, &a))
                .await
                .map_err(|e| unavailable(format!("detach from the network: {e}")))??;
            let _ = std::fs::remove_file(dir.join("network.json"));
        }
        // Rename first, so that a crash half-way leaves no half-removed record behind.
        let trash = self
            .s
            .data_root
            .join("containers")
            .join(format!(".removing-{}", rec.id));
        std::fs::rename(&dir, &trash).map_err(io_err("remove the container"))?;
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&trash)).await;
        self.entries.lock().expect("entries").remove(&rec.id);
        // Its exec instances go with it (as with dockerd), or they would pile up for ever.
        self.execs
            .lock()
            .expect("execs")
            .retain(|_, x| x.container != rec.id);
        e.view.send_modify(|v| v.removed = true);
        self.publish("destroy", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name: &str, new: &str) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let new = crate::name::validate(new).map_err(|err| invalid(err.to_string()))?;
        let entries = self.entries.lock().expect("entries");
        if let Some(other) = entries.values().find(|x| x.record().name == new) {
            return Err(conflict(format!(
                "Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.record().id
            )));
        }
        let mut rec = e.rec.lock().expect("record lock");
        let old = rec.name.clone();
        rec.name = new;
        if let Err(err) = self.save_record(&rec) {
            rec.name = old;
            return Err(err);
        }
        let r = rec.clone();
        drop(rec);
        drop(entries);
        self.publish("rename", &r, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/{id}/attach`: a stream from the shim (Docker frames out, raw bytes
    /// in). Waits for `start` when the container is only created.
    pub async fn attach(
        &self,
        name: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<(bool, UnixStream), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let tty = rec.config.tty.unwrap_or(false);
        let req = Request::Attach {
            stdin,
            stdout,
            stderr,
        };
        match e.view().state() {
            State::Running | State::Paused | State::Restarting => {
                Ok((tty, shim_stream(&self.socket(&rec.id), &req).await?))
            }
            State::Created | State::Exited => {
                let (tx, rx) = oneshot::channel();
                e.attach_waiters
                    .lock()
                    .expect("waiters")
                    .push(AttachWaiter { req, tx });
                let s = rx
                    .await
                    .map_err(|_| conflict("the container was removed"))??;
                Ok((tty, s))
            }
            _ => Err(conflict(
                "You cannot attach to a stopped container, start it first",
            )),
        }
    }

    /// An attach of stdout and stderr to a created container, handed over by its start
    /// (the builder's RUN steps): registered now, so no output is missed.
    pub fn attach_at_start(
        &self,
        name: &str,
    ) -> Result<oneshot::Receiver<Result<UnixStream, EngineError>>, EngineError> {
        let e = self.find(name)?;
        if e.view().state() != State::Created {
            return Err(conflict("the container is not newly created"));
        }
        let (tx, rx) = oneshot::channel();
        e.attach_waiters
            .lock()
            .expect("waiters")
            .push(AttachWaiter {
                req: Request::Attach {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                },
                tx,
            });
        Ok(rx)
    }

    /// `GET /containers/{id}/logs`: entries on a channel (the sender ends when the log does,
    /// or, with `follow`, when the container stops).
    pub fn logs(
        &self,
        name: &str,
        o: LogOptions,
    ) -> Result<(bool, tokio::sync::mpsc::Receiver<LogLine>), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if crate::logconfig::driver(&rec.host_config) == "none" {
            return Err(crate::error::not_implemented(
                "configured logging driver does not support reading",
            ));
        }
        let path = self.dir(&rec.id).join(format!("{}-json.log", rec.id));
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let view = e.watch();
        std::thread::spawn(move || crate::logs::read(&path, o, view, tx));
        Ok((rec.config.tty.unwrap_or(false), rx))
    }

    /// `POST /containers/{id}/exec`: records what to run; returns the exec id.
    pub fn exec_create(&self, name: &str, body: &serde_json::Value) -> Result<String, EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if e.view().state() != State::Running {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        let strings = |k: &str| -> Vec<String> {
            body[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let cmd = strings("Cmd");
        if cmd.is_empty() {
            return Err(invalid("No exec command specified"));
        }
        let flag = |k: &str| body[k].as_bool().unwrap_or(false);
        let id = ContainerId::random().as_str().to_string();
        let x = ExecRecord {
            id: id.clone(),
            container: rec.id.clone(),
            key: self
                .next_exec_key
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            cmd,
            env: strings("Env"),
            user: body["User"].as_str().unwrap_or_default().to_string(),
            workdir: body["WorkingDir"].as_str().unwrap_or_default().to_string(),
            tty: flag("Tty"),
            attach_stdin: flag("AttachStdin"),
            attach_stdout: flag("AttachStdout"),
            attach_stderr: flag("AttachStderr"),
            privileged: flag("Privileged"),
            running: false,
            started: false,
            exit_code: None,
        };
        self.execs.lock().expect("execs").insert(id.clone(), x);
        self.publish("exec_create", &rec, &[("execID", id.clone())]);
        Ok(id)
    }

    /// An exec instance.
    pub fn exec_get(&self, id: &str) -> Result<ExecRecord, EngineError> {
        self.execs
            .lock()
            .expect("execs")
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(format!("No such exec instance: {id}")))
    }

    /// Records an exec process's exit code.
    pub fn exec_finished(&self, id: &str, code: i64) {
        if let Some(x) = self.execs.lock().expect("execs").get_mut(id) {
            x.running = false;
            x.exit_code = Some(code);
        }
    }

    /// `POST /exec/{id}/start`: runs the process. Returns its stream (Docker frames, then a
    /// frame of stream [`berth_shim::EXIT`] with the exit code), or with `detach` nothing (the
    /// exit code is collected in the background).
    /// What [`Containers::exec_start`] would refuse, checked without starting anything (the
    /// API answers these before it hijacks the connection).
    pub fn exec_can_start(&self, id: &str) -> Result<(), EngineError> {
        let container = {
            let mut execs = self.execs.lock().expect("execs");
            exec_to_start(&mut execs, id)?.container.clone()
        };
        let e = self.find(&container)?;
        if e.view().state() != State::Running {
            return Err(conflict(format!(
                "Container {} is not running",
                e.record().id
            )));
        }
        Ok(())
    }

    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        tty: Option<bool>,
    ) -> Result<Option<(bool, UnixStream)>, EngineError> {
        let x = {
            let mut execs = self.execs.lock().expect("execs");
            let x = exec_to_start(&mut execs, id)?;
            x.started = true;
            x.running = true;
            if let Some(t) = tty {
                x.tty = t;
            }
            x.clone()
        };
        let e = self.find(&x.container)?;
        let rec = e.record();
        if e.view().state() != State::Running {
            self.exec_finished(id, 126);
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        let dir = self.dir(&rec.id);
        let spec: serde_json::Value = std::fs::read(dir.join("bundle/config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .ok_or_else(|| unavailable("the container's bundle is unreadable"))?;
        let mut p = spec["process"].clone();
        p["args"] = serde_json::json!(x.cmd);
        p["terminal"] = serde_json::json!(x.tty);
        if let Some(o) = p.as_object_mut() {
            o.remove("consoleSize");
        }
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for v in &x.env {
            let k = v.split('=').next().unwrap_or(v);
            env.retain(|o| o.split('=').next() != Some(k));
            env.push(v.clone());
        }
        p["env"] = serde_json::json!(env);
        if !x.workdir.is_empty() {
            p["cwd"] = serde_json::json!(x.workdir);
        }
        if !x.user.is_empty() {
            let layers = self.images.layer_dirs(&rec.image, &dir.join("upper"))?;
            let (uid, gid, extra) = crate::spec::resolve_user(&x.user, &layers)?;
            p["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": extra});
        }
        if x.privileged {
            let all = crate::spec::available_caps();
            p["capabilities"] =
                serde_json::json!({"bounding": all, "effective": all, "permitted": all});
        }
        let req = Request::Exec {
            key: x.key,
            process: p,
            tty: x.tty,
            stdin: x.attach_stdin && !detach,
        };
        let stream = match shim_stream(&self.socket(&rec.id), &req).await {
            Ok(s) => s,
            Err(err) => {
                // As dockerd: 127 for a program not found, 126 for anything else that kept
                // it from running (the exit code a hijacked client reads back).
                let code = match start_exit_code(&err.message) {
                    127 => 127,
                    _ => 126,
                };
                self.exec_finished(id, code);
                let m = err.message;
                return Err(if start_exit_code(&m) != 128 {
                    invalid(m)
                } else {
                    unavailable(m)
                });
            }
        };
        self.publish("exec_start", &rec, &[("execID", id.to_string())]);
        if !detach {
            return Ok(Some((x.tty, stream)));
        }
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let code = drain_exit(stream).await;
            me.exec_finished(&id, code);
        });
        Ok(None)
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let x = self.exec_get(id)?;
        if !x.running {
            return Err(conflict(format!("Exec {id} is not running")));
        }
        shim_call(
            &self.socket(&x.container),
            &Request::ExecResize {
                key: x.key,
                height,
                width,
            },
        )
        .await
    }

    /// The shim's statistics for a running container: (cgroup stats, host pids).
    async fn shim_stats(
        &self,
        name: &str,
    ) -> Result<(Record, serde_json::Value, Vec<i32>), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if !matches!(e.view().state(), State::Running | State::Paused) {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        let d = shim_data(&self.socket(&rec.id), &Request::Stats).await?;
        let pids = d["pids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_i64().map(|p| p as i32))
                    .collect()
            })
            .unwrap_or_default();
        Ok((rec, d["stats"].clone(), pids))
    }

    /// `GET /containers/{id}/top`: `ps -ef`'s columns for the container's processes.
    pub async fn top(&self, name: &str) -> Result<(Vec<String>, Vec<Vec<String>>), EngineError> {
        let (_, _, pids) = self.shim_stats(name).await?;
        let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];
        let mut rows = Vec::new();
        for pid in pids {
            if let Some(r) = crate::procs::ps_row(pid) {
                rows.push(r);
            }
        }
        Ok((titles.iter().map(|t| t.to_string()).collect(), rows))
    }

    /// One sample of `GET /containers/{id}/stats` in Docker's shape (without `precpu_stats`).
    pub async fn stats_sample(&self, name: &str) -> Result<serde_json::Value, EngineError> {
        let (rec, st, pids) = self.shim_stats(name).await?;
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limit = st["memory"]["limit"].as_u64().unwrap_or(u64::MAX);
        let host_mem = crate::procs::mem_total();
        Ok(serde_json::json!({
            "read": berth_shim::rfc3339(SystemTime::now()),
            "preread": "0001-01-01T00:00:00Z",
            "name": format!("/{}", rec.name),
            "id": rec.id,
            "num_procs": 0,
            "pids_stats": {"current": st["pids"]["current"].as_u64().unwrap_or(pids.len() as u64), "limit": st["pids"]["limit"]},
            "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null,
                "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null},
            "storage_stats": {},
            "cpu_stats": {
                "cpu_usage": {
                    "total_usage": st["cpu"]["usage_total"],
                    "usage_in_kernelmode": st["cpu"]["usage_kernel"],
                    "usage_in_usermode": st["cpu"]["usage_user"],
                },
                "system_cpu_usage": crate::procs::system_cpu_ns(),
                "online_cpus": ncpu,
                "throttling_data": {"periods": 0, "throttled_periods": st["cpu"]["throttled_periods"], "throttled_time": 0},
            },
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {
                "usage": st["memory"]["usage"],
                "max_usage": st["memory"]["max_usage"],
                "failcnt": st["memory"]["failcnt"],
                "limit": if limit == u64::MAX || limit > host_mem { host_mem } else { limit },
                "stats": {},
            },
        }))
    }

    /// `GET /containers/{id}/changes`: paths changed in the container's writable layer,
    /// as (path, kind) with Docker's kinds: 0 modified, 1 added, 2 deleted.
    pub fn changes(&self, name: &str) -> Result<Vec<(String, u8)>, EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let upper = self.dir(&rec.id).join("upper");
        let layers = self.images.layer_dirs(&rec.image, &upper)?;
        let lowers = &layers[1..];
        let mut out = Vec::new();
        fn walk(dir: &Path, rel: &str, lowers: &[PathBuf], out: &mut Vec<(String, u8)>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            let mut names: Vec<_> = rd.flatten().collect();
            names.sort_by_key(|e| e.file_name());
            for ent in names {
                let name = ent.file_name().to_string_lossy().into_owned();
                let path = format!("{rel}/{name}");
                let Ok(md) = ent.path().symlink_metadata() else {
                    continue;
                };
                if md.is_file()
                    && md.len() == 0
                    && MOUNT_POINTS.contains(&path.trim_start_matches('/'))
                {
                    continue;
                }
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                // An overlay whiteout: a 0/0 character device.
                if md.file_type().is_char_device() && md.rdev() == 0 {
                    out.push((path, 2));
                    continue;
                }
                let in_lower = lowers.iter().any(|l| {
                    l.join(path.trim_start_matches('/'))
                        .symlink_metadata()
                        .is_ok()
                });
                out.push((path.clone(), if in_lower { 0 } else { 1 }));
                if md.is_dir() {
                    walk(&ent.path(), &path, lowers, out);
                }
            }
        }
        walk(&upper, "", lowers, &mut out);
        Ok(out)
    }

    /// Runs `f` on the container's root file system: the mounted one of a running container
    /// (frozen meanwhile, so that its processes cannot change paths under `f`), or one mounted
    /// for the occasion. Without its volumes and binds (what `export` and `commit` see).
    pub async fn with_root<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        freeze: bool,
        f: impl FnOnce(&Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        self.root_view(name, freeze, f).await
    }

    /// Runs `f` on the container's file system as its processes see it, volumes and binds
    /// included (what `cp` sees). A path under one of the container's bind or volume mounts
    /// is looked up in that mount's host directory (the deepest mount holding the path), with
    /// the same in-root resolution: a symlink in a volume resolves inside the volume. Other
    /// paths are looked up in the container's root. A running container is frozen meanwhile.
    pub async fn with_view<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
        f: impl FnOnce(&Path, &Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let rec = self.find(name)?.record();
        let clean: PathBuf = Path::new("/").join(path).components().collect();
        let mut best: Option<(usize, PathBuf, PathBuf)> = None;
        for m in self.oci_mounts(&rec)? {
            if m["type"] != "bind" {
                continue;
            }
            let (Some(src), Some(dst)) = (m["source"].as_str(), m["destination"].as_str()) else {
                continue;
            };
            if let Ok(rest) = clean.strip_prefix(dst) {
                let depth = Path::new(dst).components().count();
                if best.as_ref().is_none_or(|(d, _, _)| depth > *d) {
                    best = Some((depth, PathBuf::from(src), Path::new("/").join(rest)));
                }
            }
        }
        // The generated /etc files are bind mounts of files in the container's directory:
        // the container sees those, not the image's placeholders.
        if best.is_none() {
            let dir = self.dir(&rec.id);
            for f in MOUNT_POINTS {
                let file = Path::new(f).file_name().expect("a file name");
                if clean == Path::new("/").join(f) && dir.join(file).is_file() {
                    best = Some((2, dir.clone(), Path::new("/").join(file)));
                }
            }
        }
        // `dir/.` (docker's "the contents of") follows a link that `dir` is: keep the dot.
        let dot = path.as_os_str().as_encoded_bytes().ends_with(b"/.");
        if let Some((_, src, rest)) = best {
            let rest = if dot { rest.join(".") } else { rest };
            // Frozen too: the container must not swap a directory of the volume for a
            // symlink while it is read.
            return self.root_view(name, true, move |_| f(&src, &rest)).await;
        }
        let p = if dot { clean.join(".") } else { clean };
        self.root_view(name, true, move |root| f(root, &p)).await
    }

    async fn root_view<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        freeze: bool,
        f: impl FnOnce(&Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let dir = self.dir(&rec.id);
        let state = e.view().state();
        if matches!(state, State::Running | State::Paused | State::Restarting) {
            let sock = self.socket(&rec.id);
            let thaw = freeze
                && state == State::Running
                && shim_call(&sock, &Request::Pause).await.is_ok();
            let root = dir.join("rootfs");
            let r = tokio::task::spawn_blocking(move || f(&root))
                .await
                .map_err(|err| unavailable(err.to_string()));
            if thaw {
                let _ = shim_call(&sock, &Request::Resume).await;
            }
            return r?;
        }
        self.with_stopped_root(&rec, f).await
    }

    /// Runs `f` on the root of a container that does not run: its image's layers and its
    /// writable layer mounted at a private place for the duration.
    async fn with_stopped_root<T: Send + 'static>(
        &self,
        rec: &Record,
        f: impl FnOnce(&Path) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let dir = self.dir(&rec.id);
        let target = self.s.exec_root.join("mnt").join(&rec.id[..24]);
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&target, &upper, &work] {
            std::fs::create_dir_all(d).map_err(io_err("mount the container's root"))?;
        }
        let mounts = self
            .images
            .rootfs_mounts(&rec.image, &upper, &work, &target)?;
        tokio::task::spawn_blocking(move || {
            let mut done = Vec::new();
            let mut res = Ok(());
            for m in mounts.into_iter().map(mount_spec) {
                if let Err(err) = m.mount() {
                    res = Err(unavailable(format!("mount the container's root: {err}")));
                    break;
                }
                done.push(m.target.clone());
            }
            let out = res.and_then(|_| f(&target));
            for t in done.iter().rev() {
                let _ = berth_shim::MountSpec::unmount(t);
            }
            let _ = std::fs::remove_dir(&target);
            out
        })
        .await
        .map_err(|err| unavailable(err.to_string()))?
    }

    /// `docker export`: the container's file system as a tar at `out`.
    pub async fn export(self: &Arc<Self>, name: &str, out: PathBuf) -> Result<(), EngineError> {
        self.with_root(name, false, move |root| {
            let f = std::fs::File::create(&out).map_err(io_err("export"))?;
            Ok(berth_image::export::export(
                root,
                std::io::BufWriter::new(f),
            )?)
        })
        .await
    }

    /// `POST /commit`: a new image from the container's image and its writable layer.
    pub fn commit(
        &self,
        name: &str,
        repo_tag: Option<&str>,
        comment: &str,
        author: &str,
        changes: &[String],
    ) -> Result<String, EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let c = &rec.config;
        let run = serde_json::json!({
            "User": c.user, "Env": c.env, "Entrypoint": c.entrypoint, "Cmd": c.cmd,
            "WorkingDir": c.working_dir, "Labels": c.labels, "StopSignal": c.stop_signal,
            "ExposedPorts": c.exposed_ports.as_ref().map(|p| p.iter().map(|k| (k.clone(), serde_json::json!({}))).collect::<serde_json::Map<_, _>>()),
        });
        let id = self.images.commit(
            &rec.image,
            &self.dir(&rec.id).join("upper"),
            run,
            changes,
            &berth_image::store::CommitNote { comment, author },
            repo_tag,
        )?;
        self.publish("commit", &rec, &[]);
        Ok(id)
    }

    /// `POST /containers/{id}/update`: new resource limits (and restart policy), applied to
    /// the running container's cgroup and kept in its record for later starts.
    pub async fn update(&self, name: &str, body: &serde_json::Value) -> Result<(), EngineError> {
        let e = self.find(name)?;
        let _op = e.op.lock().await;
        let mut rec = e.record();
        let mut hc =
            serde_json::to_value(&rec.host_config).map_err(|err| invalid(err.to_string()))?;
        const FIELDS: &[&str] = &[
            "CpuShares",
            "Memory",
            "MemorySwap",
            "MemoryReservation",
            "NanoCpus",
            "CpuQuota",
            "CpuPeriod",
            "CpusetCpus",
            "CpusetMems",
            "PidsLimit",
            "RestartPolicy",
        ];
        for f in FIELDS {
            if let Some(v) = body.get(*f).filter(|v| !v.is_null()) {
                hc[*f] = v.clone();
            }
        }
        // NanoCpus and a CFS quota exclude each other: the newer one wins.
        if body
            .get("NanoCpus")
            .is_some_and(|v| v.as_i64().unwrap_or(0) > 0)
        {
            hc["CpuQuota"] = serde_json::json!(0);
            hc["CpuPeriod"] = serde_json::json!(0);
        }
        let new: HostConfig = serde_json::from_value(hc).map_err(|err| invalid(err.to_string()))?;
        let resources = crate::spec::resources(&new, new.privileged.unwrap_or(false))?;
        let restart = restart_policy(&new)?;
        if restart.name != "no" && auto_remove(&rec) {
            return Err(invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        if e.view().active() {
            shim_call(
                &self.socket(&rec.id),
                &Request::Update {
                    resources,
                    restart: body.get("RestartPolicy").map(|_| restart),
                },
            )
            .await?;
        }
        rec.host_config = new;
        self.save_record(&rec)?;
        *e.rec.lock().expect("record lock") = rec.clone();
        self.publish("update", &rec, &[]);
        Ok(())
    }

    /// `docker container prune`: removes every stopped container (created or exited) whose
    /// labels match `labels` (`key` or `key=value`); returns their ids and the bytes freed.
    pub async fn prune(&self, labels: &[String]) -> Result<(Vec<String>, u64), EngineError> {
        let mut gone = Vec::new();
        let mut freed = 0;
        for e in self.all() {
            let rec = e.record();
            if !matches!(
                e.view().state(),
                State::Created | State::Exited | State::Dead
            ) {
                continue;
            }
            let l = rec.config.labels.clone().unwrap_or_default();
            let matches = labels.iter().all(|f| match f.split_once('=') {
                Some((k, v)) => l.get(k).is_some_and(|x| x == v),
                None => l.contains_key(f),
            });
            if !matches {
                continue;
            }
            let size = self.size_rw(&rec.id);
            if self.remove(&rec.id, false).await.is_ok() {
                gone.push(rec.id);
                freed += size;
            }
        }
        Ok((gone, freed))
    }

    /// How big a container's writable layer is (bytes).
    pub fn size_rw(&self, id: &str) -> u64 {
        dir_size(&self.dir(id).join("upper"))
    }

    /// The paths inspect shows.
    pub fn paths(&self, id: &str) -> (PathBuf, PathBuf) {
        let d = self.dir(id);
        (d.clone(), d.join(format!("{id}-json.log")))
    }

    /// The cgroup hierarchies containers are placed in.
    pub fn cgroup_layout(&self) -> berth_shim::CgroupLayout {
        self.s.cgroup_layout
    }

    /// Counts of (running, paused, stopped) containers.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in self.entries.lock().expect("entries").values() {
            match e.view().state() {
                State::Running | State::Restarting => c.0 += 1,
                State::Paused => c.1 += 1,
                _ => c.2 += 1,
            }
        }
        c
    }
}

/// The exec instance `id`, refused once it has run.
fn exec_to_start<'a>(
    execs: &'a mut HashMap<String, ExecRecord>,
    id: &str,
) -> Result<&'a mut ExecRecord, EngineError> {
    let x = execs
        .get_mut(id)
        .ok_or_else(|| not_found(format!("No such exec instance: {id}")))?;
    if x.started {
        return Err(conflict(format!(
            "Error: Exec command {id} has already run"
        )));
    }
    Ok(x)
}

fn new_entry(rec: Record, shim: Option<ShimState>) -> Entry {
    Entry {
        rec: std::sync::Mutex::new(rec),
        view: watch::channel(View {
            shim,
            exits: 0,
            removing: false,
            removed: false,
        })
        .0,
        op: tokio::sync::Mutex::new(()),
        generation: std::sync::atomic::AtomicU64::new(0),
        attach_waiters: std::sync::Mutex::new(Vec::new()),
    }
}

fn failed_state(msg: &str) -> ShimState {
    let now = berth_shim::rfc3339(SystemTime::now());
    ShimState {
        status: Status::Exited,
        pid: 0,
        shim_pid: 0,
        exit_code: start_exit_code(msg),
        started_at: String::new(),
        finished_at: now,
        restart_count: 0,
        exits: 0,
        oom_killed: false,
        error: msg.to_string(),
        manual_stop: false,
    }
}

/// The image store's mount as the shim (and [`berth_shim::MountSpec::mount`]) takes it.
fn mount_spec(m: berth_image::store::Mount) -> berth_shim::MountSpec {
    berth_shim::MountSpec {
        fstype: m.fstype,
        source: m.source,
        target: m.target,
        options: m.options,
    }
}

fn auto_remove(rec: &Record) -> bool {
    rec.host_config.auto_remove.unwrap_or(false)
}

pub(crate) fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Waits until `f` holds for the view, at most `limit`; whether it held.
async fn wait_for(rx: &watch::Receiver<View>, f: impl Fn(&View) -> bool, limit: Duration) -> bool {
    let mut rx = rx.clone();
    if limit == Duration::MAX {
        return rx.wait_for(|v| f(v)).await.is_ok();
    }
    let res = tokio::time::timeout(limit, rx.wait_for(|v| f(v))).await;
    matches!(res, Ok(Ok(_)))
}

/// Reads an exec stream to its end; the exit code from its last frame (-1 if none).
async fn drain_exit(mut s: UnixStream) -> i64 {
    use tokio::io::AsyncReadExt;
    let mut code = -1;
    let mut hdr = [0u8; 8];
    while s.read_exact(&mut hdr).await.is_ok() {
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        let mut data = vec![0u8; len];
        if s.read_exact(&mut data).await.is_err() {
            break;
        }
        if hdr[0] == berth_shim::EXIT {
            code = String::from_utf8_lossy(&data).trim().parse().unwrap_or(-1);
        }
    }
    code
}

/// One request, one reply with data.
async fn shim_data(sock: &Path, req: &Request) -> Result<serde_json::Value, EngineError> {
    let fut = async {
        let mut s = UnixStream::connect(sock).await?;
        let mut line = serde_json::to_vec(req).expect("request");
        line.push(b'\n');
        s.write_all(&line).await?;
        let mut r = String::new();
        BufReader::new(s).read_line(&mut r).await?;
        serde_json::from_str::<Reply>(&r).map_err(std::io::Error::other)
    };
    let reply = tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .map_err(|_| unavailable("the container's shim did not answer"))?
        .map_err(|e| unavailable(format!("talk to the container's shim: {e}")))?;
    if reply.error.is_empty() {
        Ok(reply.data.unwrap_or_default())
    } else {
        Err(conflict(reply.error))
    }
}

/// One request, one reply.
async fn shim_call(sock: &Path, req: &Request) -> Result<(), EngineError> {
    shim_data(sock, req).await.map(|_| ())
}

/// A request that turns the connection into a stream.
async fn shim_stream(sock: &Path, req: &Request) -> Result<UnixStream, EngineError> {
    let mut s = UnixStream::connect(sock)
        .await
        .map_err(|e| unavailable(format!("connect to the container's shim: {e}")))?;
    let mut line = serde_json::to_vec(req).expect("request");
    line.push(b'\n');
    s.write_all(&line)
        .await
        .map_err(|e| unavailable(format!("talk to the container's shim: {e}")))?;
    // Read the reply line byte by byte so that no stream data is swallowed by a buffer.
    let mut reply = Vec::new();
    loop {
        let mut b = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut b)
            .await
            .map_err(|e| unavailable(format!("talk to the container's shim: {e}")))?;
        if n == 0 || b[0] == b'\n' {
            break;
        }
        reply.push(b[0]);
    }
    let r: Reply =
        serde_json::from_slice(&reply).map_err(|e| unavailable(format!("shim reply: {e}")))?;
    if !r.error.is_empty() {
        return Err(conflict(r.error));
    }
    Ok(s)
}

/// Docker's exit code for a start failure: 127 for a missing program, 126 when it cannot be
/// run.
pub fn start_exit_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("No such file or directory")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("Permission denied") {
        126
    } else {
        128
    }
}

fn start_error(msg: &str) -> EngineError {
    let m =
        format!("failed to create task for container: OCI runtime create failed: {msg}: unknown");
    match start_exit_code(msg) {
        127 | 126 => invalid(m),
        _ => unavailable(m),
    }
}

/// The restart policy of a host config, checked.
fn restart_policy(hc: &HostConfig) -> Result<berth_shim::RestartPolicy, EngineError> {
    let p = hc.restart_policy.clone().unwrap_or_default();
    let name = p.name.map(|n| n.to_string()).unwrap_or_default();
    let max = p.maximum_retry_count.unwrap_or(0);
    let name = match name.as_str() {
        "" | "no" => "no",
        "always" | "unless-stopped" | "on-failure" => name.as_str(),
        other => return Err(invalid(format!("invalid restart policy '{other}'"))),
    };
    if max != 0 && name != "on-failure" {
        return Err(invalid(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ));
    }
    if max < 0 {
        return Err(invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        ));
    }
    Ok(berth_shim::RestartPolicy {
        name: name.to_string(),
        max_retries: max as u32,
    })
}

/// `SIGTERM`, `TERM`, `15` → 15, from the runtime's signal table; an unknown signal is the
/// user's mistake.
pub fn parse_signal(s: &str) -> Result<i32, EngineError> {
    berth_shim::signal::parse(s).map_err(|e| invalid(e.to_string()))
}

/// `hostname`, `hosts` and `resolv.conf` for the container. On a user network the
/// nameserver is that network's embedded DNS server (its gateway), which forwards what it does
/// not know to the container's `--dns` servers or the host's.
fn write_etc_files(
    dir: &Path,
    hostname: &str,
    hc: &HostConfig,
    att: Option<&crate::network::Attachment>,
    daemon_dns: &[std::net::IpAddr],
) -> Result<(), EngineError> {
    let ip = att.and_then(|a| a.primary()).map(|e| e.ip);
    let w = |name: &str, data: String| -> Result<(), EngineError> {
        std::fs::write(dir.join(name), data).map_err(io_err("write the container's /etc files"))
    };
    w("hostname", format!("{hostname}\n"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in hc.extra_hosts.iter().flatten() {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    if let Some(ip) = ip {
        hosts.push_str(&format!("{ip}\t{hostname}\n"));
    }
    w("hosts", hosts)?;
    // Docker's resolv.conf: the nameservers (the embedded DNS on a user network; else
    // `--dns`, else berthd's `dns`, else the host's own minus loopback resolvers, which the
    // container cannot reach), then the host's search and options lines unless `--dns-search`
    // or `--dns-option` replace them.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let embedded = att.and_then(|a| a.dns_server());
    let mut resolv = String::new();
    if let Some(gw) = embedded {
        resolv.push_str(&format!("nameserver {gw}\n"));
    } else if hc.dns.as_ref().is_some_and(|d| !d.is_empty()) {
        for d in hc.dns.iter().flatten() {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
    } else if !daemon_dns.is_empty() {
        for d in daemon_dns {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
    } else {
        for l in host.lines().filter(|l| l.starts_with("nameserver")) {
            let lo = l.contains("127.") || l.contains("::1");
            if !lo {
                resolv.push_str(l);
                resolv.push('\n');
            }
        }
    }
    let search: Vec<&str> = hc.dns_search.iter().flatten().map(|s| s.as_str()).collect();
    if !search.is_empty() {
        resolv.push_str(&format!("search {}\n", search.join(" ")));
    } else {
        for l in host
            .lines()
            .filter(|l| l.starts_with("search") || l.starts_with("domain"))
        {
            resolv.push_str(l);
            resolv.push('\n');
        }
    }
    let opts: Vec<&str> = hc
        .dns_options
        .iter()
        .flatten()
        .map(|s| s.as_str())
        .collect();
    if !opts.is_empty() {
        resolv.push_str(&format!("options {}\n", opts.join(" ")));
    } else if embedded.is_some() {
        resolv.push_str("options ndots:0\n");
    } else {
        for l in host.lines().filter(|l| l.starts_with("options")) {
            resolv.push_str(l);
            resolv.push('\n');
        }
    }
    w("resolv.conf", resolv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), 36);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn start_exit_codes() {
        assert_eq!(
            start_exit_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_exit_code("exec /x: permission denied"), 126);
        assert_eq!(start_exit_code("cgroup trouble"), 128);
    }
}
