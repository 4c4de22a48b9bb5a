//! What a container's cgroup reports: CPU, memory, pids and block I/O, in the shape of runc's
//! `events --stats`, and the parsers of the kernel's block I/O files.

use serde::{Deserialize, Serialize};

/// Resource usage of a container, in the shape of runc's `events --stats`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    /// Block I/O in bytes and in operations, per device and operation.
    pub io_bytes: Vec<IoEntry>,
    pub io_ops: Vec<IoEntry>,
}

/// One device's count for one kind of block I/O: v1's `Read`, `Write`, `Sync`, `Async`,
/// `Discard`, `Total`, as `blkio.throttle.*_recursive` names them (the kernel here counts
/// only for devices that have a throttle rule), or v2's `read` and `write` from `io.stat`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

impl IoEntry {
    /// The lines `MAJ:MIN Op value` of a v1 blkio file (its device-less `Total` left out).
    pub(crate) fn parse_v1(text: &str) -> Vec<IoEntry> {
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
                let (major, minor) = dev.split_once(':')?;
                Some(IoEntry {
                    major: major.parse().ok()?,
                    minor: minor.parse().ok()?,
                    op: op.to_string(),
                    value: value.parse().ok()?,
                })
            })
            .collect()
    }

    /// v2's `io.stat` (`MAJ:MIN rbytes=… wbytes=… rios=… wios=…`): bytes, and operations.
    pub(crate) fn parse_v2(text: &str) -> (Vec<IoEntry>, Vec<IoEntry>) {
        let (mut bytes, mut ops) = (Vec::new(), Vec::new());
        for l in text.lines() {
            let mut f = l.split_whitespace();
            let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
                continue;
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut bytes, "read"),
                    "wbytes" => (&mut bytes, "write"),
                    "rios" => (&mut ops, "read"),
                    "wios" => (&mut ops, "write"),
                    _ => continue,
                };
                list.push(IoEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
        (bytes, ops)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Total CPU time in nanoseconds.
    pub usage_total: u64,
    /// Time in user mode, nanoseconds.
    pub usage_user: u64,
    /// Time in kernel mode, nanoseconds.
    pub usage_kernel: u64,
    /// Periods throttled by a CPU quota.
    pub throttled_periods: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    pub usage: u64,
    pub max_usage: u64,
    /// u64::MAX when unlimited.
    pub limit: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    pub current: u64,
    /// 0 when unlimited.
    pub limit: u64,
}
