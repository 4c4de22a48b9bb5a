//! The file side of a build's `COPY` and `ADD`: picking sources out of the build context (or
//! another stage's or image's root), hashing them for the cache, and writing them into the
//! step's root.
//!
//! Every path is resolved inside its root with openat2(RESOLVE_IN_ROOT), on both sides: a
//! symlink in the context (to `/etc`, to `../..`) resolves inside the context, and a symlink a
//! base image planted at the destination (`/app -> /`) resolves inside the image's root,
//! never to a host path. Symlinks met while walking a source directory are copied as
//! symlinks, never followed. Hand-written because no crate writes through an in-root
//! resolution; the descriptor calls are the same as `archive.rs`'s.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::Digest as _;

use crate::error::{invalid, unavailable, EngineError};

/// What one entry of a copy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file, read from this host path (a resolved descriptor path or a scratch
    /// file) when written.
    File(PathBuf),
    Symlink(PathBuf),
}

/// One entry to write: `dest` is absolute in the step's root.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dest: PathBuf,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub size: u64,
}

impl Entry {
    fn of(dest: PathBuf, kind: Kind, md: &std::fs::Metadata, (uid, gid): (u32, u32)) -> Entry {
        let size = if matches!(kind, Kind::File(_)) {
            md.len()
        } else {
            0
        };
        Entry {
            dest,
            kind,
            mode: md.mode() & 0o7777,
            uid,
            gid,
            mtime: md.mtime(),
            size,
        }
    }
}

/// Lexically cleans `p` relative to a root: `None` when it climbs out (`../x`).
pub fn clean_rel(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

fn dirfd(root: &Path) -> std::io::Result<OwnedFd> {
    Ok(std::fs::File::open(root)?.into())
}

/// Opens `rel` under `root` as O_PATH, symlinks resolved inside the root; with `nofollow`
/// the last component is not followed.
pub fn open_in(root: &OwnedFd, rel: &Path, nofollow: bool) -> std::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let mut flags = libc::O_PATH;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    berth_image::layer::openat2(
        root,
        rel,
        flags,
        berth_image::layer::RESOLVE_IN_ROOT | berth_image::layer::RESOLVE_NO_MAGICLINKS,
    )
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn meta_of(fd: &OwnedFd) -> std::io::Result<std::fs::Metadata> {
    std::fs::File::from(fd.try_clone()?).metadata()
}

/// A source picked for a copy: its path in its root, and what it resolved to.
#[derive(Debug)]
pub struct Source {
    /// As written after cleaning (relative to the root).
    pub rel: PathBuf,
    /// The resolved host path of the source (a `/proc/self/fd` path kept open by `_fd`).
    pub host: PathBuf,
    pub is_dir: bool,
    _fd: OwnedFd,
}

impl Source {
    /// A scratch file of berth's own (a here-document, a download) as a source.
    pub fn file(p: &Path) -> Result<Source, EngineError> {
        let fd: OwnedFd = std::fs::File::open(p)
            .map_err(|e| unavailable(format!("{}: {e}", p.display())))?
            .into();
        Ok(Source {
            rel: PathBuf::from(p.file_name().unwrap_or_default()),
            host: fd_path(&fd),
            is_dir: false,
            _fd: fd,
        })
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Every relative path in `dir` (not following symlinks), for glob matching.
fn all_paths(dir: &Path, prefix: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = rd.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let rel = prefix.join(e.file_name());
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(rel.clone());
        if is_dir {
            all_paths(&e.path(), &rel, out);
        }
    }
}

/// Matches `path` against the glob `pattern` component by component (`*` never crosses a
/// `/`, as Go's filepath.Match that docker's classic builder uses).
fn glob_components(pattern: &Path, path: &Path) -> bool {
    let p: Vec<_> = pattern.components().collect();
    let q: Vec<_> = path.components().collect();
    p.len() == q.len()
        && p.iter().zip(&q).all(|(a, b)| {
            berth_build::ignore::glob_match(
                &a.as_os_str().to_string_lossy(),
                &b.as_os_str().to_string_lossy(),
            )
            .unwrap_or(false)
        })
}

/// Resolves the sources of a COPY/ADD in `root` (the context, or a stage's or image's root).
/// `excluded` says which context paths `.dockerignore` leaves out. Globs match paths; a
/// source that climbs out of the root is refused with docker's words.
pub fn sources(
    root: &Path,
    words: &[String],
    excluded: &dyn Fn(&str) -> bool,
) -> Result<Vec<Source>, EngineError> {
    let rootfd = dirfd(root).map_err(|e| unavailable(format!("open the build context: {e}")))?;
    let mut out = Vec::new();
    for w in words {
        let rel = clean_rel(w)
            .ok_or_else(|| invalid(format!("forbidden path outside the build context: {w} ()")))?;
        let picked: Vec<PathBuf> = if has_glob(w) {
            let mut all = Vec::new();
            all_paths(root, Path::new(""), &mut all);
            let m: Vec<PathBuf> = all
                .into_iter()
                .filter(|p| glob_components(&rel, p))
                .filter(|p| !excluded(&p.to_string_lossy()))
                .collect();
            if m.is_empty() {
                return Err(invalid("COPY failed: no source files were specified"));
            }
            m
        } else {
            vec![rel]
        };
        for rel in picked {
            let fd = open_in(&rootfd, &rel, false).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => invalid(format!(
                    "COPY failed: file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
                    rel.display()
                )),
                _ => invalid(format!("COPY failed: {}: {e}", rel.display())),
            })?;
            let md = meta_of(&fd).map_err(|e| unavailable(format!("{}: {e}", rel.display())))?;
            if !rel.as_os_str().is_empty() && excluded(&rel.to_string_lossy()) {
                return Err(invalid(format!(
                    "COPY failed: file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
                    rel.display()
                )));
            }
            out.push(Source {
                host: fd_path(&fd),
                is_dir: md.is_dir(),
                rel,
                _fd: fd,
            });
        }
    }
    Ok(out)
}

/// Appends the entries of `src` (a file, or a directory's contents) to be written at `dest`,
/// walking without following symlinks and leaving out what `excluded` names (paths relative
/// to the root the source is in). Owners are `owner` when given, else the source's own.
pub fn entries(
    src: &Source,
    dest: &Path,
    owner: Option<(u32, u32)>,
    excluded: &dyn Fn(&str) -> bool,
    out: &mut Vec<Entry>,
) -> Result<(), EngineError> {
    let md = std::fs::metadata(&src.host)
        .map_err(|e| unavailable(format!("{}: {e}", src.rel.display())))?;
    let own = |m: &std::fs::Metadata| owner.unwrap_or((m.uid(), m.gid()));
    if !md.is_dir() {
        out.push(Entry::of(
            dest.to_path_buf(),
            Kind::File(src.host.clone()),
            &md,
            own(&md),
        ));
        return Ok(());
    }
    out.push(Entry::of(dest.to_path_buf(), Kind::Dir, &md, own(&md)));
    walk(&src.host, &src.rel, dest, &own, excluded, out)
}

fn walk(
    dir: &Path,
    rel: &Path,
    dest: &Path,
    own: &dyn Fn(&std::fs::Metadata) -> (u32, u32),
    excluded: &dyn Fn(&str) -> bool,
    out: &mut Vec<Entry>,
) -> Result<(), EngineError> {
    let rd = std::fs::read_dir(dir).map_err(|e| unavailable(format!("{}: {e}", rel.display())))?;
    let mut names: Vec<_> = rd.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let r = rel.join(e.file_name());
        if excluded(&r.to_string_lossy()) {
            // A directory left out may still hold an exception (`!dir/keep`): look inside.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let d = dest.join(e.file_name());
                let mut inner = Vec::new();
                walk(&e.path(), &r, &d, own, excluded, &mut inner)?;
                if !inner.is_empty() {
                    let md = e
                        .path()
                        .symlink_metadata()
                        .map_err(|x| unavailable(x.to_string()))?;
                    out.push(Entry::of(d, Kind::Dir, &md, own(&md)));
                    out.extend(inner);
                }
            }
            continue;
        }
        let md = e
            .path()
            .symlink_metadata()
            .map_err(|x| unavailable(format!("{}: {x}", r.display())))?;
        let d = dest.join(e.file_name());
        let ft = md.file_type();
        let kind = if ft.is_symlink() {
            Kind::Symlink(std::fs::read_link(e.path()).map_err(|x| unavailable(x.to_string()))?)
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File(e.path())
        } else {
            // Devices, sockets and fifos in a context are not copied (docker's classic
            // builder copies them through tar; a build context has no business holding one).
            continue;
        };
        out.push(Entry::of(d, kind.clone(), &md, own(&md)));
        if kind == Kind::Dir {
            walk(&e.path(), &r, &dest.join(e.file_name()), own, excluded, out)?;
        }
    }
    Ok(())
}

/// The content hash of what a copy writes: paths, types, modes, owners, link targets and
/// file contents, never times (touching a file reruns nothing).
pub fn content_hash(entries: &[Entry]) -> Result<String, EngineError> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    for e in entries {
        h.update(e.dest.as_os_str().as_bytes());
        h.update(format!("\0{:o}\0{}\0{}\0", e.mode, e.uid, e.gid).as_bytes());
        match &e.kind {
            Kind::Dir => h.update(b"d"),
            Kind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_os_str().as_bytes());
            }
            Kind::File(p) => {
                h.update(b"f");
                let mut f = std::fs::File::open(p)
                    .map_err(|x| unavailable(format!("read {}: {x}", p.display())))?;
                loop {
                    let n = f.read(&mut buf).map_err(|x| unavailable(x.to_string()))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
        }
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL")
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Opens (creating what is missing, as directories of `mode` owned by `owner`) the directory
/// `path` of the root, symlinks resolved inside the root.
pub fn make_dirs(
    root: &OwnedFd,
    path: &Path,
    owner: (u32, u32),
    mode: u32,
) -> std::io::Result<OwnedFd> {
    let rel = clean_rel(&path.to_string_lossy()).unwrap_or_default();
    let mut cur = PathBuf::new();
    let mut fd = open_in(root, Path::new(""), false)?;
    for c in rel.components() {
        let name = c.as_os_str();
        cur.push(name);
        match open_in(root, &cur, false) {
            Ok(next) => {
                if !meta_of(&next)?.is_dir() {
                    return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
                }
                fd = next;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let n = cstr(Path::new(name));
                // SAFETY: mkdirat/fchownat on a directory descriptor we hold, with a NUL-
                // terminated single-component name.
                unsafe {
                    if libc::mkdirat(fd.as_raw_fd(), n.as_ptr(), mode) != 0 {
                        let e = last_err();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(e);
                        }
                    }
                    libc::fchownat(
                        fd.as_raw_fd(),
                        n.as_ptr(),
                        owner.0,
                        owner.1,
                        libc::AT_SYMLINK_NOFOLLOW,
                    );
                    libc::fchmodat(fd.as_raw_fd(), n.as_ptr(), mode, 0);
                }
                fd = open_in(root, &cur, false)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(fd)
}

/// Whether `path` is a directory in the root (symlinks followed inside it).
pub fn is_dir_in(root: &Path, path: &Path) -> bool {
    let Ok(r) = dirfd(root) else { return false };
    let rel = clean_rel(&path.to_string_lossy()).unwrap_or_default();
    open_in(&r, &rel, false)
        .and_then(|fd| meta_of(&fd))
        .is_ok_and(|m| m.is_dir())
}

/// Removes `name` in `parent` unless it is a directory; true if a directory is in the way.
fn clear(parent: &OwnedFd, name: &CString) -> bool {
    // SAFETY: fstatat/unlinkat on a directory descriptor we hold and a single-component name.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstatat(
            parent.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) != 0
        {
            return false;
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return true;
        }
        libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), 0);
    }
    false
}

fn set_times(parent: &OwnedFd, name: &CString, mtime: i64) {
    let ts = [
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    ];
    // SAFETY: utimensat on a directory descriptor we hold, a single-component name and two
    // valid timespecs; links are not followed.
    unsafe {
        libc::utimensat(
            parent.as_raw_fd(),
            name.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
}

/// Writes `entries` into the directory `root`. Missing parents are created owned by
/// `parent_owner` with mode 0755, as docker's builder creates them.
pub fn write(root: &Path, entries: &[Entry], parent_owner: (u32, u32)) -> Result<(), EngineError> {
    let rootfd = dirfd(root).map_err(|e| unavailable(format!("open the step's root: {e}")))?;
    let werr = |p: &Path, e: std::io::Error| unavailable(format!("copy to {}: {e}", p.display()));
    let mut dirs: Vec<(PathBuf, u32, i64)> = Vec::new();
    for e in entries {
        let parent_path = e.dest.parent().unwrap_or(Path::new("/"));
        let Some(name) = e.dest.file_name() else {
            // The root itself: only its mode and owner.
            if e.kind == Kind::Dir {
                let fd = open_in(&rootfd, Path::new(""), false).map_err(|x| werr(&e.dest, x))?;
                let _ = std::os::unix::fs::chown(fd_path(&fd), Some(e.uid), Some(e.gid));
            }
            continue;
        };
        let parent =
            make_dirs(&rootfd, parent_path, parent_owner, 0o755).map_err(|x| werr(&e.dest, x))?;
        let n = cstr(Path::new(name));
        match &e.kind {
            Kind::Dir => {
                // SAFETY: as in make_dirs.
                unsafe {
                    libc::mkdirat(parent.as_raw_fd(), n.as_ptr(), e.mode);
                }
                let fd = open_in(&rootfd, e.dest.strip_prefix("/").unwrap_or(&e.dest), false)
                    .map_err(|x| werr(&e.dest, x))?;
                if !meta_of(&fd).map_err(|x| werr(&e.dest, x))?.is_dir() {
                    return Err(invalid(format!(
                        "cannot copy a directory to {}: a file is in the way",
                        e.dest.display()
                    )));
                }
                // SAFETY: fchownat/fchmodat on a directory descriptor we hold.
                unsafe {
                    libc::fchownat(
                        parent.as_raw_fd(),
                        n.as_ptr(),
                        e.uid,
                        e.gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    );
                    libc::fchmodat(parent.as_raw_fd(), n.as_ptr(), e.mode, 0);
                }
                dirs.push((e.dest.clone(), e.mode, e.mtime));
            }
            Kind::Symlink(target) => {
                if clear(&parent, &n) {
                    return Err(invalid(format!(
                        "cannot replace the directory {} with a symlink",
                        e.dest.display()
                    )));
                }
                let t = cstr(target);
                // SAFETY: symlinkat/fchownat on a directory descriptor we hold.
                unsafe {
                    if libc::symlinkat(t.as_ptr(), parent.as_raw_fd(), n.as_ptr()) != 0 {
                        return Err(werr(&e.dest, last_err()));
                    }
                    libc::fchownat(
                        parent.as_raw_fd(),
                        n.as_ptr(),
                        e.uid,
                        e.gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    );
                }
                set_times(&parent, &n, e.mtime);
            }
            Kind::File(src) => {
                if clear(&parent, &n) {
                    return Err(invalid(format!(
                        "cannot replace the directory {} with a file",
                        e.dest.display()
                    )));
                }
                // SAFETY: openat on a directory descriptor we hold; O_NOFOLLOW|O_EXCL so
                // nothing but a new file is written.
                let fd = unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        n.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                if fd < 0 {
                    return Err(werr(&e.dest, last_err()));
                }
                // SAFETY: a new descriptor we own.
                let mut out = unsafe { std::fs::File::from_raw_fd(fd) };
                let mut inp = std::fs::File::open(src).map_err(|x| werr(&e.dest, x))?;
                std::io::copy(&mut inp, &mut out).map_err(|x| werr(&e.dest, x))?;
                std::os::unix::fs::fchown(&out, Some(e.uid), Some(e.gid))
                    .map_err(|x| werr(&e.dest, x))?;
                // After the owner: chown clears set-id bits.
                out.set_permissions(std::fs::Permissions::from_mode(e.mode))
                    .map_err(|x| werr(&e.dest, x))?;
                drop(out);
                set_times(&parent, &n, e.mtime);
            }
        }
    }
    // Directory times last, once nothing more is written into them.
    for (d, _, mtime) in dirs.iter().rev() {
        if let (Some(p), Some(name)) = (d.parent(), d.file_name()) {
            if let Ok(parent) = make_dirs(&rootfd, p, parent_owner, 0o755) {
                set_times(&parent, &cstr(Path::new(name)), *mtime);
            }
        }
    }
    Ok(())
}

/// Reads `/etc/passwd` and `/etc/group` inside `root` to turn `user[:group]` into ids, as
/// docker's `--chown` does (numbers are taken as they are).
pub fn lookup_owner(root: &Path, spec: &str) -> Result<(u32, u32), EngineError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |p: &str| {
        berth_image::layer::read_beneath(root, Path::new(p))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let find = |file: &str, name: &str| -> Option<(u32, u32)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| {
                (
                    f[2].parse().unwrap_or(0),
                    f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
                )
            })
        })
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => find("etc/passwd", u)
            .map(|x| x.0)
            .ok_or_else(|| invalid(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}")))?,
    };
    let gid = match g {
        None => match u.parse::<u32>() {
            Ok(n) => n,
            Err(_) => find("etc/passwd", u).map(|x| x.1).unwrap_or(0),
        },
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => find("etc/group", g)
                .map(|x| x.0)
                .ok_or_else(|| invalid(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}")))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_in_the_root_and_writes_stay_in_theirs() {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path();
        std::fs::create_dir_all(c.join("d/sub")).unwrap();
        std::fs::write(c.join("d/sub/f"), "f").unwrap();
        std::fs::write(c.join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc", c.join("etc-link")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", c.join("up")).unwrap();
        let none = |_: &str| false;
        assert!(sources(c, &["../x".into()], &none).is_err());
        // The links resolve inside the context: neither reaches the host's /etc.
        assert!(sources(c, &["etc-link/passwd".into()], &none).is_err());
        assert!(sources(c, &["up".into()], &none).is_err());
        let s = sources(c, &["*.txt".into()], &none).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].rel, Path::new("a.txt"));

        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::os::unix::fs::symlink("/", r.join("app")).unwrap();
        let s = sources(c, &["d".into()], &none).unwrap();
        let mut es = Vec::new();
        entries(&s[0], Path::new("/app/x"), Some((0, 0)), &none, &mut es).unwrap();
        let h1 = content_hash(&es).unwrap();
        write(r, &es, (0, 0)).unwrap();
        // /app -> / resolved in the root: the file lands in <root>/x, not in the host's /x.
        assert_eq!(std::fs::read_to_string(r.join("x/sub/f")).unwrap(), "f");
        // Times are not content.
        let f = std::fs::File::options()
            .write(true)
            .open(c.join("d/sub/f"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let mut es2 = Vec::new();
        entries(&s[0], Path::new("/app/x"), Some((0, 0)), &none, &mut es2).unwrap();
        assert_eq!(content_hash(&es2).unwrap(), h1);
        std::fs::write(c.join("d/sub/f"), "g").unwrap();
        let mut es3 = Vec::new();
        entries(&s[0], Path::new("/app/x"), Some((0, 0)), &none, &mut es3).unwrap();
        assert_ne!(content_hash(&es3).unwrap(), h1);
    }

    #[test]
    fn owners_from_the_image() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(lookup_owner(r, "app").unwrap(), (1000, 1001));
        assert_eq!(lookup_owner(r, "app:staff").unwrap(), (1000, 50));
        assert_eq!(lookup_owner(r, "12:34").unwrap(), (12, 34));
        assert_eq!(lookup_owner(r, "7").unwrap(), (7, 7));
        assert!(lookup_owner(r, "nobody")
            .unwrap_err()
            .message
            .contains("no such user"));
    }
}
