//! Bad specs and failures half-way: a clear error naming the field, a non-zero exit, and
//! nothing left behind (no state, no cgroup, no process, no mount).

mod common;
use common::*;

/// Runs `create` and checks the failure left nothing behind; returns stderr.
fn fails_cleanly(b: &Bundle) -> String {
    let out = b.verb(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(!out.status.success(), "create must fail");
    assert_eq!(out.status.code(), Some(1));
    assert!(!b.state_dir().exists(), "state left behind");
    if let Some(p) = b.spec["linux"]["cgroupsPath"].as_str() {
        if let Ok(cg) =
            berth_runtime::cgroups::Cgroup::open(std::path::Path::new(p), Default::default())
        {
            for d in cg.dirs() {
                assert!(!d.exists(), "cgroup {} left behind", d.display());
            }
        }
    }
    let rootfs = b.path().join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(rootfs.to_str().unwrap()),
        "mount left behind"
    );
    let procs = std::process::Command::new("pgrep")
        .args(["-f", &b.id])
        .output()
        .unwrap();
    assert!(
        procs.stdout.is_empty(),
        "process left behind: {}",
        stdout(&procs)
    );
    stderr(&out)
}

#[test]
fn missing_rootfs() {
    let mut b = Bundle::new(&["true"]);
    b.spec["root"]["path"] = "no-such-rootfs".into();
    let err = fails_cleanly(&b);
    assert!(
        err.contains("root.path") && err.contains("no-such-rootfs"),
        "{err}"
    );
}

#[test]
fn unknown_namespace() {
    let mut b = Bundle::new(&["true"]);
    b.spec["linux"]["namespaces"][2]["type"] = "bogus".into();
    let err = fails_cleanly(&b);
    assert!(err.contains("linux.namespaces[2].type"), "{err}");
}

#[test]
fn invalid_mapping() {
    let mut b = Bundle::new(&["true"]);
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "user"}));
    b.spec["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
    b.spec["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let err = fails_cleanly(&b);
    assert!(err.contains("linux.uidMappings[0].size"), "{err}");
}

#[test]
fn malformed_json() {
    let b = Bundle::new(&["true"]);
    b.write();
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-runtime"))
        .arg("--root")
        .arg(&b.root)
        .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
    assert!(!b.state_dir().exists());
}

#[test]
fn wrong_field_type_names_the_field() {
    let mut b = Bundle::new(&["true"]);
    b.spec["process"]["user"]["uid"] = "root".into();
    let err = fails_cleanly(&b);
    assert!(err.contains("process.user.uid"), "{err}");
}

#[test]
fn failure_during_mounts_tears_down() {
    let mut b = Bundle::new(&["true"]);
    b.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": "/data", "type": "bind", "source": "/no/such/source", "options": ["bind"]
        }));
    let err = fails_cleanly(&b);
    assert!(err.contains("/no/such/source"), "{err}");
}

#[test]
fn failure_at_exec_tears_down() {
    let b = Bundle::new(&["/bin/definitely-missing"]);
    let out = b.run();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("definitely-missing"),
        "{}",
        stderr(&out)
    );
    assert!(!b.state_dir().exists());
    for d in b.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn duplicate_id_is_refused() {
    let b = Bundle::new(&["sleep", "100"]);
    b.create();
    let out = b.verb(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        b.state()["status"],
        "created",
        "the first container is untouched"
    );
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn invalid_ids_are_refused() {
    let b = Bundle::new(&["true"]);
    for id in ["../escape", "a/b", ""] {
        let out = b.verb(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        assert!(!out.status.success(), "{id:?}");
    }
    assert!(!b.path().join("escape").exists());
}

#[test]
fn errors_go_to_the_json_log() {
    let mut b = Bundle::new(&["true"]);
    b.spec["root"]["path"] = "missing".into();
    let log = b.path().join("runtime.log");
    let out = b.verb(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("root.path"),
        "{text}"
    );
}

#[test]
fn unsupported_fields_are_refused_not_ignored() {
    let mut b = Bundle::new(&["true"]);
    b.spec["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
    let err = fails_cleanly(&b);
    assert!(
        err.contains("linux.intelRdt") && err.contains("not supported"),
        "{err}"
    );
    let mut b = Bundle::new(&["true"]);
    b.spec["process"]["apparmorProfile"] = "some-profile".into();
    if !std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        let err = fails_cleanly(&b);
        assert!(err.contains("process.apparmorProfile"), "{err}");
    }
}
