//! Engine errors carry a kind; berthd maps kinds to HTTP statuses in one place.

/// The kind of an engine error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unavailable,
}

/// An engine error: a kind and a message naming the object.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: Kind,
    pub message: String,
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
        EngineError {
            kind,
            message: e.to_string(),
        }
    }
}
