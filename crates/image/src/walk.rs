//! A depth-first walk of a directory tree in name order, parents before children, never
//! following symlinks. Shared by [`crate::export`] and [`crate::diff`], which both turn a tree
//! into a tar stream.

use std::fs::Metadata;
use std::path::Path;

use crate::error::{Context, Result};

/// Calls `visit(path, path relative to root, metadata)` for every entry below `root`; for a
/// directory, `visit` returns whether to descend into it.
pub(crate) fn walk(
    root: &Path,
    mut visit: impl FnMut(&Path, &Path, &Metadata) -> Result<bool>,
) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .ctx(|| format!("read {}", dir.display()))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("below root").to_path_buf();
            let meta = std::fs::symlink_metadata(&p).ctx(|| format!("stat {}", p.display()))?;
            if visit(&p, &rel, &meta)? && meta.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(())
}
