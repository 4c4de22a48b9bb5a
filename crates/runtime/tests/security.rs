//! Host protections: the runtime binary cannot be overwritten from a container
//! (CVE-2019-5736) and no host descriptor leaks into it (CVE-2024-21626).

mod common;
use common::*;

use std::os::unix::process::CommandExt;

#[test]
fn runtime_binary_is_sealed_from_the_container() {
    // A created container's init still runs the runtime binary, waiting for `start`. A process
    // in the container with CAP_SYS_PTRACE can open init's /proc/1/exe: it must not be writable.
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth-runtime"));
    let before = std::fs::read(exe).unwrap();
    let b = Bundle::new(&["sleep", "100"]);
    b.create();
    let out = b.verb(&[
        "exec",
        "--cap",
        "CAP_SYS_PTRACE",
        &b.id,
        "sh",
        "-c",
        "stat -L -f -c %t /proc/1/exe; echo overwritten >> /proc/1/exe",
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.starts_with("794c7630"),
        "init runs from a read-only overlay: {text}"
    );
    assert!(text.contains("Read-only file system"), "{text}");
    assert_eq!(
        std::fs::read(exe).unwrap(),
        before,
        "the runtime binary was modified"
    );
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn host_descriptors_do_not_leak() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/cwd",
    ]);
    b.write();
    let leaked = std::fs::File::open("/etc/hostname").unwrap();
    let leaked_fd = std::os::fd::AsRawFd::as_raw_fd(&leaked);
    let run = |preserve: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth-runtime"));
        c.arg("--root")
            .arg(&b.root)
            .args(["run", "--preserve-fds", preserve, "--bundle"])
            .arg(b.path())
            .arg(&b.id);
        // SAFETY: dup2 in the child before exec; no allocation, async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                libc::dup2(leaked_fd, 5);
                Ok(())
            });
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let out = run("0");
    let fds: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    // 0, 1, 2 and the directory ls is reading.
    assert_eq!(
        fds.len(),
        4,
        "unexpected descriptors in the container: {out}"
    );
    assert!(!fds.contains(&"5"), "{out}");
    assert_eq!(
        out.lines().nth(1),
        Some("/"),
        "cwd is inside the container: {out}"
    );
    // --preserve-fds 3 passes 3, 4 and 5 on purpose.
    let out = run("3");
    assert!(out.split_whitespace().any(|f| f == "5"), "{out}");
}

/// CVE-2024-21626: a working directory through a descriptor the runtime still holds when it
/// changes directory (`/proc/self/fd/N`, closed only by the exec) lands outside the root. The
/// runtime refuses such a cwd instead of running the process there.
#[test]
fn a_cwd_through_a_leaked_directory_descriptor_is_refused() {
    let mut b = Bundle::new(&["sh", "-c", "pwd; ls"]);
    b.spec["process"]["cwd"] = "/proc/self/fd/5".into();
    b.write();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("host-only-file"), "x").unwrap();
    let dir = std::fs::File::open(host_dir.path()).unwrap();
    let dir_fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth-runtime"));
    c.arg("--root")
        .arg(&b.root)
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&b.id);
    // SAFETY: dup2 in the child before exec; no allocation, async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            libc::dup2(dir_fd, 5);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(
        !stdout(&out).contains("host-only-file"),
        "the process ran in the host's directory: {}",
        stdout(&out)
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("outside the container's root"),
        "{}",
        stderr(&out)
    );
}
