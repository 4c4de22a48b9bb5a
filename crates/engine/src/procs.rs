//! Host process information for `top` and `stats`, read from /proc (the binaries are static,
//! so user names come from /etc/passwd read by hand, never through NSS).

/// Clock ticks per second.
fn ticks() -> u64 {
    // SAFETY: sysconf with a valid name has no side effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Total host CPU time in nanoseconds (the first line of /proc/stat).
pub fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let jiffies: u64 = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    jiffies * (1_000_000_000 / ticks())
}

/// Host memory in bytes.
pub fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// `ps -ef`'s columns for a host pid: UID PID PPID C STIME TTY TIME CMD.
pub fn ps_row(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let close = stat.rfind(')')?;
    let comm = &stat[stat.find('(')? + 1..close];
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // Fields after the command: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) ... utime(11)
    // stime(12) ... starttime(19).
    let ppid = f.get(1)?.to_string();
    let tty_nr: u32 = f.get(4)?.parse().ok()?;
    let cpu = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let t = ticks();
    let secs = cpu / t;
    let time = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let started = boot + start / t;
    let sod = started % 86_400;
    let stime = format!("{:02}:{:02}", sod / 3600, sod % 3600 / 60);
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        if major == 136 {
            format!("pts/{minor}")
        } else {
            format!("tty{minor}")
        }
    };
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(vec![
        user_name(uid),
        pid.to_string(),
        ppid,
        "0".into(),
        stime,
        tty,
        time,
        cmd,
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_process_row() {
        let r = super::ps_row(std::process::id() as i32).unwrap();
        assert_eq!(r.len(), 8);
        assert_eq!(r[1], std::process::id().to_string());
        assert!(super::system_cpu_ns() > 0 && super::mem_total() > 0);
    }
}
