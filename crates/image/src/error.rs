//! The image store's error type. Every message names the object at fault: the digest, the
//! reference, the archive entry or the path.

/// Result with the image store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A digest string is malformed.
    #[error("invalid digest {0:?}: want sha256:<64 hex digits>")]
    InvalidDigest(String),
    /// A reference is malformed.
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// Content does not match the digest or size it was announced with.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Content is larger or smaller than announced.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// No such blob, image or layer.
    #[error("{0}: not found")]
    NotFound(String),
    /// The object is in use and cannot be removed.
    #[error("{0}")]
    Conflict(String),
    /// A layer archive is malformed or hostile.
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    /// An image archive is malformed.
    #[error("archive: {0}")]
    Archive(String),
    /// An I/O or system call failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        /// Not marked `#[source]`: the message already ends with it.
        source: std::io::Error,
    },
    /// JSON that does not parse.
    #[error("{context}: {source}")]
    Json {
        context: String,
        /// Not marked `#[source]`: the message already ends with it.
        source: serde_json::Error,
    },
}

/// Adds context to I/O errors.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl Error {
    /// Whether this is a full disk (ENOSPC) or an exhausted quota (EDQUOT).
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, Error::Io { source, .. } if is_out_of_space(source))
    }
}

/// Whether an I/O error is a full disk (ENOSPC) or an exhausted quota (EDQUOT).
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: context(),
            source: std::io::Error::from_raw_os_error(e as i32),
        })
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Json {
            context: context(),
            source,
        })
    }
}
