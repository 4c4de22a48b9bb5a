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
//! It prints berthd's RSS at checkpoints (after 100, 500, 1,000, 3,000 … containers) and each
//! step's latency percentiles, so that a slope, a plateau or a slow tail shows. When a step
//! fails, the evidence is kept before the test daemon's directory goes: berthd's log, the
//! container's inspect, logs and shim log, the listing of `ps -a` (see [`keep_evidence`]).
//!
//! CI runs a reduced soak (`BERTH_SOAK_SEQUENTIAL`, default 100; `BERTH_SOAK_CONCURRENT`,
//! default 20). `bench/soak` runs the full one: 1,000 in sequence and 50 at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_e2e::{busybox_image, ok, Berthd};

/// What berthd's resident memory may grow by from the end of the warm-up to the end.
const RSS_BOUND_KIB: u64 = 16 * 1024;

/// What berthd's anonymous RSS may stay above its level before a burst, once the burst is
/// over and berthd has had time to return the heap it freed. What stays is fragmentation a
/// trim cannot give back (pages that still hold a live block): 2.1–4.3 MiB after three bursts
/// of 50 (docs/benchmarks.md, "soak"), against 7.4 MiB kept before berthd trimmed its heap.
const ANON_SLACK_KIB: u64 = 4 * 1024;

/// Container counts at which berthd's RSS is reported.
const CHECKPOINTS: [usize; 6] = [100, 500, 1_000, 3_000, 10_000, 30_000];

/// The steps of one container's life, in order.
const STEPS: [&str; 6] = ["create", "start", "exec", "logs", "stop", "rm"];

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
    status_kib(pid, "VmRSS:")
}

/// A size line of /proc/PID/status (`VmRSS:`, `RssAnon:` …), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A step that failed: which container, which step, what the CLI said.
#[derive(Debug)]
struct Failure {
    name: String,
    step: &'static str,
    said: String,
}

/// One container's life: its id and each step's time, in [`STEPS`] order.
struct Cycle {
    id: String,
    times: [Duration; 6],
}

/// Runs one step through the berth CLI: its trimmed stdout, or what it said when it failed.
fn step(d: &Berthd, name: &str, step: &'static str, args: &[&str]) -> Result<String, Failure> {
    let out = d.berth(args);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(Failure {
        name: name.to_string(),
        step,
        said: format!(
            "berth {args:?}: exit {:?}\nstdout: {stdout}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// One container's whole life.
fn lifecycle(d: &Berthd, name: &str) -> Result<Cycle, Failure> {
    let mut times = [Duration::ZERO; 6];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        times[i] = t.elapsed();
        t = Instant::now();
    };
    let id = step(
        d,
        name,
        "create",
        &[
            "create",
            "--name",
            name,
            "-p",
            "127.0.0.1::8080",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo up; sleep 300 & wait",
        ],
    )?;
    lap(0);
    step(d, name, "start", &["start", name])?;
    lap(1);
    let said = step(d, name, "exec", &["exec", name, "echo", "in"])?;
    if said != "in" {
        return Err(Failure {
            name: name.into(),
            step: "exec",
            said: format!("exec printed {said:?}, not \"in\""),
        });
    }
    lap(2);
    // The first line may take a moment to reach the log.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = step(d, name, "logs", &["logs", name])?;
        if logs == "up" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if logs != "up" {
        return Err(Failure {
            name: name.into(),
            step: "logs",
            said: format!("logs are {logs:?} after a second, not \"up\""),
        });
    }
    lap(3);
    step(d, name, "stop", &["stop", name])?;
    lap(4);
    step(d, name, "rm", &["rm", name])?;
    lap(5);
    Ok(Cycle { id, times })
}

/// Keeps what explains a failed step under `$BERTH_SOAK_KEEP` (default
/// `/var/tmp/berth-soak`), since the test daemon's directory goes with the test: the failure,
/// berthd's whole log and state, the container's inspect, logs, `ps -a`, and the container's
/// directories (config, state, `shim.log`) if they are still there. Returns the directory.
fn keep_evidence(d: &mut Berthd, f: &Failure) -> PathBuf {
    let base = std::env::var("BERTH_SOAK_KEEP").unwrap_or_else(|_| "/var/tmp/berth-soak".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let keep = Path::new(&base).join(format!("{stamp}-{}-{}", f.name, f.step));
    std::fs::create_dir_all(&keep).unwrap();
    let write = |file: &str, text: &str| std::fs::write(keep.join(file), text).unwrap();
    write(
        "failure.txt",
        &format!("{} failed at {}:\n{}\n", f.name, f.step, f.said),
    );
    write("berthd.txt", &d.diagnose());
    let _ = std::fs::copy(d.dir.path().join("berthd.log"), keep.join("berthd.log"));
    for (file, args) in [
        ("inspect.json", vec!["inspect", &f.name]),
        ("logs.txt", vec!["logs", &f.name]),
        ("ps.txt", vec!["ps", "-a", "--no-trunc"]),
    ] {
        let out = d.berth(&args);
        write(
            file,
            &format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    // The container's directories, found by its name in their config.
    let exec = d.dir.path().join("exec");
    for root in [d.data.join("containers"), exec.join("containers"), exec] {
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let files: Vec<_> = std::fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            let ours = files.iter().any(|f2| {
                std::fs::read(f2.path()).is_ok_and(|b| {
                    b.len() < 1 << 20 && String::from_utf8_lossy(&b).contains(&f.name)
                })
            });
            if !ours {
                continue;
            }
            let to = keep.join(format!(
                "{}-{}",
                root.file_name().unwrap().to_string_lossy(),
                e.file_name().to_string_lossy()
            ));
            std::fs::create_dir_all(&to).unwrap();
            for f2 in files.iter().filter(|f2| f2.path().is_file()) {
                let _ = std::fs::copy(f2.path(), to.join(f2.file_name()));
            }
        }
    }
    keep
}

/// The value at fraction `q` of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Prints p50, p99 and the maximum of each step and of the whole cycle.
fn report(label: &str, cycles: &[[Duration; 6]]) {
    if cycles.is_empty() {
        return;
    }
    let mut line = format!("soak: {label}, {} cycles, ms p50/p99/max:", cycles.len());
    for i in 0..=STEPS.len() {
        let mut v: Vec<Duration> = cycles
            .iter()
            .map(|c| {
                if i < STEPS.len() {
                    c[i]
                } else {
                    c.iter().sum()
                }
            })
            .collect();
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        line += &format!(
            " {} {:.1}/{:.1}/{:.1}",
            STEPS.get(i).unwrap_or(&"cycle"),
            ms(quantile(&v, 0.5)),
            ms(quantile(&v, 0.99)),
            ms(v[v.len() - 1])
        );
    }
    eprintln!("{line}");
}

/// Fails the test with the kept evidence's place.
fn fail(d: &mut Berthd, f: &Failure) -> ! {
    let keep = keep_evidence(d, f);
    panic!(
        "{} failed at {}:\n{}\nevidence kept in {}",
        f.name,
        f.step,
        f.said,
        keep.display()
    );
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
    let mut d = Berthd::start_with(busybox_image);
    // A warm-up, so that lazily made things (the bridge, its rules, caches) exist before the
    // baseline.
    let warm = 10.min(sequential);
    let mut ids = Vec::new();
    for i in 0..warm {
        match lifecycle(&d, &format!("warm{i}")) {
            Ok(c) => ids.push(c.id),
            Err(f) => fail(&mut d, &f),
        }
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
    eprintln!("soak: after the warm-up ({warm} containers) berthd RSS {rss0} KiB");
    let mut times = Vec::with_capacity(sequential);
    let t = Instant::now();
    for i in warm..sequential {
        match lifecycle(&d, &format!("seq{i}")) {
            Ok(c) => {
                ids.push(c.id);
                times.push(c.times);
            }
            Err(f) => {
                report("the sequence so far", &times);
                fail(&mut d, &f)
            }
        }
        if CHECKPOINTS.contains(&(i + 1)) {
            eprintln!(
                "soak: after {} containers berthd RSS {} KiB (anonymous {} KiB)",
                i + 1,
                rss_kib(d.pid()),
                status_kib(d.pid(), "RssAnon:")
            );
        }
    }
    let seq_time = t.elapsed();
    report("in sequence", &times);
    let anon_seq = status_kib(d.pid(), "RssAnon:");
    let t = Instant::now();
    let results: Vec<Result<Cycle, Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrent)
            .map(|i| {
                let d = &d;
                s.spawn(move || lifecycle(d, &format!("par{i}")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a concurrent lifecycle"))
            .collect()
    });
    let par_time = t.elapsed();
    let mut par = Vec::new();
    for r in results {
        match r {
            Ok(c) => {
                ids.push(c.id);
                par.push(c.times);
            }
            Err(f) => fail(&mut d, &f),
        }
    }
    report("at once", &par);
    // The burst's threads leave freed heap in their malloc arenas; berthd gives it back
    // (daemon/src/heap.rs) within a look or two of its watcher (every 15 s).
    let t = Instant::now();
    let anon_par = status_kib(d.pid(), "RssAnon:");
    let mut anon_now = anon_par;
    while anon_now > anon_seq + ANON_SLACK_KIB && t.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(500));
        anon_now = status_kib(d.pid(), "RssAnon:");
    }
    eprintln!(
        "soak: berthd's anonymous RSS {anon_seq} KiB after the sequence, {anon_par} KiB after the burst, \
         {anon_now} KiB {:?} later",
        t.elapsed()
    );
    assert!(
        anon_now <= anon_seq + ANON_SLACK_KIB,
        "berthd kept {} KiB of the burst's heap 40 s after it (bound {ANON_SLACK_KIB} KiB)",
        anon_now - anon_seq
    );
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
