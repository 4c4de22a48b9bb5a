//! Limits that hold, end to end with real containers: a memory hog is OOM-killed and reported
//! as docker reports it; a fork bomb stops at `--pids-limit` and the host and daemon carry on;
//! a container printing without end is held to its log rotation and does not stall berthd;
//! a pull onto a full disk (a small loop-mounted data root) fails cleanly and leaves the store
//! usable.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::peers::{Registry, RegistrySetup};
use berth_e2e::{busybox_image, ok, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the limits tests run containers and mount file systems: run them as root"
    );
}

fn daemon() -> Berthd {
    require_root();
    Berthd::start_with(busybox_image)
}

#[test]
fn a_memory_hog_is_oom_killed_and_reported() {
    let d = daemon();
    // dd's 256 MiB buffer is filled from /dev/zero: far over 32 MiB of memory (+32 MiB swap).
    let out = d.berth(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=256M",
        "count=1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}} {{.State.Status}}",
            "hog"
        ])),
        "true 137 exited"
    );
    // The docker CLI reads the same through the API.
    let out = ok(d.docker(
        "/usr/bin/docker",
        &["inspect", "-f", "{{.State.OOMKilled}}", "hog"],
    ));
    assert_eq!(out, "true");
    // A container that stays under its limit is not reported as OOM-killed, and one killed
    // with SIGKILL by hand exits 137 without OOMKilled.
    ok(d.berth(&[
        "run",
        "--name",
        "fits",
        "-m",
        "64m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4M",
        "count=4",
    ]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.State.OOMKilled}}", "fits"])),
        "false"
    );
    ok(d.berth(&[
        "run", "-d", "--name", "killed", "-m", "64m", "busybox", "sleep", "300",
    ]));
    ok(d.berth(&["kill", "killed"]));
    assert_eq!(ok(d.berth(&["wait", "killed"])), "137");
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.State.OOMKilled}}", "killed"])),
        "false"
    );
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let d = daemon();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "bomb",
        "--pids-limit",
        "64",
        "busybox",
        "sh",
        "-c",
        // `exec`: the shell's own last command must not need a fork, which the full
        // allowance can refuse (the shell would exit and take the bomb with it).
        "b() { b | b & }; b; exec sleep 1000",
    ]));
    // Give it time to fill its allowance many times over.
    std::thread::sleep(Duration::from_secs(4));
    let pids: u64 = ok(d.berth(&["stats", "--no-stream", "--format", "{{.PIDs}}", "bomb"]))
        .parse()
        .unwrap();
    assert!(
        (10..=64).contains(&pids),
        "the bomb ran and was held to 64 processes: {pids}"
    );
    // The daemon answers at once, and the host can still fork.
    let t = Instant::now();
    ok(d.berth(&["ps"]));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    ok(d.berth(&["run", "--rm", "busybox", "true"]));
    let t = Instant::now();
    ok(d.berth(&["rm", "-f", "bomb"]));
    eprintln!(
        "fork bomb held at {pids} processes; removed in {:?}",
        t.elapsed()
    );
    assert!(ok(d.berth(&["ps", "-aq"])).is_empty());
}

#[test]
fn endless_output_is_held_to_log_rotation_and_does_not_stall_the_daemon() {
    let d = daemon();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "flood",
        "--log-opt",
        "max-size=256k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
    ]));
    let log_path = ok(d.berth(&["inspect", "-f", "{{.LogPath}}", "flood"]));
    let dir = std::path::Path::new(&log_path)
        .parent()
        .unwrap()
        .to_path_buf();
    let total = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("json.log"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    // While it floods: berthd answers quickly, and the logs stay within 3 × 256 KiB.
    let mut worst = Duration::ZERO;
    let mut max_total = 0;
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        let t = Instant::now();
        ok(d.berth(&["ps", "-q"]));
        ok(d.berth(&["inspect", "-f", "{{.State.Running}}", "flood"]));
        worst = worst.max(t.elapsed());
        max_total = max_total.max(total(&dir));
        std::thread::sleep(Duration::from_millis(200));
    }
    let tail = ok(d.berth(&["logs", "--tail", "3", "flood"]));
    ok(d.berth(&["rm", "-f", "flood"]));
    eprintln!("flooding logs: at most {max_total} bytes on disk; slowest ps+inspect {worst:?}");
    assert!(tail.lines().count() == 3, "{tail}");
    assert!(
        tail.lines().all(|l| l.starts_with("0123456789abc")),
        "{tail}"
    );
    assert!(
        max_total <= 3 * 256 * 1024 + 64 * 1024,
        "the log files stayed within max-size × max-file: {max_total}"
    );
    assert!(
        max_total >= 256 * 1024,
        "the flood was real and rotated: {max_total}"
    );
    assert!(worst < Duration::from_secs(2), "berthd stalled: {worst:?}");
}

/// A file system of `mib` MiB in a file, loop-mounted at a fresh directory.
struct SmallDisk {
    mnt: tempfile::TempDir,
    _file: tempfile::NamedTempFile,
}

impl SmallDisk {
    fn new(mib: u64) -> SmallDisk {
        let file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        file.as_file().set_len(mib << 20).unwrap();
        ok(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(file.path())
            .output()
            .expect("mkfs.ext4 (e2fsprogs) is needed"));
        let mnt = tempfile::tempdir_in("/tmp").unwrap();
        ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(file.path())
            .arg(mnt.path())
            .output()
            .unwrap());
        SmallDisk { mnt, _file: file }
    }

    fn free(&self) -> u64 {
        let v = statvfs(self.mnt.path());
        v.0 * v.1
    }
}

fn statvfs(p: &std::path::Path) -> (u64, u64) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs fills the struct on success; it is read only then.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) }, 0);
    // SAFETY: statvfs returned 0.
    let st = unsafe { st.assume_init() };
    (st.f_bavail, st.f_frsize)
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mnt.path())
            .status();
    }
}

#[test]
fn a_pull_onto_a_full_disk_fails_cleanly_and_the_store_stays_usable() {
    require_root();
    let reg = Registry::start(RegistrySetup {
        tls: None,
        client_certs: false,
        htpasswd: None,
        token: None,
    });
    // A 96 MiB image, made and pushed by a daemon with room to spare.
    let big = format!("{}/big:1", reg.host());
    let small = format!("{}/small:1", reg.host());
    {
        let d = daemon();
        ok(d.berth(&[
            "run",
            "--name",
            "mk",
            "busybox",
            "sh",
            "-c",
            "head -c 100663296 /dev/urandom > /big",
        ]));
        ok(d.berth(&["commit", "mk", &big]));
        ok(d.berth(&["tag", "busybox", &small]));
        ok(d.berth(&["push", &big]));
        ok(d.berth(&["push", &small]));
    }
    // A 64 MiB data root.
    let disk = SmallDisk::new(64);
    let root = disk.mnt.path().join("data");
    let d = Berthd::start_on(&root);
    ok(d.berth(&["pull", &small]));
    let free_before = disk.free();
    let out = d.berth(&["pull", &big]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("pull onto a full disk: exit {:?}: {err}", out.status.code());
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.to_lowercase().contains("no space left on device"),
        "{err}"
    );
    // Nothing half-written stays: the space is back and the image is not listed.
    let free_after = disk.free();
    if free_after + (4 << 20) < free_before {
        let du = Command::new("du")
            .args(["-a", "-k"])
            .arg(disk.mnt.path())
            .output()
            .unwrap();
        eprintln!(
            "{}",
            String::from_utf8_lossy(&du.stdout)
                .lines()
                .filter(|l| l
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
                    > 1000)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        free_after + (4 << 20) >= free_before,
        "the partial pull was cleaned up: {free_before} free before, {free_after} after"
    );
    let images = ok(d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(!images.contains("big"), "{images}");
    // The store is usable: run from the small image, pull it again, remove and re-pull.
    assert_eq!(
        ok(d.berth(&["run", "--rm", &small, "echo", "still-works"])),
        "still-works"
    );
    ok(d.berth(&["rmi", &small]));
    ok(d.berth(&["pull", &small]));
    assert_eq!(
        ok(d.berth(&["run", "--rm", &small, "echo", "again"])),
        "again"
    );
    // A retry of the failed pull fails the same way, cleanly.
    let out = d.berth(&["pull", &big]);
    assert_eq!(out.status.code(), Some(1));
    drop(d);
    let _ = reg;
}

/// `stats` shows the container's network and block I/O as the docker CLI does from the same
/// API: bytes through eth0, and bytes read and written. (This kernel's v1 blkio controller
/// counts I/O only for devices with a throttle rule, so the test sets one, as
/// `--device-write-bps` would.)
#[test]
fn stats_show_network_and_block_io() {
    let d = Berthd::start_with(busybox_image);
    let id = ok(d.berth(&["run", "-d", "busybox", "sleep", "300"]));
    let gateway = ok(d.berth(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", &id]));
    ok(d.berth(&["exec", &id, "ping", "-c", "3", "-s", "1000", &gateway]));
    let blkio = format!("/sys/fs/cgroup/blkio/berth/{id}");
    assert!(
        std::path::Path::new(&blkio).is_dir(),
        "the v1 blkio cgroup of the container (this machine kind is hybrid)"
    );
    let dev = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(' ').nth(2).map(str::to_string))
        .unwrap();
    // The whole disk, not a partition (a throttle rule needs the disk's numbers).
    let (major, _) = dev.split_once(':').unwrap();
    std::fs::write(
        format!("{blkio}/blkio.throttle.write_bps_device"),
        format!("{major}:0 1000000000"),
    )
    .unwrap();
    ok(d.berth(&[
        "exec",
        &id,
        "dd",
        "if=/dev/zero",
        "of=/w",
        "bs=1M",
        "count=4",
        "oflag=direct",
    ]));
    let fmt = "{{.NetIO}}|{{.BlockIO}}";
    let b = ok(d.berth(&["stats", "--no-stream", "--format", fmt, &id]));
    let (net, block) = b.split_once('|').unwrap();
    assert!(
        !net.starts_with("0B"),
        "eth0 received the pings' replies: {b}"
    );
    assert!(block.ends_with("/ 4.19MB"), "4 MiB written: {b}");
    let k = ok(d.docker(
        "/usr/local/bin/docker",
        &["stats", "--no-stream", "--format", fmt, &id],
    ));
    assert_eq!(
        k.split_once('|').unwrap().1,
        block,
        "the docker CLI shows the same block I/O"
    );
    assert!(!k.starts_with("0B"), "and network traffic: {k}");
}
