//! openat2(2), which std and nix do not wrap: lookups whose containment the kernel enforces
//! (`RESOLVE_BENEATH`, `RESOLVE_IN_ROOT`), for layers, archives and container roots.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
/// `resolve` flag of [`openat2`]: no /proc magic links.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// `resolve` flag of [`openat2`]: the path must stay beneath `dir` (an escape is EXDEV).
pub const RESOLVE_BENEATH: u64 = 0x08;

/// openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: the kernel refuses any escape.
pub(crate) fn openat2_beneath(dir: &OwnedFd, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    openat2(
        dir,
        path,
        flags,
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    )
}

/// `resolve` flag of [`openat2`]: resolve as if `dir` were the root (symlinks included).
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// How often [`openat2`] tries a lookup that raced a rename or mount (EAGAIN).
pub const OPENAT2_TRIES: usize = 64;

/// openat2(2) relative to `dir` with the given open flags (O_CLOEXEC is added) and
/// RESOLVE_* flags. std and nix do not wrap it.
pub fn openat2(dir: &OwnedFd, path: &Path, flags: i32, resolve: u64) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // The kernel answers EAGAIN when a rename or mount anywhere on the system raced a `..`
    // of the path, as it cannot then vouch for the containment; openat2(2) says to retry.
    for _ in 0..OPENAT2_TRIES {
        // SAFETY: `how` is a valid open_how of the size passed; `c` is NUL-terminated.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: a new descriptor we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::EAGAIN))
}

/// Reads `rel` (a relative path) inside the directory `root`, refusing symlinks and `..` on the
/// way, so that a hostile layer cannot make the engine read a host file.
pub fn read_beneath(root: &Path, rel: &Path) -> std::io::Result<Vec<u8>> {
    let dir: OwnedFd = std::fs::File::open(root)?.into();
    let fd = openat2_beneath(&dir, rel, libc::O_RDONLY | libc::O_NOFOLLOW)?;
    let mut f = std::fs::File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut out)?;
    Ok(out)
}
