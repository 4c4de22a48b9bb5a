//! A real systemd as PID 1 of a pid and mount namespace of the test's own, for the systemd
//! cgroup driver's tests: this machine kind's init is not systemd, but Debian's systemd runs
//! as a container's init (`container=` set), manages the cgroup subtree it is started in, and
//! serves its D-Bus API on `/run/systemd/private` in its mount namespace. It boots a target
//! of its own (no host services start), with a private tmpfs on `/run`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The systemd; killed (and its cgroups removed) on drop.
#[derive(Debug)]
pub struct SystemdNs {
    child: Child,
    /// systemd's pid in the test's pid namespace.
    pub pid: u32,
    /// The cgroup it manages, in every hierarchy (`/berth-sd-<pid>-<n>`).
    pub cgroup: String,
}

const BOOT: &str = r#"
set -e
mount --make-rprivate /
mount -t proc proc /proc
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
printf '[Unit]\nDescription=berth systemd test\n' > /run/systemd/system/berth-test.target
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [ -e "$h/cgroup.procs" ] || continue
  mkdir -p "$h$CG" && echo $$ > "$h$CG/cgroup.procs" 2>/dev/null || true
done
exec env -i container=berth-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --unit=berth-test.target --log-target=console
"#;

impl SystemdNs {
    /// Boots it and waits (at most 20 s) until `systemctl is-system-running` answers.
    pub fn start() -> SystemdNs {
        assert!(
            std::path::Path::new("/lib/systemd/systemd").exists(),
            "the systemd cgroup driver's tests need systemd installed (Debian's systemd package)"
        );
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cgroup = format!("berth-sd-{}-{n}", std::process::id());
        let child = Command::new("unshare")
            .args(["--pid", "--mount", "--fork", "sh", "-c", BOOT])
            .env("CG", &cgroup)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare");
        let mut sd = SystemdNs {
            pid: 0,
            child,
            cgroup,
        };
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if sd.pid == 0 {
                sd.pid = find_init(sd.child.id()).unwrap_or(0);
            }
            if sd.pid != 0 {
                let out = sd.systemctl(&["is-system-running"]);
                let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if state == "running" || state == "degraded" {
                    return sd;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("systemd did not come up in its namespace in 20 s");
    }

    /// The command prefix that runs a program in its namespaces.
    pub fn wrap(&self) -> Vec<String> {
        ["nsenter", "-t", &self.pid.to_string(), "-m", "-p", "--"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// `systemctl args` against this systemd.
    pub fn systemctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-p", "--", "systemctl"])
            .args(args)
            .output()
            .unwrap()
    }

    /// A property of a unit (`systemctl show -p P --value`).
    pub fn property(&self, unit: &str, p: &str) -> String {
        let out = self.systemctl(&["show", "-p", p, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// The systemd that `unshare` (pid `parent`) forked: its child named systemd.
fn find_init(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (comm, rest) = stat.split_once(") ")?;
        let ppid: u32 = rest.split(' ').nth(1)?.parse().ok()?;
        (ppid == parent && comm.ends_with("(systemd")).then_some(pid)
    })
}

impl Drop for SystemdNs {
    fn drop(&mut self) {
        // The namespace's init: every process of the namespace dies with it.
        if self.pid != 0 {
            // SAFETY: kill(2) of the systemd this value started.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its cgroups, deepest first, once their processes are gone.
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let mut dirs: Vec<std::path::PathBuf> = Vec::new();
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                collect(&h.path().join(&self.cgroup), &mut dirs);
            }
            collect(
                &std::path::Path::new("/sys/fs/cgroup").join(&self.cgroup),
                &mut dirs,
            );
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            let left = dirs
                .iter()
                .filter(|d| std::fs::remove_dir(d).is_err())
                .count();
            if left == 0 || Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&e.path(), out);
        }
    }
    out.push(dir.to_path_buf());
}
