//! Device rules on the real kernel, in both layouts: the v1 devices controller (`host` on this
//! hybrid machine) and the eBPF device program on cgroup2 (`--cgroup-hierarchy unified`). A
//! container with CAP_MKNOD makes a node for a loop device the test attached on the host and
//! tries to read it; the rules decide. Each refusal is paired with a run where the rules let
//! the same read through, so no check passes because the probe itself is broken.

mod common;

use std::process::Command;

use common::*;

/// A loop device over a 1 MiB file whose first sector says `berth-loop-marker`.
struct Loop {
    dev: String,
    major: u32,
    minor: u32,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn attach() -> Loop {
        let file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        let mut data = b"berth-loop-marker".to_vec();
        data.resize(1 << 20, 0);
        std::fs::write(file.path(), &data).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file.path())
            .output()
            .expect("losetup (util-linux) runs");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&dev).unwrap().rdev();
        Loop {
            dev,
            major: libc::major(rdev),
            minor: libc::minor(rdev),
            _file: file,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// The shell probe: make a node for `b major:minor` and read its first sector; prints `read
/// <marker>` or `refused <error>`, then `open` or `failed: <error>` for /dev/mem and /dev/kmsg
/// (the device cgroup's refusal is EPERM; this kernel has no /dev/mem, so even an allowed
/// open of it fails, with ENXIO).
fn probe(l: &Loop) -> String {
    format!(
        "mknod /tmp/d b {} {} || exit 9; \
         if head -c 17 /tmp/d > /tmp/out 2>/tmp/err; then echo read $(cat /tmp/out); \
         else echo refused $(cat /tmp/err); fi; \
         mknod /tmp/mem c 1 1; mknod /tmp/kmsg c 1 11; \
         for d in mem kmsg; do if head -c 1 /tmp/$d >/dev/null 2>/tmp/err; then echo $d open; \
         else echo $d failed: $(cat /tmp/err); fi; done; \
         cat /proc/self/cgroup",
        l.major, l.minor
    )
}

fn bundle(l: &Loop, rules: serde_json::Value) -> Bundle {
    let mut b = Bundle::new(&["sh", "-c", &probe(l)]);
    let caps = &mut b.spec["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        caps[set].as_array_mut().unwrap().push("CAP_MKNOD".into());
    }
    b.spec["linux"]["resources"]["devices"] = rules;
    b.spec["root"]["readonly"] = false.into();
    b
}

fn run_in(b: &Bundle, layout: &str) -> String {
    let out = b
        .cmd()
        .args(["--cgroup-hierarchy", layout, "run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{layout}: run: {out:?}");
    stdout(&out)
}

fn deny_all() -> serde_json::Value {
    serde_json::json!([{"allow": false, "access": "rwm"}])
}

#[test]
fn device_rules_hold_in_both_layouts() {
    require_root();
    let l = Loop::attach();
    for layout in ["host", "unified"] {
        // Docker's default: everything denied but the standard nodes.
        let out = run_in(&bundle(&l, deny_all()), layout);
        assert!(out.contains("refused"), "{layout}: {out}");
        assert!(!out.contains("berth-loop-marker"), "{layout}: {out}");
        assert!(
            out.contains("mem failed: head: /tmp/mem: Operation not permitted"),
            "{layout}: {out}"
        );
        assert!(
            out.contains("kmsg failed: head: /tmp/kmsg: Operation not permitted"),
            "{layout}: {out}"
        );
        // `--device`: the one device allowed, read only.
        let rules = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": l.major, "minor": l.minor, "access": "r"},
        ]);
        let out = run_in(&bundle(&l, rules), layout);
        assert!(out.contains("read berth-loop-marker"), "{layout}: {out}");
        assert!(
            out.contains("mem failed: head: /tmp/mem: Operation not permitted"),
            "{layout}: {out}"
        );
        // `--privileged`: everything.
        let rules = serde_json::json!([{"allow": true, "access": "rwm"}]);
        let out = run_in(&bundle(&l, rules), layout);
        assert!(out.contains("read berth-loop-marker"), "{layout}: {out}");
        let mem = out
            .lines()
            .find(|l| l.starts_with("mem "))
            .unwrap_or_default();
        assert!(!mem.contains("Operation not permitted"), "{layout}: {out}");
    }
}

/// `update` swaps the program: the new rules hold at once and the old program is gone.
#[test]
fn update_replaces_the_device_program() {
    require_root();
    let l = Loop::attach();
    let script = format!(
        "mknod /tmp/d b {} {}; while true; do \
         if head -c 17 /tmp/d > /tmp/out 2>/dev/null; then cat /tmp/out > /tmp/state; \
         else echo refused > /tmp/state; fi; sleep 0.1; done",
        l.major, l.minor
    );
    let mut b = bundle(&l, deny_all());
    b.spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    let st = b
        .cmd()
        .args(["--cgroup-hierarchy", "unified", "run", "-d", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(b.path().join("run.err")).unwrap())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "run -d: {}",
        std::fs::read_to_string(b.path().join("run.err")).unwrap_or_default()
    );
    let state = |b: &Bundle| {
        let pid = b.state()["pid"].as_i64().unwrap();
        std::fs::read_to_string(format!("/proc/{pid}/root/tmp/state")).unwrap_or_default()
    };
    wait_for(10, "the first probe", || state(&b).contains("refused"));
    // Placed as on a pure v2 host: in its own cgroup2 directory, in no v1 cgroup of its own.
    let pid = b.state()["pid"].as_i64().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cgroups.lines() {
        assert_eq!(
            line.contains(&b.id),
            line.starts_with("0::"),
            "unified layout: {cgroups}"
        );
    }
    let programs = |b: &Bundle| {
        let dir = b.cgroup_dirs_in("unified");
        bpftool_progs(&dir[0])
    };
    assert_eq!(programs(&b), 1, "one device program at start");
    let res = b.path().join("res.json");
    let allow = serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": l.major, "minor": l.minor, "access": "r"},
    ]});
    std::fs::write(&res, allow.to_string()).unwrap();
    b.verb_ok(&["update", "-r", res.to_str().unwrap(), &b.id]);
    wait_for(10, "the read after update", || {
        state(&b).contains("berth-loop-marker")
    });
    assert_eq!(programs(&b), 1, "the old program was detached");
    std::fs::write(&res, serde_json::json!({"devices": deny_all()}).to_string()).unwrap();
    b.verb_ok(&["update", "-r", res.to_str().unwrap(), &b.id]);
    wait_for(10, "the refusal after the second update", || {
        state(&b).contains("refused")
    });
    b.verb_ok(&["kill", &b.id, "KILL"]);
    wait_for(10, "the container to stop", || {
        b.state()["status"] == "stopped"
    });
    b.verb_ok(&["delete", &b.id]);
}

/// How many device programs are attached to the cgroup directory `dir` itself, by the
/// kernel's own account (`/proc/<pid>/fdinfo` of the runtime is no help once it exited, so
/// count them through the BPF_PROG_QUERY that bpftool uses, from the test's side).
fn bpftool_progs(dir: &std::path::Path) -> usize {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).unwrap();
    let mut ids = [0u32; 16];
    let mut attr = [0u8; 40];
    attr[0..4].copy_from_slice(&(f.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&6u32.to_ne_bytes()); // BPF_CGROUP_DEVICE
    attr[16..24].copy_from_slice(&(ids.as_mut_ptr() as u64).to_ne_bytes());
    attr[24..28].copy_from_slice(&16u32.to_ne_bytes());
    // SAFETY: BPF_PROG_QUERY (16) with a zeroed attr holding a live descriptor and a live
    // buffer of the length given.
    let r = unsafe { libc::syscall(libc::SYS_bpf, 16, attr.as_mut_ptr(), attr.len()) };
    assert!(
        r == 0,
        "BPF_PROG_QUERY: {}",
        std::io::Error::last_os_error()
    );
    u32::from_ne_bytes([attr[24], attr[25], attr[26], attr[27]]) as usize
}
