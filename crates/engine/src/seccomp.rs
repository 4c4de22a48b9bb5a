//! The default seccomp profile, equivalent to Docker's: an allow-list with EPERM for
//! everything else, syscalls that need a capability allowed only when the container has it,
//! `clone` without namespace flags unless CAP_SYS_ADMIN, `clone3` answered with ENOSYS (so
//! that libcs fall back to `clone`, which can be checked), `personality` limited to the
//! harmless personas and `socket` refused for AF_VSOCK. The runtime answers syscalls newer
//! than every syscall the profile names with ENOSYS, so new libc code paths fall back.
//!
//! Also reads profiles given with `--security-opt seccomp=…` (the docker CLI sends the
//! file's content; a path is read here): docker's format (`archMap`, `includes` / `excludes`
//! by capability) or the OCI one. Written here because the list is data and no crate holds
//! docker's profile; the format conversion is a few lines of serde_json.

use serde_json::{json, Value};

use crate::error::{invalid, EngineError};

/// Allowed whatever the container's capabilities.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls allowed only with one of the capabilities.
const BY_CAP: &[(&[&str], &[&str])] = &[
    (
        &["CAP_SYS_ADMIN"],
        &[
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (&["CAP_SYS_ADMIN", "CAP_BPF"], &["bpf"]),
    (&["CAP_SYS_ADMIN", "CAP_PERFMON"], &["perf_event_open"]),
    (&["CAP_SYS_ADMIN", "CAP_SYSLOG"], &["syslog"]),
    (&["CAP_SYS_BOOT"], &["reboot"]),
    (&["CAP_SYS_CHROOT"], &["chroot"]),
    (
        &["CAP_SYS_MODULE"],
        &["delete_module", "init_module", "finit_module"],
    ),
    (&["CAP_SYS_PACCT"], &["acct"]),
    (
        &["CAP_SYS_PTRACE"],
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    (&["CAP_SYS_RAWIO"], &["iopl", "ioperm"]),
    (
        &["CAP_SYS_TIME"],
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (&["CAP_SYS_TTY_CONFIG"], &["vhangup"]),
    (
        &["CAP_SYS_NICE"],
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (&["CAP_DAC_READ_SEARCH"], &["open_by_handle_at"]),
];

/// Refused whatever the capabilities (named, so that they get EPERM and count for the
/// "newer than the profile" threshold): keyrings, userfaultfd, kexec, swap, and the rest.
const REFUSED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "swapon",
    "swapoff",
    "nfsservctl",
    "pivot_root",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "modify_ldt",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// The namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;

const ARCHES: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

/// Docker's default profile for a container with `caps` (`CAP_…` names), in OCI form.
pub fn default_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut allowed: Vec<&str> = ALLOWED.to_vec();
    let mut refused: Vec<&str> = REFUSED.to_vec();
    for (need, names) in BY_CAP {
        if need.iter().any(|c| has(c)) {
            allowed.extend_from_slice(names);
        } else {
            refused.extend_from_slice(names);
        }
    }
    let mut rules = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    // The personas docker allows: PER_LINUX, PER_LINUX32 (0x8), UNAME26 (0x20000),
    // UNAME26|PER_LINUX32, and the query (0xffffffff).
    for p in [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        }));
    }
    rules.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}],
    }));
    if has("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone", "clone3"], "action": "SCMP_ACT_ALLOW"}));
    } else {
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
        rules.push(
            json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
        );
    }
    rules.push(json!({"names": refused, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": ARCHES,
        "syscalls": rules,
    })
}

/// A profile given with `--security-opt seccomp=…`: its JSON (what the docker CLI sends) or a
/// path to it, in docker's format or the OCI one, for a container with `caps`.
pub fn user_profile(value: &str, caps: &[String]) -> Result<Value, EngineError> {
    let text = if value.trim_start().starts_with('{') {
        value.to_string()
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| invalid(format!("opening seccomp profile ({value}) failed: {e}")))?
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))?;
    if !v.is_object() || v["defaultAction"].as_str().is_none() {
        return Err(invalid(
            "decoding seccomp profile failed: it has no defaultAction",
        ));
    }
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut out = json!({"defaultAction": v["defaultAction"]});
    if let Some(e) = v.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    // Docker's archMap: each main architecture with its sub-architectures.
    let arches: Vec<Value> = match (v.get("architectures"), v.get("archMap")) {
        (Some(a), _) if a.is_array() => a.as_array().cloned().unwrap_or_default(),
        (_, Some(m)) => m
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["architecture"] == "SCMP_ARCH_X86_64")
            .flat_map(|e| {
                let mut v = vec![e["architecture"].clone()];
                v.extend(
                    e["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                v
            })
            .collect(),
        _ => Vec::new(),
    };
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    if let Some(f) = v.get("flags") {
        out["flags"] = f.clone();
    }
    let mut rules = Vec::new();
    for r in v["syscalls"].as_array().into_iter().flatten() {
        let caps_in = |k: &str| -> Vec<String> {
            r[k]["caps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        };
        let inc = caps_in("includes");
        if !inc.is_empty() && !inc.iter().all(|c| has(c)) {
            continue;
        }
        if caps_in("excludes").iter().any(|c| has(c)) {
            continue;
        }
        if let Some(a) = r["includes"]["arches"].as_array() {
            if !a.iter().any(|x| x == "amd64" || x == "x86_64") {
                continue;
            }
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        if r["names"].is_null() {
            if let Some(n) = r["name"].as_str() {
                rule["names"] = json!([n]);
            }
        }
        for k in ["args", "errnoRet"] {
            if let Some(x) = r.get(k).filter(|x| !x.is_null()) {
                rule[k] = x.clone();
            }
        }
        rules.push(rule);
    }
    out["syscalls"] = json!(rules);
    // What the runtime will read: actions, architectures and operators it does not know are
    // refused now, not when the container starts (found by fuzzing).
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_open_their_syscalls() {
        let names = |p: &Value, action: &str| -> Vec<String> {
            p["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["action"] == action && r["args"].is_null())
                .flat_map(|r| r["names"].as_array().unwrap().clone())
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        let base = default_profile(&["CAP_CHOWN".into()]);
        assert!(names(&base, "SCMP_ACT_ALLOW").contains(&"read".to_string()));
        for refused in ["mount", "unshare", "keyctl", "bpf", "init_module", "reboot"] {
            assert!(
                names(&base, "SCMP_ACT_ERRNO").contains(&refused.to_string()),
                "{refused}"
            );
            assert!(
                !names(&base, "SCMP_ACT_ALLOW").contains(&refused.to_string()),
                "{refused}"
            );
        }
        let admin = default_profile(&["CAP_SYS_ADMIN".into()]);
        assert!(names(&admin, "SCMP_ACT_ALLOW").contains(&"mount".to_string()));
        assert!(names(&admin, "SCMP_ACT_ALLOW").contains(&"clone3".to_string()));
        assert!(names(&admin, "SCMP_ACT_ERRNO").contains(&"keyctl".to_string()));
    }

    #[test]
    fn docker_format_profiles_are_converted() {
        let p = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                        {"names":["chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"excludes":{"caps":["CAP_FOWNER"]}}]}"#;
        let v = user_profile(p, &["CAP_FOWNER".into()]).unwrap();
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert_eq!(v["syscalls"].as_array().unwrap().len(), 1, "{v}");
        assert!(user_profile("{}", &[]).is_err());
        assert!(user_profile("/nonexistent/profile.json", &[]).is_err());
    }
}
