//! A live change of a running (or stopped) container's limits (`docker update`).

use super::RestartPolicy;

/// The limits to change; None leaves one as it is. Values are as the API gives them
/// (bytes, CPU shares, nanoCPUs, microseconds of CFS quota and period).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceUpdate {
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Exclusive with a CFS quota: setting it clears the quota and period.
    pub nano_cpus: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<RestartPolicy>,
}
