//! Health checks (`HEALTHCHECK`, `--health-*`): the settings a container's probe runs with,
//! and the health it has earned, by dockerd's rules: a probe's success makes the container
//! healthy; failures (a non-zero exit or a timeout) count after the start period, and
//! `retries` of them in a row make it unhealthy; the last five results are kept.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use super::container::HealthConfig;

/// dockerd's defaults for what a health check leaves at zero.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;
/// How many results the health log keeps, and how much output of each.
pub const LOG_ENTRIES: usize = 5;
pub const OUTPUT_LIMIT: usize = 4096;

/// A health check as it runs: the probe's command and its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The probe's argv (`CMD-SHELL x` becomes `/bin/sh -c x`).
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    /// The interval during the start period.
    pub start_interval: Duration,
    pub retries: u32,
}

fn duration(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl HealthCheck {
    /// The check a container's (merged) config asks for; none when it has no test or `NONE`.
    pub fn from_config(c: &HealthConfig) -> Option<HealthCheck> {
        let test = c.test.as_deref()?;
        let cmd = match test.first().map(String::as_str) {
            Some("CMD") if test.len() > 1 => test[1..].to_vec(),
            Some("CMD-SHELL") if test.len() > 1 => {
                vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")]
            }
            _ => return None,
        };
        Some(HealthCheck {
            cmd,
            interval: duration(c.interval, DEFAULT_INTERVAL),
            timeout: duration(c.timeout, DEFAULT_TIMEOUT),
            start_period: duration(c.start_period, Duration::ZERO),
            start_interval: duration(c.start_interval, DEFAULT_START_INTERVAL),
            retries: match c.retries {
                Some(r) if r > 0 => r as u32,
                _ => DEFAULT_RETRIES,
            },
        })
    }

    /// dockerd's checks of a create request's health check (its wording).
    pub fn validate(c: &HealthConfig) -> Result<(), String> {
        let min = 1_000_000; // 1ms
        for (what, v) in [
            ("Interval", c.interval),
            ("Timeout", c.timeout),
            ("StartPeriod", c.start_period),
            ("StartInterval", c.start_interval),
        ] {
            if let Some(v) = v {
                if v < 0 {
                    return Err(format!("{what} in Healthcheck cannot be negative"));
                }
                if v != 0 && v < min {
                    return Err(format!("{what} in Healthcheck cannot be less than 1ms"));
                }
            }
        }
        if c.retries.is_some_and(|r| r < 0) {
            return Err("Retries in Healthcheck cannot be negative".into());
        }
        Ok(())
    }
}

/// A container's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// The word the API and `ps` use.
    pub fn api_name(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeResult {
    pub start: SystemTime,
    pub end: SystemTime,
    /// The probe's exit code; -1 when it timed out or could not run.
    pub exit_code: i64,
    /// Its output (stdout and stderr), cut at [`OUTPUT_LIMIT`] bytes.
    pub output: String,
}

/// What the probes have shown so far (kept in the container's `health.json`, so that a
/// berthd restart neither loses it nor starts it over, as dockerd keeps it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The last [`LOG_ENTRIES`] results, oldest first.
    pub log: VecDeque<ProbeResult>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }
}

impl Health {
    /// A new run of the container: `starting` again with no failures; the log is kept.
    pub fn restart(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }

    /// The container stopped: dockerd calls it unhealthy (without an event) until it runs
    /// again.
    pub fn stopped(&mut self) {
        self.status = HealthStatus::Unhealthy;
    }

    /// Records a probe's result; `in_start_period` says whether it began within the start
    /// period. Returns the new status when it changed.
    pub fn record(
        &mut self,
        r: ProbeResult,
        in_start_period: bool,
        retries: u32,
    ) -> Option<HealthStatus> {
        let before = self.status;
        if r.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push_back(r);
        while self.log.len() > LOG_ENTRIES {
            self.log.pop_front();
        }
        (self.status != before).then_some(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            start: SystemTime::UNIX_EPOCH,
            end: SystemTime::UNIX_EPOCH,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn tests_and_defaults() {
        let c = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            HealthCheck::from_config(&c(&["CMD-SHELL", "test -f /ok"]))
                .unwrap()
                .cmd,
            ["/bin/sh", "-c", "test -f /ok"]
        );
        let h = HealthCheck::from_config(&c(&["CMD", "true"])).unwrap();
        assert_eq!(h.cmd, ["true"]);
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, 3)
        );
        assert!(HealthCheck::from_config(&c(&["NONE"])).is_none());
        assert!(HealthCheck::from_config(&c(&[])).is_none());
        assert!(HealthCheck::from_config(&HealthConfig::default()).is_none());
        let mut bad = c(&["CMD", "true"]);
        bad.interval = Some(1000);
        assert_eq!(
            HealthCheck::validate(&bad).unwrap_err(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        bad.interval = Some(-1);
        assert!(HealthCheck::validate(&bad).is_err());
    }

    #[test]
    fn failures_count_after_the_start_period_and_success_heals() {
        let mut h = Health::default();
        // In the start period, failures do not count while starting.
        assert_eq!(h.record(result(1), true, 2), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(1), false, 2), None);
        assert_eq!(h.record(result(1), false, 2), Some(HealthStatus::Unhealthy));
        assert_eq!(h.failing_streak, 2);
        assert_eq!(h.record(result(0), false, 2), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        // Once healthy, a failure in the start period counts.
        assert_eq!(h.record(result(1), true, 2), None);
        assert_eq!(h.failing_streak, 1);
        for _ in 0..10 {
            h.record(result(-1), false, 2);
        }
        assert_eq!(h.log.len(), LOG_ENTRIES);
        assert_eq!(h.status, HealthStatus::Unhealthy);
    }
}
