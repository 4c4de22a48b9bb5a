//! Layer application: the normal cases and a corpus of hostile archives. Hostile entries must
//! fail with a clear error and touch nothing outside the layer root.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_image::layer::{apply, Format, Limits};
use berth_image::Digest;

/// One raw tar entry; names and link targets are written as bytes, unchecked, so hostile
/// archives can be built.
struct E<'a> {
    name: &'a str,
    kind: u8,
    data: &'a [u8],
    link: &'a str,
    mode: u32,
    dev: (u32, u32),
}

fn e(name: &str, kind: u8) -> E<'_> {
    E {
        name,
        kind,
        data: b"",
        link: "",
        mode: 0o644,
        dev: (0, 0),
    }
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for en in entries {
        let mut h = [0u8; 512];
        h[..en.name.len()].copy_from_slice(en.name.as_bytes());
        let oct = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
            let s = format!("{:0w$o}\0", v, w = len - 1);
            h[off..off + len].copy_from_slice(s.as_bytes());
        };
        oct(&mut h, 100, 8, en.mode as u64);
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        oct(&mut h, 124, 12, en.data.len() as u64);
        oct(&mut h, 136, 12, 1_600_000_000);
        h[156] = en.kind;
        h[157..157 + en.link.len()].copy_from_slice(en.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        oct(&mut h, 329, 8, en.dev.0 as u64);
        oct(&mut h, 337, 8, en.dev.1 as u64);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(en.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        data,
        ..e(name, b'0')
    }
}
fn dir(name: &str) -> E<'_> {
    E {
        mode: 0o755,
        ..e(name, b'5')
    }
}
fn symlink<'a>(name: &'a str, to: &'a str) -> E<'a> {
    E {
        link: to,
        ..e(name, b'2')
    }
}
fn hardlink<'a>(name: &'a str, to: &'a str) -> E<'a> {
    E {
        link: to,
        ..e(name, b'1')
    }
}

struct Fixture {
    _d: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// A layer root plus a sentinel directory beside it that must never change.
fn fixture() -> Fixture {
    assert_eq!(
        unsafe_geteuid(),
        0,
        "layer tests need root (ownership, device nodes, trusted xattrs)"
    );
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("passwd"), "original").unwrap();
    Fixture {
        root,
        outside,
        _d: d,
    }
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn outside_untouched(f: &Fixture) {
    let names: Vec<_> = std::fs::read_dir(&f.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("passwd")],
        "something was written outside the root"
    );
    assert_eq!(
        std::fs::read_to_string(f.outside.join("passwd")).unwrap(),
        "original"
    );
}

#[test]
fn applies_files_dirs_links_and_metadata() {
    let f = fixture();
    let data = tar(&[
        dir("etc/"),
        E {
            mode: 0o4755,
            ..file("etc/tool", b"#!/bin/sh\n")
        },
        symlink("etc/link", "tool"),
        hardlink("etc/hard", "etc/tool"),
        E {
            mode: 0o644,
            ..e("run/fifo", b'6')
        },
        E {
            dev: (1, 3),
            mode: 0o666,
            ..e("dev/null", b'3')
        },
        file("./dot/slash", b"x"),
    ]);
    let a = apply("l1", &data[..], &f.root, Format::Overlay, Limits::default()).unwrap();
    assert_eq!(a.diff_id, Digest::of(&data));
    let tool = std::fs::metadata(f.root.join("etc/tool")).unwrap();
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept (chmod after chown)"
    );
    assert_eq!(tool.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(f.root.join("etc/link")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::metadata(f.root.join("etc/hard")).unwrap().ino(),
        tool.ino()
    );
    assert!(std::fs::symlink_metadata(f.root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo_like());
    assert_eq!(
        std::fs::metadata(f.root.join("dev/null")).unwrap().rdev(),
        libc::makedev(1, 3)
    );
    assert_eq!(std::fs::read(f.root.join("dot/slash")).unwrap(), b"x");
    assert_eq!(
        std::fs::metadata(f.root.join("etc")).unwrap().mtime(),
        1_600_000_000,
        "dir times set last"
    );
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn compressed_layers_have_the_plain_diff_id() {
    let data = tar(&[dir("a/"), file("a/b", &[7u8; 100_000])]);
    let plain = Digest::of(&data);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    for (what, bytes) in [("gzip", gz), ("zstd", zst)] {
        let f = fixture();
        let a = apply(
            what,
            &bytes[..],
            &f.root,
            Format::Overlay,
            Limits::default(),
        )
        .unwrap();
        assert_eq!(a.diff_id, plain, "{what}");
        assert_eq!(std::fs::read(f.root.join("a/b")).unwrap().len(), 100_000);
    }
}

#[test]
fn overlay_whiteouts() {
    let f = fixture();
    let data = tar(&[
        dir("d/"),
        file("d/.wh..wh..opq", b""),
        file(".wh.gone", b""),
    ]);
    apply("wh", &data[..], &f.root, Format::Overlay, Limits::default()).unwrap();
    let gone = std::fs::symlink_metadata(f.root.join("gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &gone.file_type()
    ));
    assert_eq!(gone.rdev(), 0);
    let mut buf = [0u8; 8];
    let p = std::ffi::CString::new(f.root.join("d").to_str().unwrap()).unwrap();
    // SAFETY: reading an xattr into a local buffer.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(&buf[..n as usize], b"y");
}

#[test]
fn plain_whiteouts_delete_lower_content_only() {
    let f = fixture();
    std::fs::create_dir_all(f.root.join("d/sub")).unwrap();
    std::fs::write(f.root.join("d/old"), "lower").unwrap();
    std::fs::write(f.root.join("gone"), "lower").unwrap();
    let data = tar(&[
        dir("d/"),
        file("d/.wh..wh..opq", b""),
        file("d/new", b"upper"),
        file(".wh.gone", b""),
    ]);
    apply(
        "plain",
        &data[..],
        &f.root,
        Format::Plain,
        Limits::default(),
    )
    .unwrap();
    assert!(!f.root.join("d/old").exists());
    assert!(!f.root.join("d/sub").exists());
    assert!(!f.root.join("gone").exists());
    assert_eq!(
        std::fs::read_to_string(f.root.join("d/new")).unwrap(),
        "upper"
    );
}

fn refused(entries: &[E], want: &str) {
    let f = fixture();
    let data = tar(entries);
    let err = apply(
        "evil",
        &data[..],
        &f.root,
        Format::Overlay,
        Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(want), "expected {want:?} in {err:?}");
    outside_untouched(&f);
}

#[test]
fn hostile_paths_are_refused() {
    refused(
        &[file("../outside/passwd", b"pwned")],
        "escapes the layer root",
    );
    refused(
        &[file("a/../../outside/passwd", b"pwned")],
        "escapes the layer root",
    );
    refused(&[file("/etc/passwd", b"pwned")], "absolute path");
}

#[test]
fn hostile_symlinks_are_refused() {
    let f = fixture();
    let outside = f.outside.to_str().unwrap().to_string();
    drop(f);
    refused(
        &[symlink("link", &outside), file("link/passwd", b"pwned")],
        "symlink",
    );
    refused(
        &[symlink("up", "../outside"), file("up/passwd", b"pwned")],
        "symlink",
    );
    refused(
        &[
            symlink("abs", "/"),
            dir("abs/etc/"),
            file("abs/etc/x", b"pwned"),
        ],
        "symlink",
    );
}

#[test]
fn hostile_hard_links_are_refused() {
    refused(
        &[hardlink("h", "../outside/passwd")],
        "hard link target escapes",
    );
    refused(&[hardlink("h", "/etc/passwd")], "hard link target escapes");
    // A link through a symlink planted earlier in the layer.
    let f = fixture();
    let outside = f.outside.to_str().unwrap().to_string();
    drop(f);
    refused(
        &[symlink("s", &outside), hardlink("h", "s/passwd")],
        "hard link target",
    );
}

#[test]
fn hostile_whiteouts_and_devices_are_refused() {
    refused(&[file(".wh...", b"")], "whiteout of an invalid name");
    refused(
        &[file("../outside/.wh.passwd", b"")],
        "escapes the layer root",
    );
    refused(
        &[E {
            dev: (8, 0),
            ..e("etc/disk", b'4')
        }],
        "device node outside /dev",
    );
    refused(
        &[E {
            dev: (1, 1),
            ..e("mem", b'3')
        }],
        "device node outside /dev",
    );
}

#[test]
fn tar_bomb_is_stopped_at_the_limit() {
    let f = fixture();
    let big = vec![0u8; 50 << 20];
    let data = tar(&[file("bomb", &big)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20, "the bomb is small when compressed");
    let err = apply(
        "bomb",
        &gz[..],
        &f.root,
        Format::Overlay,
        Limits {
            max_bytes: 10 << 20,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expands beyond"), "{err}");
    let written = std::fs::metadata(f.root.join("bomb"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written <= (10 << 20) + 1, "wrote {written} bytes");
    outside_untouched(&f);
}

#[test]
fn corrupt_streams_are_refused() {
    let data = tar(&[file("a", &[1u8; 300_000])]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let f = fixture();
    assert!(
        apply(
            "trunc",
            &gz[..gz.len() / 2],
            &f.root,
            Format::Overlay,
            Limits::default()
        )
        .is_err(),
        "truncated gzip"
    );
    let f = fixture();
    assert!(
        apply(
            "trunc-tar",
            &data[..700],
            &f.root,
            Format::Overlay,
            Limits::default()
        )
        .is_err(),
        "truncated tar"
    );
    let f = fixture();
    let mut garbage = data.clone();
    garbage[148] ^= 0xff; // break the header checksum
    assert!(
        apply(
            "garbage",
            &garbage[..],
            &f.root,
            Format::Overlay,
            Limits::default()
        )
        .is_err(),
        "bad checksum"
    );
}
