//! Containers' files end to end: images kept while in use, diff, commit, export, save,
//! history, import, df, prune and cp (the real `berth` CLI against a real berthd).

use std::process::Command;

use berth_e2e::{busybox_image, code, eventually, ok, stderr, Berthd};

fn daemon() -> Berthd {
    Berthd::start_with(busybox_image)
}

/// An image that containers use is not deleted from under them (Docker's conflicts).
#[test]
fn images_in_use_are_kept() {
    let d = daemon();
    ok(d.berth(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"]));
    let out = d.berth(&["rmi", "-f", "busybox"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("image is being used by running container"),
        "{}",
        stderr(&out)
    );
    ok(d.berth(&["rm", "-f", "live"]));
    ok(d.berth(&["create", "--name", "idle", "busybox", "echo", "still here"]));
    let out = d.berth(&["rmi", "busybox"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("(must force) - container"),
        "{}",
        stderr(&out)
    );
    // Forced: the tag goes, the image stays for the container.
    assert_eq!(
        ok(d.berth(&["rmi", "-f", "busybox"])),
        "Untagged: busybox:latest"
    );
    assert_eq!(ok(d.berth(&["start", "-a", "idle"])), "still here");
    // Untagging while another tag remains is always fine.
    ok(d.berth(&[
        "tag",
        &ok(d.berth(&["inspect", "-f", "{{.Image}}", "idle"])),
        "bb:one",
    ]));
    ok(d.berth(&["tag", "bb:one", "bb:two"]));
    assert_eq!(ok(d.berth(&["rmi", "bb:two"])), "Untagged: bb:two");
}

/// diff, commit, export, save and history, with berth and both docker CLIs.
#[test]
fn diff_commit_export_save_history() {
    let d = daemon();
    ok(d.berth(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; rm /bin/vi; mkdir /made",
    ]));
    let diff = ok(d.berth(&["diff", "src"]));
    for line in ["A /newfile", "D /bin/vi", "A /made", "C /bin"] {
        assert!(diff.lines().any(|l| l == line), "{line} missing in\n{diff}");
    }
    assert!(
        !diff.contains("/etc/hostname"),
        "engine mount points are not changes:\n{diff}"
    );
    let id = ok(d.berth(&[
        "commit",
        "-m",
        "snap",
        "-c",
        "CMD [\"cat\", \"/newfile\"]",
        "src",
        "snap:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(ok(d.berth(&["run", "--rm", "snap:1"])), "new");
    let out = d.berth(&["run", "--rm", "snap:1", "ls", "/bin/vi"]);
    assert_ne!(code(&out), 0, "the deletion was committed");
    let hist = ok(d.berth(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "snap:1",
    ]));
    assert_eq!(hist.lines().next(), Some("berth commit|snap"), "{hist}");
    // The committed layer carries no engine mount point.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("snap.tar");
    ok(d.berth(&["save", "-o", saved.to_str().unwrap(), "snap:1"]));
    let listing = ok(Command::new("tar").arg("-tf").arg(&saved).output().unwrap());
    assert!(listing.contains("manifest.json"), "{listing}");
    let exported = dir.path().join("src.tar");
    ok(d.berth(&["export", "-o", exported.to_str().unwrap(), "src"]));
    let listing = ok(Command::new("tar")
        .arg("-tf")
        .arg(&exported)
        .output()
        .unwrap());
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "newfile"),
        "{listing}"
    );
    assert!(!listing
        .lines()
        .any(|l| l.trim_start_matches("./") == "bin/vi"));
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        assert!(
            ok(d.docker(client, &["diff", "src"])).contains("A /newfile"),
            "{client}"
        );
        let tag = format!(
            "snap:{}",
            if client.contains("local") { "28" } else { "20" }
        );
        ok(d.docker(client, &["commit", "src", &tag]));
        assert_eq!(
            ok(d.docker(client, &["run", "--rm", &tag, "cat", "/newfile"])),
            "new",
            "{client}"
        );
        assert!(
            ok(d.docker(client, &["history", &tag])).contains("berth commit"),
            "{client}"
        );
        let f = dir.path().join(format!("{}.tar", tag.replace(':', "-")));
        ok(d.docker(client, &["save", "-o", f.to_str().unwrap(), &tag]));
        // What berth saved, docker's own loader reads back into berthd.
        ok(d.docker(client, &["rmi", &tag]));
        assert!(
            ok(d.docker(client, &["load", "-i", f.to_str().unwrap()])).contains(&tag),
            "{client}"
        );
        let e = dir
            .path()
            .join(format!("{}-export.tar", tag.replace(':', "-")));
        ok(d.docker(client, &["export", "-o", e.to_str().unwrap(), "src"]));
        assert!(std::fs::metadata(&e).unwrap().len() > 1_000_000, "{client}");
    }
}

/// import, system df, container/image/system prune, with berth and both docker CLIs.
#[test]
fn import_df_and_prune() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), "imported\n").unwrap();
    let tar = dir.path().join("rootfs.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf"])
        .arg(&tar)
        .arg("hello")
        .status()
        .unwrap()
        .success());
    let id = ok(d.berth(&[
        "import",
        "-c",
        "CMD [\"/hello\"]",
        tar.to_str().unwrap(),
        "imp:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{json .Config.Cmd}}", "imp:1"])),
        "[\"/hello\"]"
    );
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let tag = if client.contains("local") {
            "imp:28"
        } else {
            "imp:20"
        };
        ok(d.docker(client, &["import", tar.to_str().unwrap(), tag]));
        assert!(
            ok(d.docker(client, &["images", "--format", "{{.Repository}}:{{.Tag}}"])).contains(tag)
        );
        let df = ok(d.docker(
            client,
            &["system", "df", "--format", "{{.Type}} {{.TotalCount}}"],
        ));
        assert!(
            df.lines().any(|l| l.starts_with("Images ")),
            "{client}: {df}"
        );
    }
    ok(d.berth(&["run", "--name", "done1", "busybox", "true"]));
    ok(d.berth(&[
        "create", "--name", "made", "-l", "keep=no", "busybox", "true",
    ]));
    ok(d.berth(&["run", "-d", "--name", "alive", "busybox", "sleep", "1000"]));
    let df = ok(d.berth(&["system", "df"]));
    assert!(
        df.lines()
            .any(|l| l.starts_with("Containers") && l.contains(" 3 ")),
        "{df}"
    );
    // Label filter first: only `made` goes.
    let out = ok(d.berth(&["container", "prune", "-f", "--filter", "label=keep=no"]));
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(
        ok(d.berth(&["ps", "-a", "--format", "{{.Names}}"]))
            .lines()
            .count(),
        2
    );
    ok(d.docker("/usr/bin/docker", &["container", "prune", "-f"]));
    assert_eq!(
        ok(d.berth(&["ps", "-a", "--format", "{{.Names}}"])),
        "alive"
    );
    // Unused images go with -a; the one a container uses stays.
    ok(d.berth(&["image", "prune", "-a", "-f"]));
    let images = ok(d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert_eq!(images, "busybox:latest");
    ok(d.docker("/usr/local/bin/docker", &["system", "prune", "-f"]));
    assert_eq!(ok(d.berth(&["ps", "--format", "{{.Names}}"])), "alive");
}

/// `cp` both ways with berth and both docker CLIs, on a running and a stopped container, and
/// hostile symlinks planted in the container: every path resolves inside the container's root,
/// so no host file is read or written.
#[test]
fn cp_stays_inside_the_container() {
    let d = daemon();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let secret = h.join("host-secret");
    std::fs::write(&secret, "HOST SECRET\n").unwrap();
    let target_dir = h.join("host-dir");
    std::fs::create_dir(&target_dir).unwrap();
    let plant = format!(
        "mkdir -p /data/sub; echo inside > /data/sub/f; echo container-shadow > /etc/shadow-c; \
         ln -s / /up; ln -s ../../../../.. /dots; ln -s {} /leak; ln -s {} /evil; sleep 1000",
        secret.display(),
        target_dir.display()
    );
    ok(d.berth(&["run", "-d", "--name", "cpc", "busybox", "sh", "-c", &plant]));
    assert!(eventually(5, || d
        .berth(&["exec", "cpc", "test", "-L", "/evil"])
        .status
        .success()));
    let out = h.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = |p: &str| out.join(p).to_str().unwrap().to_string();
    // Out of the container.
    ok(d.berth(&["cp", "cpc:/data", &o("")]));
    assert_eq!(
        std::fs::read_to_string(out.join("data/sub/f")).unwrap(),
        "inside\n"
    );
    ok(d.berth(&["cp", "cpc:/data/sub/f", &o("renamed")]));
    assert_eq!(
        std::fs::read_to_string(out.join("renamed")).unwrap(),
        "inside\n"
    );
    // Symlinks resolve in the container: /up/etc and /dots/etc are the container's /etc.
    ok(d.berth(&["cp", "cpc:/up/etc/shadow-c", &o("s1")]));
    assert_eq!(
        std::fs::read_to_string(out.join("s1")).unwrap(),
        "container-shadow\n"
    );
    ok(d.berth(&["cp", "cpc:/dots/etc/shadow-c", &o("s2")]));
    assert_eq!(
        std::fs::read_to_string(out.join("s2")).unwrap(),
        "container-shadow\n"
    );
    // A link to a host path is copied as a link, never read through.
    ok(d.berth(&["cp", "cpc:/leak", &o("leak")]));
    let md = std::fs::symlink_metadata(out.join("leak")).unwrap();
    assert!(md.file_type().is_symlink());
    // With a trailing slash too: at most the link itself arrives, never the host file's bytes.
    let _ = d.berth(&["cp", "cpc:/leak/", &o("leak2")]);
    if let Ok(md) = std::fs::symlink_metadata(out.join("leak2")) {
        assert!(
            md.file_type().is_symlink(),
            "a regular file came out of /leak/"
        );
    }
    // Into the container.
    let local = h.join("local.txt");
    std::fs::write(&local, "from host\n").unwrap();
    ok(d.berth(&["cp", local.to_str().unwrap(), "cpc:/data/sub/"]));
    ok(d.berth(&["cp", local.to_str().unwrap(), "cpc:/data/named"]));
    assert_eq!(
        ok(d.berth(&["exec", "cpc", "cat", "/data/sub/local.txt", "/data/named"])),
        "from host\nfrom host"
    );
    // Through a link to a host directory: lands inside the container, the host dir stays empty.
    let _ = d.berth(&["cp", local.to_str().unwrap(), "cpc:/evil/"]);
    let _ = d.berth(&["cp", local.to_str().unwrap(), "cpc:/up/tmp/"]);
    assert_eq!(
        std::fs::read_dir(&target_dir).unwrap().count(),
        0,
        "nothing written on the host"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "HOST SECRET\n");
    assert_eq!(
        ok(d.berth(&["exec", "cpc", "cat", "/tmp/local.txt"])),
        "from host"
    );
    // Missing paths are Docker's 404.
    let out3 = d.berth(&["cp", "cpc:/nope", &o("nope")]);
    assert_eq!(code(&out3), 1);
    assert!(
        stderr(&out3).contains("Could not find the file /nope in container"),
        "{}",
        stderr(&out3)
    );
    // The docker CLIs, and a stopped container (its root mounted for the copy).
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let name = if client.contains("local") {
            "d28"
        } else {
            "d20"
        };
        ok(d.docker(client, &["cp", "cpc:/data/sub/f", &o(name)]));
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap(),
            "inside\n",
            "{client}"
        );
        ok(d.docker(
            client,
            &["cp", local.to_str().unwrap(), &format!("cpc:/data/{name}")],
        ));
        ok(d.docker(client, &["cp", "cpc:/leak", &o(&format!("{name}-leak"))]));
        assert!(std::fs::symlink_metadata(out.join(format!("{name}-leak")))
            .unwrap()
            .file_type()
            .is_symlink());
        let _ = d.docker(client, &["cp", local.to_str().unwrap(), "cpc:/evil/"]);
        assert_eq!(
            std::fs::read_dir(&target_dir).unwrap().count(),
            0,
            "{client}: nothing on the host"
        );
    }
    ok(d.berth(&["stop", "-t", "0", "cpc"]));
    ok(d.berth(&["cp", "cpc:/data/d20", &o("stopped")]));
    assert_eq!(
        std::fs::read_to_string(out.join("stopped")).unwrap(),
        "from host\n"
    );
    ok(d.berth(&["cp", local.to_str().unwrap(), "cpc:/data/after-stop"]));
    ok(d.berth(&["start", "cpc"]));
    assert_eq!(
        ok(d.berth(&["exec", "cpc", "cat", "/data/after-stop"])),
        "from host"
    );
}
