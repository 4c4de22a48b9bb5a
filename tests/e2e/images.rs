//! Images in berthd: what berth-image put in the data root is what `docker images` and
//! `docker info` (both docker clients) see through berthd.

use berth_e2e::{binary, Berthd};
use std::process::Command;

/// Writes a rootfs tarball holding `files` and imports it with berth-image into `data` as
/// `reference`, with extra `berth-image import` arguments.
fn import(data: &std::path::Path, files: &[(&str, &str)], reference: &str, extra: &[&str]) {
    let src = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let p = src.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let tar = src.path().join("rootfs.tar");
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    assert!(Command::new("tar")
        .arg("-C")
        .arg(src.path())
        .arg("-cf")
        .arg(&tar)
        .args(&names)
        .status()
        .unwrap()
        .success());
    let out = Command::new(binary("berth-image"))
        .arg("--data-root")
        .arg(data)
        .arg("import")
        .args(extra)
        .arg(&tar)
        .arg(reference)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn docker(client: &str, d: &Berthd, args: &[&str]) -> String {
    let out = Command::new(client)
        .arg("-H")
        .arg(d.host())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{client} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn docker_images_and_info_show_the_store() {
    // A tiny rootfs tarball, imported with a label.
    let d = Berthd::start_with(|data| {
        import(
            data,
            &[("etc/hello", "hi")],
            "e2e/imported:v1",
            &["-c", "LABEL team=berth"],
        )
    });
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let list = docker(
            client,
            &d,
            &["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
        );
        assert_eq!(list, "e2e/imported:v1 2B", "{client}");
    }
    let labels = docker(
        "/usr/bin/docker",
        &d,
        &["images", "--format", "{{.ID}}", "--no-trunc"],
    );
    assert!(labels.starts_with("sha256:"), "{labels}");
    let info = docker(
        "/usr/bin/docker",
        &d,
        &[
            "info",
            "--format",
            "{{.Images}} {{.Driver}} {{.ServerVersion}} {{.CgroupDriver}}",
        ],
    );
    assert_eq!(
        info,
        format!("1 overlay {} cgroupfs", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn docker_tag_inspect_and_rmi_through_berthd() {
    let d = Berthd::start_with(|data| import(data, &[("f", "x")], "e2e/base:1", &[]));
    let dk = "/usr/bin/docker";
    docker(dk, &d, &["tag", "e2e/base:1", "e2e/copy:2"]);
    let tags = docker(
        dk,
        &d,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoTags}} {{.Os}} {{len .RootFS.Layers}}",
            "e2e/copy:2",
        ],
    );
    assert_eq!(tags, r#"["e2e/base:1","e2e/copy:2"] linux 1"#);
    assert_eq!(
        docker(dk, &d, &["rmi", "e2e/copy:2"]),
        "Untagged: e2e/copy:2"
    );
    let out = docker(dk, &d, &["rmi", "e2e/base:1"]);
    assert!(
        out.starts_with("Untagged: e2e/base:1\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(docker(dk, &d, &["images", "-q"]), "");
    let missing = Command::new(dk)
        .arg("-H")
        .arg(d.host())
        .args(["rmi", "e2e/none:1"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such image: e2e/none:1"));
}

#[test]
fn docker_load_through_berthd() {
    // An archive written by berth-image from a separate store.
    let work = tempfile::tempdir().unwrap();
    let other = work.path().join("other-store");
    import(&other, &[("f", "loaded")], "e2e/loaded:1", &[]);
    let archive = work.path().join("image.tar");
    let out = Command::new(binary("berth-image"))
        .arg("--data-root")
        .arg(&other)
        .args(["save", "-o", archive.to_str().unwrap(), "e2e/loaded:1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let d = Berthd::start();
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let out = docker(client, &d, &["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out, "Loaded image: e2e/loaded:1", "{client}");
    }
    assert_eq!(
        docker(
            "/usr/bin/docker",
            &d,
            &["images", "--format", "{{.Repository}}:{{.Tag}}"]
        ),
        "e2e/loaded:1"
    );
    // A broken archive is refused with the daemon's message (as dockerd: in the load's
    // stream, which the CLI prints before it exits 1), and nothing is left spooled.
    let garbage = work.path().join("garbage.tar");
    std::fs::write(&garbage, "not a tar").unwrap();
    let out = Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(d.host())
        .args(["load", "-i", garbage.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("archive"), "{said}");
    let spooled: Vec<_> = std::fs::read_dir(d.dir.path().join("data/content/ingest"))
        .unwrap()
        .collect();
    assert!(spooled.is_empty(), "spool files left: {spooled:?}");
}

#[test]
fn image_filters_as_docker_images_takes_them() {
    let d = Berthd::start_with(|data| {
        import(data, &[("a", "1")], "e2e/alpha:1", &["-c", "LABEL tier=db"]);
        import(
            data,
            &[("b", "22")],
            "e2e/beta:2",
            &["-c", "LABEL tier=web"],
        );
        import(data, &[("c", "333")], "other/gamma:3", &[]);
    });
    let berth = |args: &[&str]| {
        let out = d.berth(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v.join(" ")
    };
    let fmt = "{{.Repository}}:{{.Tag}}";
    for (args, want) in [
        (vec!["-f", "reference=e2e/*"], "e2e/alpha:1 e2e/beta:2"),
        (vec!["-f", "reference=*/gamma:3"], "other/gamma:3"),
        (vec!["e2e/beta"], "e2e/beta:2"),
        (vec!["-f", "label=tier"], "e2e/alpha:1 e2e/beta:2"),
        (vec!["-f", "label=tier=web"], "e2e/beta:2"),
        (
            vec!["-f", "label=tier", "-f", "reference=*/alpha"],
            "e2e/alpha:1",
        ),
        (vec!["-f", "dangling=true"], ""),
        (
            vec!["-f", "dangling=false"],
            "e2e/alpha:1 e2e/beta:2 other/gamma:3",
        ),
    ] {
        let mut a = vec!["images", "--format", fmt];
        a.extend_from_slice(&args);
        assert_eq!(berth(&a), want, "berth {args:?}");
        let mut a = vec!["images", "--format", fmt];
        a.extend_from_slice(&args);
        let mut got: Vec<String> = docker("/usr/bin/docker", &d, &a)
            .lines()
            .map(str::to_string)
            .collect();
        got.sort();
        assert_eq!(got.join(" "), want, "docker {args:?}");
    }
    // Moving gamma's tag to alpha's image leaves gamma's image dangling.
    docker(
        "/usr/bin/docker",
        &d,
        &["tag", "e2e/alpha:1", "other/gamma:3"],
    );
    assert_eq!(
        berth(&["images", "--format", fmt, "-f", "dangling=true"]),
        "<none>:<none>"
    );
    assert_eq!(
        docker(
            "/usr/bin/docker",
            &d,
            &["images", "--format", fmt, "-f", "dangling=true"]
        ),
        "<none>:<none>"
    );
    d.refused(&["images", "-f", "colour=blue"], "invalid filter 'colour'");
    d.refused(
        &["images", "-f", "dangling=maybe"],
        "Invalid filter 'dangling=maybe'",
    );
}
