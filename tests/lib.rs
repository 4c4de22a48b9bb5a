//! Helpers for berth's end-to-end tests: where the workspace's binaries are, and a private
//! berthd per test.

pub mod attacks;
pub mod peers;
pub mod systemd_ns;

use std::path::PathBuf;
use std::process::{Child, Command};

/// A binary built by `cargo test --workspace`, beside this test's own executable
/// (`target/<triple>/<profile>/deps/<test>` → `target/<triple>/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --workspace`) first",
        p.display()
    );
    p
}

/// A berthd on a private socket, data root and exec root, and (unless the test's daemon.json
/// names one) its own bridge, subnet and nftables table, so that tests running at once never
/// share a network; killed on drop, its bridge and table removed.
#[derive(Debug)]
pub struct Berthd {
    pub dir: tempfile::TempDir,
    /// The data root (`<dir>/data` unless the test chose one).
    pub data: PathBuf,
    /// berthd flags beyond the harness's own.
    args: Vec<String>,
    /// A command berthd runs under (`nsenter … --`), when it lives in other namespaces.
    wrap: Vec<String>,
    child: Child,
    /// The bridge this test's berthd was given (removed on drop).
    pub bridge: Option<String>,
}

/// A bridge name, a subnet and an address pool for user networks that no other test daemon
/// of this run uses.
fn private_bridge() -> (String, String, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pid = std::process::id();
    (
        format!("bt{:04x}{:02x}", pid & 0xffff, n & 0xff),
        format!("10.{}.{}.1/24", 100 + pid % 100, n % 250),
        // 16 /26 networks per daemon.
        format!("10.{}.{}.0/22", 200 + pid % 50, (n % 64) * 4),
    )
}

impl Berthd {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts berthd after `setup` has prepared its data root (the image store's lock belongs
    /// to the daemon while it runs).
    pub fn start_with(setup: impl FnOnce(&std::path::Path)) -> Self {
        Self::start_with_config(setup, "{}")
    }

    /// [`Berthd::start_with`] with a daemon.json.
    pub fn start_with_config(setup: impl FnOnce(&std::path::Path), config: &str) -> Self {
        Self::start_full(setup, config, None, vec![])
    }

    /// A berthd whose data root is `data` (a file system of the test's own, say).
    pub fn start_on(data: &std::path::Path) -> Self {
        Self::start_full(|_| {}, "{}", Some(data.to_path_buf()), vec![])
    }

    /// [`Berthd::start_with`] with more berthd flags (`-H tcp://…`, `--tlsverify`, …).
    pub fn start_with_args(setup: impl FnOnce(&std::path::Path), args: &[String]) -> Self {
        Self::start_full(setup, "{}", None, args.to_vec())
    }

    /// A berthd started through `wrap` (say, `nsenter` into the namespaces of a systemd
    /// that a test runs as PID 1 there), with a daemon.json.
    pub fn start_wrapped(
        wrap: Vec<String>,
        setup: impl FnOnce(&std::path::Path),
        config: &str,
    ) -> Self {
        Self::start_inner(setup, config, None, vec![], wrap)
    }

    fn start_full(
        setup: impl FnOnce(&std::path::Path),
        config: &str,
        data: Option<PathBuf>,
        args: Vec<String>,
    ) -> Self {
        Self::start_inner(setup, config, data, args, vec![])
    }

    fn start_inner(
        setup: impl FnOnce(&std::path::Path),
        config: &str,
        data: Option<PathBuf>,
        args: Vec<String>,
        wrap: Vec<String>,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let data = data.unwrap_or_else(|| d.join("data"));
        setup(&data);
        let mut cfg: serde_json::Value = serde_json::from_str(config).expect("daemon.json is JSON");
        let mut bridge = None;
        if cfg.get("bridge").is_none() {
            let (name, bip, pool) = private_bridge();
            cfg["bridge"] = serde_json::json!(name);
            cfg["bip"] = serde_json::json!(bip);
            if cfg.get("default-address-pools").is_none() {
                cfg["default-address-pools"] = serde_json::json!([{"base": pool, "size": 26}]);
            }
            bridge = Some(name);
        }
        std::fs::write(d.join("daemon.json"), cfg.to_string()).unwrap();
        let child = Self::spawn(&wrap, d, &data, &args);
        let b = Berthd {
            dir,
            data,
            args,
            wrap,
            child,
            bridge,
        };
        b.wait_ready();
        b
    }

    fn spawn(
        wrap: &[String],
        d: &std::path::Path,
        data: &std::path::Path,
        args: &[String],
    ) -> Child {
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary("berthd"));
                c
            }
            None => Command::new(binary("berthd")),
        };
        cmd.arg("-H")
            .arg(format!("unix://{}/berth.sock", d.display()))
            .arg("--data-root")
            .arg(data)
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .args(args)
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(d.join("berthd.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    }

    /// Until berthd answers `/_ping`. A connect alone is not enough: a child that berthd was
    /// spawning when it was killed holds a copy of the listening socket until its exec, so a
    /// connection can be accepted into the backlog of a daemon that is gone (the crash tests
    /// saw "Connection refused" and "No such file" right after such a "ready").
    fn wait_ready(&self) {
        use std::io::{Read, Write};
        let answers = || -> bool {
            let Ok(mut s) = std::os::unix::net::UnixStream::connect(self.sock()) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
                .is_err()
            {
                return false;
            }
            let mut head = [0u8; 12];
            s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
        };
        for _ in 0..250 {
            if answers() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "berthd did not start: {}",
            std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
        );
    }

    /// SIGKILLs berthd (its shims and containers carry on).
    pub fn kill9(&mut self) {
        if !self.wrap.is_empty() {
            // SAFETY: kill(2) of the wrapper's child, berthd.
            unsafe { libc::kill(self.pid() as i32, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new berthd on the same data root, exec root and socket.
    pub fn restart(&mut self) {
        self.kill9();
        self.child = Self::spawn(&self.wrap, self.dir.path(), &self.data, &self.args);
        self.wait_ready();
    }

    /// Runs a docker CLI (`client` is its path) against this daemon.
    pub fn docker(&self, client: &str, args: &[&str]) -> std::process::Output {
        Command::new(client)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }

    /// What berthd has logged, and whether it still runs: for failure messages.
    pub fn diagnose(&mut self) -> String {
        let alive = match self.child.try_wait() {
            Ok(None) => "berthd runs".to_string(),
            Ok(Some(status)) => format!("berthd exited: {status}"),
            Err(e) => format!("berthd: {e}"),
        };
        let log = std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // What is in the directory beside the socket (a vanished socket was seen twice in the
        // crash tests: which process removed it is not known yet).
        let listing: Vec<String> = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "{alive} (pid {}); socket present: {}; beside it: {listing:?}; berthd.log ends:\n{}",
            self.child.id(),
            self.sock().exists(),
            tail.join("\n")
        )
    }

    /// berthd's process id (in this test's pid namespace; a wrapped berthd is the wrapper's
    /// child, found by its socket in its command line).
    pub fn pid(&self) -> u32 {
        if self.wrap.is_empty() {
            return self.child.id();
        }
        let sock = self.sock().display().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("berthd") && c.contains(&sock) && !c.starts_with("nsenter")
                })
            })
            .unwrap_or_else(|| self.child.id())
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    /// `berth args` with a client configuration directory of the test's own (`DOCKER_CONFIG`:
    /// no credentials of the machine's).
    pub fn berth_in(&self, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
        Command::new(binary("berth"))
            .env("DOCKER_CONFIG", cfg)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs the real `berth` CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary("berth"))
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }
}

impl Berthd {
    /// Runs `berth args` and checks it was refused as docker refuses: exit 125 for `run`, 1
    /// for the other commands (`create` included, as both docker CLIs), and `words` in the
    /// error.
    pub fn refused(&self, args: &[&str], words: &str) {
        let out = self.berth(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let code = if args[0] == "run" { 125 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{args:?} is refused: {err}");
        assert!(
            err.contains(words),
            "{args:?}: {err:?} should say {words:?}"
        );
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        // Containers outlive berthd by design: remove them through the API first.
        if let Ok(out) = Command::new(binary("berth"))
            .arg("-H")
            .arg(self.host())
            .args(["ps", "-aq", "--no-trunc"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        // SIGTERM, so that berthd finishes the deletions its removals left to the background
        // (killed at once, it left root file systems mounted under the test's directory,
        // which then could not be deleted); SIGKILL if it has not ended in 15 s.
        // SAFETY: kill(2) of berthd (our child, not reaped yet, or the wrapper's child).
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The bridges of the user networks this daemon made.
        let records = self.data.join("network/networks");
        for e in std::fs::read_dir(records).into_iter().flatten().flatten() {
            let v: serde_json::Value = std::fs::read(e.path())
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or_default();
            if let Some(b) = v["bridge"].as_str().filter(|b| b.starts_with("br-")) {
                let _ = Command::new("ip").args(["link", "del", b]).output();
            }
        }
        if let Some(b) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", b]).output();
            for family in ["ip", "ip6"] {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, &format!("berth-{b}")])
                    .output();
            }
        }
    }
}

/// Writes a busybox root file system at `root`: Debian's static busybox with its applets,
/// /etc/passwd (root, app, nobody) and /etc/group.
pub fn busybox_rootfs(root: &std::path::Path) {
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/app",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox (Debian's busybox-static) is needed");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nwheel:x:10:app\nnobody:x:65534:\n",
    )
    .unwrap();
}

/// Packs the directory `root` into the tar file `tar` (GNU tar, as a user would).
pub fn tar_dir(root: &std::path::Path, tar: &std::path::Path) {
    assert!(Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
}

/// Makes a `busybox:latest` image ([`busybox_rootfs`], `CMD ["sh"]`) in a data root, with
/// berth-image, before berthd starts on it.
pub fn busybox_image(data: &std::path::Path) {
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("rootfs");
    busybox_rootfs(&root);
    let tar = src.path().join("busybox.tar");
    tar_dir(&root, &tar);
    let out = Command::new(binary("berth-image"))
        .arg("--data-root")
        .arg(data)
        .args(["import", "-c", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("busybox:latest")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` with `input` on its stdin, written from a thread (so that a program printing
/// while it reads cannot deadlock with the writer) and closed when it is all written.
pub fn output_with_stdin(mut cmd: Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer
        .join()
        .unwrap()
        .expect("the program took all its input");
    out
}

/// Stdout of a finished command, checking it succeeded.
pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `f` every 50 ms until it is true or `secs` pass; whether it became true.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// A finished command's exit code (-1 when a signal ended it).
pub fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A finished command's standard output, as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A finished command's standard error, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Runs `argv` with a pty as its stdin, stdout and stderr (Python's `pty.fork`); returns what
/// it wrote there, escape sequences and all, and its exit code.
pub fn on_a_terminal(argv: &[&str]) -> (String, i32) {
    const SCRIPT: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(st))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args(argv)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        out.status.code().unwrap_or(-1),
    )
}
