//! CVE-2019-5736: a container process that can reach the runtime's `/proc/<pid>/exe` (for
//! example by making the runtime exec `/proc/self/exe`) could open the host binary and
//! overwrite it. So before it touches a container, the runtime re-executes itself from a copy
//! that cannot be written:
//!
//! 1. preferred, no copy: the binary's directory is mounted as a *detached*, read-only overlayfs
//!    (new mount API: fsopen/fsconfig/fsmount, so the mount appears in no mount table) and the
//!    binary is exec'd through it. Opening it for writing through `/proc/<pid>/exe` then fails
//!    with EROFS, and the page cache is shared with the real binary. Overlayfs without an upper
//!    layer needs two lower layers; the second is an empty detached tmpfs.
//! 2. fallback: a sealed memfd copy (F_SEAL_WRITE and friends), as runc and crun do.
//!
//! Written by hand: no crate offers this, and it is ~150 lines of system calls.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Context, Error, Result};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

// Stable kernel ABI constants of the new mount API (linux/mount.h).
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

/// Whether the running executable is protected: a sealed memfd, or a file on a read-only
/// overlayfs.
pub fn is_cloned() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS takes no argument and only reads the descriptor's seals.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills the struct on success; it is read only then.
    if unsafe { libc::fstatfs(f.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstatfs returned 0, so the struct is initialised.
    let st = unsafe { st.assume_init() };
    st.f_type == OVERLAYFS_SUPER_MAGIC
        && nix::sys::statvfs::fstatvfs(&f)
            .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Re-executes the current program from a protected copy unless it already runs from one.
/// Returns only on failure.
pub fn ensure_cloned() -> Result<()> {
    if is_cloned() {
        return Ok(());
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).expect("argv has no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).expect("environment has no NUL")
        })
        .collect();
    let fd = match overlay_exe() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(error = %e, "read-only overlay of the runtime binary failed, copying to a memfd");
            memfd_exe()?
        }
    };
    let e = exec_fd(&fd, &args, &env);
    Err(Error::Sys {
        context: "re-exec from a protected copy of the runtime".into(),
        source: e,
    })
}

fn exec_fd(fd: &OwnedFd, args: &[CString], env: &[CString]) -> nix::errno::Errno {
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = env.iter().map(|a| a.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that outlive
    // the call; an empty path with AT_EMPTY_PATH execs the descriptor itself.
    unsafe {
        libc::execveat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    nix::errno::Errno::last()
}

fn check(r: libc::c_long, what: &str) -> Result<libc::c_long> {
    if r < 0 {
        return Err(Error::Sys {
            context: what.into(),
            source: nix::errno::Errno::last(),
        });
    }
    Ok(r)
}

/// A new detached mount of filesystem `fstype` with string options; returns the mount fd.
fn detached_mount(fstype: &CStr, opts: &[(&CStr, &CStr)], attrs: libc::c_uint) -> Result<OwnedFd> {
    // SAFETY: fsopen takes a NUL-terminated name and flags; the result is a new descriptor.
    let fs = check(
        unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) },
        "fsopen",
    )?;
    // SAFETY: `fs` is a descriptor we own from here on.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    for (k, v) in opts {
        check(
            // SAFETY: key and value are NUL-terminated strings that outlive the call.
            unsafe {
                libc::syscall(
                    libc::SYS_fsconfig,
                    fs.as_raw_fd(),
                    FSCONFIG_SET_STRING,
                    k.as_ptr(),
                    v.as_ptr(),
                    0,
                )
            },
            "fsconfig",
        )?;
    }
    check(
        // SAFETY: CMD_CREATE takes no key or value.
        unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        },
        "fsconfig create",
    )?;
    // SAFETY: fsmount turns the configured context into a detached mount descriptor.
    let m = check(
        unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) },
        "fsmount",
    )?;
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(m as i32) })
}

fn overlay_exe() -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ctx(|| "readlink /proc/self/exe".to_string())?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(Error::Io {
            context: format!("{}: the runtime binary has no directory", exe.display()),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    let dir_b = dir.as_os_str().as_bytes();
    if dir_b.iter().any(|b| matches!(b, b':' | b',' | b'\\'))
        || exe.to_string_lossy().ends_with(" (deleted)")
    {
        return Err(Error::Io {
            context: format!("{} cannot be an overlay layer", dir.display()),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    let empty = detached_mount(
        c"tmpfs",
        &[(c"mode", c"0500")],
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )?;
    let lower = CString::new(format!(
        "{}:/proc/self/fd/{}",
        dir.display(),
        empty.as_raw_fd()
    ))
    .expect("no NUL");
    let ovl = detached_mount(
        c"overlay",
        &[(c"lowerdir", lower.as_c_str())],
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )?;
    let name = CString::new(name.as_bytes()).expect("no NUL");
    // SAFETY: openat with a NUL-terminated relative name under the mount descriptor.
    let fd = unsafe {
        libc::openat(
            ovl.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    check(
        fd as libc::c_long,
        "open the runtime binary through the overlay",
    )?;
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn memfd_exe() -> Result<OwnedFd> {
    let mut src =
        std::fs::File::open("/proc/self/exe").ctx(|| "open /proc/self/exe".to_string())?;
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
    Ok(dst.into())
}
