//! Persistent network namespaces, as `ip netns add` makes them: a namespace kept alive by a
//! bind mount of its `/proc/.../ns/net` file onto a file of ours, so it outlives the processes
//! in it (a container restarted by its shim joins the same namespace, with the same address)
//! and berthd restarts.
//!
//! Code runs inside a namespace on a thread of its own ([`NetNs::run`]): `setns` of a
//! network namespace changes only the calling thread, and a thread that entered one is never
//! handed back to a pool.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{io, Error, Result};

/// A network namespace bind-mounted at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    pub path: PathBuf,
}

impl NetNs {
    /// Creates a new, empty namespace (only a down loopback) kept at `path`.
    pub fn create(path: &Path) -> Result<NetNs> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        }
        std::fs::File::create(path).map_err(io(format!("create {}", path.display())))?;
        let target = path.to_path_buf();
        let r = std::thread::spawn(move || -> Result<()> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Io {
                context: "unshare a network namespace".into(),
                source: e.into(),
            })?;
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let src = format!("/proc/self/task/{tid}/ns/net");
            mount(
                Some(src.as_str()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| Error::Io {
                context: format!("bind the network namespace to {}", target.display()),
                source: e.into(),
            })?;
            // This thread is inside the new namespace already: bring its loopback up here.
            crate::netlink::Netlink::open()?.set_up("lo")
        })
        .join()
        .map_err(|_| Error::Invalid("the namespace thread panicked".into()))?;
        if let Err(e) = r {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(NetNs {
            path: path.to_path_buf(),
        })
    }

    /// Opens the namespace at `path` (it must exist).
    pub fn open(path: &Path) -> Result<NetNs> {
        if !path.exists() {
            return Err(Error::NotFound(format!(
                "network namespace {}",
                path.display()
            )));
        }
        Ok(NetNs {
            path: path.to_path_buf(),
        })
    }

    /// A descriptor of the namespace (to move links into it).
    pub fn fd(&self) -> Result<OwnedFd> {
        let f =
            std::fs::File::open(&self.path).map_err(io(format!("open {}", self.path.display())))?;
        Ok(f.into())
    }

    /// Runs `f` on a fresh thread inside the namespace.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let fd = self.fd()?;
        let path = self.path.clone();
        std::thread::spawn(move || {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Io {
                context: format!("enter the network namespace {}", path.display()),
                source: e.into(),
            })?;
            f()
        })
        .join()
        .map_err(|_| Error::Invalid("a thread inside a network namespace panicked".into()))?
    }

    /// Unmounts and removes the namespace file; the namespace goes once nothing is in it. A
    /// namespace already gone is fine.
    pub fn remove(path: &Path) -> Result<()> {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => {
                return Err(Error::Io {
                    context: format!("unmount {}", path.display()),
                    source: e.into(),
                })
            }
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("remove {}", path.display()))(e)),
        }
    }

    /// Whether `path` is a mounted network namespace (a namespace file survives a reboot as an
    /// empty file; only a mounted one is live).
    pub fn is_live(path: &Path) -> bool {
        std::fs::File::open(path).is_ok_and(|f| {
            // SAFETY: an ioctl on a descriptor we own; NS_GET_NSTYPE has no memory effects.
            let t = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
            t == libc::CLONE_NEWNET
        })
    }
}

/// `_IO(0xb7, 0x3)`: the type of a namespace descriptor.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
