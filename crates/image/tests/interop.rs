//! Round trips with real peers: a private dockerd 20.10, podman 4.3, skopeo and umoci. Image
//! ids and layer diff ids must survive, and the rootfs must hold exactly the expected files.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn two_layer_archive(dir: &Path, tag: &str) -> (std::path::PathBuf, berth_image::Digest) {
    let l1 = layer(&[
        ("etc/", None),
        ("etc/hostname", Some(b"peer\n")),
        ("etc/old", Some(b"old")),
    ]);
    let l2 = layer(&[
        ("etc/.wh.old", Some(b"")),
        ("data/", None),
        ("data/file", Some(b"payload")),
    ]);
    let (a, id) = docker_archive(&[l1, l2], tag, &["/bin/sh"]);
    let f = dir.join("input.tar");
    write_file(&f, &a);
    (f, id)
}

fn expect_rootfs(root: &Path, image: &str) {
    let m = mount_image(root, image);
    assert_eq!(
        tree(&m.target),
        ["data", "data/file", "etc", "etc/hostname"]
    );
    assert_eq!(
        std::fs::read(m.target.join("data/file")).unwrap(),
        b"payload"
    );
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private dockerd for this test; stopped on drop.
struct Dockerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Dockerd {
    fn start() -> Self {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}/docker.sock", d.display()))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["--bridge=none", "--iptables=false"])
            .stdout(std::fs::File::create(d.join("log")).unwrap())
            .stderr(std::fs::File::create(d.join("log.err")).unwrap())
            .spawn()
            .expect("dockerd is missing: install Debian's docker.io (.ci/run does)");
        let sock = d.join("docker.sock");
        let mut ok = false;
        for _ in 0..150 {
            if sock.exists()
                && Command::new("/usr/bin/docker")
                    .arg("-H")
                    .arg(format!("unix://{}", sock.display()))
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            ok,
            "dockerd did not come up: {}",
            std::fs::read_to_string(d.join("log.err")).unwrap_or_default()
        );
        Dockerd { dir, child }
    }

    fn docker(&self) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H")
            .arg(format!("unix://{}/docker.sock", self.dir.path().display()));
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("root"))
            .output();
    }
}

#[test]
fn docker_save_berth_load_berth_save_docker_load() {
    let dk = Dockerd::start();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let (input, id) = two_layer_archive(d.path(), "peer/docker:1");
    run_ok(dk.docker().arg("load").arg("-i").arg(&input));
    let docker_id = run_ok(
        dk.docker()
            .args(["inspect", "--format", "{{.Id}}", "peer/docker:1"]),
    );
    assert_eq!(docker_id.trim(), id.as_str());
    let diff_ids = run_ok(dk.docker().args([
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "peer/docker:1",
    ]));
    // docker save → berth load
    let saved = d.path().join("docker-save.tar");
    run_ok(
        dk.docker()
            .arg("save")
            .arg("-o")
            .arg(&saved)
            .arg("peer/docker:1"),
    );
    assert_eq!(
        bi_ok(&root, &["load", "-i", saved.to_str().unwrap()]).trim(),
        "Loaded image: peer/docker:1"
    );
    assert!(bi_ok(&root, &["images", "--no-trunc"]).contains(id.as_str()));
    expect_rootfs(&root, "peer/docker:1");
    // berth save → docker load (after removing it from docker)
    run_ok(dk.docker().args(["rmi", "peer/docker:1"]));
    let out = d.path().join("berth-save.tar");
    bi_ok(
        &root,
        &["save", "-o", out.to_str().unwrap(), "peer/docker:1"],
    );
    assert!(
        run_ok(dk.docker().arg("load").arg("-i").arg(&out)).contains("Loaded image: peer/docker:1")
    );
    assert_eq!(
        run_ok(
            dk.docker()
                .args(["inspect", "--format", "{{.Id}}", "peer/docker:1"])
        )
        .trim(),
        id.as_str()
    );
    assert_eq!(
        run_ok(dk.docker().args([
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "peer/docker:1"
        ])),
        diff_ids
    );
}

fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"));
    c
}

#[test]
fn podman_save_berth_load_berth_save_podman_load() {
    require_root();
    let d = tempfile::Builder::new()
        .prefix("berth-img-podman-")
        .tempdir_in("/tmp")
        .unwrap();
    let p = d.path();
    std::fs::write(p.join("containers.conf"), format!("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\ntmp_dir = \"{0}/tmp\"\n[network]\nnetwork_config_dir = \"{0}/net\"\n", p.display())).unwrap();
    std::fs::write(
        p.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/proot\"\nrunroot = \"{0}/prun\"\n",
            p.display()
        ),
    )
    .unwrap();
    std::fs::write(
        p.join("registries.conf"),
        "unqualified-search-registries = []\n",
    )
    .unwrap();
    let root = p.join("store");
    let (input, id) = two_layer_archive(p, "localhost/peer:2");
    run_ok(podman(p).arg("load").arg("-i").arg(&input));
    let saved = p.join("podman-save.tar");
    run_ok(
        podman(p)
            .arg("save")
            .arg("-o")
            .arg(&saved)
            .arg("localhost/peer:2"),
    );
    bi_ok(&root, &["load", "-i", saved.to_str().unwrap()]);
    assert!(bi_ok(&root, &["images", "--no-trunc"]).contains(id.as_str()));
    expect_rootfs(&root, "localhost/peer:2");
    run_ok(podman(p).args(["rmi", "localhost/peer:2"]));
    let out = p.join("berth-save.tar");
    bi_ok(
        &root,
        &["save", "-o", out.to_str().unwrap(), "localhost/peer:2"],
    );
    run_ok(podman(p).arg("load").arg("-i").arg(&out));
    let pid = run_ok(podman(p).args(["inspect", "--format", "{{.Id}}", "localhost/peer:2"]));
    assert_eq!(format!("sha256:{}", pid.trim()), id.as_str());
    let _ = podman(p).args(["system", "reset", "-f"]).output();
    let _ = Command::new("umount")
        .arg("-R")
        .arg(p.join("proot/overlay"))
        .output();
}

#[test]
fn skopeo_oci_layout_round_trip_and_umoci_unpack() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let (input, _) = two_layer_archive(d.path(), "peer/oci:3");
    // skopeo writes an OCI layout (gzip layers) from the docker-archive.
    let layout = d.path().join("layout");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg("-q")
            .arg(format!("docker-archive:{}", input.display()))
            .arg(format!("oci:{}:v3", layout.display())),
    );
    bi_ok(
        &root,
        &["load", "-i", layout.to_str().unwrap(), "--name", "peer/oci"],
    );
    // skopeo rewrites the config when it converts to OCI: the id is its config digest.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(mdigest)).unwrap())
            .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let inspect: serde_json::Value =
        serde_json::from_str(&bi_ok(&root, &["inspect", "peer/oci:v3"])).unwrap();
    assert_eq!(inspect["Id"], config_digest.as_str());
    expect_rootfs(&root, "peer/oci:v3");
    // The same image as an OCI archive (a tar of the layout).
    let archive = d.path().join("image.oci.tar");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg("-q")
            .arg(format!("docker-archive:{}", input.display()))
            .arg(format!("oci-archive:{}:v4", archive.display())),
    );
    let root2 = d.path().join("store2");
    assert!(bi_ok(
        &root2,
        &[
            "load",
            "-i",
            archive.to_str().unwrap(),
            "--name",
            "peer/ociarchive"
        ]
    )
    .contains("peer/ociarchive:v4"));
    expect_rootfs(&root2, "peer/ociarchive:v4");
    // berth writes a layout that skopeo and umoci read.
    let out = d.path().join("out");
    bi_ok(
        &root,
        &["save", "--oci", "-o", out.to_str().unwrap(), "peer/oci:v3"],
    );
    let ours: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:v3", out.display())),
    ))
    .unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:v3", layout.display())),
    ))
    .unwrap();
    assert_eq!(ours["Layers"], theirs["Layers"], "the same layer blobs");
    let bundle = d.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:v3", out.display()))
            .arg(&bundle),
    );
    assert_eq!(
        tree(&bundle.join("rootfs")),
        ["data", "data/file", "etc", "etc/hostname"]
    );
}

#[test]
fn loads_a_layout_that_umoci_wrote() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let layout = d.path().join("layout");
    let bundle = d.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    );
    run_ok(
        Command::new("umoci")
            .arg("new")
            .arg("--image")
            .arg(format!("{}:base", layout.display())),
    );
    run_ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:base", layout.display()))
            .arg(&bundle),
    );
    std::fs::create_dir_all(bundle.join("rootfs/app")).unwrap();
    write_file(&bundle.join("rootfs/app/hello"), b"from umoci");
    run_ok(
        Command::new("umoci")
            .arg("repack")
            .arg("--image")
            .arg(format!("{}:base", layout.display()))
            .arg(&bundle),
    );
    assert!(bi_ok(
        &root,
        &[
            "load",
            "-i",
            layout.to_str().unwrap(),
            "--name",
            "peer/umoci"
        ]
    )
    .contains("peer/umoci:base"));
    let m = mount_image(&root, "peer/umoci:base");
    assert_eq!(
        std::fs::read(m.target.join("app/hello")).unwrap(),
        b"from umoci"
    );
}
