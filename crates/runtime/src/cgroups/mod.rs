//! Control groups, v1 ("legacy"), v2 ("unified") and hybrid (v1 controllers with a
//! controller-less cgroup2 mount beside them, as on this project's CI machines).
//!
//! Written here rather than taken from youki's `libcgroups` (0.7.0 was evaluated, see
//! `docs/design.md`): that crate re-reads `/proc/self/mountinfo` and `/proc/self/cgroup` once
//! per controller on every start, which costs more than the rest of a container start on the
//! hot path; in hybrid mode it ignores the cgroup2 hierarchy that runc also joins; and it pulls a
//! second `nix` version into the build. This module parses mountinfo once and does only the
//! mkdir/write calls the spec asks for.
//!
//! Modules: `devices` (the device rule list both versions enforce), `bpf` (that list as an
//! eBPF program on cgroup v2), `dynmods` (the host's `favordynmods` switch), `stats` (what a
//! cgroup reports), `systemd` (the systemd driver's scopes), `v1`, `v2` (each version's files).
//!
//! Layout of a container's cgroup: `<mount>/<cgroups path>` in every hierarchy. An absolute
//! cgroups path is taken from the hierarchy's root; a relative one from the runtime's own
//! cgroup in that hierarchy, as runc does.

mod bpf;
mod devices;
mod dynmods;
mod stats;
pub mod systemd;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use dynmods::favor_dynamic_modifications;
pub use stats::{CpuStats, IoEntry, MemoryStats, PidsStats, Stats};

/// Which cgroup version(s) the host mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies for the controllers plus a cgroup2 mount without controllers.
    Hybrid,
    /// Only cgroup2.
    Unified,
}

/// Which of the mounted hierarchies a container is placed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Every mounted hierarchy, as the host has them (v1, v2 or hybrid).
    #[default]
    Host,
    /// Only the cgroup2 hierarchy, as on a host without v1: on a hybrid host (v1 controllers
    /// beside a cgroup2 mount) this runs containers the way a pure v2 host does, device rules
    /// by eBPF included, while their processes stay in the v1 hierarchies' root cgroups. A
    /// test and migration aid; limits whose controllers the cgroup2 mount lacks are refused.
    Unified,
}

impl Layout {
    /// `host` or `unified`.
    pub fn parse(s: &str) -> Result<Layout> {
        match s {
            "host" | "" => Ok(Layout::Host),
            "unified" => Ok(Layout::Unified),
            _ => Err(Error::Cgroup {
                path: PathBuf::from(s),
                reason: "unknown cgroup hierarchy: want host or unified".into(),
            }),
        }
    }
}

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The path inside the hierarchy that the mount shows at `mount` (usually "/").
    pub root: PathBuf,
    /// v1 controllers (and `name=...` for named hierarchies); empty for cgroup2.
    pub controllers: Vec<String>,
    /// True for the cgroup2 hierarchy.
    pub unified: bool,
}

/// The mounted hierarchies, read once from `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub struct Hierarchies {
    pub(crate) list: Vec<Hierarchy>,
}

impl Hierarchies {
    /// Reads the current process's view of the cgroup mounts.
    pub fn detect() -> Result<Self> {
        Self::detect_for(Layout::Host)
    }

    /// The hierarchies a container in `layout` uses.
    pub fn detect_for(layout: Layout) -> Result<Self> {
        let data = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::Cgroup {
            path: "/proc/self/mountinfo".into(),
            reason: e.to_string(),
        })?;
        Self::parse(&data).restrict(layout)
    }

    fn restrict(mut self, layout: Layout) -> Result<Self> {
        if layout == Layout::Unified {
            self.list.retain(|h| h.unified);
            if self.list.is_empty() {
                return Err(Error::Cgroup {
                    path: "/proc/self/mountinfo".into(),
                    reason: "the unified cgroup layout was asked for, but no cgroup2 \
                             hierarchy is mounted"
                        .into(),
                });
            }
        }
        Ok(self)
    }

    /// Where the cgroup2 hierarchy is mounted, if it is.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.list
            .iter()
            .find(|h| h.unified)
            .map(|h| h.mount.as_path())
    }

    /// The controllers that can limit a container: v1 controllers, or those the cgroup2
    /// root offers in unified mode.
    pub fn controllers(&self) -> Vec<String> {
        if self.mode() == Mode::Unified {
            let root = self.unified_mount().unwrap_or(Path::new("/sys/fs/cgroup"));
            let mut c: Vec<String> = read(root, "cgroup.controllers")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            // Device rules by eBPF and the freezer are part of every cgroup2 directory.
            c.extend(["devices".to_string(), "freezer".to_string()]);
            c.sort();
            return c;
        }
        let mut c: Vec<String> = self
            .list
            .iter()
            .flat_map(|h| h.controllers.iter())
            .filter(|c| !c.starts_with("name="))
            .cloned()
            .collect();
        c.sort();
        c
    }

    fn parse(mountinfo: &str) -> Self {
        let mut list = Vec::new();
        for line in mountinfo.lines() {
            // id parent major:minor root mountpoint options [optional...] - fstype source superopts
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, mount) = (unescape(pre[3]), unescape(pre[4]));
            match post[0] {
                "cgroup2" => list.push(Hierarchy {
                    mount: mount.into(),
                    root: root.into(),
                    controllers: vec![],
                    unified: true,
                }),
                "cgroup" => {
                    let controllers: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "relatime"
                                    | "noatime"
                                    | "nosuid"
                                    | "nodev"
                                    | "noexec"
                                    | "clone_children"
                                    | "xattr"
                            ) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty()
                        || list
                            .iter()
                            .any(|h: &Hierarchy| h.controllers == controllers)
                    {
                        continue;
                    }
                    list.push(Hierarchy {
                        mount: mount.into(),
                        root: root.into(),
                        controllers,
                        unified: false,
                    });
                }
                _ => {}
            }
        }
        Hierarchies { list }
    }

    /// The host's cgroup mode.
    pub fn mode(&self) -> Mode {
        let v1 = self.list.iter().any(|h| !h.unified);
        let v2 = self.list.iter().any(|h| h.unified);
        match (v1, v2) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::Legacy,
            _ => Mode::Unified,
        }
    }
}

/// Replaces mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A container's cgroup, in every mounted hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    mode: Mode,
    /// (hierarchy, absolute directory of this cgroup in it)
    dirs: Vec<(Hierarchy, PathBuf)>,
}

impl Cgroup {
    /// Resolves `path` in every hierarchy of `layout` without touching anything.
    pub fn open(path: &Path, layout: Layout) -> Result<Self> {
        let h = Hierarchies::detect_for(layout)?;
        Self::open_in(&h, path)
    }

    /// Like [`Cgroup::open`] with already-detected hierarchies.
    pub fn open_in(h: &Hierarchies, path: &Path) -> Result<Self> {
        let own = if path.is_absolute() {
            String::new()
        } else {
            std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
        };
        let mut dirs = Vec::new();
        for hier in &h.list {
            let base = if path.is_absolute() {
                PathBuf::from("/")
            } else {
                own_cgroup(&own, hier)
            };
            let rel = base.join(path);
            // The mount shows the hierarchy from `root`; strip it to get a path under `mount`.
            let rel = rel.strip_prefix(&hier.root).unwrap_or(&rel).to_path_buf();
            let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
            dirs.push((hier.clone(), hier.mount.join(rel)));
        }
        if dirs.is_empty() {
            return Err(Error::Cgroup {
                path: path.into(),
                reason: "no cgroup hierarchy is mounted".into(),
            });
        }
        Ok(Cgroup {
            mode: h.mode(),
            dirs,
        })
    }

    /// Creates the cgroup in every hierarchy and applies `resources`. On failure nothing is
    /// left behind.
    pub fn create(
        h: &Hierarchies,
        path: &Path,
        resources: Option<&LinuxResources>,
    ) -> Result<Self> {
        let cg = Self::open_in(h, path)?;
        // Device rules always apply at creation: without any in the spec, only the defaults
        // are allowed (an update without rules leaves them as they are).
        let mut r = resources.cloned().unwrap_or_default();
        if r.devices().is_none() {
            r.set_devices(Some(Vec::new()));
        }
        let res = (|| {
            for (hier, dir) in &cg.dirs {
                if hier.unified {
                    v2::create(&hier.mount, dir, cg.mode == Mode::Unified)?;
                } else {
                    v1::create(hier, dir)?;
                }
            }
            cg.apply(&r)
        })();
        match res {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.destroy();
                Err(e)
            }
        }
    }

    /// [`Cgroup::create`] for the systemd driver, whose cgroup is `<scope>/container`: the
    /// scope must take the container's first process from systemd before anything is
    /// delegated below it (on cgroup v2 a cgroup that delegates holds no processes), so on
    /// the unified hierarchy only the directories are made here, and
    /// [`Cgroup::finish_in_scope`] applies `resources` once the process is in the container's
    /// cgroup. On v1 (and hybrid) hierarchies nothing waits.
    pub fn create_in_scope(
        h: &Hierarchies,
        path: &Path,
        resources: Option<&LinuxResources>,
    ) -> Result<Self> {
        let cg = Self::open_in(h, path)?;
        if cg.mode != Mode::Unified {
            drop(cg);
            return Self::create(h, path, resources);
        }
        let res = (|| {
            for (hier, dir) in &cg.dirs {
                let scope = dir.parent().unwrap_or(dir);
                v2::create(&hier.mount, scope, true)?;
                mkdir(dir)?;
            }
            Ok(())
        })();
        match res {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.destroy();
                Err(e)
            }
        }
    }

    /// The second half of [`Cgroup::create_in_scope`], after the process is in the cgroup:
    /// the scope delegates its controllers and `resources` are applied.
    pub fn finish_in_scope(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.mode != Mode::Unified {
            return Ok(());
        }
        for (_, dir) in &self.dirs {
            v2::enable_children(dir.parent().unwrap_or(dir))?;
        }
        let mut r = resources.cloned().unwrap_or_default();
        if r.devices().is_none() {
            r.set_devices(Some(Vec::new()));
        }
        self.apply(&r)
    }

    /// The host's cgroup mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Applies resource limits (also used by `update`). A limit whose controller is not
    /// available is an error naming the field: the container never runs with less than it
    /// asked for.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.check_controllers(r)?;
        for (hier, dir) in &self.dirs {
            if hier.unified {
                if self.mode == Mode::Unified {
                    v2::apply(dir, r)?;
                }
            } else {
                v1::apply(hier, dir, r)?;
            }
        }
        Ok(())
    }

    fn check_controllers(&self, r: &LinuxResources) -> Result<()> {
        let cpu = r.cpu().as_ref();
        let wanted = [
            ("linux.resources.memory", "memory", r.memory().is_some()),
            (
                "linux.resources.cpu",
                "cpu",
                cpu.is_some_and(|c| {
                    c.shares().is_some()
                        || c.quota().is_some()
                        || c.period().is_some()
                        || c.realtime_runtime().is_some()
                        || c.realtime_period().is_some()
                }),
            ),
            (
                "linux.resources.cpu.cpus",
                "cpuset",
                cpu.is_some_and(|c| {
                    c.cpus().as_deref().is_some_and(|v| !v.is_empty())
                        || c.mems().as_deref().is_some_and(|v| !v.is_empty())
                }),
            ),
            ("linux.resources.pids", "pids", r.pids().is_some()),
            (
                "linux.resources.blockIO",
                if self.mode == Mode::Unified {
                    "io"
                } else {
                    "blkio"
                },
                r.block_io().is_some(),
            ),
            (
                "linux.resources.hugepageLimits",
                "hugetlb",
                r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
            ),
            (
                "linux.resources.network.classID",
                "net_cls",
                r.network().as_ref().is_some_and(|n| n.class_id().is_some()),
            ),
            (
                "linux.resources.network.priorities",
                "net_prio",
                r.network()
                    .as_ref()
                    .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty())),
            ),
        ];
        for (field, controller, asked) in wanted {
            if asked && !self.has_controller(controller) {
                return Err(Error::spec(
                    field,
                    format!("the {controller} cgroup controller is not available on this host"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `controller` can be used for this cgroup.
    fn has_controller(&self, controller: &str) -> bool {
        if self.mode == Mode::Unified {
            let dir = &self.dirs[0].1;
            let parent = dir.parent().unwrap_or(dir);
            let available = read(parent, "cgroup.controllers").unwrap_or_default();
            return available.split_whitespace().any(|c| c == controller);
        }
        self.dir_for(controller).is_some()
    }

    /// Moves a process into the cgroup in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        self.add_except_unified(pid, false)
    }

    /// Moves a process into the cgroup in every hierarchy but, with `skip_unified`, the
    /// cgroup2 one (where a `CLONE_INTO_CGROUP` child was born already: writing it again would
    /// still be a migration and wait like one).
    pub fn add_except_unified(&self, pid: i32, skip_unified: bool) -> Result<()> {
        for (h, dir) in &self.dirs {
            if !(skip_unified && h.unified) {
                write(dir, "cgroup.procs", &pid.to_string())?;
            }
        }
        Ok(())
    }

    /// An open descriptor of the cgroup2 directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn unified_dir(&self) -> Option<std::os::fd::OwnedFd> {
        let (_, dir) = self.dirs.iter().find(|(h, _)| h.unified)?;
        std::fs::File::open(dir).ok().map(Into::into)
    }

    /// The directory of the cgroup in the hierarchy holding `controller` (v1) or the unified one.
    fn dir_for(&self, controller: &str) -> Option<&Path> {
        if self.mode == Mode::Unified {
            return self.dirs.first().map(|(_, d)| d.as_path());
        }
        self.dirs
            .iter()
            .find(|(h, _)| h.controllers.iter().any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// All processes in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self
            .dir_for("pids")
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()))
            .expect("at least one hierarchy");
        let data = read(dir, "cgroup.procs")?;
        Ok(data.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freezes (`true`) or thaws (`false`) every process in the cgroup and waits until done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if self.mode == Mode::Unified {
            v2::freeze(self.dirs[0].1.as_path(), frozen)
        } else {
            let dir = self.dir_for("freezer").ok_or_else(|| Error::Cgroup {
                path: self.dirs[0].1.clone(),
                reason: "the freezer controller is not mounted".into(),
            })?;
            v1::freeze(dir, frozen)
        }
    }

    /// Whether the cgroup is frozen.
    pub fn frozen(&self) -> bool {
        if self.mode == Mode::Unified {
            v2::frozen(&self.dirs[0].1)
        } else {
            self.dir_for("freezer").is_some_and(v1::frozen)
        }
    }

    /// Usage statistics.
    pub fn stats(&self) -> Result<Stats> {
        if self.mode == Mode::Unified {
            v2::stats(&self.dirs[0].1)
        } else {
            v1::stats(
                self.dir_for("cpuacct"),
                self.dir_for("cpu"),
                self.dir_for("memory"),
                self.dir_for("pids"),
                self.dir_for("blkio"),
            )
        }
    }

    /// Removes the cgroup from every hierarchy. Processes must have exited; EBUSY is retried
    /// briefly because the kernel releases a cgroup a moment after its last task exits.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for (_, dir) in self.dirs.iter().rev() {
            if let Err(e) = rmdir_retry(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// With the systemd driver, after [`Cgroup::destroy`]: stops the container's scope
    /// (systemd removes its cgroup where it made one) and removes the scope's directory
    /// where berth made it (the hierarchies systemd does not manage). Parts already gone are
    /// fine.
    pub fn release_scope(&self, unit: &str) -> Result<()> {
        let stopped = systemd::stop(unit);
        for (_, dir) in self.dirs.iter().rev() {
            if let Some(scope) = dir.parent() {
                match std::fs::remove_dir(scope) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        tracing::debug!(dir = %scope.display(), error = %e, "scope directory kept");
                    }
                    _ => {}
                }
            }
        }
        stopped
    }

    /// The directories of this cgroup, for diagnostics and tests.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }
}

/// The runtime's own cgroup in `hier`, from /proc/self/cgroup.
fn own_cgroup(proc_cgroup: &str, hier: &Hierarchy) -> PathBuf {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let matches = if hier.unified {
            ctrls.is_empty()
        } else {
            let mut mine: Vec<&str> = ctrls.split(',').collect();
            mine.sort_unstable();
            let mut theirs: Vec<&str> = hier.controllers.iter().map(String::as_str).collect();
            theirs.sort_unstable();
            mine == theirs
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

fn rmdir_retry(dir: &Path) -> Result<()> {
    // Killed processes leave the cgroup only once the kernel has torn them down, which on a
    // loaded machine can take a while: back off from 1 ms to 50 ms, about 3 s in all.
    let mut wait = std::time::Duration::from_millis(1);
    for attempt in 0..70 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 69 => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(Error::Cgroup {
                    path: dir.into(),
                    reason: format!("remove: {e}"),
                })
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// Creates one cgroup directory; an existing one is fine.
pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Cgroup {
            path: dir.into(),
            reason: format!("create: {e}"),
        }),
    }
}

/// Writes a control file.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| Error::Cgroup {
        path,
        reason: format!("write {value:?}: {e}"),
    })
}

/// Reads a control file.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|e| Error::Cgroup {
        path,
        reason: format!("read: {e}"),
    })
}

/// Reads a control file holding one number ("max" reads as u64::MAX).
pub(crate) fn read_u64(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            if s == "max" {
                Some(u64::MAX)
            } else {
                s.parse().ok()
            }
        })
        .unwrap_or(0)
}

/// Looks up `key value` in a flat-keyed file such as memory.stat or cpu.stat.
pub(crate) fn keyed(data: &str, key: &str) -> u64 {
    data.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
30 25 0:27 / /sys/fs/cgroup/cpu\\040x rw,relatime - cgroup cgroup rw,cpuset,clone_children
";

    #[test]
    fn parses_hybrid_layout() {
        let h = Hierarchies::parse(HYBRID);
        assert_eq!(h.mode(), Mode::Hybrid);
        assert_eq!(h.list.len(), 5);
        assert_eq!(h.list[0].controllers, vec!["cpu"]);
        assert_eq!(h.list[2].controllers, vec!["name=systemd"]);
        assert!(h.list[3].unified);
        assert_eq!(h.list[4].mount, PathBuf::from("/sys/fs/cgroup/cpu x"));
        assert_eq!(h.list[4].controllers, vec!["cpuset"]);
    }

    #[test]
    fn detects_unified_and_legacy() {
        let v2 = "29 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(Hierarchies::parse(v2).mode(), Mode::Unified);
        let v1 = "26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let h = Hierarchies::parse(v1);
        assert_eq!(h.mode(), Mode::Legacy);
        assert_eq!(h.list[0].controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn resolves_relative_paths_from_own_cgroup() {
        let h = Hierarchies::parse(HYBRID);
        let own = "4:memory:/outer/me\n1:cpu:/\n0::/u\n";
        assert_eq!(own_cgroup(own, &h.list[1]), PathBuf::from("/outer/me"));
        assert_eq!(own_cgroup(own, &h.list[3]), PathBuf::from("/u"));
        assert_eq!(own_cgroup(own, &h.list[0]), PathBuf::from("/"));
    }

    #[test]
    fn parses_block_io() {
        let v1 = "254:0 Read 0\n254:0 Write 8388608\n254:0 Total 8388608\nTotal 8388608\n";
        let e = IoEntry::parse_v1(v1);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[1].major, e[1].minor, e[1].op.as_str(), e[1].value),
            (254, 0, "Write", 8388608)
        );
        let (bytes, ops) =
            IoEntry::parse_v2("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            bytes
                .iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            [("read", 4096), ("write", 8192)]
        );
        assert_eq!(ops.iter().map(|e| e.value).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn keyed_lookup() {
        let d = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(keyed(d, "user_usec"), 1000);
        assert_eq!(keyed(d, "missing"), 0);
    }
}
