//! The store's consistency check (`berth system check`): every image's config and layers present and verified, snapshots whole, leftovers of interrupted work found and, with repair, removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Context, Result};

use super::*;

/// One thing `berth system check` looked at and found wrong, or worth knowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `error`: data is missing or corrupt and cannot be repaired here; `repairable`: safe to
    /// repair (and repaired when asked); `removable`: garbage a prune removes; `info`.
    pub severity: &'static str,
    /// What it is about: `blob sha256:…`, `image sha256:…`, `tag busybox:latest`, …
    pub subject: String,
    pub problem: String,
    /// Whether this check repaired it.
    pub repaired: bool,
}

impl Finding {
    pub fn new(
        severity: &'static str,
        subject: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            subject: subject.into(),
            problem: problem.into(),
            repaired: false,
        }
    }
}

/// The sha256 of a file, streamed.
fn file_digest(p: &Path) -> std::io::Result<Digest> {
    use sha2::Digest as _;
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::parse(&format!("sha256:{}", hex::encode(h.finalize()))).expect("a sha256 digest"))
}

impl Store {
    /// Verifies the store's invariants: every blob an image names is present and hashes to its
    /// digest, every layer of every image has its record and snapshot, every tag names an
    /// image, and what nothing references is reported as removable. With `repair`, fixes what
    /// is safe to fix without losing data: tags of missing images, layer records without a
    /// snapshot that no image needs, and unpacking leftovers (`snapshots/tmp-*`). A blob or
    /// snapshot that an image needs and that is missing or corrupt is an error: only a new
    /// pull or load of that image repairs it.
    ///
    /// `leftovers`: whether `snapshots/tmp-*` may be removed (not while a pull unpacks).
    pub fn check(&mut self, repair: bool, leftovers: bool) -> Result<Vec<Finding>> {
        let mut out = Vec::new();
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut chains: BTreeSet<String> = BTreeSet::new();
        let mut verified: BTreeMap<Digest, bool> = BTreeMap::new();
        let mut verify = |d: &Digest, out: &mut Vec<Finding>, what: &str| -> bool {
            if let Some(ok) = verified.get(d) {
                return *ok;
            }
            let ok = match file_digest(&self.content.path(d)) {
                Ok(got) if &got == d => true,
                Ok(got) => {
                    out.push(Finding::new(
                        "error",
                        format!("blob {d}"),
                        format!("{what}: its content hashes to {got}"),
                    ));
                    false
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    out.push(Finding::new(
                        "error",
                        format!("blob {d}"),
                        format!("{what}: missing"),
                    ));
                    false
                }
                Err(e) => {
                    out.push(Finding::new(
                        "error",
                        format!("blob {d}"),
                        format!("{what}: {e}"),
                    ));
                    false
                }
            };
            verified.insert(d.clone(), ok);
            ok
        };
        for img in self.meta.images.values() {
            let subject = format!("image {}", img.id);
            blobs.insert(img.id.clone());
            blobs.extend(img.layers.iter().cloned());
            if let Some(m) = &img.manifest {
                blobs.insert(m.clone());
                verify(m, &mut out, &format!("the manifest of {subject}"));
            }
            for l in &img.layers {
                verify(l, &mut out, &format!("a layer of {subject}"));
            }
            if !verify(&img.id, &mut out, &format!("the config of {subject}")) {
                continue;
            }
            let cfg = match ImageConfig::parse(&self.content.read(&img.id)?) {
                Ok(c) => c,
                Err(e) => {
                    out.push(Finding::new("error", subject, format!("config: {e}")));
                    continue;
                }
            };
            for c in cfg.chain_ids() {
                chains.insert(c.to_string());
                if !self.meta.layers.contains_key(c.as_str()) {
                    out.push(Finding::new(
                        "error",
                        subject.clone(),
                        format!("layer {c} has no record"),
                    ));
                } else if !self.snapshot_dir(&c).is_dir() {
                    out.push(Finding::new(
                        "error",
                        subject.clone(),
                        format!("the snapshot of layer {c} is missing"),
                    ));
                }
            }
        }
        let dangling: Vec<String> = self
            .meta
            .tags
            .iter()
            .filter(|(_, id)| !self.meta.images.contains_key(id.as_str()))
            .map(|(t, _)| t.clone())
            .collect();
        for t in dangling {
            let mut f = Finding::new("repairable", format!("tag {t}"), "names no image");
            if repair {
                self.meta.tags.remove(&t);
                f.repaired = true;
            }
            out.push(f);
        }
        for c in self.unused_layers(&chains) {
            let dir = Digest::parse(&c).map(|d| self.snapshot_dir(&d));
            if dir.as_ref().is_ok_and(|d| d.is_dir()) {
                out.push(Finding::new(
                    "removable",
                    format!("layer {c}"),
                    "no image uses it (prune removes it)",
                ));
                continue;
            }
            let mut f = Finding::new(
                "repairable",
                format!("layer {c}"),
                "a record without a snapshot, which no image uses",
            );
            if repair {
                self.meta.layers.remove(&c);
                f.repaired = true;
            }
            out.push(f);
        }
        for e in std::fs::read_dir(self.root.join("snapshots"))
            .ctx(|| "read snapshots".into())?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("tmp-") {
                let mut f = Finding::new(
                    "repairable",
                    format!("snapshot {name}"),
                    "left by an interrupted unpack",
                );
                if repair && leftovers {
                    remove_tree(&e.path())?;
                    f.repaired = true;
                }
                out.push(f);
            } else if !self.meta.layers.contains_key(&format!("sha256:{name}")) {
                out.push(Finding::new(
                    "removable",
                    format!("snapshot {name}"),
                    "no layer record names it (prune removes it)",
                ));
            }
        }
        for b in self.content.list()? {
            if !blobs.contains(&b) {
                out.push(Finding::new(
                    "removable",
                    format!("blob {b}"),
                    "no image refers to it (prune removes it)",
                ));
            }
        }
        for i in self.content.ingests()? {
            out.push(Finding::new(
                "info",
                format!("download {i}"),
                "partial, kept so that the next pull resumes it",
            ));
        }
        if repair && out.iter().any(|f| f.repaired) {
            self.save()?;
        }
        Ok(out)
    }
}
