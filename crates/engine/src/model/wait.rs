//! What `wait` waits for.

use crate::error::{invalid, EngineError};

/// The condition of `POST /containers/{id}/wait` (and of the CRI's own waits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    /// Not running now (returns at once for a created or exited container).
    #[default]
    NotRunning,
    /// The next exit after the wait began.
    NextExit,
    /// The container's removal.
    Removed,
}

impl WaitCondition {
    /// The API's name for it; empty means `not-running`.
    pub fn parse(s: &str) -> Result<WaitCondition, EngineError> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(invalid(format!("invalid condition: {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("next-exit").unwrap(),
            WaitCondition::NextExit
        );
        assert_eq!(
            WaitCondition::parse("removed").unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse("later").is_err());
    }
}
