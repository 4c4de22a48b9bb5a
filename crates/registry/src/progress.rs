//! Progress reports, in the shape of Docker's JSON messages (`{"status", "id",
//! "progressDetail": {"current", "total"}}`), so the daemon can stream them as they are.

use std::time::{Duration, Instant};

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// A layer's short id (12 hex digits) or a tag; none for whole-operation messages.
    pub id: Option<String>,
    /// Docker's wording: `Pulling fs layer`, `Downloading`, `Pull complete`, ...
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

impl Progress {
    pub fn msg(status: impl Into<String>) -> Self {
        Progress {
            id: None,
            status: status.into(),
            current: None,
            total: None,
        }
    }

    pub fn layer(id: &str, status: impl Into<String>) -> Self {
        Progress {
            id: Some(id.to_string()),
            status: status.into(),
            current: None,
            total: None,
        }
    }

    pub fn bytes(id: &str, status: &str, current: u64, total: u64) -> Self {
        Progress {
            id: Some(id.to_string()),
            status: status.to_string(),
            current: Some(current),
            total: Some(total),
        }
    }
}

/// Where progress goes. Must be cheap: it is called from download threads.
pub type Sink<'a> = &'a (dyn Fn(Progress) + Sync);

/// Limits byte-count reports to one every 100 ms per layer (and always the last one).
#[derive(Debug)]
pub(crate) struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    pub fn new() -> Self {
        Throttle { last: None }
    }

    pub fn due(&mut self, done: bool) -> bool {
        let now = Instant::now();
        if done
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100))
        {
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}
