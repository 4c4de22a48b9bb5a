//! `run` and `create` pull a missing image, as the docker CLI does (`--pull missing`, the
//! default), or every time (`always`), or never; the pull's progress goes to stderr and `-q`
//! silences it. The same through the docker 28 CLI against berthd, which does the pull on
//! its side after berthd's "No such image". The images come from a docker-registry on
//! loopback.

use std::process::{Command, Output};

use berth_e2e::peers::{Registry, RegistrySetup};
use berth_e2e::{busybox_image, code, ok, stderr, stdout, Berthd};

const DOCKER28: &str = "/usr/local/bin/docker";

/// `berth args` with a private client config (no credentials of the machine's).
fn berth(d: &Berthd, cfg: &std::path::Path, args: &[&str]) -> Output {
    d.berth_in(cfg, args)
}

#[test]
fn run_and_create_pull_as_the_docker_cli_does() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the pull tests run containers: run them as root"
    );
    let reg = Registry::start(RegistrySetup::default());
    let d = Berthd::start_with(busybox_image);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path();
    let image = format!("{}/pulled:1", reg.host());
    ok(berth(&d, cfg, &["tag", "busybox", &image]));
    ok(berth(&d, cfg, &["push", &image]));
    let rmi = || ok(berth(&d, cfg, &["rmi", &image]));
    rmi();

    // missing (the default): said, pulled (progress on stderr), run.
    let out = berth(
        &d,
        cfg,
        &["run", "--rm", "--network", "none", &image, "echo", "hi"],
    );
    assert_eq!(
        (code(&out), stdout(&out).trim()),
        (0, "hi"),
        "{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("Unable to find image '{image}' locally\n")),
        "{err}"
    );
    assert!(
        err.contains(&format!("Status: Downloaded newer image for {image}")),
        "{err}"
    );
    // Present now: no pull, nothing on stderr.
    let out = berth(
        &d,
        cfg,
        &["run", "--rm", "--network", "none", &image, "true"],
    );
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));

    // never: the daemon's error, exit 125, nothing pulled.
    rmi();
    let out = berth(&d, cfg, &["run", "--pull", "never", "--rm", &image, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("Unable to find image"),
        "{}",
        stderr(&out)
    );
    let out = berth(&d, cfg, &["image", "inspect", &image]);
    assert_ne!(code(&out), 0, "--pull never pulled nothing");

    // -q: pulled without a word; create prints only the id.
    let out = berth(&d, cfg, &["create", "-q", &image, "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let id = stdout(&out).trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    ok(berth(&d, cfg, &["rm", &id]));

    // always: pulls though the image is there (the registry says it is up to date).
    let out = berth(&d, cfg, &["create", "--pull", "always", &image, "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("Status: Image is up to date for {image}")),
        "{}",
        stderr(&out)
    );
    ok(berth(&d, cfg, &["rm", stdout(&out).trim()]));

    // A wrong value: docker's words, exit 125.
    let out = berth(&d, cfg, &["run", "--pull", "sometimes", &image, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains(
            "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
        ),
        "{}",
        stderr(&out)
    );

    // The docker CLI against berthd: the same dance, berthd's 404 then its pull.
    rmi();
    let out = Command::new(DOCKER28)
        .env("DOCKER_CONFIG", cfg)
        .args([
            "-H",
            &d.host(),
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "echo",
            "hi",
        ])
        .output()
        .unwrap();
    assert_eq!(
        (code(&out), stdout(&out).trim()),
        (0, "hi"),
        "{}",
        stderr(&out)
    );
    let docker_err = stderr(&out);
    assert!(
        docker_err.starts_with(&format!("Unable to find image '{image}' locally\n"))
            && docker_err.contains(&format!("Status: Downloaded newer image for {image}")),
        "{docker_err}"
    );
}
