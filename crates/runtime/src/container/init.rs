//! The children's side: stage 1 (namespaces, id maps) and init (root file system, process setup), up to the wait for `start` and the execve.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;

use crate::error::{Context, Error, Result};
use crate::namespaces::{self};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::Msg;
use crate::sys::{self, Forked};
use crate::{console, hooks, process, seccomp};

use super::*;

/// The first process the runtime forks.
pub(super) enum First {
    /// Stage 1, which will clone init and report its pid.
    Stage1(i32),
    /// Init itself (the fast path), and whether it was born in the cgroup2 directory.
    Init(i32, bool),
}

/// Becomes root in a new user namespace (its maps are written by then).
pub(super) fn become_userns_root() -> Result<()> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .ctx(|| "become root in the user namespace (gid 0 must be mapped)".to_string())?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .ctx(|| "become root in the user namespace (uid 0 must be mapped)".to_string())
}

/// Init on the fast path: cloned with its namespaces, it joins those given by path, unshares
/// the cgroup namespace once the parent has put it in its cgroup, then goes on as init.
pub(super) fn direct_init(ctx: &InitContext) -> ! {
    let r = (|| -> Result<std::convert::Infallible> {
        ctx.chan.expect(Msg::Go)?;
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if ctx.plan.new_user {
            become_userns_root()?;
        }
        namespaces::join(ctx.plan.open_joins()?)?;
        if ctx.plan.new.contains(CloneFlags::CLONE_NEWCGROUP) {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .ctx(|| "unshare cgroup namespace".to_string())?;
        }
        init(ctx)
    })();
    let Err(e) = r;
    let _ = ctx.chan.send(&Msg::failure(&e));
    sys::exit_child(1)
}

/// Stage 1: namespaces, then clone init. Never returns. Used when a pid or user namespace is
/// joined by path, which must happen before init exists.
pub(super) fn stage1(ctx: &InitContext) -> ! {
    let r = (|| -> Result<()> {
        ctx.chan.expect(Msg::Go)?;
        // Not dumpable: nothing in the container may ptrace us or open our /proc entries.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        // As runc: join every namespace given by path first (the user namespace first), then
        // create the new ones, so that joined namespaces are reachable with our privileges.
        namespaces::join(ctx.plan.open_joins()?)?;
        if ctx.plan.new_user {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .ctx(|| "unshare user namespace".to_string())?;
            ctx.chan.send(&Msg::NeedIdMaps)?;
            ctx.chan.expect(Msg::IdMapsDone)?;
            become_userns_root()?;
        }
        nix::sched::unshare(ctx.plan.new)
            .ctx(|| format!("unshare namespaces {:?}", ctx.plan.new))?;
        match sys::clone_parent().ctx(|| "clone init".to_string())? {
            Forked::Child => {
                let Err(e) = init(ctx);
                let _ = ctx.chan.send(&Msg::failure(&e));
                sys::exit_child(1);
            }
            Forked::Parent(pid) => ctx.chan.send(&Msg::Pid(pid)),
        }
    })();
    match r {
        Ok(()) => sys::exit_child(0),
        Err(e) => {
            let _ = ctx.chan.send(&Msg::failure(&e));
            sys::exit_child(1)
        }
    }
}

/// The container's init, before execve. Returns only on failure.
pub(super) fn init(ctx: &InitContext) -> Result<std::convert::Infallible> {
    let bundle = ctx.bundle;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let proc_ = spec.process().as_ref().expect("validated");
    let hooks = spec.hooks().as_ref();
    let in_userns = ctx.plan.new_user
        || ctx
            .plan
            .join
            .iter()
            .any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER);

    let has_container_hooks = hooks.is_some_and(|h| {
        h.create_container().as_ref().is_some_and(|v| !v.is_empty())
            || h.start_container().as_ref().is_some_and(|v| !v.is_empty())
    });
    let state_json = if has_container_hooks {
        match ctx.chan.recv()? {
            Msg::State(s) => s.into_bytes(),
            other => return Err(Error::Sync(format!("expected the state, got {other:?}"))),
        }
    } else {
        Vec::new()
    };
    let fifo = ctx.fifo.as_ref();

    let propagation = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(rootfs::propagation_flag)
        .transpose()?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    let devices = linux.devices().clone().unwrap_or_default();
    if ctx.plan.has_mount_ns() {
        rootfs::prepare(&RootfsPlan {
            rootfs: &bundle.rootfs,
            mounts: &mounts,
            devices: &devices,
            propagation,
            in_userns,
            new_cgroupns: ctx.plan.new.contains(CloneFlags::CLONE_NEWCGROUP),
            cgroups: &ctx.cgroup_mounts,
        })?;
    }
    let runtime_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if runtime_hooks {
        ctx.chan.send(&Msg::RunRuntimeHooks)?;
        ctx.chan.expect(Msg::HooksDone)?;
    }
    if let Some(h) = hooks.and_then(|h| h.create_container().as_ref()) {
        hooks::run(h, &state_json)?;
    }
    if ctx.plan.has_mount_ns() {
        if ctx.no_pivot {
            rootfs::move_root(&bundle.rootfs)?;
        } else {
            rootfs::pivot(&bundle.rootfs)?;
        }
    } else {
        nix::unistd::chroot(&bundle.rootfs).ctx(|| "chroot".to_string())?;
        nix::unistd::chdir("/").ctx(|| "chdir /".to_string())?;
    }
    // As dockerd does before runc: a missing working directory is made, before a read-only
    // root can forbid it.
    make_cwd(proc_)?;

    if let Some(sock) = &ctx.console {
        let (master, slave, name) = console::open_pty()?;
        if let Some(sz) = proc_.console_size() {
            console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
        }
        console::send_master(sock, &master, &name)?;
        drop(master);
        if ctx.plan.has_mount_ns() {
            console::mount_console(&name)?;
        }
        console::make_controlling(&slave)?;
    } else {
        nix::unistd::setsid().ok();
    }

    // Sysctls first: /proc/sys becomes read-only just below.
    if let Some(s) = linux.sysctl() {
        process::set_sysctls(s.iter())?;
    }
    if ctx.plan.has_mount_ns() {
        if let Some(p) = linux.masked_paths() {
            rootfs::mask_paths(p)?;
        }
        if let Some(p) = linux.readonly_paths() {
            rootfs::readonly_paths(p, in_userns)?;
        }
        if spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            rootfs::readonly_root(in_userns)?;
        }
        if let Some(f) = propagation {
            rootfs::set_root_propagation(f)?;
        }
    }
    if ctx.plan.new.contains(CloneFlags::CLONE_NEWNET) {
        namespaces::loopback_up()?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("hostname: set {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        process::set_domainname(d)?;
    }
    if let Some(p) = linux.personality() {
        process::set_personality(p)?;
    }
    finish_process(
        proc_,
        ctx.seccomp.as_ref(),
        in_userns,
        ctx.preserve_fds,
        |program, args, env| {
            ctx.chan.send(&Msg::Ready)?;
            match ctx.mode {
                StartMode::Direct => ctx.chan.expect(Msg::Start)?,
                StartMode::Fifo => {
                    use std::io::Read;
                    let mut b = [0u8; 1];
                    let mut f = fifo.expect("fifo mode has a fifo");
                    f.read_exact(&mut b).ctx(|| "wait for start".to_string())?;
                }
            }
            if let Some(h) = hooks.and_then(|h| h.start_container().as_ref()) {
                // startContainer sees the container as created, as runc shows it.
                let created = String::from_utf8_lossy(&state_json).replacen(
                    "\"status\":\"creating\"",
                    "\"status\":\"created\"",
                    1,
                );
                hooks::run(h, created.as_bytes())?;
            }
            let _ = (program, args, env);
            Ok(())
        },
    )
}

/// The shared tail of init and exec: rlimits, cwd, no_new_privs, seccomp, user, capabilities,
/// umask, descriptors; `before_exec` runs last (waiting for start), then execve.
pub(super) fn finish_process(
    p: &Process,
    seccomp_profile: Option<&seccomp::Program>,
    in_userns: bool,
    preserve_fds: u32,
    before_exec: impl FnOnce(&Path, &[CString], &[CString]) -> Result<()>,
) -> Result<std::convert::Infallible> {
    // First, before any seccomp filter could forbid the calls it needs.
    sys::cloexec_from(3 + preserve_fds).ctx(|| "mark descriptors close-on-exec".to_string())?;
    if let Some(r) = p.rlimits() {
        process::set_rlimits(r)?;
    }
    if let Some(io) = p.io_priority() {
        process::set_io_priority(io)?;
    }
    let nnp = p.no_new_privileges().unwrap_or(false);
    if nnp {
        process::set_no_new_privs()?;
    }
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before dropping caps.
    if !nnp {
        if let Some(s) = seccomp_profile {
            s.load()?;
        }
    }
    process::drop_bounding(p.capabilities().as_ref())?;
    let setgroups_allowed = !in_userns
        || std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow");
    process::switch_user(p, setgroups_allowed)?;
    process::set_capabilities(p.capabilities().as_ref())?;
    nix::unistd::chdir(p.cwd()).ctx(|| format!("process.cwd: chdir {}", p.cwd().display()))?;
    // CVE-2024-21626: a cwd through a descriptor this process still holds (`/proc/self/fd/N`,
    // not yet closed by its exec) can land outside the container's root. The kernel then
    // names the directory "(unreachable)…", which glibc's getcwd reports as ENOENT.
    match nix::unistd::getcwd() {
        Ok(d) if d.is_absolute() => {}
        _ => {
            return Err(crate::error::Error::spec(
                "process.cwd",
                format!(
                    "chdir {}: the working directory is outside the container's root",
                    p.cwd().display()
                ),
            ))
        }
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(p.user().umask().unwrap_or(0o022)));
    let program = process::find_program(p)?;
    let (args, env) = process::c_args(p)?;
    before_exec(&program, &args, &env)?;
    // As late as possible, so the runtime's own syscalls are not filtered.
    if nnp {
        if let Some(s) = seccomp_profile {
            s.load()?;
        }
    }
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|a| !a.is_empty()) {
        process::set_apparmor_on_exec(profile)?;
    }
    sys::reset_signals();
    Err(process::exec(&program, &args, &env))
}

/// Creates `process.cwd` inside the (already entered) root if it is missing, mode 0755, owned
/// by the container's root as dockerd makes it (`SetupWorkingDirectory`: the root identity,
/// whatever the process's user).
fn make_cwd(p: &Process) -> Result<()> {
    let cwd = p.cwd();
    if cwd.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .mode(0o755)
        .recursive(true)
        .create(cwd)
        .ctx(|| format!("process.cwd: mkdir {}", cwd.display()))
}
