//! The last steps before execve, shared by a container's init and by `exec`: rlimits, the
//! user and groups, capabilities, no_new_privs, umask, environment and the program lookup.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

use crate::error::{Context, Error, Result};

/// Sets each rlimit in the spec.
pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let res = rlimit_resource(l.typ());
        let r = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit struct.
        if unsafe { libc::setrlimit(res as _, &r) } != 0 {
            return Err(Error::Sys {
                context: format!(
                    "process.rlimits: set {:?} to {}:{}",
                    l.typ(),
                    l.soft(),
                    l.hard()
                ),
                source: nix::errno::Errno::last(),
            });
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// Writes each sysctl under /proc/sys.
pub fn set_sysctls<'a>(sysctls: impl Iterator<Item = (&'a String, &'a String)>) -> Result<()> {
    for (k, v) in sysctls {
        if k.contains('/') || k.contains("..") {
            return Err(Error::spec(
                "linux.sysctl",
                format!("{k}: not a sysctl name"),
            ));
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).ctx(|| format!("linux.sysctl: write {k}={v}"))?;
    }
    Ok(())
}

/// Sets the NIS domain name.
pub fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe a live byte slice.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r != 0 {
        return Err(Error::Sys {
            context: format!("domainname: set {name:?}"),
            source: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// Converts the spec's capability names to the `caps` crate's type. Names this build does not
/// know (newer kernels) are skipped with a warning, as runc does.
fn cap_set(set: Option<&oci_spec::runtime::Capabilities>) -> HashSet<Capability> {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        match name.parse::<Capability>() {
            Ok(cap) if caps::all().contains(&cap) => {
                out.insert(cap);
            }
            _ => tracing::warn!(capability = %name, "unknown capability ignored"),
        }
    }
    out
}

/// Drops from the bounding set everything not listed. Must run while still privileged.
pub fn drop_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = cap_set(c.and_then(|c| c.bounding().as_ref()));
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                Error::spec("process.capabilities.bounding", format!("drop {cap}: {e}"))
            })?;
        }
    }
    Ok(())
}

/// Switches to the process's uid, gid and supplementary groups, keeping the permitted
/// capabilities across the uid change so that [`set_capabilities`] can then set them exactly.
pub fn switch_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let user = p.user();
    let gid = Gid::from_raw(user.gid());
    let uid = Uid::from_raw(user.uid());
    if setgroups_allowed {
        let groups: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups)
            .ctx(|| "process.user.additionalGids: setgroups".to_string())?;
    }
    caps::securebits::set_keepcaps(true)
        .map_err(|e| Error::spec("process.user", format!("keep capabilities: {e}")))?;
    nix::unistd::setresgid(gid, gid, gid)
        .ctx(|| format!("process.user.gid: setresgid {}", user.gid()))?;
    nix::unistd::setresuid(uid, uid, uid)
        .ctx(|| format!("process.user.uid: setresuid {}", user.uid()))?;
    caps::securebits::set_keepcaps(false)
        .map_err(|e| Error::spec("process.user", format!("keep capabilities: {e}")))?;
    Ok(())
}

/// Sets the effective, permitted, inheritable and ambient sets exactly as the spec lists them.
pub fn set_capabilities(c: Option<&LinuxCapabilities>) -> Result<()> {
    let get = |f: fn(&LinuxCapabilities) -> &Option<oci_spec::runtime::Capabilities>| {
        cap_set(c.and_then(|c| f(c).as_ref()))
    };
    let permitted = get(LinuxCapabilities::permitted);
    let effective = get(LinuxCapabilities::effective);
    let inheritable = get(LinuxCapabilities::inheritable);
    let ambient = get(LinuxCapabilities::ambient);
    let err = |set: &str, e: caps::errors::CapsError| {
        Error::spec(format!("process.capabilities.{set}"), e.to_string())
    };
    // Order matters: effective must stay a subset of permitted at every step.
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| err("inheritable", e))?;
    caps::set(
        None,
        CapSet::Effective,
        &effective.intersection(&permitted).copied().collect(),
    )
    .map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| err("permitted", e))?;
    caps::set(None, CapSet::Effective, &effective).map_err(|e| err("effective", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    // The kernel only allows ambient capabilities that are both permitted and inheritable;
    // like runc, others are skipped rather than failing the container.
    for cap in ambient {
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| err("ambient", e))?;
        } else {
            tracing::debug!(capability = %cap, "ambient capability not permitted and inheritable, skipped");
        }
    }
    Ok(())
}

/// Sets no_new_privs.
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::Sys {
            context: "process.noNewPrivileges: prctl".into(),
            source: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// Whether the host kernel has AppArmor enabled.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Asks AppArmor to confine the next execve with `profile`.
pub fn set_apparmor_on_exec(profile: &str) -> Result<()> {
    let path = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(path, format!("exec {profile}"))
        .ctx(|| format!("process.apparmorProfile: set {profile:?}"))
}

/// Sets the execution domain (`linux.personality`).
pub fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    let domain = match p.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes an integer and changes only the execution domain.
    if unsafe { libc::personality(domain) } == -1 {
        return Err(Error::Sys {
            context: "linux.personality".into(),
            source: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// Sets the I/O priority (`process.ioPriority`).
pub fn set_io_priority(p: &oci_spec::runtime::LinuxIOPriority) -> Result<()> {
    use oci_spec::runtime::IOPriorityClass;
    let class: i64 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::spec(
            "process.ioPriority.priority",
            format!("{}: must be 0..=7", p.priority()),
        ));
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_set takes integers only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (class << 13) | p.priority(),
        )
    };
    if r != 0 {
        return Err(Error::Sys {
            context: "process.ioPriority".into(),
            source: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// Writes the oom score adjustment of the calling process (inherited by its children).
pub fn set_oom_score_adj(v: i32) -> Result<()> {
    std::fs::write("/proc/self/oom_score_adj", v.to_string())
        .ctx(|| format!("process.oomScoreAdj: set {v}"))
}

/// The program to exec: `args[0]` if it has a slash, else the first match in the process's own
/// PATH (not the runtime's), as runc resolves it.
pub fn find_program(p: &Process) -> Result<PathBuf> {
    let arg0 = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or_else(|| Error::spec("process.args", "must name a program to run"))?;
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = p
        .env()
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(Error::Exec {
        message: format!("exec: {arg0:?}: executable file not found in $PATH"),
        errno: libc::ENOENT,
    })
}

/// Builds the argv and envp C strings.
pub fn c_args(p: &Process) -> Result<(Vec<CString>, Vec<CString>)> {
    let to_c = |s: &String, field: &str| {
        CString::new(s.as_bytes())
            .map_err(|_| Error::spec(field, format!("{s:?} contains a NUL byte")))
    };
    let args = p
        .args()
        .iter()
        .flatten()
        .map(|a| to_c(a, "process.args"))
        .collect::<Result<Vec<_>>>()?;
    let env = p
        .env()
        .iter()
        .flatten()
        .map(|e| to_c(e, "process.env"))
        .collect::<Result<Vec<_>>>()?;
    Ok((args, env))
}

/// Replaces the process image. Only returns on failure.
pub fn exec(program: &Path, args: &[CString], env: &[CString]) -> Error {
    let prog = match CString::new(program.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(_) => return Error::spec("process.args", "program path contains a NUL byte"),
    };
    let e = nix::unistd::execve(&prog, args, env).unwrap_err();
    Error::Sys {
        context: format!("exec {}", program.display()),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_map_to_kernel_caps() {
        let set: oci_spec::runtime::Capabilities =
            serde_json::from_str(r#"["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]"#)
                .unwrap();
        let out = cap_set(Some(&set));
        assert_eq!(out.len(), 3);
        assert!(out.contains(&Capability::CAP_NET_BIND_SERVICE));
    }

    #[test]
    fn finds_program_in_process_path() {
        let p: Process = serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/nonexistent:/bin:/usr/bin"]
        }))
        .unwrap();
        let found = find_program(&p).unwrap();
        assert!(found.ends_with("sh"), "{found:?}");
        let p: Process = serde_json::from_value(serde_json::json!({
            "args": ["no-such-program-xyz"], "cwd": "/", "user": {"uid": 0, "gid": 0}
        }))
        .unwrap();
        let e = find_program(&p).unwrap_err().to_string();
        assert!(e.contains("executable file not found"), "{e}");
    }
}
