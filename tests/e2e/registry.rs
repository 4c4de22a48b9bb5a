//! Registries end to end: the real `berth` CLI and berthd against Debian's docker-registry on
//! loopback (TLS from a test CA, htpasswd basic auth, bearer tokens), with images put there
//! and taken back by real peers (skopeo, a private dockerd, the docker CLIs through berthd),
//! and against a hostile registry that lies, loops, breaks and never ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_e2e::peers::{
    sha256_hex, Dockerd, Hostile, HostileRegistry, Registry, RegistrySetup, TestCa, TokenServer,
    REFRESH_TOKEN,
};
use berth_e2e::{binary, ok, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the registry tests run containers and need root"
    );
}

/// A docker-archive of busybox (scripts/busybox-image), as `docker save` writes it.
fn busybox_archive(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/busybox-image");
    ok(Command::new(script).arg(&out).output().unwrap());
    out
}

fn berth(d: &Berthd, cfg: &Path, args: &[&str]) -> Output {
    d.berth_in(cfg, args)
}

fn berth_stdin(d: &Berthd, cfg: &Path, args: &[&str], input: &str) -> Output {
    berth_env(d, cfg, &[], args, input)
}

/// `berth` with extra environment variables and `input` on its stdin.
fn berth_env(d: &Berthd, cfg: &Path, env: &[(&str, &str)], args: &[&str], input: &str) -> Output {
    let mut c = Command::new(binary("berth"));
    c.env("DOCKER_CONFIG", cfg)
        .envs(env.iter().copied())
        .arg("-H")
        .arg(d.host())
        .args(args);
    berth_e2e::output_with_stdin(c, input.as_bytes())
}

/// `run --rm --network none IMAGE ARGS...`: its output, trimmed.
fn run_rm(d: &Berthd, cfg: &Path, image: &str, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none", image];
    a.extend_from_slice(args);
    ok(berth(d, cfg, &a)).trim().to_string()
}

fn fails(out: Output, want: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected a failure mentioning {want:?}; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains(want), "stderr should mention {want:?}: {err}");
    err
}

fn skopeo(args: &[&str]) -> String {
    ok(Command::new("skopeo").args(args).output().unwrap())
}

/// The manifest digest skopeo sees for `docker://reference`.
fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let mut a = vec!["inspect"];
    a.extend_from_slice(extra);
    let r = format!("docker://{reference}");
    a.push(&r);
    let v: serde_json::Value = serde_json::from_str(&skopeo(&a)).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// `Digest: sha256:...` from pull output.
fn printed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in {out}"))
        .trim()
        .to_string()
}

/// `<tag>: digest: sha256:... size: N` from push output.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.split_once(": digest: ")
                .map(|(_, r)| r.split(' ').next().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("no digest line in {out}"))
}

fn certs_dir_for(root: &Path, host: &str, ca: &TestCa) -> PathBuf {
    let d = root.join(host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(ca.ca(), d.join("ca.crt")).unwrap();
    d
}

#[test]
fn tls_basic_auth_login_pull_push_with_skopeo_and_docker_clis() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&tmp.path().join("ca"));
    let reg = Registry::start(RegistrySetup {
        tls: Some(&ca),
        htpasswd: Some(("tester", "s3cret")),
        ..RegistrySetup::default()
    });
    let host = reg.host();
    let certs = tmp.path().join("certs");
    let host_certs = certs_dir_for(&certs, &host, &ca);
    let archive = busybox_archive(tmp.path());
    // skopeo puts the image there, over verified TLS with the credentials.
    skopeo(&[
        "copy",
        "--dest-cert-dir",
        host_certs.to_str().unwrap(),
        "--dest-creds",
        "tester:s3cret",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{host}/app:1"),
    ]);
    let creds = [
        "--creds",
        "tester:s3cret",
        "--cert-dir",
        host_certs.to_str().unwrap(),
    ];
    let source_digest = skopeo_digest(&format!("{host}/app:1"), &creds);

    let cfg = serde_json::json!({"certs-dir": certs}).to_string();
    let d = Berthd::start_with_config(|_| {}, &cfg);
    let dcfg = tmp.path().join("docker-config");
    let image = format!("{host}/app:1");

    fails(
        berth(&d, &dcfg, &["pull", &image]),
        "no basic auth credentials",
    );
    fails(
        berth_stdin(
            &d,
            &dcfg,
            &["login", "-u", "tester", "--password-stdin", &host],
            "wrong\n",
        ),
        "unauthorized",
    );
    assert!(
        !dcfg.join("config.json").exists(),
        "a failed login stores nothing"
    );
    let out = ok(berth_stdin(
        &d,
        &dcfg,
        &["login", "-u", "tester", "--password-stdin", &host],
        "s3cret\n",
    ));
    assert!(out.contains("Login Succeeded"), "{out}");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dcfg.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        stored["auths"][&host]["auth"], "dGVzdGVyOnMzY3JldA==",
        "docker's format: base64(user:password)"
    );

    let out = ok(berth(&d, &dcfg, &["pull", &image]));
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(printed_digest(&out), source_digest, "{out}");
    assert!(out.trim_end().ends_with(&image), "{out}");
    assert_eq!(
        run_rm(&d, &dcfg, &image, &["echo", "pulled over tls"]),
        "pulled over tls"
    );
    let rd = ok(berth(
        &d,
        &dcfg,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &image,
        ],
    ));
    assert!(rd.contains(&format!("{host}/app@{source_digest}")), "{rd}");

    // Push under a new name: a cross-repository mount, the same manifest digest.
    ok(berth(
        &d,
        &dcfg,
        &["tag", &image, &format!("{host}/copy:2")],
    ));
    let out = ok(berth(&d, &dcfg, &["push", &format!("{host}/copy:2")]));
    assert!(out.contains("Mounted from app"), "{out}");
    assert_eq!(pushed_digest(&out), source_digest);
    assert_eq!(
        skopeo_digest(&format!("{host}/copy:2"), &creds),
        source_digest
    );

    // Both docker CLIs log in, pull and push through berthd.
    for (i, client) in ["/usr/bin/docker", "/usr/local/bin/docker"]
        .iter()
        .enumerate()
    {
        let ccfg = tmp.path().join(format!("docker-cli-{i}"));
        let mut c = Command::new(client)
            .env("DOCKER_CONFIG", &ccfg)
            .args([
                "-H",
                &d.host(),
                "login",
                "-u",
                "tester",
                "--password-stdin",
                &host,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), b"s3cret\n").unwrap();
        let out = ok(c.wait_with_output().unwrap());
        assert!(out.contains("Login Succeeded"), "{client}: {out}");
        let docker = |args: &[&str]| {
            Command::new(client)
                .env("DOCKER_CONFIG", &ccfg)
                .arg("-H")
                .arg(d.host())
                .args(args)
                .output()
                .unwrap()
        };
        ok(docker(&["rmi", &format!("{host}/copy:2")]));
        let out = ok(docker(&["pull", &format!("{host}/copy:2")]));
        assert!(out.contains(&source_digest), "{client}: {out}");
        let target = format!("{host}/from-docker-cli-{i}:1");
        ok(docker(&["tag", &image, &target]));
        let out = ok(docker(&["push", &target]));
        assert!(
            out.contains(&format!("digest: {source_digest}")),
            "{client}: {out}"
        );
    }

    // Without the CA the certificate is refused (TLS to a loopback registry is verified).
    let strict = Berthd::start();
    fails(berth(&strict, &dcfg, &["pull", &image]), "certificate");

    let out = ok(berth(&d, &dcfg, &["logout", &host]));
    assert!(
        out.contains(&format!("Removing login credentials for {host}")),
        "{out}"
    );
    fails(
        berth(&d, &dcfg, &["pull", &image]),
        "no basic auth credentials",
    );
}

#[test]
fn bearer_tokens_from_a_token_service() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let ts = TokenServer::start("tok", "en-pass");
    let reg = Registry::start(RegistrySetup {
        token: Some((ts.realm(), ts.cert.clone())),
        ..RegistrySetup::default()
    });
    let host = reg.host();
    let archive = busybox_archive(tmp.path());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "tok:en-pass",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{host}/tok/app:1"),
    ]);
    let digest = skopeo_digest(
        &format!("{host}/tok/app:1"),
        &["--tls-verify=false", "--creds", "tok:en-pass"],
    );
    let d = Berthd::start();
    let cfg = tmp.path().join("cfg");
    let image = format!("{host}/tok/app:1");
    let refused_before = ts.refused.load(std::sync::atomic::Ordering::SeqCst);
    fails(berth(&d, &cfg, &["pull", &image]), "unauthorized");
    assert!(
        ts.refused.load(std::sync::atomic::Ordering::SeqCst) > refused_before,
        "the anonymous token request was refused"
    );
    fails(
        berth_stdin(
            &d,
            &cfg,
            &["login", "-u", "tok", "--password-stdin", &host],
            "nope",
        ),
        "incorrect username or password",
    );
    ok(berth_stdin(
        &d,
        &cfg,
        &["login", "-u", "tok", "--password-stdin", &host],
        "en-pass",
    ));
    let out = ok(berth(&d, &cfg, &["pull", &image]));
    assert_eq!(printed_digest(&out), digest);
    ok(berth(
        &d,
        &cfg,
        &["tag", &image, &format!("{host}/tok/other:1")],
    ));
    let out = ok(berth(&d, &cfg, &["push", &format!("{host}/tok/other:1")]));
    assert_eq!(pushed_digest(&out), digest);
    assert_eq!(
        skopeo_digest(
            &format!("{host}/tok/other:1"),
            &["--tls-verify=false", "--creds", "tok:en-pass"]
        ),
        digest
    );
    // A credential helper (docker's protocol) instead of the file: credHelpers for this host.
    let helper_dir = tmp.path().join("helper");
    let store_dir = tmp.path().join("helper-store");
    std::fs::create_dir_all(&helper_dir).unwrap();
    std::fs::create_dir_all(&store_dir).unwrap();
    let helper = helper_dir.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            r#"#!/usr/bin/env python3
import hashlib, json, os, sys
D = {store:?}
verb, data = sys.argv[1], sys.stdin.read()
def path(server):
    return os.path.join(D, hashlib.sha256(server.strip().encode()).hexdigest())
if verb == "store":
    v = json.loads(data)
    open(path(v["ServerURL"]), "w").write(json.dumps(v))
elif verb in ("get", "erase"):
    p = path(data)
    if not os.path.exists(p):
        print("credentials not found in native keychain")
        sys.exit(1)
    if verb == "get":
        print(open(p).read())
    else:
        os.remove(p)
"#,
            store = store_dir.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hcfg = tmp.path().join("helper-cfg");
    std::fs::create_dir_all(&hcfg).unwrap();
    std::fs::write(
        hcfg.join("config.json"),
        serde_json::json!({"credHelpers": {&host: "berthtest"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_helper =
        |args: &[&str], input: &str| berth_env(&d, &hcfg, &[("PATH", path.as_str())], args, input);
    ok(with_helper(
        &["login", "-u", "tok", "--password-stdin", &host],
        "en-pass",
    ));
    assert_eq!(
        std::fs::read_dir(&store_dir).unwrap().count(),
        1,
        "the helper stored the credentials"
    );
    let file = std::fs::read_to_string(hcfg.join("config.json")).unwrap();
    assert!(
        !file.contains("auths"),
        "nothing in the file itself: {file}"
    );
    ok(with_helper(&["rmi", &image], ""));
    ok(with_helper(&["pull", &image], ""));
    ok(with_helper(&["logout", &host], ""));
    assert_eq!(
        std::fs::read_dir(&store_dir).unwrap().count(),
        0,
        "the helper erased them"
    );
    // An identity token in config.json (what a docker login to an OAuth2 registry leaves): sent
    // as an OAuth2 refresh token.
    let icfg = tmp.path().join("identity-cfg");
    std::fs::create_dir_all(&icfg).unwrap();
    std::fs::write(
        icfg.join("config.json"),
        serde_json::json!({"auths": {&host: {"identitytoken": REFRESH_TOKEN}}}).to_string(),
    )
    .unwrap();
    ok(berth(&d, &icfg, &["rmi", &image]));
    ok(berth(&d, &icfg, &["pull", &image]));
    assert!(
        ts.refresh_grants.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the refresh grant was used"
    );
    let scopes = ts.scopes.lock().unwrap().clone();
    assert!(
        scopes.iter().any(|s| s == "repository:tok/app:pull"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:tok/other:pull,push"),
        "{scopes:?}"
    );
    assert!(ts.issued.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

/// A layout directory's blob.
fn put_blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let hex = sha256_hex(data);
    std::fs::write(layout.join("blobs/sha256").join(&hex), data).unwrap();
    (format!("sha256:{hex}"), data.len())
}

/// A gzip'd tar of `files` (name, content) plus the diff id of the plain tar.
fn gz_layer(dir: &Path, files: &[(&str, &str)]) -> (Vec<u8>, String) {
    let src = tempfile::tempdir_in(dir).unwrap();
    for (n, c) in files {
        std::fs::write(src.path().join(n), c).unwrap();
    }
    let tar = dir.join(format!("layer-{}.tar", sha256_hex(files[0].1.as_bytes())));
    ok(Command::new("tar")
        .arg("-C")
        .arg(src.path())
        .arg("--owner=0")
        .arg("--group=0")
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap());
    let plain = std::fs::read(&tar).unwrap();
    let gz = ok(Command::new("gzip").arg("-nkf").arg(&tar).output().unwrap());
    let _ = gz;
    let data = std::fs::read(tar.with_extension("tar.gz")).unwrap();
    (data, format!("sha256:{}", sha256_hex(&plain)))
}

/// An OCI layout with one index of three images (linux/amd64, linux/arm64, linux/arm/v7):
/// busybox's layer plus a layer whose `/arch` names the platform.
fn multi_arch_layout(dir: &Path, busybox: &Path) -> PathBuf {
    let layout = dir.join("multi");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    // busybox's layer from the archive (uncompressed).
    let x = dir.join("bbx");
    std::fs::create_dir_all(&x).unwrap();
    ok(Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(busybox)
        .output()
        .unwrap());
    let base = std::fs::read(x.join("layer/layer.tar")).unwrap();
    let base_diff = format!("sha256:{}", sha256_hex(&base));
    let (base_d, base_n) = put_blob(&layout, &base);
    let mut manifests = Vec::new();
    for (arch, variant) in [("amd64", ""), ("arm64", ""), ("arm", "v7")] {
        let name = if variant.is_empty() {
            arch.to_string()
        } else {
            format!("{arch}{variant}")
        };
        let (gz, diff) = gz_layer(dir, &[("arch", &format!("{name}\n"))]);
        let (ld, ln) = put_blob(&layout, &gz);
        let mut cfg = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [base_diff, diff]},
        });
        if !variant.is_empty() {
            cfg["variant"] = serde_json::json!(variant);
        }
        let (cd, cn) = put_blob(&layout, cfg.to_string().as_bytes());
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": base_d, "size": base_n},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ln},
            ],
        });
        let (md, mn) = put_blob(&layout, m.to_string().as_bytes());
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if !variant.is_empty() {
            platform["variant"] = serde_json::json!(variant);
        }
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn, "platform": platform,
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let (idx_d, idx_n) = put_blob(&layout, index.to_string().as_bytes());
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx_d, "size": idx_n,
        "annotations": {"org.opencontainers.image.ref.name": "multi"},
    }]});
    std::fs::write(layout.join("index.json"), top.to_string()).unwrap();
    layout
}

#[test]
fn multi_arch_index_platform_choice_and_zstd_layers() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistrySetup::default());
    let host = reg.host();
    let archive = busybox_archive(tmp.path());
    let layout = multi_arch_layout(tmp.path(), &archive);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{host}/multi:1"),
    ]);
    let index_digest = format!(
        "sha256:{}",
        sha256_hex(
            skopeo(&[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{host}/multi:1")
            ])
            .as_bytes()
        )
    );
    let d = Berthd::start();
    let cfg = tmp.path().join("cfg");
    let image = format!("{host}/multi:1");
    let arch_of = |platform: Option<&str>| -> (String, String) {
        let mut a = vec!["pull"];
        if let Some(p) = platform {
            a.extend(["--platform", p]);
        }
        a.push(&image);
        let out = ok(berth(&d, &cfg, &a));
        assert_eq!(
            printed_digest(&out),
            index_digest,
            "the repo digest is the index's: {out}"
        );
        let inspected = ok(berth(
            &d,
            &cfg,
            &["image", "inspect", "--format", "{{.Architecture}}", &image],
        ));
        let content = run_rm(&d, &cfg, &image, &["cat", "/arch"]);
        (inspected.trim().to_string(), content)
    };
    let dist = ok(Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(d.sock())
        .arg(format!("http://berth/distribution/{image}/json"))
        .output()
        .unwrap());
    let dist: serde_json::Value = serde_json::from_str(&dist).unwrap();
    assert_eq!(
        dist["Descriptor"]["digest"],
        index_digest.as_str(),
        "{dist}"
    );
    assert_eq!(
        dist["Platforms"].as_array().map(Vec::len),
        Some(3),
        "{dist}"
    );
    assert_eq!(arch_of(None), ("amd64".into(), "amd64".into()));
    assert_eq!(
        arch_of(Some("linux/arm64")),
        ("arm64".into(), "arm64".into())
    );
    assert_eq!(
        arch_of(Some("linux/arm/v7")),
        ("arm".into(), "armv7".into())
    );
    fails(
        berth(&d, &cfg, &["pull", "--platform", "linux/s390x", &image]),
        "no matching manifest for linux/s390x",
    );
    fails(
        berth(&d, &cfg, &["pull", "--platform", "linux//x", &image]),
        "invalid platform",
    );

    // zstd layers, as skopeo writes them (into a layout, then copied as they are).
    let zl = tmp.path().join("zstd-layout");
    skopeo(&[
        "copy",
        "--dest-compress",
        "--dest-compress-format",
        "zstd",
        &format!("docker-archive:{}", archive.display()),
        &format!("oci:{}:z", zl.display()),
    ]);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:z", zl.display()),
        &format!("docker://{host}/zstd:1"),
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/zstd:1"),
    ]);
    assert!(raw.contains("tar+zstd"), "skopeo wrote zstd layers: {raw}");
    let zimage = format!("{host}/zstd:1");
    ok(berth(&d, &cfg, &["pull", &zimage]));
    assert_eq!(run_rm(&d, &cfg, &zimage, &["echo", "zstd ok"]), "zstd ok");
}

#[test]
fn docker_and_berth_exchange_images_through_a_registry() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistrySetup::default());
    let host = reg.host();
    let archive = busybox_archive(tmp.path());
    let dockerd = Dockerd::start();
    ok(dockerd
        .docker()
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .unwrap());
    let from_docker = format!("{host}/from-docker:1");
    ok(dockerd
        .docker()
        .args(["tag", "busybox:latest", &from_docker])
        .output()
        .unwrap());
    let out = ok(dockerd
        .docker()
        .args(["push", &from_docker])
        .output()
        .unwrap());
    let docker_digest = pushed_digest(&out);

    // Small chunks: the layer goes up as a sequence of PATCH requests.
    let d = Berthd::start_with_config(|_| {}, r#"{"push-chunk-size": 262144}"#);
    let cfg = tmp.path().join("cfg");
    let out = ok(berth(&d, &cfg, &["pull", &from_docker]));
    assert_eq!(printed_digest(&out), docker_digest);
    assert_eq!(
        run_rm(&d, &cfg, &from_docker, &["echo", "from docker"]),
        "from docker"
    );

    // An image berth made itself (a commit): pushed, then pulled by docker and skopeo.
    ok(berth(
        &d,
        &cfg,
        &[
            "run",
            "--name",
            "maker",
            "--network",
            "none",
            &from_docker,
            "sh",
            "-c",
            "echo made by berth > /made",
        ],
    ));
    let from_berth = format!("{host}/from-berth:1");
    ok(berth(&d, &cfg, &["commit", "maker", &from_berth]));
    let out = ok(berth(&d, &cfg, &["push", &from_berth]));
    let berth_digest = pushed_digest(&out);
    assert!(out.contains("Pushed"), "{out}");
    assert_eq!(
        skopeo_digest(&from_berth, &["--tls-verify=false"]),
        berth_digest
    );
    let out = ok(dockerd
        .docker()
        .args(["pull", &from_berth])
        .output()
        .unwrap());
    assert!(
        out.contains(&berth_digest),
        "docker pulled the same manifest: {out}"
    );
    let out = ok(dockerd
        .docker()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &from_berth,
            "cat",
            "/made",
        ])
        .output()
        .unwrap());
    assert_eq!(out.trim(), "made by berth");
    // A second push finds every blob there already.
    let out = ok(berth(&d, &cfg, &["push", &from_berth]));
    assert!(out.contains("Layer already exists"), "{out}");
    assert_eq!(pushed_digest(&out), berth_digest);
    // Every tag of a repository, both ways.
    ok(berth(
        &d,
        &cfg,
        &["tag", &from_berth, &format!("{host}/from-berth:2")],
    ));
    let out = ok(berth(
        &d,
        &cfg,
        &["push", "-a", &format!("{host}/from-berth")],
    ));
    assert!(
        out.contains("1: digest:") && out.contains("2: digest:"),
        "{out}"
    );
    ok(berth(&d, &cfg, &["rmi", &format!("{host}/from-berth:2")]));
    ok(berth(&d, &cfg, &["rmi", "-f", &from_berth]));
    let out = ok(berth(
        &d,
        &cfg,
        &["pull", "-a", &format!("{host}/from-berth")],
    ));
    assert!(
        out.contains("1: Pulling from from-berth") && out.contains("2: Pulling from from-berth"),
        "{out}"
    );
    let images = ok(berth(
        &d,
        &cfg,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    ));
    assert!(
        images.contains(&format!("{host}/from-berth:2")) && images.contains(&from_berth),
        "{images}"
    );
    // A tag that does not exist, a reference that is not one.
    fails(
        berth(&d, &cfg, &["pull", &format!("{host}/from-berth:nope")]),
        "manifest unknown",
    );
    fails(
        berth(&d, &cfg, &["pull", "Not/Valid"]),
        "invalid reference format",
    );
    fails(
        berth(&d, &cfg, &["push", &format!("{host}/absent:1")]),
        "An image does not exist locally with the tag",
    );
    // By digest.
    let by_digest = format!("{host}/from-berth@{berth_digest}");
    ok(berth(&d, &cfg, &["rmi", "-f", &from_berth]));
    let out = ok(berth(&d, &cfg, &["pull", &by_digest]));
    assert!(out.contains(&by_digest), "{out}");
    assert_eq!(
        run_rm(&d, &cfg, &by_digest, &["cat", "/made"]),
        "made by berth"
    );
}

fn hostile_image(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let busybox = busybox_archive(dir);
    let x = dir.join("bbx");
    std::fs::create_dir_all(&x).unwrap();
    ok(Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(&busybox)
        .output()
        .unwrap());
    let plain = std::fs::read(x.join("layer/layer.tar")).unwrap();
    ok(Command::new("gzip")
        .arg("-nkf")
        .arg(x.join("layer/layer.tar"))
        .output()
        .unwrap());
    let gz = std::fs::read(x.join("layer/layer.tar.gz")).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&plain))]},
    })
    .to_string()
    .into_bytes();
    (gz, config)
}

#[test]
fn hostile_registries_never_corrupt_the_store() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (layer, config) = hostile_image(tmp.path());
    let d = Berthd::start();
    let cfg = tmp.path().join("cfg");
    let blobs = d.dir.path().join("data/content/blobs/sha256");
    for (mode, want) in [
        (Hostile::BadDigest, "digest mismatch"),
        (Hostile::SizeTooLarge, "the manifest says"),
        (Hostile::SizeTooSmall, "the manifest says"),
        (Hostile::EndlessBlob, "digest mismatch"),
        (
            Hostile::EndlessManifest,
            "more than the 4194304 bytes allowed",
        ),
        (Hostile::RedirectLoop, "redirect"),
    ] {
        let h = HostileRegistry::start(mode, layer.clone(), config.clone());
        let err = fails(berth(&d, &cfg, &["pull", &h.reference()]), want);
        let images = ok(berth(&d, &cfg, &["images"]));
        assert!(
            !images.contains("hostile"),
            "{mode:?} left an image: {images}\n{err}"
        );
        let layer_hex = h.layer_digest.trim_start_matches("sha256:");
        assert!(
            !blobs.join(layer_hex).exists(),
            "{mode:?} committed a bad layer blob"
        );
        let snapshots: Vec<_> = std::fs::read_dir(d.dir.path().join("data/snapshots"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("tmp-"))
            .collect();
        assert!(
            snapshots.is_empty(),
            "{mode:?} left unpack directories: {snapshots:?}"
        );
    }
    // A connection that breaks half-way, then a 500: retried, resumed with a range request.
    let h = HostileRegistry::start(Hostile::BreaksThenRecovers, layer.clone(), config.clone());
    let out = ok(berth(&d, &cfg, &["pull", &h.reference()]));
    assert!(out.contains("Pull complete"), "{out}");
    let log = h.log.lock().unwrap().clone();
    let layer_gets: Vec<_> = log
        .iter()
        .filter(|(_, p, _)| p.ends_with(&h.layer_digest))
        .collect();
    assert!(layer_gets.len() >= 3, "{layer_gets:?}");
    let half = layer.len() / 2;
    assert!(
        layer_gets
            .iter()
            .any(|(_, _, r)| r.as_deref() == Some(&format!("bytes={half}-"))),
        "resumed from the byte where the connection broke: {layer_gets:?}"
    );
    assert_eq!(
        run_rm(&d, &cfg, &h.reference(), &["echo", "intact"]),
        "intact"
    );
    // A plain redirect to a blob store is followed.
    ok(berth(&d, &cfg, &["rmi", &h.reference()]));
    ok(berth(&d, &cfg, &["image", "prune", "-a", "-f"]));
    let h = HostileRegistry::start(Hostile::Redirect, layer, config);
    ok(berth(&d, &cfg, &["pull", &h.reference()]));
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|(_, p, _)| p.starts_with("/store/")),
        "{log:?}"
    );
}

/// Starts `berth pull` of the Slow hostile registry's image and waits until the first third of
/// the layer is in its ingest: (the client, the ingest's data file, that third's size).
fn stalled_pull(
    d: &Berthd,
    cfg: &Path,
    h: &HostileRegistry,
    layer_len: usize,
) -> (std::process::Child, PathBuf, u64) {
    let pull = Command::new(binary("berth"))
        .env("DOCKER_CONFIG", cfg)
        .args(["-H", &d.host(), "pull", &h.reference()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ingest = d
        .dir
        .path()
        .join("data/content/ingest")
        .join(format!(
            "pull-{}",
            h.layer_digest.trim_start_matches("sha256:")
        ))
        .join("data");
    let third = (layer_len / 3) as u64;
    for _ in 0..500 {
        if std::fs::metadata(&ingest).is_ok_and(|m| m.len() >= third) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (pull, ingest, third)
}

#[test]
fn an_interrupted_pull_resumes_after_berthd_is_killed() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (layer, config) = hostile_image(tmp.path());
    let h = HostileRegistry::start(Hostile::Slow, layer.clone(), config);
    let mut d = Berthd::start();
    let cfg = tmp.path().join("cfg");
    let (mut pull, ingest, third) = stalled_pull(&d, &cfg, &h, layer.len());
    assert_eq!(
        std::fs::metadata(&ingest).map(|m| m.len()).unwrap_or(0),
        third,
        "a third arrived, then the registry stalled"
    );
    // Ctrl-C of the client and a SIGKILL of the daemon mid-layer.
    let _ = pull.kill();
    let _ = pull.wait();
    d.restart();
    assert_eq!(
        std::fs::metadata(&ingest).unwrap().len(),
        third,
        "the partial blob survived"
    );
    h.release.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = ok(berth(&d, &cfg, &["pull", &h.reference()]));
    assert!(out.contains("Pull complete"), "{out}");
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|(_, p, r)| p.ends_with(&h.layer_digest)
            && r.as_deref() == Some(&format!("bytes={third}-"))),
        "the second pull asked only for the missing bytes: {log:?}"
    );
    assert!(!ingest.exists(), "the ingest was committed");
    assert_eq!(
        run_rm(&d, &cfg, &h.reference(), &["echo", "resumed"]),
        "resumed"
    );
}

#[test]
fn mirrors_from_hosts_toml_are_tried_first() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let upstream = Registry::start(RegistrySetup::default());
    let mirror = Registry::start(RegistrySetup::default());
    let archive = busybox_archive(tmp.path());
    // Only the mirror has tag 1.
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{}/mirrored/app:1", mirror.host()),
    ]);
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(certs.join(upstream.host())).unwrap();
    std::fs::write(
        certs.join(upstream.host()).join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            upstream.host(),
            mirror.host()
        ),
    )
    .unwrap();
    let d = Berthd::start_with_config(|_| {}, &serde_json::json!({"certs-dir": certs}).to_string());
    let cfg = tmp.path().join("cfg");
    let out = ok(berth(
        &d,
        &cfg,
        &["pull", &format!("{}/mirrored/app:1", upstream.host())],
    ));
    assert!(out.contains("Pull complete"), "served by the mirror: {out}");
    // Tag 2 is only upstream: the mirror says unknown, the upstream answers.
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{}/mirrored/app:2", upstream.host()),
    ]);
    let out = ok(berth(
        &d,
        &cfg,
        &["pull", &format!("{}/mirrored/app:2", upstream.host())],
    ));
    assert!(
        out.contains("Already exists"),
        "the shared layer is not fetched again: {out}"
    );
    // Pushes go upstream, never to the mirror.
    ok(berth(
        &d,
        &cfg,
        &[
            "tag",
            &format!("{}/mirrored/app:1", upstream.host()),
            &format!("{}/pushed:1", upstream.host()),
        ],
    ));
    ok(berth(
        &d,
        &cfg,
        &["push", &format!("{}/pushed:1", upstream.host())],
    ));
    skopeo_digest(
        &format!("{}/pushed:1", upstream.host()),
        &["--tls-verify=false"],
    );
    let on_mirror = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/pushed:1", mirror.host()),
        ])
        .output()
        .unwrap();
    assert!(
        !on_mirror.status.success(),
        "the push did not go to the mirror"
    );
}

#[test]
fn client_certificates_and_insecure_registries() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&tmp.path().join("ca"));
    let reg = Registry::start(RegistrySetup {
        tls: Some(&ca),
        client_certs: true,
        ..RegistrySetup::default()
    });
    let host = reg.host();
    let (cert, key) = ca.client_cert("client");
    let with_client = tmp.path().join("with-client");
    let hc = certs_dir_for(&with_client, &host, &ca);
    std::fs::copy(&cert, hc.join("client.cert")).unwrap();
    std::fs::copy(&key, hc.join("client.key")).unwrap();
    let archive = busybox_archive(tmp.path());
    skopeo(&[
        "copy",
        "--dest-cert-dir",
        hc.to_str().unwrap(),
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{host}/app:1"),
    ]);
    let image = format!("{host}/app:1");
    let cfg = tmp.path().join("cfg");
    // The CA alone: the registry wants a client certificate.
    let ca_only = tmp.path().join("ca-only");
    certs_dir_for(&ca_only, &host, &ca);
    let d = Berthd::start_with_config(
        |_| {},
        &serde_json::json!({"certs-dir": ca_only}).to_string(),
    );
    let out = berth(&d, &cfg, &["pull", &image]);
    assert!(!out.status.success(), "no client certificate, no pull");
    drop(d);
    // CA and client certificate: pulled.
    let d = Berthd::start_with_config(
        |_| {},
        &serde_json::json!({"certs-dir": with_client}).to_string(),
    );
    ok(berth(&d, &cfg, &["pull", &image]));
    drop(d);
    // No CA but listed as insecure (the client certificate still sent): pulled unverified.
    let insecure = tmp.path().join("insecure");
    std::fs::create_dir_all(insecure.join(&host)).unwrap();
    std::fs::copy(&cert, insecure.join(&host).join("client.cert")).unwrap();
    std::fs::copy(&key, insecure.join(&host).join("client.key")).unwrap();
    let d = Berthd::start_with_config(
        |_| {},
        &serde_json::json!({"certs-dir": insecure, "insecure-registries": [host]}).to_string(),
    );
    ok(berth(&d, &cfg, &["pull", &image]));
    drop(d);
    // A key without its certificate is a configuration error, said so.
    let orphan = tmp.path().join("orphan");
    let oc = certs_dir_for(&orphan, &host, &ca);
    std::fs::copy(&key, oc.join("lonely.key")).unwrap();
    let d = Berthd::start_with_config(
        |_| {},
        &serde_json::json!({"certs-dir": orphan}).to_string(),
    );
    fails(
        berth(&d, &cfg, &["pull", &image]),
        "missing client certificate",
    );
}

#[test]
fn concurrent_pulls_of_one_image_download_each_layer_once() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (layer, config) = hostile_image(tmp.path());
    let h = HostileRegistry::start(Hostile::Honest, layer, config);
    let d = Berthd::start();
    let cfg = tmp.path().join("cfg");
    let pulls: Vec<_> = (0..3)
        .map(|_| {
            Command::new(binary("berth"))
                .env("DOCKER_CONFIG", &cfg)
                .args(["-H", &d.host(), "pull", &h.reference()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        ok(p.wait_with_output().unwrap());
    }
    let log = h.log.lock().unwrap().clone();
    let layer_gets = log
        .iter()
        .filter(|(_, p, _)| p.ends_with(&h.layer_digest))
        .count();
    assert_eq!(layer_gets, 1, "one download for three pulls: {log:?}");
    assert_eq!(run_rm(&d, &cfg, &h.reference(), &["echo", "once"]), "once");
}

#[test]
fn a_pull_whose_client_goes_away_stops_and_keeps_its_partial_blob() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (layer, config) = hostile_image(tmp.path());
    let h = HostileRegistry::start(Hostile::Slow, layer.clone(), config);
    let d = Berthd::start();
    let cfg = tmp.path().join("cfg");
    let (mut pull, ingest, third) = stalled_pull(&d, &cfg, &h, layer.len());
    // The client goes away (Ctrl-C); then the registry sends the rest.
    let _ = pull.kill();
    let _ = pull.wait();
    std::thread::sleep(std::time::Duration::from_millis(300));
    h.release.store(true, std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let images = ok(berth(&d, &cfg, &["images"]));
    assert!(
        !images.contains("hostile"),
        "the cancelled pull recorded no image: {images}"
    );
    let kept = std::fs::metadata(&ingest).map(|m| m.len()).unwrap_or(0);
    assert!(
        kept >= third && kept < layer.len() as u64,
        "the partial blob is kept ({kept} bytes)"
    );
    // On a terminal: per-layer progress through a pty (script), resuming the partial blob.
    let cmd = format!(
        "{} -H {} pull {}",
        binary("berth").display(),
        d.host(),
        h.reference()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_CONFIG", &cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let id = &h.layer_digest.trim_start_matches("sha256:")[..12];
    assert!(text.contains(&format!("{id}: Pull complete")), "{text}");
    assert!(
        text.contains("\x1b["),
        "progress bars redraw with terminal escapes: {text:?}"
    );
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|(_, p, r)| p.ends_with(&h.layer_digest)
            && r.as_deref() == Some(&format!("bytes={kept}-"))),
        "resumed from the kept bytes: {log:?}"
    );
}
