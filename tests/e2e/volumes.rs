//! Volumes, bind mounts and tmpfs end to end, with the real `berth` CLI, berthd and real
//! containers: data in a named volume outlives containers and a berthd SIGKILL and goes only
//! with `volume rm`; read-only is read-only; the image's content is copied into a new volume
//! once (not with `nocopy`), resolved inside the container's root even when the image plants a
//! symlink; volumes in use are kept; `rm -v` and prune remove only what they should; bad input
//! is refused and creates nothing; the docker CLIs' volume commands work through berthd.

use berth_e2e::{busybox_image, ok, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the volume tests mount file systems: run them as root"
    );
}

fn sh(d: &Berthd, args: &[&str], script: &str) -> std::process::Output {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.berth(&a)
}

fn volumes(d: &Berthd) -> Vec<String> {
    ok(d.berth(&["volume", "ls", "-q"]))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn named_volume_data_outlives_containers_and_a_berthd_sigkill() {
    require_root();
    let mut d = Berthd::start_with(busybox_image);
    ok(d.berth(&["volume", "create", "--label", "app=db", "dbdata"]));
    ok(sh(
        &d,
        &["-v", "dbdata:/var/db"],
        "echo row1 > /var/db/table",
    ));
    ok(d.berth(&[
        "run",
        "--name",
        "writer",
        "-v",
        "dbdata:/var/db",
        "busybox",
        "sh",
        "-c",
        "echo row2 >> /var/db/table",
    ]));
    ok(d.berth(&["rm", "writer"]));
    let out = ok(sh(&d, &["-v", "dbdata:/var/db"], "cat /var/db/table"));
    assert_eq!(out.trim(), "row1\nrow2");
    d.restart();
    let out = ok(sh(
        &d,
        &["--mount", "type=volume,source=dbdata,target=/x"],
        "cat /x/table",
    ));
    assert_eq!(
        out.trim(),
        "row1\nrow2",
        "survives a SIGKILL and restart of berthd"
    );
    let insp = ok(d.berth(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Labels.app}} {{.Mountpoint}}",
        "dbdata",
    ]));
    let mp = insp.split_whitespace().last().unwrap().to_string();
    assert!(insp.starts_with("dbdata local db "), "{insp}");
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/table")).unwrap(),
        "row1\nrow2\n"
    );
    ok(d.berth(&["volume", "rm", "dbdata"]));
    assert!(
        !std::path::Path::new(&mp).exists(),
        "gone only with volume rm"
    );
    let out = ok(sh(&d, &["-v", "dbdata:/var/db"], "ls /var/db | wc -l"));
    assert_eq!(out.trim(), "0", "a new, empty volume of that name");
    // The local driver's options: a tmpfs volume, and a bind of a host directory.
    ok(d.berth(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "ramvol",
    ]));
    let out = ok(sh(&d, &["-v", "ramvol:/r"], "grep ' /r ' /proc/mounts"));
    assert!(
        out.starts_with("tmpfs /r tmpfs") && out.contains("size=2048k"),
        "{out}"
    );
    let host = tempfile::tempdir().unwrap();
    let dev = format!("device={}", host.path().display());
    ok(d.berth(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "bindvol",
    ]));
    ok(sh(&d, &["-v", "bindvol:/b"], "echo through > /b/t"));
    assert_eq!(
        std::fs::read_to_string(host.path().join("t")).unwrap(),
        "through\n"
    );
}

#[test]
fn read_only_mounts_binds_and_tmpfs() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from-host").unwrap();
    let src = host.path().display().to_string();
    // A bind mount, both ways.
    let out = ok(sh(
        &d,
        &["-v", &format!("{src}:/h")],
        "cat /h/in.txt; echo back > /h/out.txt",
    ));
    assert_eq!(out.trim(), "from-host");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "back\n"
    );
    // Read-only, by -v and by --mount: writes fail with EROFS.
    for args in [
        vec!["-v".to_string(), format!("{src}:/h:ro")],
        vec![
            "--mount".to_string(),
            format!("type=bind,src={src},dst=/h,readonly"),
        ],
        vec!["-v".to_string(), "rovol:/h:ro".to_string()],
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sh(&d, &a, "echo x > /h/new");
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
            "{out:?}"
        );
    }
    assert!(!host.path().join("new").exists());
    // --read-only: the root is read-only, a volume and a tmpfs stay writable.
    let out = ok(sh(
        &d,
        &["--read-only", "-v", "scratch:/data", "--tmpfs", "/run:size=1m"],
        "echo a > /data/a && echo b > /run/b && cat /data/a /run/b; echo x > /root/x 2>/dev/null && echo root-writable; grep ' /run ' /proc/mounts",
    ));
    assert!(
        out.starts_with("a\nb\n") && !out.contains("root-writable"),
        "{out}"
    );
    assert!(
        out.contains("tmpfs /run tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    // A -v bind of a missing host path creates it; --mount refuses it with docker's words.
    let missing = host.path().join("made/by/v");
    ok(sh(
        &d,
        &["-v", &format!("{}:/m", missing.display())],
        "true",
    ));
    assert!(missing.is_dir());
    let out = sh(
        &d,
        &["--mount", &format!("type=bind,src={}/nope,dst=/m", src)],
        "true",
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind source path does not exist"));
}

#[test]
fn copy_up_happens_once_and_stays_inside_the_container_root() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    // A new, empty volume gets the image's /etc; changes are kept, never copied over again.
    let out = ok(sh(&d, &["-v", "etcvol:/etc"], "ls /etc; rm /etc/passwd"));
    assert!(out.contains("passwd") && out.contains("group"), "{out}");
    let out = ok(sh(&d, &["-v", "etcvol:/etc"], "ls /etc"));
    assert!(
        !out.contains("passwd") && out.contains("group"),
        "copied once: {out}"
    );
    // nocopy: empty.
    let out = ok(sh(&d, &["-v", "bare:/etc:nocopy"], "ls /etc | wc -l"));
    // resolv.conf, hostname and hosts are berth's own mounts over it.
    assert_eq!(out.trim(), "3", "{out}");
    // A bind mount is never filled from the image.
    let host = tempfile::tempdir().unwrap();
    ok(sh(
        &d,
        &["-v", &format!("{}:/etc", host.path().display())],
        "true",
    ));
    assert!(!host.path().join("passwd").exists());
    // An image whose /data is a symlink to /: the copy follows it inside the container's
    // root (the image's files), never to the host's /.
    ok(d.berth(&["run", "--name", "mk", "busybox", "ln", "-s", "/", "/data"]));
    ok(d.berth(&["commit", "mk", "evil:latest"]));
    let out = ok(d.berth(&["run", "--rm", "-v", "evvol:/data", "evil", "ls", "/data"]));
    assert!(out.contains("bin"), "{out}");
    let mp = ok(d.berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", "evvol"]));
    let mp = std::path::Path::new(mp.trim());
    assert!(
        mp.join("bin/busybox").exists(),
        "the image's root was copied"
    );
    for host_only in ["usr", "var", "boot"] {
        assert!(
            !mp.join(host_only).exists(),
            "{host_only} is the host's, not the image's"
        );
    }
}

#[test]
fn volumes_in_use_rm_v_and_prune() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&[
        "create", "--name", "user", "-v", "keep:/k", "-v", "/anon", "busybox", "true",
    ]));
    let out = d.berth(&["volume", "rm", "keep"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("volume is in use"),
        "{out:?}"
    );
    let anon: Vec<String> = volumes(&d).into_iter().filter(|v| v.len() == 64).collect();
    assert_eq!(anon.len(), 1, "one anonymous volume: {anon:?}");
    // Prune never takes what a (stopped) container refers to.
    ok(d.berth(&["volume", "prune", "-f", "-a"]));
    assert_eq!(volumes(&d).len(), 2);
    ok(d.berth(&["volume", "create", "loose"]));
    ok(d.berth(&["run", "--rm", "-v", "/tmpanon", "busybox", "true"]));
    assert_eq!(
        volumes(&d).len(),
        3,
        "run --rm takes its anonymous volume with it"
    );
    // rm -v: the anonymous volume goes, the named one stays.
    ok(d.berth(&["rm", "-v", "user"]));
    let left = volumes(&d);
    assert!(
        left.contains(&"keep".to_string()) && !left.contains(&anon[0]),
        "{left:?}"
    );
    // prune without -a: anonymous only; with -a: every unused one.
    ok(d.berth(&["run", "--name", "gone", "-v", "/a2", "busybox", "true"]));
    ok(d.berth(&["rm", "gone"]));
    // A volume created without a name is anonymous too (dockerd labels it so).
    let unnamed = ok(d.berth(&["volume", "create"])).trim().to_string();
    assert_eq!(volumes(&d).len(), 4);
    let out = ok(d.berth(&["volume", "prune", "-f"]));
    assert!(
        out.contains("Deleted Volumes:") && out.contains(&unnamed),
        "{out}"
    );
    assert_eq!(volumes(&d), vec!["keep", "loose"]);
    ok(d.berth(&["volume", "prune", "-f", "-a"]));
    assert!(volumes(&d).is_empty());
    let df = ok(d.berth(&["system", "df"]));
    assert!(df.contains("Local Volumes"), "{df}");
}

#[test]
fn bad_volume_input_is_refused_and_creates_nothing() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    let refused = |args: &[&str], words: &str| d.refused(args, words);
    refused(
        &["volume", "create", "a/b"],
        "includes invalid characters for a local volume name",
    );
    refused(&["volume", "create", "x"], "too short");
    refused(
        &["volume", "create", "-o", "bogus=1", "optvol"],
        "invalid option key",
    );
    refused(
        &["volume", "create", "-d", "nfs", "drvvol"],
        "plugin \"nfs\" not found",
    );
    refused(
        &["run", "--rm", "-v", "a/b:/x", "busybox", "true"],
        "invalid volume specification",
    );
    refused(
        &["run", "--rm", "-v", "okname:/proc", "busybox", "true"],
        "/proc is reserved",
    );
    refused(
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,src=relative/dir,dst=/x",
            "busybox",
            "true",
        ],
        "mount path must be absolute",
    );
    refused(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=v2,dst=rel",
            "busybox",
            "true",
        ],
        "must be absolute",
    );
    refused(
        &[
            "run", "--rm", "-v", "v3:/x", "-v", "v4:/x", "busybox", "true",
        ],
        "Duplicate mount point",
    );
    refused(
        &["run", "--rm", "-v", "v5:/x:bogus", "busybox", "true"],
        "invalid mode",
    );
    refused(
        &["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"],
        "No such container",
    );
    refused(&["volume", "rm", "nosuchvol"], "no such volume");
    assert!(
        volumes(&d).is_empty(),
        "nothing was created: {:?}",
        volumes(&d)
    );
    assert!(ok(d.berth(&["ps", "-aq"])).trim().is_empty());
}

#[test]
fn volumes_from_and_the_docker_clis() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/s",
        "busybox",
        "sh",
        "-c",
        "echo from-src > /s/f",
    ]));
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /s/f; echo x > /s/g || echo ro",
    ]));
    assert_eq!(out.trim(), "from-src\nro");
    for (i, client) in ["/usr/bin/docker", "/usr/local/bin/docker"]
        .iter()
        .enumerate()
    {
        let name = format!("dvol{i}");
        ok(d.docker(client, &["volume", "create", "--label", "by=docker", &name]));
        let ls = ok(d.docker(
            client,
            &[
                "volume",
                "ls",
                "--filter",
                "label=by=docker",
                "--format",
                "{{.Name}}",
            ],
        ));
        assert!(ls.contains(&name), "{client}: {ls}");
        ok(d.docker(
            client,
            &[
                "run",
                "--rm",
                "-v",
                &format!("{name}:/v"),
                "busybox",
                "sh",
                "-c",
                "echo dk > /v/f",
            ],
        ));
        let out = ok(d.docker(
            client,
            &[
                "run",
                "--rm",
                "--mount",
                &format!("type=volume,src={name},dst=/w,readonly"),
                "busybox",
                "cat",
                "/w/f",
            ],
        ));
        assert_eq!(out.trim(), "dk", "{client}");
        let mounts = ok(d.docker(
            client,
            &[
                "inspect",
                "-f",
                "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
                "src",
            ],
        ));
        assert_eq!(mounts.trim(), "volume shared /s", "{client}");
        let out = d.docker(client, &["volume", "rm", "shared"]);
        assert!(!out.status.success(), "{client}: in use");
        ok(d.docker(client, &["volume", "rm", &name]));
        let out = d.docker(client, &["volume", "inspect", &name]);
        assert!(!out.status.success());
    }
    // Prune: docker 20.10 speaks API 1.41, where every unused volume goes; docker 28 takes
    // only anonymous ones unless -a.
    ok(d.berth(&["rm", "src"]));
    ok(d.berth(&["volume", "create", "named28"]));
    ok(d.docker("/usr/local/bin/docker", &["volume", "prune", "-f"]));
    assert!(
        volumes(&d).contains(&"named28".to_string()),
        "docker 28 keeps named volumes"
    );
    ok(d.docker("/usr/bin/docker", &["volume", "prune", "-f"]));
    assert!(
        volumes(&d).is_empty(),
        "docker 20.10 (API 1.41) prunes them: {:?}",
        volumes(&d)
    );
}

/// A mount point of the test's own (a tmpfs made shared), unmounted on drop.
struct SharedMount(tempfile::TempDir);

impl SharedMount {
    fn new() -> SharedMount {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().display().to_string();
        for args in [
            vec!["-t", "tmpfs", "-o", "size=1m", "tmpfs", p.as_str()],
            vec!["--make-shared", p.as_str()],
        ] {
            let out = std::process::Command::new("mount")
                .args(&args)
                .output()
                .unwrap();
            assert!(out.status.success(), "mount {args:?}: {out:?}");
        }
        SharedMount(d)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.0.path())
            .output();
    }
}

#[test]
fn bind_propagation_modes_behave_as_the_kernel_defines() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    let shared = SharedMount::new();
    let src = shared.path().display().to_string();
    for (name, mode) in [
        ("pslave", "rslave"),
        ("pprivate", "rprivate"),
        ("pshared", "rshared"),
    ] {
        std::fs::create_dir_all(shared.path().join(name)).unwrap();
        let mut args = vec!["run", "-d", "--name", name];
        if mode == "rshared" {
            args.push("--privileged");
        }
        let bind = format!("{src}:/h:{mode}");
        args.extend_from_slice(&["-v", &bind, "busybox", "sleep", "600"]);
        ok(d.berth(&args));
    }
    // A mount made on the host after the containers started: a slave or shared bind
    // receives it, a private one does not.
    let sub = shared.path().join("later");
    std::fs::create_dir_all(&sub).unwrap();
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&sub)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sees = |c: &str| {
        ok(d.berth(&["exec", c, "cat", "/proc/mounts"]))
            .lines()
            .any(|l| l.contains(" /h/later "))
    };
    assert!(sees("pslave"), "rslave receives the host's new mount");
    assert!(sees("pshared"), "rshared receives it too");
    assert!(!sees("pprivate"), "rprivate does not");
    // A mount made inside the rshared container comes back to the host; from the rslave
    // one it would not (and it could not make one: no CAP_SYS_ADMIN).
    ok(d.berth(&["exec", "pshared", "mkdir", "-p", "/h/pshared/inner"]));
    ok(d.berth(&[
        "exec",
        "pshared",
        "mount",
        "-t",
        "tmpfs",
        "tmpfs",
        "/h/pshared/inner",
    ]));
    let host_mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let inner = shared.path().join("pshared/inner").display().to_string();
    assert!(
        host_mounts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(inner.as_str())),
        "the container's mount propagated to the host"
    );
    ok(d.berth(&["rm", "-f", "pslave", "pprivate", "pshared"]));
}

#[test]
fn cp_sees_volumes_and_hostile_symlinks_in_them_stay_inside() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&[
        "run", "-d", "--name", "cpv", "-v", "cpdata:/data", "busybox", "sh", "-c",
        "echo inside > /data/file; ln -s / /data/toroot; ln -s /etc /data/toetc; ln -s ../../.. /data/up; exec sleep 600",
    ]));
    let host = tempfile::tempdir().unwrap();
    let out_dir = host.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Wait for the container to have written its file.
    for _ in 0..50 {
        if d.berth(&["exec", "cpv", "test", "-L", "/data/up"])
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Out of a volume of a running container.
    ok(d.berth(&["cp", "cpv:/data/file", out_dir.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("file")).unwrap(),
        "inside\n"
    );
    // Through symlinks planted in the volume: they resolve inside the volume, never on the
    // host (the host's /etc/os-release must not come out).
    // `toroot` and `up` lead to the volume's own root; `toetc` to an /etc the volume does
    // not have (so: not found, and certainly not the host's /etc).
    for (link, found) in [("toroot", true), ("up", true), ("toetc", false)] {
        let dst = host.path().join(format!("via-{link}"));
        let out = d.berth(&["cp", &format!("cpv:/data/{link}/."), dst.to_str().unwrap()]);
        if found {
            assert!(out.status.success(), "{link}: {out:?}");
            assert!(
                dst.join("file").exists(),
                "{link} resolved to the volume's own root"
            );
        } else {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("Could not find"),
                "{link}: {out:?}"
            );
        }
        assert!(
            !dst.join("etc/os-release").exists() && !dst.join("os-release").exists(),
            "{link} led to a host file"
        );
    }
    // Into the volume, while it runs; then out of it while the container is stopped.
    std::fs::write(host.path().join("in.txt"), "from-host").unwrap();
    ok(d.berth(&[
        "cp",
        host.path().join("in.txt").to_str().unwrap(),
        "cpv:/data/",
    ]));
    let cat = d.berth(&["exec", "cpv", "cat", "/data/in.txt"]);
    if !cat.status.success() {
        // Say why the container is gone (its state and output), then fail.
        let state = d.berth(&["inspect", "-f", "{{json .State}}", "cpv"]);
        let logs = d.berth(&["logs", "cpv"]);
        panic!(
            "exec after cp: {cat:?}\nstate: {}\nlogs: {logs:?}",
            String::from_utf8_lossy(&state.stdout)
        );
    }
    assert_eq!(String::from_utf8_lossy(&cat.stdout).trim(), "from-host");
    ok(d.berth(&["stop", "-t", "1", "cpv"]));
    let dst = host.path().join("whole");
    ok(d.berth(&["cp", "cpv:/data", dst.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(dst.join("in.txt")).unwrap(),
        "from-host"
    );
    assert!(std::fs::symlink_metadata(dst.join("toroot"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A planted link to put a file on the host: writing through it stays in the volume.
    std::fs::write(host.path().join("evil.txt"), "x").unwrap();
    let _ = d.berth(&[
        "cp",
        host.path().join("evil.txt").to_str().unwrap(),
        "cpv:/data/toetc/",
    ]);
    assert!(
        !std::path::Path::new("/etc/evil.txt").exists(),
        "written to the host's /etc"
    );
}

/// `volume-subpath` (API 1.45): a directory or a file of a volume, a symlink inside the volume
/// followed, every way out refused (dockerd's words), the container's `..` refused at create;
/// through berth's CLI and docker 28's.
#[test]
fn volume_subpaths_stay_inside_the_volume() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["volume", "create", "sub"]));
    ok(sh(
        &d,
        &["-v", "sub:/v"],
        "echo foo > /v/bar.txt && mkdir -p /v/subdir /v/hack && echo world > /v/subdir/hello.txt \
         && ln -s / /v/hack/root && ln -s ../subdir /v/hack/good && ln -s root /v/hack/bad",
    ));
    let run = |cli: &str, subpath: &str, cmd: &str| {
        let mount = format!("type=volume,src=sub,dst=/volume,volume-subpath={subpath}");
        let args = ["run", "--rm", "--mount", &mount, "busybox", "sh", "-c", cmd];
        match cli {
            "berth" => d.berth(&args),
            docker => d.docker(docker, &args),
        }
    };
    for cli in ["berth", "/usr/local/bin/docker"] {
        assert_eq!(
            ok(run(cli, "subdir", "ls /volume")).trim(),
            "hello.txt",
            "{cli}"
        );
        assert_eq!(
            ok(run(cli, "hack/good", "ls /volume")).trim(),
            "hello.txt",
            "{cli}"
        );
        assert_eq!(
            ok(run(cli, "bar.txt", "cat /volume")).trim(),
            "foo",
            "{cli}"
        );
        for (subpath, words) in [
            ("hack/root", "path concatenation escapes the base directory"),
            ("hack/bad", "path concatenation escapes the base directory"),
            ("not-there", "cannot access path"),
            (
                "../../../../etc/passwd",
                "subpath must be a relative path within the volume",
            ),
        ] {
            let out = run(cli, subpath, "cat /volume/passwd /volume/shadow");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains(words),
                "{cli} {subpath}: {out:?}"
            );
            assert_eq!(out.status.code(), Some(125), "{cli} {subpath}");
        }
    }
    // A subpath the container writes through is the volume's; the mount points go with the
    // container.
    ok(d.berth(&[
        "run",
        "--name",
        "writer",
        "--mount",
        "type=volume,src=sub,dst=/w,volume-subpath=subdir",
        "busybox",
        "sh",
        "-c",
        "echo new > /w/new.txt",
    ]));
    assert_eq!(
        ok(sh(&d, &["-v", "sub:/v"], "cat /v/subdir/new.txt")).trim(),
        "new"
    );
    let id = ok(d.berth(&["inspect", "-f", "{{.Id}}", "writer"]))
        .trim()
        .to_string();
    let points = d.dir.path().join("exec").join("subpaths").join(&id);
    assert!(
        points.join("0").is_dir(),
        "mounted while the container may restart"
    );
    ok(d.berth(&["rm", "writer"]));
    assert!(!points.exists(), "released with the container");
    assert_eq!(
        ok(sh(&d, &["-v", "sub:/v"], "cat /v/subdir/hello.txt")).trim(),
        "world",
        "the volume's content is untouched by the release"
    );
}
