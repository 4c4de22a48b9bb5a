//! The berth-shim binary on its own (containers through it are tested end to end in tests/):
//! its init mode and its error reporting. Being an integration test also makes cargo build the
//! binary that berthd runs.

use std::process::Command;

const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");

#[test]
fn init_mode_runs_the_program_and_returns_its_code() {
    let out = Command::new(SHIM)
        .args(["--", "sh", "-c", "echo from-init; exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-init\n");
    let out = Command::new(SHIM)
        .args(["--", "/no/such/program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn init_mode_forwards_signals() {
    let mut child = Command::new(SHIM)
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: kill with a pid we own and a valid signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(
        st.code(),
        Some(128 + libc::SIGTERM),
        "sleep got the SIGTERM"
    );
}

#[test]
fn bad_configuration_is_reported_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shim.json");
    std::fs::write(&cfg, "{not json").unwrap();
    let out = Command::new(SHIM).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("error: read "));
    let out = Command::new(SHIM).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
