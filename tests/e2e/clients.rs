//! Real clients against berthd, as they run against dockerd: docker-py (PyPI's `docker`),
//! Testcontainers for Node (npm's `testcontainers`) and the docker CLI, for the behaviours
//! they depend on. `scripts/install-deps` installs both libraries under
//! `/opt/berth-test-clients`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use berth_e2e::{busybox_image, ok, Berthd};

const CLIENTS: &str = "/opt/berth-test-clients";

fn daemon() -> Berthd {
    Berthd::start_with(busybox_image)
}

/// Runs a Python program with docker-py pointed at `d`; returns its stdout.
fn python(d: &Berthd, program: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .env("DOCKER_HOST", d.host())
        .env("PYTHONPATH", format!("{CLIENTS}/python"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed (scripts/install-deps installs docker-py under {CLIENTS}/python):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(d: &Berthd, args: &[&str]) -> std::process::Output {
    d.docker("/usr/local/bin/docker", args)
}

/// One HTTP/1.1 request; the status and the body.
fn request(d: &Berthd, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(d.sock()).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// docker-py's `exec_run` of a quick command gets its output, plain, demultiplexed and with a
/// terminal, every time (the output used to race the 101 head and vanish in http.client's
/// buffer).
#[test]
fn docker_py_exec_run_keeps_quick_output() {
    let d = daemon();
    let out = python(
        &d,
        r#"
import docker
c = docker.from_env()
ct = c.containers.run('busybox', 'sleep 600', detach=True)
plain = [ct.exec_run('sh -c "echo x; exit 2"') for _ in range(50)]
print(sum(1 for r in plain if (r.exit_code, r.output) == (2, b'x\n')))
print(ct.exec_run('sh -c "echo out; echo err >&2"', demux=True).output)
print(sum(1 for _ in range(10) if ct.exec_run('echo tty', tty=True).output == b'tty\r\n'))
s = ct.stats(stream=False)
print(type(s).__name__, 'memory_stats' in s)
ct.remove(force=True)
"#,
    );
    assert_eq!(out, "50\n(b'out\\n', b'err\\n')\n10\ndict True", "{out}");
}

/// Testcontainers for Node starts a container with a log wait strategy (it reads the logs with
/// `tail=-1`) and execs in it.
#[test]
fn testcontainers_node_starts_and_waits_for_a_log_line() {
    let d = daemon();
    let dir = Path::new(CLIENTS).join("node");
    assert!(
        dir.join("node_modules/testcontainers").exists(),
        "testcontainers is expected under {} (scripts/install-deps)",
        dir.display()
    );
    let script = r#"
const { GenericContainer, Wait } = require("testcontainers");
(async () => {
  const c = await new GenericContainer("busybox:latest")
    .withCommand(["sh", "-c", "echo starting; sleep 0.2; echo ready; sleep 60"])
    .withWaitStrategy(Wait.forLogMessage("ready"))
    .withStartupTimeout(20000)
    .start();
  const r = await c.exec(["sh", "-c", "echo x; exit 2"]);
  console.log(JSON.stringify([r.output, r.exitCode]));
  await c.stop();
})().catch(e => { console.error("FAILED", e); process.exit(1); });
"#;
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .current_dir(&dir)
        .env("DOCKER_HOST", d.host())
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"["x\n",2]"#);
}

/// Query booleans as dockerd reads them: `pull=False` to /build uses the local base image.
#[test]
fn query_booleans_and_logs_parameters() {
    let d = daemon();
    ok(d.berth(&["run", "--name", "gone", "busybox", "true"]));
    for (v, all) in [
        ("yes", true),
        ("True", true),
        ("1", true),
        ("no", false),
        ("False", false),
        ("none", false),
        ("0", false),
    ] {
        let (st, body) = request(&d, "GET", &format!("/containers/json?all={v}"), b"");
        assert_eq!(st, 200);
        assert_eq!(body.contains("/gone"), all, "all={v}: {body}");
    }
    // A build context: a tar with a Dockerfile FROM the local busybox.
    let mut ctx = tar::Builder::new(Vec::new());
    let df = b"FROM busybox\nRUN echo built > /f\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    ctx.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let ctx = ctx.into_inner().unwrap();
    let (st, body) = request(&d, "POST", "/v1.41/build?t=local:1&pull=False", &ctx);
    assert_eq!(st, 200, "{body}");
    assert!(
        !body.contains("errorDetail"),
        "pull=False must not pull: {body}"
    );
    // logs: tail=-1 is everything; since with a fraction filters by time.
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 1.2; echo two; sleep 60",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let (st, all) = request(&d, "GET", "/containers/talk/logs?stdout=1&tail=-1", b"");
    assert_eq!(st, 200);
    assert!(all.contains("one") && all.contains("two"), "{all}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (st, recent) = request(
        &d,
        "GET",
        &format!("/containers/talk/logs?stdout=1&since={:.3}", now - 1.0),
        b"",
    );
    assert_eq!(st, 200);
    assert!(
        recent.contains("two") && !recent.contains("one"),
        "{recent}"
    );
    ok(d.berth(&["rm", "-f", "talk", "gone"]));
}

/// `ps --filter name=` is a regular expression; swarm endpoints answer as a dockerd outside a
/// swarm; the runtime name is checked.
#[test]
fn filters_swarm_and_runtime_as_dockerd() {
    let d = daemon();
    for n in ["web", "web2", "myweb"] {
        ok(docker(
            &d,
            &["run", "-d", "--name", n, "busybox", "sleep", "600"],
        ));
    }
    let names = |f: &str| {
        let mut v: Vec<String> = ok(docker(&d, &["ps", "--filter", f, "--format", "{{.Names}}"]))
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v.join(" ")
    };
    assert_eq!(names("name=^web$"), "web");
    assert_eq!(names("name=web"), "myweb web web2");
    assert_eq!(names("name=^/web2$"), "web2");
    assert_eq!(names("name=^web[0-9]"), "web2");
    let out = docker(&d, &["swarm", "leave", "--force"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("This node is not part of a swarm"),
        "{out:?}"
    );
    let (st, body) = request(&d, "GET", "/v1.41/services", b"");
    assert_eq!(st, 503);
    assert!(body.contains("This node is not a swarm manager"), "{body}");
    let out = docker(
        &d,
        &["run", "--rm", "--runtime", "nosuch", "busybox", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown or invalid runtime name: nosuch"),
        "{out:?}"
    );
    // `runc`, dockerd's name for its default runtime, is berth's runtime by that name (the
    // default, as on dockerd); `berth` too.
    let out = ok(docker(
        &d,
        &[
            "run",
            "--name",
            "viarunc",
            "--runtime",
            "runc",
            "busybox",
            "echo",
            "ran",
        ],
    ));
    assert_eq!(out.trim(), "ran");
    let rt = ok(docker(
        &d,
        &["inspect", "-f", "{{.HostConfig.Runtime}}", "viarunc"],
    ));
    assert_eq!(rt.trim(), "runc", "the name asked for is kept, as dockerd");
    ok(docker(&d, &["create", "--name", "viadefault", "busybox"]));
    ok(docker(
        &d,
        &[
            "create",
            "--name",
            "viaberth",
            "--runtime",
            "berth",
            "busybox",
        ],
    ));
    let rt = ok(docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.Runtime}}",
            "viadefault",
            "viaberth",
        ],
    ));
    assert_eq!(rt.trim(), "runc\nberth");
    let info = ok(docker(&d, &["info", "-f", "{{.DefaultRuntime}}"]));
    assert_eq!(info.trim(), "runc");
    ok(docker(&d, &["rm", "viadefault", "viaberth"]));
    ok(docker(&d, &["rm", "-f", "web", "web2", "myweb", "viarunc"]));
}

/// LogConfig in inspect; the `none` and `local` drivers; an unknown driver refused as dockerd
/// refuses it; commit's message and author; `cp` of the generated /etc files.
#[test]
fn log_drivers_commit_notes_and_etc_files() {
    let d = daemon();
    ok(docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "jf",
            "busybox",
            "sh",
            "-c",
            "echo hi; sleep 600",
        ],
    ));
    let lc = ok(docker(
        &d,
        &["inspect", "-f", "{{json .HostConfig.LogConfig}}", "jf"],
    ));
    assert_eq!(lc, r#"{"Type":"json-file","Config":{}}"#);
    ok(docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "nl",
            "--log-driver",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo hi; sleep 600",
        ],
    ));
    let out = docker(&d, &["logs", "nl"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("configured logging driver does not support reading"),
        "{out:?}"
    );
    let out = ok(docker(
        &d,
        &[
            "run",
            "--rm",
            "--log-driver",
            "local",
            "busybox",
            "echo",
            "local",
        ],
    ));
    assert_eq!(out, "local");
    let out = docker(
        &d,
        &["run", "--rm", "--log-driver", "nosuch", "busybox", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("logger: no log driver named 'nosuch' is registered"),
        "{out:?}"
    );
    ok(docker(
        &d,
        &[
            "commit",
            "-m",
            "a message",
            "--author",
            "Ann <ann@example.org>",
            "jf",
            "noted:1",
        ],
    ));
    let note = ok(docker(
        &d,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Comment}}|{{.Author}}",
            "noted:1",
        ],
    ));
    assert_eq!(note, "a message|Ann <ann@example.org>");
    let history = ok(docker(
        &d,
        &["history", "--format", "{{.Comment}}", "noted:1"],
    ));
    assert_eq!(history.lines().next(), Some("a message"));
    for f in ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] {
        let inside = ok(docker(&d, &["exec", "jf", "cat", f]));
        let out = docker(&d, &["cp", &format!("jf:{f}"), "-"]);
        assert!(out.status.success(), "{f}: {out:?}");
        let mut a = tar::Archive::new(&out.stdout[..]);
        let mut entry = a.entries().unwrap().next().unwrap().unwrap();
        let mut copied = String::new();
        entry.read_to_string(&mut copied).unwrap();
        assert!(!inside.is_empty(), "{f} is empty inside");
        assert_eq!(copied.trim(), inside, "{f}");
    }
    ok(docker(&d, &["rm", "-f", "jf", "nl"]));
}

/// The detach sequence (docker-py's `detachKeys`, default ctrl-p ctrl-q) ends an attach or an
/// exec's hijacked connection and leaves the container running; the sequence never reaches
/// the container (a terminal would echo `^P`), and bad keys get dockerd's 400.
#[test]
fn docker_py_detaches_with_the_detach_keys() {
    let d = daemon();
    let out = python(
        &d,
        r#"
import docker, socket, time
api = docker.from_env().api
def detach(sock, keys):
    s = sock._sock
    s.sendall(b'hello\n')
    time.sleep(0.3)
    for k in keys:
        s.sendall(k)
        time.sleep(0.3)
    s.settimeout(5)
    data = b''
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return 'closed', data
            data += chunk
    except socket.timeout:
        return 'open', data
ct = api.create_container('busybox', 'cat', stdin_open=True, tty=True, detach=True)
api.start(ct)
running = lambda: api.inspect_container(ct)['State']['Running']
st, data = detach(api.attach_socket(ct, {'stdin': 1, 'stream': 1, 'stdout': 1}), [b'\x10', b'\x11'])
print(st, running(), b'hello' in data, b'^P' in data)
st, data = detach(api.attach_socket(ct, {'stdin': 1, 'stream': 1, 'stdout': 1, 'detachKeys': 'ctrl-x'}), [b'\x10', b'\x18'])
print(st, running(), b'^P' in data)
x = api.exec_create(ct, 'cat', stdin=True, tty=True, stdout=True)
st, data = detach(api.exec_start(x, tty=True, socket=True), [b'\x10', b'\x11'])
print(st, running())
try:
    api.attach_socket(ct, {'stdin': 1, 'stream': 1, 'detachKeys': 'ctrl-1'})
    print('accepted')
except docker.errors.APIError as e:
    print(e.response.status_code)
api.remove_container(ct, force=True)
"#,
    );
    // The second attach detaches on ctrl-x: its ctrl-p went to the container (echoed `^P`).
    assert_eq!(
        out, "closed True True False\nclosed True True\nclosed True\n400",
        "{out}"
    );
}

/// `attach/ws`: attached before the start (as docker-py's `attach_socket(ws=True)` does), a
/// websocket client gets the container's output as unframed binary messages and its messages
/// reach the container's stdin.
#[test]
fn attach_over_a_websocket() {
    let d = daemon();
    let id = ok(docker(
        &d,
        &[
            "create",
            "-i",
            "busybox",
            "sh",
            "-c",
            "printf 'hi there'; read l; echo got $l",
        ],
    ));
    let id = id.trim();
    let stream = UnixStream::connect(d.sock()).unwrap();
    let url = format!("ws://localhost/v1.41/containers/{id}/attach/ws?stdin=1&stdout=1&stream=1");
    let (mut ws, resp) = tungstenite::client(url.as_str(), stream).expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    ok(docker(&d, &["start", id]));
    let mut got = Vec::new();
    let mut sent = false;
    while let Ok(m) = ws.read() {
        match m {
            tungstenite::Message::Binary(b) => got.extend_from_slice(&b),
            tungstenite::Message::Close(_) => break,
            _ => {}
        }
        if !sent && got == b"hi there" {
            ws.send(tungstenite::Message::Binary(b"back\n".to_vec().into()))
                .unwrap();
            sent = true;
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), "hi theregot back\n");
    // An unknown container is refused before the upgrade.
    let stream = UnixStream::connect(d.sock()).unwrap();
    let err = tungstenite::client("ws://localhost/containers/nosuch/attach/ws", stream);
    assert!(
        matches!(&err, Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) if r.status() == 404),
        "{err:?}"
    );
}

/// What docker-py's own integration suite found berthd answering differently from dockerd
/// 20.10, each checked here with the answer dockerd gives (the same program printed these
/// lines against dockerd): an exec created with a terminal has one whatever the start's `Tty`
/// (docker-py starts it with `Tty: false`), its detach keys inspected as dockerd writes them,
/// `wait` on a restarting container returns at its first exit, `diff` shows the container's
/// own changes only, `commit` records the parent, an image saved by id loads by id, a bad
/// archive is an ImageLoadError, stats carry the bridge interface, and a build takes extra
/// hosts and shows a step's stderr in red.
#[test]
fn docker_py_suite_findings() {
    let d = daemon();
    let out = python(
        &d,
        r#"
import docker, io, time
c = docker.from_env()
api = c.api
# An exec created with a terminal has one, whatever the start's Tty says.
ct = c.containers.run('busybox', 'sleep 600', detach=True)
x = api.exec_create(ct.id, 'sh -c "echo hello"', tty=True)
print(api.exec_start(x))
x = api.exec_create(ct.id, 'cat', stdin=True, tty=True, stdout=True, detach_keys='ctrl-x')
print(api.exec_inspect(x)['DetachKeys'])
# A restarting container: wait returns at its first exit.
r = c.containers.run('busybox', 'sleep 1', detach=True, restart_policy={'Name': 'always'}, network_mode='none')
t = time.time()
print(r.wait(timeout=20)['StatusCode'], time.time() - t < 10)
r.remove(force=True)
# diff shows the container's own changes only.
d = c.containers.run('busybox', 'touch /test', detach=True)
d.wait()
print(d.diff() == [{'Path': '/test', 'Kind': 1}])
# commit records the parent.
img = d.commit()
print(img.attrs['Parent'] == c.images.get('busybox').id)
# save by id: the load names the id, not the tags.
loaded = c.images.load(c.images.get('busybox').save())
print(len(loaded), loaded[0].id == c.images.get('busybox').id)
try:
    c.images.load(b'not an archive')
    print('loaded?')
except docker.errors.ImageLoadError:
    print('ImageLoadError')
# stats of a container on the bridge: networks by interface.
s = ct.stats(stream=False)
print(sorted(s.get('networks', {}).keys()))
# build: extra hosts, and a step's stderr in red.
script = io.BytesIO(b'FROM busybox\nRUN grep -q "1.2.3.4\textra.test" /etc/hosts && echo oops >&2\n')
lines = [m.get('stream') for m in api.build(fileobj=script, extra_hosts={'extra.test': '1.2.3.4'}, decode=True, nocache=True)]
print('\x1b[91moops\n\x1b[0m' in lines)
for o in (d, ct):
    o.remove(force=True)
api.remove_image(img.id)
"#,
    );
    assert_eq!(
        out, "b'hello\\r\\n'\nGA==\n0 True\nTrue\nTrue\n1 True\nImageLoadError\n['eth0']\nTrue",
        "{out}"
    );
}

/// `attach?logs=1&stream=0` (docker-py's `attach(logs=True, stream=False)`): the log so far on
/// the chosen streams, then the end of the connection; without `logs` nothing. dockerd 20.10
/// never ends that connection (docker-py's `test_attach_no_stream` times out on it).
#[test]
fn attach_replays_the_log_and_ends_without_stream() {
    let d = daemon();
    let out = python(
        &d,
        r#"
import docker
c = docker.from_env()
ct = c.api.create_container('busybox', ['sh', '-c', 'echo out; sleep 0.1; echo err >&2'])
c.api.start(ct)
c.api.wait(ct)
print(repr(c.api.attach(ct, stream=False, logs=True)))
print(repr(c.api.attach(ct, stream=False, logs=True, stderr=False)))
print(repr(c.api.attach(ct, stream=False, logs=False)))
c.api.remove_container(ct)
"#,
    );
    assert_eq!(out.trim(), "b'out\\nerr\\n'\nb'out\\n'\nb''", "{out}");
}
