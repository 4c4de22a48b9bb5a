//! Build contexts: leased, kept while in use and for the next build, pruned; unpacking archives into them.

use super::*;

impl Builder {
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
    pub(super) fn release_context(&self, hash: &str) {
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
    pub(super) fn prune_contexts(&self) {
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
pub(super) struct ScratchDir(pub(super) PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
