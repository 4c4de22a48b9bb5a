//! Copying files out of and into a container's root (`docker cp`, the `/archive` endpoints).
//!
//! Every path is resolved inside the container's root with openat2(RESOLVE_IN_ROOT): a
//! symlink the container planted (to `/`, `/etc`, `..`) resolves as it would inside the
//! container, never to a host path (the CVE-2018-15664 / CVE-2019-14271 class). A running
//! container is frozen for the duration, so nothing can swap a directory for a symlink between
//! the resolution and the copy. Hand-written because no crate resolves paths in a root with
//! openat2; tar writing and extraction use the `tar` crate, which refuses `..` and absolute
//! names, never follows symlinks when writing, and refuses to extract through a symlink that
//! leads outside the destination.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{invalid, not_found, unavailable, EngineError};

/// Opens `path` (as the container sees it) under `root`, following symlinks inside the root
/// only. With `nofollow` the last component is not followed.
fn open_in_root(root: &Path, path: &Path, nofollow: bool) -> std::io::Result<OwnedFd> {
    let rootfd: OwnedFd = std::fs::File::open(root)?.into();
    // From the bytes, not `Path::strip_prefix`, which would drop a trailing `/.` (and with
    // it the meaning "what the link leads to").
    let bytes = path.as_os_str().as_encoded_bytes();
    let start = bytes.iter().position(|b| *b != b'/').unwrap_or(bytes.len());
    let rel = Path::new(std::ffi::OsStr::from_bytes(&bytes[start..]));
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    crate::buildfs::open_in(&rootfd, rel, nofollow)
}

/// The metadata of what the descriptor refers to (fstat: a symlink opened with O_NOFOLLOW is
/// the link itself).
fn fd_meta(fd: &OwnedFd) -> std::io::Result<std::fs::Metadata> {
    std::fs::File::from(fd.try_clone()?).metadata()
}

/// The target of a symlink opened with O_PATH|O_NOFOLLOW.
fn fd_readlink(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat with an empty path reads the link the descriptor refers to into a
    // buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    let os: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(buf);
    Ok(PathBuf::from(os))
}

/// The host path of an O_PATH descriptor (valid while the container is frozen or stopped).
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn io_to_engine(path: &Path) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => not_found(format!(
            "Could not find the file {} in container",
            path.display()
        )),
        Some(libc::EXDEV) | Some(libc::ELOOP) => invalid(format!(
            "{}: the path leaves the container's root",
            path.display()
        )),
        _ => unavailable(format!("{}: {e}", path.display())),
    }
}

/// A path's stat as `docker cp` reads it (`X-Docker-Container-Path-Stat` is base64 of this
/// struct's JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    /// Go's `os.FileMode`: permission bits, with bit 31 for a directory, 27 for a link.
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// The stat of `path` inside `root`.
pub fn stat(root: &Path, path: &Path) -> Result<PathStat, EngineError> {
    let fd = open_in_root(root, path, true).map_err(io_to_engine(path))?;
    let md = fd_meta(&fd).map_err(io_to_engine(path))?;
    let link = if md.file_type().is_symlink() {
        fd_readlink(&fd)
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    // Go's os.FileMode bits for the type, as the docker CLI decodes them.
    let mut mode = md.mode() & 0o777;
    if md.is_dir() {
        mode |= 1 << 31;
    } else if md.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    Ok(PathStat {
        name,
        size: md.len(),
        mode,
        mtime: berth_shim::rfc3339(md.modified().unwrap_or(std::time::UNIX_EPOCH)),
        link_target: link,
    })
}

/// Writes `path` (a file, link or directory tree) as a tar to `out`, its entries named from
/// the path's base name, as `docker cp` expects.
pub fn read(root: &Path, path: &Path, out: &Path) -> Result<(), EngineError> {
    let name = base_name(path);
    read_as(root, path, &name, out)
}

/// The name `docker cp` gives what it copies: the path's last component (`.` for `/`).
pub fn base_name(path: &Path) -> PathBuf {
    path.file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// [`read`] with the entries named from `name` (a volume's root copied as `data`).
pub fn read_as(root: &Path, path: &Path, name: &Path, out: &Path) -> Result<(), EngineError> {
    let fd = open_in_root(root, path, true).map_err(io_to_engine(path))?;
    let host = fd_path(&fd);
    let md = fd_meta(&fd).map_err(io_to_engine(path))?;
    let name = name.to_path_buf();
    let f = std::fs::File::create(out).map_err(|e| unavailable(format!("archive: {e}")))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    let r = if md.is_dir() {
        // The real directory behind the descriptor, so that the walk starts from it.
        let dir = std::fs::read_link(&host).map_err(io_to_engine(path))?;
        b.append_dir_all(&name, &dir)
    } else if md.file_type().is_symlink() {
        let target = fd_readlink(&fd).map_err(io_to_engine(path))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&md);
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, &name, target)
    } else {
        // Opened afresh from the descriptor, never by a host path.
        let fd2 = open_in_root(root, path, true).map_err(io_to_engine(path))?;
        let mut file = std::fs::File::open(fd_path(&fd2)).map_err(io_to_engine(path))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&md);
        b.append_data(&mut h, &name, &mut file)
    };
    r.and_then(|_| b.finish())
        .map_err(|e| unavailable(format!("archive {}: {e}", path.display())))
}

/// Extracts the tar at `tar` into the directory `path` of the container.
///
/// The extraction runs in a thread of its own whose root directory is the container's root
/// (`unshare(CLONE_FS)`, then `chroot`: the thread's file system attributes only, as docker's
/// chrootarchive does with a process): every path the tar crate opens, the destination's
/// included, resolves inside the container even if the container swaps a directory for a
/// symlink to a host path meanwhile. The container is also frozen (see `root_view`); this
/// holds without it.
pub fn write(root: &Path, path: &Path, tar_file: &Path) -> Result<(), EngineError> {
    let fd = open_in_root(root, path, false).map_err(io_to_engine(path))?;
    let md = fd_meta(&fd).map_err(io_to_engine(path))?;
    if !md.is_dir() {
        return Err(invalid(format!(
            "extraction point is not a directory: {}",
            path.display()
        )));
    }
    drop(fd);
    let rootfd = std::fs::File::open(root).map_err(|e| unavailable(format!("archive: {e}")))?;
    let f = std::fs::File::open(tar_file).map_err(|e| unavailable(format!("archive: {e}")))?;
    let inside = Path::new("/").join(path);
    std::thread::scope(|s| {
        s.spawn(move || -> Result<(), EngineError> {
            confine_thread(&rootfd).map_err(|e| unavailable(format!("archive: confine: {e}")))?;
            let mut a = tar::Archive::new(std::io::BufReader::new(f));
            a.set_preserve_permissions(true);
            a.set_preserve_mtime(true);
            a.set_overwrite(true);
            a.unpack(&inside)
                .map_err(|e| invalid(format!("extract into {}: {e}", inside.display())))
        })
        .join()
        .unwrap_or_else(|_| Err(unavailable("archive: the extraction thread panicked")))
    })
}

/// Makes `root` this thread's root directory and working directory, for this thread only.
/// The thread must end afterwards (it is never returned to a pool).
fn confine_thread(root: &std::fs::File) -> std::io::Result<()> {
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: unshare, fchdir and chroot take plain arguments; `root` is an open directory
    // and the C string a literal.
    unsafe {
        check(libc::unshare(libc::CLONE_FS))?;
        check(libc::fchdir(root.as_raw_fd()))?;
        check(libc::chroot(c".".as_ptr()))?;
    }
    Ok(())
}

/// Copies the directory `path` of the container (resolved inside `root`) into `dest`, with
/// modes, owners and symlinks as they are: docker's copy-up of an image's content into a new
/// volume. A missing path, or one that is not a directory, copies nothing. `tmp` is a
/// scratch directory for the archive.
pub fn copy_tree(root: &Path, path: &Path, dest: &Path, tmp: &Path) -> Result<(), EngineError> {
    let fd = match open_in_root(root, path, false) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(())
        }
        Err(e) => return Err(io_to_engine(path)(e)),
    };
    if !fd_meta(&fd).map_err(io_to_engine(path))?.is_dir() {
        return Ok(());
    }
    let dir = std::fs::read_link(fd_path(&fd)).map_err(io_to_engine(path))?;
    std::fs::create_dir_all(tmp).map_err(|e| unavailable(format!("copy-up: {e}")))?;
    let scratch =
        tempfile::NamedTempFile::new_in(tmp).map_err(|e| unavailable(format!("copy-up: {e}")))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(
        scratch
            .reopen()
            .map_err(|e| unavailable(format!("copy-up: {e}")))?,
    ));
    b.follow_symlinks(false);
    b.append_dir_all(".", &dir)
        .and_then(|_| b.into_inner().map(drop))
        .map_err(|e| unavailable(format!("copy-up of {}: {e}", path.display())))?;
    let mut a = tar::Archive::new(std::io::BufReader::new(
        scratch
            .reopen()
            .map_err(|e| unavailable(format!("copy-up: {e}")))?,
    ));
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_overwrite(true);
    a.unpack(dest).map_err(|e| {
        unavailable(format!(
            "copy-up of {} into the volume: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mechanism `write` relies on: in a confined thread an absolute symlink the
    /// container planted (here to a real host directory) resolves inside the root, so a
    /// write through it cannot reach the host directory.
    #[test]
    fn a_confined_thread_resolves_planted_symlinks_inside_the_root() {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "chroot needs root: run the tests as root");
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("w")).unwrap();
        std::os::unix::fs::symlink(host.path(), root.path().join("w/x")).unwrap();
        let rootf = std::fs::File::open(root.path()).unwrap();
        let wrote = std::thread::spawn(move || {
            confine_thread(&rootf).unwrap();
            std::fs::write("/w/x/f", "escaped")
        })
        .join()
        .unwrap();
        assert!(
            wrote.is_err(),
            "the host path does not exist inside the root"
        );
        assert!(
            !host.path().join("f").exists(),
            "nothing reached the host directory"
        );
        // The same write from an unconfined thread would have reached it (the test's premise).
        std::fs::write(root.path().join("w/x/f"), "reached").unwrap();
        assert!(host.path().join("f").exists());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "container\n").unwrap();
        std::os::unix::fs::symlink("/", r.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", r.join("dots")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("link")).unwrap();
        let st = stat(r, Path::new("/link")).unwrap();
        assert_eq!(st.link_target, "/etc/passwd");
        // /up/etc/passwd is the container's file, not the host's.
        let fd = open_in_root(r, Path::new("/up/etc/passwd"), false).unwrap();
        assert_eq!(
            std::fs::read_to_string(fd_path(&fd)).unwrap(),
            "container\n"
        );
        let fd = open_in_root(r, Path::new("/dots/etc/passwd"), false).unwrap();
        assert_eq!(
            std::fs::read_to_string(fd_path(&fd)).unwrap(),
            "container\n"
        );
        assert!(open_in_root(r, Path::new("/nope"), false).is_err());
    }

    #[test]
    fn read_and_write_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("data/sub")).unwrap();
        std::fs::write(r.join("data/sub/f"), "x").unwrap();
        let out = r.join("out.tar");
        read(r, Path::new("/data"), &out).unwrap();
        std::fs::create_dir_all(r.join("copy")).unwrap();
        write(r, Path::new("/copy"), &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("copy/data/sub/f")).unwrap(),
            "x"
        );
        let st = stat(r, Path::new("/data")).unwrap();
        assert_eq!(st.name, "data");
        assert!(st.mode & (1 << 31) != 0);
        assert!(
            write(r, Path::new("/data/sub/f"), &out).is_err(),
            "not a directory"
        );
    }
}
