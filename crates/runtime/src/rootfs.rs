//! The container's root filesystem: propagation, the spec's mounts, device nodes,
//! `pivot_root`, then masked and read-only paths.
//!
//! Every mount destination is resolved *inside* the rootfs with [`secure_join`], which follows
//! symlinks component by component and never lets `..` or an absolute link climb above the
//! root, so a hostile image cannot point a mount at the host.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use crate::error::{Context, Error, Result};

/// Resolves `unsafe_path` as if `root` were `/`: symlinks are followed inside `root`, `..`
/// stops at `root`. Components that do not exist yet are appended as they are.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<PathBuf> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<PathBuf> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(resolved.iter());
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::Io {
                        context: format!("resolve {} in {}", unsafe_path.display(), root.display()),
                        source: std::io::Error::from_raw_os_error(libc::ELOOP),
                    });
                }
                let target = std::fs::read_link(&candidate)
                    .ctx(|| format!("readlink {}", candidate.display()))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(resolved.iter());
    Ok(out)
}

/// A mount's options split into flags, propagation changes and filesystem data.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags to clear (e.g. `rw` clears `MS_RDONLY`), relevant for bind remounts.
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// Parses mount options as `mount(8)` and runc understand them.
pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        bind: false,
        recursive: false,
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match opt.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                let rec = if opt.starts_with('r') {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                o.propagation.push(base | rec);
                continue;
            }
            // Options that only matter to other tools (e.g. podman's "copy", "tmpcopyup").
            "defaults" | "tmpcopyup" | "notmpcopyup" | "copy" | "nocopy" | "idmap" | "rro" => {
                continue
            }
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
        o.clear |= clear;
    }
    o
}

/// Parses `rootfsPropagation` into mount flags.
pub fn propagation_flag(s: &str) -> Result<MsFlags> {
    Ok(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => {
            return Err(Error::spec(
                "linux.rootfsPropagation",
                format!("unknown propagation {other:?}"),
            ))
        }
    })
}

/// A cgroup hierarchy as it should appear inside the container.
#[derive(Debug, Clone)]
pub struct CgroupMount {
    /// Directory name under the cgroup mount point ("memory", "cpu,cpuacct", "systemd").
    pub name: String,
    /// Options for a fresh v1 mount ("memory", "none,name=systemd").
    pub options: String,
    /// The container's cgroup directory on the host, bound when there is no cgroup namespace.
    pub host_dir: PathBuf,
    pub unified: bool,
}

/// What [`prepare`] needs besides the spec.
#[derive(Debug)]
pub struct RootfsPlan<'a> {
    pub rootfs: &'a Path,
    pub mounts: &'a [Mount],
    pub devices: &'a [LinuxDevice],
    pub propagation: Option<MsFlags>,
    pub in_userns: bool,
    pub new_cgroupns: bool,
    pub cgroups: &'a [CgroupMount],
}

/// Before pivot_root: make the mount tree private to the container, bind the rootfs onto
/// itself, perform the spec's mounts in order and create the device nodes.
pub fn prepare(p: &RootfsPlan) -> Result<()> {
    // Keep the container's mounts from propagating back to the host.
    let root_flag = match p.propagation {
        Some(f) if f.contains(MsFlags::MS_SHARED) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, root_flag, None::<&str>)
        .ctx(|| "make / a slave mount".to_string())?;
    make_parent_private(p.rootfs)?;
    mount(
        Some(p.rootfs),
        p.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {}", p.rootfs.display()))?;

    let mut dev_bound = false;
    for (i, m) in p.mounts.iter().enumerate() {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_bound = true;
        }
        mount_one(p, m).map_err(|e| match e {
            Error::Sys { context, source } => Error::Sys {
                context: format!("mounts[{i}] ({}): {context}", m.destination().display()),
                source,
            },
            Error::Io { context, source } => Error::Io {
                context: format!("mounts[{i}] ({}): {context}", m.destination().display()),
                source,
            },
            other => other,
        })?;
    }
    if !dev_bound {
        create_devices(p)?;
        dev_symlinks(p.rootfs)?;
    }
    Ok(())
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// pivot_root needs the new root's parent mount to be non-shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mut cur = rootfs.to_path_buf();
    loop {
        match mount(
            None::<&str>,
            &cur,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            // Not a mount point: try the parent directory.
            Err(nix::errno::Errno::EINVAL) if cur.pop() => continue,
            Err(e) => return Err(e).ctx(|| format!("make {} private", cur.display())),
        }
    }
}

fn mount_one(p: &RootfsPlan, m: &Mount) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "" });
    let dest = secure_join(p.rootfs, m.destination())?;
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(p, &dest, &opts);
    }
    // CVE-2019-16884 / CVE-2023-27561: an image that makes /proc (or /sys) a symlink would
    // have procfs land where the image chose. They are mounted on a real directory only.
    if typ == "proc" || typ == "sysfs" {
        let rel = m.destination().strip_prefix("/").unwrap_or(m.destination());
        if let Ok(meta) = std::fs::symlink_metadata(p.rootfs.join(rel)) {
            if !meta.is_dir() {
                return Err(Error::spec(
                    "mounts[].destination",
                    format!(
                        "{typ} can only be mounted on a directory, and the image's {} is a {}",
                        m.destination().display(),
                        if meta.file_type().is_symlink() {
                            "symlink"
                        } else {
                            "file"
                        }
                    ),
                ));
            }
        }
    }
    if opts.bind || typ == "bind" {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::spec("mounts[].source", "a bind mount needs a source"))?;
        let meta = std::fs::metadata(src).ctx(|| format!("bind source {}", src.display()))?;
        create_mount_point(&dest, meta.is_dir())?;
        let mut flags = MsFlags::MS_BIND;
        if opts.recursive {
            flags |= MsFlags::MS_REC;
        }
        let target = InRoot::open(p.rootfs, &dest)?;
        mount(Some(src), &target.path(), None::<&str>, flags, None::<&str>)
            .ctx(|| format!("bind {} to {}", src.display(), dest.display()))?;
        let extra = opts.flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            // A new descriptor: the old one still names the directory under the mount.
            remount(&InRoot::open(p.rootfs, &dest)?.path(), extra, p.in_userns)?;
        }
    } else {
        create_mount_point(&dest, true)?;
        let data = opts.data.join(",");
        let data = (!data.is_empty()).then_some(data);
        let target = InRoot::open(p.rootfs, &dest)?;
        let res = mount(
            m.source().as_deref().or(Some(Path::new(typ))),
            &target.path(),
            Some(typ),
            opts.flags,
            data.as_deref(),
        );
        match res {
            // sysfs cannot be mounted from a user namespace that does not own the network
            // namespace: bind the host's /sys read-only instead, as runc does.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    &target.path(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .ctx(|| format!("bind /sys to {}", dest.display()))?;
                let top = InRoot::open(p.rootfs, &dest)?;
                remount(&top.path(), opts.flags | MsFlags::MS_RDONLY, p.in_userns)?;
            }
            r => r.ctx(|| format!("mount {typ} on {}", dest.display()))?,
        }
    }
    if !opts.propagation.is_empty() {
        let top = InRoot::open(p.rootfs, &dest)?;
        for prop in &opts.propagation {
            mount(None::<&str>, &top.path(), None::<&str>, *prop, None::<&str>)
                .ctx(|| format!("set propagation of {}", dest.display()))?;
        }
    }
    Ok(())
}

/// A mount point opened inside the root with openat2's `RESOLVE_IN_ROOT` (CVE-2021-30465):
/// [`secure_join`] resolves the path, but a process of another container sharing a volume could
/// swap a directory on it for a symlink before the mount. Mounting on `/proc/self/fd/<n>` of a
/// descriptor that the kernel resolved inside the root mounts exactly there, whatever the path
/// has become since.
struct InRoot(std::os::fd::OwnedFd);

impl InRoot {
    fn open(root: &Path, dest: &Path) -> Result<InRoot> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let io = |e: std::io::Error| Error::Io {
            context: format!("open mount point {} inside the root", dest.display()),
            source: e,
        };
        let root_fd = std::fs::File::open(root).map_err(io)?;
        let rel = dest.strip_prefix(root).unwrap_or(Path::new(""));
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let c = std::ffi::CString::new(rel.as_os_str().as_bytes())
            .map_err(|_| io(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
        // struct open_how of linux/openat2.h (libc's is non-exhaustive).
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let how = OpenHow {
            flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        };
        // EAGAIN: a rename or mount anywhere raced a `..` of the path, so the kernel cannot
        // vouch for the containment; openat2(2) says to retry.
        let mut fd = -1;
        for _ in 0..64 {
            // SAFETY: openat2 reads the path and the open_how struct of the given size, both
            // valid for the call; it returns a new descriptor or -1.
            fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    root_fd.as_raw_fd(),
                    c.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            if fd >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                break;
            }
        }
        if fd < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        // SAFETY: openat2 returned a new descriptor that nothing else owns.
        Ok(InRoot(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd as i32)
        }))
    }

    fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd()))
    }
}

/// Re-applies flags to a bind mount. In a user namespace the kernel refuses to drop flags
/// that the source mount has locked, so those are kept.
fn remount(dest: &Path, flags: MsFlags, in_userns: bool) -> Result<()> {
    let mut flags = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if in_userns {
        if let Ok(st) = nix::sys::statvfs::statvfs(dest) {
            use nix::sys::statvfs::FsFlags;
            let f = st.flags();
            for (sv, ms) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            ] {
                if f.contains(sv) {
                    flags |= ms;
                }
            }
        }
    }
    mount(None::<&str>, dest, None::<&str>, flags, None::<&str>)
        .ctx(|| format!("remount {} ({flags:?})", dest.display()))
}

fn create_mount_point(dest: &Path, dir: bool) -> Result<()> {
    if dir {
        std::fs::create_dir_all(dest).ctx(|| format!("create mount point {}", dest.display()))
    } else {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .ctx(|| format!("create mount point {}", parent.display()))?;
        }
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dest)
        {
            Ok(_) => Ok(()),
            // A directory already there cannot take a file bind mount; the mount reports it.
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(()),
            Err(e) => Err(e).ctx(|| format!("create mount point {}", dest.display())),
        }
    }
}

/// Mounts the cgroup hierarchies at `dest`: with a cgroup namespace, fresh cgroup mounts (which
/// show the namespace's root); without one, bind mounts of the container's own cgroup dirs.
fn mount_cgroups(p: &RootfsPlan, dest: &Path, opts: &MountOptions) -> Result<()> {
    create_mount_point(dest, true)?;
    let flags = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let unified_only = p.cgroups.iter().all(|c| c.unified);
    // Flags for each hierarchy's own mount (read-only when the spec says so).
    let leaf = flags
        | if ro {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
    // Without a cgroup namespace the container sees its own cgroup directory, bound read-only.
    let bind_host_dir = |host: &Path, d: &Path| -> Result<()> {
        mount(Some(host), d, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .ctx(|| format!("bind {} to {}", host.display(), d.display()))?;
        remount(d, leaf, p.in_userns)
    };
    if unified_only {
        let c = &p.cgroups[0];
        if p.new_cgroupns {
            mount(
                Some("cgroup2"),
                dest,
                Some("cgroup2"),
                opts.flags,
                None::<&str>,
            )
            .ctx(|| format!("mount cgroup2 on {}", dest.display()))?;
        } else {
            bind_host_dir(&c.host_dir, dest)?;
        }
        return Ok(());
    }
    mount(Some("tmpfs"), dest, Some("tmpfs"), flags, Some("mode=755"))
        .ctx(|| format!("mount tmpfs on {}", dest.display()))?;
    for c in p.cgroups.iter().filter(|c| !c.unified) {
        let d = dest.join(&c.name);
        std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
        if p.new_cgroupns {
            mount(
                Some("cgroup"),
                &d,
                Some("cgroup"),
                leaf,
                Some(c.options.as_str()),
            )
            .ctx(|| format!("mount cgroup {} on {}", c.options, d.display()))?;
        } else {
            bind_host_dir(&c.host_dir, &d)?;
        }
        // Co-mounted controllers ("cpu,cpuacct") get a symlink per controller.
        if c.name.contains(',') {
            for part in c.name.split(',') {
                let link = dest.join(part);
                if !link.exists() {
                    std::os::unix::fs::symlink(&c.name, &link)
                        .ctx(|| format!("symlink {}", link.display()))?;
                }
            }
        }
    }
    if ro {
        remount(dest, flags | MsFlags::MS_RDONLY, p.in_userns)?;
    }
    Ok(())
}

/// (path, major, minor) of the devices every container gets.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn create_devices(p: &RootfsPlan) -> Result<()> {
    let old = nix::sys::stat::umask(Mode::empty());
    let res = (|| {
        for (name, major, minor) in DEFAULT_DEVICES {
            if p.devices
                .iter()
                .any(|d| *d.path() == Path::new("/dev").join(name))
            {
                continue;
            }
            let dest = p.rootfs.join("dev").join(name);
            make_device(
                &dest,
                SFlag::S_IFCHR,
                *major,
                *minor,
                0o666,
                0,
                0,
                p.in_userns,
            )?;
        }
        for d in p.devices {
            let dest = secure_join(p.rootfs, d.path())?;
            if !dest.starts_with(p.rootfs.join("dev")) {
                return Err(Error::spec(
                    "linux.devices[].path",
                    format!("{}: devices must live under /dev", d.path().display()),
                ));
            }
            let kind = match d.typ() {
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                _ => SFlag::S_IFCHR,
            };
            make_device(
                &dest,
                kind,
                d.major() as u64,
                d.minor() as u64,
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
                p.in_userns,
            )?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    res
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    dest: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    in_userns: bool,
) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(dest);
    let perm = Mode::from_bits_truncate(mode & 0o7777);
    match mknod(dest, kind, perm, makedev(major, minor)) {
        Ok(()) => {
            nix::unistd::chown(dest, Some(uid.into()), Some(gid.into()))
                .ctx(|| format!("chown {}", dest.display()))?;
            Ok(())
        }
        // A user namespace may not create device nodes: bind the host's node instead.
        Err(nix::errno::Errno::EPERM) if in_userns && kind != SFlag::S_IFIFO => {
            create_mount_point(dest, false)?;
            let host = host_device_path(dest);
            mount(
                Some(&host),
                dest,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("bind {} to {}", host.display(), dest.display()))
        }
        Err(e) => Err(e).ctx(|| format!("mknod {}", dest.display())),
    }
}

fn host_device_path(dest: &Path) -> PathBuf {
    let s = dest.as_os_str().as_bytes();
    let i = s.windows(5).rposition(|w| w == b"/dev/").unwrap_or(0);
    PathBuf::from(OsStr::from_bytes(&s[i..]))
}

fn dev_symlinks(rootfs: &Path) -> Result<()> {
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    for (target, name) in links {
        let link = rootfs.join("dev").join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).ctx(|| format!("symlink {}", link.display()))?;
    }
    if Path::new("/proc/kcore").exists() {
        let link = rootfs.join("dev/core");
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink("/proc/kcore", link);
    }
    Ok(())
}

/// Makes `rootfs` the root: pivot_root, then detach the old root.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /".to_string())?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).ctx(|| format!("chdir {}", rootfs.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    // The old root is now stacked under the new one at "/"; detach it without letting the
    // unmount propagate to the host.
    fchdir(&old).ctx(|| "chdir old root".to_string())?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root a slave".to_string())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root".to_string())?;
    chdir("/").ctx(|| "chdir /".to_string())
}

/// The fallback for a root on ramfs, where pivot_root is impossible: move the rootfs over /
/// and chroot into it.
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .ctx(|| format!("move {} to /", rootfs.display()))?;
    chroot(".").ctx(|| "chroot".to_string())?;
    chdir("/").ctx(|| "chdir /".to_string())
}

/// Hides each path: /dev/null over files, an empty read-only tmpfs over directories.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let res = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        res.ctx(|| format!("mask {p}"))?;
    }
    Ok(())
}

/// Makes each path read-only (bind onto itself, then remount read-only).
pub fn readonly_paths(paths: &[String], in_userns: bool) -> Result<()> {
    for p in paths {
        if !Path::new(p).exists() {
            continue;
        }
        mount(
            Some(p.as_str()),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {p} read-only"))?;
        remount(
            Path::new(p),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            in_userns,
        )?;
    }
    Ok(())
}

/// Remounts the root read-only.
pub fn readonly_root(in_userns: bool) -> Result<()> {
    remount(Path::new("/"), MsFlags::MS_RDONLY, in_userns)
}

/// Applies `rootfsPropagation` to the new root.
pub fn set_root_propagation(flag: MsFlags) -> Result<()> {
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .ctx(|| "set rootfs propagation".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_root_descriptors_never_leave_the_root() {
        // What a racing process could have swapped in after secure_join: links to the host.
        let root = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path(), root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.path().join("up")).unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        // The host directory's path does not exist inside the root.
        assert!(InRoot::open(root.path(), &root.path().join("abs")).is_err());
        for (name, want) in [
            ("up", root.path().to_path_buf()),
            ("real", root.path().join("real")),
        ] {
            let fd = InRoot::open(root.path(), &root.path().join(name)).unwrap();
            assert_eq!(std::fs::read_link(fd.path()).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn secure_join_stays_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        let cases = [
            ("/a/b", "a/b"),
            ("/a/abs/passwd", "etc/passwd"),
            ("/a/up/etc", "etc"),
            ("/../../x", "x"),
            ("/new/dir", "new/dir"),
        ];
        for (input, inside) in cases {
            assert_eq!(
                secure_join(root, Path::new(input)).unwrap(),
                root.join(inside),
                "{input}"
            );
        }
        assert!(secure_join(root, Path::new("/loop1")).is_err());
    }

    #[test]
    fn parses_mount_options() {
        let o = parse_options(
            &[
                "nosuid", "ro", "rbind", "rslave", "mode=755", "size=64k", "rw",
            ]
            .map(String::from),
        );
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
        assert!(o.clear.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["mode=755", "size=64k"]);
    }

    #[test]
    fn propagation_names() {
        assert_eq!(
            propagation_flag("rprivate").unwrap(),
            MsFlags::MS_PRIVATE | MsFlags::MS_REC
        );
        assert!(propagation_flag("sideways").is_err());
    }

    #[test]
    fn host_device_path_is_dev_suffix() {
        assert_eq!(
            host_device_path(Path::new("/x/rootfs/dev/null")),
            PathBuf::from("/dev/null")
        );
    }
}
