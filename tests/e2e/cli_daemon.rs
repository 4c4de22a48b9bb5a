//! The berth CLI against berthd, and against a real dockerd: both are Engine API clients and
//! servers, so each must work with the other side's real implementation.

use berth_e2e::{binary, Berthd};
use std::process::Command;

#[test]
fn berth_version_against_berthd() {
    let d = Berthd::start();
    let out = d.berth(&["version"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Server: berth"), "{text}");
    assert!(
        text.contains("API version:      1.50 (minimum version 1.24)"),
        "{text}"
    );
    let json = d.berth(&["version", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["Server"]["ApiVersion"], "1.50");
    assert_eq!(v["Client"]["ApiVersion"], "1.50");
}

#[test]
fn berth_version_against_dockerd_negotiates_down() {
    let dockerd = berth_e2e::peers::Dockerd::start();
    let host = format!("unix://{}/docker.sock", dockerd.dir.path().display());
    let mut out = None;
    for _ in 0..150 {
        let o = Command::new(binary("berth"))
            .args(["-H", &host, "version", "--format", "json"])
            .output()
            .unwrap();
        if o.status.success() {
            out = Some(o);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dockerd.dir.path().join("log.err")).unwrap_or_default();
    drop(dockerd);
    let out = out.unwrap_or_else(|| panic!("dockerd never answered: {log}"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["Server"]["ApiVersion"], "1.41",
        "dockerd 20.10 speaks 1.41: {v}"
    );
    assert!(
        v["Server"]["Version"]
            .as_str()
            .unwrap()
            .starts_with("20.10"),
        "{v}"
    );
}

#[test]
fn berth_reports_an_unreachable_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary("berth"))
        .args([
            "-H",
            &format!("unix://{}/none.sock", dir.path().display()),
            "version",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot connect to the berth daemon"));
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definitions() {
    let berth = berth_e2e::binary("berth");
    // Each shell's registration, which asks berth itself at each TAB (completions of flags
    // and of names are tested through a real bash in tests/e2e/cli_format.rs).
    for (shell, marker) in [
        ("bash", "complete -o nospace"),
        ("zsh", "#compdef berth"),
        ("fish", "complete --keep-order --exclusive --command berth"),
    ] {
        let out = std::process::Command::new(&berth)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(marker)
                && (text.contains(&format!("COMPLETE=\"{shell}\""))
                    || text.contains(&format!("COMPLETE={shell}"))),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&berth)
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_to_string(dir.path().join("berth-run.1")).unwrap();
    assert!(
        run.contains(".TH berth-run") && run.contains("restart"),
        "{run}"
    );
    assert!(dir.path().join("berth.1").exists() && dir.path().join("berth-ps.1").exists());
}

/// berthd under systemd socket activation (contrib/systemd/berth.socket): it takes the socket
/// systemd passes instead of binding its own. `systemd-socket-activate` plays systemd here.
#[test]
fn berthd_accepts_a_socket_from_systemd() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("act.sock");
    std::fs::write(d.path().join("daemon.json"), "{}").unwrap();
    let mut child = std::process::Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .arg(berth_e2e::binary("berthd"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .arg("--data-root")
        .arg(d.path().join("data"))
        .arg("--exec-root")
        .arg(d.path().join("exec"))
        .arg("--config-file")
        .arg(d.path().join("daemon.json"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("systemd-socket-activate (package systemd)");
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = std::process::Command::new(berth_e2e::binary("berth"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
}

/// The cgroup2 mount's file-system options, from /proc/self/mountinfo.
fn cgroup2_options() -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find_map(|l| {
            let (_, post) = l.split_once(" - ")?;
            let f: Vec<&str> = post.split(' ').collect();
            (f[0] == "cgroup2").then(|| f[2].to_string())
        })
        .expect("this machine mounts cgroup2")
}

/// `--cgroup-favordynmods` turns the option on, keeps the mount's other options, and
/// containers run; the test puts the host back as it was.
#[test]
fn berthd_turns_favordynmods_on_when_asked() {
    let before = cgroup2_options();
    let was_on = before.split(',').any(|o| o == "favordynmods");
    let mount = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .map(|l| l.split(' ').nth(4).unwrap().to_string())
        .unwrap();
    let restore = || {
        let kept: Vec<&str> = before
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        let data = std::ffi::CString::new(kept.join(",")).unwrap();
        let target = std::ffi::CString::new(mount.clone()).unwrap();
        // SAFETY: remount with live, NUL-terminated strings; no source or type for a remount.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "restore {mount}: {}", std::io::Error::last_os_error());
    };
    let d = Berthd::start_with_args(berth_e2e::busybox_image, &["--cgroup-favordynmods".into()]);
    let now = cgroup2_options();
    let out = d.berth(&["run", "--rm", "busybox", "echo", "ok"]);
    if !was_on {
        restore();
    }
    assert!(now.split(',').any(|o| o == "favordynmods"), "{now}");
    for o in before.split(',') {
        assert!(now.split(',').any(|x| x == o), "{o} was lost: {now}");
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{out:?}");
    assert_eq!(cgroup2_options(), before, "the host was put back");
}
