//! The systemd cgroup driver (`native.cgroupdriver=systemd`), proven against a real systemd:
//! Debian's systemd 252 runs as PID 1 of a pid and mount namespace (this machine's init is not
//! systemd; see `berth_e2e::systemd_ns`), and berthd runs inside them. Each container's cgroup
//! is then a transient scope systemd made and owns (`system.slice/berth-<id>.scope`), the
//! container's processes are in its `container` cgroup with berth's limits and device rules,
//! those rules hold after systemd re-applies the unit, and the scope goes with the container.

use berth_e2e::attacks::{attack, install_attack_image, LoopDevice, Verdict};
use berth_e2e::systemd_ns::SystemdNs;
use berth_e2e::{busybox_image, ok, Berthd};

const DOCKER28: &str = "/usr/local/bin/docker";

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the systemd driver's tests run systemd and containers: run them as root"
    );
}

/// A berthd with the systemd driver inside `sd`'s namespaces, with the attack image.
fn daemon(sd: &SystemdNs) -> Berthd {
    let d = Berthd::start_wrapped(
        sd.wrap(),
        busybox_image,
        r#"{"exec-opts": ["native.cgroupdriver=systemd"]}"#,
    );
    install_attack_image(&d);
    d
}

/// The cgroup of `pid` (a host pid) in the v1 hierarchy named `name` (`memory`,
/// `name=systemd`…).
fn cgroup_of(pid: &str, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',').any(|c| c == name).then(|| path.to_string())
        })
        .unwrap_or_default()
}

/// The host pid of a container's init, from berthd's pid `ns_pid` in `sd`'s pid namespace.
/// Two such namespaces run side by side in this file, and berthd (entered with nsenter)
/// and its shims have pids in them too, so a pid number alone is ambiguous: the process
/// must be in `sd`'s namespace or be a child of one that is (a container's init is pid 1
/// of a namespace of its own, below `sd`'s).
fn host_pid(sd: &SystemdNs, ns_pid: &str) -> String {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let sd_ns = ns(&sd.pid.to_string());
    assert!(sd_ns.is_some(), "systemd's pid namespace");
    let ppid = |p: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        Some(stat.rsplit_once(") ")?.1.split(' ').nth(1)?.to_string())
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|p| p.to_string())
        .find(|p| {
            let in_ns = std::fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.starts_with("NSpid:") && l.split_whitespace().nth(2) == Some(ns_pid))
            });
            in_ns && (ns(p) == sd_ns || ppid(p).is_some_and(|pp| ns(&pp) == sd_ns))
        })
        .unwrap_or_else(|| panic!("no process has pid {ns_pid} in systemd's namespace"))
}

#[test]
fn containers_are_systemd_scopes_with_berths_limits_and_rules() {
    require_root();
    let sd = SystemdNs::start();
    let d = daemon(&sd);
    assert_eq!(ok(d.berth(&["info", "-f", "{{.CgroupDriver}}"])), "systemd");
    let out = d.docker(DOCKER28, &["info", "-f", "{{.CgroupDriver}}"]);
    assert_eq!(
        ok(out),
        "systemd",
        "the docker CLI reads the driver from berthd"
    );

    let id = ok(d.berth(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "300",
    ]));
    let unit = format!("berth-{id}.scope");
    assert_eq!(sd.property(&unit, "ActiveState"), "active", "{unit} runs");
    assert_eq!(sd.property(&unit, "Slice"), "system.slice");
    assert_eq!(sd.property(&unit, "Delegate"), "yes");
    let pid = host_pid(&sd, &ok(d.berth(&["inspect", "-f", "{{.State.Pid}}", &id])));
    let scope = format!("/{}/system.slice/{unit}", sd.cgroup);
    for h in ["name=systemd", "memory", "pids", "devices"] {
        assert_eq!(cgroup_of(&pid, h), format!("{scope}/container"), "{h}");
    }
    let dir = |h: &str| format!("/sys/fs/cgroup/{h}{scope}/container");
    let read = |p: String| std::fs::read_to_string(&p).unwrap().trim().to_string();
    assert_eq!(
        read(format!("{}/memory.limit_in_bytes", dir("memory"))),
        "67108864"
    );
    assert_eq!(read(format!("{}/pids.max", dir("pids"))), "50");
    // systemd's own rules for the scope allow everything (no device policy was asked for);
    // the container's, one level down, are berth's.
    let rules = read(format!("{}/devices.list", dir("devices")));
    assert!(!rules.contains("a *:* rwm"), "{rules}");

    // A re-applied unit (daemon-reload, set-property) leaves the container's rules alone.
    let disk = LoopDevice::attach();
    let (maj, min) = disk.numbers();
    ok(sd.systemctl(&["daemon-reload"]));
    ok(sd.systemctl(&["set-property", "--runtime", &unit, "CPUWeight=50"]));
    assert_eq!(read(format!("{}/devices.list", dir("devices"))), rules);
    match attack(&d, &[], &["mknod-disk", &maj, &min]) {
        Verdict::Blocked(_, e) if e == Some(libc::EPERM) => {}
        v => panic!("mknod-disk under the systemd driver: {v:?}"),
    }
    match attack(&d, &["--privileged"], &["mknod-disk", &maj, &min]) {
        Verdict::Escaped(_) => {}
        v => panic!("mknod-disk --privileged: {v:?}"),
    }

    // The scope goes with the container, and so do the cgroups.
    ok(d.berth(&["rm", "-f", &id]));
    assert!(
        berth_e2e::eventually(10, || sd.property(&unit, "LoadState") == "not-found"),
        "{unit} is gone: {}",
        sd.property(&unit, "ActiveState")
    );
    assert!(
        berth_e2e::eventually(5, || !std::path::Path::new(&dir("memory")).exists()
            && !std::path::Path::new(&format!("/sys/fs/cgroup/memory{scope}")).exists()),
        "the scope's cgroups are removed"
    );
    // A container that ran to its end: its scope is gone too.
    ok(d.berth(&["run", "--rm", "busybox", "true"]));
    let left = String::from_utf8_lossy(
        &sd.systemctl(&["list-units", "--all", "--no-legend", "berth-*.scope"])
            .stdout,
    )
    .to_string();
    assert_eq!(left.trim(), "", "no berth scope is left");
}

/// The same on the unified hierarchy (`cgroup-hierarchy: unified`, cgroup v2 only): there a
/// cgroup that delegates controllers to its children cannot hold processes, so the scope
/// must be empty of them before berth enables controllers below it; and the device rules are
/// the eBPF program's.
#[test]
fn systemd_scopes_on_the_unified_hierarchy() {
    require_root();
    let sd = SystemdNs::start();
    let d = Berthd::start_wrapped(
        sd.wrap(),
        busybox_image,
        r#"{"exec-opts": ["native.cgroupdriver=systemd"], "cgroup-hierarchy": "unified"}"#,
    );
    install_attack_image(&d);
    let id = ok(d.berth(&["run", "-d", "busybox", "sleep", "300"]));
    let unit = format!("berth-{id}.scope");
    assert_eq!(sd.property(&unit, "ActiveState"), "active", "{unit} runs");
    let pid = host_pid(&sd, &ok(d.berth(&["inspect", "-f", "{{.State.Pid}}", &id])));
    let scope = format!("/{}/system.slice/{unit}", sd.cgroup);
    let v2 = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        v2.lines().any(|l| l == format!("0::{scope}/container")),
        "{v2}"
    );
    let disk = LoopDevice::attach();
    let (maj, min) = disk.numbers();
    ok(sd.systemctl(&["daemon-reload"]));
    match attack(&d, &[], &["mknod-disk", &maj, &min]) {
        Verdict::Blocked(_, e) if e == Some(libc::EPERM) => {}
        v => panic!("mknod-disk under the systemd driver, unified: {v:?}"),
    }
    ok(d.berth(&["rm", "-f", &id]));
    assert!(
        berth_e2e::eventually(10, || sd.property(&unit, "LoadState") == "not-found"),
        "{unit} is gone"
    );
}

/// Without systemd as init, berthd refuses the driver at start, naming why. (A mount
/// namespace whose /run/systemd is an empty tmpfs is a host without systemd, whatever this
/// machine's init is.)
#[test]
fn berthd_refuses_the_systemd_driver_without_systemd() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "mount --make-rprivate / && mkdir -p /run/systemd && mount -t tmpfs none /run/systemd \
         && exec {} -H unix://{d}/s.sock --data-root {d}/data --exec-root {d}/exec \
         --exec-opt native.cgroupdriver=systemd",
        berth_e2e::binary("berthd").display(),
        d = dir.path().display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "berthd started: {err}");
    assert!(
        err.contains("native.cgroupdriver=systemd")
            && err.contains("needs systemd as the init system"),
        "{err}"
    );
}
