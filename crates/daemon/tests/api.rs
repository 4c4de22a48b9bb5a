//! berthd through the real docker clients: docker 20.10 (Debian, API 1.41) and docker 28 (API
//! 1.50) both negotiate with berthd and read its version; the socket's lifecycle is dockerd's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berthd-")
            .tempdir_in("/tmp")
            .unwrap();
        // An explicit, empty daemon.json: the host's /etc/berth/daemon.json is not read.
        std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
        let mut d = Daemon { dir, child: None };
        d.child = Some(d.spawn());
        d.wait_ready();
        d
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    fn spawn(&self) -> Child {
        let d = self.dir.path();
        Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .stderr(std::fs::File::create(d.join("log")).unwrap())
            .spawn()
            .unwrap()
    }

    fn wait_ready(&self) {
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(self.sock()).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "berthd did not listen: {}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn docker(&self, client: &str, args: &[&str]) -> String {
        assert!(
            Path::new(client).exists(),
            "{client} is missing (docker.io provides /usr/bin/docker)"
        );
        let out = Command::new(client)
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{client} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// GET over the socket with a minimal HTTP/1.1 client; returns (status line, body).
fn get(sock: &Path, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.lines().next().unwrap_or_default().to_string();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn docker_20_10_and_28_clients_negotiate_and_read_the_version() {
    let d = Daemon::start();
    let old = d.docker("/usr/bin/docker", &["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}}"]);
    assert_eq!(old, format!("{} 1.50 1.24 1.41", env!("CARGO_PKG_VERSION")));
    // The docker 28 client this kind of machine ships (see ../shared/PEERS.md).
    let new = d.docker(
        "/usr/local/bin/docker",
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Client.APIVersion}}",
        ],
    );
    assert_eq!(new, "1.50 1.50");
    let (status, body) = get(&d.sock(), "/_ping");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "OK");
}

#[test]
fn version_prefixes_are_checked() {
    let d = Daemon::start();
    let (status, body) = get(&d.sock(), "/v1.41/version");
    assert!(status.contains("200"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ApiVersion"],
        "1.50"
    );
    let (status, body) = get(&d.sock(), "/v1.12/version");
    assert!(status.contains("400"), "{status}");
    assert!(
        body.contains("client version 1.12 is too old. Minimum supported API version is 1.24"),
        "{body}"
    );
    let (status, body) = get(&d.sock(), "/v1.41/no/such/endpoint");
    assert!(status.contains("404"), "{status}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("not implemented")
    );
}

#[test]
fn socket_lifecycle_like_dockerd() {
    let mut d = Daemon::start();
    let mode = std::fs::metadata(d.sock())
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o660);
    let pidfile = d.dir.path().join("exec/berthd.pid");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        d.child.as_ref().unwrap().id().to_string()
    );
    // A second daemon on the same socket is refused while the first one answers.
    let second = d.spawn().wait_with_output().unwrap();
    assert!(!second.status.success());
    assert!(std::fs::read_to_string(d.dir.path().join("log"))
        .unwrap()
        .contains("in use by another daemon"));
    // SIGTERM: clean exit, socket and pid file removed.
    assert!(d.stop().success());
    assert!(!d.sock().exists() && !pidfile.exists());
    // A stale socket (from a crash) is replaced.
    let _stale = std::os::unix::net::UnixListener::bind(d.sock()).unwrap();
    drop(_stale);
    d.child = Some(d.spawn());
    d.wait_ready();
    assert_eq!(get(&d.sock(), "/_ping").1, "OK");
}

#[test]
fn bad_daemon_json_is_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("daemon.json"), r#"{"no-such-key": true}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--config-file")
        .arg(d.path().join("daemon.json"))
        .arg("-H")
        .arg(format!("unix://{}/s.sock", d.path().display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
