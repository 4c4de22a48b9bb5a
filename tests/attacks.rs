//! The escape suite's attacks, shared by the test files that run them (`escapes`, and the
//! systemd cgroup driver's): the static attack program (tests/attacks/attack.c), the image
//! that carries it, the verdict of a run, and a host block device to attack.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{ok, Berthd};

/// The attack program, compiled once per test binary.
pub fn attack_binary() -> &'static Path {
    static BIN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = BIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("attack");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks/attack.c");
        let r = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("gcc is needed (scripts/install-deps installs it)");
        assert!(
            r.status.success(),
            "gcc -static attack.c: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        (dir, out)
    });
    p
}

/// Builds the `attack` image in `d`: busybox, `/attack`, and `/evil` (`#!/proc/self/exe`).
pub fn install_attack_image(d: &Berthd) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(attack_binary(), ctx.path().join("attack")).unwrap();
    std::fs::write(ctx.path().join("evil"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(
        ctx.path().join("evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY attack evil /\n",
    )
    .unwrap();
    ok(d.berth(&[
        "build",
        "-q",
        "-t",
        "attack",
        &ctx.path().display().to_string(),
    ]));
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Escaped(String),
    /// The refusal, and its errno when the program named one.
    Blocked(String, Option<i32>),
}

/// Runs `/attack args` in a new container with `flags`.
pub fn attack(d: &Berthd, flags: &[&str], args: &[&str]) -> Verdict {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(flags);
    a.push("attack");
    a.push("/attack");
    a.extend_from_slice(args);
    let out = d.berth(&a);
    verdict(&out, &a)
}

pub fn verdict(out: &std::process::Output, what: &[&str]) -> Verdict {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let last = text.lines().last().unwrap_or("").to_string();
    match (out.status.code(), last.split_once(' ')) {
        (Some(0), Some(("ESCAPED", _))) => Verdict::Escaped(last),
        (Some(1), Some(("BLOCKED", _))) => {
            let errno = last
                .rsplit_once("(errno ")
                .and_then(|(_, e)| e.trim_end_matches(')').parse().ok());
            Verdict::Blocked(last, errno)
        }
        _ => panic!(
            "{what:?}: the attack did not run to a verdict (exit {:?}):\n{text}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A loop device over a file whose first sector the test wrote: a block device of the host
/// that the container must not be able to read through a node of its own.
#[derive(Debug)]
pub struct LoopDevice {
    pub dev: String,
    _file: tempfile::NamedTempFile,
}

impl LoopDevice {
    pub fn attach() -> LoopDevice {
        let file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        std::fs::write(file.path(), vec![0x42u8; 1 << 20]).unwrap();
        let dev = ok(Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file.path())
            .output()
            .unwrap());
        LoopDevice { dev, _file: file }
    }

    /// Its major and minor numbers.
    pub fn numbers(&self) -> (String, String) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.dev).unwrap().rdev();
        (libc::major(rdev).to_string(), libc::minor(rdev).to_string())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// `--device` gives the container the node, readable and not writable; `--device-cgroup-rule`
/// lets the attack's own node of the same device open.
pub fn device_flags_open_the_device(d: &Berthd, disk: &LoopDevice) {
    let (maj, min) = disk.numbers();
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--device",
        &format!("{}:/dev/xvda:r", disk.dev),
        "busybox",
        "sh",
        "-c",
        "head -c 512 /dev/xvda | wc -c; echo x > /dev/xvda 2>&1 || echo write refused",
    ]));
    assert_eq!(out, "512\nwrite refused", "--device /dev/loop:/dev/xvda:r");
    let rule = format!("b {maj}:{min} r");
    match attack(
        d,
        &["--device-cgroup-rule", &rule],
        &["mknod-disk", &maj, &min],
    ) {
        Verdict::Escaped(_) => {}
        v => panic!("--device-cgroup-rule {rule}: {v:?}"),
    }
}
