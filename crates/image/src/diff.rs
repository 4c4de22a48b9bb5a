//! A container's changes as a new layer: the overlayfs upper directory is walked and written as
//! a tar, with overlay whiteouts (0:0 character devices) turned into `.wh.<name>` entries and
//! opaque directories (`trusted.overlay.opaque=y`) into `.wh..wh..opq`. This is what
//! `commit` and the builder store as a layer.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Context, Result};

fn opaque(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: lgetxattr into a local buffer of the given size.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// Writes the changes recorded in `upper` as a layer tar; returns its diff id and length.
pub fn diff(upper: &Path, out: impl Write) -> Result<(Digest, u64)> {
    diff_skipping(upper, out, &[])
}

/// [`diff`], leaving out the empty regular files and empty directories at `skip` (relative
/// paths): the mount points an engine creates for what it mounts (`etc/hosts` ..., a build
/// step's cache mounts), which belong to no image.
pub fn diff_skipping(upper: &Path, out: impl Write, skip: &[&str]) -> Result<(Digest, u64)> {
    let mut b = tar::Builder::new(HashingWriter::new(out));
    b.follow_symlinks(false);
    crate::walk::walk(upper, |p, rel, meta| {
        let empty_dir =
            || meta.is_dir() && std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none());
        if ((meta.is_file() && meta.len() == 0) || empty_dir())
            && skip.iter().any(|s| rel == Path::new(s))
        {
            return Ok(false);
        }
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the lower file was deleted.
            let name = format!(
                ".wh.{}",
                rel.file_name().unwrap_or_default().to_string_lossy()
            );
            let wh = rel.with_file_name(name);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o600);
            h.set_mtime(meta.mtime().max(0) as u64);
            b.append_data(&mut h, &wh, std::io::empty())
                .ctx(|| format!("diff {}", wh.display()))?;
            return Ok(false);
        }
        b.append_path_with_name(p, rel)
            .ctx(|| format!("diff {}", rel.display()))?;
        if meta.is_dir() && opaque(p) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o600);
            b.append_data(&mut h, rel.join(".wh..wh..opq"), std::io::empty())
                .ctx(|| format!("diff {}", rel.display()))?;
        }
        Ok(true)
    })?;
    let w = b.into_inner().ctx(|| "finish layer".into())?;
    let (d, n, mut inner) = w.finish();
    inner.flush().ctx(|| "flush layer".into())?;
    Ok((d, n))
}
