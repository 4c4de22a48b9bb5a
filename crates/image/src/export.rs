//! Exporting a filesystem (a container's mounted rootfs) as a tar stream, as `docker export`
//! writes it: paths relative to the root, symlinks kept as links, hard links kept, owners,
//! modes and times preserved, nothing outside the root followed.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};

/// Writes the tree under `root` to `out` as a tar. Mount points below `root` are not crossed.
pub fn export(root: &Path, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let dev = std::fs::symlink_metadata(root)
        .ctx(|| format!("stat {}", root.display()))?
        .dev();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    crate::walk::walk(root, |p, rel, meta| {
        if meta.is_file() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata(meta);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, rel, first)
                    .ctx(|| format!("export {}", rel.display()))?;
                return Ok(false);
            }
            links.insert((meta.dev(), meta.ino()), rel.to_path_buf());
        }
        b.append_path_with_name(p, rel)
            .ctx(|| format!("export {}", rel.display()))?;
        Ok(meta.dev() == dev)
    })?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .ctx(|| "finish export".into())
}
