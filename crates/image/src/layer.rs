//! Applying a layer (tar, tar+gzip or tar+zstd) to a directory, safely.
//!
//! Every entry is placed relative to a descriptor of the layer root. Parents are opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (and created component by component with
//! `O_NOFOLLOW` where missing), so an entry can never land outside the root: `../`, absolute
//! names, paths through a symlink planted by an earlier entry, hard links to outside and
//! whiteouts that point outside are refused with an error naming the entry. Device nodes are
//! only accepted under `dev/`.
//!
//! Whiteouts (`.wh.<name>`, opaque `.wh..wh..opq`) are written in overlayfs format for overlay
//! snapshots (a 0:0 character device, the `trusted.overlay.opaque` xattr) or applied by
//! deletion for plain directories (the copy-based fallback).
//!
//! Hand-written over the `tar` crate's entry reader because no crate extracts through directory
//! descriptors with kernel-enforced containment.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::error::{Context, Error, Result};
use crate::openat::openat2_beneath;
pub use crate::openat::{
    openat2, read_beneath, OPENAT2_TRIES, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
};

/// How whiteouts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An empty directory that will be an overlayfs layer.
    Overlay,
    /// A full filesystem (a copy of the parent layers) that whiteouts delete from.
    Plain,
}

/// Limits for one layer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of file content the layer may expand to.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 30,
        }
    }
}

/// What applying a layer produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of file content written.
    pub size: u64,
    /// Bytes of the uncompressed tar stream (what the diff id covers).
    pub tar_size: u64,
}

/// Compression of a layer stream, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Wraps `r` in the decompressor its magic bytes call for.
pub fn decompress<'a, R: Read + 'a>(r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut r = BufReader::with_capacity(1 << 20, r);
    let magic = {
        use std::io::BufRead;
        r.fill_buf()
            .ctx(|| "read layer".to_string())?
            .get(..4)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Compression::Gzip,
            Box::new(flate2::read::MultiGzDecoder::new(r)),
        ))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let d = zstd::stream::read::Decoder::with_buffer(r).ctx(|| "zstd".to_string())?;
        Ok((Compression::Zstd, Box::new(d)))
    } else {
        Ok((Compression::None, Box::new(r)))
    }
}

fn hostile(layer: &str, entry: &Path, why: &str) -> Error {
    Error::Layer {
        layer: layer.into(),
        reason: format!("entry {:?}: {why}", entry.display().to_string()),
    }
}

/// Lexically cleans an entry name into components, refusing absolute names and any `..` that
/// would climb above the root.
fn clean(layer: &str, raw: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for c in raw.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {
                return Err(hostile(layer, raw, "absolute path"))
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(hostile(layer, raw, "escapes the layer root with '..'"));
                }
            }
            Component::Normal(n) => out.push(PathBuf::from(n)),
        }
    }
    Ok(out)
}

fn cstr(n: &OsStr) -> CString {
    CString::new(n.as_bytes()).expect("tar names have no NUL")
}

/// Applies layers to one directory.
pub struct Applier<'a> {
    layer: &'a str,
    root: OwnedFd,
    format: Format,
    limits: Limits,
    as_root: bool,
    /// Paths written by this layer (for opaque whiteouts in Plain format).
    written: HashSet<Vec<PathBuf>>,
    /// Directory metadata to set once their content is in place.
    dirs: Vec<(Vec<PathBuf>, u32, u64, u64, i64)>,
    bytes: u64,
    /// The last parent directory opened, reused by the next entry in the same directory.
    /// Dropped whenever anything is removed, so it never points at a replaced directory.
    parent_cache: Option<(Vec<PathBuf>, OwnedFd)>,
    /// Copy buffer for file content (1 MiB: fewer, larger writes).
    buf: Vec<u8>,
}

impl std::fmt::Debug for Applier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("layer", &self.layer)
            .field("format", &self.format)
            .finish()
    }
}

/// Applies the (possibly compressed) layer in `reader` to `dest`, which must exist. Returns the
/// diff id of the uncompressed stream. On error `dest` may hold part of the layer: callers
/// apply into a private directory and discard it.
pub fn apply(
    layer: &str,
    reader: impl Read,
    dest: &Path,
    format: Format,
    limits: Limits,
) -> Result<Applied> {
    let (_, plain) = decompress(reader)?;
    let mut hashing = HashingReader::new(plain);
    let root = nix::fcntl::open(
        dest,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {}", dest.display()))?;
    let mut a = Applier {
        layer,
        root,
        format,
        limits,
        // SAFETY: geteuid cannot fail.
        as_root: unsafe { libc::geteuid() } == 0,
        written: HashSet::new(),
        dirs: Vec::new(),
        bytes: 0,
        parent_cache: None,
        buf: vec![0u8; 1 << 20],
    };
    {
        let mut ar = tar::Archive::new(&mut hashing);
        let entries = ar.entries().map_err(|e| Error::Layer {
            layer: layer.into(),
            reason: format!("not a tar archive: {e}"),
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::Layer {
                layer: layer.into(),
                reason: format!("corrupt tar: {e}"),
            })?;
            a.entry(&mut entry)?;
        }
    }
    // Hash the end-of-archive blocks and any padding too: the diff id covers the whole stream.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| Error::Layer {
        layer: layer.into(),
        reason: format!("corrupt stream: {e}"),
    })?;
    a.finish_dirs()?;
    let (diff_id, tar_size, _) = hashing.finish();
    Ok(Applied {
        diff_id,
        size: a.bytes,
        tar_size,
    })
}

impl Applier<'_> {
    /// An entry's error. A system error stays one ([`Error::Io`]), so that callers can tell a
    /// full disk from a hostile archive.
    fn err<E: std::fmt::Display + 'static>(&self, entry: &Path, e: E) -> Error {
        let entry = entry.display().to_string();
        if let Some(code) = (&e as &dyn std::any::Any)
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Error::Io {
                context: format!("layer {}: entry {entry:?}", self.layer),
                source: std::io::Error::from_raw_os_error(code),
            };
        }
        Error::Layer {
            layer: self.layer.into(),
            reason: format!("entry {entry:?}: {e}"),
        }
    }

    /// Opens (creating as needed) the parent directory of an entry, never following a symlink.
    fn parent(&mut self, raw: &Path, comps: &[PathBuf]) -> Result<OwnedFd> {
        if let Some((cached, fd)) = &self.parent_cache {
            if cached.as_slice() == comps {
                return nix::unistd::dup(fd).ctx(|| "dup".into());
            }
        }
        let fd = self.open_parent(raw, comps)?;
        self.parent_cache = Some((comps.to_vec(), nix::unistd::dup(&fd).ctx(|| "dup".into())?));
        Ok(fd)
    }

    fn open_parent(&self, raw: &Path, comps: &[PathBuf]) -> Result<OwnedFd> {
        let parent: PathBuf = comps.iter().collect();
        if parent.as_os_str().is_empty() {
            return nix::unistd::dup(&self.root).ctx(|| "dup".into());
        }
        match openat2_beneath(&self.root, &parent, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EXDEV) | Some(libc::ENOTDIR)) => {
                return Err(hostile(self.layer, raw, "its parent is a symlink or not a directory (refused: it could lead outside the root)"))
            }
            Err(e) => return Err(self.err(raw, e)),
        }
        // Create the missing directories one at a time.
        let mut cur = nix::unistd::dup(&self.root).ctx(|| "dup".into())?;
        for c in comps {
            let name = cstr(c.as_os_str());
            // SAFETY: mkdirat with a NUL-terminated name relative to a directory descriptor.
            let r = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(self.err(raw, e));
                }
            }
            // SAFETY: openat with O_NOFOLLOW | O_DIRECTORY fails on a symlink instead of following it.
            let fd = unsafe {
                libc::openat(
                    cur.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(hostile(self.layer, raw, "its parent is a symlink or not a directory (refused: it could lead outside the root)"));
            }
            // SAFETY: a new descriptor we own.
            cur = unsafe { OwnedFd::from_raw_fd(fd) };
        }
        Ok(cur)
    }

    /// Removes `name` in `dir` whatever it is (recursively for directories).
    fn remove(&self, dir: &OwnedFd, name: &OsStr) -> Result<()> {
        let c = cstr(name);
        // SAFETY: unlinkat relative to a directory descriptor.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            Some(libc::EISDIR) => {
                let sub = self.open_dir_at(dir, name)?;
                self.clear_dir(&sub, &HashSet::new(), &[])?;
                // SAFETY: as above, removing the now empty directory.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
                    return Err(Error::Io {
                        context: format!("remove {name:?}"),
                        source: std::io::Error::last_os_error(),
                    });
                }
                Ok(())
            }
            _ => Err(Error::Io {
                context: format!("remove {name:?}"),
                source: e,
            }),
        }
    }

    fn open_dir_at(&self, dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd> {
        let c = cstr(name);
        // SAFETY: openat with O_NOFOLLOW on a name relative to a directory descriptor.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::Io {
                context: format!("open {name:?}"),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: a new descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Deletes every child of `dir` except those this layer wrote (`keep`, with `prefix`).
    fn clear_dir(
        &self,
        dir: &OwnedFd,
        keep: &HashSet<Vec<PathBuf>>,
        prefix: &[PathBuf],
    ) -> Result<()> {
        // `dir` may be an O_PATH descriptor: reopen it readable to list it.
        let fd = self.open_dir_at(dir, OsStr::new("."))?;
        let mut d = nix::dir::Dir::from_fd(fd).ctx(|| "read directory".into())?;
        let names: Vec<std::ffi::OsString> = d
            .iter()
            .map_while(|e| e.ok())
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect();
        for n in names {
            let mut p = prefix.to_vec();
            p.push(PathBuf::from(&n));
            if !keep.contains(&p) {
                self.remove(dir, &n)?;
            }
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<R>) -> Result<()> {
        let raw = e
            .path()
            .map_err(|err| Error::Layer {
                layer: self.layer.into(),
                reason: format!("bad entry name: {err}"),
            })?
            .into_owned();
        let comps = clean(self.layer, &raw)?;
        let Some((name, parent_comps)) = comps.split_last() else {
            return Ok(()); // "./": the root itself
        };
        let name = name.as_os_str();
        let bytes = name.as_bytes();
        let parent = self.parent(&raw, parent_comps)?;

        // Whiteouts.
        if bytes == b".wh..wh..opq" {
            match self.format {
                Format::Overlay => {
                    let dir = self.open_dir_at(&parent, OsStr::new("."))?;
                    nix_setxattr(&dir, "trusted.overlay.opaque", b"y")
                        .map_err(|err| self.err(&raw, err))?;
                }
                Format::Plain => {
                    self.parent_cache = None;
                    self.clear_dir(&parent, &self.written.clone(), parent_comps)?
                }
            }
            return Ok(());
        }
        if let Some(target) = bytes.strip_prefix(b".wh.") {
            if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
                return Err(hostile(self.layer, &raw, "whiteout of an invalid name"));
            }
            let target = OsStr::from_bytes(target);
            self.parent_cache = None;
            self.remove(&parent, target)?;
            if self.format == Format::Overlay {
                let c = cstr(target);
                // SAFETY: mknodat of a 0:0 character device (an overlayfs whiteout) by name.
                if unsafe { libc::mknodat(parent.as_raw_fd(), c.as_ptr(), libc::S_IFCHR, 0) } != 0 {
                    return Err(self.err(&raw, std::io::Error::last_os_error()));
                }
            }
            return Ok(());
        }

        let h = e.header();
        let kind = h.entry_type();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let uid = h.uid().unwrap_or(0);
        let gid = h.gid().unwrap_or(0);
        let mtime = h.mtime().unwrap_or(0) as i64;
        let c = cstr(name);
        let pfd = parent.as_raw_fd();
        match kind {
            tar::EntryType::Directory => {
                // SAFETY: mkdirat relative to the parent descriptor.
                if unsafe { libc::mkdirat(pfd, c.as_ptr(), 0o700) } != 0 {
                    let err = std::io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(self.err(&raw, err));
                    }
                    // Something that is not a directory is in the way: replace it.
                    if self.open_dir_at(&parent, name).is_err() {
                        self.parent_cache = None;
                        self.remove(&parent, name)?;
                        // SAFETY: as above.
                        if unsafe { libc::mkdirat(pfd, c.as_ptr(), 0o700) } != 0 {
                            return Err(self.err(&raw, std::io::Error::last_os_error()));
                        }
                    }
                }
                self.dirs.push((comps.clone(), mode, uid, gid, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let create = || {
                    // SAFETY: openat creating a new file (O_EXCL, O_NOFOLLOW) relative to the
                    // parent descriptor.
                    unsafe {
                        libc::openat(
                            pfd,
                            c.as_ptr(),
                            libc::O_WRONLY
                                | libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_NOFOLLOW
                                | libc::O_CLOEXEC,
                            0o600,
                        )
                    }
                };
                let mut fd = create();
                if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
                    // Replacing something (a lower layer's file, or an earlier entry).
                    self.parent_cache = None;
                    self.remove(&parent, name)?;
                    fd = create();
                }
                if fd < 0 {
                    return Err(self.err(&raw, std::io::Error::last_os_error()));
                }
                // SAFETY: a new descriptor we own.
                let mut f = unsafe { File::from_raw_fd(fd) };
                let budget = self.limits.max_bytes.saturating_sub(self.bytes);
                let n = copy_with(&mut e.by_ref().take(budget + 1), &mut f, &mut self.buf)
                    .map_err(|err| self.err(&raw, err))?;
                self.bytes += n;
                if self.bytes > self.limits.max_bytes {
                    return Err(Error::Layer {
                        layer: self.layer.into(),
                        reason: format!(
                            "expands beyond the limit of {} bytes",
                            self.limits.max_bytes
                        ),
                    });
                }
                self.xattrs(e, &f, &raw)?;
                self.owner_mode_time_fd(&f, uid, gid, mode, mtime, &raw)?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|err| self.err(&raw, err))?
                    .ok_or_else(|| self.err(&raw, "symlink without a target"))?;
                let t = cstr(target.as_os_str());
                // SAFETY: symlinkat relative to the parent descriptor; the target is only text.
                self.create_or_replace(&parent, name, &raw, || unsafe {
                    libc::symlinkat(t.as_ptr(), pfd, c.as_ptr())
                })?;
                self.owner_time_at(&parent, name, uid, gid, mtime, &raw)?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(|err| self.err(&raw, err))?
                    .ok_or_else(|| self.err(&raw, "hard link without a target"))?;
                let tcomps = clean(self.layer, &target).map_err(|_| {
                    hostile(self.layer, &raw, "hard link target escapes the layer root")
                })?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(hostile(self.layer, &raw, "hard link to the root"));
                };
                let tdir = match openat2_beneath(
                    &self.root,
                    &tparent.iter().collect::<PathBuf>(),
                    libc::O_PATH | libc::O_DIRECTORY,
                ) {
                    Ok(fd) => fd,
                    Err(_) if tparent.is_empty() => {
                        nix::unistd::dup(&self.root).ctx(|| "dup".into())?
                    }
                    Err(_) => {
                        return Err(hostile(
                            self.layer,
                            &raw,
                            "hard link target is outside the root or missing",
                        ))
                    }
                };
                let tn = cstr(tname.as_os_str());
                let tfd = tdir.as_raw_fd();
                // SAFETY: linkat between two directory descriptors inside the root, without
                // following a final symlink.
                let linked = self.create_or_replace(&parent, name, &raw, || unsafe {
                    libc::linkat(tfd, tn.as_ptr(), pfd, c.as_ptr(), 0)
                });
                if linked.is_err() {
                    return Err(hostile(
                        self.layer,
                        &raw,
                        &format!(
                            "hard link target {:?}: {}",
                            target.display().to_string(),
                            std::io::Error::last_os_error()
                        ),
                    ));
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let dev = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                if dev != libc::S_IFIFO
                    && comps.first().map(|c| c.as_os_str()) != Some(OsStr::new("dev"))
                {
                    return Err(hostile(self.layer, &raw, "device node outside /dev"));
                }
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                // SAFETY: mknodat relative to the parent descriptor.
                self.create_or_replace(&parent, name, &raw, || unsafe {
                    libc::mknodat(pfd, c.as_ptr(), dev | mode, libc::makedev(major, minor))
                })?;
                self.owner_time_at(&parent, name, uid, gid, mtime, &raw)?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => return Err(self.err(&raw, format!("unsupported entry type {other:?}"))),
        }
        self.written.insert(comps);
        Ok(())
    }

    /// Runs a create call; if the name exists (a lower layer's file, an earlier entry), removes
    /// it and tries once more.
    fn create_or_replace(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        raw: &Path,
        op: impl Fn() -> libc::c_int,
    ) -> Result<()> {
        if op() == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(self.err(raw, e));
        }
        self.parent_cache = None;
        self.remove(parent, name)?;
        if op() != 0 {
            return Err(self.err(raw, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn xattrs<R: Read>(&self, e: &mut tar::Entry<R>, f: &File, raw: &Path) -> Result<()> {
        let Ok(Some(exts)) = e.pax_extensions() else {
            return Ok(());
        };
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // Only namespaces an image may set: never trusted.* (overlay metadata).
                if name.starts_with("user.") || name == "security.capability" {
                    fsetxattr(f, name, ext.value_bytes())
                        .map_err(|err| self.err(raw, format!("xattr {name}: {err}")))?;
                }
            }
        }
        Ok(())
    }

    fn owner_mode_time_fd(
        &self,
        f: &File,
        uid: u64,
        gid: u64,
        mode: u32,
        mtime: i64,
        raw: &Path,
    ) -> Result<()> {
        if self.as_root {
            // SAFETY: fchown on a descriptor we own.
            if unsafe { libc::fchown(f.as_raw_fd(), uid as u32, gid as u32) } != 0 {
                return Err(self.err(raw, std::io::Error::last_os_error()));
            }
        }
        // chmod after chown: chown clears setuid/setgid bits.
        // SAFETY: fchmod on a descriptor we own.
        if unsafe { libc::fchmod(f.as_raw_fd(), mode) } != 0 {
            return Err(self.err(raw, std::io::Error::last_os_error()));
        }
        let ts = [timespec(mtime), timespec(mtime)];
        // SAFETY: futimens with two valid timespecs.
        unsafe { libc::futimens(f.as_raw_fd(), ts.as_ptr()) };
        Ok(())
    }

    fn owner_time_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        uid: u64,
        gid: u64,
        mtime: i64,
        raw: &Path,
    ) -> Result<()> {
        let c = cstr(name);
        if self.as_root {
            // SAFETY: fchownat on a name relative to a directory descriptor, not following links.
            if unsafe {
                libc::fchownat(
                    dir.as_raw_fd(),
                    c.as_ptr(),
                    uid as u32,
                    gid as u32,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            } != 0
            {
                return Err(self.err(raw, std::io::Error::last_os_error()));
            }
        }
        let ts = [timespec(mtime), timespec(mtime)];
        // SAFETY: utimensat with two valid timespecs, not following links.
        unsafe {
            libc::utimensat(
                dir.as_raw_fd(),
                c.as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        Ok(())
    }

    /// Directory modes, owners and times go last, deepest first, so writing children does not
    /// change them and a read-only directory does not block its own content.
    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        for (comps, mode, uid, gid, mtime) in dirs.into_iter().rev() {
            let path: PathBuf = comps.iter().collect();
            let fd = match openat2_beneath(&self.root, &path, libc::O_RDONLY | libc::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(_) => continue, // removed later in the layer
            };
            let f = File::from(fd);
            self.owner_mode_time_fd(&f, uid, gid, mode, mtime, &path)?;
        }
        Ok(())
    }
}

/// `io::copy` with a caller-provided (large) buffer.
fn copy_with(
    r: &mut impl Read,
    w: &mut impl std::io::Write,
    buf: &mut [u8],
) -> std::io::Result<u64> {
    let mut n = 0u64;
    loop {
        let k = match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
}

fn timespec(secs: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    }
}

fn fsetxattr(f: &File, name: &str, value: &[u8]) -> std::io::Result<()> {
    let n = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid descriptor, NUL-terminated name, and a value buffer of the given length.
    if unsafe {
        libc::fsetxattr(
            f.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn nix_setxattr(dir: &OwnedFd, name: &str, value: &[u8]) -> std::io::Result<()> {
    let f = File::from(nix::unistd::dup(dir).map_err(std::io::Error::from)?);
    fsetxattr(&f, name, value)
}
