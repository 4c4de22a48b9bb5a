//! The soak: short containers on the default bridge, each through create, start, exec, logs,
//! stop and rm. First in sequence, then many at once. Afterwards nothing has leaked:
//! - no mount under the daemon's roots;
//! - no container cgroup;
//! - no veth on the bridge;
//! - no nftables rule beyond the daemon's own;
//! - no shim process;
//! - no descriptor in berthd;
//! - berthd's RSS has grown by less than [`RSS_BOUND_KIB`].
//!
//! CI runs a reduced soak (`BERTH_SOAK_SEQUENTIAL`, default 100; `BERTH_SOAK_CONCURRENT`,
//! default 20). `bench/soak` runs the full one: 1,000 in sequence and 50 at once.

use std::time::Instant;

use berth_e2e::{busybox_image, ok, Berthd};

/// What berthd's resident memory may grow by from the end of the warm-up to the end.
const RSS_BOUND_KIB: u64 = 16 * 1024;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Everything that could leak, as counts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resources {
    mounts: usize,
    cgroups: usize,
    veths: usize,
    nft_rules: usize,
    shims: usize,
    berthd_fds: usize,
}

/// Waits (at most 5 s) for what berthd finishes after its answers: the spare shim it makes
/// some milliseconds after a start (its two pipes count among berthd's descriptors), and the
/// removals' deletions, which hold a connection to the old shim until it is gone and then
/// delete the `.removing-<id>` directory.
fn settle(d: &Berthd) {
    let data = d.data.display().to_string();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < end {
        // A spare that got a container keeps its command line; a waiting one holds no file
        // of the data root open.
        let spare = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("--spare") && c.contains(&data)
            }) && std::fs::read_dir(e.path().join("fd")).is_ok_and(|fds| {
                !fds.flatten()
                    .any(|f| std::fs::read_link(f.path()).is_ok_and(|t| t.starts_with(&d.data)))
            })
        });
        let removing = std::fs::read_dir(d.data.join("containers"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".removing-"));
        if spare && !removing {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("berthd of {data} did not settle in 5 s (a spare shim, no removal pending)");
}

fn resources(d: &Berthd, ids: &[String]) -> Resources {
    settle(d);
    let root = d.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&root)))
        .count();
    // The cgroups of the containers this test made (cgroupsPath /berth/<id>).
    let mut cgroups = 0;
    for base in [
        "/sys/fs/cgroup/memory/berth",
        "/sys/fs/cgroup/pids/berth",
        "/sys/fs/cgroup/cpu/berth",
        "/sys/fs/cgroup/devices/berth",
        "/sys/fs/cgroup/freezer/berth",
        "/sys/fs/cgroup/unified/berth",
        "/sys/fs/cgroup/berth",
    ] {
        cgroups += std::fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| ids.contains(&e.file_name().to_string_lossy().to_string()))
            .count();
    }
    let bridge = d.bridge.clone().expect("the test daemon's own bridge");
    let veths = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["-o", "link", "show", "master", &bridge])
            .output()
            .unwrap()
            .stdout,
    )
    .lines()
    .count();
    let nft_rules = ["ip", "ip6"]
        .iter()
        .map(|f| {
            let out = std::process::Command::new("nft")
                .args(["-a", "list", "table", f, &format!("berth-{bridge}")])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("# handle") && !l.trim_start().starts_with("chain"))
                .count()
        })
        .sum();
    let data = d.data.display().to_string();
    // Shims serving a container of this daemon: they hold files of its data root open (the
    // container's log). berthd's spare shim, waiting for a container, holds none.
    let shims = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let ours = std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("berth-shim") && c.contains(&data)
                })
                .unwrap_or(false);
            ours && std::fs::read_dir(e.path().join("fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|f| std::fs::read_link(f.path()).is_ok_and(|t| t.starts_with(&d.data)))
            })
        })
        .count();
    let berthd_fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    Resources {
        mounts,
        cgroups,
        veths,
        nft_rules,
        shims,
        berthd_fds,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One container's whole life; its id.
fn lifecycle(d: &Berthd, name: &str) -> String {
    let id = ok(d.berth(&[
        "create",
        "--name",
        name,
        "-p",
        "127.0.0.1::8080",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo up; sleep 300 & wait",
    ]));
    ok(d.berth(&["start", name]));
    assert_eq!(ok(d.berth(&["exec", name, "echo", "in"])), "in");
    // The first line may take a moment to reach the log.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = ok(d.berth(&["logs", name]));
        if logs == "up" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(logs, "up", "{name}");
    ok(d.berth(&["stop", name]));
    ok(d.berth(&["rm", name]));
    id
}

#[test]
fn soak_leaves_nothing_behind() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the soak runs containers: run it as root"
    );
    let sequential = count("BERTH_SOAK_SEQUENTIAL", 100);
    let concurrent = count("BERTH_SOAK_CONCURRENT", 20);
    let d = Berthd::start_with(busybox_image);
    // A warm-up, so that lazily made things (the bridge, its rules, caches) exist before the
    // baseline.
    let warm = 10.min(sequential);
    let mut ids = Vec::new();
    for i in 0..warm {
        ids.push(lifecycle(&d, &format!("warm{i}")));
    }
    let base = resources(&d, &ids);
    // The counts see a live container (so that a leak would show): one running, with a
    // published port.
    let probe = ok(d.berth(&[
        "run",
        "-d",
        "-p",
        "127.0.0.1::8080",
        "busybox",
        "sleep",
        "300",
    ]));
    let live = resources(&d, std::slice::from_ref(&probe));
    assert!(
        live.mounts > base.mounts
            && live.cgroups > 0
            && live.veths == base.veths + 1
            && live.nft_rules > base.nft_rules
            && live.shims == base.shims + 1
            && live.berthd_fds >= base.berthd_fds,
        "a running container shows in every count: {base:?} -> {live:?}"
    );
    // Its exec instances go with it (they once piled up in berthd for ever).
    let curl = |method: &str, path: &str, body: &str| {
        ok(std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--unix-socket",
            ])
            .arg(d.sock())
            .args([
                "-X",
                method,
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ])
            .arg(format!("http://berth{path}"))
            .output()
            .unwrap())
    };
    let created = ok(std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(d.sock())
        .args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Cmd":["true"]}"#,
        ])
        .arg(format!("http://berth/containers/{probe}/exec"))
        .output()
        .unwrap());
    let exec: serde_json::Value = serde_json::from_str(&created).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_string();
    assert_eq!(curl("GET", &format!("/exec/{exec}/json"), ""), "200");
    ok(d.berth(&["rm", "-f", &probe]));
    assert_eq!(curl("GET", &format!("/exec/{exec}/json"), ""), "404");
    ids.push(probe);
    let rss0 = rss_kib(d.pid());
    let t = Instant::now();
    for i in warm..sequential {
        ids.push(lifecycle(&d, &format!("seq{i}")));
    }
    let seq_time = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrent)
            .map(|i| {
                let d = &d;
                s.spawn(move || lifecycle(d, &format!("par{i}")))
            })
            .collect();
        for h in handles {
            ids.push(h.join().expect("a concurrent lifecycle"));
        }
    });
    let par_time = t.elapsed();
    // Exited shims linger for a moment to flush their clients.
    let mut after = resources(&d, &ids);
    for _ in 0..50 {
        if after == base {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        after = resources(&d, &ids);
    }
    let rss1 = rss_kib(d.pid());
    eprintln!(
        "soak: {sequential} containers in sequence in {seq_time:?} ({:?} each), {concurrent} at once in {par_time:?}; \
         before {base:?}, after {after:?}; berthd RSS {rss0} KiB -> {rss1} KiB",
        seq_time / (sequential - warm).max(1) as u32
    );
    assert_eq!(after, base, "something leaked");
    assert!(
        rss1 <= rss0 + RSS_BOUND_KIB,
        "berthd's RSS grew by {} KiB (bound {RSS_BOUND_KIB} KiB)",
        rss1.saturating_sub(rss0)
    );
    assert_eq!(ok(d.berth(&["ps", "-aq"])), "", "every container is gone");
}
