//! The berth binary without a daemon: flags, host parsing, and the error for a daemon that is
//! not there. (The daemon-facing tests are end-to-end, in the workspace's tests/ package.)

use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .output()
        .unwrap()
}

#[test]
fn version_flag() {
    let out = berth(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("berth version {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_host_and_missing_daemon_are_errors() {
    let out = berth(&["-H", "ssh://somewhere", "version"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("want unix:///path or tcp://host:port"));
    // Nothing listens on port 1: refused, as a missing socket is.
    let out = berth(&["-H", "tcp://127.0.0.1:1", "ps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot connect to the berth daemon"));
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("version")
        .env(
            "BERTH_HOST",
            format!("unix://{}/x.sock", d.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Cannot connect to the berth daemon"),
        "BERTH_HOST is honoured"
    );
}
