//! OCI hooks: order, namespaces, the state on stdin, and failures.

mod common;
use common::*;

fn hook(log: &std::path::Path, name: &str) -> serde_json::Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "s=$(cat); echo \"{name} $(echo \"$s\" | grep -o '\"status\": *\"[a-z]*\"' | grep -o '[a-z]*\"$' | tr -d '\"') $(readlink /proc/self/ns/mnt)\" >> {}",
            log.display()
        )]
    })
}

#[test]
fn all_hooks_run_in_order_in_the_right_namespaces() {
    let mut b = Bundle::new(&["sh", "-c", "echo user-process >> /hooklog/log"]);
    let dir = b.path().join("hooklog");
    std::fs::create_dir(&dir).unwrap();
    let log = dir.join("log");
    b.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": "/hooklog", "type": "bind", "source": dir, "options": ["bind", "rw"]
        }));
    // startContainer runs inside the container: its path and the log path resolve there.
    b.spec["hooks"] = serde_json::json!({
        "prestart": [hook(&log, "prestart")],
        "createRuntime": [hook(&log, "createRuntime")],
        "createContainer": [hook(&log, "createContainer")],
        "startContainer": [hook(std::path::Path::new("/hooklog/log"), "startContainer")],
        "poststart": [hook(&log, "poststart")],
        "poststop": [hook(&log, "poststop")]
    });
    b.create();
    b.verb_ok(&["start", &b.id]);
    wait_for(5, "stopped", || b.state()["status"] == "stopped");
    b.verb_ok(&["delete", &b.id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    // startContainer and the exec come before poststart; the user process itself may write
    // before or after poststart runs.
    let mut expected = vec![
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "user-process",
        "poststart",
        "poststop",
    ];
    if names.get(4) == Some(&"poststart") {
        expected.swap(4, 5);
    }
    assert_eq!(names, expected, "{text}");
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_mnt = host_mnt.to_str().unwrap();
    let field = |name: &str, i: usize| -> String {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split(' ')
            .nth(i)
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        field("prestart", 2),
        host_mnt,
        "prestart runs in the runtime namespace"
    );
    assert_eq!(field("createRuntime", 2), host_mnt);
    assert_ne!(
        field("createContainer", 2),
        host_mnt,
        "createContainer runs in the container namespace"
    );
    assert_ne!(field("startContainer", 2), host_mnt);
    assert_eq!(field("poststop", 2), host_mnt);
    assert_eq!(field("createRuntime", 1), "creating", "{text}");
    assert_eq!(field("poststart", 1), "running", "{text}");
    assert_eq!(field("poststop", 1), "stopped", "{text}");
}

#[test]
fn failing_create_runtime_hook_tears_everything_down() {
    let mut b = Bundle::new(&["true"]);
    b.spec["hooks"] = serde_json::json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]
    });
    let out = b.run();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("hook-said-no"), "{}", stderr(&out));
    assert!(!b.state_dir().exists());
    for d in b.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn hook_timeout_is_enforced() {
    let mut b = Bundle::new(&["true"]);
    b.spec["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let out = b.run();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}
