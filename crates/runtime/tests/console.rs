//! The terminal: the pty master arrives on `--console-socket` as runc sends it, and the
//! process has it as its controlling terminal and /dev/console.

mod common;
use common::*;

use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Accepts one connection and receives the fd it carries.
fn receive_master(listener: &UnixListener) -> (OwnedFd, String) {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    // SAFETY: SCM_RIGHTS handed us a new descriptor that nothing else owns.
    (
        unsafe { OwnedFd::from_raw_fd(fd.expect("a descriptor was sent")) },
        name,
    )
}

fn read_all(master: OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // EIO means the slave side closed: the process exited.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

#[test]
fn console_socket_receives_the_pty_master() {
    let mut b = Bundle::new(&["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo isatty; stty size; ls -l /dev/console | cut -c1; echo pgrp=$(ps -o pgid= -p $$ 2>/dev/null || echo skip)"]);
    b.spec["process"]["terminal"] = true.into();
    b.spec["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut c = b.cmd();
    c.args(["create", "--console-socket"])
        .arg(&sock)
        .args(["--bundle"])
        .arg(b.path())
        .arg(&b.id);
    let create = std::thread::spawn(move || c.status().unwrap());
    let (master, name) = receive_master(&listener);
    assert!(create.join().unwrap().success());
    assert!(
        name.starts_with("/dev/pts/"),
        "payload is the pty name: {name}"
    );
    b.verb_ok(&["start", &b.id]);
    let out = read_all(master);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{out}");
    assert_eq!(lines[1], "isatty", "{out}");
    assert_eq!(lines[2], "30 100", "{out}");
    assert_eq!(lines[3], "c", "/dev/console is the pty: {out}");
    wait_for(5, "stopped", || b.state()["status"] == "stopped");
    b.verb_ok(&["delete", &b.id]);
}

#[test]
fn exec_with_terminal() {
    let b = Bundle::new(&["sleep", "100"]);
    b.create();
    b.verb_ok(&["start", &b.id]);
    let sock = b.path().join("exec.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut c = b.cmd();
    c.args(["exec", "--tty", "--console-socket"])
        .arg(&sock)
        .arg(&b.id)
        .args(["sh", "-c", "[ -t 0 ] && echo exec-isatty"]);
    let exec = std::thread::spawn(move || c.status().unwrap());
    let (master, _) = receive_master(&listener);
    let out = read_all(master);
    assert!(exec.join().unwrap().success());
    assert_eq!(out.trim(), "exec-isatty");
    b.verb_ok(&["delete", "--force", &b.id]);
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let mut b = Bundle::new(&["true"]);
    b.spec["process"]["terminal"] = true.into();
    let out = b.verb(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("process.terminal"),
        "{}",
        stderr(&out)
    );
    assert!(!b.state_dir().exists());
}
