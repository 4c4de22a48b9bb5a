//! Namespaces: which to create, which to join by path, and the user namespace's id maps.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::error::{Context, Result};

/// The namespace plan of a container.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces to create (unshare), without the user namespace.
    pub new: CloneFlags,
    /// A new user namespace is wanted.
    pub new_user: bool,
    /// Namespaces to join: (flag, path).
    pub join: Vec<(CloneFlags, PathBuf)>,
}

/// The clone flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a namespace as it appears in `/proc/<pid>/ns/`.
pub fn proc_name(f: CloneFlags) -> &'static str {
    match f {
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNET => "net",
        _ => "time",
    }
}

/// The clone flag of a namespace named as in `/proc/<pid>/ns/` (the inverse of [`proc_name`]).
pub fn flag_for_proc_name(name: &str) -> Option<CloneFlags> {
    Some(match name {
        "mnt" => CloneFlags::CLONE_NEWNS,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "user" => CloneFlags::CLONE_NEWUSER,
        "pid" => CloneFlags::CLONE_NEWPID,
        "net" => CloneFlags::CLONE_NEWNET,
        _ => return None,
    })
}

impl Plan {
    /// Builds the plan from the spec's `linux.namespaces`.
    pub fn from_spec(linux: &Linux) -> Self {
        let mut plan = Plan {
            new: CloneFlags::empty(),
            new_user: false,
            join: Vec::new(),
        };
        for ns in linux.namespaces().iter().flatten() {
            let f = flag(ns.typ());
            match ns.path() {
                Some(p) => plan.join.push((f, p.clone())),
                None if f == CloneFlags::CLONE_NEWUSER => plan.new_user = true,
                None => plan.new |= f,
            }
        }
        // Join the user namespace first: it decides what the others may do.
        plan.join.sort_by_key(|(f, _)| {
            if *f == CloneFlags::CLONE_NEWUSER {
                0
            } else {
                1
            }
        });
        plan
    }

    /// Whether init can be cloned directly with its namespace flags, without a stage 1: true
    /// unless a pid or user namespace is joined by path (those must be entered before init is
    /// created) or a new user namespace is combined with joins (runc joins before creating the
    /// user namespace, so that the joined namespaces stay reachable).
    pub fn direct_clone(&self) -> bool {
        let joins_pid_or_user = self
            .join
            .iter()
            .any(|(f, _)| *f == CloneFlags::CLONE_NEWPID || *f == CloneFlags::CLONE_NEWUSER);
        !joins_pid_or_user && (!self.new_user || self.join.is_empty())
    }

    /// Whether the container gets its own mount namespace.
    pub fn has_mount_ns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWNS)
            || self.join.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNS)
    }

    /// Opens every namespace to join, before any setns changes what the paths mean.
    pub fn open_joins(&self) -> Result<Vec<(CloneFlags, OwnedFd)>> {
        self.join
            .iter()
            .map(|(f, p)| {
                let fd = open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .ctx(|| format!("open namespace {}", p.display()))?;
                Ok((*f, fd))
            })
            .collect()
    }
}

/// Joins the namespaces opened by [`Plan::open_joins`].
pub fn join(fds: Vec<(CloneFlags, OwnedFd)>) -> Result<()> {
    for (f, fd) in fds {
        nix::sched::setns(&fd, f).ctx(|| format!("join {} namespace", proc_name(f)))?;
    }
    Ok(())
}

/// Formats id mappings as `/proc/<pid>/uid_map` expects them.
pub fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the uid and gid maps of process `pid` (which has unshared its user namespace).
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    let uid = format_map(linux.uid_mappings().as_deref().unwrap_or_default());
    let gid = format_map(linux.gid_mappings().as_deref().unwrap_or_default());
    let p = format!("/proc/{pid}/uid_map");
    std::fs::write(&p, &uid).ctx(|| format!("write {p} ({})", uid.trim()))?;
    let p = format!("/proc/{pid}/gid_map");
    std::fs::write(&p, &gid).ctx(|| format!("write {p} ({})", gid.trim()))
}

/// Brings up the loopback interface of the network namespace this process is in. A network
/// namespace the runtime creates gets its `lo` up (runc leaves it down; dockerd, podman and
/// the CRI runtimes all bring it up, so a container with no network still has localhost, and
/// a pod's containers talk over it): two ioctls, no netlink.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "loopback: socket".to_string());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the ifreq we pass, which lives
    // across both calls.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "loopback: get flags".to_string());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "loopback: set up".to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_orders_user_first_and_splits_new_from_join() {
        let linux: Linux = serde_json::from_value(serde_json::json!({
            "namespaces": [
                {"type": "pid"},
                {"type": "network", "path": "/proc/1/ns/net"},
                {"type": "user", "path": "/proc/1/ns/user"},
                {"type": "mount"}
            ]
        }))
        .unwrap();
        let plan = Plan::from_spec(&linux);
        assert_eq!(plan.new, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS);
        assert!(!plan.new_user);
        assert_eq!(plan.join[0].0, CloneFlags::CLONE_NEWUSER);
        assert_eq!(plan.join[1].0, CloneFlags::CLONE_NEWNET);
        assert!(plan.has_mount_ns());
    }

    #[test]
    fn proc_names_round_trip() {
        for n in ["mnt", "cgroup", "uts", "ipc", "user", "pid", "net"] {
            assert_eq!(proc_name(flag_for_proc_name(n).unwrap()), n);
        }
        assert!(flag_for_proc_name("time").is_none());
    }

    #[test]
    fn formats_maps() {
        let m: Vec<LinuxIdMapping> = serde_json::from_value(serde_json::json!([
            {"containerID": 0, "hostID": 100000, "size": 65536},
            {"containerID": 65536, "hostID": 5, "size": 1}
        ]))
        .unwrap();
        assert_eq!(format_map(&m), "0 100000 65536\n65536 5 1\n");
    }
}
