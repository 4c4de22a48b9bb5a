//! The image store: blobs (content store), unpacked layers (snapshots keyed by chain id,
//! shared across images) and the metadata that ties them to image ids and tags.
//!
//! On disk, under the data root:
//! ```text
//! content/blobs/sha256/<hex>    blobs (configs, manifests, layers as received)
//! content/ingest/<ref>/data     partial blobs, resumable
//! snapshots/<chain hex>/fs      an unpacked layer (overlay format, or a full copy)
//! snapshots/tmp-*               layers being unpacked; removed when the store opens
//! images.json                   metadata, schema below, replaced atomically
//! lock                          flock: one writer at a time
//! ```
//! `images.json` is `{"schema": 1, "images": {id: ImageRecord}, "tags": {ref: id},
//! "layers": {chain id: LayerRecord}}`; a file with a newer schema is refused, never rewritten.
//! Every change is written to a temporary file, fsynced and renamed, and blobs and snapshots
//! are committed before the metadata that names them: a kill at any point leaves a store that
//! opens as it was before the interrupted operation (plus garbage that `gc` removes).
//!
//! Rooms: `check` (the consistency check and its repairs), `unpack` (layers prepared
//! outside the store's lock), `commit` (images from a container's changes), `gc` (disk usage
//! and garbage collection).

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{chain_ids, ImageConfig};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::layer::{self, Format, Limits};
use crate::reference::ImageRef;

mod check;
mod commit;
mod gc;
mod topdir;
mod unpack;

pub use check::Finding;
pub use unpack::Unpacker;
use unpack::{copy_tree, ReadAhead};

pub const SCHEMA: u32 = 1;

/// One image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id: the digest of the config blob.
    pub id: Digest,
    /// Layer blobs, bottom first, as received (compressed or not).
    pub layers: Vec<Digest>,
    /// Media type of each layer blob.
    pub layer_media_types: Vec<String>,
    /// The manifest blob this image came with, if any (OCI layouts, registries).
    #[serde(default)]
    pub manifest: Option<Digest>,
    /// When it entered the store (RFC 3339).
    pub loaded: String,
    /// `repository@digest` of each registry manifest (or index) it was pulled by or pushed as.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// The image it was committed from (`docker commit`), as dockerd's `Parent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
}

/// One unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// The blob it was unpacked from.
    pub blob: Digest,
    /// Bytes of the uncompressed tar (the diff id's stream).
    pub tar_size: u64,
    /// Bytes of file content.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Metadata {
    schema: u32,
    /// "overlay" or "vfs": the snapshot format, fixed when the store is created.
    #[serde(default)]
    driver: Option<String>,
    images: BTreeMap<String, ImageRecord>,
    tags: BTreeMap<String, Digest>,
    layers: BTreeMap<String, LayerRecord>,
}

impl berth_durable::Record for Metadata {
    const KIND: &'static str = "image store metadata";
    const SCHEMA: u32 = SCHEMA;
}

/// A blob unpacked ahead of time by [`Store::preunpack`].
#[derive(Debug)]
pub struct Prepared {
    dir: PathBuf,
    blob: Digest,
    applied: layer::Applied,
}

impl Prepared {
    /// Removes an unused pre-unpacked layer.
    pub fn discard(self) {
        let _ = remove_tree(&self.dir);
    }
}

/// A layer to make available: its blob is in the content store.
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub blob: Digest,
    pub media_type: String,
    pub diff_id: Digest,
}

/// What `docker commit -m … --author …` records in the new image.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitNote<'a> {
    pub comment: &'a str,
    pub author: &'a str,
}

/// The image store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    content: ContentStore,
    meta: Metadata,
    format: Format,
    limits: Limits,
    _lock: std::fs::File,
}

/// Disk usage of one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageUsage {
    pub id: Digest,
    /// Bytes of all its unpacked layers.
    pub size: u64,
    /// Bytes in layers other images use too.
    pub shared: u64,
    /// Bytes only this image uses.
    pub unique: u64,
}

/// Disk usage of the store.
#[derive(Debug, Clone, Serialize)]
pub struct Df {
    pub images: Vec<ImageUsage>,
    /// Bytes of unpacked layers (each counted once).
    pub layers_size: u64,
    /// Bytes of blobs (configs, manifests, layers as received).
    pub blobs_size: u64,
}

/// A mount to perform for a container's root filesystem (the store never mounts anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub fstype: String,
    pub source: String,
    pub target: PathBuf,
    pub options: Vec<String>,
}

fn overlay_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|s| s.lines().any(|l| l.trim_end().ends_with("overlay")))
}

impl Store {
    /// Opens (creating) the store under `root`, taking its lock, with overlay snapshots when
    /// the kernel has overlayfs and copies ("vfs") otherwise.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with_driver(root, None)
    }

    /// Like [`Store::open`] with an explicit driver, "overlay" or "vfs". A store keeps the
    /// driver it was created with; asking for another one is an error.
    pub fn open_with_driver(root: &Path, driver: Option<&str>) -> Result<Self> {
        std::fs::create_dir_all(root.join("snapshots"))
            .ctx(|| format!("create {}", root.display()))?;
        topdir::mark(&root.join("snapshots"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))
            .ctx(|| "open lock".into())?;
        // SAFETY: flock on a descriptor we own; blocks until the other writer is done.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::Io {
                context: "lock the image store".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        let content = ContentStore::open(&root.join("content"))?;
        let meta_path = root.join("images.json");
        let meta = match berth_durable::load::<Metadata>(&meta_path) {
            Ok(m) => m,
            Err(e @ berth_durable::Error::Newer { .. }) => {
                return Err(Error::Archive(e.to_string()))
            }
            Err(e) if !e.is_not_found() => {
                return Err(Error::Io {
                    context: "open the image store".into(),
                    source: std::io::Error::other(e),
                })
            }
            Err(_) => Metadata {
                schema: SCHEMA,
                driver: None,
                images: BTreeMap::new(),
                tags: BTreeMap::new(),
                layers: BTreeMap::new(),
            },
        };
        // Half-unpacked layers from an interrupted run.
        for e in std::fs::read_dir(root.join("snapshots"))
            .ctx(|| "read snapshots".into())?
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = remove_tree(&e.path());
            }
        }
        let mut meta = meta;
        let wanted = match driver {
            Some("overlay") if !overlay_supported() => {
                return Err(Error::Archive(
                    "the overlay storage driver needs overlayfs, which this kernel lacks".into(),
                ))
            }
            Some(d @ ("overlay" | "vfs")) => Some(d.to_string()),
            Some(other) => {
                return Err(Error::Archive(format!(
                    "unknown storage driver {other:?} (overlay, vfs)"
                )))
            }
            None => None,
        };
        let driver = match (&meta.driver, wanted) {
            (Some(have), Some(want)) if *have != want => {
                return Err(Error::Archive(format!(
                    "this store uses the {have} storage driver, not {want}"
                )))
            }
            (Some(have), _) => have.clone(),
            (None, Some(want)) => want,
            (None, None) => if overlay_supported() {
                "overlay"
            } else {
                "vfs"
            }
            .to_string(),
        };
        meta.driver = Some(driver.clone());
        Ok(Store {
            root: root.to_path_buf(),
            content,
            meta,
            format: if driver == "overlay" {
                Format::Overlay
            } else {
                Format::Plain
            },
            limits: Limits::default(),
            _lock: lock,
        })
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn save(&self) -> Result<()> {
        berth_durable::save(&self.root.join("images.json"), &self.meta).map_err(|e| Error::Io {
            context: "save the image store's metadata".into(),
            source: std::io::Error::other(e),
        })
    }

    /// Where the snapshot with chain id `chain` lives (its tree is in `fs/`).
    pub fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain.hex())
    }

    /// Unpacks a blob that is probably a layer into a private directory before its place in an
    /// image is known (overlay format only: such layers do not depend on their parents). A
    /// loader calls this as soon as a blob is committed, so unpacking overlaps reading the rest
    /// of the archive; [`Store::ensure_layers_prepared`] then only renames the result into place.
    pub fn preunpack(&self, blob: &Digest) -> Result<Prepared> {
        let f = self.content.open_blob(blob)?;
        self.unpacker()?.prepare(blob, ReadAhead::spawn(f))
    }

    /// A handle that unpacks layer streams into private directories without holding the store
    /// (overlay format only). A registry pull unpacks each layer while it downloads, several
    /// at once, and takes the store only to record the image.
    pub fn unpacker(&self) -> Result<Unpacker> {
        if self.format != Format::Overlay {
            return Err(Error::Archive(
                "pre-unpacking needs overlay snapshots".into(),
            ));
        }
        Ok(Unpacker {
            snapshots: self.root.join("snapshots"),
            limits: self.limits,
        })
    }

    /// Whether the layer with this chain id is unpacked.
    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.meta.layers.contains_key(chain.as_str()) && self.snapshot_dir(chain).exists()
    }

    /// Adds `repository@digest` to an image's repo digests (once).
    pub fn add_repo_digest(&mut self, id: &Digest, repo_digest: &str) -> Result<()> {
        let img = self
            .meta
            .images
            .get_mut(id.as_str())
            .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
        if !img.repo_digests.iter().any(|r| r == repo_digest) {
            img.repo_digests.push(repo_digest.to_string());
            self.save()?;
        }
        Ok(())
    }

    /// Like [`Store::ensure_layers`], taking layers already unpacked by [`Store::preunpack`].
    pub fn ensure_layers_prepared(
        &mut self,
        layers: &[LayerSource],
        prepared: &mut Vec<Prepared>,
    ) -> Result<Vec<Digest>> {
        let chains = chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
        for (i, (l, c)) in layers.iter().zip(&chains).enumerate() {
            if self.meta.layers.contains_key(c.as_str()) && self.snapshot_dir(c).exists() {
                continue;
            }
            if let Some(pos) = prepared
                .iter()
                .position(|p| p.blob == l.blob && p.applied.diff_id == l.diff_id)
            {
                let p = prepared.remove(pos);
                let dest = self.snapshot_dir(c);
                let _ = remove_tree(&dest);
                std::fs::rename(&p.dir, &dest).ctx(|| format!("commit layer {c}"))?;
                let rec = LayerRecord {
                    chain_id: c.clone(),
                    diff_id: l.diff_id.clone(),
                    parent: i.checked_sub(1).map(|p| chains[p].clone()),
                    blob: l.blob.clone(),
                    tar_size: p.applied.tar_size,
                    size: p.applied.size,
                };
                self.meta.layers.insert(c.to_string(), rec);
            }
        }
        self.ensure_layers(layers)
    }

    /// Unpacks every missing layer of an image (in parallel: in overlay format layers are
    /// independent), checks each diff id, and records them. Returns the chain ids.
    pub fn ensure_layers(&mut self, layers: &[LayerSource]) -> Result<Vec<Digest>> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let mut todo = Vec::new();
        for (i, (l, c)) in layers.iter().zip(&chains).enumerate() {
            if !self.meta.layers.contains_key(c.as_str()) || !self.snapshot_dir(c).exists() {
                todo.push((i, l.clone(), c.clone()));
            }
        }
        if self.format == Format::Plain {
            // Copies depend on their parent: unpack in order.
            for (i, l, c) in todo {
                let parent = i.checked_sub(1).map(|p| chains[p].clone());
                let rec = self.unpack(&l, &c, parent.as_ref())?;
                self.meta.layers.insert(c.to_string(), rec);
            }
        } else {
            let workers = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(1);
            let queue = std::sync::Mutex::new(todo.into_iter());
            let results = std::sync::Mutex::new(Vec::new());
            let this = &*self;
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| loop {
                        let next = queue.lock().expect("queue").next();
                        let Some((i, l, c)) = next else { break };
                        let parent = i.checked_sub(1).map(|p| chains[p].clone());
                        let r = this.unpack(&l, &c, parent.as_ref());
                        results.lock().expect("results").push(r);
                    });
                }
            });
            for r in results.into_inner().expect("results") {
                let rec = r?;
                self.meta.layers.insert(rec.chain_id.to_string(), rec);
            }
        }
        Ok(chains)
    }

    /// Unpacks one layer into a private directory, verifies it, then commits it by rename.
    fn unpack(
        &self,
        l: &LayerSource,
        chain: &Digest,
        parent: Option<&Digest>,
    ) -> Result<LayerRecord> {
        let tmp = self.root.join("snapshots").join(format!(
            "tmp-{}-{}",
            chain.short(),
            std::process::id()
        ));
        let _ = remove_tree(&tmp);
        let fs = tmp.join("fs");
        let r = (|| {
            if self.format == Format::Plain {
                std::fs::create_dir_all(&tmp).ctx(|| format!("create {}", tmp.display()))?;
                match parent {
                    Some(p) => copy_tree(&self.snapshot_dir(p).join("fs"), &fs)?,
                    None => std::fs::create_dir(&fs).ctx(|| format!("create {}", fs.display()))?,
                }
            } else {
                std::fs::create_dir_all(&fs).ctx(|| format!("create {}", fs.display()))?;
            }
            let blob = self.content.open_blob(&l.blob)?;
            // Reading runs on its own thread, decompression and extraction on this one.
            let reader = ReadAhead::spawn(blob);
            let name = l.diff_id.short().to_string();
            let applied = layer::apply(&name, reader, &fs, self.format, self.limits)?;
            if applied.diff_id != l.diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {}", l.blob),
                    expected: l.diff_id.to_string(),
                    actual: applied.diff_id.to_string(),
                });
            }
            let dest = self.snapshot_dir(chain);
            let _ = remove_tree(&dest);
            std::fs::rename(&tmp, &dest).ctx(|| format!("commit layer {chain}"))?;
            Ok(LayerRecord {
                chain_id: chain.clone(),
                diff_id: l.diff_id.clone(),
                parent: parent.cloned(),
                blob: l.blob.clone(),
                tar_size: applied.tar_size,
                size: applied.size,
            })
        })();
        if r.is_err() {
            let _ = remove_tree(&tmp);
        }
        r
    }

    /// Records an image whose config and layer blobs are in the content store, unpacking its
    /// layers, and tags it.
    pub fn add_image(
        &mut self,
        config: &Digest,
        layers: &[LayerSource],
        manifest: Option<Digest>,
        tags: &[ImageRef],
    ) -> Result<Digest> {
        self.add_image_prepared(config, layers, manifest, tags, &mut Vec::new())
    }

    /// [`Store::add_image`] with layers unpacked ahead of time by [`Store::preunpack`].
    pub fn add_image_prepared(
        &mut self,
        config: &Digest,
        layers: &[LayerSource],
        manifest: Option<Digest>,
        tags: &[ImageRef],
        prepared: &mut Vec<Prepared>,
    ) -> Result<Digest> {
        let cfg = ImageConfig::parse(&self.content.read(config)?)?;
        let want: Vec<&Digest> = cfg.rootfs.diff_ids.iter().collect();
        let have: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
        if want != have {
            return Err(Error::Archive(format!(
                "image {config}: its layers do not match the config's rootfs.diff_ids"
            )));
        }
        self.ensure_layers_prepared(layers, prepared)?;
        // What a record of the same image already had survives a re-add (a pull or load of
        // it again): its repo digests and the image it was committed from.
        let old = self.meta.images.get(config.as_str());
        let rec = ImageRecord {
            id: config.clone(),
            layers: layers.iter().map(|l| l.blob.clone()).collect(),
            layer_media_types: layers.iter().map(|l| l.media_type.clone()).collect(),
            manifest,
            loaded: now_rfc3339(),
            repo_digests: old.map(|o| o.repo_digests.clone()).unwrap_or_default(),
            parent: old.and_then(|o| o.parent.clone()),
        };
        self.meta.images.insert(config.to_string(), rec);
        for t in tags {
            self.meta.tags.insert(t.to_string(), config.clone());
        }
        self.save()?;
        Ok(config.clone())
    }

    /// Finds an image by reference, full id, or unique id prefix.
    pub fn resolve(&self, name: &str) -> Result<&ImageRecord> {
        if let Ok(r) = ImageRef::parse(name) {
            if let Some(id) = self.meta.tags.get(&r.to_string()) {
                return self
                    .meta
                    .images
                    .get(id.as_str())
                    .ok_or_else(|| Error::NotFound(format!("image {name}")));
            }
            if let Some(d) = &r.digest {
                let want = format!("{}@{d}", r.repository());
                if let Some(img) = self
                    .meta
                    .images
                    .values()
                    .find(|i| i.repo_digests.contains(&want))
                {
                    return Ok(img);
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<&ImageRecord> = self
                .meta
                .images
                .values()
                .filter(|i| i.id.hex().starts_with(hex))
                .collect();
            match matches.len() {
                1 => return Ok(matches[0]),
                n if n > 1 => {
                    return Err(Error::Conflict(format!(
                        "image id prefix {name} is ambiguous"
                    )))
                }
                _ => {}
            }
        }
        Err(Error::NotFound(format!("No such image: {name}")))
    }

    /// Every image.
    pub fn images(&self) -> Vec<&ImageRecord> {
        self.meta.images.values().collect()
    }

    /// Tags pointing at image `id`.
    pub fn tags_of(&self, id: &Digest) -> Vec<ImageRef> {
        self.meta
            .tags
            .iter()
            .filter(|(_, v)| *v == id)
            .filter_map(|(k, _)| ImageRef::parse(k).ok())
            .collect()
    }

    /// Adds a tag.
    pub fn tag(&mut self, id: &Digest, r: &ImageRef) -> Result<()> {
        if !self.meta.images.contains_key(id.as_str()) {
            return Err(Error::NotFound(format!("image {id}")));
        }
        self.meta.tags.insert(r.to_string(), id.clone());
        self.save()
    }

    /// Removes a tag, or with an id the image and all its tags. Blobs and layers stay until
    /// [`Store::gc`]. Returns what was untagged and whether the image was deleted.
    /// Removes tags only: `name` itself if it is a tag, else every tag of the image it names.
    /// The image stays (for images that containers still use).
    pub fn untag(&mut self, name: &str) -> Result<Vec<String>> {
        let id = self.resolve(name)?.id.clone();
        let refs: Vec<String> = match ImageRef::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|r| self.meta.tags.contains_key(r))
        {
            Some(r) => vec![r],
            None => self
                .meta
                .tags
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect(),
        };
        for r in &refs {
            self.meta.tags.remove(r);
        }
        self.save()?;
        Ok(refs)
    }

    pub fn remove(&mut self, name: &str) -> Result<(Vec<String>, Option<Digest>)> {
        let id = self.resolve(name)?.id.clone();
        let by_ref = ImageRef::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|r| self.meta.tags.contains_key(r));
        let mut untagged = Vec::new();
        match by_ref {
            Some(r) => {
                self.meta.tags.remove(&r);
                untagged.push(r);
            }
            None => {
                let refs: Vec<String> = self
                    .meta
                    .tags
                    .iter()
                    .filter(|(_, v)| **v == id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for r in refs {
                    self.meta.tags.remove(&r);
                    untagged.push(r);
                }
            }
        }
        let still_tagged = self.meta.tags.values().any(|v| *v == id);
        let deleted = if still_tagged {
            None
        } else {
            self.meta.images.remove(id.as_str());
            Some(id)
        };
        self.save()?;
        Ok((untagged, deleted))
    }

    /// The layer records of an image, bottom first.
    pub fn layers_of(&self, image: &ImageRecord) -> Result<Vec<&LayerRecord>> {
        let cfg = ImageConfig::parse(&self.content.read(&image.id)?)?;
        cfg.chain_ids()
            .iter()
            .map(|c| {
                self.meta
                    .layers
                    .get(c.as_str())
                    .ok_or_else(|| Error::NotFound(format!("layer {c}")))
            })
            .collect()
    }

    /// The mounts that give a container a writable root on top of `image`: `upper` and `work`
    /// must be empty directories of the container's. Nothing is mounted here.
    pub fn rootfs_mounts(
        &self,
        image: &ImageRecord,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<Vec<Mount>> {
        let layers = self.layers_of(image)?;
        let lowers: Vec<String> = layers
            .iter()
            .rev()
            .map(|l| {
                self.snapshot_dir(&l.chain_id)
                    .join("fs")
                    .display()
                    .to_string()
            })
            .collect();
        if self.format == Format::Plain {
            // The copy fallback: the container gets its own full copy in `upper`, bound on the
            // target. The copy is the one side effect here, made before any mount, and only
            // once: `upper` then holds the container's changes, which a later start (or a
            // mount for `cp`/`export`) must keep. It is copied beside and renamed into place,
            // so a non-empty `upper` is always a complete copy.
            match layers.last() {
                Some(top) => {
                    let fresh = std::fs::read_dir(upper).map_or(true, |mut d| d.next().is_none());
                    if fresh {
                        let tmp = upper.with_extension("copying");
                        remove_tree(&tmp)?;
                        copy_tree(&self.snapshot_dir(&top.chain_id).join("fs"), &tmp)?;
                        remove_tree(upper)?;
                        std::fs::rename(&tmp, upper)
                            .ctx(|| format!("rename {} into place", tmp.display()))?;
                    }
                }
                None => {
                    std::fs::create_dir_all(upper).ctx(|| format!("create {}", upper.display()))?
                }
            }
            return Ok(vec![Mount {
                fstype: "bind".into(),
                source: upper.display().to_string(),
                target: target.to_path_buf(),
                options: vec!["rbind".into(), "rw".into()],
            }]);
        }
        if lowers.is_empty() {
            return Err(Error::Archive(
                "an image without layers cannot be mounted with overlayfs".into(),
            ));
        }
        Ok(vec![Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            target: target.to_path_buf(),
            options: vec![
                format!("lowerdir={}", lowers.join(":")),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
        }])
    }
}

/// Removes a tree that may contain read-only directories.
pub(crate) fn remove_tree(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            let st = std::process::Command::new("chmod")
                .arg("-R")
                .arg("u+rwx")
                .arg(p)
                .status();
            let _ = st;
            std::fs::remove_dir_all(p).ctx(|| format!("remove {}", p.display()))
        }
    }
}

pub(crate) fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64)
}

/// Unix seconds as `2026-01-02T03:04:05Z`.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("a UTC time formats")
}
