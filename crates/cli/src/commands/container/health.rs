//! `--health-*` and `--no-healthcheck`: the health check of `run` and `create`, as the docker
//! CLI builds it (Go durations; the command runs in a shell; `--no-healthcheck` disables the
//! image's check and conflicts with the other flags).

use serde_json::{json, Value};

/// The health check flags of `run` and `create`.
#[derive(Debug, Default, clap::Args)]
pub struct HealthArgs {
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s).
    #[arg(long = "health-interval")]
    pub interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s).
    #[arg(long = "health-timeout")]
    pub timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    /// (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-period")]
    pub start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-interval")]
    pub start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub none: bool,
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `0`) in nanoseconds, with the flag's name in the
/// error as the docker CLI words it.
fn duration(flag: &str, v: &Option<String>) -> anyhow::Result<i64> {
    let Some(s) = v else { return Ok(0) };
    let ns = if s == "0" {
        Some(0)
    } else {
        berth_build::words::duration_ns(s)
    };
    let ns = ns.ok_or_else(|| {
        anyhow::anyhow!(
            "invalid argument {s:?} for \"--{flag}\" flag: time: invalid duration {s:?}"
        )
    })?;
    if ns < 0 {
        anyhow::bail!("--{flag} cannot be negative");
    }
    Ok(ns)
}

impl HealthArgs {
    /// The create body's `Healthcheck`, or none when no flag was given.
    pub fn config(&self) -> anyhow::Result<Option<Value>> {
        let interval = duration("health-interval", &self.interval)?;
        let timeout = duration("health-timeout", &self.timeout)?;
        let start_period = duration("health-start-period", &self.start_period)?;
        let start_interval = duration("health-start-interval", &self.start_interval)?;
        let retries = self.retries.unwrap_or(0);
        if retries < 0 {
            anyhow::bail!("--health-retries cannot be negative");
        }
        let any = self.cmd.as_deref().is_some_and(|c| !c.is_empty())
            || interval != 0
            || timeout != 0
            || start_period != 0
            || start_interval != 0
            || retries != 0;
        if self.none {
            if any {
                anyhow::bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any {
            return Ok(None);
        }
        let mut hc = json!({
            "Interval": interval, "Timeout": timeout, "StartPeriod": start_period,
            "StartInterval": start_interval, "Retries": retries,
        });
        if let Some(c) = self.cmd.as_deref().filter(|c| !c.is_empty()) {
            hc["Test"] = json!(["CMD-SHELL", c]);
        }
        Ok(Some(hc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_dockers_health_config() {
        let a = HealthArgs {
            cmd: Some("test -f /ok".into()),
            interval: Some("500ms".into()),
            retries: Some(2),
            ..Default::default()
        };
        let hc = a.config().unwrap().unwrap();
        assert_eq!(hc["Test"], json!(["CMD-SHELL", "test -f /ok"]));
        assert_eq!(hc["Interval"], 500_000_000);
        assert_eq!(hc["Retries"], 2);
        assert!(HealthArgs::default().config().unwrap().is_none());
        let none = HealthArgs {
            none: true,
            ..Default::default()
        };
        assert_eq!(none.config().unwrap().unwrap()["Test"], json!(["NONE"]));
        let both = HealthArgs {
            none: true,
            cmd: Some("true".into()),
            ..Default::default()
        };
        assert_eq!(
            both.config().unwrap_err().to_string(),
            "--no-healthcheck conflicts with --health-* options"
        );
        let bad = HealthArgs {
            interval: Some("soon".into()),
            ..Default::default()
        };
        assert!(bad.config().is_err());
    }
}
