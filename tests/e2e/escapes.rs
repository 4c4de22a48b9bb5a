//! The escape-regression suite: attacks run from inside berth containers with the default
//! settings, each of which passes only if the attack fails.
//!
//! The attacks are `tests/attacks/attack.c`, built here with `gcc -static` into an image
//! (busybox + `/attack`). So that no check can pass by accident, every attack is also run
//! where it must get through (`--privileged`, `--pid host`, the capability given back): a
//! probe that cannot tell an escape from a refusal fails the test. Where the kernel itself
//! lacks the feature (no modules, no kexec on this kernel), the privileged run gets the
//! kernel's own error (ENOSYS, ENOENT, ENXIO) and the default run berth's (EPERM), which still
//! shows that berth refused it; a path that the host does not have at all is reported as not
//! applicable. `docs/security.md` lists every attack and its result.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_e2e::attacks::{
    attack, device_flags_open_the_device, install_attack_image, verdict, LoopDevice, Verdict,
};
use berth_e2e::{busybox_image, busybox_rootfs, ok, tar_dir, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the escape tests run containers: run them as root"
    );
}

/// A daemon with `busybox` and `attack` (busybox, `/attack`, and `/evil`: `#!/proc/self/exe`).
fn daemon() -> Berthd {
    daemon_with(&[])
}

/// [`daemon`] with berthd's flags `args`.
fn daemon_with(args: &[&str]) -> Berthd {
    require_root();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let d = Berthd::start_with_args(busybox_image, &args);
    install_attack_image(&d);
    d
}

/// A host process whose command line carries `marker`, for the ptrace attack.
struct HostProcess(std::process::Child);

impl HostProcess {
    fn start(marker: &str) -> HostProcess {
        HostProcess(
            Command::new("/bin/busybox")
                .args(["sh", "-c", "sleep 300; true", marker])
                .spawn()
                .unwrap(),
        )
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One attack: its arguments, the flags of the default run (only `--cap-drop NET_RAW` for
/// raw sockets, as the issue asks), and the flags under which it must get through.
struct Case {
    name: &'static str,
    args: Vec<String>,
    default_flags: Vec<&'static str>,
    open_flags: Vec<&'static str>,
    /// A host path the attack needs: where the host has none, it is not applicable here.
    needs: Option<&'static str>,
    /// Still refused with `--cap-add ALL`, because docker's default profile forbids it
    /// whatever the capabilities, or a mount or namespace keeps it out.
    refused_with_all_caps: bool,
}

fn cases(host: &HostProcess, marker: &str, disk: &LoopDevice) -> Vec<Case> {
    let (maj, min) = disk.numbers();
    let c = |name, args: &[&str], refused_with_all_caps| Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        default_flags: vec![],
        open_flags: vec!["--privileged"],
        needs: None,
        refused_with_all_caps,
    };
    let mut v = vec![
        c("mount a file system", &["mount"], false),
        c(
            "unshare a user namespace (full capabilities in it)",
            &["userns"],
            false,
        ),
        c("clone into a new user namespace", &["userns-clone"], false),
        c("add_key (keyrings)", &["add_key"], true),
        c("keyctl (keyrings)", &["keyctl"], true),
        c("bpf: create a map", &["bpf"], false),
        c("io_uring_setup", &["io_uring"], true),
        c("userfaultfd", &["userfaultfd"], true),
        c("AF_VSOCK socket", &["vsock"], true),
        c(
            "init_module (load a kernel module)",
            &["init_module"],
            false,
        ),
        c(
            "finit_module (load a kernel module)",
            &["finit_module"],
            false,
        ),
        c("kexec_load", &["kexec"], true),
        c(
            "read a host block device through mknod",
            &["mknod-disk", &maj, &min],
            true,
        ),
        c("open /dev/mem through mknod", &["mknod-mem"], true),
        c("open /dev/kmsg through mknod", &["mknod-kmsg"], true),
        c("escape the cgroup: write cgroup.procs", &["cgroup"], true),
    ];
    let mut raw = c("raw socket with NET_RAW dropped", &["rawsock"], false);
    raw.default_flags = vec!["--cap-drop", "NET_RAW"];
    raw.open_flags = vec![];
    v.push(raw);
    let mut pt = c(
        "ptrace a host process",
        &["ptrace", &host.pid(), marker],
        true,
    );
    pt.open_flags = vec!["--privileged", "--pid", "host"];
    v.push(pt);
    for (name, path) in [
        (
            "write /proc/sys (kernel.core_pattern)",
            "/proc/sys/kernel/core_pattern",
        ),
        ("write /proc/sysrq-trigger", "/proc/sysrq-trigger"),
        (
            "write /sys (transparent_hugepage)",
            "/sys/kernel/mm/transparent_hugepage/enabled",
        ),
        (
            "write /sys/kernel/uevent_helper",
            "/sys/kernel/uevent_helper",
        ),
        ("write /proc/sys/vm/drop_caches", "/proc/sys/vm/drop_caches"),
    ] {
        let mut w = c(name, &["write", path], true);
        w.needs = Some(path);
        v.push(w);
    }
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/latency_stats",
        "/proc/acpi",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        let name: &'static str = Box::leak(format!("read masked {path}").into_boxed_str());
        let mut r = c(name, &["read", path], true);
        r.needs = Some(path);
        v.push(r);
    }
    v
}

/// Whether the host has `path` with something in it (an empty directory has nothing to mask).
fn host_has(path: &str) -> bool {
    let p = Path::new(path);
    match std::fs::read_dir(p) {
        Ok(mut d) => d.next().is_some(),
        Err(_) => p.exists(),
    }
}

#[test]
fn default_settings_refuse_every_attack_that_gets_through_when_let() {
    let d = daemon();
    let marker = format!("berth-ptrace-target-{}", std::process::id());
    let host = HostProcess::start(&marker);
    let disk = LoopDevice::attach();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in cases(&host, &marker, &disk) {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        if let Some(p) = case.needs {
            if !host_has(p) {
                report.push(format!("| {} | n/a: the host has no {p} |", case.name));
                continue;
            }
        }
        let shut = attack(&d, &case.default_flags, &args);
        let open = attack(&d, &case.open_flags, &args);
        let proof = match (&shut, &open) {
            (Verdict::Escaped(s), _) => {
                failures.push(format!("{}: ESCAPED with the defaults: {s}", case.name));
                continue;
            }
            (Verdict::Blocked(..), Verdict::Escaped(_)) => {
                "gets through with the flags given".to_string()
            }
            (Verdict::Blocked(_, a), Verdict::Blocked(o, b)) if a != b => {
                format!("the kernel itself refuses it here ({o}); berth refused first")
            }
            (Verdict::Blocked(..), Verdict::Blocked(o, _)) => {
                failures.push(format!(
                    "{}: refused with {:?} too ({o}): the probe proves nothing",
                    case.name, case.open_flags
                ));
                continue;
            }
        };
        let Verdict::Blocked(why, _) = shut else {
            unreachable!()
        };
        report.push(format!(
            "| {} | {} | {} ({}) |",
            case.name,
            why.trim_start_matches("BLOCKED "),
            proof,
            if case.open_flags.is_empty() {
                "default capabilities".to_string()
            } else {
                case.open_flags.join(" ")
            }
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn added_capabilities_do_not_open_what_the_profile_and_mounts_forbid() {
    let d = daemon();
    let marker = format!("berth-ptrace-all-caps-{}", std::process::id());
    let host = HostProcess::start(&marker);
    let disk = LoopDevice::attach();
    let mut failures = Vec::new();
    let mut tried = 0;
    for case in cases(&host, &marker, &disk) {
        if !case.refused_with_all_caps || case.needs.is_some_and(|p| !host_has(p)) {
            continue;
        }
        tried += 1;
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        match attack(&d, &["--cap-add", "ALL"], &args) {
            Verdict::Escaped(s) => failures.push(format!("{}: {s}", case.name)),
            Verdict::Blocked(why, _) => eprintln!("| {} | {why} |", case.name),
        }
    }
    assert!(tried >= 15, "only {tried} attacks were applicable");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// CVE-2019-5736: the image's program is `#!/proc/self/exe`, so each exec runs the runtime's
/// own binary inside the container, where a process of the container waits for it and tries
/// to write it, at once and after it is gone. The execs go on until the watcher has seen the
/// runtime ten times (or its minute is up): on a loaded machine its scan of /proc can miss a
/// short-lived exec, and a fixed number of execs then left it without a single chance.
#[test]
fn the_runtime_binary_cannot_be_overwritten_from_a_container() {
    let d = daemon();
    let binaries: Vec<PathBuf> = ["berth-shim", "berth-runtime", "berthd", "berth"]
        .into_iter()
        .map(berth_e2e::binary)
        .collect();
    let before: Vec<String> = binaries.iter().map(|b| sha256_file(b)).collect();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "watcher",
        "attack",
        "/attack",
        "exe-watch",
        "60",
        "10",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let running =
        || ok(d.berth(&["inspect", "-f", "{{.State.Running}}", "watcher"])).trim() == "true";
    let (mut execs, mut failed_execs) = (0, 0);
    while execs < 400 && running() {
        execs += 1;
        let out = d.berth(&["exec", "watcher", "/evil"]);
        if !out.status.success() {
            failed_execs += 1;
        }
        let _ = d.berth(&["exec", "watcher", "true"]);
    }
    assert!(execs >= 10, "the watcher stopped after {execs} execs");
    assert_eq!(
        failed_execs, execs,
        "the runtime's binary is no container program"
    );
    assert_eq!(
        ok(d.berth(&["wait", "watcher"])),
        "1",
        "the watcher's verdict: {}",
        ok(d.berth(&["logs", "watcher"]))
    );
    let logs = ok(d.berth(&["logs", "watcher"]));
    eprintln!("{logs}");
    assert!(logs.contains("BLOCKED"), "{logs}");
    let caught: u32 = logs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("caught="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        caught >= 10,
        "the runtime ran in the container {caught} times: the attack had its chance: {logs}"
    );
    assert!(logs.contains("written=0"), "{logs}");
    let after: Vec<String> = binaries.iter().map(|b| sha256_file(b)).collect();
    assert_eq!(before, after, "the host's binaries are unchanged");
}

/// CVE-2024-21626: no descriptor of the host reaches the container's process, and a working
/// directory under /proc/self/fd is refused, for run and exec.
#[test]
fn no_host_descriptor_or_working_directory_leaks_into_a_container() {
    let d = daemon();
    let marker = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let secret = format!("host-secret-{}", std::process::id());
    std::fs::write(marker.path(), &secret).unwrap();
    let m = marker.path().display().to_string();
    // The probe itself: with the working directory on the host's root (bound in), it finds
    // the file.
    match attack(
        &d,
        &["-v", "/:/host:ro", "-w", "/host"],
        &["fds", &m, &secret],
    ) {
        Verdict::Escaped(_) => {}
        v => panic!("the fd probe cannot find the marker even when it is there: {v:?}"),
    }
    assert!(matches!(
        attack(&d, &[], &["fds", &m, &secret]),
        Verdict::Blocked(..)
    ));
    ok(d.berth(&["run", "-d", "--name", "fdbox", "attack", "sleep", "300"]));
    let v = verdict(
        &d.berth(&["exec", "fdbox", "/attack", "fds", &m, &secret]),
        &["exec"],
    );
    assert!(matches!(v, Verdict::Blocked(..)), "{v:?}");
    for n in 3..24 {
        let w = format!("/proc/self/fd/{n}");
        for args in [
            vec![
                "run", "--rm", "-w", &w, "attack", "/attack", "fds", &m, &secret,
            ],
            vec!["exec", "-w", &w, "fdbox", "/attack", "fds", &m, &secret],
        ] {
            let out = d.berth(&args);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!text.contains("ESCAPED"), "{args:?}: {text}");
            if out.status.success() {
                assert!(text.contains("BLOCKED"), "{args:?}: {text}");
            } else {
                // `run` reports on stderr; `exec`, as dockerd's, on the stream (stdout).
                let err = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
                assert!(
                    err.contains("cwd") || err.contains("chdir"),
                    "{args:?}: {err}"
                );
            }
        }
    }
}

/// CVE-2018-15664: a container swaps a directory for a symlink to a host path (which exists on
/// the host only) while the host copies from and into it.
#[test]
fn cp_races_against_swapped_symlinks_stay_inside() {
    let d = daemon();
    let host = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::write(host.path().join("secret"), "HOST-SECRET").unwrap();
    let hp = host.path().display().to_string();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "racer",
        "attack",
        "sh",
        "-c",
        &format!(
            "mkdir -p /w; while :; do rm -rf /w/x; mkdir /w/x; echo inside > /w/x/secret; rm -rf /w/x; ln -s {hp} /w/x; done"
        ),
    ]));
    let out = tempfile::tempdir().unwrap();
    let src = out.path().join("in");
    std::fs::write(&src, "from-the-host").unwrap();
    let (mut inside, mut refused) = (0, 0);
    for i in 0..150 {
        let dst = out.path().join(format!("got{i}"));
        let r = d.berth(&["cp", "racer:/w/x/secret", &dst.display().to_string()]);
        if r.status.success() {
            let got = std::fs::read_to_string(&dst).unwrap_or_default();
            assert!(!got.contains("HOST-SECRET"), "cp read the host's file");
            // Caught before, while or after the container wrote it.
            assert!("inside\n".starts_with(&got), "{got:?}");
            inside += 1;
        } else {
            refused += 1;
        }
        let _ = d.berth(&["cp", &src.display().to_string(), "racer:/w/x/in"]);
    }
    eprintln!(
        "cp from the racing path: {inside} copies of the container's file, {refused} refused"
    );
    assert!(
        inside > 0 && refused > 0,
        "both states of the race were seen"
    );
    let names: Vec<_> = std::fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("secret")],
        "nothing was written on the host"
    );
}

/// CVE-2019-16884 / CVE-2023-27561 and the mount-through-symlink class: an image that plants
/// symlinks where the runtime mounts.
#[test]
fn image_planted_symlinks_do_not_redirect_mounts() {
    let d = daemon();
    let host_dir = tempfile::tempdir_in("/tmp").unwrap();
    let host_file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    std::fs::write(host_file.path(), "host-file").unwrap();
    let up = "/../../../../../../..";
    let hd = format!("{up}{}", host_dir.path().display());
    let hf = format!("{up}{}", host_file.path().display());
    // One image per planted link: a busybox tree with the link, imported.
    let plant = |tag: &str, link: &str, target: &str| {
        let root = tempfile::tempdir().unwrap();
        busybox_rootfs(root.path());
        let l = root.path().join(link.trim_start_matches('/'));
        let _ = std::fs::remove_dir(&l);
        std::os::unix::fs::symlink(target, &l).unwrap();
        let tar = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        tar_dir(root.path(), &tar);
        ok(d.berth(&["import", &tar.display().to_string(), tag]));
    };
    plant("evil-data", "/data", &hd);
    plant("evil-hosts", "/etc/hosts", &hf);
    plant("evil-resolv", "/etc/resolv.conf", &hf);
    plant("evil-proc", "/proc", &hd);
    plant("evil-sys", "/sys", &hd);
    for tag in ["evil-proc", "evil-sys"] {
        let out = d.berth(&["run", "--rm", tag, "/bin/sh", "-c", "true"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{tag}: {err}");
        assert!(err.contains("symlink"), "{tag}: {err}");
    }
    // The mounts land inside the container's root, at the link's target there.
    let inner = host_dir.path().display().to_string();
    let script = format!(
        "touch /data/planted && test -e {inner}/planted && grep -q ' {inner} ' /proc/mounts && echo ok"
    );
    let bind_src = tempfile::tempdir().unwrap();
    let bind = format!(
        "type=bind,source={},target=/data",
        bind_src.path().display()
    );
    for flags in [
        vec!["-v", "vol1:/data"],
        vec!["--tmpfs", "/data"],
        vec!["--mount", &bind],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(&flags);
        a.extend_from_slice(&["evil-data", "sh", "-c", &script]);
        let out = d.berth(&a);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.trim() == "ok",
            "{flags:?}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_dir(host_dir.path()).unwrap().count(),
        0,
        "nothing reached the host directory"
    );
    assert!(
        bind_src.path().join("planted").exists(),
        "the bind mount got the file"
    );
    for tag in ["evil-hosts", "evil-resolv"] {
        let out = ok(d.berth(&[
            "run",
            "--rm",
            tag,
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf; echo done",
        ]));
        assert!(out.ends_with("done"), "{out}");
        assert_eq!(
            std::fs::read_to_string(host_file.path()).unwrap(),
            "host-file",
            "{tag}: the host's file is untouched"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&inner), "no mount on the host directory");
    assert!(
        !mounts.contains(&host_file.path().display().to_string()),
        "no mount on the host file"
    );
}

/// Device rules on cgroup v2: berthd with `--cgroup-hierarchy unified` places containers only
/// in the cgroup2 hierarchy (their v1 devices cgroup is the host's root, which allows
/// everything), so every refusal below is the eBPF device program's. Each refusal is paired
/// with the flag that lets the same attack through.
#[test]
fn device_rules_hold_on_the_unified_hierarchy() {
    let d = daemon_with(&["--cgroup-hierarchy", "unified"]);
    assert_eq!(
        ok(d.berth(&[
            "info",
            "--format",
            "{{.CgroupVersion}} {{.CgroupHierarchy}} {{.MemoryLimit}}"
        ])),
        "2 unified false",
        "info reports the layout and that the cgroup2 mount has no memory controller here"
    );
    let disk = LoopDevice::attach();
    let (maj, min) = disk.numbers();
    let eperm = Some(libc::EPERM);
    for args in [vec!["mknod-disk", &maj, &min], vec!["mknod-kmsg"]] {
        match attack(&d, &[], &args) {
            Verdict::Blocked(_, e) if e == eperm => {}
            v => panic!("{args:?} with the defaults: {v:?}"),
        }
        match attack(&d, &["--privileged"], &args) {
            Verdict::Escaped(_) => {}
            v => panic!("{args:?} --privileged: {v:?}"),
        }
    }
    // /dev/mem: refused by the rules; with --privileged this kernel has none (ENXIO).
    match attack(&d, &[], &["mknod-mem"]) {
        Verdict::Blocked(_, e) if e == eperm => {}
        v => panic!("mknod-mem: {v:?}"),
    }
    match attack(&d, &["--privileged"], &["mknod-mem"]) {
        Verdict::Blocked(_, Some(e)) if e != libc::EPERM => {}
        Verdict::Escaped(_) => {}
        v => panic!("mknod-mem --privileged: {v:?}"),
    }
    device_flags_open_the_device(&d, &disk);
    // A limit whose controller the cgroup2 mount lacks is refused, never ignored.
    let out = d.berth(&["run", "--rm", "--memory", "64m", "busybox", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("the memory cgroup controller is not available"),
        "{err}"
    );
}

/// The same device rules through the v1 devices controller (the host layout here).
#[test]
fn device_flags_on_the_v1_hierarchy() {
    let d = daemon();
    let disk = LoopDevice::attach();
    device_flags_open_the_device(&d, &disk);
    match attack(&d, &[], &["mknod-kmsg"]) {
        Verdict::Blocked(_, e) if e == Some(libc::EPERM) => {}
        v => panic!("mknod-kmsg: {v:?}"),
    }
    d.refused(
        &[
            "run",
            "--rm",
            "--device-cgroup-rule",
            "x 1:3 r",
            "busybox",
            "true",
        ],
        "invalid device cgroup format 'x 1:3 r'",
    );
    d.refused(
        &["run", "--rm", "--device", "/dev/no-such-device", "busybox", "true"],
        "error gathering device information while adding custom device \"/dev/no-such-device\": no such file or directory",
    );
}

/// The default profile is compiled once per distinct profile and then loaded from the
/// runtime's cache (`<exec-root>/runtime/@seccomp`): a second run adds no entry, a different
/// capability set (hence a different profile) adds one, `--privileged` (no filter) none, and a
/// damaged entry is compiled again. The filters from the cache still refuse what the profile
/// forbids.
#[test]
fn seccomp_filters_are_compiled_once_per_profile() {
    let d = daemon();
    let cache = d.dir.path().join("exec/runtime/@seccomp");
    let entries = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&cache)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = entries().len();
    let blocked = |flags: &[&str]| match attack(&d, flags, &["add_key"]) {
        Verdict::Blocked(_, e) => e,
        v => panic!("add_key {flags:?}: {v:?}"),
    };
    assert_eq!(blocked(&[]), Some(libc::EPERM));
    let one = entries();
    assert_eq!(one.len(), before + 1, "{one:?}");
    assert_eq!(blocked(&[]), Some(libc::EPERM));
    assert_eq!(entries(), one, "the same profile compiled again");
    assert_eq!(blocked(&["--cap-add", "SYS_ADMIN"]), Some(libc::EPERM));
    let two = entries();
    assert_eq!(
        two.len(),
        one.len() + 1,
        "another capability set is another profile"
    );
    ok(d.berth(&["run", "--rm", "--privileged", "busybox", "true"]));
    assert_eq!(entries(), two, "--privileged runs without a filter");
    // Damage every entry: each is compiled again, and still filters.
    for e in &two {
        std::fs::write(e, b"BSECCMP1 not a program").unwrap();
    }
    assert_eq!(blocked(&[]), Some(libc::EPERM));
    assert_eq!(blocked(&["--cap-add", "SYS_ADMIN"]), Some(libc::EPERM));
    assert_eq!(entries(), two);
    for e in &two {
        let len = std::fs::read(e).unwrap().len();
        assert!(
            len > 1000,
            "{} was not compiled again: {len} bytes",
            e.display()
        );
    }
}
