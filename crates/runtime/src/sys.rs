//! The few raw system calls that neither `nix` nor `libc` wrap safely. Each is a thin,
//! documented wrapper so that the unsafety stays here.

use nix::errno::Errno;

/// How a `clone_parent` call returned.
pub(crate) enum Forked {
    /// In the parent, with the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `clone(CLONE_PARENT | SIGCHLD)` with fork semantics: the child shares nothing and runs on a
/// copy of the caller's stack, but its parent is the caller's parent. Stage 1 uses it so that
/// the container's init becomes a child of the runtime process itself, which can then wait for
/// it (and so that init enters the pid namespace stage 1 unshared).
///
/// The runtime is single-threaded, so the child's copy of the address space is consistent.
pub(crate) fn clone_parent() -> Result<Forked, Errno> {
    clone_with(libc::CLONE_PARENT)
}

/// `clone(flags | SIGCHLD)` with fork semantics: the child starts in the new namespaces named
/// by `flags` (CLONE_NEW*), as pid 1 when CLONE_NEWPID is set.
pub(crate) fn clone_with(flags: libc::c_int) -> Result<Forked, Errno> {
    // SAFETY: with a null stack pointer, raw clone behaves as fork(2); the runtime is
    // single-threaded, so no other thread's locks are inherited held, and the child only runs
    // fork-safe code before it execs or exits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `clone3(flags | CLONE_INTO_CGROUP)` with fork semantics: like [`clone_with`], and the child
/// is born in the cgroup2 directory `cgroup` (an open descriptor of it). Being born there is
/// not a migration, so it does not wait for the RCU grace period that moving a task into a
/// cgroup costs (the largest single cost of a start, see `bench/startpath`).
pub(crate) fn clone_into_cgroup(
    flags: libc::c_int,
    cgroup: std::os::fd::BorrowedFd<'_>,
) -> Result<Forked, Errno> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    use std::os::fd::AsRawFd;
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
    // tls, set_tid, set_tid_size, cgroup (CLONE_ARGS_SIZE_VER2, 88 bytes).
    let mut args = [0u64; 11];
    args[0] = (flags as u32 as u64) | CLONE_INTO_CGROUP;
    args[4] = libc::SIGCHLD as u64;
    args[10] = cgroup.as_raw_fd() as u64;
    // SAFETY: a zeroed clone_args with no stack is fork(2) semantics, as for `clone_with`; the
    // runtime is single-threaded; the struct lives across the call and its size is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args.as_mut_ptr(),
            std::mem::size_of_val(&args),
        )
    };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `fork(2)`.
pub(crate) fn fork() -> Result<Forked, Errno> {
    // SAFETY: the runtime is single-threaded; see `clone_parent`.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Marks every descriptor from `first` up close-on-exec, so nothing of the host leaks into
/// the container (CVE-2024-21626).
pub(crate) fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it never
    // invalidates a descriptor that Rust code owns.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: walk /proc/self/fd, or, where /proc is not
    // mounted, every number below the descriptor limit.
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd: &i32| fd >= first as i32)
            .collect(),
        Err(_) => {
            let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map(|(soft, _)| soft.min(1 << 20))
                .unwrap_or(1024);
            (first as i32..max as i32).collect()
        }
    };
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on a descriptor number is harmless; unused numbers fail
        // with EBADF, which is ignored.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Ends a forked child immediately, without running the parent's atexit handlers or
/// destructors a second time.
pub(crate) fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Resets every signal's disposition to the default and unblocks all signals. Rust's std
/// ignores SIGPIPE at start-up, and ignored signals survive execve: without this every
/// container process would inherit an ignored SIGPIPE.
pub(crate) fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound; invalid numbers just fail with EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

#[cfg(test)]
mod clone_tests {
    use super::*;
    use std::io::Read;

    /// A child made by `clone_into_cgroup` starts in the cgroup2 directory it was given
    /// (needs root and a cgroup2 mount, as the runtime's other tests do).
    #[test]
    fn a_child_is_born_in_the_cgroup() {
        let h = crate::cgroups::Hierarchies::detect().unwrap();
        let mount = h.unified_mount().expect("a cgroup2 mount").to_path_buf();
        let name = format!("berth-clone3-test-{}", std::process::id());
        let dir = mount.join(&name);
        std::fs::create_dir(&dir).expect("create a cgroup2 directory (root is needed)");
        let fd: std::os::fd::OwnedFd = std::fs::File::open(&dir).unwrap().into();
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::{AsFd, AsRawFd};
        match clone_into_cgroup(0, fd.as_fd()).unwrap() {
            Forked::Child => {
                let own = std::fs::read("/proc/self/cgroup").unwrap_or_default();
                // SAFETY: writing a live buffer to our pipe, then leaving the child at once.
                unsafe {
                    libc::write(w.as_raw_fd(), own.as_ptr().cast(), own.len());
                    libc::_exit(0);
                }
            }
            Forked::Parent(pid) => {
                drop(w);
                let mut got = String::new();
                std::fs::File::from(r).read_to_string(&mut got).unwrap();
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                std::fs::remove_dir(&dir).unwrap();
                let line = got
                    .lines()
                    .find(|l| l.starts_with("0::"))
                    .unwrap_or_default();
                assert!(line.ends_with(&format!("/{name}")), "{got}");
            }
        }
    }
}
