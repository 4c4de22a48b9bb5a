//! Helpers for the image store tests: hand-built layers and docker-archives, the real
//! `berth-image` binary, overlay mounts of an image's rootfs.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_image::Digest;

pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "image store tests need root (ownership, overlay mounts)"
    );
}

/// A tar layer from (path, content) pairs; a content of None makes a directory.
pub fn layer(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match data {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, p, *d).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A docker-archive with one image made of `layers`, tagged `tag`.
pub fn docker_archive(layers: &[Vec<u8>], tag: &str, cmd: &[&str]) -> (Vec<u8>, Digest) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    build_archive(layers, &diff_ids, tag, cmd)
}

/// A docker-archive whose config claims `diff_ids` whatever the layers hold.
pub fn docker_archive_claiming(
    layers: &[Vec<u8>],
    diff_ids: &[Digest],
    tag: &str,
) -> (Vec<u8>, Digest) {
    build_archive(layers, diff_ids, tag, &["x"])
}

fn build_archive(
    layers: &[Vec<u8>],
    diff_ids: &[Digest],
    tag: &str,
    cmd: &[&str],
) -> (Vec<u8>, Digest) {
    let diff_ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>()
    });
    let config = serde_json::to_vec(&config).unwrap();
    let id = Digest::of(&config);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |p: &str, d: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(d.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, d).unwrap();
    };
    let mut paths = Vec::new();
    for (l, d) in layers.iter().zip(&diff_ids) {
        let p = format!("{}/layer.tar", &d[7..]);
        add(&p, l);
        paths.push(p);
    }
    add(&format!("{}.json", id.hex()), &config);
    let manifest = serde_json::json!([{"Config": format!("{}.json", id.hex()), "RepoTags": [tag], "Layers": paths}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    (b.into_inner().unwrap(), id)
}

/// Runs the real `berth-image` with a data root.
pub fn bi(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth-image"))
        .arg("--data-root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// Writes `archive` to a file beside the store and loads it with `berth-image load`, expecting
/// success; returns the output.
pub fn load_bytes(root: &Path, archive: &[u8]) -> String {
    let dir = root.parent().expect("the store has a parent directory");
    let f = dir.join(format!("archive-{}.tar", Digest::of(archive).short()));
    write_file(&f, archive);
    bi_ok(root, &["load", "-i", f.to_str().unwrap()])
}

pub fn bi_ok(root: &Path, args: &[&str]) -> String {
    let out = bi(root, args);
    assert!(
        out.status.success(),
        "berth-image {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mounts an image's rootfs (overlay, with a fresh upper) and returns (target, guard).
pub struct Mounted {
    pub target: PathBuf,
    pub upper: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
    }
}

pub fn mount_image(root: &Path, image: &str) -> Mounted {
    mount_image_with(root, image, &[])
}

/// Mounts with extra global flags (e.g. `--storage-driver vfs`); the store's `mounts` output is
/// `mount -t TYPE SOURCE TARGET -o OPTIONS`.
pub fn mount_image_with(root: &Path, image: &str, flags: &[&str]) -> Mounted {
    let d = tempfile::tempdir().unwrap();
    let (upper, work, target) = (
        d.path().join("upper"),
        d.path().join("work"),
        d.path().join("rootfs"),
    );
    for p in [&upper, &work, &target] {
        std::fs::create_dir(p).unwrap();
    }
    let mut args: Vec<&str> = flags.to_vec();
    let (u, w, t) = (
        upper.to_str().unwrap().to_string(),
        work.to_str().unwrap().to_string(),
        target.to_str().unwrap().to_string(),
    );
    args.extend(["mounts", image, "--upper", &u, "--work", &w, "--target", &t]);
    let out = bi_ok(root, &args);
    let (cmd, opts) = out.trim().rsplit_once(" -o ").unwrap();
    let parts: Vec<&str> = cmd.split_whitespace().collect();
    let (fstype, source) = (parts[2], parts[3]);
    let st = if fstype == "bind" {
        Command::new("mount")
            .args(["--rbind", source])
            .arg(&target)
            .status()
            .unwrap()
    } else {
        Command::new("mount")
            .args(["-t", fstype, source, "-o", opts])
            .arg(&target)
            .status()
            .unwrap()
    };
    assert!(st.success(), "mount {out}");
    Mounted {
        target,
        upper,
        _dir: d,
    }
}

/// Every path under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn write_file(p: &Path, data: &[u8]) {
    std::fs::File::create(p).unwrap().write_all(data).unwrap();
}
