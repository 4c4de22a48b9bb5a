//! `create`: the parent's side of making a container (cgroup, the stage-1 child and init, the handshake, the state saved), undone on failure.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::cgroups::{Cgroup, Hierarchies};
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::rootfs::CgroupMount;
use crate::spec::Bundle;
use crate::state::{rfc3339, ContainerState, Status};
use crate::sync::{Channel, Msg};
use crate::sys::{self, Forked};
use crate::{console, hooks, seccomp_cache};

use super::*;

/// Creates a container. In [`StartMode::Fifo`] the returned container waits for `start`;
/// in [`StartMode::Direct`] call [`Created::start`].
pub fn create(opts: &CreateOptions) -> Result<Created> {
    crate::spec::check_id(&opts.id)?;
    let bundle = crate::spec::load(&opts.bundle)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&opts.root)
        .ctx(|| format!("create runtime root {}", opts.root.display()))?;
    let dir = ContainerState::dir(&opts.root, &opts.id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(opts.id.clone()))
        }
        Err(e) => return Err(e).ctx(|| format!("create {}", dir.display())),
    }
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: None,
        scope: None,
    };
    let created = create_inner(opts, &bundle, &dir, &mut cleanup)?;
    cleanup.disarm();
    Ok(created)
}

/// Undoes a half-made container when dropped, unless disarmed.
pub(super) struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pid: Option<i32>,
    /// The systemd scope, and whether systemd has started it.
    scope: Option<(crate::cgroups::systemd::Scope, bool)>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
        self.scope = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            if let Ok(pids) = cg.pids() {
                for p in pids {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
            let _ = cg.destroy();
            if let Some((scope, true)) = &self.scope {
                let _ = cg.release_scope(&scope.unit);
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub(super) fn create_inner(
    opts: &CreateOptions,
    bundle: &Bundle,
    dir: &Path,
    cleanup: &mut Cleanup,
) -> Result<Created> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let proc_ = spec.process().as_ref().expect("validated");
    let plan = Plan::from_spec(linux);

    let hier = Hierarchies::detect_for(opts.cgroup_layout)?;
    let (cg_path, scope) = cgroup_path(spec, &opts.id, opts.systemd_cgroup)?;
    cleanup.scope = scope.map(|s| (s, false));
    let cg = if cleanup.scope.is_some() {
        Cgroup::create_in_scope(&hier, &cg_path, linux.resources().as_ref())?
    } else {
        Cgroup::create(&hier, &cg_path, linux.resources().as_ref())?
    };
    let cgroup_mounts = cgroup_mounts(&hier, &cg);
    cleanup.cgroup = Some(cg);

    let fifo = if opts.mode == StartMode::Fifo {
        let p = dir.join(FIFO);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600))
            .ctx(|| format!("mkfifo {}", p.display()))?;
        // O_RDWR never blocks; init later blocks reading until `start` writes a byte.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&p)
            .ctx(|| format!("open {}", p.display()))?;
        Some(f)
    } else {
        None
    };
    let console = match (&opts.console_socket, proc_.terminal().unwrap_or(false)) {
        (Some(p), true) => Some(console::connect(p)?),
        (None, true) => {
            return Err(Error::spec(
                "process.terminal",
                "a terminal was asked for: pass --console-socket",
            ))
        }
        (_, false) => None,
    };
    let (parent_chan, child_chan) = Channel::pair()?;
    let ns_names: Vec<String> = {
        let mut v: Vec<String> = linux
            .namespaces()
            .iter()
            .flatten()
            .map(|n| namespaces::proc_name(namespaces::flag(n.typ())).to_string())
            .collect();
        v.sort();
        v
    };
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| seccomp_cache::program(&seccomp_cache::dir(&opts.root), s))
        .transpose()?;
    let ctx = InitContext {
        seccomp,
        bundle,
        plan,
        chan: child_chan,
        console,
        cgroup_mounts,
        fifo,
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        mode: opts.mode,
    };

    let old_mask = block_signals()?;
    let child = if ctx.plan.direct_clone() {
        // Fast path: init is cloned straight into its new namespaces (the cgroup namespace is
        // unshared by init itself, once it is in its cgroup).
        let mut flags = ctx.plan.new - CloneFlags::CLONE_NEWCGROUP;
        if ctx.plan.new_user {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        // Born in its cgroup2 directory when the kernel can (no migration to wait for);
        // otherwise cloned and then moved, as before.
        let into = cleanup.cgroup.as_ref().and_then(Cgroup::unified_dir);
        let born_in = into.as_ref().map(|fd| {
            use std::os::fd::AsFd;
            sys::clone_into_cgroup(flags.bits(), fd.as_fd())
        });
        let forked = match born_in {
            Some(Ok(f)) => Ok((f, true)),
            // E2BIG/ENOSYS (an older kernel), or a cgroup that cannot take the child directly.
            Some(Err(_)) | None => sys::clone_with(flags.bits()).map(|f| (f, false)),
        };
        drop(into);
        match forked.ctx(|| format!("clone init {flags:?}")) {
            Ok((Forked::Child, _)) => direct_init(&ctx),
            Ok((Forked::Parent(pid), in_unified)) => First::Init(pid, in_unified),
            Err(e) => {
                restore_signals(&old_mask);
                return Err(e);
            }
        }
    } else {
        match sys::fork().ctx(|| "fork".to_string()) {
            Ok(Forked::Child) => stage1(&ctx),
            Ok(Forked::Parent(pid)) => First::Stage1(pid),
            Err(e) => {
                restore_signals(&old_mask);
                return Err(e);
            }
        }
    };
    drop(ctx.console);
    drop(ctx.chan);
    drop(ctx.fifo);
    let res = parent_side(
        opts,
        bundle,
        dir,
        cleanup,
        child,
        &parent_chan,
        &ns_names,
        &cg_path,
    );
    if opts.mode == StartMode::Fifo || res.is_err() {
        restore_signals(&old_mask);
    }
    let container = res?;
    Ok(Created {
        container,
        chan: parent_chan,
        old_mask,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn parent_side(
    opts: &CreateOptions,
    bundle: &Bundle,
    dir: &Path,
    cleanup: &mut Cleanup,
    child: First,
    chan: &Channel,
    ns_names: &[String],
    cg_path: &Path,
) -> Result<Container> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let proc_ = spec.process().as_ref().expect("validated");
    let plan_new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none());
    let (first, direct, in_unified) = match child {
        First::Stage1(p) => (p, false, false),
        First::Init(p, in_unified) => (p, true, in_unified),
    };
    if direct {
        cleanup.pid = Some(first);
    }
    let r = (|| {
        let cg = cleanup.cgroup.as_ref().expect("set above");
        cg.add_except_unified(first, in_unified)?;
        if let Some((scope, started)) = &mut cleanup.scope {
            // systemd moves the process into the scope's own cgroup; it goes back down into
            // the container's, where the limits and device rules are (see cgroups/systemd.rs).
            // Before `Go`: stage 1 must still be there to be moved.
            let what = format!("berth container {}", opts.id);
            crate::cgroups::systemd::start(scope, first, &what)?;
            *started = true;
            cg.add(first)?;
            cg.finish_in_scope(linux.resources().as_ref())?;
        }
        if let Some(v) = proc_.oom_score_adj() {
            std::fs::write(format!("/proc/{first}/oom_score_adj"), v.to_string())
                .ctx(|| format!("process.oomScoreAdj: set {v}"))?;
        }
        if direct {
            // The user namespace exists already: write the maps before init may go on.
            if plan_new_user {
                namespaces::write_id_maps(first, linux)?;
            }
            chan.send(&Msg::Go)?;
            return Ok(first);
        }
        chan.send(&Msg::Go)?;
        if plan_new_user {
            chan.expect(Msg::NeedIdMaps)?;
            namespaces::write_id_maps(first, linux)?;
            chan.send(&Msg::IdMapsDone)?;
        }
        chan.expect_pid()
    })();
    if !direct {
        let _ = waitpid(Pid::from_raw(first), None);
    }
    let init = r?;
    cleanup.pid = Some(init);

    let st = ContainerState {
        id: opts.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid: init,
        pid_start_time: crate::state::proc_stat(init).map(|s| s.1).unwrap_or(0),
        created: rfc3339(SystemTime::now()),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup_path: cg_path.to_path_buf(),
        cgroup_layout: opts.cgroup_layout,
        systemd_unit: cleanup.scope.as_ref().map(|(s, _)| s.unit.clone()),
        started: false,
        hooks: spec.hooks().clone(),
        namespaces: ns_names.to_vec(),
    };
    let hooks = spec.hooks().as_ref();
    let runtime_hooks: Vec<Hook> = hooks
        .map(|h| {
            h.prestart()
                .iter()
                .flatten()
                .chain(h.create_runtime().iter().flatten())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let container_hooks = hooks.is_some_and(|h| {
        h.create_container().as_ref().is_some_and(|v| !v.is_empty())
            || h.start_container().as_ref().is_some_and(|v| !v.is_empty())
    });
    if container_hooks {
        chan.send(&Msg::State(
            String::from_utf8(state_json(&st, Status::Creating)).expect("utf-8"),
        ))?;
    }
    if !runtime_hooks.is_empty() {
        chan.expect(Msg::RunRuntimeHooks)?;
        hooks::run(&runtime_hooks, &state_json(&st, Status::Creating))?;
        chan.send(&Msg::HooksDone)?;
    }
    chan.expect(Msg::Ready)?;

    let extra = ExecDefaults {
        seccomp: linux.seccomp().clone(),
    };
    std::fs::write(
        dir.join("exec.json"),
        serde_json::to_vec(&extra).expect("serialises"),
    )
    .ctx(|| "write exec defaults".to_string())?;
    st.save(&opts.root)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, init)?;
    }
    tracing::debug!(container = %opts.id, pid = init, "created");
    Ok(Container {
        state: st,
        root: opts.root.clone(),
    })
}

/// The cgroup hierarchies to show inside the container.
pub(super) fn cgroup_mounts(hier: &Hierarchies, cg: &Cgroup) -> Vec<CgroupMount> {
    let unified_mode = hier.mode() == crate::cgroups::Mode::Unified;
    hier.list
        .iter()
        .zip(cg.dirs())
        .filter(|(h, _)| unified_mode || !h.unified)
        .map(|(h, dir)| {
            let name = h
                .controllers
                .iter()
                .map(|c| c.strip_prefix("name=").unwrap_or(c))
                .collect::<Vec<_>>()
                .join(",");
            let options = if h.controllers.iter().any(|c| c.starts_with("name=")) {
                format!("none,{}", h.controllers.join(","))
            } else {
                h.controllers.join(",")
            };
            CgroupMount {
                name,
                options,
                host_dir: dir,
                unified: h.unified,
            }
        })
        .collect()
}
