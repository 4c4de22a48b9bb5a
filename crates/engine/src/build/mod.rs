//! Dockerfile builds: the stages of a parsed Dockerfile run as berth containers and image
//! commits, with a content-keyed cache.
//!
//! - The stages needed for the target (its base and `COPY --from`/`RUN --mount from=`
//!   closure) run; others are skipped. Each needed stage runs as its own task once the
//!   stages it needs are done, so independent stages build in parallel. Their output is
//!   printed stage by stage, in file order.
//! - Every step yields an image, as docker's classic builder does: `RUN` commits the
//!   writable layer of a container run from the previous step's image; `COPY`/`ADD` write
//!   into an overlay of the previous image and commit its upper directory; metadata steps
//!   commit a config with an `empty_layer` history entry.
//! - The cache maps a step's key — sha256 of the parent image id, the step as it will be
//!   recorded (`created_by`), the config it runs with and, for `COPY`/`ADD`, the hash of the
//!   copied files' paths, modes, owners and contents (never times) — to the image the step
//!   made. It lives in `<data-root>/build/cache.json`; an entry whose image is gone is a miss.
//!
//! Rooms: `stages` (a build and its stages as tasks), `step` (one step; metadata
//! instructions), `run` (RUN), `copy` (COPY/ADD), `cache` (keys and the cache file),
//! `context` (build contexts kept between builds).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::container::{ContainerConfig, CreateRequest, HostConfig};
use berth_build::dockerfile::{self, Instruction};
use berth_build::ignore::Ignore;
use berth_build::shell::{self, Env};
use berth_build::stage_named;
use berth_build::steps::{self, Command, Step};
use berth_build::words::{
    duration_ns, expand_json_word, expose_keys, instruction_text, shell_quote,
};
use berth_build::Stage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::buildfs;
use crate::containers::Containers;
use crate::error::{invalid, unavailable, EngineError};
use crate::images::ImageService;

mod cache;
mod context;
mod stages;
mod step;

use context::ScratchDir;
mod copy;
mod run;

use copy::{dir_hash, resolved};

/// What `POST /build` asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// Remove intermediate containers after a successful step (docker's `--rm`, default on).
    pub remove: bool,
    /// Remove them even after a failed one.
    pub force_remove: bool,
    /// `--network` for every RUN.
    pub network: Option<String>,
    /// `--add-host` for every RUN (`host:ip`).
    pub extra_hosts: Vec<String>,
    /// Registry credentials by host (`X-Registry-Config`), for pulling bases.
    pub auth: HashMap<String, berth_registry::Credentials>,
    /// `--cache-from`: when given, only these images and the steps they were built from
    /// may be reused (names that are no image are skipped, as dockerd skips them).
    pub cache_from: Vec<String>,
}

/// A message of the build's output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text for the user (the classic builder's `stream`).
    Stream(String),
    /// The built image's id (the classic builder's `aux.ID`).
    Aux(String),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct CacheFile {
    /// Step key → image id.
    entries: BTreeMap<String, String>,
    /// Image id → when it was last used (Unix seconds).
    #[serde(default)]
    used: BTreeMap<String, i64>,
    /// Final images of builds (never hidden from `images`).
    #[serde(default)]
    results: BTreeSet<String>,
    /// A step's image → the image the step started from (the classic builder's parent
    /// chain, which `--cache-from` follows).
    #[serde(default)]
    parents: BTreeMap<String, String>,
}

impl berth_durable::Record for CacheFile {
    const KIND: &'static str = "build cache";
    const SCHEMA: u32 = 1;
}

/// The builder.
#[derive(Debug)]
pub struct Builder {
    images: Arc<ImageService>,
    containers: Arc<Containers>,
    dir: PathBuf,
    cache: std::sync::Mutex<CacheFile>,
    /// Unpacked contexts by content hash, and how many builds use each.
    contexts_in_use: std::sync::Mutex<HashMap<String, usize>>,
}

/// An uploaded build context: in memory, or spooled to a file when large.
#[derive(Debug)]
pub enum ContextData {
    Memory(Vec<u8>),
    File(PathBuf),
}

/// How many unpacked contexts are kept for the next build when no build uses them.
const KEPT_CONTEXTS: usize = 4;

/// A build's hold on an unpacked context (see [`Builder::lease_context`]).
#[derive(Debug)]
pub struct ContextLease {
    builder: Arc<Builder>,
    hash: String,
    pub path: PathBuf,
}

impl Drop for ContextLease {
    fn drop(&mut self) {
        self.builder.release_context(&self.hash);
    }
}

/// The mounted root of a step: an overlay of an image's layers (with an empty bottom
/// layer, so that `scratch` mounts too) and a fresh upper directory, unmounted on drop.
struct RootMount {
    dir: PathBuf,
    root: PathBuf,
    upper: PathBuf,
}

impl RootMount {
    /// A writable root (the step writes into `upper`).
    fn new(images: &ImageService, image: Option<&str>, dir: PathBuf) -> Result<Self, EngineError> {
        Self::mount(images, image, dir, true)
    }

    /// A read-only view (a `--from` source): no upper directory, so nothing to sync.
    fn read_only(
        images: &ImageService,
        image: Option<&str>,
        dir: PathBuf,
    ) -> Result<Self, EngineError> {
        Self::mount(images, image, dir, false)
    }

    fn mount(
        images: &ImageService,
        image: Option<&str>,
        dir: PathBuf,
        writable: bool,
    ) -> Result<Self, EngineError> {
        let (root, upper, work, empty) = (
            dir.join("root"),
            dir.join("upper"),
            dir.join("work"),
            dir.join("empty"),
        );
        for d in [&root, &upper, &work, &empty] {
            std::fs::create_dir_all(d).map_err(|e| unavailable(format!("build: {e}")))?;
        }
        let mut lowers: Vec<String> = match image {
            Some(id) => images
                .layer_dirs(id, &upper)?
                .into_iter()
                .skip(1)
                .map(|p| p.display().to_string())
                .collect(),
            None => Vec::new(),
        };
        // Two lowers at least: an overlay without an upper needs them.
        lowers.push(empty.display().to_string());
        if lowers.len() < 2 {
            let e2 = dir.join("empty2");
            std::fs::create_dir_all(&e2).map_err(|e| unavailable(format!("build: {e}")))?;
            lowers.push(e2.display().to_string());
        }
        let m = RootMount { dir, root, upper };
        let mut options = vec![format!("lowerdir={}", lowers.join(":"))];
        if writable {
            options.push(format!("upperdir={}", m.upper.display()));
            options.push(format!("workdir={}", work.display()));
        }
        let spec = |opts: Vec<String>| berth_shim::MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            target: m.root.clone(),
            options: opts,
        };
        // `volatile`: the upper is read once for the commit and thrown away, so overlayfs
        // need not sync it at unmount (the committed blob is synced by the content store).
        let mut vol = options.clone();
        if writable {
            vol.push("volatile".into());
        }
        if spec(vol).mount().is_err() {
            spec(options)
                .mount()
                .map_err(|e| unavailable(format!("build: mount the step's root: {e}")))?;
        }
        Ok(m)
    }
}

impl Drop for RootMount {
    fn drop(&mut self) {
        let _ = berth_shim::MountSpec::unmount(&self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// Docker's default PATH, added to a stage whose base has none.
use berth_image::defaults::DEFAULT_PATH;

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rand_hex() -> String {
    crate::id::ContainerId::random().as_str()[..16].to_string()
}

/// The state of a stage between steps.
#[derive(Debug, Clone)]
struct St {
    /// The current image (None: `FROM scratch` before any step).
    image: Option<String>,
    /// The image's `config` object.
    config: serde_json::Map<String, Value>,
    /// ARGs declared in this stage, with their values.
    args: Vec<(String, String)>,
    cmd_set: bool,
}

impl St {
    fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn env_list(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The variables a step's words see: the ARGs, then the ENVs over them.
    fn vars(&self) -> Env {
        let mut e: Env = self.args.iter().cloned().collect();
        for kv in self.env_list() {
            if let Some((k, v)) = kv.split_once('=') {
                e.insert(k.into(), v.into());
            }
        }
        e
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env = self.env_list();
        let kv = format!("{k}={v}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
        self.config.insert("Env".into(), json!(env));
    }

    fn workdir(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    /// ARGs not shadowed by an ENV of the same name: RUN gets them in its environment.
    fn run_args(&self) -> Vec<(String, String)> {
        let env = self.env_list();
        self.args
            .iter()
            .filter(|(k, _)| !env.iter().any(|e| e.split('=').next() == Some(k)))
            .cloned()
            .collect()
    }
}

/// Everything the stages of one build share.
#[derive(Debug)]
struct Job {
    context: PathBuf,
    ignore: Ignore,
    opts: BuildOptions,
    escape: char,
    stages: Vec<Stage>,
    /// The checked steps of each stage.
    steps: Vec<Vec<(Instruction, Step)>>,
    /// Build args before the first FROM, with their values.
    meta: Env,
    /// The first step number of each needed stage.
    offset: Vec<usize>,
    total: usize,
    results: Vec<watch::Sender<Option<Result<String, String>>>>,
    consumed: std::sync::Mutex<HashSet<String>>,
    /// The label step appended to the target stage (`--label`).
    target: usize,
    /// With `--cache-from`: the only images the cache may give.
    cache_allowed: Option<HashSet<String>>,
}

impl Builder {
    /// Opens the builder's state under `<data-root>/build`.
    pub fn open(
        data_root: &Path,
        images: Arc<ImageService>,
        containers: Arc<Containers>,
    ) -> Result<Self, EngineError> {
        let dir = data_root.join("build");
        std::fs::create_dir_all(dir.join("tmp"))
            .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        // Scratch directories of builds a crash interrupted: what is mounted below them is
        // unmounted first (deepest first), so that nothing is removed through a mount.
        let tmp = dir.join("tmp");
        let mut mounted: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .filter(|m| m.starts_with(&tmp))
            .collect();
        mounted.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in &mounted {
            let _ = berth_shim::MountSpec::unmount(m);
        }
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        // A missing or unreadable cache is an empty one (it only saves work); a cache of a
        // newer berth is left alone on disk by not saving over it until a build here.
        let cache: CacheFile = match berth_durable::load(&dir.join("cache.json")) {
            Ok(c) => c,
            Err(e) => {
                if !e.is_not_found() {
                    tracing::warn!(error = %e, "build cache not used");
                }
                CacheFile::default()
            }
        };
        let b = Builder {
            images,
            containers,
            dir,
            cache: std::sync::Mutex::new(cache),
            contexts_in_use: Default::default(),
        };
        b.publish_cache();
        Ok(b)
    }

    /// The directory builds extract their contexts into.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("tmp").join(rand_hex())
    }

    /// The cache mounts' directories (`RUN --mount=type=cache`).
    pub fn cache_mounts(&self) -> PathBuf {
        self.dir.join("mounts")
    }
}

/// Unix seconds as RFC 3339 (for `system df`).
pub fn rfc3339(secs: i64) -> String {
    berth_image::store::rfc3339(secs)
}

/// The bytes under `p` (for `system df`).
pub fn dir_size(p: &Path) -> u64 {
    crate::containers::dir_size(p)
}

fn need_equals(word: &str) -> EngineError {
    invalid(format!(
        "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
    ))
}

/// Downloads `url` for `ADD` into the scratch directory.
async fn fetch_url(url: &str, scratch: &Path) -> Result<PathBuf, EngineError> {
    let url = url.to_string();
    let p = scratch.join(format!("url-{}", rand_hex()));
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || {
        let mut resp = ureq::get(&url)
            .call()
            .map_err(|e| unavailable(format!("ADD {url}: {e}")))?;
        let mut f = std::fs::File::create(&p2).map_err(|e| unavailable(e.to_string()))?;
        let mut body = resp.body_mut().as_reader();
        std::io::copy(&mut body, &mut f).map_err(|e| unavailable(format!("ADD {url}: {e}")))?;
        Ok::<_, EngineError>(())
    })
    .await
    .map_err(|e| unavailable(e.to_string()))??;
    Ok(p)
}
