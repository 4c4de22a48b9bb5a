//! The store through the real `berth-image` binary: loading, whiteouts across layers, shared
//! layers, removal and garbage collection, schema versions, and a SIGKILL in the middle of a
//! large load.

mod common;
use common::*;

#[test]
fn multi_layer_image_mounts_with_whiteouts() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let l1 = layer(&[
        ("etc/", None),
        ("etc/a", Some(b"one")),
        ("etc/gone", Some(b"x")),
        ("opq/", None),
        ("opq/old", Some(b"o")),
    ]);
    let l2 = layer(&[
        ("etc/b", Some(b"two")),
        ("etc/.wh.gone", Some(b"")),
        ("opq/", None),
        ("opq/.wh..wh..opq", Some(b"")),
        ("opq/new", Some(b"n")),
    ]);
    let (archive, id) = docker_archive(&[l1, l2], "test/multi:1", &["sh"]);
    let out = load_bytes(&root, &archive);
    assert_eq!(out.trim(), "Loaded image: test/multi:1");
    assert!(bi_ok(&root, &["images", "--no-trunc"]).contains(id.as_str()));
    let m = mount_image(&root, "test/multi:1");
    assert_eq!(tree(&m.target), ["etc", "etc/a", "etc/b", "opq", "opq/new"]);
    assert_eq!(std::fs::read(m.target.join("etc/b")).unwrap(), b"two");
}

#[test]
fn shared_layers_are_unpacked_once_and_gc_keeps_what_is_used() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let base = layer(&[("bin/", None), ("bin/tool", Some(b"tool"))]);
    let (a1, _) = docker_archive(std::slice::from_ref(&base), "test/a:1", &["a"]);
    let (a2, _) = docker_archive(&[base, layer(&[("extra", Some(b"e"))])], "test/b:1", &["b"]);
    for a in [a1, a2] {
        load_bytes(&root, &a);
    }
    let snapshots = || std::fs::read_dir(root.join("snapshots")).unwrap().count();
    assert_eq!(snapshots(), 2, "the shared base layer is unpacked once");
    assert!(
        bi_ok(&root, &["gc"]).contains("removed 0 blobs and 0 layers"),
        "gc removes nothing in use"
    );
    let out = bi_ok(&root, &["rmi", "test/b:1"]);
    assert!(
        out.contains("Untagged: test/b:1") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    // test/b's config and its own layer blob; the shared base layer stays.
    let gc = bi_ok(&root, &["gc"]);
    assert!(gc.contains("removed 2 blobs and 1 layers"), "{gc}");
    assert_eq!(snapshots(), 1);
    // The remaining image still mounts.
    let m = mount_image(&root, "test/a:1");
    assert_eq!(std::fs::read(m.target.join("bin/tool")).unwrap(), b"tool");
    let err = bi(&root, &["rmi", "test/none:1"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("No such image"));
}

#[test]
fn import_with_changes() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let f = d.path().join("rootfs.tar");
    write_file(&f, &layer(&[("bin/", None), ("bin/sh", Some(b"#!"))]));
    let id = bi_ok(
        &root,
        &[
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            "-c",
            "ENV A=b",
            "-c",
            "EXPOSE 8080",
            f.to_str().unwrap(),
            "local/imported:v1",
        ],
    );
    assert!(id.trim().starts_with("sha256:"));
    let inspect: serde_json::Value =
        serde_json::from_str(&bi_ok(&root, &["inspect", "local/imported:v1"])).unwrap();
    assert_eq!(
        inspect["Config"]["config"]["Cmd"],
        serde_json::json!(["/bin/sh"])
    );
    assert_eq!(
        inspect["Config"]["config"]["Env"],
        serde_json::json!(["A=b"])
    );
    assert!(inspect["Config"]["config"]["ExposedPorts"]["8080/tcp"].is_object());
}

#[test]
fn bad_archives_leave_the_store_unchanged() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let (good, _) = docker_archive(&[layer(&[("ok", Some(b"ok"))])], "test/good:1", &["x"]);
    load_bytes(&root, &good);
    let before = std::fs::read(root.join("images.json")).unwrap();
    // A layer whose content does not match the config's diff id.
    let claimed = layer(&[("evil", Some(b"1"))]);
    let (bad, _) = docker_archive_claiming(
        &[layer(&[("evil", Some(b"2"))])],
        &[berth_image::Digest::of(&claimed)],
        "test/bad:1",
    );
    let f = d.path().join("bad.tar");
    write_file(&f, &bad);
    let out = bi(&root, &["load", "-i", f.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("digest mismatch") || err.contains("corrupt"),
        "{err}"
    );
    // A hostile layer.
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../../escape");
    h.set_cksum();
    let mut evil = h.as_bytes().to_vec();
    evil.extend_from_slice(b"x");
    evil.resize(512 * 2 + 1024, 0);
    let (bad2, _) = docker_archive(&[evil], "test/evil:1", &["x"]);
    let f = d.path().join("evil.tar");
    write_file(&f, &bad2);
    let out = bi(&root, &["load", "-i", f.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("escapes the layer root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.path().join("escape").exists());
    // Truncated and garbage archives.
    let f = d.path().join("trunc.tar");
    write_file(&f, &good[..good.len() / 3]);
    assert!(!bi(&root, &["load", "-i", f.to_str().unwrap()])
        .status
        .success());
    assert_eq!(
        std::fs::read(root.join("images.json")).unwrap(),
        before,
        "metadata unchanged"
    );
    assert!(
        !std::fs::read_dir(root.join("snapshots")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("tmp-"))
    );
    // Still usable.
    let m = mount_image(&root, "test/good:1");
    assert_eq!(std::fs::read(m.target.join("ok")).unwrap(), b"ok");
}

#[test]
fn newer_schema_is_refused_not_rewritten() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    let meta = br#"{"schema": 99, "images": {}, "tags": {}, "layers": {}}"#;
    std::fs::write(root.join("images.json"), meta).unwrap();
    let out = bi(&root, &["images"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema 99"));
    assert_eq!(std::fs::read(root.join("images.json")).unwrap(), meta);
}

#[test]
fn sigkill_during_a_large_load_leaves_a_usable_store() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    // ~150 MB of incompressible data in 3 layers.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|i| layer(&[(&format!("big{i}"), Some(&noise(50 << 20)))]))
        .collect();
    let (archive, id) = docker_archive(&layers, "test/big:1", &["x"]);
    let f = d.path().join("big.tar");
    write_file(&f, &archive);
    for delay_ms in [50u64, 300, 800] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth-image"))
            .arg("--data-root")
            .arg(&root)
            .args(["load", "-i", f.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SAFETY: killing our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        // The store opens cleanly after every kill.
        bi_ok(&root, &["images"]);
    }
    bi_ok(&root, &["load", "-i", f.to_str().unwrap()]);
    assert!(bi_ok(&root, &["images", "--no-trunc"]).contains(id.as_str()));
    let m = mount_image(&root, "test/big:1");
    assert_eq!(
        std::fs::metadata(m.target.join("big2")).unwrap().len(),
        50 << 20
    );
    drop(m);
    bi_ok(&root, &["gc"]);
    assert!(
        std::fs::read_dir(root.join("content/ingest"))
            .unwrap()
            .next()
            .is_none(),
        "gc drops stale ingests"
    );
}

#[test]
fn df_reports_shared_and_unique_sizes() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let base = layer(&[("base", Some(&[1u8; 1000]))]);
    let (a1, id1) = docker_archive(std::slice::from_ref(&base), "test/a:1", &["a"]);
    let (a2, id2) = docker_archive(
        &[base, layer(&[("extra", Some(&[2u8; 300]))])],
        "test/b:1",
        &["b"],
    );
    for a in [a1, a2] {
        load_bytes(&root, &a);
    }
    let df: serde_json::Value = serde_json::from_str(&bi_ok(&root, &["df", "--json"])).unwrap();
    let img = |id: &berth_image::Digest| {
        df["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(img(&id1)["size"], 1000);
    assert_eq!(img(&id1)["shared"], 1000);
    assert_eq!(img(&id1)["unique"], 0);
    assert_eq!(img(&id2)["size"], 1300);
    assert_eq!(img(&id2)["unique"], 300);
    assert_eq!(df["layers_size"], 1300, "the shared layer is counted once");
}

#[test]
fn export_of_a_mounted_rootfs_imports_back() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let (a, _) = docker_archive(
        &[layer(&[
            ("etc/", None),
            ("etc/conf", Some(b"c")),
            ("bin/", None),
            ("bin/x", Some(b"x")),
        ])],
        "test/exp:1",
        &["x"],
    );
    load_bytes(&root, &a);
    let m = mount_image(&root, "test/exp:1");
    // A change made in the container's writable layer is part of the export.
    write_file(&m.target.join("etc/added"), b"new");
    std::os::unix::fs::symlink("conf", m.target.join("etc/link")).unwrap();
    let out = d.path().join("export.tar");
    bi_ok(
        &root,
        &[
            "export",
            m.target.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    drop(m);
    bi_ok(
        &root,
        &["import", out.to_str().unwrap(), "test/reimported:1"],
    );
    let m = mount_image(&root, "test/reimported:1");
    assert_eq!(
        tree(&m.target),
        ["bin", "bin/x", "etc", "etc/added", "etc/conf", "etc/link"]
    );
    assert_eq!(
        std::fs::read_link(m.target.join("etc/link")).unwrap(),
        std::path::Path::new("conf")
    );
}

#[test]
fn commit_turns_a_containers_changes_into_a_layer() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let l1 = layer(&[
        ("etc/", None),
        ("etc/keep", Some(b"v1")),
        ("etc/del", Some(b"x")),
        ("dir/", None),
        ("dir/old", Some(b"o")),
    ]);
    let (a, _) = docker_archive(&[l1], "test/base:1", &["sh"]);
    load_bytes(&root, &a);
    let m = mount_image(&root, "test/base:1");
    // What a container does: modify, delete, replace a directory (overlayfs makes it opaque).
    write_file(&m.target.join("etc/keep"), b"v2");
    std::fs::remove_file(m.target.join("etc/del")).unwrap();
    std::fs::remove_dir_all(m.target.join("dir")).unwrap();
    std::fs::create_dir(m.target.join("dir")).unwrap();
    write_file(&m.target.join("dir/new"), b"n");
    write_file(&m.target.join("added"), b"a");
    let seen = tree(&m.target);
    let upper = m.upper.clone();
    let id = bi_ok(
        &root,
        &[
            "commit",
            "--upper",
            upper.to_str().unwrap(),
            "test/base:1",
            "test/committed:1",
            "-m",
            "changes",
        ],
    );
    drop(m);
    assert!(id.trim().starts_with("sha256:"));
    let m = mount_image(&root, "test/committed:1");
    assert_eq!(tree(&m.target), seen);
    assert_eq!(seen, ["added", "dir", "dir/new", "etc", "etc/keep"]);
    assert_eq!(std::fs::read(m.target.join("etc/keep")).unwrap(), b"v2");
    let inspect: serde_json::Value =
        serde_json::from_str(&bi_ok(&root, &["inspect", "test/committed:1"])).unwrap();
    assert_eq!(
        inspect["Config"]["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn vfs_driver_copies_and_is_fixed_per_store() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let l1 = layer(&[
        ("etc/", None),
        ("etc/a", Some(b"one")),
        ("etc/gone", Some(b"x")),
    ]);
    let l2 = layer(&[("etc/b", Some(b"two")), ("etc/.wh.gone", Some(b""))]);
    let (a, _) = docker_archive(&[l1, l2], "test/vfs:1", &["sh"]);
    let f = d.path().join("a.tar");
    write_file(&f, &a);
    bi_ok(
        &root,
        &["--storage-driver", "vfs", "load", "-i", f.to_str().unwrap()],
    );
    let m = mount_image_with(&root, "test/vfs:1", &["--storage-driver", "vfs"]);
    assert_eq!(tree(&m.target), ["etc", "etc/a", "etc/b"]);
    drop(m);
    let out = bi(&root, &["--storage-driver", "overlay", "images"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("uses the vfs storage driver"));
    // A container's copy is made once: a second set of mounts for the same upper dir (the
    // container started again) keeps what the container changed.
    let store = berth_image::Store::open(&root).unwrap();
    let img = store.resolve("test/vfs:1").unwrap();
    let (upper, work, target) = (
        d.path().join("upper"),
        d.path().join("work"),
        d.path().join("t"),
    );
    store.rootfs_mounts(img, &upper, &work, &target).unwrap();
    assert_eq!(std::fs::read(upper.join("etc/b")).unwrap(), b"two");
    std::fs::write(upper.join("etc/b"), b"changed by the container").unwrap();
    std::fs::remove_file(upper.join("etc/a")).unwrap();
    store.rootfs_mounts(img, &upper, &work, &target).unwrap();
    assert_eq!(
        std::fs::read(upper.join("etc/b")).unwrap(),
        b"changed by the container"
    );
    assert!(
        !upper.join("etc/a").exists(),
        "the container's deletion stays"
    );
}

#[test]
fn a_config_that_does_not_match_its_name_is_refused() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let (a, id) = docker_archive(&[layer(&[("x", Some(b"x"))])], "test/cfg:1", &["x"]);
    // Change one byte of the config (its Cmd) but keep its file name.
    let pos = a.windows(7).position(|w| w == b"\"Cmd\":[").unwrap();
    let mut bad = a.clone();
    bad[pos + 8] = b'y';
    let f = d.path().join("a.tar");
    // Tar header checksums do not cover file content: the archive itself stays well-formed.
    write_file(&f, &bad);
    let out = bi(&root, &["load", "-i", f.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("digest mismatch") && err.contains(id.hex()),
        "{err}"
    );
}

/// A load tells how far each layer the store lacks has been read, named by its short chain
/// id as dockerd names it (`Loading layer`), from the first read to the whole size; a
/// second load of the same archive has no new layer to tell of.
#[test]
fn a_load_reports_each_new_layer_by_its_chain_id() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let l1 = layer(&[("a", Some(b"1"))]);
    let big = vec![7u8; 3 << 20];
    let l2 = layer(&[("b", Some(&big))]);
    let (archive, _) = docker_archive(&[l1.clone(), l2.clone()], "prog:1", &["true"]);
    let f = dir.path().join("a.tar");
    std::fs::write(&f, &archive).unwrap();
    let chains = berth_image::config::chain_ids(&[
        berth_image::Digest::of(&l1),
        berth_image::Digest::of(&l2),
    ]);
    let short: Vec<String> = chains.iter().map(|c| c.hex()[..12].to_string()).collect();

    let mut store = berth_image::store::Store::open(&root).unwrap();
    let ids = berth_image::archive::progress::layer_ids(&store, &f).unwrap();
    let mut named: Vec<&String> = ids.values().collect();
    named.sort();
    let mut want: Vec<&String> = short.iter().collect();
    want.sort();
    assert_eq!(named, want, "{ids:?}");

    let mut seen: Vec<(String, u64, u64)> = Vec::new();
    berth_image::archive::load_file_with(&mut store, &f, None, &mut |id, c, t| {
        seen.push((id.to_string(), c, t))
    })
    .unwrap();
    for (id, l) in short.iter().zip([&l1, &l2]) {
        let of: Vec<&(String, u64, u64)> = seen.iter().filter(|s| &s.0 == id).collect();
        assert!(of.len() >= 2, "{id}: {of:?}");
        assert!(of.iter().all(|s| s.2 == l.len() as u64), "{of:?}");
        assert!(of[0].1 > 0 && of[0].1 <= l.len() as u64, "{of:?}");
        assert_eq!(of.last().unwrap().1, l.len() as u64, "{of:?}");
        assert!(of.windows(2).all(|w| w[0].1 <= w[1].1), "{of:?}");
    }
    assert_eq!(
        seen.len(),
        seen.iter().filter(|s| short.contains(&s.0)).count()
    );

    let mut again = 0;
    berth_image::archive::load_file_with(&mut store, &f, None, &mut |_, _, _| again += 1).unwrap();
    assert_eq!(again, 0, "layers already in the store are not told of");
}
