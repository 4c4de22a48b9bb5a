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
//!
//! This module holds the records, the live views and the service's lookups; each kind of
//! operation has a room of its own, all as `impl Containers` blocks:
//! - `create`: a record from a create request, mounts and networks resolved.
//! - `start`: bundle, shim and the monitor that follows it until the container is done.
//! - `ops`: stop, restart, kill, pause, resize, wait, remove, rename, update, prune.
//! - `networking`: attach at start, connect/disconnect, release, and the `/etc` files.
//! - `exec`: exec instances.
//! - `streams`: attach and logs.
//! - `observe`: top, stats and diff.
//! - `rootfs`: archive copies, export and commit on the container's root file system.
//! - `restore`: re-adopting shims, and the consistency check.
//! - `shim`: the socket protocol to a container's shim.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::container::{
    ContainerConfig, CreateRequest, EndpointSettings, HealthConfig, HostConfig, NetworkingConfig,
};
use berth_shim::{Reply, Request, ShimConfig, ShimState, Status};
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
use crate::lifecycle::{State, StateError};
pub use crate::logs::{LogLine, LogOptions};
use crate::model::{ExecId, ExecSpec, ResourceUpdate, RestartPolicy, StatsSample, WaitCondition};

mod create;
mod exec;
pub use exec::Captured;
mod health;
mod joins;
mod links;
mod networking;
mod observe;
mod ops;
mod restore;
mod rootfs;
mod shim;
mod spare;
mod start;
mod streams;
pub(crate) mod subpath;

pub use links::parse_link;
use networking::write_etc_files;
pub use ops::parse_signal;
use shim::{drain_exit, old_shim_gone, shim_call, shim_data, shim_gone, shim_stream};
use start::{mount_spec, restart_policy};

pub use crate::model::container::MOUNT_POINTS;

/// Version of the record's on-disk format.
const SCHEMA: u32 = 1;

/// What berth keeps about a container (`config.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub id: ContainerId,
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

/// The live view of a container. It changes only through [`Entry::transition`].
#[derive(Debug, Clone)]
pub struct View {
    /// The shim's last reported state (None: never started).
    pub(crate) shim: Option<ShimState>,
    /// Exits seen since berthd started watching (for `wait?condition=next-exit`).
    pub exits: u64,
    pub removing: bool,
    pub removed: bool,
}

/// A change of a container's view.
#[derive(Debug)]
pub(crate) enum Change {
    /// Its shim reported a process state (or the engine recorded one for a shim that could
    /// not report), with `exits` process exits since the last report.
    Reported { state: Box<ShimState>, exits: u64 },
    /// Removal began: the process is being killed and its files go next.
    Removing,
    /// Removal was given up (the process would not die).
    RemovalAborted,
    /// Removal finished.
    Removed,
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

    /// The state with its data, and the container's process history, as the API shows them.
    pub fn status(&self) -> crate::lifecycle::Status {
        use crate::lifecycle::Phase;
        let s = self.shim.as_ref();
        let exit_code = s.map_or(0, |s| s.exit_code);
        let phase = match self.state() {
            State::Created => Phase::Created,
            State::Running => Phase::Running {
                pid: s.map_or(0, |s| s.pid),
            },
            State::Paused => Phase::Paused {
                pid: s.map_or(0, |s| s.pid),
            },
            State::Restarting => Phase::Restarting { exit_code },
            State::Exited => Phase::Exited {
                exit_code,
                error: s.map(|s| s.error.clone()).unwrap_or_default(),
            },
            State::Removing => Phase::Removing,
            State::Dead => Phase::Dead,
        };
        crate::lifecycle::Status {
            phase,
            exit_code,
            error: s.map(|s| s.error.clone()).unwrap_or_default(),
            started_at: s.map(|s| s.started_at.clone()).unwrap_or_default(),
            finished_at: s.map(|s| s.finished_at.clone()).unwrap_or_default(),
            restart_count: s.map_or(0, |s| s.restart_count),
            oom_killed: s.is_some_and(|s| s.oom_killed),
        }
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
    /// What its health check has shown since it was last started (none without a check).
    health: std::sync::Mutex<Option<crate::model::health::Health>>,
    /// Cleared when a stop begins: probe results are no longer recorded.
    probing: std::sync::atomic::AtomicBool,
}

impl Entry {
    /// The one place a container's view changes. The lifecycle decides: the engine's own
    /// moves (the start of a removal) are refused with Docker's words when the lifecycle has
    /// no path for them; a shim's report is a fact about a process and is applied, but a move
    /// the lifecycle does not know is logged as berth's bug. Watchers are told of every change.
    pub(crate) fn transition(&self, change: Change) -> Result<State, StateError> {
        let name = self.rec.lock().expect("record lock").name.clone();
        let mut out = Ok(State::Created);
        let mut left_running = false;
        self.view.send_if_modified(|v| {
            let before = v.state();
            let mut next = v.clone();
            let reported = matches!(change, Change::Reported { .. });
            match &change {
                Change::Reported { state, exits } => {
                    next.shim = Some((**state).clone());
                    next.exits += exits;
                }
                Change::Removing => next.removing = true,
                Change::RemovalAborted => next.removing = false,
                Change::Removed => next.removed = true,
            }
            let after = next.state();
            if let Err(e) = before.can_move_to(after, &name) {
                if !reported {
                    out = Err(e);
                    return false;
                }
                tracing::error!(container = %name, error = %e.0, "a reported state the lifecycle does not allow");
            }
            *v = next;
            out = Ok(after);
            left_running = matches!(before, State::Running | State::Paused)
                && !matches!(after, State::Running | State::Paused);
            true
        });
        if left_running {
            if let Some(h) = self.health.lock().expect("health lock").as_mut() {
                h.stopped();
            }
        }
        out
    }

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
    /// Who makes containers' cgroups: berth itself, or systemd (as scopes).
    pub cgroup_driver: crate::cgroups::CgroupDriver,
}

/// The container service.
#[derive(Debug)]
pub struct Containers {
    s: Settings,
    pub network: Arc<crate::network::NetworkService>,
    pub volumes: Arc<crate::volumes::Volumes>,
    images: Arc<ImageService>,
    pub events: Arc<Events>,
    entries: std::sync::Mutex<BTreeMap<ContainerId, Arc<Entry>>>,
    execs: std::sync::Mutex<HashMap<ExecId, ExecRecord>>,
    next_exec_key: std::sync::atomic::AtomicU64,
    /// The `.removing-<id>` directories this berthd is deleting in the background (a
    /// removal answers once the directory is renamed; `system check` leaves these alone).
    trash: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The shim started ahead of the next start (see `spare.rs`), and whether one is being
    /// made.
    spare: std::sync::Mutex<Option<spare::Spare>>,
    refilling: std::sync::atomic::AtomicBool,
}

/// An exec instance (`docker exec`): what to run, and how it went.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: ExecId,
    pub container: ContainerId,
    /// The shim's name for the process's streams.
    pub key: u64,
    pub spec: ExecSpec,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
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
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_prefix(".removing-") {
                // A removal cut short by a crash: finish it (its root and subpath mounts may
                // still be there: they go after the answer, once the shim is gone).
                let _ = berth_shim::MountSpec::unmount(&e.path().join("rootfs"));
                subpath::release(&s.exec_root, id);
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
            trash: Arc::default(),
            spare: std::sync::Mutex::new(None),
            refilling: std::sync::atomic::AtomicBool::new(false),
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
        match crate::id::find_by_prefix(entries.keys(), name_or_id) {
            Ok(id) => Ok(entries[id].clone()),
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
        self.events
            .publish(crate::events::ObjectType::Container, action, &rec.id, attrs);
    }

    fn save_record(&self, rec: &Record) -> Result<(), EngineError> {
        Ok(berth_durable::save(
            &self.dir(&rec.id).join("config.json"),
            rec,
        )?)
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

    /// Who makes the containers' cgroups.
    pub fn cgroup_driver(&self) -> crate::cgroups::CgroupDriver {
        self.s.cgroup_driver
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
        health: std::sync::Mutex::new(None),
        probing: std::sync::atomic::AtomicBool::new(false),
    }
}

fn failed_state(err: &EngineError) -> ShimState {
    let now = berth_shim::rfc3339(SystemTime::now());
    ShimState {
        status: Status::Exited,
        pid: 0,
        shim_pid: 0,
        exit_code: err.start_exit_code(),
        started_at: String::new(),
        finished_at: now,
        restart_count: 0,
        exits: 0,
        oom_killed: false,
        error: err.message.clone(),
        manual_stop: false,
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
    fn start_exit_codes_come_from_the_runtimes_errno() {
        use crate::error::start_exit_code;
        assert_eq!(start_exit_code(Some(libc::ENOENT)), 127);
        assert_eq!(start_exit_code(Some(libc::EACCES)), 126);
        assert_eq!(start_exit_code(Some(libc::EPERM)), 128);
        assert_eq!(start_exit_code(None), 128);
        let e = conflict("exec: \"nope\": executable file not found in $PATH");
        assert_eq!(
            e.start_exit_code(),
            128,
            "the message alone decides nothing"
        );
        assert_eq!(e.with_errno(Some(libc::ENOENT)).start_exit_code(), 127);
    }
}
