//! Docker's restart policies as a checked enum; the shim gets them in its own form.

use crate::error::{invalid, EngineError};

/// When the shim starts a container's process again after it exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// After a non-zero exit, at most `max_retries` times (0: no limit).
    OnFailure {
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// From the API's name and maximum retry count, with dockerd's checks and messages.
    pub fn parse(name: &str, max_retries: i64) -> Result<RestartPolicy, EngineError> {
        let p = match name {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                if max_retries < 0 {
                    return Err(invalid(
                        "invalid restart policy: maximum retry count cannot be negative",
                    ));
                }
                RestartPolicy::OnFailure {
                    max_retries: u32::try_from(max_retries).unwrap_or(u32::MAX),
                }
            }
            other => return Err(invalid(format!("invalid restart policy '{other}'"))),
        };
        if max_retries != 0 && !matches!(p, RestartPolicy::OnFailure { .. }) {
            return Err(invalid(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
        Ok(p)
    }

    /// The name the API uses.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max_retries } => *max_retries,
            _ => 0,
        }
    }

    /// The shim's form of the policy.
    pub fn to_shim(self) -> berth_shim::RestartPolicy {
        berth_shim::RestartPolicy {
            name: self.name().to_string(),
            max_retries: self.max_retries(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_dockerd_checks_them() {
        assert_eq!(RestartPolicy::parse("", 0).unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure", 3).unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped", 0).unwrap().to_shim(),
            berth_shim::RestartPolicy {
                name: "unless-stopped".into(),
                max_retries: 0
            }
        );
        let e = RestartPolicy::parse("always", 2).unwrap_err();
        assert!(e.message.contains("only be used with 'on-failure'"), "{e}");
        let e = RestartPolicy::parse("on-failure", -1).unwrap_err();
        assert!(e.message.contains("cannot be negative"), "{e}");
        let e = RestartPolicy::parse("sometimes", 0).unwrap_err();
        assert_eq!(e.message, "invalid restart policy 'sometimes'");
    }
}
