//! The API's doors: the unix socket's mode, TCP only with TLS and verified client
//! certificates (the docker CLI and curl as clients), and hostile requests (oversized bodies,
//! malformed JSON, wrong types, deep nesting, garbage) answered with a 4xx while berthd stays
//! up.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use berth_e2e::peers::{free_port, TestCa};
use berth_e2e::{binary, busybox_image, ok, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the API tests run containers: run them as root"
    );
}

#[test]
fn the_unix_socket_is_mode_0660() {
    require_root();
    let d = Berthd::start();
    let meta = std::fs::metadata(d.sock()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    // Group `berth` when the host has one, as docs/daemon.md says; root's otherwise.
    let berth_gid = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"berth")).then(|| f[2].parse::<u32>().unwrap())
        });
    assert_eq!(meta.gid(), berth_gid.unwrap_or(0));
}

#[test]
fn tcp_is_served_only_with_tls_and_verified_client_certificates() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("ca"));
    let (srv_crt, srv_key) = ca.server_cert("server");
    let (cli_crt, cli_key) = ca.client_cert("client");
    let other = TestCa::new(&dir.path().join("other"));
    let (bad_crt, bad_key) = other.client_cert("intruder");
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");

    // Without --tlsverify (or with --tls alone) berthd refuses to start.
    for extra in [vec![], vec!["--tls".to_string()]] {
        let run = tempfile::tempdir().unwrap();
        let mut c = Command::new(binary("berthd"));
        c.arg("-H")
            .arg(format!("unix://{}/s.sock", run.path().display()))
            .args(["-H", &tcp, "--data-root"])
            .arg(run.path().join("data"))
            .arg("--exec-root")
            .arg(run.path().join("exec"))
            .args(["--bridge", "none"])
            .args(&extra);
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}: {err}");
        assert!(err.contains("without --tlsverify"), "{err}");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing listens"
        );
    }

    let args: Vec<String> = [
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        &ca.ca().display().to_string(),
        "--tlscert",
        &srv_crt.display().to_string(),
        "--tlskey",
        &srv_key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _d = Berthd::start_with_args(busybox_image, &args);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let docker = |client: &str, cert: &std::path::Path, key: &std::path::Path, a: &[&str]| {
        Command::new(client)
            .args(["-H", &tcp, "--tlsverify", "--tlscacert"])
            .arg(ca.ca())
            .arg("--tlscert")
            .arg(cert)
            .arg("--tlskey")
            .arg(key)
            .args(a)
            .output()
            .unwrap()
    };
    let berth = binary("berth").display().to_string();
    for client in ["/usr/bin/docker", "/usr/local/bin/docker", berth.as_str()] {
        // The docker CLIs and berth's with the CA's client certificate: version, and a
        // container whose output comes back over the hijacked TLS connection.
        let v = ok(docker(
            client,
            &cli_crt,
            &cli_key,
            &["version", "-f", "{{.Server.Version}}"],
        ));
        assert!(!v.is_empty());
        let out = ok(docker(
            client,
            &cli_crt,
            &cli_key,
            &["run", "--rm", "busybox", "echo", "over-tls"],
        ));
        assert_eq!(out, "over-tls", "{client}");
        // Another CA's certificate is refused in the handshake.
        let out = docker(client, &bad_crt, &bad_key, &["version"]);
        assert!(!out.status.success(), "{client}: another CA's certificate");
    }
    // berth as the docker CLI finds its files: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (a
    // directory with ca.pem, cert.pem and key.pem); without a client certificate it is
    // refused.
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(ca.ca(), certs.join("ca.pem")).unwrap();
    std::fs::copy(&cli_crt, certs.join("cert.pem")).unwrap();
    std::fs::copy(&cli_key, certs.join("key.pem")).unwrap();
    let by_env = |a: &[&str]| {
        Command::new(binary("berth"))
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &certs)
            .args(["-H", &tcp])
            .args(a)
            .output()
            .unwrap()
    };
    assert_eq!(ok(by_env(&["ps", "-aq"])), "");
    std::fs::remove_file(certs.join("cert.pem")).unwrap();
    std::fs::remove_file(certs.join("key.pem")).unwrap();
    assert!(
        !by_env(&["ps"]).status.success(),
        "berth without a client certificate"
    );
    // curl without any client certificate: the handshake fails; with one it gets in.
    let url = format!("https://127.0.0.1:{port}/_ping");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca.ca())
        .arg(&url)
        .output()
        .unwrap();
    assert!(!out.status.success(), "no client certificate");
    let out = ok(Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca.ca())
        .arg("--cert")
        .arg(&cli_crt)
        .arg("--key")
        .arg(&cli_key)
        .arg(&url)
        .output()
        .unwrap());
    assert_eq!(out, "OK");
    // Plain HTTP to the TLS port gets nothing.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("OK"),
        "plain HTTP is not served"
    );
    // A client that connects and never speaks holds up no one.
    let _idle: Vec<_> = (0..20)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let v = ok(docker(
        "/usr/bin/docker",
        &cli_crt,
        &cli_key,
        &["version", "-f", "{{.Server.Version}}"],
    ));
    assert!(!v.is_empty());
}

/// A raw HTTP/1.1 request over berthd's unix socket; the status code.
fn request(d: &Berthd, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before it has read the whole body.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {text:?}"));
    (code, text)
}

#[test]
fn hostile_request_bodies_get_4xx_and_berthd_stays_up() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["run", "-d", "--name", "target", "busybox", "sleep", "300"]));
    let pid = d.pid();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!(
        r#"{{"Image":"busybox","Env":["{}"]}}"#,
        "x".repeat(16 << 20)
    );
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"{\"Image\": ".to_vec()),
        ("not JSON", b"\x00\xff\xfe garbage".to_vec()),
        ("an array", b"[1,2,3]".to_vec()),
        ("null", b"null".to_vec()),
        ("a string", b"\"busybox\"".to_vec()),
        ("deeply nested", deep.into_bytes()),
        (
            "wrong types",
            // A wrong type for a field of each endpoint's body.
            br#"{"Image": 5, "Cmd": {"a": 1}, "HostConfig": {"Memory": "lots"}, "Memory": "lots",
                "Name": 7, "Driver": [1], "Detach": "no", "Container": 5, "username": 5}"#
                .to_vec(),
        ),
        ("over 16 MiB", huge.into_bytes()),
    ];
    let endpoints = [
        ("POST", "/containers/create"),
        ("POST", "/v1.43/containers/create?name=x"),
        ("POST", "/containers/target/update"),
        ("POST", "/containers/target/exec"),
        ("POST", "/exec/nonexistent/start"),
        ("POST", "/networks/create"),
        ("POST", "/networks/bridge/connect"),
        ("POST", "/volumes/create"),
        ("POST", "/auth"),
        ("POST", "/commit?container=target"),
        ("POST", "/containers/target/resize?h=abc&w=-1"),
        ("POST", "/containers/target/kill?signal=NOPE"),
        ("POST", "/containers/target/wait?condition=bogus"),
        ("GET", "/containers/json?filters=%7Bnot-json"),
        ("GET", "/images/json?filters=%5B1%2C2%5D"),
        ("GET", "/containers/target/logs?tail=-x&follow=maybe"),
        ("POST", "/images/load"),
        ("POST", "/build"),
        ("PUT", "/containers/target/archive?path=/tmp"),
    ];
    let mut answers = Vec::new();
    for (method, path) in endpoints {
        for (what, body) in &bodies {
            if path.starts_with("/commit") && *what == "null" {
                // docker's client sends `null` when it has no config to commit with.
                continue;
            }
            let (code, text) = request(&d, method, path, body);
            if path == "/images/load" {
                // dockerd answers 200 once it has the body, and reports a bad archive as an
                // error message in the stream.
                assert!(
                    code == 200 && text.contains("\"errorDetail\""),
                    "{method} {path} with {what}: {code}\n{text}"
                );
                continue;
            }
            assert!(
                (400..500).contains(&code),
                "{method} {path} with {what}: {code}\n{}",
                &text[..text.len().min(600)]
            );
            answers.push(code);
        }
    }
    // Negative sizes, where a body may carry them.
    for (path, body) in [
        (
            "/containers/create",
            &br#"{"Image": "busybox", "HostConfig": {"Memory": -5}}"#[..],
        ),
        (
            "/containers/create",
            br#"{"Image": "busybox", "HostConfig": {"NanoCpus": -1}}"#,
        ),
        (
            "/containers/create",
            br#"{"Image": "busybox", "HostConfig": {"CpuShares": -3}}"#,
        ),
        (
            "/containers/create",
            br#"{"Image": "busybox", "HostConfig": {"CpuQuota": 5}}"#,
        ),
        ("/containers/target/update", br#"{"Memory": -5}"#),
        ("/containers/target/update", br#"{"CpuShares": -3}"#),
    ] {
        let (code, text) = request(&d, "POST", path, body);
        assert_eq!(
            code,
            400,
            "{path} {}: {text}",
            String::from_utf8_lossy(body)
        );
    }
    // Over the limit: 413, before berthd reads it all.
    let (code, _) = request(&d, "POST", "/containers/create", &vec![b' '; 17 << 20]);
    assert_eq!(code, 413);
    // Unknown fields are ignored, as dockerd ignores them (newer clients send fields an older
    // daemon does not know).
    let (code, text) = request(
        &d,
        "POST",
        "/containers/create?name=tolerant",
        br#"{"Image": "busybox", "FieldFromTheFuture": {"x": 1}, "HostConfig": {"AlsoNew": true}}"#,
    );
    assert_eq!(code, 201, "{text}");
    // Still the same berthd, answering, with its container.
    assert_eq!(d.pid(), pid);
    let (code, _) = request(&d, "GET", "/_ping", b"");
    assert_eq!(code, 200);
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.State.Running}}", "target"])),
        "true"
    );
    let log = std::fs::read_to_string(d.dir.path().join("berthd.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{} hostile requests, all 4xx: {:?}",
        answers.len(),
        answers
            .iter()
            .fold(std::collections::BTreeMap::new(), |mut m, c| {
                *m.entry(*c).or_insert(0) += 1;
                m
            })
    );
}
