//! The image service: the engine's view of the image store (`berth_image::Store`), which it
//! owns for the daemon's lifetime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_image::config::ImageConfig;
use berth_image::Store;

use crate::error::EngineError;

/// `docker.io/library/busybox@sha256:..` → `busybox@sha256:..`.
pub fn familiar_digest(r: &str) -> String {
    berth_image::ImageRef::parse(r)
        .map(|x| x.familiar())
        .unwrap_or_else(|_| r.to_string())
}

/// An image's tags and repository digests, in their familiar forms (`busybox:latest`).
fn names(store: &Store, img: &berth_image::store::ImageRecord) -> (Vec<String>, Vec<String>) {
    let tags = store
        .tags_of(&img.id)
        .iter()
        .map(|t| t.familiar())
        .collect();
    let digests = img
        .repo_digests
        .iter()
        .map(|r| familiar_digest(r))
        .collect();
    (tags, digests)
}

/// One image in detail (`docker image inspect`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetails {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub comment: String,
    /// RFC 3339, as the image config has it.
    pub created: Option<String>,
    pub author: String,
    /// The container defaults the image carries.
    pub config: berth_image::config::RunConfig,
    pub architecture: String,
    pub os: String,
    /// Bytes of its unpacked layers.
    pub size: u64,
    /// The layers' diff ids, bottom first.
    pub layers: Vec<String>,
    /// The image it was committed from; empty for others.
    pub parent: String,
}

/// One step of an image's history (`docker history`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The image id on the newest step; none (`<missing>`) below it.
    pub id: Option<String>,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// The image's tags, on the newest step.
    pub tags: Option<Vec<String>>,
    /// Bytes the step's layer adds (0 for a step without one).
    pub size: u64,
    pub comment: String,
}

/// One image as `docker images` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    pub labels: BTreeMap<String, String>,
}

/// The fully qualified form of an image reference (`docker.io/library/busybox:latest`), as
/// the CRI names images; None when `name` is not a reference.
pub fn qualified(name: &str) -> Option<String> {
    berth_image::ImageRef::parse(name)
        .ok()
        .map(|r| r.to_string())
}

/// (image id, size, bytes no other image shares).
pub type ImageUsage = (String, u64, u64);

/// The image store, shared by the daemon's request handlers.
#[derive(Debug)]
pub struct ImageService {
    pub(crate) store: Mutex<Store>,
    /// Registry settings for pulls and pushes.
    pub(crate) registry: berth_registry::RegistryOptions,
    /// Pulls and pushes under way: garbage collection leaves ingests and unpack directories
    /// alone while any runs.
    pub(crate) transfers: std::sync::atomic::AtomicUsize,
    /// Image ids the build cache holds (see [`ImageService::set_build_cache`]).
    build_cache: Mutex<std::collections::HashSet<String>>,
    events: std::sync::Arc<crate::events::Events>,
}

impl ImageService {
    /// Opens the store under the daemon's data root.
    pub fn open(
        data_root: &Path,
        registry: berth_registry::RegistryOptions,
        events: std::sync::Arc<crate::events::Events>,
    ) -> Result<Self, EngineError> {
        Ok(ImageService {
            store: Mutex::new(Store::open(data_root)?),
            registry,
            transfers: std::sync::atomic::AtomicUsize::new(0),
            build_cache: Mutex::default(),
            events,
        })
    }

    /// An image event as dockerd sends it: the actor is `id` (an image id, or the reference
    /// of a pull or push) and its `name` attribute `name`.
    pub(crate) fn publish(&self, action: &str, id: &str, name: &str) {
        let attrs = std::collections::BTreeMap::from([("name".to_string(), name.to_string())]);
        self.events
            .publish(crate::events::ObjectType::Image, action, id, attrs);
    }

    /// Every image with its tags, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn list(&self, all: bool) -> Result<Vec<ImageSummary>, EngineError> {
        let store = self.store.lock().expect("image store lock");
        let mut out = Vec::new();
        for img in store.images() {
            if !all && self.is_build_cache(&store, &img.id) {
                continue;
            }
            let cfg = ImageConfig::parse(&store.content().read(&img.id)?)?;
            let size = store.layers_of(img)?.iter().map(|l| l.size).sum();
            let (repo_tags, repo_digests) = names(&store, img);
            out.push(ImageSummary {
                id: img.id.to_string(),
                repo_tags,
                repo_digests,
                created: cfg.created.as_deref().and_then(unix_seconds).unwrap_or(0),
                size,
                labels: cfg.config.labels.clone().unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// An image in detail.
    #[tracing::instrument(level = "debug", skip_all, fields(name = %name))]
    pub fn inspect(&self, name: &str) -> Result<ImageDetails, EngineError> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(name).map_err(not_found(name))?;
        let cfg = ImageConfig::parse(&store.content().read(&img.id)?)?;
        let size: u64 = store.layers_of(img)?.iter().map(|l| l.size).sum();
        let (repo_tags, repo_digests) = names(&store, img);
        Ok(ImageDetails {
            parent: img
                .parent
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            id: img.id.to_string(),
            repo_tags,
            repo_digests,
            comment: cfg.comment.unwrap_or_default(),
            created: cfg.created,
            author: cfg.author.unwrap_or_default(),
            config: cfg.config,
            architecture: cfg.architecture,
            os: cfg.os,
            size,
            layers: cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
        })
    }

    /// Tags image `name` as `repo:tag` (`tag` defaults to latest).
    #[tracing::instrument(level = "debug", skip_all, fields(name = %name))]
    pub fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let id = store.resolve(name).map_err(not_found(name))?.id.clone();
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let r = berth_image::ImageRef::parse(&target)?;
        store.tag(&id, &r)?;
        drop(store);
        self.publish("tag", id.as_str(), &r.familiar());
        Ok(())
    }

    /// Removes a tag or (by id, or with the last tag) the image: returns Docker's
    /// `[{"Untagged": ..}, {"Deleted": ..}]` entries.
    /// `in_use` maps image ids to a container using them (short id, running); an image in use
    /// is not deleted: Docker's conflicts, or with `force` (stopped containers only) its tags go
    /// and the image stays.
    #[tracing::instrument(level = "debug", skip_all, fields(name = %name))]
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &std::collections::HashMap<String, (String, bool)>,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let id = store.resolve(name).map_err(not_found(name))?.id.clone();
        let short = id.hex()[..12].to_string();
        let is_tag = berth_image::ImageRef::parse(name).ok().is_some_and(|r| {
            store
                .tags_of(&id)
                .iter()
                .any(|t| t.to_string() == r.to_string())
        });
        let last = !is_tag || store.tags_of(&id).len() <= 1;
        if let (true, Some((c, running))) = (last, in_use.get(id.as_str())) {
            if *running {
                return Err(crate::error::conflict(format!(
                    "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {c}"
                )));
            }
            if !force {
                return Err(crate::error::conflict(if is_tag {
                    format!("conflict: unable to remove repository reference \"{name}\" (must force) - container {c} is using its referenced image {short}")
                } else {
                    format!("conflict: unable to delete {short} (must be forced) - image is being used by stopped container {c}")
                }));
            }
            let untagged = store.untag(name)?;
            drop(store);
            for _ in &untagged {
                self.publish("untag", id.as_str(), id.as_str());
            }
            return Ok(untagged
                .into_iter()
                .map(|u| {
                    let f = berth_image::ImageRef::parse(&u)
                        .map(|r| r.familiar())
                        .unwrap_or(u);
                    ("Untagged".to_string(), f)
                })
                .collect());
        }
        let (untagged, deleted) = store.remove(name)?;
        drop(store);
        for _ in &untagged {
            self.publish("untag", id.as_str(), id.as_str());
        }
        if let Some(d) = &deleted {
            self.publish("delete", d.as_str(), d.as_str());
        }
        let mut out: Vec<(String, String)> = untagged
            .into_iter()
            .map(|u| {
                (
                    "Untagged".to_string(),
                    berth_image::ImageRef::parse(&u)
                        .map(|r| r.familiar())
                        .unwrap_or(u),
                )
            })
            .collect();
        if let Some(d) = deleted {
            out.push(("Deleted".to_string(), d.to_string()));
        }
        Ok(out)
    }

    /// A handle on the store's content (blobs), usable without holding the store's lock.
    pub(crate) fn content(&self) -> berth_image::content::ContentStore {
        self.store
            .lock()
            .expect("image store lock")
            .content()
            .clone()
    }

    /// A scratch path on the store's filesystem, for spooling an upload before [`Self::load_file`].
    pub fn scratch_path(&self, what: &str) -> std::path::PathBuf {
        self.store
            .lock()
            .expect("image store lock")
            .content()
            .scratch_path(what)
    }

    /// Loads a docker-archive or OCI archive file; returns Docker's progress lines
    /// ("Loaded image: x", or "Loaded image ID: sha256:..." for untagged images).
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn load_file(&self, path: &Path) -> Result<Vec<String>, EngineError> {
        self.load_file_reporting(path, &mut |_| {})
    }

    /// [`Self::load_file`], telling `report` dockerd's `Loading layer` progress for each
    /// layer the store did not have.
    pub fn load_file_reporting(
        &self,
        path: &Path,
        report: &mut dyn FnMut(crate::distribution::Progress),
    ) -> Result<Vec<String>, EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let loaded =
            berth_image::archive::load_file_with(&mut store, path, None, &mut |id, c, t| {
                report(crate::distribution::Progress::bytes(
                    id,
                    "Loading layer",
                    c,
                    t,
                ))
            })?;
        drop(store);
        let mut lines = Vec::new();
        for l in loaded {
            self.publish("load", l.id.as_str(), l.id.as_str());
            if l.tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", l.id));
            }
            lines.extend(l.tags.into_iter().map(|t| format!("Loaded image: {t}")));
        }
        Ok(lines)
    }

    /// Resolves a name to the image's id and config.
    pub fn resolve(&self, name: &str) -> Result<(String, ImageConfig), EngineError> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(name).map_err(not_found(name))?;
        let cfg = ImageConfig::parse(&store.content().read(&img.id)?)?;
        Ok((img.id.to_string(), cfg))
    }

    /// The mounts that give a container of image `id` its root at `target`, writing into
    /// `upper` (with `work` as overlayfs's work directory).
    pub fn rootfs_mounts(
        &self,
        id: &str,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<Vec<berth_image::store::Mount>, EngineError> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(id).map_err(not_found(id))?;
        Ok(store.rootfs_mounts(img, upper, work, target)?)
    }

    /// The directories a container of image `id` sees, top first: `upper`, then the image's
    /// layers from the top down.
    pub fn layer_dirs(&self, id: &str, upper: &Path) -> Result<Vec<PathBuf>, EngineError> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(id).map_err(not_found(id))?;
        let mut out = vec![upper.to_path_buf()];
        for l in store.layers_of(img)?.iter().rev() {
            out.push(store.snapshot_dir(&l.chain_id).join("fs"));
        }
        Ok(out)
    }

    /// `docker history`: the image's history, newest first, with each layer's size.
    #[tracing::instrument(level = "debug", skip_all, fields(name = %name))]
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, EngineError> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(name).map_err(not_found(name))?;
        let cfg = ImageConfig::parse(&store.content().read(&img.id)?)?;
        let mut sizes = store.layers_of(img)?.into_iter().map(|l| l.size);
        let tags: Vec<String> = store
            .tags_of(&img.id)
            .iter()
            .map(|t| t.familiar())
            .collect();
        let mut out = Vec::new();
        let n = cfg.history.len();
        for (i, h) in cfg.history.iter().enumerate() {
            let size = if h.empty_layer {
                0
            } else {
                sizes.next().unwrap_or(0)
            };
            let newest = i + 1 == n;
            out.push(HistoryEntry {
                id: newest.then(|| img.id.to_string()),
                created: h.created.as_deref().and_then(unix_seconds).unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: newest.then(|| tags.clone()),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        Ok(out)
    }

    /// `docker save`: writes a docker-archive of `names` to `path`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn save(&self, names: &[String], path: &Path) -> Result<(), EngineError> {
        let store = self.store.lock().expect("image store lock");
        let mut ids = Vec::new();
        for n in names {
            ids.push(store.resolve(n).map_err(not_found(n))?.id.to_string());
        }
        let f = std::fs::File::create(path)
            .map_err(|e| crate::error::unavailable(format!("save: {e}")))?;
        berth_image::archive::docker::save(&store, names, std::io::BufWriter::new(f))?;
        drop(store);
        for id in ids {
            self.publish("save", &id, &id);
        }
        Ok(())
    }

    /// `docker commit`: a new image from `base` and a container's `upper` dir, with `run` as
    /// its config and `changes` (Dockerfile instructions) applied.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn commit(
        &self,
        base: &str,
        upper: &Path,
        run: serde_json::Value,
        changes: &[String],
        note: &berth_image::store::CommitNote<'_>,
        tag: Option<&str>,
    ) -> Result<String, EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let base_id = store.resolve(base).map_err(not_found(base))?.id.clone();
        let mut run: berth_image::config::RunConfig = serde_json::from_value(run)
            .map_err(|e| crate::error::invalid(format!("commit: container config: {e}")))?;
        berth_image::archive::import::apply_changes(&mut run, changes)?;
        let tags = match tag {
            Some(t) => vec![berth_image::ImageRef::parse(t)?],
            None => Vec::new(),
        };
        Ok(store
            .commit(
                &base_id,
                upper,
                Some(run),
                note,
                &tags,
                crate::model::container::MOUNT_POINTS,
            )?
            .to_string())
    }

    /// `docker import`: a rootfs tarball (plain, gzip or zstd) as a one-layer image.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn import(
        &self,
        path: &Path,
        reference: Option<&str>,
        changes: &[String],
        message: &str,
    ) -> Result<String, EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let r = reference.map(berth_image::ImageRef::parse).transpose()?;
        let f = std::fs::File::open(path)
            .map_err(|e| crate::error::unavailable(format!("import: {e}")))?;
        let loaded = berth_image::archive::import::import(
            &mut store,
            std::io::BufReader::new(f),
            r.as_ref(),
            changes,
            message,
        )?;
        drop(store);
        let id = loaded.id.to_string();
        self.publish("import", &id, &id);
        Ok(id)
    }

    /// The image store's invariants (see [`berth_image::store::Store::check`]). Leftovers of
    /// unpacking are not removed while a pull is under way.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn check(&self, repair: bool) -> Result<Vec<berth_image::store::Finding>, EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let idle = self.transfers.load(std::sync::atomic::Ordering::SeqCst) == 0;
        Ok(store.check(repair, idle)?)
    }

    /// `docker image prune`: removes images that no container uses — untagged ones, or with
    /// `all` every unused one — then the layers and blobs nothing refers to any more.
    /// Returns Docker's entries and the bytes reclaimed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn prune(
        &self,
        all: bool,
        in_use: &std::collections::HashMap<String, (String, bool)>,
    ) -> Result<(Vec<(String, String)>, u64), EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let before = store.df()?;
        let victims: Vec<berth_image::Digest> = store
            .images()
            .into_iter()
            .filter(|i| !in_use.contains_key(i.id.as_str()))
            .filter(|i| all || store.tags_of(&i.id).is_empty())
            .filter(|i| all || !self.is_build_cache(&store, &i.id))
            .map(|i| i.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in victims {
            let (untagged, deleted) = store.remove(id.as_str())?;
            out.extend(untagged.into_iter().map(|u| {
                let f = berth_image::ImageRef::parse(&u)
                    .map(|r| r.familiar())
                    .unwrap_or(u);
                ("Untagged".to_string(), f)
            }));
            if let Some(d) = deleted {
                out.push(("Deleted".to_string(), d.to_string()));
            }
        }
        if self.transfers.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            store.gc()?;
        } else {
            tracing::info!(
                "a pull or push is under way: unreferenced blobs are kept until the next prune"
            );
        }
        let after = store.df()?;
        let reclaimed = (before.layers_size + before.blobs_size)
            .saturating_sub(after.layers_size + after.blobs_size);
        Ok((out, reclaimed))
    }

    /// Disk usage for `docker system df`: (layers size, per-image (id, size, unique size)).
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn df(&self) -> Result<(u64, Vec<ImageUsage>), EngineError> {
        let store = self.store.lock().expect("image store lock");
        let df = store.df()?;
        Ok((
            df.layers_size,
            df.images
                .into_iter()
                .map(|u| (u.id.to_string(), u.size, u.unique))
                .collect(),
        ))
    }

    /// A build step's image (see `Store::commit_step`): `base` None is `FROM scratch`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn commit_step(
        &self,
        base: Option<&str>,
        upper: Option<&Path>,
        config: serde_json::Value,
        history: serde_json::Value,
        skip: &[&str],
    ) -> Result<String, EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let base = match base {
            Some(b) => Some(store.resolve(b).map_err(not_found(b))?.id.clone()),
            None => None,
        };
        Ok(store
            .commit_step(base.as_ref(), upper, config, history, skip)?
            .to_string())
    }

    /// The image's whole config document, and its id.
    pub(crate) fn config_json(
        &self,
        name: &str,
    ) -> Result<(String, serde_json::Value), EngineError> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(name).map_err(not_found(name))?;
        let v = serde_json::from_slice(&store.content().read(&img.id)?)
            .map_err(|e| crate::error::unavailable(format!("image config: {e}")))?;
        Ok((img.id.to_string(), v))
    }

    /// Whether the image with this exact id is in the store.
    pub fn has(&self, id: &str) -> bool {
        let store = self.store.lock().expect("image store lock");
        store.images().iter().any(|i| i.id.as_str() == id)
    }

    /// Tags the image `id` as `name` (`repo[:tag]`).
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn tag_id(&self, id: &str, name: &str) -> Result<(), EngineError> {
        let r = berth_image::ImageRef::parse(name)
            .map_err(|e| crate::error::invalid(format!("invalid tag {name:?}: {e}")))?;
        let mut store = self.store.lock().expect("image store lock");
        let id = store.resolve(id).map_err(not_found(id))?.id.clone();
        Ok(store.tag(&id, &r)?)
    }

    /// Untagged images the build cache holds: hidden from `images` unless `-a`, and left
    /// to `builder prune` rather than `image prune`.
    pub fn set_build_cache(&self, ids: std::collections::HashSet<String>) {
        *self.build_cache.lock().expect("build cache lock") = ids;
    }

    fn is_build_cache(&self, store: &Store, id: &berth_image::Digest) -> bool {
        store.tags_of(id).is_empty()
            && self
                .build_cache
                .lock()
                .expect("build cache lock")
                .contains(id.as_str())
    }

    /// Removes those of `ids` that are untagged and no container uses (the build cache's
    /// images, for `builder prune`), then what nothing refers to. Returns the ids removed
    /// and the bytes reclaimed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn remove_untagged(
        &self,
        ids: &[String],
        in_use: &std::collections::HashMap<String, (String, bool)>,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let mut store = self.store.lock().expect("image store lock");
        let before = store.df()?;
        let mut out = Vec::new();
        // Images share layers by chain id, not by parent links: any order will do.
        for id in ids {
            let Ok(img) = store.resolve(id) else { continue };
            let d = img.id.clone();
            if !store.tags_of(&d).is_empty() || in_use.contains_key(d.as_str()) {
                continue;
            }
            if let Ok((_, Some(deleted))) = store.remove(d.as_str()) {
                out.push(deleted.to_string());
            }
        }
        if self.transfers.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            store.gc()?;
        }
        let after = store.df()?;
        let reclaimed = (before.layers_size + before.blobs_size)
            .saturating_sub(after.layers_size + after.blobs_size);
        Ok((out, reclaimed))
    }

    /// For `system df`'s build cache: the layer an image's last step added (chain id and
    /// size), or None when that step added none.
    pub fn top_layer(&self, id: &str) -> Option<(String, u64)> {
        let store = self.store.lock().expect("image store lock");
        let img = store.resolve(id).ok()?;
        // A metadata step's image adds no layer: its top one is its parent's.
        let cfg: serde_json::Value =
            serde_json::from_slice(&store.content().read(&img.id).ok()?).ok()?;
        let last = cfg["history"]
            .as_array()
            .and_then(|h| h.last())
            .cloned()
            .unwrap_or_default();
        if last["empty_layer"].as_bool() == Some(true) {
            return None;
        }
        let layers = store.layers_of(img).ok()?;
        layers.last().map(|l| (l.chain_id.to_string(), l.size))
    }

    /// How many images there are.
    pub fn count(&self) -> usize {
        self.store.lock().expect("image store lock").images().len()
    }
}

/// Docker's wording for a missing image.
fn not_found(name: &str) -> impl Fn(berth_image::Error) -> EngineError + '_ {
    move |e| match e {
        berth_image::Error::NotFound(_) => {
            crate::error::not_found(format!("No such image: {name}"))
        }
        other => other.into(),
    }
}

/// `2026-01-02T03:04:05.123Z` (or with `+00:00`) → Unix seconds; other offsets are applied.
pub fn unix_seconds(t: &str) -> Option<i64> {
    berth_shim::parse_rfc3339(t).map(|n| n.div_euclid(1_000_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2023-11-14T22:13:20.000000123Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            unix_seconds("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(unix_seconds("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(unix_seconds("yesterday"), None);
    }
}
