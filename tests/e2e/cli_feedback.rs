//! The feedback people expect from the CLI, as the docker 28 CLI gives it (issue 24, item 12):
//! `load`'s per-layer progress (from the daemon, compared with a real dockerd's messages),
//! `cp`'s "Successfully copied" and `build`'s "Sending build context" — each on a terminal
//! (a real pty) and off one.

use std::path::Path;
use std::process::Command;

use berth_e2e::peers::Dockerd;
use berth_e2e::{binary, busybox_image, ok, on_a_terminal, stdout, Berthd};
use serde_json::Value;

const DOCKER28: &str = "/usr/local/bin/docker";

/// The JSON messages of `POST /images/load` (with `quiet` as given) on `sock`.
fn load_messages(sock: &Path, version: &str, archive: &Path, quiet: &str) -> Vec<Value> {
    let out = Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(sock)
        .args(["-X", "POST", "-H", "Content-Type: application/x-tar"])
        .arg("--data-binary")
        .arg(format!("@{}", archive.display()))
        .arg(format!("http://d{version}/images/load?quiet={quiet}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The busybox image as a docker-archive, made by a berthd of its own.
fn busybox_archive(dir: &Path) -> std::path::PathBuf {
    let d = Berthd::start_with(busybox_image);
    let p = dir.join("busybox.tar");
    ok(d.berth(&["save", "-o", p.to_str().unwrap(), "busybox:latest"]));
    p
}

/// What a load's messages come to: the layers told of (id, last current, total), each
/// message's status, and the closing stream lines.
type Summary = (Vec<(String, u64, u64)>, Vec<String>, Vec<String>);

fn summary(messages: &[Value]) -> Summary {
    let mut layers: Vec<(String, u64, u64)> = Vec::new();
    let mut statuses = Vec::new();
    let mut streams = Vec::new();
    for m in messages {
        if let Some(s) = m["stream"].as_str() {
            streams.push(s.to_string());
            continue;
        }
        statuses.push(m["status"].as_str().unwrap_or_default().to_string());
        let id = m["id"].as_str().unwrap_or_default().to_string();
        let (c, t) = (
            m["progressDetail"]["current"].as_u64().unwrap_or(0),
            m["progressDetail"]["total"].as_u64().unwrap_or(0),
        );
        assert!(c <= t && c > 0, "{m}");
        assert!(
            m["progress"].as_str().is_some_and(|p| p.starts_with('[')),
            "{m}"
        );
        match layers.iter_mut().find(|l| l.0 == id) {
            Some(l) => {
                assert!(c >= l.1, "progress goes forward: {m}");
                l.1 = c;
            }
            None => layers.push((id, c, t)),
        }
    }
    statuses.dedup();
    (layers, statuses, streams)
}

#[test]
fn load_tells_each_layers_progress_as_dockerd_does() {
    let work = tempfile::tempdir().unwrap();
    let archive = busybox_archive(work.path());
    let dockerd = Dockerd::start();
    let dsock = dockerd.dir.path().join("docker.sock");
    let d = Berthd::start();

    // Through the API: the same layers (the bottom layer's chain id is its diff id, so
    // the ids match), read to the same size, then the same closing line; nothing but that
    // line when quiet, or when the layer is already there.
    let reference = summary(&load_messages(&dsock, "/v1.41", &archive, "0"));
    assert_eq!(reference.1, ["Loading layer"], "{reference:?}");
    assert_eq!(reference.0.len(), 1, "{reference:?}");
    let seen = summary(&load_messages(&d.sock(), "", &archive, "0"));
    assert_eq!(seen, reference);
    let again =
        |sock: &Path, v: &str, quiet: &str| summary(&load_messages(sock, v, &archive, quiet));
    assert_eq!(again(&d.sock(), "", "0"), again(&dsock, "/v1.41", "0"));
    assert_eq!(again(&d.sock(), "", "0").0, []);
    ok(d.berth(&["rmi", "busybox"]));
    ok(d.berth(&["image", "prune", "-af"]));
    let quiet = again(&d.sock(), "", "1");
    assert_eq!((quiet.0.len(), &quiet.2), (0, &reference.2));

    // On a terminal, both CLIs show the layer's line and then what was loaded; off one,
    // only what was loaded (the CLIs ask the daemon to be quiet then).
    let id = &reference.0[0].0;
    let a = archive.to_str().unwrap();
    let host = d.host();
    for cli in [DOCKER28, binary("berth").to_str().unwrap()] {
        ok(d.berth(&["rmi", "busybox"]));
        ok(d.berth(&["image", "prune", "-af"]));
        let (screen, code) = on_a_terminal(&[cli, "-H", &host, "load", "-i", a]);
        assert_eq!(code, 0, "{cli}: {screen}");
        assert!(
            screen.contains(&format!("{id}: Loading layer")),
            "{cli}: {screen:?}"
        );
        assert!(
            screen.ends_with("Loaded image: busybox:latest\r\n"),
            "{cli}: {screen:?}"
        );
        ok(d.berth(&["rmi", "busybox"]));
        ok(d.berth(&["image", "prune", "-af"]));
        let out = Command::new(cli)
            .args(["-H", &host, "load", "-i", a])
            .output()
            .unwrap();
        assert_eq!(stdout(&out).trim(), "Loaded image: busybox:latest", "{cli}");
        // `-q` quiets the progress, not the result.
        let (screen, _) = on_a_terminal(&[cli, "-H", &host, "load", "-q", "-i", a]);
        assert_eq!(screen, "Loaded image: busybox:latest\r\n", "{cli}");
    }
}

#[test]
fn cp_and_build_say_what_they_did_as_docker_does() {
    let d = Berthd::start_with(busybox_image);
    let host = d.host();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "files",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /f; mkdir /d; echo hi > /d/a; sleep 300",
    ]));
    assert!(berth_e2e::eventually(10, || d
        .berth(&["exec", "files", "test", "-f", "/d/a"])
        .status
        .success()));
    let work = tempfile::tempdir().unwrap();
    let w = |n: &str| work.path().join(n).display().to_string();
    std::fs::write(w("up"), "x\n").unwrap();
    let berth = binary("berth");
    let berth = berth.to_str().unwrap();
    // (arguments, what docker 28 said on a terminal; `{}` is the client's mark)
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["files:/f".into(), w("f-{}")],
            format!("Successfully copied 4.61kB to {}\r\n", w("f-{}")),
        ),
        (
            vec!["files:/d".into(), w("d-{}")],
            format!("Successfully copied 2.56kB to {}\r\n", w("d-{}")),
        ),
        (
            vec![w("up"), "files:/up-{}".into()],
            "Successfully copied 2.05kB to files:/up-{}\r\n".into(),
        ),
        (vec!["files:/f".into(), "-".into()], String::new()),
    ];
    for (mark, cli) in [("docker", DOCKER28), ("berth", berth)] {
        for (args, want) in &cases {
            let args: Vec<String> = args.iter().map(|a| a.replace("{}", mark)).collect();
            let mut argv = vec![cli, "-H", &host, "cp"];
            argv.extend(args.iter().map(String::as_str));
            let (screen, code) = on_a_terminal(&argv);
            assert_eq!(code, 0, "{cli} {args:?}: {screen:?}");
            let want = want.replace("{}", mark);
            if want.is_empty() {
                assert!(!screen.contains("Successfully"), "{cli} {args:?}");
            } else {
                assert_eq!(screen, want, "{cli} {args:?}");
            }
        }
        // Off a terminal, and with -q, nothing is said.
        let out = Command::new(cli)
            .args(["-H", &host, "cp", "files:/f", &w(&format!("g-{mark}"))])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty() && out.stdout.is_empty());
        let (screen, _) = on_a_terminal(&[cli, "-H", &host, "cp", "-q", "files:/f", &w("q")]);
        assert_eq!(screen, "", "{cli}");
    }

    // The classic builder's first line, the context's size as docker's tar has it.
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo hi > /x\n").unwrap();
    std::fs::write(ctx.join("f"), "data\n").unwrap();
    let first_line = |cli: &str| {
        let out = Command::new(cli)
            .env("DOCKER_BUILDKIT", "0")
            .args(["-H", &host, "build", "-t", "said", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cli}: {out:?}");
        let s = stdout(&out);
        s[..s.find('\n').map_or(s.len(), |n| n + 1)].to_string()
    };
    let docker_said = first_line(DOCKER28);
    assert_eq!(
        docker_said,
        "Sending build context to Docker daemon  3.072kB\r\r\n"
    );
    assert_eq!(first_line(berth), docker_said);
    let q = ok(d.berth(&["build", "-q", ctx.to_str().unwrap()]));
    assert!(q.starts_with("sha256:") && !q.contains('\n'), "{q}");
}
