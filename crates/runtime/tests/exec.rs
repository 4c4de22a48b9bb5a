//! `exec`: a new process joins a running container's namespaces and cgroup.

mod common;
use common::*;

fn running(args: &[&str]) -> Bundle {
    let mut b = Bundle::new(args);
    b.spec["hostname"] = "execbox".into();
    b.create();
    b.verb_ok(&["start", &b.id]);
    b
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    let b = running(&["sleep", "100"]);
    let out = b.verb_ok(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
        [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same-cgroup; \
        [ $(readlink /proc/self/ns/mnt) = $(readlink /proc/1/ns/mnt) ] && echo same-mnt",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "execbox", "{out}");
    assert_ne!(lines[1], "1", "{out}");
    assert_eq!(lines[2].trim(), "sleep 100", "{out}");
    assert!(
        out.contains("same-cgroup") && out.contains("same-mnt"),
        "{out}"
    );

    // Detached, with a pid file: the host sees the process in the container's cgroup.
    let pidfile = b.path().join("exec.pid");
    // The detached process keeps stdio open: do not wait on pipes.
    let st = b
        .cmd()
        .args([
            "exec",
            "--detach",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &b.id,
            "sleep",
            "50",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    for d in b.cgroup_dirs() {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.trim()),
            "exec'd {pid} not in {}",
            d.display()
        );
    }
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn exec_exit_code_user_env_cwd() {
    let b = running(&["sleep", "100"]);
    let out = b.verb(&["exec", &b.id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let out = b.verb_ok(&[
        "exec",
        "--user",
        "1000:1000",
        "--env",
        "X=y",
        "--cwd",
        "/tmp",
        &b.id,
        "sh",
        "-c",
        "id -u; echo $X; pwd",
    ]);
    assert_eq!(out, "1000\ny\n/tmp\n");
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn exec_with_process_json() {
    let b = running(&["sleep", "100"]);
    let p = b.path().join("process.json");
    std::fs::write(
        &p,
        serde_json::json!({
            "args": ["sh", "-c", "echo from-json; grep CapEff /proc/self/status"],
            "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        })
        .to_string(),
    )
    .unwrap();
    let out = b.verb_ok(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    assert_eq!(out, "from-json\nCapEff:\t0000000000000020\n");
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn exec_into_stopped_container_fails() {
    let b = Bundle::new(&["true"]);
    b.create();
    b.verb_ok(&["start", &b.id]);
    wait_for(5, "stopped", || b.state()["status"] == "stopped");
    let out = b.verb(&["exec", &b.id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    b.verb_ok(&["delete", &b.id]);
}

#[test]
fn exec_of_missing_program_reports_it() {
    let b = running(&["sleep", "100"]);
    let out = b.verb(&["exec", &b.id, "no-such-binary"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    b.verb_ok(&["delete", "--force", &b.id]);
}
