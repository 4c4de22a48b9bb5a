//! The docker CLIs (Debian's 20.10 and docker 28) driving a real berthd through the ordinary
//! container commands, and `run -it` through a real pty.

use std::process::Command;

use berth_e2e::{binary, busybox_image, code, eventually, ok, stderr, stdout, Berthd};

fn daemon() -> Berthd {
    Berthd::start_with(busybox_image)
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
