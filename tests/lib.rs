//! Helpers for berth's end-to-end tests: where the workspace's binaries are, and a private
//! berthd per test.

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

/// A berthd on a private socket, data root and exec root; killed on drop.
#[derive(Debug)]
pub struct Berthd {
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Berthd {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts berthd after `setup` has prepared its data root (the image store's lock belongs
    /// to the daemon while it runs).
    pub fn start_with(setup: impl FnOnce(&std::path::Path)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        setup(&d.join("data"));
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let child = Command::new(binary("berthd"))
            .arg("-H")
            .arg(format!("unix://{}/berth.sock", d.display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .stderr(std::fs::File::create(d.join("berthd.log")).unwrap())
            .spawn()
            .unwrap();
        let b = Berthd { dir, child };
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(b.sock()).is_ok() {
                return b;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "berthd did not start: {}",
            std::fs::read_to_string(b.dir.path().join("berthd.log")).unwrap_or_default()
        );
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
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

impl Drop for Berthd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
