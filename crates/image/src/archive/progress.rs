//! Per-layer progress while a docker-archive loads, as dockerd reports it (`Loading layer`,
//! the layer's short chain id, bytes read of its size): which archive entries are layers the
//! store does not have yet, found by a first pass over the archive's headers, and a reader
//! that reports the bytes of one as they are read.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::{chain_ids, ImageConfig};
use crate::error::{Context, Error, Result};
use crate::store::Store;

/// Told, while a layer is read: its short chain id, the bytes read so far, its size.
pub type LoadProgress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// The layer entries of the docker-archive at `path` that a load will read into the store:
/// each entry's path → the layer's short chain id (12 hex digits, as dockerd names it).
/// Layers the store already has are left out (dockerd shows no progress for them either).
/// Two passes over the headers, seeking over the data: one for `manifest.json` and the
/// links, one for the configs it names.
pub fn layer_ids(store: &Store, path: &Path) -> Result<HashMap<String, String>> {
    let mut links: HashMap<String, String> = HashMap::new();
    let mut manifest = None;
    each_entry(path, |p, entry| {
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Ok(Some(t)) = entry.link_name() {
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        Path::new(p).parent().unwrap_or(Path::new("")).join(t)
                    } else {
                        t.into_owned()
                    };
                    if let Some(t) = super::docker::norm(&base) {
                        links.insert(p.to_string(), t);
                    }
                }
            }
            _ if p == "manifest.json" => manifest = Some(read_small(entry, p)?),
            _ => {}
        }
        Ok(())
    })?;
    let Some(manifest) = manifest else {
        return Ok(HashMap::new());
    };
    let entries: Vec<super::docker::ManifestEntry> =
        serde_json::from_slice(&manifest).ctx(|| "parse manifest.json".into())?;
    let resolve = |p: &str| -> Option<String> {
        let mut p = super::docker::norm(Path::new(p))?;
        for _ in 0..16 {
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => return Some(p),
            }
        }
        None
    };
    let wanted: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Some((resolve(&m.config)?, i)))
        .collect();
    let mut configs: HashMap<usize, ImageConfig> = HashMap::new();
    each_entry(path, |p, entry| {
        if let Some(i) = wanted.get(p) {
            if let Ok(c) = ImageConfig::parse(&read_small(entry, p)?) {
                configs.insert(*i, c);
            }
        }
        Ok(())
    })?;
    let mut ids = HashMap::new();
    for (i, m) in entries.iter().enumerate() {
        let Some(cfg) = configs.get(&i) else { continue };
        for (layer, chain) in m.layers.iter().zip(chain_ids(&cfg.rootfs.diff_ids)) {
            if let Some(p) = resolve(layer) {
                if !store.has_layer(&chain) {
                    ids.entry(p)
                        .or_insert_with(|| chain.hex()[..12].to_string());
                }
            }
        }
    }
    Ok(ids)
}

/// Calls `f` with each entry of the tar at `path` and its normalised path, seeking over
/// the data it does not read.
fn each_entry(
    path: &Path,
    mut f: impl FnMut(&str, &mut tar::Entry<'_, std::fs::File>) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
    let mut ar = tar::Archive::new(file);
    let entries = ar
        .entries_with_seek()
        .map_err(|e| Error::Archive(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Archive(format!("corrupt archive: {e}")))?;
        let raw = super::docker::entry_name(&entry)?;
        if let Some(p) = super::docker::norm(&raw) {
            f(&p, &mut entry)?;
        }
    }
    Ok(())
}

fn read_small(entry: &mut impl Read, p: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    entry
        .take(64 << 20)
        .read_to_end(&mut v)
        .ctx(|| format!("read {p}"))?;
    Ok(v)
}

/// A layer's bytes on their way into the store, told to a [`LoadProgress`]: at the first
/// read, at most every 100 ms after that, and once more at the end.
pub(crate) struct Watch<'a, 'p, R> {
    pub inner: R,
    pub id: &'a str,
    pub total: u64,
    pub report: &'a mut LoadProgress<'p>,
    read: u64,
    last: Option<Instant>,
    ended: bool,
}

impl<'a, 'p, R> Watch<'a, 'p, R> {
    pub fn new(inner: R, id: &'a str, total: u64, report: &'a mut LoadProgress<'p>) -> Self {
        Watch {
            inner,
            id,
            total,
            report,
            read: 0,
            last: None,
            ended: false,
        }
    }
}

impl<R: Read> Read for Watch<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if (n > 0 && due) || (n == 0 && !self.ended) {
            self.ended |= n == 0;
            self.last = Some(Instant::now());
            (self.report)(self.id, self.read, self.total.max(self.read));
        }
        Ok(n)
    }
}
