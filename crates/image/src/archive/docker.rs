//! docker-archive: the format `docker save` and `podman save` write. A tar holding
//! `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`), the config JSON files and one tar per
//! layer (`<id>/layer.tar`, `<digest>.tar`, or `blobs/sha256/<hex>` from newer Docker).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ingest, Loaded};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::layer;
use crate::reference::ImageRef;
use crate::store::{LayerSource, Store};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ManifestEntry {
    pub config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// Lexically normalises an archive path ("./a/../b" → "b"); None if it escapes.
pub(crate) fn norm(p: &Path) -> Option<String> {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            _ => return None,
        }
    }
    Some(
        out.iter()
            .map(|s| s.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// An archive entry's name as written (`norm` makes it a path inside the archive).
pub(crate) fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<PathBuf> {
    Ok(entry
        .path()
        .map_err(|e| Error::Archive(format!("bad entry name: {e}")))?
        .into_owned())
}

/// Loads every image of a docker-archive into the store.
pub fn load(store: &mut Store, reader: impl Read) -> Result<Vec<Loaded>> {
    load_with(store, reader, &HashMap::new(), &mut |_, _, _| {})
}

/// [`load`], telling `progress` the bytes of each entry that `ids` names (entry path →
/// the short id to report it by; see [`super::progress::layer_ids`]) as they are read.
pub fn load_with(
    store: &mut Store,
    reader: impl Read,
    ids: &HashMap<String, String>,
    mut progress: super::progress::LoadProgress<'_>,
) -> Result<Vec<Loaded>> {
    let mut files: HashMap<String, Digest> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut manifest: Option<Vec<u8>> = None;
    let mut prepared: Vec<crate::store::Prepared> = Vec::new();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(1);
    let shared: &Store = store;
    type Job<'s> = std::thread::ScopedJoinHandle<'s, Result<crate::store::Prepared>>;
    let read: Result<()> = std::thread::scope(|scope| {
        // Each blob is unpacked on a worker as soon as it is committed, while this thread
        // goes on reading the archive.
        let mut jobs: std::collections::VecDeque<Job<'_>> = Default::default();
        let collect = |jobs: &mut std::collections::VecDeque<Job<'_>>,
                       prepared: &mut Vec<crate::store::Prepared>| {
            if let Some(j) = jobs.pop_front() {
                // A blob that is not a layer simply fails to unpack: it is not used.
                if let Ok(Ok(p)) = j.join() {
                    prepared.push(p);
                }
            }
        };
        let mut ar = tar::Archive::new(reader);
        let mut n = 0;
        let entries = ar
            .entries()
            .map_err(|e| Error::Archive(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::Archive(format!("corrupt archive: {e}")))?;
            let raw = entry_name(&entry)?;
            let Some(path) = norm(&raw) else {
                return Err(Error::Archive(format!(
                    "entry {:?} escapes the archive",
                    raw.display().to_string()
                )));
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let base = path.rsplit('/').next().unwrap_or_default();
                    if path == "manifest.json" {
                        let mut v = Vec::new();
                        entry
                            .by_ref()
                            .take(64 << 20)
                            .read_to_end(&mut v)
                            .ctx(|| "read manifest.json".into())?;
                        manifest = Some(v);
                    } else if path == "repositories"
                        || base == "VERSION"
                        || base == "json"
                        || path == "oci-layout"
                        || path == "index.json"
                    {
                        // Legacy v1 metadata, or OCI metadata we do not need.
                        std::io::copy(&mut entry, &mut std::io::sink())
                            .ctx(|| format!("read {path}"))?;
                    } else {
                        n += 1;
                        let size = entry.header().size().ok();
                        let ingest_name = format!("load-{}-{n}", std::process::id());
                        let d = match ids.get(&path) {
                            Some(id) => {
                                let total = size.unwrap_or(0);
                                let mut r = super::progress::Watch::new(
                                    &mut entry,
                                    id,
                                    total,
                                    &mut progress,
                                );
                                ingest(shared, &ingest_name, &mut r, None, size)?
                            }
                            None => ingest(shared, &ingest_name, &mut entry, None, size)?,
                        };
                        if !path.ends_with(".json") {
                            while jobs.len() >= workers {
                                collect(&mut jobs, &mut prepared);
                            }
                            let blob = d.clone();
                            jobs.push_back(scope.spawn(move || shared.preunpack(&blob)));
                        }
                        files.insert(path, d);
                    }
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    // docker save links identical layers to one copy.
                    if let Ok(Some(t)) = entry.link_name() {
                        let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                            Path::new(&path).parent().unwrap_or(Path::new("")).join(t)
                        } else {
                            t.into_owned()
                        };
                        if let Some(t) = norm(&base) {
                            links.insert(path, t);
                        }
                    }
                }
                _ => {}
            }
        }
        while !jobs.is_empty() {
            collect(&mut jobs, &mut prepared);
        }
        Ok(())
    });
    let discard = |prepared: Vec<crate::store::Prepared>| {
        prepared
            .into_iter()
            .for_each(crate::store::Prepared::discard)
    };
    if let Err(e) = read {
        discard(prepared);
        return Err(e);
    }
    let manifest =
        manifest.ok_or_else(|| Error::Archive("no manifest.json: not a docker-archive".into()))?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&manifest).ctx(|| "parse manifest.json".into())?;
    let find = |p: &str| -> Result<Digest> {
        let mut p = norm(Path::new(p))
            .ok_or_else(|| Error::Archive(format!("manifest path {p:?} escapes the archive")))?;
        for _ in 0..16 {
            if let Some(d) = files.get(&p) {
                return Ok(d.clone());
            }
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(Error::Archive(format!(
            "manifest.json names {p:?}, which the archive does not contain"
        )))
    };
    let mut out = Vec::new();
    for m in entries {
        let config = find(&m.config)?;
        // docker save names the config after its digest: hold it to that name.
        let stem = m
            .config
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".json");
        if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) && stem != config.hex() {
            return Err(Error::DigestMismatch {
                what: format!("config {}", m.config),
                expected: format!("sha256:{stem}"),
                actual: config.to_string(),
            });
        }
        let cfg = ImageConfig::parse(&store.content().read(&config)?)?;
        if cfg.rootfs.diff_ids.len() != m.layers.len() {
            return Err(Error::Archive(format!(
                "image {config}: {} layers in manifest.json, {} in the config",
                m.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (p, diff_id) in m.layers.iter().zip(&cfg.rootfs.diff_ids) {
            let blob = find(p)?;
            layers.push(LayerSource {
                media_type: super::layer_media_type(store, &blob)?.to_string(),
                blob,
                diff_id: diff_id.clone(),
            });
        }
        let tags: Vec<ImageRef> = m
            .repo_tags
            .iter()
            .flatten()
            .map(|t| ImageRef::parse(t))
            .collect::<Result<_>>()?;
        let id = match store.add_image_prepared(&config, &layers, None, &tags, &mut prepared) {
            Ok(id) => id,
            Err(e) => {
                discard(prepared);
                return Err(e);
            }
        };
        out.push(Loaded {
            id,
            tags: tags.iter().map(|t| t.familiar()).collect(),
        });
    }
    discard(prepared);
    Ok(out)
}

/// Writes the named images (references or ids) as a docker-archive that `docker load` and
/// `podman load` accept: uncompressed `<diff id>/layer.tar` files, configs, manifest.json.
pub fn save(store: &Store, names: &[String], writer: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(writer);
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut written = std::collections::HashSet::new();
    for name in names {
        let img = store.resolve(name)?.clone();
        let raw = store.content().read(&img.id)?;
        let cfg_name = format!("{}.json", img.id.hex());
        if written.insert(cfg_name.clone()) {
            append(&mut b, &cfg_name, raw.len() as u64, &raw[..])?;
        }
        let mut layer_paths = Vec::new();
        for l in store.layers_of(&img)? {
            let p = format!("{}/layer.tar", l.diff_id.hex());
            if written.insert(p.clone()) {
                let (_, r) = layer::decompress(store.content().open_blob(&l.blob)?)?;
                append(&mut b, &p, l.tar_size, r)?;
            }
            layer_paths.push(p);
        }
        // As docker: an image saved by its id carries no tags (its load reports the id).
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let by_id = !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && img.id.hex().starts_with(hex);
        let tags: Vec<ImageRef> = match ImageRef::parse(name) {
            _ if by_id => Vec::new(),
            Ok(r) if store.tags_of(&img.id).contains(&r) => vec![r],
            _ => store.tags_of(&img.id),
        };
        for t in &tags {
            if let (Some(tag), Some(top)) = (&t.tag, layer_paths.last()) {
                repositories
                    .entry(t.familiar_repository())
                    .or_default()
                    .insert(tag.clone(), top.trim_end_matches("/layer.tar").to_string());
            }
        }
        manifest.push(ManifestEntry {
            config: cfg_name,
            repo_tags: Some(tags.iter().map(|t| t.familiar()).collect()),
            layers: layer_paths,
        });
    }
    let m = serde_json::to_vec(&manifest).expect("serialises");
    append(&mut b, "manifest.json", m.len() as u64, &m[..])?;
    let r = serde_json::to_vec(&repositories).expect("serialises");
    append(&mut b, "repositories", r.len() as u64, &r[..])?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .ctx(|| "finish archive".into())
}

pub(crate) fn append<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    let mut data = data.take(size);
    b.append_data(&mut h, PathBuf::from(path), &mut data)
        .ctx(|| format!("write {path}"))
}
