//! Lifecycle through the real binary: run, create/start/state/kill/delete, exit codes,
//! signals, pause/resume, list and ps, and clean teardown.

mod common;
use common::*;

#[test]
fn run_reports_exit_code_and_output() {
    let b = Bundle::new(&["sh", "-c", "echo hello; echo oops >&2; exit 3"]);
    let out = b.run();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "oops\n");
    assert!(!b.state_dir().exists(), "run removes the state");
    for d in b.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn killed_process_reports_128_plus_signal() {
    // Init ignores SIGKILL sent from inside its own pid namespace, so kill it from the host.
    let b = Bundle::new(&["sleep", "100"]);
    let mut child = b
        .cmd()
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .spawn()
        .unwrap();
    wait_for(5, "running", || {
        b.verb(&["state", &b.id]).status.success() && b.state()["status"] == "running"
    });
    let pid = b.state()["pid"].as_i64().unwrap();
    // SAFETY: signalling the container's init by its host pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

#[test]
fn fast_exits_never_hang() {
    // A container that exits at once must never lose its SIGCHLD: run it many times.
    let b = Bundle::new(&["/bin/true"]);
    for _ in 0..30 {
        assert!(b.run().status.success());
    }
}

#[test]
fn create_start_state_delete() {
    let mut b = Bundle::new(&["sh", "-c", "echo started > /tmp/mark; exec sleep 100"]);
    b.spec["root"]["readonly"] = false.into();
    b.create();
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], b.id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(st["bundle"].as_str().unwrap(), b.path().to_str().unwrap());
    // Before start the user process has not run.
    assert!(!b.path().join("rootfs/tmp/mark").exists());
    for d in b.cgroup_dirs() {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "init {pid} not in {}",
            d.display()
        );
    }

    let out = b.verb(&["delete", &b.id]);
    assert!(
        !out.status.success(),
        "deleting a created container needs --force (runtime spec)"
    );
    assert_eq!(
        b.state()["status"],
        "created",
        "a refused delete has no effect"
    );
    b.verb_ok(&["start", &b.id]);
    wait_for(5, "the user process", || {
        b.path().join("rootfs/tmp/mark").exists()
    });
    assert_eq!(b.state()["status"], "running");
    let out = b.verb(&["start", &b.id]);
    assert!(!out.status.success(), "a second start must fail");

    let out = b.verb(&["delete", &b.id]);
    assert!(
        !out.status.success(),
        "delete of a running container needs --force"
    );
    assert!(stderr(&out).contains("not stopped"), "{}", stderr(&out));

    b.verb_ok(&["kill", &b.id, "KILL"]);
    wait_for(5, "stopped", || b.state()["status"] == "stopped");
    assert_eq!(b.state()["pid"], 0);
    b.verb_ok(&["delete", &b.id]);
    assert!(!b.state_dir().exists());
    for d in b.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
    let out = b.verb(&["state", &b.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn signals_are_forwarded_by_run() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done",
    ]);
    let mut child = b
        .cmd()
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(42));
}

#[test]
fn pause_resume_with_freezer() {
    let b = Bundle::new(&["sleep", "100"]);
    b.create();
    b.verb_ok(&["start", &b.id]);
    b.verb_ok(&["pause", &b.id]);
    assert_eq!(b.state()["status"], "paused");
    let pid = b.state()["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        stat.contains("State:\tD") || stat.contains("State:\tS"),
        "{stat}"
    );
    let frozen = b.cgroup_dirs().into_iter().any(|d| {
        std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    });
    assert!(frozen, "the freezer is not FROZEN");
    assert!(
        !b.verb(&["pause", &b.id]).status.success(),
        "pausing twice fails"
    );
    b.verb_ok(&["resume", &b.id]);
    assert_eq!(b.state()["status"], "running");
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn list_ps_and_kill_all() {
    let b = Bundle::new(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    b.create();
    b.verb_ok(&["start", &b.id]);
    wait_for(5, "three processes", || {
        let pids: Vec<i32> =
            serde_json::from_str(&b.verb_ok(&["ps", "--format", "json", &b.id])).unwrap();
        pids.len() == 3
    });
    let list = b.verb_ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&b.id) && l.contains("running")),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&b.verb_ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], b.id.as_str());
    assert_eq!(b.verb_ok(&["list", "-q"]).trim(), b.id);
    b.verb_ok(&["kill", "--all", &b.id, "9"]);
    wait_for(5, "stopped", || b.state()["status"] == "stopped");
    b.verb_ok(&["delete", &b.id]);
}

#[test]
fn delete_force_of_missing_container_is_ok() {
    let b = Bundle::new(&["true"]);
    b.verb_ok(&["delete", "--force", "never-created"]);
    assert!(!b.verb(&["delete", "never-created"]).status.success());
}

#[test]
fn events_stats_report_cgroup_usage() {
    let mut b = Bundle::new(&["sleep", "100"]);
    b.spec["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
    b.create();
    b.verb_ok(&["start", &b.id]);
    let ev: serde_json::Value =
        serde_json::from_str(b.verb_ok(&["events", "--stats", &b.id]).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert_eq!(ev["data"]["pids"]["limit"], 50);
    assert!(ev["data"]["memory"]["usage"].as_u64().unwrap() > 0);
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn update_changes_limits() {
    let mut b = Bundle::new(&["sleep", "100"]);
    b.spec["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
    b.create();
    let res = b.path().join("res.json");
    std::fs::write(&res, r#"{"pids": {"limit": 7}}"#).unwrap();
    b.verb_ok(&["update", "--resources", res.to_str().unwrap(), &b.id]);
    let ev: serde_json::Value =
        serde_json::from_str(b.verb_ok(&["events", "--stats", &b.id]).trim()).unwrap();
    assert_eq!(ev["data"]["pids"]["limit"], 7);
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn features_and_version() {
    let b = Bundle::new(&["true"]);
    let f: serde_json::Value = serde_json::from_str(&b.verb_ok(&["features"])).unwrap();
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
    assert!(b.verb_ok(&["--version"]).contains("berth-runtime version"));
}
