//! The shim's ends and beginnings end to end: the spare shim, starts right after exits, and the
//! exit told before the shim's clean-up (the real `berth` CLI against a real berthd).

use berth_e2e::{busybox_image, eventually, ok, Berthd};

/// The spare shim (`berth-shim --spare DIR`, see engine/src/containers/spare.rs): berthd keeps
/// one ready, idle-scheduled; a start uses it, the container and its shim run under the
/// normal policy, and a new spare is made. It ends with berthd.
#[test]
fn a_spare_shim_serves_the_next_start_and_ends_with_berthd() {
    let mut d = Berthd::start_with(busybox_image);
    let spare_dir = d.data.join("containers").display().to_string();
    let spares = |dir: &str| -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let c = std::fs::read(e.path().join("cmdline")).ok()?;
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                (c.contains("berth-shim --spare") && c.trim_end().ends_with(dir)).then_some(pid)
            })
            .collect()
    };
    let policy = |pid: u32| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/sched"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("policy"))
            .and_then(|l| l.split(':').nth(1))
            .map(|p| p.trim().to_string())
            .unwrap_or_default()
    };
    // The detached spare: its starter (berthd's child, which forks it and exits) has the
    // same command line, but berthd as its parent.
    let berthd = d.pid();
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let wait_spare = || -> u32 {
        for _ in 0..200 {
            let idle: Vec<u32> = spares(&spare_dir)
                .into_iter()
                .filter(|p| policy(*p) == "5" && parent(*p).is_some_and(|pp| pp != berthd))
                .collect();
            // berthd takes the spare once its starter has exited and been reaped.
            let starting = spares(&spare_dir)
                .into_iter()
                .any(|p| parent(p) == Some(berthd));
            if let ([p], false) = (idle.as_slice(), starting) {
                std::thread::sleep(std::time::Duration::from_millis(50));
                return *p;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("no one idle spare shim: {:?}", spares(&spare_dir));
    };
    let first = wait_spare();
    let out = ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "served",
        "busybox",
        "sh",
        "-c",
        "grep policy /proc/1/sched; sleep 30",
    ]));
    assert_eq!(out.trim().len(), 64);
    // The spare became the container's shim: under the normal policy, as is the container.
    assert_eq!(policy(first), "0", "the shim that serves a container");
    let logs = || ok(d.berth(&["logs", "served"]));
    for _ in 0..100 {
        if !logs().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        logs().trim().ends_with(" 0"),
        "the container's policy: {}",
        logs()
    );
    let second = wait_spare();
    assert_ne!(first, second, "a new spare after the start");
    ok(d.berth(&["rm", "-f", "served"]));
    d.kill9();
    for _ in 0..100 {
        if spares(&spare_dir).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the spare outlived berthd: {:?}", spares(&spare_dir));
}

/// Starts one right after another's exit (`start -a` returns at the exit, the next start
/// is served by a spare shim at once), 25 times: every run has its shim, its output and its
/// log line. The engine also waits for the last run's shim to be gone before a start (it
/// reports the exit before it writes its last state and removes its socket); that race was
/// reasoned from the code and not seen here, with or without the wait (3 × 25 runs).
#[test]
fn starts_right_after_exits_keep_their_shim() {
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["create", "--name", "again", "busybox", "echo", "round"]));
    for i in 0..25 {
        let out = ok(d.berth(&["start", "-a", "again"]));
        assert_eq!(out.trim(), "round", "start {i}");
    }
    let state = ok(d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
        "again",
    ]));
    assert_eq!(state.trim(), "exited 0 0");
    assert_eq!(ok(d.berth(&["logs", "again"])).lines().count(), 25);
    ok(d.berth(&["rm", "again"]));
}

/// Mount points under `root` in this (the host's) mount namespace.
fn mounts_under(root: &std::path::Path) -> Vec<String> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root))
        .map(str::to_string)
        .collect()
}

/// Seconds since boot, the kernel log's clock.
fn uptime() -> f64 {
    let s = std::fs::read_to_string("/proc/uptime").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// The kernel's warnings, since `since` (seconds since boot), that an overlay's upper or work
/// directory was mounted while another mount used it: what happens when berthd or a new shim
/// mounts a container's root before the old shim has unmounted it.
fn overlay_in_use_warnings(since: f64) -> Vec<String> {
    let out = std::process::Command::new("dmesg")
        .output()
        .expect("dmesg (util-linux) runs");
    assert!(out.status.success(), "dmesg: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("is in-use as upperdir/workdir"))
        .filter(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .is_some_and(|t| t >= since)
        })
        .map(str::to_string)
        .collect()
}

/// A shim tells the exit before it removes the cgroup and unmounts the root (the unmount alone
/// is an RCU grace period): `wait`, the attached stream and a `--rm` removal end first. What
/// needs the root or the socket again waits for the old shim to be gone: a copy out of the
/// stopped container (its root mounted by berthd), a start (a new shim on the same root), and
/// the removal's deletion (after its answer; the shim unmounts through a descriptor, since the
/// removal renames the container's directory under it). Nothing may be left behind, and the
/// kernel must never have seen a container's upper directory mounted twice (without the waits
/// it warns here within a few runs).
#[test]
fn exits_are_told_before_the_clean_up_and_nothing_reuses_the_root_too_early() {
    let since = uptime();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&[
        "create",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "cat /n 2>/dev/null; date +%N > /n",
    ]));
    let host = tempfile::tempdir().unwrap();
    let mut last = String::new();
    for i in 0..25 {
        // Each run prints what the last one wrote: the root survives every clean-up.
        let out = ok(d.berth(&["start", "-a", "writer"]));
        assert_eq!(
            out.trim(),
            last.trim(),
            "start {i} prints the last run's file"
        );
        // At once: the stopped container's root, mounted by berthd right after the old
        // shim's unmount, has the file just written.
        let to = host.path().join(format!("n{i}"));
        ok(d.berth(&["cp", "writer:/n", to.to_str().unwrap()]));
        last = std::fs::read_to_string(&to).unwrap();
        assert!(!last.trim().is_empty(), "cp {i} copied the new file");
    }
    ok(d.berth(&["rm", "writer"]));
    // --rm runs: each removal is answered before its deletion; afterwards nothing is left.
    for i in 0..10 {
        let out = ok(d.berth(&["run", "--rm", "busybox", "echo", &i.to_string()]));
        assert_eq!(out.trim(), i.to_string());
    }
    let containers = d.data.join("containers");
    let left = || {
        let dirs: Vec<String> = std::fs::read_dir(&containers)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        let roots: Vec<String> = mounts_under(d.dir.path())
            .into_iter()
            .filter(|m| m.ends_with("/rootfs") || m.contains("/mnt/"))
            .collect();
        (dirs, roots)
    };
    assert!(
        eventually(10, || left() == (vec![], vec![])),
        "left behind (container directories, root mounts): {:?}",
        left()
    );
    assert_eq!(ok(d.berth(&["ps", "-aq"])).trim(), "");
    let warned = overlay_in_use_warnings(since);
    assert!(warned.is_empty(), "a root was mounted twice: {warned:?}");
}

/// Without a pid namespace of its own, a container's processes can outlive its init: the
/// clean-up kills them, and the shim tells the exit only after it (a `run` that returned
/// leaves no process of the container alive). The order itself is not caught here: the kill
/// comes a fraction of a millisecond after the exit, sooner than the CLI's answer even when
/// the tell comes first (tried); what is caught is a process left running.
#[test]
fn a_host_pid_container_is_told_ended_only_once_its_processes_are_gone() {
    let d = Berthd::start_with(busybox_image);
    for _ in 0..3 {
        let out = ok(d.berth(&[
            "run",
            "--rm",
            "--pid",
            "host",
            "busybox",
            "sh",
            "-c",
            "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!",
        ]));
        let pid: u32 = out.trim().parse().expect("the sleeper's host pid");
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim().chars().next()))
            .flatten();
        assert!(
            matches!(state, None | Some('Z') | Some('X')),
            "the container's sleep {pid} still runs ({state:?}) after run returned"
        );
    }
}
