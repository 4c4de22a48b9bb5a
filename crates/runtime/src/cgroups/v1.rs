//! cgroup v1: one directory per hierarchy, one controller's files in each.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{keyed, read, read_u64, write, Hierarchy, MemoryStats, PidsStats, Stats};
use crate::error::{Error, Result};

/// Creates `dir` (and its parents). cpuset needs `cpus` and `mems` filled in before any task can
/// join, so new cpuset directories inherit them from their parent.
pub(super) fn create(hier: &Hierarchy, dir: &Path) -> Result<()> {
    let is_cpuset = hier.controllers.iter().any(|c| c == "cpuset");
    if !is_cpuset {
        return std::fs::create_dir_all(dir).map_err(|e| Error::Cgroup {
            path: dir.into(),
            reason: format!("create: {e}"),
        });
    }
    // Walk down from the mount point so each new level copies its parent's values.
    let rel = dir.strip_prefix(&hier.mount).unwrap_or(dir);
    let mut cur = hier.mount.clone();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        super::mkdir(&cur)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read(&cur, file)?.trim().is_empty() {
                let v = read(&parent, file)?;
                write(&cur, file, v.trim())?;
            }
        }
    }
    Ok(())
}

/// Applies the resources that belong to this hierarchy's controllers.
pub(super) fn apply(hier: &Hierarchy, dir: &Path, r: &LinuxResources) -> Result<()> {
    for c in &hier.controllers {
        match c.as_str() {
            "memory" => memory(dir, r)?,
            "cpu" => cpu(dir, r)?,
            "cpuset" => cpuset(dir, r)?,
            "pids" => pids(dir, r)?,
            "blkio" => blkio(dir, r)?,
            "devices" => {
                if let Some(rules) = r.devices() {
                    devices(dir, rules)?;
                }
            }
            "hugetlb" => hugetlb(dir, r)?,
            "net_cls" => net_cls(dir, r)?,
            "net_prio" => net_prio(dir, r)?,
            _ => {}
        }
    }
    Ok(())
}

fn memory(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    if let Some(limit) = m.limit() {
        let swap = m.swap();
        // With swap accounting, memory.limit must stay <= memsw.limit: order the writes.
        match swap {
            Some(sw) if dir.join("memory.memsw.limit_in_bytes").exists() => {
                if write(dir, "memory.limit_in_bytes", &limit.to_string()).is_err() {
                    write(dir, "memory.memsw.limit_in_bytes", &sw.to_string())?;
                    write(dir, "memory.limit_in_bytes", &limit.to_string())?;
                } else {
                    write(dir, "memory.memsw.limit_in_bytes", &sw.to_string())?;
                }
            }
            Some(sw) if sw > 0 && sw != limit => {
                return Err(Error::Cgroup {
                    path: dir.into(),
                    reason: "a swap limit was asked for but the kernel has no swap accounting \
                             (memory.memsw.limit_in_bytes is missing)"
                        .into(),
                })
            }
            _ => write(dir, "memory.limit_in_bytes", &limit.to_string())?,
        }
    }
    if let Some(v) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", &v.to_string())?;
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(Error::spec(
                "linux.resources.memory.swappiness",
                format!("{v}: must be 0..=100"),
            ));
        }
        write(dir, "memory.swappiness", &v.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

fn cpu(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(c) = r.cpu() else { return Ok(()) };
    if let Some(v) = c.shares() {
        write(dir, "cpu.shares", &v.to_string())?;
    }
    if let Some(v) = c.period() {
        write(dir, "cpu.cfs_period_us", &v.to_string())?;
    }
    if let Some(v) = c.quota() {
        write(dir, "cpu.cfs_quota_us", &v.to_string())?;
    }
    if let Some(v) = c.realtime_period() {
        write(dir, "cpu.rt_period_us", &v.to_string())?;
    }
    if let Some(v) = c.realtime_runtime() {
        write(dir, "cpu.rt_runtime_us", &v.to_string())?;
    }
    Ok(())
}

fn cpuset(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(c) = r.cpu() else { return Ok(()) };
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        write(dir, "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        write(dir, "cpuset.mems", v)?;
    }
    Ok(())
}

fn pids(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(p) = r.pids() else { return Ok(()) };
    let v = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_string()
    };
    write(dir, "pids.max", &v)
}

fn blkio(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(b) = r.block_io() else { return Ok(()) };
    // Kernels with the BFQ scheduler expose blkio.bfq.weight instead of blkio.weight; kernels
    // without CFQ or BFQ have neither, and cannot weight I/O at all.
    let weight_file = if dir.join("blkio.weight").exists() {
        "blkio.weight"
    } else if dir.join("blkio.bfq.weight").exists() {
        "blkio.bfq.weight"
    } else {
        let weights = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|w| !w.is_empty());
        if weights {
            return Err(Error::spec(
                "linux.resources.blockIO.weight",
                "this kernel's blkio controller has no weight files (blkio.weight, \
                 blkio.bfq.weight): it cannot weight I/O",
            ));
        }
        "blkio.weight"
    };
    if let Some(w) = b.weight() {
        write(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let file = if weight_file == "blkio.weight" {
                "blkio.weight_device"
            } else {
                "blkio.bfq.weight_device"
            };
            write(dir, file, &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for d in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

fn hugetlb(dir: &Path, r: &LinuxResources) -> Result<()> {
    for h in r.hugepage_limits().iter().flatten() {
        write(
            dir,
            &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            &h.limit().to_string(),
        )?;
    }
    Ok(())
}

fn net_cls(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(id) = r.network().as_ref().and_then(|n| n.class_id()) {
        write(dir, "net_cls.classid", &id.to_string())?;
    }
    Ok(())
}

fn net_prio(dir: &Path, r: &LinuxResources) -> Result<()> {
    for p in r
        .network()
        .as_ref()
        .and_then(|n| n.priorities().as_ref())
        .into_iter()
        .flatten()
    {
        write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

/// The devices controller: deny everything, then the spec's rules in order, then the defaults
/// (the list of `devices::effective`).
pub(super) fn devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    write(dir, "devices.deny", "a")?;
    for rule in super::devices::effective(Some(rules)).iter().skip(1) {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(dir, file, &rule.v1_line())?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    for _ in 0..1000 {
        write(dir, "freezer.state", want)?;
        if read(dir, "freezer.state")?.trim() == want {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // A freeze that did not complete is undone (as runc does): left FREEZING, the cgroup's
    // tasks would be stopped at random while the caller believes the freeze failed.
    if frozen {
        let _ = write(dir, "freezer.state", "THAWED");
    }
    Err(Error::Cgroup {
        path: dir.into(),
        reason: format!("the freezer did not reach {want}"),
    })
}

pub(super) fn frozen(dir: &Path) -> bool {
    read(dir, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN" || s.trim() == "FREEZING")
}

pub(super) fn stats(
    cpuacct: Option<&Path>,
    cpu: Option<&Path>,
    memory: Option<&Path>,
    pids: Option<&Path>,
    blkio: Option<&Path>,
) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = blkio {
        let entries = |f: &str| super::IoEntry::parse_v1(&read(d, f).unwrap_or_default());
        s.io_bytes = entries("blkio.throttle.io_service_bytes_recursive");
        s.io_ops = entries("blkio.throttle.io_serviced_recursive");
    }
    if let Some(d) = cpuacct {
        s.cpu.usage_total = read_u64(d, "cpuacct.usage");
        s.cpu.usage_user = read_u64(d, "cpuacct.usage_user");
        s.cpu.usage_kernel = read_u64(d, "cpuacct.usage_sys");
    }
    if let Some(d) = cpu {
        s.cpu.throttled_periods = keyed(&read(d, "cpu.stat").unwrap_or_default(), "nr_throttled");
    }
    if let Some(d) = memory {
        s.memory = MemoryStats {
            usage: read_u64(d, "memory.usage_in_bytes"),
            max_usage: read_u64(d, "memory.max_usage_in_bytes"),
            limit: read_u64(d, "memory.limit_in_bytes"),
            failcnt: read_u64(d, "memory.failcnt"),
        };
    }
    if let Some(d) = pids {
        let limit = read_u64(d, "pids.max");
        s.pids = PidsStats {
            current: read_u64(d, "pids.current"),
            limit: if limit == u64::MAX { 0 } else { limit },
        };
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules_format() {
        let line = |json: &str| {
            let r: LinuxDeviceCgroup = serde_json::from_str(json).unwrap();
            super::super::devices::effective(Some(&[r]))[1].v1_line()
        };
        assert_eq!(
            line(r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}"#),
            "c 10:200 rwm"
        );
        assert_eq!(line(r#"{"allow":false,"access":"rwm"}"#), "a *:* rwm");
        assert_eq!(
            line(r#"{"allow":true,"type":"b","major":8,"access":"r"}"#),
            "b 8:* r"
        );
    }
}
