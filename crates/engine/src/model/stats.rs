//! One sample of a running container's resource use, as the engine measures it; the API
//! front end renders it (Docker's `stats` JSON pairs two samples for CPU percentages).

use std::time::SystemTime;

use crate::id::ContainerId;

/// Resource use of one container at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSample {
    /// When it was taken.
    pub read: SystemTime,
    /// Without the leading slash.
    pub name: String,
    pub id: ContainerId,
    /// Processes in the container, and its limit (0: none).
    pub pids: u64,
    pub pids_limit: u64,
    /// CPU time in nanoseconds: all, kernel mode, user mode.
    pub cpu_total_ns: u64,
    pub cpu_kernel_ns: u64,
    pub cpu_user_ns: u64,
    /// Periods the CPU quota throttled.
    pub throttled_periods: u64,
    /// The host's CPU time in nanoseconds, and its CPU count.
    pub system_cpu_ns: u64,
    pub online_cpus: usize,
    /// Memory in bytes: now, the peak, the limit (the host's memory when unlimited), and how
    /// often the limit was hit.
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    pub memory_limit: u64,
    pub memory_failcnt: u64,
    /// Traffic of each interface in the container's network namespace (not `lo`).
    pub networks: Vec<NetStats>,
    /// Block I/O per device and operation: bytes, and operations.
    pub io_bytes: Vec<berth_shim::CgroupIoEntry>,
    pub io_ops: Vec<berth_shim::CgroupIoEntry>,
}

/// One interface's counters, as `/proc/net/dev` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl NetStats {
    /// The interfaces of a `/proc/<pid>/net/dev` text, `lo` left out.
    pub fn parse(text: &str) -> Vec<NetStats> {
        text.lines()
            .skip(2)
            .filter_map(|l| {
                let (name, rest) = l.split_once(':')?;
                let name = name.trim();
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .map(|v| v.parse().unwrap_or(0))
                    .collect();
                (name != "lo" && f.len() >= 12).then(|| NetStats {
                    name: name.to_string(),
                    rx_bytes: f[0],
                    rx_packets: f[1],
                    rx_errors: f[2],
                    rx_dropped: f[3],
                    tx_bytes: f[8],
                    tx_packets: f[9],
                    tx_errors: f[10],
                    tx_dropped: f[11],
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:      10       1    0    0    0     0          0         0       10       1    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      726       9    3    4    0     0       0          0
";
        let n = NetStats::parse(text);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (
                n[0].name.as_str(),
                n[0].rx_bytes,
                n[0].rx_dropped,
                n[0].tx_packets,
                n[0].tx_dropped
            ),
            ("eth0", 1296, 2, 9, 4)
        );
    }
}
