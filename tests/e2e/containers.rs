//! Containers end to end: the real `berth` CLI and the real docker CLIs (Debian's 20.10 and
//! docker 28) against a real berthd, running real containers from a busybox image.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::{binary, busybox_image, ok, Berthd};

fn daemon() -> Berthd {
    Berthd::start_with(busybox_image)
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Polls `f` until it is true or `secs` pass.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
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
    let out = d.berth(&["run", "--rm", "no-such-image", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("Unable to find image 'no-such-image' locally"));
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
    // Name conflicts use Docker's wording.
    ok(d.berth(&["create", "--name", "dup", "busybox", "true"]));
    let out = d.berth(&["create", "--name", "dup", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("The container name \"/dup\" is already in use"),
        "{}",
        stderr(&out)
    );
    // Events were recorded.
    // A window that closed long ago holds nothing; a filter keeps only its events.
    assert_eq!(ok(d.berth(&["events", "--since", "1", "--until", "2"])), "");
    let renames = ok(d.berth(&[
        "events",
        "--since",
        "60s",
        "--until",
        "0s",
        "--filter",
        "event=rename",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}",
    ]));
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

fn docker_scenarios(client: &str) {
    let d = daemon();
    let run = |args: &[&str]| d.docker(client, args);
    let out = run(&["run", "--rm", "busybox", "echo", "hello from a container"]);
    assert_eq!(ok(out), "hello from a container", "{client}");
    let out = run(&["run", "--rm", "busybox", "sh", "-c", "echo err >&2; exit 5"]);
    assert_eq!(code(&out), 5, "{client}");
    assert_eq!(stderr(&out), "err\n");
    let out = run(&["run", "--rm", "busybox", "no-such-program"]);
    assert_eq!(code(&out), 127, "{client}: {}", stderr(&out));
    let id = ok(run(&[
        "run",
        "-d",
        "--name",
        "svc",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 1000",
    ]));
    assert!(eventually(5, || ok(run(&["logs", "svc"])) == "up"));
    let ps = ok(run(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]));
    assert!(
        ps.starts_with(&format!("{} svc Up", &id[..12])),
        "{client}: {ps}"
    );
    assert_eq!(
        ok(run(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.Config.Image}}",
            "svc"
        ])),
        "true busybox"
    );
    let out = run(&[
        "exec",
        "svc",
        "sh",
        "-c",
        "echo exec-out; echo exec-err >&2; exit 6",
    ]);
    assert_eq!(code(&out), 6, "{client}: {}", stderr(&out));
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("exec-out\n", "exec-err\n")
    );
    assert_eq!(
        ok(run(&[
            "exec",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "-e",
            "V=7",
            "svc",
            "sh",
            "-c",
            "echo $(id -u) $(pwd) $V"
        ])),
        "65534 /tmp 7"
    );
    let piped = Command::new(client)
        .args(["-H", &d.host(), "exec", "-i", "svc", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"exec stdin\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(stdout(&piped), "EXEC STDIN\n", "{client}");
    ok(run(&[
        "exec",
        "-d",
        "svc",
        "sh",
        "-c",
        "echo detached > /tmp/d",
    ]));
    assert!(eventually(5, || run(&["exec", "svc", "cat", "/tmp/d"])
        .stdout
        == b"detached\n"));
    ok(run(&["pause", "svc"]));
    ok(run(&["unpause", "svc"]));
    ok(run(&["rename", "svc", "svc2"]));
    ok(run(&["stop", "-t", "1", "svc2"]));
    assert_eq!(ok(run(&["wait", "svc2"])), "137");
    ok(run(&["start", "svc2"]));
    ok(run(&["restart", "-t", "1", "svc2"]));
    ok(run(&["kill", "svc2"]));
    ok(run(&["rm", "svc2"]));
    assert_eq!(ok(run(&["ps", "-aq"])), "");
    let echo = Command::new(client)
        .args(["-H", &d.host(), "run", "--rm", "-i", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"via stdin\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(stdout(&echo), "via stdin\n", "{client}");
}

#[test]
fn docker_20_10_cli_drives_berthd() {
    docker_scenarios("/usr/bin/docker");
}

#[test]
fn docker_28_cli_drives_berthd() {
    assert!(
        std::path::Path::new("/usr/local/bin/docker").exists(),
        "the docker 28 client is expected at /usr/local/bin/docker (scripts/install-deps)"
    );
    docker_scenarios("/usr/local/bin/docker");
}

/// `run -it` through a real pty: a shell prompt, a command, and its exit code.
#[test]
fn interactive_terminal() {
    let d = daemon();
    let script = r##"
import os, pty, sys, time, select
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
def read_until(token, limit=10):
    buf = b""
    end = time.time() + limit
    while token not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf
out = read_until(b"# ")
os.write(fd, b"echo tty-$((40+2)); tty; exit 7\r")
out += read_until(b"tty-42")
out += read_until(b"/dev/pts")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"##;
    let berth = binary("berth");
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(berth)
        .args(["-H", &d.host(), "run", "--rm", "-it", "busybox", "sh"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(code(&out), 7, "stdout: {text}\nstderr: {}", stderr(&out));
    assert!(text.contains("tty-42"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    // exec -it into a running container, the same way.
    ok(d.berth(&["run", "-d", "--name", "host", "busybox", "sleep", "1000"]));
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(binary("berth"))
        .args(["-H", &d.host(), "exec", "-it", "host", "sh"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(code(&out), 7, "stdout: {text}\nstderr: {}", stderr(&out));
    assert!(
        text.contains("tty-42") && text.contains("/dev/pts/"),
        "{text}"
    );
}

/// An image that containers use is not deleted from under them (Docker's conflicts).
#[test]
fn images_in_use_are_kept() {
    let d = daemon();
    ok(d.berth(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"]));
    let out = d.berth(&["rmi", "-f", "busybox"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("image is being used by running container"),
        "{}",
        stderr(&out)
    );
    ok(d.berth(&["rm", "-f", "live"]));
    ok(d.berth(&["create", "--name", "idle", "busybox", "echo", "still here"]));
    let out = d.berth(&["rmi", "busybox"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("(must force) - container"),
        "{}",
        stderr(&out)
    );
    // Forced: the tag goes, the image stays for the container.
    assert_eq!(
        ok(d.berth(&["rmi", "-f", "busybox"])),
        "Untagged: busybox:latest"
    );
    assert_eq!(ok(d.berth(&["start", "-a", "idle"])), "still here");
    // Untagging while another tag remains is always fine.
    ok(d.berth(&[
        "tag",
        &ok(d.berth(&["inspect", "-f", "{{.Image}}", "idle"])),
        "bb:one",
    ]));
    ok(d.berth(&["tag", "bb:one", "bb:two"]));
    assert_eq!(ok(d.berth(&["rmi", "bb:two"])), "Untagged: bb:two");
}

/// diff, commit, export, save and history, with berth and both docker CLIs.
#[test]
fn diff_commit_export_save_history() {
    let d = daemon();
    ok(d.berth(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; rm /bin/vi; mkdir /made",
    ]));
    let diff = ok(d.berth(&["diff", "src"]));
    for line in ["A /newfile", "D /bin/vi", "A /made", "C /bin"] {
        assert!(diff.lines().any(|l| l == line), "{line} missing in\n{diff}");
    }
    assert!(
        !diff.contains("/etc/hostname"),
        "engine mount points are not changes:\n{diff}"
    );
    let id = ok(d.berth(&[
        "commit",
        "-m",
        "snap",
        "-c",
        "CMD [\"cat\", \"/newfile\"]",
        "src",
        "snap:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(ok(d.berth(&["run", "--rm", "snap:1"])), "new");
    let out = d.berth(&["run", "--rm", "snap:1", "ls", "/bin/vi"]);
    assert_ne!(code(&out), 0, "the deletion was committed");
    let hist = ok(d.berth(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "snap:1",
    ]));
    assert_eq!(hist.lines().next(), Some("berth commit|snap"), "{hist}");
    // The committed layer carries no engine mount point.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("snap.tar");
    ok(d.berth(&["save", "-o", saved.to_str().unwrap(), "snap:1"]));
    let listing = ok(Command::new("tar").arg("-tf").arg(&saved).output().unwrap());
    assert!(listing.contains("manifest.json"), "{listing}");
    let exported = dir.path().join("src.tar");
    ok(d.berth(&["export", "-o", exported.to_str().unwrap(), "src"]));
    let listing = ok(Command::new("tar")
        .arg("-tf")
        .arg(&exported)
        .output()
        .unwrap());
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "newfile"),
        "{listing}"
    );
    assert!(!listing
        .lines()
        .any(|l| l.trim_start_matches("./") == "bin/vi"));
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        assert!(
            ok(d.docker(client, &["diff", "src"])).contains("A /newfile"),
            "{client}"
        );
        let tag = format!(
            "snap:{}",
            if client.contains("local") { "28" } else { "20" }
        );
        ok(d.docker(client, &["commit", "src", &tag]));
        assert_eq!(
            ok(d.docker(client, &["run", "--rm", &tag, "cat", "/newfile"])),
            "new",
            "{client}"
        );
        assert!(
            ok(d.docker(client, &["history", &tag])).contains("berth commit"),
            "{client}"
        );
        let f = dir.path().join(format!("{}.tar", tag.replace(':', "-")));
        ok(d.docker(client, &["save", "-o", f.to_str().unwrap(), &tag]));
        // What berth saved, docker's own loader reads back into berthd.
        ok(d.docker(client, &["rmi", &tag]));
        assert!(
            ok(d.docker(client, &["load", "-i", f.to_str().unwrap()])).contains(&tag),
            "{client}"
        );
        let e = dir
            .path()
            .join(format!("{}-export.tar", tag.replace(':', "-")));
        ok(d.docker(client, &["export", "-o", e.to_str().unwrap(), "src"]));
        assert!(std::fs::metadata(&e).unwrap().len() > 1_000_000, "{client}");
    }
}

/// import, system df, container/image/system prune, with berth and both docker CLIs.
#[test]
fn import_df_and_prune() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), "imported\n").unwrap();
    let tar = dir.path().join("rootfs.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf"])
        .arg(&tar)
        .arg("hello")
        .status()
        .unwrap()
        .success());
    let id = ok(d.berth(&[
        "import",
        "-c",
        "CMD [\"/hello\"]",
        tar.to_str().unwrap(),
        "imp:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{json .Config.Cmd}}", "imp:1"])),
        "[\"/hello\"]"
    );
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let tag = if client.contains("local") {
            "imp:28"
        } else {
            "imp:20"
        };
        ok(d.docker(client, &["import", tar.to_str().unwrap(), tag]));
        assert!(
            ok(d.docker(client, &["images", "--format", "{{.Repository}}:{{.Tag}}"])).contains(tag)
        );
        let df = ok(d.docker(
            client,
            &["system", "df", "--format", "{{.Type}} {{.TotalCount}}"],
        ));
        assert!(
            df.lines().any(|l| l.starts_with("Images ")),
            "{client}: {df}"
        );
    }
    ok(d.berth(&["run", "--name", "done1", "busybox", "true"]));
    ok(d.berth(&[
        "create", "--name", "made", "-l", "keep=no", "busybox", "true",
    ]));
    ok(d.berth(&["run", "-d", "--name", "alive", "busybox", "sleep", "1000"]));
    let df = ok(d.berth(&["system", "df"]));
    assert!(
        df.lines()
            .any(|l| l.starts_with("Containers") && l.contains(" 3 ")),
        "{df}"
    );
    // Label filter first: only `made` goes.
    let out = ok(d.berth(&["container", "prune", "-f", "--filter", "label=keep=no"]));
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(
        ok(d.berth(&["ps", "-a", "--format", "{{.Names}}"]))
            .lines()
            .count(),
        2
    );
    ok(d.docker("/usr/bin/docker", &["container", "prune", "-f"]));
    assert_eq!(
        ok(d.berth(&["ps", "-a", "--format", "{{.Names}}"])),
        "alive"
    );
    // Unused images go with -a; the one a container uses stays.
    ok(d.berth(&["image", "prune", "-a", "-f"]));
    let images = ok(d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert_eq!(images, "busybox:latest");
    ok(d.docker("/usr/local/bin/docker", &["system", "prune", "-f"]));
    assert_eq!(ok(d.berth(&["ps", "--format", "{{.Names}}"])), "alive");
}

/// `cp` both ways with berth and both docker CLIs, on a running and a stopped container, and
/// hostile symlinks planted in the container: every path resolves inside the container's root,
/// so no host file is read or written.
#[test]
fn cp_stays_inside_the_container() {
    let d = daemon();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let secret = h.join("host-secret");
    std::fs::write(&secret, "HOST SECRET\n").unwrap();
    let target_dir = h.join("host-dir");
    std::fs::create_dir(&target_dir).unwrap();
    let plant = format!(
        "mkdir -p /data/sub; echo inside > /data/sub/f; echo container-shadow > /etc/shadow-c; \
         ln -s / /up; ln -s ../../../../.. /dots; ln -s {} /leak; ln -s {} /evil; sleep 1000",
        secret.display(),
        target_dir.display()
    );
    ok(d.berth(&["run", "-d", "--name", "cpc", "busybox", "sh", "-c", &plant]));
    assert!(eventually(5, || d
        .berth(&["exec", "cpc", "test", "-L", "/evil"])
        .status
        .success()));
    let out = h.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = |p: &str| out.join(p).to_str().unwrap().to_string();
    // Out of the container.
    ok(d.berth(&["cp", "cpc:/data", &o("")]));
    assert_eq!(
        std::fs::read_to_string(out.join("data/sub/f")).unwrap(),
        "inside\n"
    );
    ok(d.berth(&["cp", "cpc:/data/sub/f", &o("renamed")]));
    assert_eq!(
        std::fs::read_to_string(out.join("renamed")).unwrap(),
        "inside\n"
    );
    // Symlinks resolve in the container: /up/etc and /dots/etc are the container's /etc.
    ok(d.berth(&["cp", "cpc:/up/etc/shadow-c", &o("s1")]));
    assert_eq!(
        std::fs::read_to_string(out.join("s1")).unwrap(),
        "container-shadow\n"
    );
    ok(d.berth(&["cp", "cpc:/dots/etc/shadow-c", &o("s2")]));
    assert_eq!(
        std::fs::read_to_string(out.join("s2")).unwrap(),
        "container-shadow\n"
    );
    // A link to a host path is copied as a link, never read through.
    ok(d.berth(&["cp", "cpc:/leak", &o("leak")]));
    let md = std::fs::symlink_metadata(out.join("leak")).unwrap();
    assert!(md.file_type().is_symlink());
    // With a trailing slash too: at most the link itself arrives, never the host file's bytes.
    let _ = d.berth(&["cp", "cpc:/leak/", &o("leak2")]);
    if let Ok(md) = std::fs::symlink_metadata(out.join("leak2")) {
        assert!(
            md.file_type().is_symlink(),
            "a regular file came out of /leak/"
        );
    }
    // Into the container.
    let local = h.join("local.txt");
    std::fs::write(&local, "from host\n").unwrap();
    ok(d.berth(&["cp", local.to_str().unwrap(), "cpc:/data/sub/"]));
    ok(d.berth(&["cp", local.to_str().unwrap(), "cpc:/data/named"]));
    assert_eq!(
        ok(d.berth(&["exec", "cpc", "cat", "/data/sub/local.txt", "/data/named"])),
        "from host\nfrom host"
    );
    // Through a link to a host directory: lands inside the container, the host dir stays empty.
    let _ = d.berth(&["cp", local.to_str().unwrap(), "cpc:/evil/"]);
    let _ = d.berth(&["cp", local.to_str().unwrap(), "cpc:/up/tmp/"]);
    assert_eq!(
        std::fs::read_dir(&target_dir).unwrap().count(),
        0,
        "nothing written on the host"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "HOST SECRET\n");
    assert_eq!(
        ok(d.berth(&["exec", "cpc", "cat", "/tmp/local.txt"])),
        "from host"
    );
    // Missing paths are Docker's 404.
    let out3 = d.berth(&["cp", "cpc:/nope", &o("nope")]);
    assert_eq!(code(&out3), 1);
    assert!(
        stderr(&out3).contains("Could not find the file /nope in container"),
        "{}",
        stderr(&out3)
    );
    // The docker CLIs, and a stopped container (its root mounted for the copy).
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let name = if client.contains("local") {
            "d28"
        } else {
            "d20"
        };
        ok(d.docker(client, &["cp", "cpc:/data/sub/f", &o(name)]));
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap(),
            "inside\n",
            "{client}"
        );
        ok(d.docker(
            client,
            &["cp", local.to_str().unwrap(), &format!("cpc:/data/{name}")],
        ));
        ok(d.docker(client, &["cp", "cpc:/leak", &o(&format!("{name}-leak"))]));
        assert!(std::fs::symlink_metadata(out.join(format!("{name}-leak")))
            .unwrap()
            .file_type()
            .is_symlink());
        let _ = d.docker(client, &["cp", local.to_str().unwrap(), "cpc:/evil/"]);
        assert_eq!(
            std::fs::read_dir(&target_dir).unwrap().count(),
            0,
            "{client}: nothing on the host"
        );
    }
    ok(d.berth(&["stop", "-t", "0", "cpc"]));
    ok(d.berth(&["cp", "cpc:/data/d20", &o("stopped")]));
    assert_eq!(
        std::fs::read_to_string(out.join("stopped")).unwrap(),
        "from host\n"
    );
    ok(d.berth(&["cp", local.to_str().unwrap(), "cpc:/data/after-stop"]));
    ok(d.berth(&["start", "cpc"]));
    assert_eq!(
        ok(d.berth(&["exec", "cpc", "cat", "/data/after-stop"])),
        "from host"
    );
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
    assert_eq!(code(&ours), 125, "{ours:?}");
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
