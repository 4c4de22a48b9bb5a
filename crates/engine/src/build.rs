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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_build::dockerfile::{self, Instruction};
use berth_build::ignore::Ignore;
use berth_build::shell::{self, Env};
use berth_build::steps::{self, Command, Step};
use berth_build::Stage;
use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::buildfs;
use crate::containers::Containers;
use crate::error::{invalid, unavailable, EngineError};
use crate::images::ImageService;

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
    /// Registry credentials by host (`X-Registry-Config`), for pulling bases.
    pub auth: HashMap<String, berth_registry::Credentials>,
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

/// Docker's default PATH, added to a stage whose base has none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
}

fn instruction_text(i: &Instruction) -> String {
    let mut s = i.keyword.clone();
    for (k, v) in &i.flags {
        match v {
            Some(v) => s.push_str(&format!(" --{k}={v}")),
            None => s.push_str(&format!(" --{k}")),
        }
    }
    match &i.args {
        dockerfile::Args::Text(t) => {
            if !t.is_empty() {
                s.push(' ');
                s.push_str(t);
            }
        }
        dockerfile::Args::Json(v) => {
            s.push(' ');
            s.push_str(&serde_json::to_string(v).unwrap_or_default());
        }
    }
    s
}

/// The stage a `--from`/`from=` value names, if any (a name or an index before `before`).
fn stage_named(stages: &[Stage], name: &str, before: usize) -> Option<usize> {
    let l = name.to_ascii_lowercase();
    if let Some(s) = stages[..before]
        .iter()
        .find(|s| s.name.as_deref() == Some(&l))
    {
        return Some(s.index);
    }
    name.parse::<usize>().ok().filter(|i| *i < before)
}

/// Docker's duration words (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn duration_ns(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let mul = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mul;
        any = true;
    }
    if !num.is_empty() {
        return None;
    }
    any.then_some(total as i64)
}

/// `80`, `80/udp`, `8000-8002/tcp` → docker's `port/proto` keys.
fn expose_keys(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let (a, b): (u16, u16) = match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) if a <= b => (a, b),
        _ => return Err(format!("invalid containerPort: {ports}")),
    };
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
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

    /// The unpacked context for `data`: the one kept from an earlier build of the same bytes
    /// (a rebuild writes no file), or a new one, unpacked beside and renamed into place.
    pub fn lease_context(self: &Arc<Self>, data: ContextData) -> Result<ContextLease, EngineError> {
        let mut h = sha2::Sha256::new();
        match &data {
            ContextData::Memory(v) => h.update(v),
            ContextData::File(p) => {
                let mut f = std::fs::File::open(p).map_err(|e| unavailable(e.to_string()))?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf)
                        .map_err(|e| unavailable(e.to_string()))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
        }
        let hash = hex::encode(h.finalize())[..32].to_string();
        *self
            .contexts_in_use
            .lock()
            .expect("contexts")
            .entry(hash.clone())
            .or_default() += 1;
        let lease = ContextLease {
            builder: self.clone(),
            path: self.dir.join("contexts").join(&hash),
            hash,
        };
        if lease.path.is_dir() {
            // Most recently used: kept longest.
            if let Ok(f) = std::fs::File::open(&lease.path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            return Ok(lease);
        }
        let tmp = self.scratch();
        std::fs::create_dir_all(&tmp).map_err(|e| unavailable(e.to_string()))?;
        let unpacked = tmp.join("context");
        let r = match &data {
            ContextData::Memory(v) => unpack_context_from(v.as_slice(), &unpacked),
            ContextData::File(p) => std::fs::File::open(p)
                .map_err(|e| unavailable(e.to_string()))
                .and_then(|f| {
                    unpack_context_from(std::io::BufReader::with_capacity(1 << 20, f), &unpacked)
                }),
        };
        if r.is_ok() {
            let _ = std::fs::create_dir_all(self.dir.join("contexts"));
            // Another build of the same bytes may have won the race: its copy is as good.
            let _ = std::fs::rename(&unpacked, &lease.path);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        r?;
        if !lease.path.is_dir() {
            return Err(unavailable("the build context could not be kept"));
        }
        Ok(lease)
    }

    /// A build let go of a context: the least recently used unused ones beyond
    /// `KEPT_CONTEXTS` go.
    fn release_context(&self, hash: &str) {
        let mut in_use = self.contexts_in_use.lock().expect("contexts");
        if let Some(n) = in_use.get_mut(hash) {
            *n -= 1;
            if *n == 0 {
                in_use.remove(hash);
            }
        }
        let mut kept: Vec<(std::time::SystemTime, PathBuf, String)> =
            std::fs::read_dir(self.dir.join("contexts"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| {
                    let t = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (t, e.path(), e.file_name().to_string_lossy().into_owned())
                })
                .filter(|(_, _, name)| !in_use.contains_key(name))
                .collect();
        kept.sort_by_key(|k| std::cmp::Reverse(k.0));
        for (_, path, _) in kept.into_iter().skip(KEPT_CONTEXTS) {
            let _ = std::fs::remove_dir_all(path);
        }
    }

    /// Removes the kept contexts no build uses (for `builder prune`).
    fn prune_contexts(&self) {
        let in_use = self.contexts_in_use.lock().expect("contexts");
        for e in std::fs::read_dir(self.dir.join("contexts"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if !in_use.contains_key(e.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// The directory builds extract their contexts into.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("tmp").join(rand_hex())
    }

    fn publish_cache(&self) {
        let c = self.cache.lock().expect("build cache");
        let ids: HashSet<String> = c
            .entries
            .values()
            .filter(|id| !c.results.contains(*id))
            .cloned()
            .collect();
        self.images.set_build_cache(ids);
    }

    fn save_cache(&self) {
        let c = self.cache.lock().expect("build cache").clone();
        if let Err(e) = berth_durable::save(&self.dir.join("cache.json"), &c) {
            tracing::warn!(error = %e, "save the build cache");
        }
        self.publish_cache();
    }

    fn lookup(&self, key: &str) -> Option<String> {
        let id = self
            .cache
            .lock()
            .expect("build cache")
            .entries
            .get(key)
            .cloned()?;
        if !self.images.has(&id) {
            return None;
        }
        self.cache
            .lock()
            .expect("build cache")
            .used
            .insert(id.clone(), now());
        Some(id)
    }

    fn insert(&self, key: String, id: &str) {
        let mut c = self.cache.lock().expect("build cache");
        c.entries.insert(key, id.to_string());
        c.used.insert(id.to_string(), now());
    }

    /// The build cache for `system df`: (image id, last used) of every entry.
    pub fn cache_entries(&self) -> Vec<(String, i64)> {
        let c = self.cache.lock().expect("build cache");
        let ids: BTreeSet<&String> = c.entries.values().collect();
        ids.into_iter()
            .filter(|id| self.images.has(id))
            .map(|id| (id.clone(), c.used.get(id).copied().unwrap_or(0)))
            .collect()
    }

    /// The cache mounts' directories (`RUN --mount=type=cache`).
    pub fn cache_mounts(&self) -> PathBuf {
        self.dir.join("mounts")
    }

    /// `docker builder prune`: forgets every cache entry, removes the untagged intermediate
    /// images only the cache held (not builds' final images, not those a container uses),
    /// the cache mounts and the kept contexts. Returns the ids
    /// removed and the bytes reclaimed.
    pub fn prune(&self) -> Result<(Vec<String>, u64), EngineError> {
        let ids: Vec<String> = {
            let mut c = self.cache.lock().expect("build cache");
            // A build's final image is the user's, tagged or not: forgotten by the cache,
            // never removed by it (`image prune` takes an untagged one).
            let ids = c
                .entries
                .values()
                .filter(|id| !c.results.contains(*id))
                .cloned()
                .collect::<BTreeSet<_>>();
            c.entries.clear();
            c.used.clear();
            ids.into_iter().collect()
        };
        self.save_cache();
        let in_use = self.containers.images_in_use();
        let (out, mut bytes) = self.images.remove_untagged(&ids, &in_use)?;
        let mounts = self.cache_mounts();
        bytes += crate::containers::dir_size(&mounts);
        let _ = std::fs::remove_dir_all(&mounts);
        self.prune_contexts();
        Ok((out, bytes))
    }

    /// Runs a build of the context at `context` (a directory berth owns), sending its output
    /// to `out`. Returns the image id.
    pub async fn build(
        self: &Arc<Self>,
        context: PathBuf,
        opts: BuildOptions,
        out: mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        for t in &opts.tags {
            berth_image::ImageRef::parse(t)
                .map_err(|e| invalid(format!("invalid reference format: {t}: {e}")))?;
        }
        let df_rel = buildfs::clean_rel(&opts.dockerfile).ok_or_else(|| {
            invalid(format!(
                "forbidden path outside the build context: {} ()",
                opts.dockerfile
            ))
        })?;
        let text = berth_image::layer::read_beneath(&context, &df_rel).map_err(|e| {
            invalid(format!(
                "Cannot locate specified Dockerfile: {} ({e})",
                opts.dockerfile
            ))
        })?;
        let text = String::from_utf8(text)
            .map_err(|_| invalid(format!("{}: the Dockerfile is not UTF-8", opts.dockerfile)))?;
        let name = opts.dockerfile.clone();
        let df = dockerfile::parse(&text, &name).map_err(|e| invalid(e.to_string()))?;
        let ignore = Ignore::for_context(&context, &context.join(&df_rel))
            .map_err(|e| invalid(format!(".dockerignore: {e}")))?;
        let args: Env = opts.build_args.clone().into_iter().collect();
        let stages = berth_build::stages(&df, &args, &name).map_err(|e| invalid(e.to_string()))?;
        let mut all_steps = Vec::new();
        for s in &stages {
            let mut v = Vec::new();
            for i in &s.instructions {
                v.push((
                    i.clone(),
                    steps::step(i, &name).map_err(|e| invalid(e.to_string()))?,
                ));
            }
            all_steps.push(v);
        }
        let target = match &opts.target {
            Some(t) => stages
                .iter()
                .find(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .map(|s| s.index)
                .ok_or_else(|| {
                    invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => stages.len() - 1,
        };
        // The meta args (before the first FROM) with their values.
        let mut meta = Env::new();
        for i in &df.instructions {
            if i.keyword == "FROM" {
                break;
            }
            if let dockerfile::Args::Text(t) = &i.args {
                for (k, v) in shell::pairs(t, df.directives.escape, &meta, false)
                    .map_err(|e| invalid(format!("{name}:{}: {}", i.line, e.0)))?
                {
                    let val = args.get(&k).cloned().or(v).unwrap_or_default();
                    meta.insert(k, val);
                }
            }
        }
        // Which stages each needs.
        let deps: Vec<BTreeSet<usize>> = stages
            .iter()
            .map(|s| {
                let mut d = BTreeSet::new();
                if let Some(b) = s.base_stage(&stages) {
                    d.insert(b);
                }
                for (_, st) in &all_steps[s.index] {
                    let from = match st {
                        Step::Copy { from: Some(f), .. } => vec![f.clone()],
                        Step::Run { mounts, .. } => mounts
                            .iter()
                            .filter_map(|m| {
                                m.options
                                    .iter()
                                    .find(|(k, _)| k == "from")
                                    .and_then(|(_, v)| v.clone())
                            })
                            .collect(),
                        _ => vec![],
                    };
                    for f in from {
                        let f = shell::expand(&f, df.directives.escape, &meta).unwrap_or(f);
                        if let Some(i) = stage_named(&stages, &f, s.index) {
                            d.insert(i);
                        }
                    }
                }
                d
            })
            .collect();
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if needed.insert(i) {
                todo.extend(deps[i].iter().copied());
            }
        }
        let mut offset = vec![0; stages.len()];
        let mut total = 0;
        for &i in &needed {
            offset[i] = total + 1;
            total += 1 + all_steps[i].len();
        }
        if !opts.labels.is_empty() {
            total += 1;
        }
        let mut results = Vec::new();
        let mut receivers = Vec::new();
        for _ in &stages {
            let (tx, rx) = watch::channel(None);
            results.push(tx);
            receivers.push(rx);
        }
        let job = Arc::new(Job {
            context,
            ignore,
            opts,
            escape: df.directives.escape,
            stages,
            steps: all_steps,
            meta,
            offset,
            total,
            results,
            consumed: Default::default(),
            target,
        });
        // One task per needed stage; output per stage, printed in order.
        let mut outputs = Vec::new();
        for &i in &needed {
            let (tx, rx) = mpsc::unbounded_channel();
            outputs.push((i, rx));
            let me = self.clone();
            let job = job.clone();
            let dep_rx: Vec<_> = deps[i].iter().map(|d| receivers[*d].clone()).collect();
            tokio::spawn(async move {
                let mut failed = None;
                for mut r in dep_rx {
                    let v = r.wait_for(|v| v.is_some()).await.map(|v| v.clone());
                    if !matches!(v, Ok(Some(Ok(_)))) {
                        failed = Some("a stage this one needs failed".to_string());
                    }
                }
                let res = match failed {
                    Some(f) => Err(f),
                    None => me.run_stage(&job, i, &tx).await.map_err(|e| e.message),
                };
                let _ = job.results[i].send(Some(res));
            });
        }
        for (i, mut rx) in outputs {
            while let Some(m) = rx.recv().await {
                let _ = out.send(m);
            }
            let mut r = receivers[i].clone();
            let res = r
                .wait_for(|v| v.is_some())
                .await
                .map_err(|_| unavailable("the build stopped"))?
                .clone()
                .expect("set");
            if let Err(e) = res {
                self.save_cache();
                return Err(unavailable(e));
            }
        }
        let id = receivers[target]
            .borrow()
            .clone()
            .and_then(Result::ok)
            .ok_or_else(|| unavailable("the build stopped"))?;
        // Build args nobody declared.
        let consumed = job.consumed.lock().expect("consumed").clone();
        let unused: Vec<&String> = job
            .opts
            .build_args
            .keys()
            .filter(|k| !consumed.contains(*k) && !job.meta.contains_key(*k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            let _ = out.send(Message::Stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            )));
        }
        for t in &job.opts.tags {
            self.images.tag_id(&id, t)?;
        }
        {
            let mut c = self.cache.lock().expect("build cache");
            c.results.insert(id.clone());
        }
        self.save_cache();
        let _ = out.send(Message::Aux(id.clone()));
        let _ = out.send(Message::Stream(format!(
            "Successfully built {}\n",
            short(&id)
        )));
        for t in &job.opts.tags {
            let f = berth_image::ImageRef::parse(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone());
            let _ = out.send(Message::Stream(format!("Successfully tagged {f}\n")));
        }
        Ok(id)
    }

    /// An image for a base or a `--from`: found locally, else (or with `--pull`) pulled.
    async fn image_for(
        &self,
        job: &Job,
        reference: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        if !job.opts.pull {
            if let Ok((id, _)) = self.images.resolve(reference) {
                return Ok(id);
            }
        }
        let images = self.images.clone();
        let r = reference.to_string();
        let creds = berth_image::ImageRef::parse(reference)
            .ok()
            .and_then(|x| job.opts.auth.get(&x.domain).cloned());
        let _ = out.send(Message::Stream(format!("Pulling {reference}\n")));
        let res = tokio::task::spawn_blocking(move || {
            let p = images.pull_resolve(&r, None, creds)?;
            let cancel = std::sync::atomic::AtomicBool::new(false);
            p.run(&|_| {}, &cancel)
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
        // With `--pull` and no registry reachable docker fails too, rather than use a local copy.
        res.map(|o| o.id)
    }

    async fn run_stage(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        let stage = &job.stages[idx];
        let say = |s: String| {
            let _ = out.send(Message::Stream(s));
        };
        let mut n = job.offset[idx];
        say(format!(
            "Step {n}/{} : FROM {}{}\n",
            job.total,
            stage.base,
            stage
                .name
                .as_ref()
                .map(|x| format!(" AS {x}"))
                .unwrap_or_default()
        ));
        let mut st = St {
            image: None,
            config: serde_json::Map::new(),
            args: Vec::new(),
            cmd_set: false,
        };
        if let Some(b) = stage.base_stage(&job.stages) {
            st.image = Some(Self::stage_result(job, b).await?);
        } else if !stage.base.eq_ignore_ascii_case("scratch") {
            st.image = Some(self.image_for(job, &stage.base, out).await?);
        }
        let mut triggers = Vec::new();
        if let Some(id) = &st.image {
            let (_, cfg) = self.images.config_json(id)?;
            st.config = cfg["config"].as_object().cloned().unwrap_or_default();
            if let Some(t) = st.config.remove("OnBuild") {
                triggers = serde_json::from_value::<Vec<String>>(t).unwrap_or_default();
            }
        }
        if !st.env_list().iter().any(|e| e.starts_with("PATH=")) {
            let mut env = st.env_list();
            env.push(DEFAULT_PATH.into());
            st.config.insert("Env".into(), json!(env));
        }
        if let Some(id) = &st.image {
            say(format!(" ---> {}\n", short(id)));
        }
        let mut todo: Vec<(Instruction, Step)> = Vec::new();
        if !triggers.is_empty() {
            say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let d = dockerfile::parse(t, "ONBUILD").map_err(|e| invalid(e.to_string()))?;
                for i in d.instructions {
                    let s = steps::step(&i, "ONBUILD").map_err(|e| invalid(e.to_string()))?;
                    todo.push((i, s));
                }
            }
        }
        let trigger_count = todo.len();
        todo.extend(job.steps[idx].iter().cloned());
        if idx == job.target && !job.opts.labels.is_empty() {
            let text = job
                .opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", shell_quote(k), shell_quote(v)))
                .collect::<Vec<_>>()
                .join(" ");
            let i = Instruction {
                keyword: "LABEL".into(),
                flags: vec![],
                args: dockerfile::Args::Text(text.clone()),
                heredocs: vec![],
                line: 0,
            };
            todo.push((i, Step::Label(text)));
        }
        for (k, (inst, step)) in todo.iter().enumerate() {
            if k >= trigger_count {
                n += 1;
                say(format!(
                    "Step {n}/{} : {}\n",
                    job.total,
                    instruction_text(inst)
                ));
            }
            self.step(job, idx, &mut st, step, out).await.map_err(|e| {
                if inst.line > 0 && e.kind == crate::error::Kind::InvalidArgument {
                    invalid(format!(
                        "{}:{}: {}",
                        job.opts.dockerfile, inst.line, e.message
                    ))
                } else {
                    e
                }
            })?;
        }
        match st.image {
            Some(id) => Ok(id),
            // `FROM scratch` and nothing else: an image with no layer and the default config.
            None => {
                let history = json!({"created_by": "/bin/sh -c #(nop) FROM scratch"});
                self.meta_commit(job, &mut st, history, out).await?;
                Ok(st.image.expect("committed"))
            }
        }
    }

    fn key(&self, st: &St, created_by: &str, extra: &str) -> String {
        let mut h = sha2::Sha256::new();
        h.update(st.image.as_deref().unwrap_or("scratch"));
        h.update(b"\0");
        h.update(created_by);
        h.update(b"\0");
        h.update(serde_json::to_vec(&st.config).expect("serialises"));
        h.update(b"\0");
        h.update(extra);
        hex::encode(h.finalize())
    }

    /// A cached result for the step, announced as the classic builder does.
    fn cached(&self, job: &Job, key: &str, out: &mpsc::UnboundedSender<Message>) -> Option<String> {
        if job.opts.no_cache {
            return None;
        }
        let id = self.lookup(key)?;
        let _ = out.send(Message::Stream(" ---> Using cache\n".into()));
        let _ = out.send(Message::Stream(format!(" ---> {}\n", short(&id))));
        Some(id)
    }

    /// The step's cached image, made the stage's current one: true on a hit.
    fn reuse(
        &self,
        job: &Job,
        st: &mut St,
        key: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> bool {
        match self.cached(job, key, out) {
            Some(id) => {
                st.image = Some(id);
                true
            }
            None => false,
        }
    }

    /// A step's new image: cached under `key`, announced, and the stage's current one.
    fn adopt(&self, st: &mut St, key: String, id: String, out: &mpsc::UnboundedSender<Message>) {
        self.insert(key, &id);
        let _ = out.send(Message::Stream(format!(" ---> {}\n", short(&id))));
        st.image = Some(id);
    }

    /// A metadata step: a new config, no layer.
    async fn meta_commit(
        &self,
        job: &Job,
        st: &mut St,
        history: Value,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        self.meta_commit_keyed(job, st, history, "", out).await
    }

    /// [`Builder::meta_commit`] with more in the key than the config (ARG's values).
    async fn meta_commit_keyed(
        &self,
        job: &Job,
        st: &mut St,
        history: Value,
        key_extra: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let created_by = history["created_by"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = self.key(st, &created_by, key_extra);
        if self.reuse(job, st, &key, out) {
            return Ok(());
        }
        let images = self.images.clone();
        let base = st.image.clone();
        let cfg = Value::Object(st.config.clone());
        let id = tokio::task::spawn_blocking(move || {
            images.commit_step(base.as_deref(), None, cfg, history, &[])
        })
        .await
        .map_err(|e| unavailable(e.to_string()))??;
        self.adopt(st, key, id, out);
        Ok(())
    }

    async fn step(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        st: &mut St,
        step: &Step,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let esc = job.escape;
        let vars = st.vars();
        let ex = |t: &str| shell::expand(t, esc, &vars).map_err(|e| invalid(e.0));
        let nop = |what: String| json!({"created_by": format!("/bin/sh -c #(nop) {what}")});
        match step {
            Step::Env(text) => {
                let pairs = shell::pairs(text, esc, &vars, true).map_err(|e| invalid(e.0))?;
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| need_equals(&k))?;
                    shown.push(format!("{k}={v}"));
                    st.set_env(&k, &v);
                }
                self.meta_commit(job, st, nop(format!(" ENV {}", shown.join(" "))), out)
                    .await
            }
            Step::Label(text) => {
                let pairs = shell::pairs(text, esc, &vars, true).map_err(|e| invalid(e.0))?;
                let mut labels = st
                    .config
                    .get("Labels")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| need_equals(&k))?;
                    shown.push(format!("{k}={v}"));
                    labels.insert(k, json!(v));
                }
                st.config.insert("Labels".into(), Value::Object(labels));
                self.meta_commit(job, st, nop(format!(" LABEL {}", shown.join(" "))), out)
                    .await
            }
            Step::Arg(text) => {
                let pairs = shell::pairs(text, esc, &vars, false).map_err(|e| invalid(e.0))?;
                let mut shown = Vec::new();
                for (k, default) in pairs {
                    job.consumed.lock().expect("consumed").insert(k.clone());
                    let value = job
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| job.meta.get(&k).cloned());
                    st.args.retain(|(n, _)| n != &k);
                    match value {
                        Some(v) => {
                            shown.push(format!("{k}={v}"));
                            st.args.push((k, v));
                        }
                        None => shown.push(k),
                    }
                }
                // ARG changes no config; docker still records a step.
                let key_extra = serde_json::to_string(&st.args).expect("serialises");
                self.meta_commit_keyed(
                    job,
                    st,
                    nop(format!(" ARG {}", shown.join(" "))),
                    &key_extra,
                    out,
                )
                .await
            }
            Step::Workdir(t) => {
                let w = ex(t)?;
                let joined = if w.starts_with('/') {
                    PathBuf::from(&w)
                } else {
                    Path::new(&st.workdir()).join(&w)
                };
                let clean = Path::new("/")
                    .join(buildfs::clean_rel(&joined.to_string_lossy()).unwrap_or_default());
                let wd = clean.display().to_string();
                st.config.insert("WorkingDir".into(), json!(wd));
                let created_by = format!("/bin/sh -c #(nop) WORKDIR {wd}");
                let key = self.key(st, &created_by, "");
                if self.reuse(job, st, &key, out) {
                    return Ok(());
                }
                // The directory is made now, owned by root, as docker's builder makes it.
                let images = self.images.clone();
                let base = st.image.clone();
                let cfg = Value::Object(st.config.clone());
                let dir = self.scratch();
                let id = tokio::task::spawn_blocking(move || {
                    let m = RootMount::new(&images, base.as_deref(), dir)?;
                    let exists = buildfs::is_dir_in(&m.root, Path::new(&wd));
                    let rootfd: std::os::fd::OwnedFd = std::fs::File::open(&m.root)
                        .map_err(|e| unavailable(e.to_string()))?
                        .into();
                    if !exists {
                        buildfs::make_dirs(&rootfd, Path::new(&wd), (0, 0), 0o755)
                            .map_err(|e| invalid(format!("WORKDIR {wd}: {e}")))?;
                    }
                    drop(rootfd);
                    let history = json!({"created_by": created_by});
                    let upper = (!exists).then_some(m.upper.as_path());
                    images.commit_step(base.as_deref(), upper, cfg, history, &[])
                })
                .await
                .map_err(|e| unavailable(e.to_string()))??;
                self.adopt(st, key, id, out);
                Ok(())
            }
            Step::User(t) => {
                let u = ex(t)?;
                st.config.insert("User".into(), json!(u));
                self.meta_commit(job, st, nop(format!("USER {u}")), out)
                    .await
            }
            Step::Cmd(c) => {
                let v = self.command_argv(st, c);
                st.config.insert("Cmd".into(), json!(v));
                st.cmd_set = true;
                self.meta_commit(
                    job,
                    st,
                    nop(format!(
                        " CMD {}",
                        serde_json::to_string(&v).unwrap_or_default()
                    )),
                    out,
                )
                .await
            }
            Step::Entrypoint(c) => {
                let v = self.command_argv(st, c);
                st.config.insert("Entrypoint".into(), json!(v));
                if !st.cmd_set {
                    st.config.insert("Cmd".into(), Value::Null);
                }
                self.meta_commit(
                    job,
                    st,
                    nop(format!(
                        " ENTRYPOINT {}",
                        serde_json::to_string(&v).unwrap_or_default()
                    )),
                    out,
                )
                .await
            }
            Step::Expose(t) => {
                let words = shell::words(t, esc, &vars).map_err(|e| invalid(e.0))?;
                let mut ports = st
                    .config
                    .get("ExposedPorts")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let mut shown = Vec::new();
                for w in words {
                    for k in expose_keys(&w).map_err(invalid)? {
                        shown.push(k.clone());
                        ports.insert(k, json!({}));
                    }
                }
                st.config
                    .insert("ExposedPorts".into(), Value::Object(ports));
                self.meta_commit(job, st, nop(format!(" EXPOSE {}", shown.join(" "))), out)
                    .await
            }
            Step::Volume(words) => {
                let mut vols = st
                    .config
                    .get("Volumes")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let mut shown = Vec::new();
                for w in words {
                    let v = ex(w)?;
                    if v.trim().is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string"));
                    }
                    shown.push(v.clone());
                    vols.insert(v, json!({}));
                }
                st.config.insert("Volumes".into(), Value::Object(vols));
                self.meta_commit(job, st, nop(format!(" VOLUME [{}]", shown.join(" "))), out)
                    .await
            }
            Step::Shell(v) => {
                st.config.insert("Shell".into(), json!(v));
                self.meta_commit(
                    job,
                    st,
                    nop(format!(
                        "SHELL {}",
                        serde_json::to_string(v).unwrap_or_default()
                    )),
                    out,
                )
                .await
            }
            Step::StopSignal(t) => {
                let s = ex(t)?;
                crate::containers::parse_signal(&s)
                    .map_err(|_| invalid(format!("Invalid signal: {s}")))?;
                st.config.insert("StopSignal".into(), json!(s));
                self.meta_commit(job, st, nop(format!(" STOPSIGNAL {s}")), out)
                    .await
            }
            Step::Maintainer(t) => {
                // The Author field of the image; berth keeps only the history entry.
                self.meta_commit(job, st, nop(format!(" MAINTAINER {t}")), out)
                    .await
            }
            Step::Onbuild(t) => {
                let mut v: Vec<String> = st
                    .config
                    .get("OnBuild")
                    .and_then(|x| serde_json::from_value(x.clone()).ok())
                    .unwrap_or_default();
                v.push(t.clone());
                st.config.insert("OnBuild".into(), json!(v));
                self.meta_commit(job, st, nop(format!(" ONBUILD {t}")), out)
                    .await
            }
            Step::Healthcheck(h) => {
                let hc = match h {
                    None => json!({"Test": ["NONE"]}),
                    Some((opts, cmd)) => {
                        let test = match cmd {
                            Command::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                            Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                        };
                        let mut m = serde_json::Map::new();
                        m.insert("Test".into(), json!(test));
                        for (k, v) in opts {
                            let field = match k.as_str() {
                                "interval" => "Interval",
                                "timeout" => "Timeout",
                                "start-period" => "StartPeriod",
                                "start-interval" => "StartInterval",
                                "retries" => "Retries",
                                _ => continue,
                            };
                            let val = if field == "Retries" {
                                v.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
                                    invalid(format!("--retries must be a positive integer: {v}"))
                                })?
                            } else {
                                duration_ns(v).ok_or_else(|| {
                                    invalid(format!("time: invalid duration \"{v}\""))
                                })?
                            };
                            if val != 0 {
                                m.insert(field.into(), json!(val));
                            }
                        }
                        Value::Object(m)
                    }
                };
                st.config.insert("Healthcheck".into(), hc.clone());
                self.meta_commit(job, st, nop(format!(" HEALTHCHECK {hc}")), out)
                    .await
            }
            Step::Run {
                command,
                mounts,
                network,
                heredocs,
            } => {
                self.run_step(
                    job,
                    idx,
                    st,
                    command,
                    mounts,
                    network.as_deref(),
                    heredocs,
                    out,
                )
                .await
            }
            Step::Copy {
                add,
                args,
                from,
                chown,
                chmod,
                link: _,
                heredocs,
                json,
            } => {
                self.copy_step(
                    job,
                    idx,
                    st,
                    *add,
                    args,
                    *json,
                    from.as_deref(),
                    chown.as_deref(),
                    chmod.as_deref(),
                    heredocs,
                    out,
                )
                .await
            }
        }
    }

    fn command_argv(&self, st: &St, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        st: &mut St,
        command: &Command,
        mounts: &[steps::RunMount],
        network: Option<&str>,
        heredocs: &[dockerfile::Heredoc],
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let Some(image) = st.image.clone() else {
            return Err(invalid(
                "RUN on a stage built from scratch: there is no shell to run it with",
            ));
        };
        let argv: Vec<String> = match command {
            Command::Exec(v) => v.clone(),
            Command::Shell(text) => {
                let mut v = st.shell();
                let only_heredoc = heredocs.len() == 1
                    && text
                        .trim()
                        .trim_start_matches("<<")
                        .trim_start_matches('-')
                        .trim_matches(['"', '\''])
                        == heredocs[0].name;
                if only_heredoc {
                    // `RUN <<EOF`: the body is the script.
                    v.push(heredocs[0].content.clone());
                } else {
                    // The shell reads the here-documents itself.
                    let mut script = text.clone();
                    for h in heredocs {
                        script.push('\n');
                        script.push_str(&h.content);
                        if !h.content.ends_with('\n') {
                            script.push('\n');
                        }
                        script.push_str(&h.name);
                    }
                    v.push(script);
                }
                v
            }
        };
        let run_args = st.run_args();
        let cmd_text = match command {
            Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
            Command::Shell(_) => argv.join(" "),
        };
        let created_by = if run_args.is_empty() {
            cmd_text.clone()
        } else {
            format!(
                "|{} {} {}",
                run_args.len(),
                run_args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                cmd_text
            )
        };
        let net = network
            .map(str::to_string)
            .or_else(|| job.opts.network.clone())
            .filter(|n| n != "default")
            .unwrap_or_else(|| "bridge".into());
        // Mounts: cache directories of berth's, tmpfs, binds from the context or a stage.
        let vars = st.vars();
        let mut binds = Vec::new();
        let mut tmpfs = HashMap::new();
        let mut skip: Vec<String> = Vec::new();
        let mut stage_roots: Vec<RootMount> = Vec::new();
        let mut scratch_dirs: Vec<ScratchDir> = Vec::new();
        let mut key_extra = format!("net={net}");
        for m in mounts {
            let opt = |k: &str| {
                m.options
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone().unwrap_or_default())
            };
            let target = shell::expand(&m.target, job.escape, &vars).map_err(|e| invalid(e.0))?;
            if !target.starts_with('/') {
                return Err(invalid(format!(
                    "--mount target {target:?} must be absolute"
                )));
            }
            skip.push(target.trim_start_matches('/').to_string());
            key_extra.push_str(&format!(";{}:{target}:{:?}", m.typ, m.options));
            match m.typ.as_str() {
                "cache" => {
                    let id = opt("id").unwrap_or_else(|| target.clone());
                    let h = hex::encode(sha2::Sha256::digest(id.as_bytes()));
                    let dir = self.cache_mounts().join(&h[..24]);
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir).map_err(|e| unavailable(e.to_string()))?;
                        let mode = opt("mode")
                            .and_then(|m| u32::from_str_radix(&m, 8).ok())
                            .unwrap_or(0o755);
                        let uid = opt("uid").and_then(|x| x.parse().ok()).unwrap_or(0);
                        let gid = opt("gid").and_then(|x| x.parse().ok()).unwrap_or(0);
                        let _ = std::os::unix::fs::chown(&dir, Some(uid), Some(gid));
                        let _ = std::fs::set_permissions(
                            &dir,
                            std::os::unix::fs::PermissionsExt::from_mode(mode),
                        );
                    }
                    binds.push(format!("{}:{target}", dir.display()));
                }
                "tmpfs" => {
                    let size = opt("size").map(|s| format!("size={s}")).unwrap_or_default();
                    tmpfs.insert(target, size);
                }
                "bind" => {
                    let src = opt("source").or_else(|| opt("src")).unwrap_or_default();
                    let rel = buildfs::clean_rel(&src).ok_or_else(|| {
                        invalid(format!(
                            "forbidden path outside the build context: {src} ()"
                        ))
                    })?;
                    let rw = opt("rw").is_some() || opt("readwrite").is_some();
                    let host = match opt("from") {
                        Some(f) => {
                            let f = shell::expand(&f, job.escape, &job.meta)
                                .map_err(|e| invalid(e.0))?;
                            let id = self.image_of_from(job, idx, &f, out).await?;
                            let images = self.images.clone();
                            let dir = self.scratch();
                            let rm = tokio::task::spawn_blocking(move || {
                                RootMount::read_only(&images, Some(&id), dir)
                            })
                            .await
                            .map_err(|e| unavailable(e.to_string()))??;
                            let p = resolved(&rm.root, &rel)?;
                            stage_roots.push(rm);
                            p
                        }
                        None => {
                            key_extra.push_str(&format!("@{}", dir_hash(&job.context.join(&rel))?));
                            let p = resolved(&job.context, &rel)?;
                            if rw {
                                // The context is kept for later builds: a writable bind gets
                                // a copy, and what the step writes there is thrown away.
                                let copy = self.scratch();
                                let srcs = buildfs::sources(
                                    &job.context,
                                    &[rel.display().to_string()],
                                    &|_| false,
                                )?;
                                let mut es = Vec::new();
                                let mut at = copy.clone();
                                for s in &srcs {
                                    let dest = if s.is_dir {
                                        PathBuf::from("/")
                                    } else {
                                        let name = s
                                            .rel
                                            .file_name()
                                            .map(PathBuf::from)
                                            .unwrap_or_else(|| "file".into());
                                        at = copy.join(&name);
                                        Path::new("/").join(name)
                                    };
                                    buildfs::entries(s, &dest, None, &|_| false, &mut es)?;
                                }
                                std::fs::create_dir_all(&copy)
                                    .map_err(|e| unavailable(e.to_string()))?;
                                buildfs::write(&copy, &es, (0, 0))?;
                                scratch_dirs.push(ScratchDir(copy.clone()));
                                at
                            } else {
                                p
                            }
                        }
                    };
                    binds.push(format!(
                        "{}:{target}:{}",
                        host.display(),
                        if rw { "rw" } else { "ro" }
                    ));
                }
                "secret" => return Err(invalid(
                    "RUN --mount=type=secret: berth's builder takes no secrets yet (no --secret)",
                )),
                other => return Err(invalid(format!("unsupported mount type {other:?}"))),
            }
        }
        let key = self.key(st, &created_by, &key_extra);
        if self.reuse(job, st, &key, out) {
            return Ok(());
        }
        let mut env = st.env_list();
        for (k, v) in &run_args {
            env.push(format!("{k}={v}"));
        }
        let user = st
            .config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(argv),
            entrypoint: Some(vec![]),
            env: Some(env),
            working_dir: Some(st.workdir()),
            user: (!user.is_empty()).then_some(user),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some(net),
                binds: (!binds.is_empty()).then_some(binds),
                tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (cid, _warnings) = self.containers.create(None, body)?;
        let _ = out.send(Message::Stream(format!(
            " ---> Running in {}\n",
            short(&cid)
        )));
        let result = self.run_container(&cid, out).await;
        let code = match result {
            Ok(c) => c,
            Err(e) => {
                let _ = self.containers.remove(&cid, true).await;
                return Err(e);
            }
        };
        drop(stage_roots);
        drop(scratch_dirs);
        if code != 0 {
            if job.opts.force_remove {
                let _ = self.containers.remove(&cid, true).await;
            }
            return Err(unavailable(format!(
                "The command '{cmd_text}' returned a non-zero code: {code}"
            )));
        }
        let (dir, _) = self.containers.paths(&cid);
        let images = self.images.clone();
        let cfg = Value::Object(st.config.clone());
        let history = json!({"created_by": created_by});
        let id = tokio::task::spawn_blocking(move || {
            let mut skip: Vec<&str> = skip.iter().map(String::as_str).collect();
            skip.extend(crate::containers::MOUNT_POINTS);
            images.commit_step(Some(&image), Some(&dir.join("upper")), cfg, history, &skip)
        })
        .await
        .map_err(|e| unavailable(e.to_string()))??;
        if job.opts.remove || job.opts.force_remove {
            self.containers.remove(&cid, true).await?;
            let _ = out.send(Message::Stream(format!(
                "Removing intermediate container {}\n",
                short(&cid)
            )));
        }
        self.adopt(st, key, id, out);
        Ok(())
    }

    /// Starts the created container with its output attached; returns its exit code.
    async fn run_container(
        self: &Arc<Self>,
        cid: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<i64, EngineError> {
        // Queued before the start, so that no output is missed.
        let attach = self.containers.attach_at_start(cid)?;
        self.containers.start(cid).await?;
        let mut stream = attach
            .await
            .map_err(|_| unavailable("the step's container went away"))??;
        let mut hdr = [0u8; 8];
        while stream.read_exact(&mut hdr).await.is_ok() {
            let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            let mut buf = vec![0u8; len];
            if stream.read_exact(&mut buf).await.is_err() {
                break;
            }
            let _ = out.send(Message::Stream(String::from_utf8_lossy(&buf).into_owned()));
        }
        self.containers
            .wait(cid, crate::model::WaitCondition::NotRunning)
            .await
    }

    /// The image an earlier stage built (waits for it to finish).
    async fn stage_result(job: &Job, i: usize) -> Result<String, EngineError> {
        let mut r = job.results[i].subscribe();
        let done = r
            .wait_for(|v| v.is_some())
            .await
            .map_err(|_| unavailable("the build stopped"))?
            .clone();
        done.and_then(Result::ok)
            .ok_or_else(|| unavailable("a stage this one needs failed"))
    }

    /// The image a `--from` names: an earlier stage's result, or an image.
    async fn image_of_from(
        &self,
        job: &Job,
        idx: usize,
        name: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<String, EngineError> {
        if let Some(i) = stage_named(&job.stages, name, idx) {
            return Self::stage_result(job, i).await;
        }
        if job.stages[idx..]
            .iter()
            .any(|s| s.name.as_deref() == Some(&name.to_ascii_lowercase()))
        {
            return Err(invalid(format!(
                "invalid from flag value {name}: stage {name} is not defined before this one"
            )));
        }
        self.image_for(job, name, out).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_step(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        st: &mut St,
        add: bool,
        args: &[String],
        json: bool,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        heredocs: &[dockerfile::Heredoc],
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let esc = job.escape;
        let vars = st.vars();
        let kw = if add { "ADD" } else { "COPY" };
        let mut words: Vec<String> = Vec::new();
        for a in args {
            if json {
                // One word each; `$v` is still substituted, quotes have no meaning here.
                words.push(expand_json_word(a, &vars));
            } else {
                words.extend(shell::words(a, esc, &vars).map_err(|e| invalid(e.0))?);
            }
        }
        let dest_raw = words
            .pop()
            .ok_or_else(|| invalid(format!("{kw} requires at least two arguments")))?;
        let chmod = match chmod {
            Some(c) => Some(
                u32::from_str_radix(c, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| invalid(format!("invalid chmod parameter: {c}")))?,
            ),
            None => None,
        };
        let chown = chown
            .map(|c| shell::expand(c, esc, &vars))
            .transpose()
            .map_err(|e| invalid(e.0))?;
        // Where the sources come from.
        let from_id = match from {
            Some(f) => {
                let f = shell::expand(f, esc, &vars).map_err(|e| invalid(e.0))?;
                Some(self.image_of_from(job, idx, &f, out).await?)
            }
            None => None,
        };
        let scratch = self.scratch();
        std::fs::create_dir_all(&scratch).map_err(|e| unavailable(e.to_string()))?;
        let _scratch_guard = ScratchDir(scratch.clone());
        let from_root = match &from_id {
            Some(id) => {
                let images = self.images.clone();
                let id = id.clone();
                let dir = scratch.join("from");
                Some(
                    tokio::task::spawn_blocking(move || {
                        RootMount::read_only(&images, Some(&id), dir)
                    })
                    .await
                    .map_err(|e| unavailable(e.to_string()))??,
                )
            }
            None => None,
        };
        // Here-documents become files; URLs (ADD) are fetched.
        let heredoc_dir = scratch.join("heredocs");
        let mut plain_words = Vec::new();
        let mut extra_sources: Vec<(PathBuf, String)> = Vec::new();
        for w in &words {
            if let Some(h) = heredocs.iter().find(|h| {
                w.trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == h.name
                    && w.starts_with("<<")
            }) {
                std::fs::create_dir_all(&heredoc_dir).map_err(|e| unavailable(e.to_string()))?;
                let content = if h.expand {
                    shell::expand(&h.content, esc, &vars).unwrap_or_else(|_| h.content.clone())
                } else {
                    h.content.clone()
                };
                let p = heredoc_dir.join(&h.name);
                std::fs::write(&p, content).map_err(|e| unavailable(e.to_string()))?;
                let _ = std::fs::set_permissions(
                    &p,
                    std::os::unix::fs::PermissionsExt::from_mode(0o644),
                );
                extra_sources.push((p, h.name.clone()));
            } else if add && (w.starts_with("http://") || w.starts_with("https://")) {
                let p = fetch_url(w, &scratch).await?;
                let name = w
                    .split('?')
                    .next()
                    .unwrap_or(w)
                    .rsplit('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("download")
                    .to_string();
                extra_sources.push((p, name));
            } else if !add && (w.starts_with("http://") || w.starts_with("https://")) {
                return Err(invalid("source can't be a URL for COPY"));
            } else {
                plain_words.push(w.clone());
            }
        }
        let context = job.context.clone();
        let ignore_all = from_root.is_none();
        let src_root = from_root
            .as_ref()
            .map(|m| m.root.clone())
            .unwrap_or(context);
        let ig = &job.ignore;
        let excluded = |p: &str| ignore_all && ig.excluded(p);
        let srcs = buildfs::sources(&src_root, &plain_words, &excluded)
            .map_err(|e| invalid(e.message.replace("COPY failed", &format!("{kw} failed"))))?;
        let count = srcs.len() + extra_sources.len();
        let dest_dir_syntax =
            dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        if count > 1 && !dest_dir_syntax {
            return Err(invalid(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let dest_abs = if dest_raw.starts_with('/') {
            PathBuf::from(&dest_raw)
        } else {
            Path::new(&st.workdir()).join(&dest_raw)
        };
        let dest = Path::new("/")
            .join(buildfs::clean_rel(&dest_abs.to_string_lossy()).unwrap_or_default());
        // ADD's local archives are unpacked into the scratch directory first.
        // (Their sources stay open while the entries, which name paths below them, live.)
        let mut tars: Vec<(usize, buildfs::Source)> = Vec::new();
        if add {
            for (i, s) in srcs.iter().enumerate() {
                if !s.is_dir && is_archive(&s.host) {
                    let d = scratch.join(format!("tar{i}"));
                    unpack_archive(&s.host, &d)?;
                    let src = buildfs::sources(&d, &[".".into()], &|_| false)?.remove(0);
                    tars.push((i, src));
                }
            }
        }
        // Entries with a nominal destination, for the key; the real one needs the image.
        let owner_key = chown.clone().unwrap_or_default();
        let plan =
            |dest_is_dir: bool, owner: (u32, u32)| -> Result<Vec<buildfs::Entry>, EngineError> {
                let mut es = Vec::new();
                for (i, s) in srcs.iter().enumerate() {
                    if let Some((_, src)) = tars.iter().find(|(j, _)| *j == i) {
                        let mut inner = Vec::new();
                        buildfs::entries(
                            src,
                            &dest,
                            chown.as_ref().map(|_| owner),
                            &|_| false,
                            &mut inner,
                        )?;
                        // The archive's top directory is the destination: keep its mode as is.
                        inner.retain(|e| e.dest != dest);
                        es.extend(inner);
                        continue;
                    }
                    let target = if s.is_dir {
                        dest.clone()
                    } else if dest_is_dir {
                        dest.join(s.rel.file_name().unwrap_or_default())
                    } else {
                        dest.clone()
                    };
                    let sub_excluded = |p: &str| excluded(p);
                    buildfs::entries(s, &target, Some(owner), &sub_excluded, &mut es)?;
                }
                for (p, name) in &extra_sources {
                    let src = buildfs::Source::file(p)?;
                    let target = if dest_is_dir {
                        dest.join(name)
                    } else {
                        dest.clone()
                    };
                    let mut one = Vec::new();
                    buildfs::entries(&src, &target, Some(owner), &|_| false, &mut one)?;
                    // Our own scratch file: named by its path, not by the descriptor that goes.
                    for e in &mut one {
                        e.kind = buildfs::Kind::File(p.clone());
                    }
                    if !add || heredocs.iter().any(|h| &h.name == name) {
                        es.extend(one);
                    } else {
                        // A URL's file: mode 0600, as docker writes it.
                        es.extend(one.into_iter().map(|mut e| {
                            e.mode = 0o600;
                            e
                        }));
                    }
                }
                if let Some(m) = chmod {
                    for e in &mut es {
                        if !matches!(e.kind, buildfs::Kind::Symlink(_)) {
                            e.mode = m;
                        }
                    }
                }
                // The destination directory of a directory copy that exists keeps its own mode.
                Ok(es)
            };
        let nominal = plan(dest_dir_syntax, (0, 0))?;
        let hash = buildfs::content_hash(&nominal)?;
        let what = if count == 1 && srcs.first().is_some_and(|s| s.is_dir) {
            "dir"
        } else {
            "file"
        };
        let created_by = format!(
            "/bin/sh -c #(nop) {kw} {what}:{hash} in {} ",
            dest.display()
        );
        let key = self.key(
            st,
            &created_by,
            &format!("{owner_key}|{chmod:?}|{}", from_id.as_deref().unwrap_or("")),
        );
        if self.reuse(job, st, &key, out) {
            return Ok(());
        }
        let images = self.images.clone();
        let base = st.image.clone();
        let cfg = Value::Object(st.config.clone());
        let history = json!({"created_by": created_by});
        let dir = scratch.join("step");
        let dest2 = dest.clone();
        let id = {
            // Mounting is blocking; the copy itself too: one blocking section.
            let m = tokio::task::block_in_place(|| RootMount::new(&images, base.as_deref(), dir))?;
            let owner = match &chown {
                Some(c) => buildfs::lookup_owner(&m.root, c)?,
                None => (0, 0),
            };
            let dest_is_dir = dest_dir_syntax || buildfs::is_dir_in(&m.root, &dest2);
            let mut es = plan(dest_is_dir, owner)?;
            // An existing destination directory keeps its own mode and owner.
            if buildfs::is_dir_in(&m.root, &dest2) {
                es.retain(|e| e.dest != dest2);
            }
            let root = m.root.clone();
            let upper = m.upper.clone();
            tokio::task::block_in_place(|| {
                buildfs::write(&root, &es, owner)?;
                images.commit_step(base.as_deref(), Some(&upper), cfg, history, &[])
            })?
        };
        drop(from_root);
        self.adopt(st, key, id, out);
        Ok(())
    }
}

/// Unpacks an uploaded build context (a plain, gzip or zstd tar) into the new directory
/// `dest` with the image crate's layer applier: the same code that applies hostile layers,
/// so absolute names, `..` and writes through symlinks are refused (and it is much faster
/// than the `tar` crate's unpack, which canonicalizes every entry's parent). A name starting
/// with `.wh.` is taken as a whiteout, as in a layer, and so never copied.
fn unpack_context_from(r: impl std::io::Read, dest: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dest).map_err(|e| unavailable(e.to_string()))?;
    let mut r = std::io::BufReader::new(r);
    // No context at all: docker's CLI always sends one; `curl` may not.
    if std::io::BufRead::fill_buf(&mut r)
        .map_err(|e| unavailable(e.to_string()))?
        .is_empty()
    {
        return Ok(());
    }
    berth_image::layer::apply(
        "build context",
        r,
        dest,
        berth_image::layer::Format::Overlay,
        berth_image::layer::Limits::default(),
    )
    .map(drop)
    .map_err(|e| invalid(format!("the build context is refused: {e}")))
}

/// Removes a scratch directory on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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

/// `$v` and `${v}` substituted in a JSON-form word, nothing else touched.
fn expand_json_word(w: &str, vars: &Env) -> String {
    let mut out = String::new();
    let b: Vec<char> = w.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' && i + 1 < b.len() {
            let (name, next) = if b[i + 1] == '{' {
                match b[i + 2..].iter().position(|c| *c == '}') {
                    Some(end) => (
                        b[i + 2..i + 2 + end].iter().collect::<String>(),
                        i + 3 + end,
                    ),
                    None => (String::new(), i),
                }
            } else {
                let end = b[i + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map_or(b.len(), |p| i + 1 + p);
                (b[i + 1..end].iter().collect::<String>(), end)
            };
            if !name.is_empty() && next > i {
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                i = next;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn need_equals(word: &str) -> EngineError {
    invalid(format!(
        "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
    ))
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
        && !s.is_empty()
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The host path of `rel` resolved inside `root` (for a bind mount's source).
fn resolved(root: &Path, rel: &Path) -> Result<PathBuf, EngineError> {
    let fd: std::os::fd::OwnedFd = std::fs::File::open(root)
        .map_err(|e| unavailable(e.to_string()))?
        .into();
    let p = buildfs::open_in(&fd, rel, false)
        .map_err(|e| invalid(format!("--mount source {}: {e}", rel.display())))?;
    std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&p)
    ))
    .map_err(|e| unavailable(e.to_string()))
}

/// A content hash of a context directory bound into a RUN (so that a change reruns it).
fn dir_hash(p: &Path) -> Result<String, EngineError> {
    let root = p.parent().unwrap_or(Path::new("/"));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(".".into());
    let srcs = buildfs::sources(root, &[name], &|_| false)?;
    let mut es = Vec::new();
    for s in &srcs {
        buildfs::entries(s, Path::new("/"), None, &|_| false, &mut es)?;
    }
    buildfs::content_hash(&es)
}

fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    if n >= 4 && (head[..2] == [0x1f, 0x8b] || head[..4] == [0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

/// Unpacks a (gzip, zstd or plain) tar into the new directory `dest` with the `tar` crate,
/// which refuses absolute names and `..`.
fn unpack_archive(p: &Path, dest: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dest).map_err(|e| unavailable(e.to_string()))?;
    let f = std::fs::File::open(p).map_err(|e| unavailable(e.to_string()))?;
    let (_, r) = berth_image::layer::decompress(std::io::BufReader::new(f))?;
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.unpack(dest).map_err(|e| {
        let mut m = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            m.push_str(&format!(": {s}"));
            src = s.source();
        }
        invalid(format!("ADD: unpack the archive: {m}"))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ports() {
        assert_eq!(duration_ns("30s"), Some(30_000_000_000));
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("5"), None);
        assert_eq!(duration_ns("x"), None);
        assert_eq!(expose_keys("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_keys("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expose_keys("8000-8002").unwrap().len(), 3);
        assert!(expose_keys("http").is_err());
    }

    #[test]
    fn stage_names_and_indexes() {
        let df = dockerfile::parse("FROM a AS one\nFROM b\nFROM c\n", "D").unwrap();
        let s = berth_build::stages(&df, &Env::new(), "D").unwrap();
        assert_eq!(stage_named(&s, "ONE", 2), Some(0));
        assert_eq!(stage_named(&s, "1", 2), Some(1));
        assert_eq!(stage_named(&s, "2", 2), None);
        assert_eq!(stage_named(&s, "busybox", 2), None);
    }
}
