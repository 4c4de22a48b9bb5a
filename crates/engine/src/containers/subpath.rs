//! Volume subpaths: `--mount type=volume,…,volume-subpath=dir` (API 1.45's
//! `VolumeOptions.Subpath`) mounts one directory or file of a volume instead of all of it.
//!
//! A container that has the volume mounted read-write can put symlinks in it, so the subpath
//! is never handed to the runtime as a name. It is resolved beneath the volume's directory with
//! openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): a symlink may lead elsewhere inside the
//! volume (as dockerd allows), any way out is refused with dockerd's words. What was found is
//! then bind-mounted *through its open descriptor* onto a mount point of the berth's own under
//! the exec root, and the container's spec names that mount point: nothing can swap the path
//! between the check and the mount. The mount points stay while the container may restart
//! (its shim restarts it from the same spec) and go with the container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::error::{invalid, unavailable, EngineError};

/// The subpath as given, checked as dockerd checks it at create: relative, and not leaving
/// the volume by `..`. Returns it cleaned.
pub fn check(subpath: &str) -> Result<String, EngineError> {
    let p = Path::new(subpath);
    let mut depth: i32 = 0;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => {
                depth += 1;
                out.push(n);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                out.pop();
            }
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(invalid(format!(
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume: {subpath}"
            )));
        }
    }
    Ok(out.display().to_string())
}

/// Where the subpath mount `index` of container `id` is mounted.
fn point(exec_root: &Path, id: &str, index: usize) -> PathBuf {
    exec_root.join("subpaths").join(id).join(index.to_string())
}

/// Resolves `subpath` beneath `base` (a volume's directory) and mounts what it names at the
/// container's mount point `index`, replacing what was mounted there before. Returns the
/// mount point, the source for the container's spec.
pub fn prepare(
    exec_root: &Path,
    id: &str,
    index: usize,
    base: &Path,
    subpath: &str,
) -> Result<PathBuf, EngineError> {
    let root: OwnedFd = std::fs::File::open(base)
        .map_err(|e| unavailable(format!("open the volume {}: {e}", base.display())))?
        .into();
    let found = berth_image::layer::openat2(
        &root,
        Path::new(subpath),
        libc::O_PATH,
        berth_image::layer::RESOLVE_BENEATH | berth_image::layer::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => invalid(format!(
            "cannot mount subpath {subpath}: path concatenation escapes the base directory"
        )),
        _ => invalid(format!(
            "cannot mount subpath {subpath}: cannot access path {}: {e}",
            base.join(subpath).display()
        )),
    })?;
    let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", found.as_raw_fd()))
        .map_err(|e| unavailable(format!("stat the subpath {subpath}: {e}")))?
        .is_dir();
    let target = point(exec_root, id, index);
    // A mount left from an earlier start (or a copy) is replaced: the volume may have changed.
    let _ = berth_shim::MountSpec::unmount(&target);
    let _ = std::fs::remove_dir(&target);
    let _ = std::fs::remove_file(&target);
    let made = match target.parent() {
        Some(parent) => std::fs::create_dir_all(parent).and_then(|()| {
            if is_dir {
                std::fs::create_dir(&target)
            } else {
                std::fs::File::create(&target).map(drop)
            }
        }),
        None => Ok(()),
    };
    made.map_err(|e| unavailable(format!("make the mount point {}: {e}", target.display())))?;
    let src =
        std::ffi::CString::new(format!("/proc/self/fd/{}", found.as_raw_fd())).expect("no NUL");
    let dst = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| invalid("a mount point with a NUL byte"))?;
    // SAFETY: both paths are NUL-terminated C strings alive for the call; a plain bind mount
    // takes no file system type or data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(unavailable(format!("mount the subpath {subpath}: {e}")));
    }
    Ok(target)
}

/// Unmounts and removes every subpath mount point of container `id`. Only empty mount points
/// are removed (never a directory's content: a mount that could not be undone stays).
pub fn release(exec_root: &Path, id: &str) {
    let dir = exec_root.join("subpaths").join(id);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let _ = berth_shim::MountSpec::unmount(&p);
        if std::fs::remove_dir(&p).is_err() {
            let _ = std::fs::remove_file(&p);
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subpaths_are_checked_as_dockerd_checks_them() {
        assert_eq!(check("subdir").unwrap(), "subdir");
        assert_eq!(check("./a/../b/").unwrap(), "b");
        for bad in ["/etc", "../x", "a/../../x", "../../../../../../etc/passwd"] {
            let e = check(bad).unwrap_err();
            assert!(
                e.message
                    .contains("subpath must be a relative path within the volume"),
                "{bad}: {e:?}"
            );
        }
    }
}
