//! Engine errors carry a kind; berthd maps kinds to HTTP statuses in one place.

/// The kind of an engine error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unavailable,
    /// Registry credentials missing or refused (HTTP 401).
    Unauthorized,
    /// Nothing to do (HTTP 304: start of a running container, stop of a stopped one).
    NotModified,
    /// Refused by rule (HTTP 403: removing a pre-defined network or one in use).
    Forbidden,
    /// A feature the configuration does not offer (HTTP 501: logs of a `none` log driver).
    NotImplemented,
}

fn err(kind: Kind, message: impl Into<String>) -> EngineError {
    EngineError {
        kind,
        message: message.into(),
        errno: None,
    }
}

/// Not offered by the configuration.
pub fn not_implemented(message: impl Into<String>) -> EngineError {
    err(Kind::NotImplemented, message)
}

/// A bad request.
pub fn invalid(message: impl Into<String>) -> EngineError {
    err(Kind::InvalidArgument, message)
}

/// A missing object.
pub fn not_found(message: impl Into<String>) -> EngineError {
    err(Kind::NotFound, message)
}

/// A request that conflicts with an object's state.
pub fn conflict(message: impl Into<String>) -> EngineError {
    err(Kind::Conflict, message)
}

/// A failure of the system underneath.
pub fn unavailable(message: impl Into<String>) -> EngineError {
    err(Kind::Unavailable, message)
}

/// Refused by rule.
pub fn forbidden(message: impl Into<String>) -> EngineError {
    err(Kind::Forbidden, message)
}

/// Nothing to do.
pub fn not_modified() -> EngineError {
    err(Kind::NotModified, "")
}

/// An engine error: a kind and a message naming the object.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: Kind,
    pub message: String,
    /// The OS error behind a process that could not be started, as the runtime reported it.
    pub errno: Option<i32>,
}

impl EngineError {
    /// The same error, with the OS error the runtime reported.
    pub fn with_errno(mut self, errno: Option<i32>) -> Self {
        self.errno = errno;
        self
    }

    /// Docker's exit code for a process that could not be started: 127 when the program does
    /// not exist, 126 when it may not be run, 128 for any other failure.
    pub fn start_exit_code(&self) -> i32 {
        start_exit_code(self.errno)
    }
}

/// Docker's exit code for a start that failed with `errno` (see [`EngineError::start_exit_code`]).
pub fn start_exit_code(errno: Option<i32>) -> i32 {
    match errno {
        Some(libc::ENOENT) => 127,
        Some(libc::EACCES | libc::EISDIR) => 126,
        _ => 128,
    }
}

impl From<berth_image::Error> for EngineError {
    fn from(e: berth_image::Error) -> Self {
        use berth_image::Error as E;
        let kind = match &e {
            E::NotFound(_) => Kind::NotFound,
            E::Conflict(_) => Kind::Conflict,
            E::InvalidReference { .. }
            | E::InvalidDigest(_)
            | E::Layer { .. }
            | E::Archive(_)
            | E::DigestMismatch { .. }
            | E::SizeMismatch { .. }
            | E::Json { .. } => Kind::InvalidArgument,
            E::Io { .. } => Kind::Unavailable,
        };
        err(kind, e.to_string())
    }
}

impl From<berth_registry::Error> for EngineError {
    fn from(e: berth_registry::Error) -> Self {
        use berth_registry::Error as E;
        match e {
            E::Image(e) => e.into(),
            E::NotFound(m) => err(Kind::NotFound, m),
            E::Unauthorized(m) => err(Kind::Unauthorized, m),
            E::Config(m) => err(Kind::InvalidArgument, m),
            other => err(Kind::Unavailable, other.to_string()),
        }
    }
}

impl From<berth_durable::Error> for EngineError {
    fn from(e: berth_durable::Error) -> Self {
        let kind = if e.is_not_found() {
            Kind::NotFound
        } else {
            Kind::Unavailable
        };
        err(kind, e.to_string())
    }
}
