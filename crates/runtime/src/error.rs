//! The runtime's error type. Messages are written where the variant is defined and always name
//! the object at fault: the container id, the spec field, the path or the hook.

use std::path::PathBuf;

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while running a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's `config.json` is malformed or asks for something impossible.
    #[error("invalid spec: {field}: {reason}")]
    InvalidSpec { field: String, reason: String },

    /// No container with this id exists under the runtime root.
    #[error("container {0}: does not exist")]
    NotFound(String),

    /// A container with this id already exists under the runtime root.
    #[error("container {0}: already exists")]
    AlreadyExists(String),

    /// The id is not a valid container id.
    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.' and '+' only")]
    InvalidId(String),

    /// The container is in the wrong state for the requested operation.
    #[error("container {id}: {reason}")]
    WrongState { id: String, reason: String },

    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        /// Not marked `#[source]`: the message already ends with it.
        source: nix::Error,
    },

    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        /// Not marked `#[source]`: the message already ends with it.
        source: std::io::Error,
    },

    /// A cgroup operation failed.
    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },

    /// The seccomp profile could not be compiled or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),

    /// A hook failed or timed out.
    #[error("hook {path}: {reason}")]
    Hook { path: PathBuf, reason: String },

    /// A child of the runtime (stage 1 or the container's init) reported a failure, in
    /// runc's words.
    #[error("unable to start container process: {message}")]
    Child {
        message: String,
        /// The OS error the child met, if any.
        errno: Option<i32>,
    },

    /// The process's program cannot be run; the message is runc's (`exec: "x": executable
    /// file not found in $PATH`), the OS error kept for the exit code (127 or 126).
    #[error("{message}")]
    Exec { message: String, errno: i32 },

    /// The channel to a child broke.
    #[error("sync with container init: {0}")]
    Sync(String),
}

impl Error {
    /// The OS error number behind this error, if any (a child's included): `ENOENT` for a
    /// program or path that does not exist, `EACCES` for one that may not be run...
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Sys { source, .. } => Some(*source as i32),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Child { errno, .. } => *errno,
            Error::Exec { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub(crate) fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn wrong_state(id: &str, reason: impl Into<String>) -> Self {
        Error::WrongState {
            id: id.to_string(),
            reason: reason.into(),
        }
    }
}

/// Adds a context string to system-call and I/O errors.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}
