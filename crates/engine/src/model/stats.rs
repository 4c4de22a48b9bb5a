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
}
