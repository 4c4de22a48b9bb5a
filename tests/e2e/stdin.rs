//! Piped stdin keeps every byte: multi-megabyte inputs through `berth`, both docker CLIs and
//! a raw hijacked socket, into `run -i` and `exec -i` of a process that starts reading only
//! after its client has sent everything and closed its side (the case that lost all but the
//! first 64 KiB: the pipe was closed at the client's end of file, not once it was drained).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use berth_e2e::{binary, busybox_image, ok, output_with_stdin, Berthd};
use sha2::{Digest, Sha256};

/// 4 MiB of bytes that do not repeat in any short period.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..4 << 20)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 56) as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The container's program: wait until the client is surely done, then hash stdin.
const SLOW_READER: &str = "sleep 1; sha256sum";

/// Runs `cli args` with `input` on its stdin, written and closed before the program in the
/// container starts reading.
fn piped(cli: &str, host: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut c = Command::new(cli);
    c.arg("-H").arg(host).args(args);
    output_with_stdin(c, input)
}

fn clients() -> Vec<String> {
    let docker28 = "/usr/local/bin/docker";
    assert!(
        std::path::Path::new(docker28).exists(),
        "the docker 28 client is expected at {docker28} (scripts/install-deps)"
    );
    vec![
        binary("berth").display().to_string(),
        "/usr/bin/docker".to_string(),
        docker28.to_string(),
    ]
}

#[test]
fn run_and_exec_keep_every_byte_of_piped_stdin() {
    let d = Berthd::start_with(busybox_image);
    let data = payload();
    let want = format!("{}  -\n", sha(&data));
    ok(d.berth(&["run", "-d", "--name", "svc", "busybox", "sleep", "600"]));
    let runs: [&[&str]; 2] = [
        &["run", "-i", "--rm", "busybox", "sh", "-c", SLOW_READER],
        &["exec", "-i", "svc", "sh", "-c", SLOW_READER],
    ];
    for cli in clients() {
        for args in runs {
            let out = piped(&cli, &d.host(), args, &data);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                want,
                "{cli} {} -i: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{cli} {} -i: {out:?}", args[0]);
        }
    }
    // The line count from the issue, through both docker CLIs.
    let lines: String = (1..=20_000).map(|i| format!("{i}\n")).collect();
    for cli in &clients()[1..] {
        let out = piped(
            cli,
            &d.host(),
            &["run", "-i", "--rm", "busybox", "wc", "-l"],
            lines.as_bytes(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "20000",
            "{cli}"
        );
    }
    ok(d.berth(&["rm", "-f", "svc"]));
}

/// One HTTP/1.1 request on a fresh connection; the whole response (`Connection: close`).
fn request(d: &Berthd, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(d.sock()).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    (status, resp)
}

/// The bytes up to the end of the response head.
fn read_head(s: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "the head ended early: {head:?}");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Splits Docker's multiplexed stream into (stdout, stderr).
fn demux(mut raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while raw.len() >= 8 {
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        let body = &raw[8..8 + len];
        match raw[0] {
            1 => out.extend_from_slice(body),
            2 => err.extend_from_slice(body),
            s => panic!("stream {s} in a container's output"),
        }
        raw = &raw[8 + len..];
    }
    assert!(raw.is_empty(), "a partial frame at the end");
    (out, err)
}

/// What the docker CLI does, by hand: create with StdinOnce, hijack attach, start, send
/// everything and half-close, read the output to its end.
#[test]
fn raw_hijacked_attach_keeps_every_byte() {
    let d = Berthd::start_with(busybox_image);
    let data = payload();
    let create = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", SLOW_READER],
        "OpenStdin": true, "StdinOnce": true,
        "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
    });
    let (status, resp) = request(&d, "POST", "/v1.41/containers/create", &create.to_string());
    assert_eq!(status, 201, "{resp}");
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let body = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    let id = serde_json::from_str::<serde_json::Value>(body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut s = UnixStream::connect(d.sock()).unwrap();
    write!(
        s,
        "POST /v1.41/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
         Host: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (status, resp) = request(&d, "POST", &format!("/v1.41/containers/{id}/start"), "");
    assert_eq!(status, 204, "{resp}");
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    writer.join().unwrap();
    let (out, err) = demux(&raw);
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("{}  -\n", sha(&data)),
        "stderr: {}",
        String::from_utf8_lossy(&err)
    );
    let (status, resp) = request(&d, "POST", &format!("/v1.41/containers/{id}/wait"), "");
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"StatusCode\":0"), "{resp}");
    ok(d.berth(&["rm", &id]));
}
