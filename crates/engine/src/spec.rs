//! A container's OCI runtime spec, from its Docker config and host config, with Docker's
//! defaults: the same capabilities, masked and read-only paths, device rules and mounts that
//! dockerd gives a container.

use std::path::{Path, PathBuf};

use crate::model::container::{ContainerConfig, HostConfig};
use serde_json::{json, Value};

use crate::error::{invalid, EngineError};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel headers name (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The paths a container (not privileged) sees masked, as dockerd's defaults.
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths a container (not privileged) sees read-only, as dockerd's defaults.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where a container's files are.
#[derive(Debug)]
pub struct Paths<'a> {
    /// The mounted root file system.
    pub rootfs: &'a Path,
    /// The container's directory (hostname, hosts and resolv.conf live there).
    pub dir: &'a Path,
    /// The image's layers and the container's upper directory, top first (for user names).
    pub layers: &'a [PathBuf],
    /// berth's init binary, mounted at /sbin/docker-init for `--init`.
    pub init: Option<&'a Path>,
    /// The network namespace to join (a bridge attachment); none means a new one.
    pub netns: Option<&'a Path>,
    /// The other namespaces to join, by kind (`ipc`, `pid`, `uts`), for modes
    /// `container:<x>`: the running target's `/proc/<pid>/ns/<kind>`. Unknown at create
    /// time (empty then: the mode is only checked).
    pub joined: &'a [(&'static str, PathBuf)],
    /// The container's own mounts (binds, volumes, tmpfs), in order.
    pub mounts: &'a [Value],
    /// The cgroup driver: systemd names the container's cgroup `system.slice:berth:<id>` (a
    /// scope the runtime asks systemd for), cgroupfs `/berth/<id>`.
    pub cgroup_driver: crate::cgroups::CgroupDriver,
}

/// Builds the spec. `path`/`args` are the process (entrypoint and command resolved).
pub fn build(
    id: &str,
    cfg: &ContainerConfig,
    hc: &HostConfig,
    path: &str,
    args: &[String],
    p: &Paths<'_>,
) -> Result<oci_spec::runtime::Spec, EngineError> {
    typed(build_json(id, cfg, hc, path, args, p)?, "spec")
}

/// What [`build`] refuses in a request, found without converting the result (create's
/// check of user input; the start builds the spec for real).
pub fn check(
    id: &str,
    cfg: &ContainerConfig,
    hc: &HostConfig,
    path: &str,
    args: &[String],
    p: &Paths<'_>,
) -> Result<(), EngineError> {
    build_json(id, cfg, hc, path, args, p).map(|_| ())
}

fn build_json(
    id: &str,
    cfg: &ContainerConfig,
    hc: &HostConfig,
    path: &str,
    args: &[String],
    p: &Paths<'_>,
) -> Result<Value, EngineError> {
    let privileged = hc.privileged.unwrap_or(false);
    let tty = cfg.tty.unwrap_or(false);
    let (uid, gid, mut additional) = resolve_user(cfg.user.as_deref().unwrap_or(""), p.layers)?;
    for g in group_add(hc.group_add.as_deref().unwrap_or_default(), p.layers)? {
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    let mut env: Vec<String> = cfg.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, berth_image::defaults::DEFAULT_PATH.into());
    }
    let hostname = cfg.hostname.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let caps = capabilities(hc, privileged)?;
    let mut argv: Vec<String> = Vec::new();
    if hc.init.unwrap_or(false) {
        if p.init.is_none() {
            return Err(invalid(
                "--init: berth's init binary (berth-shim) is missing",
            ));
        }
        argv.push("/sbin/docker-init".into());
        argv.push("--".into());
    }
    argv.push(path.to_string());
    argv.extend(args.iter().cloned());
    let cwd = match cfg.working_dir.as_deref() {
        None | Some("") => "/".to_string(),
        Some(w) if w.starts_with('/') => w.to_string(),
        Some(w) => {
            return Err(invalid(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )))
        }
    };
    let mut process = json!({
        "terminal": tty,
        "user": {"uid": uid, "gid": gid},
        "args": argv,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privileges(hc)?,
    });
    if !additional.is_empty() {
        process["user"]["additionalGids"] = json!(additional);
    }
    if let Some(o) = hc.oom_score_adj {
        process["oomScoreAdj"] = json!(o);
    }
    if let Some(ul) = &hc.ulimits {
        let mut rl = Vec::new();
        for u in ul {
            let name = u.name.clone().unwrap_or_default();
            // docker's names (go-units): anything else would only fail in the runtime.
            const NAMES: &[&str] = &[
                "as",
                "core",
                "cpu",
                "data",
                "fsize",
                "locks",
                "memlock",
                "msgqueue",
                "nice",
                "nofile",
                "nproc",
                "rss",
                "rtprio",
                "rttime",
                "sigpending",
                "stack",
            ];
            if !NAMES.contains(&name.as_str()) {
                return Err(invalid(format!("invalid ulimit type: {name}")));
            }
            // -1 is "unlimited" (RLIM_INFINITY), as in `--ulimit memlock=-1:-1`.
            let value = |v: Option<i64>| match v.unwrap_or(0) {
                -1 => Ok(u64::MAX),
                n if n < 0 => Err(invalid(format!("invalid ulimit value for {name}: {n}"))),
                n => Ok(n as u64),
            };
            let (soft, hard) = (value(u.soft)?, value(u.hard)?);
            if soft > hard {
                return Err(invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft.unwrap_or(0),
                    u.hard.unwrap_or(0)
                )));
            }
            rl.push(json!({
                "type": format!("RLIMIT_{}", name.to_uppercase()),
                "soft": soft,
                "hard": hard,
            }));
        }
        process["rlimits"] = json!(rl);
    }
    let ro_sys = if privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    // As docker: a privileged container's /sys and cgroup file systems are writable.
    let mut cgroup_opts = ro_sys.clone();
    cgroup_opts.insert(3, "relatime");
    let shm_size = hc.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ro_sys}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": cgroup_opts}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ];
    // The container's own mounts and berth's /etc files, parents before children (a volume
    // on /etc keeps the generated hosts on top, as with docker); a mount of the user's own on
    // one of those files replaces berth's.
    let mut own: Vec<Value> = p.mounts.to_vec();
    for f in ["resolv.conf", "hostname", "hosts"] {
        let dest = format!("/etc/{f}");
        if own.iter().any(|m| m["destination"] == json!(dest)) {
            continue;
        }
        own.push(json!({
            "destination": dest,
            "type": "bind",
            "source": p.dir.join(f),
            "options": ["rbind", "rprivate"],
        }));
    }
    own.sort_by_key(|m| {
        Path::new(m["destination"].as_str().unwrap_or("/"))
            .components()
            .count()
    });
    mounts.extend(own);
    if let (true, Some(init)) = (hc.init.unwrap_or(false), p.init) {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["bind", "ro"]}));
    }
    let network_mode = hc.network_mode.as_deref().unwrap_or("default");
    let mut namespaces = vec![json!({"type": "mount"})];
    for (kind, mode, what) in [
        ("pid", &hc.pid_mode, "PID"),
        ("ipc", &hc.ipc_mode, "IPC"),
        ("uts", &hc.uts_mode, "UTS"),
    ] {
        match mode.as_deref().unwrap_or("") {
            "host" => {}
            // docker's IPC modes that mean a namespace of the container's own.
            "" | "private" | "shareable" if kind == "ipc" => namespaces.push(json!({"type": kind})),
            "" => namespaces.push(json!({"type": kind})),
            m if m.starts_with("container:") && m.len() > "container:".len() => {
                match p.joined.iter().find(|(k, _)| *k == kind) {
                    Some((_, path)) => namespaces.push(json!({"type": kind, "path": path})),
                    None => namespaces.push(json!({"type": kind})),
                }
            }
            m => return Err(invalid(format!("invalid {what} mode: {m}"))),
        }
    }
    match network_mode {
        "host" => {}
        "none" => namespaces.push(json!({"type": "network"})),
        // The default bridge, a user network or container:<x>: the namespace the engine set up
        // (at create time, for validation only, it is not known yet). The network's existence
        // is checked by the engine when the container is created.
        _ => match p.netns {
            Some(path) => namespaces.push(json!({"type": "network", "path": path})),
            None => namespaces.push(json!({"type": "network"})),
        },
    }
    if hc.cgroupns_mode.as_ref().map(|m| m.to_string()).as_deref() != Some("host") {
        namespaces.push(json!({"type": "cgroup"}));
    }
    // `--device` and `--device-cgroup-rule` widen the default rules.
    let devices = crate::devices::from_host_config(hc)?;
    let mut resources = resources_json(hc, privileged)?;
    if let Some(rules) = resources["devices"].as_array_mut() {
        rules.extend(devices.rules);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": p.cgroup_driver.cgroups_path(id),
        "resources": resources,
    });
    if !devices.nodes.is_empty() {
        linux["devices"] = json!(devices.nodes);
    }
    // As docker: a shared bind needs the container's whole tree shared (so that its mounts
    // travel back to the host), a slave bind needs it at least slave.
    let has = |names: &[&str]| {
        p.mounts.iter().any(|m| {
            m["options"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| names.iter().any(|n| x == n)))
        })
    };
    if has(&["rshared", "shared"]) {
        linux["rootfsPropagation"] = json!("rshared");
    } else if has(&["rslave", "slave"]) {
        linux["rootfsPropagation"] = json!("rslave");
    }
    if !privileged {
        linux["maskedPaths"] = match &hc.masked_paths {
            Some(p) => json!(p),
            None => json!(MASKED),
        };
        linux["readonlyPaths"] = match &hc.readonly_paths {
            Some(p) => json!(p),
            None => json!(READONLY),
        };
    }
    if let Some(s) = &hc.sysctls {
        linux["sysctl"] = json!(s);
    }
    if let Some(profile) = seccomp_of(hc, privileged, &caps)? {
        linux["seccomp"] = profile;
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": p.rootfs, "readonly": hc.readonly_rootfs.unwrap_or(false)},
        "mounts": mounts,
        "linux": linux,
    });
    // The host's UTS namespace keeps the host's names.
    if hc.uts_mode.as_deref() != Some("host") {
        spec["hostname"] = json!(hostname);
        spec["domainname"] = json!(cfg.domainname.clone().unwrap_or_default());
    }
    Ok(spec)
}

/// The JSON this module assembles, as the OCI type the runtime reads: a mismatch is berth's
/// bug, reported as such rather than written into a bundle.
fn typed<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, EngineError> {
    serde_json::from_value(v).map_err(|e| {
        tracing::error!(error = %e, "the generated {what} is not OCI's");
        crate::error::unavailable(format!(
            "{INTERNAL}: the generated {what} is not OCI's: {e}"
        ))
    })
}

/// How an error of this module's own making starts (the fuzz target looks for it).
pub const INTERNAL: &str = "internal error";

/// The fuzz target's door: the spec of a create request's config and host config, with
/// placeholder paths. Not part of the engine's API.
#[doc(hidden)]
pub fn build_for_fuzzing(
    cfg: &ContainerConfig,
    hc: &HostConfig,
) -> Result<oci_spec::runtime::Spec, EngineError> {
    let p = Paths {
        rootfs: Path::new("/nonexistent/rootfs"),
        dir: Path::new("/nonexistent"),
        layers: &[],
        init: None,
        netns: None,
        joined: &[],
        mounts: &[],
        cgroup_driver: Default::default(),
    };
    build("fuzz", cfg, hc, "/bin/sh", &[], &p)
}

/// The container's seccomp profile: none when privileged or `seccomp=unconfined`, the one
/// given with `--security-opt seccomp=<json or path>`, else docker's default for its
/// capabilities.
fn seccomp_of(
    hc: &HostConfig,
    privileged: bool,
    caps: &[String],
) -> Result<Option<Value>, EngineError> {
    if privileged {
        return Ok(None);
    }
    let given = hc.security_opt.iter().flatten().rev().find_map(|o| {
        o.strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
    });
    match given {
        Some("unconfined") => Ok(None),
        Some(v) => crate::seccomp::user_profile(v, caps).map(Some),
        None => Ok(Some(crate::seccomp::default_profile(caps))),
    }
}

fn no_new_privileges(hc: &HostConfig) -> Result<bool, EngineError> {
    let mut nnp = false;
    for o in hc.security_opt.iter().flatten() {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), "true"));
        match k {
            "no-new-privileges" => {
                nnp = v.parse().map_err(|_| {
                    invalid(format!(
                        "invalid --security-opt {o}: expected true or false"
                    ))
                })?
            }
            "label" if v == "disable" => {}
            "apparmor" if v == "unconfined" => {}
            // The profile itself is read by `seccomp_of`.
            "seccomp" => {}
            _ => {
                return Err(invalid(format!(
                    "invalid --security-opt: {o:?} is not supported by berth yet"
                )))
            }
        }
    }
    Ok(nnp)
}

/// Every capability this process may hand out (its bounding set; in `ALL_CAPS` order, which
/// is the kernel's numbering): `--privileged` gets these, as a process cannot grant more.
pub fn available_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn cap_name(c: &str) -> String {
    let u = c.to_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

fn capabilities(hc: &HostConfig, privileged: bool) -> Result<Vec<String>, EngineError> {
    if privileged {
        return Ok(available_caps());
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let adds: Vec<String> = hc.cap_add.iter().flatten().map(|c| cap_name(c)).collect();
    let drops: Vec<String> = hc.cap_drop.iter().flatten().map(|c| cap_name(c)).collect();
    for c in adds.iter().chain(drops.iter()) {
        if c != "CAP_ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(invalid(format!("unknown capability: {:?}", c)));
        }
    }
    if drops.iter().any(|c| c == "CAP_ALL") {
        caps.clear();
    }
    if adds.iter().any(|c| c == "CAP_ALL") {
        caps = available_caps();
    }
    for a in &adds {
        if a != "CAP_ALL" && !caps.contains(a) {
            caps.push(a.clone());
        }
    }
    // An explicit add wins over a drop of ALL, as in Docker.
    caps.retain(|c| !drops.contains(c) || adds.contains(c));
    Ok(caps)
}

/// The cgroup resources of a host config (at start and on `update`).
pub fn resources(
    hc: &HostConfig,
    privileged: bool,
) -> Result<oci_spec::runtime::LinuxResources, EngineError> {
    typed(resources_json(hc, privileged)?, "resources")
}

fn resources_json(hc: &HostConfig, privileged: bool) -> Result<Value, EngineError> {
    let mut r = json!({});
    if privileged {
        r["devices"] = json!([{"allow": true, "access": "rwm"}]);
    } else {
        let dev = |t: &str, maj: i64, min: Option<i64>, access: &str| {
            let mut d = json!({"allow": true, "type": t, "major": maj, "access": access});
            if let Some(m) = min {
                d["minor"] = json!(m);
            }
            d
        };
        r["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            dev("c", 1, Some(3), "rwm"),
            dev("c", 1, Some(5), "rwm"),
            dev("c", 1, Some(7), "rwm"),
            dev("c", 1, Some(8), "rwm"),
            dev("c", 1, Some(9), "rwm"),
            dev("c", 5, Some(0), "rwm"),
            dev("c", 5, Some(1), "rwm"),
            dev("c", 5, Some(2), "rwm"),
            dev("c", 136, None, "rwm"),
            dev("c", 10, Some(200), "rwm"),
        ]);
    }
    // Negative values are refused as dockerd refuses them (0 means "not set").
    if hc.memory.is_some_and(|m| m < 0) {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if hc.memory_swap.is_some_and(|s| s < -1) {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if hc.memory_reservation.is_some_and(|m| m < 0) {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if let Some(n) = hc.nano_cpus.filter(|n| *n < 0) {
        return Err(invalid(format!(
            "invalid NanoCPUs {n}: the range of CPUs starts at 0.01"
        )));
    }
    if let Some(c) = hc.cpu_shares.filter(|c| *c < 0) {
        return Err(invalid(format!(
            "invalid CPU shares ({c}): value must be a positive integer"
        )));
    }
    if hc.cpu_quota.is_some_and(|q| q != -1 && q != 0 && q < 1000) {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if hc
        .cpu_period
        .is_some_and(|p| p != 0 && !(1000..=1_000_000).contains(&p))
    {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    let mut mem = json!({});
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        if m < 6 * 1024 * 1024 {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
        mem["limit"] = json!(m);
        match hc.memory_swap {
            Some(-1) => mem["swap"] = json!(-1),
            Some(s) if s > 0 => {
                if s < m {
                    return Err(invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage",
                    ));
                }
                mem["swap"] = json!(s)
            }
            _ => mem["swap"] = json!(m.saturating_mul(2)),
        }
    }
    if let Some(m) = hc.memory_reservation.filter(|m| *m > 0) {
        mem["reservation"] = json!(m);
    }
    if mem.as_object().is_some_and(|o| !o.is_empty()) {
        r["memory"] = mem;
    }
    let mut cpu = json!({});
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        if hc.cpu_quota.is_some_and(|q| q > 0) || hc.cpu_period.is_some_and(|p| p > 0) {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if n > ncpu * 1_000_000_000 {
            return Err(invalid(format!(
                "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(n * 100_000 / 1_000_000_000);
    }
    if let Some(q) = hc.cpu_quota.filter(|q| *q > 0) {
        cpu["quota"] = json!(q);
    }
    if let Some(p) = hc.cpu_period.filter(|p| *p > 0) {
        cpu["period"] = json!(p);
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu["shares"] = json!(s);
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu["cpus"] = json!(c);
    }
    if let Some(m) = hc.cpuset_mems.as_deref().filter(|c| !c.is_empty()) {
        cpu["mems"] = json!(m);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        r["cpu"] = cpu;
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        r["pids"] = json!({"limit": p});
    }
    Ok(r)
}

/// `user`, `uid`, `user:group`, `uid:gid` → (uid, gid, additional gids), names looked up in
/// the container's /etc/passwd and /etc/group (read from its layers, top first, never
/// following a symlink out of them).
pub fn resolve_user(user: &str, layers: &[PathBuf]) -> Result<(u32, u32, Vec<u32>), EngineError> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_layers(layers, "etc/passwd");
    let group = read_layers(layers, "etc/group");
    let (uid, mut gid, name) = match u.parse::<u32>() {
        Ok(n) => {
            let entry = passwd
                .as_deref()
                .and_then(|p| p.lines().find(|l| l.split(':').nth(2) == Some(u)));
            let gid = entry
                .and_then(|l| l.split(':').nth(3)?.parse().ok())
                .unwrap_or(0);
            let name = entry.and_then(|l| l.split(':').next()).map(str::to_string);
            (n, gid, name)
        }
        Err(_) => {
            let entry = passwd
                .as_deref()
                .and_then(|p| p.lines().find(|l| l.split(':').next() == Some(u)))
                .ok_or_else(|| {
                    invalid(format!(
                        "unable to find user {u}: no matching entries in passwd file"
                    ))
                })?;
            let f: Vec<&str> = entry.split(':').collect();
            let uid = f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
            let gid = f.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
            (uid, gid, Some(u.to_string()))
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .as_deref()
                .and_then(|gr| gr.lines().find(|l| l.split(':').next() == Some(g)))
                .and_then(|l| l.split(':').nth(2)?.parse().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional = Vec::new();
    if let (Some(name), Some(gr)) = (name, group.as_deref()) {
        for l in gr.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !additional.contains(&n) {
                        additional.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, additional))
}

/// `--group-add`: each group as a gid, names looked up in the container's `/etc/group`.
fn group_add(groups: &[String], layers: &[PathBuf]) -> Result<Vec<u32>, EngineError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let file = read_layers(layers, "etc/group");
    groups
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => file
                .as_deref()
                .and_then(|gr| gr.lines().find(|l| l.split(':').next() == Some(g.as_str())))
                .and_then(|l| l.split(':').nth(2)?.parse().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "Unable to find group {g}: no matching entries in group file"
                    ))
                }),
        })
        .collect()
}

fn read_layers(layers: &[PathBuf], rel: &str) -> Option<String> {
    layers.iter().find_map(|l| {
        berth_image::layer::read_beneath(l, Path::new(rel))
            .ok()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc() -> HostConfig {
        HostConfig::default()
    }

    #[test]
    fn caps_add_drop() {
        let mut h = hc();
        h.cap_drop = Some(vec!["ALL".into()]);
        h.cap_add = Some(vec!["net_admin".into(), "CAP_CHOWN".into()]);
        assert_eq!(
            capabilities(&h, false).unwrap(),
            ["CAP_NET_ADMIN", "CAP_CHOWN"]
        );
        let mut h = hc();
        h.cap_drop = Some(vec!["NET_RAW".into()]);
        let c = capabilities(&h, false).unwrap();
        assert!(!c.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(c.len(), DEFAULT_CAPS.len() - 1);
        h.cap_add = Some(vec!["BOGUS".into()]);
        assert!(capabilities(&h, false).is_err());
        let all = capabilities(&hc(), true).unwrap();
        assert!(all.contains(&"CAP_SYS_ADMIN".to_string()) && all.len() <= ALL_CAPS.len());
    }

    #[test]
    fn resources_from_flags() {
        let mut h = hc();
        h.memory = Some(64 << 20);
        h.nano_cpus = Some(500_000_000);
        h.pids_limit = Some(100);
        h.cpu_shares = Some(512);
        let r = resources_json(&h, false).unwrap();
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 128 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 100);
        h.memory = Some(1 << 20);
        assert!(resources_json(&h, false).is_err());
    }

    #[test]
    fn users_from_layers() {
        let top = tempfile::tempdir().unwrap();
        let low = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(low.path().join("etc")).unwrap();
        std::fs::write(
            low.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            low.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        let layers = vec![top.path().to_path_buf(), low.path().to_path_buf()];
        assert_eq!(resolve_user("", &layers).unwrap(), (0, 0, vec![]));
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            group_add(&groups(&["wheel", "1234"]), &layers).unwrap(),
            [10, 1234]
        );
        assert!(group_add(&groups(&["ghosts"]), &layers)
            .unwrap_err()
            .to_string()
            .contains("Unable to find group ghosts"));
        assert_eq!(
            resolve_user("nobody", &layers).unwrap(),
            (65534, 65534, vec![])
        );
        assert_eq!(
            resolve_user("app", &layers).unwrap(),
            (1000, 1000, vec![10])
        );
        assert_eq!(
            resolve_user("1000:wheel", &layers).unwrap(),
            (1000, 10, vec![])
        );
        assert_eq!(
            resolve_user("4242:4343", &layers).unwrap(),
            (4242, 4343, vec![])
        );
        assert!(resolve_user("ghost", &layers).is_err());
        // A hostile symlink in a layer is not followed to the host's file.
        std::fs::create_dir_all(top.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", top.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user("app", &layers).unwrap().0, 1000);
    }
}
