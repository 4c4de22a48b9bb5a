//! The registry client's errors. Messages follow dockerd's wording where a docker user would
//! recognise it (`manifest unknown`, `unauthorized: authentication required`).

/// Result with the registry client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image store refused something (digest mismatch, hostile layer, I/O).
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// The registry does not have the manifest or blob.
    #[error("{0}")]
    NotFound(String),
    /// Credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry answered with an error status.
    #[error("{what}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    /// The registry's answer breaks the protocol (bad JSON, wrong sizes, unknown media type).
    #[error("{0}")]
    Protocol(String),
    /// The connection failed (refused, TLS, timeout, too many redirects).
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    /// Bad settings (a malformed hosts.toml, an unreadable certificate) or arguments.
    #[error("{0}")]
    Config(String),
    /// The operation was cancelled (the client went away).
    #[error("cancelled")]
    Cancelled,
    /// Local I/O.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    /// Whether trying again may help (connection problems, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
