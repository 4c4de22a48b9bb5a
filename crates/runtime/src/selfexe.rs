//! CVE-2019-5736: a container process that can reach the runtime's `/proc/<pid>/exe` (for
//! example by making the runtime exec `/proc/self/exe`) could open the host binary and
//! overwrite it. The runtime therefore re-executes itself from a sealed memfd before it touches
//! a container: what the container can see is an immutable in-memory copy.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsRawFd;

use crate::error::{Context, Error, Result};

const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether the running executable is a sealed memfd.
pub fn is_cloned() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS takes no argument and only reads the descriptor's seals.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-executes the current program from a sealed memfd copy unless it already runs from one.
/// Returns only on failure.
pub fn ensure_cloned() -> Result<()> {
    if is_cloned() {
        return Ok(());
    }
    let mut src = std::fs::File::open("/proc/self/exe").ctx(|| "open /proc/self/exe".to_string())?;
    let fd = nix::sys::memfd::memfd_create(
        "berth-runtime",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx(|| "memfd_create".to_string())?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).ctx(|| "copy runtime binary into memfd".to_string())?;
    dst.flush().ctx(|| "flush memfd".to_string())?;
    // SAFETY: F_ADD_SEALS takes an integer seal mask.
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(Error::Sys {
            context: "seal memfd".into(),
            source: nix::errno::Errno::last(),
        });
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).expect("no NUL in argv"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            b.push(b'=');
            b.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(b).expect("no NUL in environment")
        })
        .collect();
    let e = nix::unistd::fexecve(&dst, &args, &env).unwrap_err();
    Err(Error::Sys {
        context: "re-exec from sealed memfd".into(),
        source: e,
    })
}
