//! Container configuration end to end: run/create flags, seccomp profiles, the image's config
//! merged as dockerd merges it, and debug logs that follow a start into the shim (the real
//! `berth` CLI against a real berthd).

use berth_e2e::{busybox_image, code, ok, stderr, stdout, Berthd};

fn daemon() -> Berthd {
    Berthd::start_with(busybox_image)
}

/// The remaining flags and commands: attach, --env-file, --privileged, --stop-signal,
/// --stop-timeout, --log-opt rotation, --cpu-shares, ps -s/--no-trunc, logs --since, info, and
/// the image group with load/save.
#[test]
fn more_flags_and_commands() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::write(&env, "# comment\nFROM_FILE=yes\n\nOTHER=2\n").unwrap();
    assert_eq!(
        ok(d.berth(&[
            "run",
            "--rm",
            "--env-file",
            env.to_str().unwrap(),
            "busybox",
            "sh",
            "-c",
            "echo $FROM_FILE$OTHER"
        ])),
        "yes2"
    );
    let caps = ok(d.berth(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]));
    let eff = u64::from_str_radix(caps.split_whitespace().last().unwrap(), 16).unwrap();
    // Every capability the host side holds (this machine's bounding set may lack some).
    let bnd = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = bnd
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(eff, u64::from_str_radix(&bnd, 16).unwrap(), "{caps}");
    assert!(eff & (1 << 21) != 0, "CAP_SYS_ADMIN: {caps}");
    ok(d.berth(&["run", "--rm", "--cpu-shares", "512", "busybox", "true"]));
    // --stop-signal: stop sends USR1, which the trap turns into exit 42.
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "5",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ]));
    ok(d.berth(&["stop", "sig"]));
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.Config.StopSignal}}",
            "sig"
        ])),
        "42 USR1"
    );
    // --log-opt: rotated at 2 KiB, 2 files kept; logs still reads both in order.
    ok(d.berth(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]));
    let log_path = ok(d.berth(&["inspect", "-f", "{{.LogPath}}", "chatty"]));
    assert!(
        std::fs::metadata(format!("{log_path}.1")).is_ok(),
        "rotated once at least"
    );
    assert!(
        std::fs::metadata(format!("{log_path}.2")).is_err(),
        "max-file=2 keeps two files"
    );
    assert!(std::fs::metadata(&log_path).unwrap().len() <= 2048);
    let logs = ok(d.berth(&["logs", "chatty"]));
    assert!(logs.ends_with("line-199"), "{logs}");
    let n: Vec<u32> = logs.lines().map(|l| l[5..].parse().unwrap()).collect();
    assert!(n.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    assert!(ok(d.berth(&["logs", "--since", "1h", "chatty"])).ends_with("line-199"));
    assert_eq!(
        ok(d.berth(&["logs", "--since", "2099-01-01T00:00:00Z", "chatty"])),
        ""
    );
    // ps -s and --no-trunc.
    let ps = ok(d.berth(&[
        "ps",
        "-a",
        "-s",
        "--no-trunc",
        "--filter",
        "name=chatty",
        "--format",
        "{{.ID}} {{.Size}}",
    ]));
    let (id, size) = ps.split_once(' ').unwrap();
    assert_eq!(id.len(), 64);
    assert!(size.contains("(virtual "), "{size}");
    // attach to a running container: its output, then its exit code.
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo attached-out; exit 3",
    ]));
    let out = d.berth(&["attach", "talker"]);
    assert_eq!(code(&out), 3);
    assert_eq!(stdout(&out), "attached-out\n");
    // info counts containers.
    let info = ok(d.berth(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersStopped}} {{.Driver}}",
    ]));
    assert_eq!(info, "3 3 overlay");
    // The image group, and save → rmi → load.
    assert!(ok(d.berth(&["image", "ls"])).contains("busybox"));
    assert_eq!(
        ok(d.berth(&["image", "inspect", "-f", "{{.Os}}", "busybox"])),
        "linux"
    );
    ok(d.berth(&["image", "tag", "busybox", "copy:1"]));
    let tar = dir.path().join("copy.tar");
    ok(d.berth(&["image", "save", "-o", tar.to_str().unwrap(), "copy:1"]));
    ok(d.berth(&["image", "rm", "copy:1"]));
    assert!(ok(d.berth(&["load", "-i", tar.to_str().unwrap()])).contains("copy:1"));
    assert_eq!(
        ok(d.berth(&["run", "--rm", "copy:1", "echo", "loaded"])),
        "loaded"
    );
}

#[test]
fn default_seccomp_profile_and_security_opt_profiles() {
    let b = Berthd::start_with(busybox_image);
    let run = |args: &[&str]| b.berth(&[&["run", "--rm"], args].concat());
    let status = |extra: &[&str]| {
        let mut a = extra.to_vec();
        a.extend(["busybox", "grep", "^Seccomp:", "/proc/self/status"]);
        let out = run(&a);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(status(&[]), "2", "a filter by default");
    assert_eq!(status(&["--security-opt", "seccomp=unconfined"]), "0");
    assert_eq!(
        status(&["--privileged"]),
        "0",
        "--privileged runs unconfined, as docker"
    );
    // A user namespace needs no capability, so only the profile stops it.
    let userns = |extra: &[&str]| {
        let mut a = extra.to_vec();
        a.extend(["busybox", "unshare", "-U", "true"]);
        run(&a)
    };
    let out = userns(&[]);
    assert!(
        !out.status.success(),
        "unshare -U is refused by the default profile"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not permitted"),
        "{out:?}"
    );
    assert!(userns(&["--security-opt", "seccomp=unconfined"])
        .status
        .success());
    assert!(
        userns(&["--cap-add", "SYS_ADMIN"]).status.success(),
        "CAP_SYS_ADMIN opens unshare, as docker's profile"
    );
    // Everyday programs still work under it.
    let out = run(&["busybox", "sh", "-c", "mkdir /t && echo x > /t/f && cat /t/f && ls / >/dev/null && ps >/dev/null && date >/dev/null"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n", "{out:?}");
    // A profile of one's own, as the docker CLI sends it (the file's JSON) and as a path.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let p = profile.display().to_string();
    let out = b.docker(
        "/usr/bin/docker",
        &[
            "run",
            "--rm",
            "--security-opt",
            &format!("seccomp={p}"),
            "busybox",
            "mkdir",
            "/x",
        ],
    );
    assert!(
        !out.status.success(),
        "the docker CLI's profile is applied: {out:?}"
    );
    let out = run(&[
        "--security-opt",
        &format!("seccomp={p}"),
        "busybox",
        "sh",
        "-c",
        "touch /f && ! mkdir /x",
    ]);
    assert!(out.status.success(), "a profile by path: {out:?}");
    let bad = run(&[
        "--security-opt",
        "seccomp=/nonexistent.json",
        "busybox",
        "true",
    ]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("seccomp profile"),
        "{bad:?}"
    );
}

/// `create` fills a container's config from its image by dockerd's merge rules: the same
/// image, built by each, and the same create flags give berthd and dockerd the same Path,
/// Args and merged Config (env order, exposed ports, labels, volumes, entrypoint resets).
#[test]
fn create_merges_the_image_config_as_dockerd_does() {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nEXPOSE 8080\nENV A=1 B=2\nLABEL x=image y=image\nVOLUME /data\n\
         STOPSIGNAL SIGQUIT\nWORKDIR /w\nUSER 1000\nENTRYPOINT [\"/entry\"]\nCMD [\"serve\"]\n",
    )
    .unwrap();
    let ctx_arg = ctx.path().display().to_string();
    let dockerd = berth_e2e::peers::Dockerd::start();
    let out = dockerd
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "merge", &ctx_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker build: {out:?}");
    let d = daemon();
    ok(d.berth(&["build", "-q", "-t", "merge", &ctx_arg]));
    let cases: &[&[&str]] = &[
        &["merge"],
        &[
            "-e",
            "A=9",
            "-e",
            "C=3",
            "--label",
            "y=user",
            "--expose",
            "53/udp",
            "-w",
            "/x",
            "-u",
            "0",
            "--stop-signal",
            "SIGINT",
            "merge",
            "other",
        ],
        &["--entrypoint", "", "merge", "echo", "hi"],
        &["--entrypoint", "/bin/sh", "merge"],
        &["-v", "/extra", "merge"],
    ];
    let pick = |v: &serde_json::Value| {
        let c = &v[0]["Config"];
        let keys = |m: &serde_json::Value| -> Vec<String> {
            m.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        // dockerd puts the user's entries first in an order that varies from run to run (a
        // Go map), then the image's it did not override: compared as a set here, berth's
        // order checked below.
        let mut env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap_or_default();
        env.sort();
        serde_json::json!({
            "Path": v[0]["Path"], "Args": v[0]["Args"], "Env": env,
            "ExposedPorts": keys(&c["ExposedPorts"]), "Volumes": keys(&c["Volumes"]),
            "Labels": c["Labels"], "Entrypoint": c["Entrypoint"], "Cmd": c["Cmd"],
            "WorkingDir": c["WorkingDir"], "User": c["User"], "StopSignal": c["StopSignal"],
        })
    };
    for (i, args) in cases.iter().enumerate() {
        let name = format!("merge{i}");
        let mut a = vec!["create", "--name", name.as_str()];
        a.extend_from_slice(args);
        let theirs = dockerd.docker().args(&a).output().unwrap();
        assert!(theirs.status.success(), "docker {a:?}: {theirs:?}");
        ok(d.berth(&a));
        let theirs = dockerd.docker().args(["inspect", &name]).output().unwrap();
        let theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
        let ours: serde_json::Value =
            serde_json::from_slice(&d.berth(&["inspect", &name]).stdout).unwrap();
        assert_eq!(pick(&ours), pick(&theirs), "create {args:?}");
        if i == 1 {
            assert_eq!(
                ours[0]["Config"]["Env"],
                serde_json::json!([
                    "A=9",
                    "C=3",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "B=2"
                ]),
                "the user's entries in their order, then the image's"
            );
        }
    }
    // Nothing to run: both refuse.
    let a = ["create", "--entrypoint", "", "merge"];
    let theirs = dockerd.docker().args(a).output().unwrap();
    assert!(!theirs.status.success(), "{theirs:?}");
    let ours = d.berth(&a);
    assert_eq!(
        code(&ours),
        theirs.status.code().unwrap(),
        "{ours:?}: the docker CLI's code"
    );
    assert!(
        stderr(&ours)
            .to_lowercase()
            .contains("no command specified"),
        "{}",
        stderr(&ours)
    );
}

/// At `--log-level debug` one container's start can be followed through berthd (the request
/// span, the engine's operation span with the container id) and into its shim's own log
/// (`shim.log`: the shim's span with the same id, the request it served, what it did).
#[test]
fn debug_logs_follow_a_start_into_the_shim() {
    let d = Berthd::start_with_args(busybox_image, &["--log-level".into(), "debug".into()]);
    let id = ok(d.berth(&["create", "busybox", "true"]));
    ok(d.berth(&["start", "-a", &id]));
    let daemon_log = std::fs::read_to_string(d.dir.path().join("berthd.log")).unwrap();
    // The engine's start span, closed inside the API request's span.
    assert!(
        daemon_log.lines().any(|l| l.contains("request{method=POST")
            && l.contains(&format!("start{{container={id}}}"))
            && l.contains("close")),
        "no start span with the container's id inside a request: {daemon_log}"
    );
    let shim_log =
        std::fs::read_to_string(d.data.join("containers").join(&id).join("shim.log")).unwrap();
    let span = format!("shim{{container={id}}}");
    for what in [
        "created pid=",
        "request{op=start}",
        "started",
        "exited code=0",
    ] {
        assert!(
            shim_log
                .lines()
                .any(|l| l.contains(&span) && l.contains(what)),
            "shim.log has no {what:?} in {span}: {shim_log}"
        );
    }
    // Below debug the shim keeps quiet.
    let q = Berthd::start_with(busybox_image);
    let id = ok(q.berth(&["run", "-d", "busybox", "true"]));
    ok(q.berth(&["wait", &id]));
    let quiet = std::fs::read_to_string(q.data.join("containers").join(&id).join("shim.log"))
        .unwrap_or_default();
    assert!(!quiet.contains("request{op="), "{quiet}");
}

/// `--ipc` and `--pid container:<x>` join the other container's namespaces, and only a
/// `shareable` IPC namespace may be joined; `--uts container:<x>` is refused. The docker 20.10
/// CLI against a private dockerd and against berthd, compared step by step (namespace ids
/// differ between hosts' runs, so each side says whether it joined).
#[test]
fn ipc_and_pid_of_another_container_as_dockerd() {
    let d = daemon();
    let dockerd = berth_e2e::peers::Dockerd::start();
    dockerd.load_from(&d, "busybox:latest");
    let steps = |cli: &dyn Fn(&[&str]) -> std::process::Output| -> Vec<String> {
        let text = |o: std::process::Output| {
            if o.status.success() {
                stdout(&o).trim().to_string()
            } else {
                format!(
                    "exit {}: {}",
                    code(&o),
                    stderr(&o).lines().next().unwrap_or("")
                )
            }
        };
        let mut out = Vec::new();
        ok(cli(&[
            "run",
            "-d",
            "--name",
            "donor",
            "--ipc",
            "shareable",
            "busybox",
            "sleep",
            "60",
        ]));
        ok(cli(&[
            "run", "-d", "--name", "private", "busybox", "sleep", "60",
        ]));
        let donor_ipc = ok(cli(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]));
        let joined = text(cli(&[
            "run",
            "--rm",
            "--ipc",
            "container:donor",
            "busybox",
            "readlink",
            "/proc/self/ns/ipc",
        ]));
        out.push(format!("ipc joined: {}", joined == donor_ipc));
        out.push(text(cli(&[
            "run",
            "--rm",
            "--pid",
            "container:donor",
            "busybox",
            "sh",
            "-c",
            "ps -o comm | grep -c sleep",
        ])));
        let refused = text(cli(&[
            "run",
            "--rm",
            "--ipc",
            "container:private",
            "busybox",
            "true",
        ]));
        let private_id = ok(cli(&["inspect", "-f", "{{.Id}}", "private"]));
        out.push(refused.replace(&private_id, "<id>"));
        out.push(text(cli(&[
            "run",
            "--rm",
            "--ipc",
            "container:nosuch",
            "busybox",
            "true",
        ])));
        let _ = cli(&["rm", "-f", "donor", "private"]);
        out
    };
    let reference = steps(&|a: &[&str]| dockerd.docker().args(a).output().unwrap());
    assert_eq!(reference[0], "ipc joined: true");
    assert_eq!(reference[1], "1");
    assert!(reference[2].contains("non-shareable IPC"), "{reference:?}");
    let seen = steps(&|a: &[&str]| d.docker("/usr/bin/docker", a));
    assert_eq!(seen, reference);
    // The API refuses a UTS namespace of another container, in dockerd's words.
    let out = d.berth(&["create", "--uts", "container:x", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid UTS mode: container:x"),
        "{}",
        stderr(&out)
    );
    // Nor does it offer the engine's log driver for pods' containers.
    let out = d.berth(&[
        "create",
        "--log-driver",
        "cri",
        "--log-opt",
        "path=/etc/x",
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no log driver named 'cri' is registered"),
        "{}",
        stderr(&out)
    );
}
