//! berthd's CRI v1 socket driven by crictl, Kubernetes' CRI client (cri-tools v1.37.0, from
//! the Go module proxy; scripts/install-deps installs it): what the runtime is, its status and
//! cgroup driver, and the image service — list, status, pull from a loopback registry (also
//! with credentials), removal — over the same store the Docker API shows. Pod and container
//! RPCs answer Unimplemented with a reason so far (issue 21 is under way).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use berth_e2e::peers::{Registry, RegistrySetup};
use berth_e2e::{busybox_image, ok, stderr, stdout, Berthd};
use serde_json::Value;

const CRICTL: &str = "/opt/berth-test-clients/bin/crictl";

fn crictl(d: &Berthd, args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(CRICTL).exists(),
        "crictl is missing: scripts/install-deps installs it"
    );
    let sock = format!("unix://{}", d.dir.path().join("exec/cri.sock").display());
    Command::new(CRICTL)
        .args(["--runtime-endpoint", &sock, "--image-endpoint", &sock])
        .args(["--timeout", "60s"])
        .args(args)
        .output()
        .unwrap()
}

fn json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn crictl_sees_the_runtime_and_its_images() {
    let d = Berthd::start_with(busybox_image);
    let sock = d.dir.path().join("exec/cri.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o660,
        "the CRI socket is the daemon's: root and the berth group"
    );

    let v = ok(crictl(&d, &["version"]));
    assert!(v.contains("RuntimeName:  berth"), "{v}");
    assert!(v.contains("RuntimeApiVersion:  v1"), "{v}");

    let info = json(crictl(&d, &["info", "-o", "json"]));
    let cond = |t: &str| {
        info["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t}: {info}"))
    };
    assert_eq!(cond("RuntimeReady")["status"], true);
    assert_eq!(cond("NetworkReady")["status"], false);
    assert_eq!(cond("NetworkReady")["reason"], "NetworkPluginNotReady");
    assert_eq!(info["config"]["cgroupDriver"], "cgroupfs");

    // The Docker API's busybox, named as the kubelet names it.
    let id = ok(d.berth(&["inspect", "-f", "{{.Id}}", "busybox"]));
    let images = json(crictl(&d, &["images", "-o", "json"]));
    let list = images["images"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{images}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["repoTags"][0], "docker.io/library/busybox:latest");
    assert_eq!(list[0]["uid"]["value"], "0", "the image's user is root");
    let st = json(crictl(&d, &["inspecti", "-o", "json", "busybox"]));
    assert_eq!(st["status"]["id"], id.as_str());
    assert!(st["info"]["imageSpec"]["config"]["Cmd"].is_array(), "{st}");
    let fs = json(crictl(&d, &["imagefsinfo", "-o", "json"]));
    let used: u64 = fs["status"]["imageFilesystems"][0]["usedBytes"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(used > 1_000_000, "busybox's layer counts: {fs}");

    // A pull from a registry on loopback lands in the store the Docker API shows; a removal
    // takes every name; a missing image is no error for the CRI's status, but is for inspecti.
    let reg = Registry::start(RegistrySetup::default());
    let image = format!("{}/cri/bb:1", reg.host());
    ok(d.berth(&["tag", "busybox", &image]));
    ok(d.berth(&["push", &image]));
    ok(d.berth(&["rmi", &image]));
    let out = ok(crictl(&d, &["pull", &image]));
    assert_eq!(out, format!("Image is up to date for {id}"));
    let tags = ok(d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(tags.lines().any(|l| l == image), "{tags}");
    ok(d.berth(&["tag", "busybox", "also:named"]));
    ok(crictl(&d, &["rmi", &image]));
    let tags = ok(d.berth(&["images", "-q"]));
    assert_eq!(tags, "", "rmi removed the image with all its names");
    let out = crictl(&d, &["inspecti", &image]);
    assert!(!out.status.success(), "{}", stdout(&out));
    ok(crictl(&d, &["pull", &image]));
    let pulled = json(crictl(&d, &["images", "-o", "json"]));
    assert_eq!(pulled["images"][0]["repoTags"][0], image.as_str());
    assert!(
        pulled["images"][0]["repoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{}/cri/bb@sha256:", reg.host()))),
        "{pulled}"
    );

    // What is not served yet says so.
    let cfg = d.dir.path().join("pod.json");
    std::fs::write(
        &cfg,
        r#"{"metadata": {"name": "p", "namespace": "default", "uid": "u1", "attempt": 0}}"#,
    )
    .unwrap();
    let out = crictl(&d, &["runp", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not implemented yet"),
        "{}",
        stderr(&out)
    );
}

/// Credentials reach the registry: refused without them, pulled with `--creds`.
#[test]
fn crictl_pulls_with_credentials() {
    let d = Berthd::start_with(busybox_image);
    let reg = Registry::start(RegistrySetup {
        htpasswd: Some(("kube", "let-me-in")),
        ..Default::default()
    });
    let image = format!("{}/private/bb:1", reg.host());
    let cfg = tempfile::tempdir().unwrap();
    let berth = |args: &[&str]| {
        Command::new(berth_e2e::binary("berth"))
            .env("DOCKER_CONFIG", cfg.path())
            .args(["-H", &d.host()])
            .args(args)
            .output()
            .unwrap()
    };
    ok(berth(&["tag", "busybox", &image]));
    let login = berth_e2e::output_with_stdin(
        {
            let mut c = Command::new(berth_e2e::binary("berth"));
            c.env("DOCKER_CONFIG", cfg.path())
                .args(["-H", &d.host(), "login", "-u", "kube", "--password-stdin"])
                .arg(reg.host());
            c
        },
        b"let-me-in\n",
    );
    ok(login);
    ok(berth(&["push", &image]));
    ok(berth(&["rmi", &image]));
    let out = crictl(&d, &["pull", &image]);
    assert!(!out.status.success(), "pulled without credentials");
    let out = crictl(&d, &["pull", "--creds", "kube:wrong", &image]);
    assert!(!out.status.success(), "pulled with a wrong password");
    ok(crictl(&d, &["pull", "--creds", "kube:let-me-in", &image]));
    let out = ok(crictl(&d, &["images", "-q"]));
    assert_eq!(out.lines().count(), 1, "{out}");
}
