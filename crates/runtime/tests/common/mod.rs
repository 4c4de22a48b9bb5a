//! Shared helpers for the runtime's integration tests: a busybox rootfs built from Debian's
//! `busybox-static`, bundles with a runc-like default spec, and the real `berth-runtime` binary.
//!
//! These tests need root and real kernel features. They fail loudly when those are missing;
//! they never skip silently.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BUSYBOX: &str = "/bin/busybox";

/// Panics unless the tests run as root with busybox-static installed.
pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests create real containers and must run as root"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (.ci/run does)"
    );
}

/// Builds a busybox root filesystem in `dir`.
pub fn busybox_rootfs(dir: &Path) {
    for d in [
        "bin",
        "etc",
        "tmp",
        "proc",
        "sys",
        "dev",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntty:x:5:\nuser:x:1000:\nnobody:x:65534:\n",
    )
    .unwrap();
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A bundle directory with a busybox rootfs and an editable spec.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub spec: serde_json::Value,
    /// The runtime root for this test.
    pub root: PathBuf,
    pub id: String,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Self {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir_in("/tmp")
            .unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        let id = unique("t");
        let root = dir.path().join("state");
        let mut spec = default_spec();
        spec["process"]["args"] = serde_json::json!(args);
        spec["linux"]["cgroupsPath"] = format!("/berth-test/{id}").into();
        Bundle {
            dir,
            spec,
            root,
            id,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes config.json atomically: a runtime reading it concurrently (a `run` started while
    /// the test polls `state`) never sees a half-written file.
    pub fn write(&self) {
        let tmp = self
            .path()
            .join(format!(".config.json.{:?}", std::thread::current().id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.spec).unwrap()).unwrap();
        std::fs::rename(&tmp, self.path().join("config.json")).unwrap();
    }

    /// A `berth-runtime --root <root>` command with the bundle written.
    pub fn cmd(&self) -> Command {
        self.write();
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth-runtime"));
        c.arg("--root").arg(&self.root);
        c
    }

    /// `run` in the foreground; returns the output.
    pub fn run(&self) -> Output {
        let out = self
            .cmd()
            .args(["run", "--bundle"])
            .arg(self.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out
    }

    /// `run`, expecting success; returns stdout.
    pub fn run_ok(&self) -> String {
        let out = self.run();
        assert!(
            out.status.success(),
            "run failed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a verb for this container and returns the output.
    pub fn verb(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        c.stdin(Stdio::null()).output().unwrap()
    }

    pub fn verb_ok(&self, args: &[&str]) -> String {
        let out = self.verb(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `create`. Init inherits the runtime's stdio and keeps it open, so stderr goes to a file
    /// rather than a pipe the test would wait on forever.
    pub fn create(&self) {
        let log = self.path().join(format!("{}.create.err", self.id));
        let st = self
            .cmd()
            .args(["create", "--bundle"])
            .arg(self.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "create failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn state(&self) -> serde_json::Value {
        let out = self.verb_ok(&["state", &self.id]);
        serde_json::from_str(&out).unwrap()
    }

    /// Host directories of this container's cgroup in every v1 hierarchy and the v2 one.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let cg = berth_runtime::cgroups::Cgroup::open(
            Path::new(self.spec["linux"]["cgroupsPath"].as_str().unwrap()),
            Default::default(),
        )
        .unwrap();
        cg.dirs()
    }

    /// Like [`Bundle::cgroup_dirs`] for a container created with `--cgroup-hierarchy`.
    pub fn cgroup_dirs_in(&self, layout: &str) -> Vec<PathBuf> {
        let cg = berth_runtime::cgroups::Cgroup::open(
            Path::new(self.spec["linux"]["cgroupsPath"].as_str().unwrap()),
            berth_runtime::cgroups::Layout::parse(layout).unwrap(),
        )
        .unwrap();
        cg.dirs()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(&self.id)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Best effort: never leave a container behind, even when an assertion failed.
        let _ = Command::new(env!("CARGO_BIN_EXE_berth-runtime"))
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

/// The default spec `berth-runtime spec` writes, without a terminal.
pub fn default_spec() -> serde_json::Value {
    let d = tempfile::tempdir().unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_berth-runtime"))
        .args(["spec", "--bundle"])
        .arg(d.path())
        .status()
        .unwrap();
    assert!(st.success(), "berth-runtime spec failed");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    v["process"]["terminal"] = false.into();
    v
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits until `f` is true or panics after `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
