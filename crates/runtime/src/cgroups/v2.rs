//! cgroup v2: one directory, controllers enabled from the root down through
//! `cgroup.subtree_control`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{keyed, read, read_u64, write, CpuStats, MemoryStats, PidsStats, Stats};
use crate::error::{Error, Result};

/// Creates `dir`. On a unified host the controllers the parent has are enabled for children at
/// every level; in hybrid mode the cgroup2 tree carries no controllers and is joined only so
/// that tools that look at `0::` see the container, as runc does.
pub(super) fn create(mount: &Path, dir: &Path, enable: bool) -> Result<()> {
    if enable {
        // `dir`'s own subtree is not enabled: that is the caller's, for the level below.
        let rel = dir.strip_prefix(mount).unwrap_or(dir);
        let mut cur = mount.to_path_buf();
        let comps: Vec<_> = rel.components().collect();
        for comp in comps.iter() {
            let available = read(&cur, "cgroup.controllers").unwrap_or_default();
            let want: Vec<String> = available
                .split_whitespace()
                .filter(|c| matches!(*c, "cpu" | "cpuset" | "memory" | "pids" | "io" | "hugetlb"))
                .map(|c| format!("+{c}"))
                .collect();
            if !want.is_empty() {
                // Best effort: a parent with processes of its own cannot delegate ("no internal
                // processes"); limits then fail loudly when applied.
                let _ = write(&cur, "cgroup.subtree_control", &want.join(" "));
            }
            cur.push(comp);
            super::mkdir(&cur)?;
        }
        Ok(())
    } else {
        std::fs::create_dir_all(dir).map_err(|e| Error::Cgroup {
            path: dir.into(),
            reason: format!("create: {e}"),
        })
    }
}

/// Enables for `dir`'s children the controllers `dir` has (the systemd driver's scope, once
/// systemd has put the container's process in it and berth has moved it one level down: a
/// cgroup with processes cannot delegate).
pub(super) fn enable_children(dir: &Path) -> Result<()> {
    let available = read(dir, "cgroup.controllers").unwrap_or_default();
    let want: Vec<String> = available
        .split_whitespace()
        .filter(|c| matches!(*c, "cpu" | "cpuset" | "memory" | "pids" | "io" | "hugetlb"))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    write(dir, "cgroup.subtree_control", &want.join(" "))
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), as runc converts.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

pub(super) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit() {
            let v = if limit < 0 {
                "max".into()
            } else {
                limit.to_string()
            };
            write(dir, "memory.max", &v)?;
            // The spec's swap is memory+swap (v1 semantics); v2 limits swap alone.
            if let Some(sw) = m.swap() {
                let v = if sw < 0 {
                    "max".to_string()
                } else {
                    sw.saturating_sub(limit.max(0)).to_string()
                };
                if dir.join("memory.swap.max").exists() {
                    write(dir, "memory.swap.max", &v)?;
                }
            }
        }
        if let Some(v) = m.reservation() {
            write(dir, "memory.low", &v.to_string())?;
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s > 0) {
            write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let period = c.period().unwrap_or(100_000);
            let quota = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            write(dir, "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.mems", v)?;
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_string()
        };
        write(dir, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight() {
            write(
                dir,
                "io.weight",
                &format!("default {}", blkio_to_io_weight(w)),
            )?;
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for d in list.iter().flatten() {
                write(
                    dir,
                    "io.max",
                    &format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        write(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &h.limit().to_string(),
        )?;
    }
    if let Some(rules) = r.devices() {
        super::bpf::apply(dir, &super::devices::effective(Some(rules)))?;
    }
    for (k, v) in r.unified().iter().flatten() {
        if k.contains('/') || k.starts_with('.') {
            return Err(Error::spec(
                "linux.resources.unified",
                format!("{k}: not a cgroup file name"),
            ));
        }
        write(dir, k, v)?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    for _ in 0..1000 {
        let events = read(dir, "cgroup.events")?;
        if (keyed(&events, "frozen") == 1) == frozen {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // A freeze that did not complete is undone (see v1::freeze).
    if frozen {
        let _ = write(dir, "cgroup.freeze", "0");
    }
    Err(Error::Cgroup {
        path: dir.into(),
        reason: "the cgroup did not reach the requested freezer state".into(),
    })
}

pub(super) fn frozen(dir: &Path) -> bool {
    read(dir, "cgroup.freeze").is_ok_and(|s| s.trim() == "1")
}

pub(super) fn stats(dir: &Path) -> Result<Stats> {
    let cpu = read(dir, "cpu.stat").unwrap_or_default();
    let pids_max = read_u64(dir, "pids.max");
    let (io_bytes, io_ops) = super::IoEntry::parse_v2(&read(dir, "io.stat").unwrap_or_default());
    Ok(Stats {
        io_bytes,
        io_ops,
        cpu: CpuStats {
            usage_total: keyed(&cpu, "usage_usec") * 1000,
            usage_user: keyed(&cpu, "user_usec") * 1000,
            usage_kernel: keyed(&cpu, "system_usec") * 1000,
            throttled_periods: keyed(&cpu, "nr_throttled"),
        },
        memory: MemoryStats {
            usage: read_u64(dir, "memory.current"),
            max_usage: read_u64(dir, "memory.peak"),
            limit: read_u64(dir, "memory.max"),
            failcnt: keyed(&read(dir, "memory.events").unwrap_or_default(), "max"),
        },
        pids: PidsStats {
            current: read_u64(dir, "pids.current"),
            limit: if pids_max == u64::MAX { 0 } else { pids_max },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_weights_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }
}
