//! Containers end to end: the real `berth` CLI and the real docker CLIs (Debian's 20.10 and
//! docker 28) against a real berthd, running real containers from a busybox image.

use std::process::Command;
use std::time::Duration;

use berth_e2e::{binary, busybox_image, code, eventually, ok, stderr, stdout, Berthd};

fn daemon() -> Berthd {
    Berthd::start_with(busybox_image)
}

#[test]
fn run_output_exit_codes_and_errors() {
    let d = daemon();
    let out = d.berth(&["run", "--rm", "busybox", "echo", "hello from a container"]);
    assert_eq!(ok(out), "hello from a container");
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3);
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    let out = d.berth(&["run", "--rm", "busybox", "no-such-program"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    // (`--pull never`: the pull a missing image gets is tests/e2e/run_pull.rs's.)
    let out = d.berth(&["run", "--rm", "--pull", "never", "no-such-image", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("No such image: no-such-image"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(code(&out), 125, "--rm with --restart is refused");
    let out = d.berth(&["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Minimum memory limit"),
        "{}",
        stderr(&out)
    );
    // --rm containers are gone.
    assert_eq!(ok(d.berth(&["ps", "-aq"])), "");
    // Stdin with -i.
    let mut child = Command::new(binary("berth"))
        .args([
            "-H",
            &d.host(),
            "run",
            "--rm",
            "-i",
            "busybox",
            "tr",
            "a-z",
            "A-Z",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped through\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "PIPED THROUGH\n");
}

#[test]
fn config_flags_reach_the_process() {
    let d = daemon();
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "app",
        "-h",
        "box",
        "--label",
        "a=b",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u):$(id -g) $(id -G) $(hostname)",
    ]));
    assert_eq!(out, "hi /tmp 1000:1000 1000 10 box");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "-u",
        "4242:4343",
        "busybox",
        "sh",
        "-c",
        "echo uid=$(id -u) gid=$(id -g)",
    ]));
    assert_eq!(out, "uid=4242 gid=4343");
    let out = d.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(code(&out), 0, "the root is read-only");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]));
    assert!(out.ends_with("0000000000000000"), "{out}");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]));
    assert!(out.ends_with('1'), "{out}");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--pids-limit",
        "50",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "busybox",
        "sh",
        "-c",
        "echo limited",
    ]));
    assert_eq!(out, "limited");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "from",
        "entrypoint",
    ]));
    assert_eq!(out, "from entrypoint");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ]));
    assert!(out.starts_with("/sbin/docker-init -- sh"), "{out}");
}

#[test]
fn top_and_stats() {
    let d = daemon();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & while true; do :; done",
    ]));
    let top = ok(d.berth(&["top", "busy"]));
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("UID") && lines[0].ends_with("CMD"),
        "{top}"
    );
    assert!(lines.iter().any(|l| l.ends_with("sleep 1000")), "{top}");
    assert_eq!(lines.len(), 3, "{top}");
    let st = ok(d.berth(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
        "busy",
    ]));
    let f: Vec<&str> = st.split_whitespace().collect();
    assert_eq!(f[0], "busy", "{st}");
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 20.0, "a busy loop shows CPU use: {st}");
    assert_eq!(f[4], "64MiB", "the memory limit: {st}");
    assert_eq!(f[5], "2", "{st}");
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let out = ok(d.docker(
            client,
            &[
                "stats",
                "--no-stream",
                "--format",
                "{{.Name}} {{.PIDs}}",
                "busy",
            ],
        ));
        assert_eq!(out, "busy 2", "{client}");
        let out = ok(d.docker(client, &["top", "busy"]));
        assert!(out.contains("sleep 1000"), "{client}: {out}");
    }
    // Limits change on the running container, and stay for the next start.
    ok(d.berth(&["update", "--memory", "128m", "--pids-limit", "30", "busy"]));
    let st = ok(d.berth(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "busy"]));
    assert!(st.ends_with("/ 128MiB"), "{st}");
    ok(d.docker(
        "/usr/local/bin/docker",
        &["update", "--memory", "96m", "busy"],
    ));
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            "busy"
        ])),
        format!("{} 30", 96 << 20)
    );
    // A restart policy set by update applies to the running container.
    ok(d.berth(&["update", "--restart", "always", "busy"]));
    // An update without --restart keeps the policy, as dockerd does: the docker CLI sends
    // a policy with an empty name then.
    ok(d.docker(
        "/usr/local/bin/docker",
        &["update", "--memory", "100m", "busy"],
    ));
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}",
            "busy"
        ])),
        "always"
    );
    ok(d.berth(&["kill", "busy"]));
    assert!(eventually(10, || ok(d.berth(&[
        "inspect",
        "-f",
        "{{.RestartCount}} {{.State.Running}}",
        "busy"
    ])) == "1 true"));
    ok(d.berth(&["update", "--restart", "no", "busy"]));
    ok(d.berth(&["kill", "busy"]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.State.Status}}", "busy"])),
        "exited"
    );
    let out = d.berth(&["top", "busy"]);
    assert_eq!(code(&out), 1, "top of a stopped container fails");
}

#[test]
fn exec_with_berth() {
    let d = daemon();
    ok(d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]));
    let out = d.berth(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str(), stderr(&out).as_str()),
        (4, "out\n", "err\n")
    );
    let out = d.berth(&["exec", "box", "no-such-program"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert_eq!(
        ok(d.berth(&["exec", "-u", "app", "box", "id", "-un"])),
        "app"
    );
    // A client that does not hijack gets the output as the body, and the exit code after.
    let sock = d.sock();
    let curl = |args: &[&str]| {
        ok(Command::new("curl")
            .args(["-s", "--unix-socket", sock.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap())
    };
    let created = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"AttachStdout":true,"Cmd":["sh","-c","echo plain; exit 9"]}"#,
        "http://b/containers/box/exec",
    ]);
    let eid: serde_json::Value = serde_json::from_str(&created).unwrap();
    let eid = eid["Id"].as_str().unwrap();
    let body = Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            sock.to_str().unwrap(),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
        ])
        .arg(format!("http://b/exec/{eid}/start"))
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        body, b"\x01\x00\x00\x00\x00\x00\x00\x06plain\n",
        "one stdout frame"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("http://b/exec/{eid}/json")])).unwrap();
    assert_eq!(inspect["ExitCode"], 9);
    // Not in a stopped container.
    ok(d.berth(&["kill", "box"]));
    let out = d.berth(&["exec", "box", "true"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
fn detached_lifecycle_ps_logs_inspect() {
    let d = daemon();
    let id = ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done",
    ]));
    assert_eq!(id.len(), 64);
    assert!(eventually(5, || ok(d.berth(&["logs", "web"])) == "started"));
    let ps = ok(d.berth(&["ps"]));
    let lines: Vec<&str> = ps.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{ps}"
    );
    assert!(
        lines[1].starts_with(&id[..12]) && lines[1].ends_with("web"),
        "{ps}"
    );
    assert!(lines[1].contains("Up "), "{ps}");
    assert_eq!(
        ok(d.berth(&["ps", "-q", "--filter", "label=tier=front"])),
        &id[..12]
    );
    assert_eq!(
        ok(d.berth(&["ps", "-q", "--filter", "label=tier=back"])),
        ""
    );
    assert_eq!(
        ok(d.berth(&[
            "ps",
            "--format",
            "{{.Names}}\t{{.Image}}",
            "--filter",
            "name=we"
        ])),
        "web\tbusybox"
    );
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Name}} {{json .Config.Labels}}",
            "web"
        ])),
        "running /web {\"tier\":\"front\"}"
    );
    // Pause and unpause.
    ok(d.berth(&["pause", "web"]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.State.Status}}", "web"])),
        "paused"
    );
    let out = d.berth(&["pause", "web"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("is already paused"),
        "{}",
        stderr(&out)
    );
    ok(d.berth(&["unpause", "web"]));
    // A running container cannot be removed without -f.
    let out = d.berth(&["rm", "web"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Stop the container before attempting removal or force remove"),
        "{}",
        stderr(&out)
    );
    // Stop sends SIGTERM, which the trap catches.
    ok(d.berth(&["stop", "web"]));
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ])),
        "exited 0"
    );
    assert_eq!(ok(d.berth(&["logs", "web"])), "started\ngot TERM");
    assert_eq!(ok(d.berth(&["logs", "--tail", "1", "web"])), "got TERM");
    let ts = ok(d.berth(&["logs", "-t", "web"]));
    assert!(
        ts.lines()
            .all(|l| l.len() > 31 && &l[4..5] == "-" && l.contains("Z ")),
        "{ts}"
    );
    // Stopping again is fine; a stopped container is listed with -a only.
    ok(d.berth(&["stop", "web"]));
    assert_eq!(ok(d.berth(&["ps", "-q"])), "");
    assert!(ok(d.berth(&["ps", "-a"])).contains("Exited (0)"));
    // Start it again, rename, restart, kill, wait.
    ok(d.berth(&["start", "web"]));
    ok(d.berth(&["rename", "web", "site"]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.Name}}", &id[..8]])),
        "/site"
    );
    ok(d.berth(&["restart", "-t", "1", "site"]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.State.Running}}", "site"])),
        "true"
    );
    ok(d.berth(&["kill", "site"]));
    assert_eq!(ok(d.berth(&["wait", "site"])), "137");
    let out = d.berth(&["kill", "site"]);
    assert_eq!(code(&out), 1, "killing a stopped container fails");
    ok(d.berth(&["rm", "site"]));
    let out = d.berth(&["inspect", "site"]);
    assert_eq!(code(&out), 1);
    // Name conflicts use Docker's wording; `create` exits 1 on a daemon error, as both docker
    // CLIs do (only `run` has 125).
    ok(d.berth(&["create", "--name", "dup", "busybox", "true"]));
    let out = d.berth(&["create", "--name", "dup", "busybox", "true"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("The container name \"/dup\" is already in use"),
        "{}",
        stderr(&out)
    );
    // Events were recorded.
    // A window that closed long ago holds nothing; a filter keeps only its events.
    assert_eq!(ok(d.berth(&["events", "--since", "1", "--until", "2"])), "");
    let renames = recent_events(
        &d,
        "event=rename",
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}",
    );
    assert_eq!(renames, "rename site /web");
    let ev = ok(d.berth(&[
        "events",
        "--since",
        "60s",
        "--until",
        "0s",
        "--format",
        "{{.Action}}",
    ]));
    for a in [
        "create", "start", "pause", "unpause", "kill", "die", "stop", "rename", "restart",
        "destroy",
    ] {
        assert!(ev.lines().any(|l| l == a), "event {a} missing in {ev}");
    }
}

#[test]
fn restart_policy_and_follow() {
    let d = daemon();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ]));
    assert!(eventually(10, || ok(d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        "flaky"
    ])) == "exited"));
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.ExitCode}}",
            "flaky"
        ])),
        "2 1"
    );
    assert_eq!(ok(d.berth(&["logs", "flaky"])), "try\ntry\ntry");
    // logs -f ends when the container does.
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]));
    let out = ok(d.berth(&["logs", "-f", "counter"]));
    assert_eq!(out, "1\n2\n3");
}

/// SIGKILL berthd while containers run, one writing logs without pause: after a restart every
/// container still runs, no log line is lost, and stop, wait and logs work.
#[test]
fn containers_survive_berthd_sigkill() {
    let mut d = daemon();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "logger",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i; i=$((i+1)); usleep 2000; done",
    ]));
    ok(d.berth(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "1000"]));
    std::thread::sleep(Duration::from_millis(500));
    d.kill9();
    // While berthd is gone the logger keeps writing.
    std::thread::sleep(Duration::from_millis(700));
    d.restart();
    let ps = ok(d.berth(&["ps", "--format", "{{.Names}} {{.State}}"]));
    assert!(
        ps.contains("logger running") && ps.contains("sleeper running"),
        "{ps}"
    );
    std::thread::sleep(Duration::from_millis(300));
    ok(d.berth(&["stop", "-t", "1", "logger"]));
    let logs = ok(d.berth(&["logs", "logger"]));
    let nums: Vec<u64> = logs.lines().map(|l| l.parse().unwrap()).collect();
    assert!(nums.len() > 200, "{} lines", nums.len());
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as u64, "line {i} lost or out of order");
    }
    ok(d.berth(&["kill", "sleeper"]));
    assert_eq!(ok(d.berth(&["wait", "sleeper"])), "137");
    // A container that exits while berthd is down has its exit recorded.
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "brief",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; exit 9",
    ]));
    d.kill9();
    std::thread::sleep(Duration::from_millis(1200));
    d.restart();
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "brief"
        ])),
        "exited 9"
    );
}

/// `stop` tells its signals as dockerd does: `kill` with the stop signal, `kill` with 9 when
/// the timeout runs out, then `die` and `stop`, in that order.
/// The events of the last minute that pass `filter`, printed with `format`.
fn recent_events(d: &Berthd, filter: &str, format: &str) -> String {
    ok(d.berth(&[
        "events", "--since", "60s", "--until", "0s", "--filter", filter, "--format", format,
    ]))
}

#[test]
fn stop_reports_its_kills() {
    let d = daemon();
    let actions = |name: &str| {
        recent_events(
            &d,
            &format!("container={name}"),
            "{{.Action}} {{.Actor.Attributes.signal}}",
        )
        .lines()
        // A missing attribute prints as Go's `<no value>`.
        .map(|l| l.trim_end_matches("<no value>").trim().to_string())
        .filter(|l| l.starts_with("kill") || l == "die" || l == "stop")
        .collect::<Vec<_>>()
    };
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    ]));
    ok(d.berth(&["stop", "-t", "1", "stubborn"]));
    assert_eq!(actions("stubborn"), ["kill 15", "kill 9", "die", "stop"]);
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "polite",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' USR1; while true; do sleep 1; done",
    ]));
    ok(d.berth(&["stop", "polite"]));
    assert_eq!(actions("polite"), ["kill 10", "die", "stop"]);
}

/// A start that fails leaves a container that never ran `created`, as dockerd does, with the
/// exit code and the error recorded (a port conflict: 128; a missing program: 127); once the
/// port is free the same container starts.
#[test]
fn failed_starts_leave_the_container_created() {
    let d = daemon();
    let port = berth_e2e::peers::free_port().to_string();
    let publish = format!("127.0.0.1:{port}:80");
    ok(d.berth(&[
        "run", "-d", "--name", "holder", "-p", &publish, "busybox", "sleep", "100",
    ]));
    let out = d.berth(&[
        "run", "-d", "--name", "late", "-p", &publish, "busybox", "sleep", "100",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("port is already allocated"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["run", "--name", "typo", "busybox", "no-such-program"]);
    assert_eq!(code(&out), 127);
    let state =
        |n: &str| ok(d.berth(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", n]));
    assert_eq!(state("late"), "created 128");
    assert_eq!(state("typo"), "created 127");
    assert!(ok(d.berth(&["inspect", "-f", "{{.State.Error}}", "late"]))
        .contains("port is already allocated"));
    let listed = ok(d.docker(
        "/usr/local/bin/docker",
        &[
            "ps",
            "-a",
            "--filter",
            "name=late",
            "--format",
            "{{.Status}}",
        ],
    ));
    assert_eq!(
        listed, "Created",
        "the docker CLI lists it as dockerd's would be"
    );
    ok(d.berth(&["rm", "-f", "holder"]));
    ok(d.berth(&["start", "late"]));
    assert_eq!(state("late"), "running 0");
}
