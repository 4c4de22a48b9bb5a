//! Interop with a real peer: podman 4.3 (Debian) runs containers with `berth-runtime` as its
//! OCI runtime, through conmon, exactly as it would run runc or crun.
//!
//! Each test gets private podman configuration and storage (see ../shared/PEERS.md): cgroupfs
//! manager, file events, no network, and default ulimits this machine can grant.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Self {
        require_root();
        assert!(
            Command::new("podman")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "podman is missing: install Debian's podman (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let nofile = {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills the struct.
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
            r.rlim_max.min(1024 * 1024)
        };
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc=32768:32768\"]\nnetns = \"none\"\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\ntmp_dir = \"{0}/tmp\"\n\
                 [network]\nnetwork_config_dir = \"{0}/net\"\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n", d.display()),
        )
        .unwrap();
        std::fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        let p = Podman { dir };
        // Import a busybox image.
        let rootfs = p.dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = p.dir.path().join("bb.tar");
        assert!(Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success());
        let out = p.cmd(&["import", tar.to_str().unwrap(), "localhost/bb:latest"]);
        assert!(out.status.success(), "podman import: {}", stderr(&out));
        p
    }

    fn env(&self, c: &mut Command) {
        let d = self.dir.path();
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env_remove("XDG_RUNTIME_DIR");
    }

    fn runtime() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime"))
    }

    /// `podman --runtime <berth-runtime> args...`
    fn cmd(&self, args: &[&str]) -> Output {
        let mut c = Command::new("podman");
        self.env(&mut c);
        c.arg("--runtime").arg(Self::runtime()).args(args);
        c.stdin(std::process::Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}\n{}",
            stderr(&out),
            stdout(&out)
        );
        stdout(&out)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let mut c = Command::new("podman");
        self.env(&mut c);
        let _ = c
            .arg("--runtime")
            .arg(Self::runtime())
            .args(["rm", "-af", "-t", "0"])
            .output();
        // Unmount podman's overlay storage before the directory is removed.
        let mut c = Command::new("podman");
        self.env(&mut c);
        let _ = c.args(["system", "reset", "-f"]).output();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("root/overlay"))
            .output();
    }
}

fn uses_berth(p: &Podman, name: &str) {
    let rt = p.ok(&["inspect", "--format", "{{.OCIRuntime}}", name]);
    assert!(
        Path::new(rt.trim()).ends_with("berth-runtime"),
        "container {name} runtime: {rt}"
    );
}

#[test]
fn podman_run_rm_with_limits() {
    let p = Podman::new();
    let out = p.ok(&[
        "run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "33",
        "--cap-drop", "ALL", "--cap-add", "CHOWN", "--read-only", "localhost/bb",
        "sh", "-c",
        "echo hello; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null \
         || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; grep CapEff /proc/self/status; touch /x 2>&1; true",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello", "{out}");
    assert_eq!(lines[1], "67108864", "{out}");
    assert_eq!(lines[2], "33", "{out}");
    assert_eq!(lines[3], "CapEff:\t0000000000000001", "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    // --rm removed it.
    assert_eq!(p.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn podman_exit_code_and_detached_lifecycle() {
    let p = Podman::new();
    let out = p.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/bb",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));

    p.ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "none",
        "localhost/bb",
        "sleep",
        "1000",
    ]);
    uses_berth(&p, "s1");
    assert!(p
        .ok(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .contains("s1 Up"));
    let out = p.ok(&[
        "exec",
        "s1",
        "sh",
        "-c",
        "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(out.trim(), "exec-ok\nsleep 1000");
    let out = p.cmd(&["exec", "s1", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    // sleep as pid 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    p.ok(&["stop", "-t", "1", "s1"]);
    let state = p.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "s1",
    ]);
    assert_eq!(state.trim(), "exited 137");
    p.ok(&["start", "s1"]);
    assert!(p
        .ok(&["inspect", "--format", "{{.State.Status}}", "s1"])
        .contains("running"));
    p.ok(&["rm", "-f", "s1"]);
}

#[test]
fn podman_stop_with_sigterm_handler() {
    let p = Podman::new();
    p.ok(&[
        "run",
        "-d",
        "--name",
        "t1",
        "--network",
        "none",
        "localhost/bb",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let t = std::time::Instant::now();
    p.ok(&["stop", "-t", "10", "t1"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "SIGTERM was not delivered"
    );
    let state = p.ok(&["inspect", "--format", "{{.State.ExitCode}}", "t1"]);
    assert_eq!(state.trim(), "0");
}

#[test]
fn podman_interactive_terminal() {
    let p = Podman::new();
    // `script` gives podman a real terminal for -it.
    let runtime = Podman::runtime();
    let mut c = Command::new("script");
    p.env(&mut c);
    c.args(["-qec"])
        .arg(format!(
            "podman --runtime {} run -it --rm --network none localhost/bb sh",
            runtime.display()
        ))
        .arg("/dev/null");
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"tty; [ -t 0 ] && echo interactive-$((6*7)); exit 6\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out).replace('\r', "");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("interactive-42"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");
}
