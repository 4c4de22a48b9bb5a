//! The network crate's errors.

/// Result with the network crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink request was refused by the kernel.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },
    /// The kernel's answer could not be read.
    #[error("{what}: malformed netlink answer: {detail}")]
    Decode { what: String, detail: String },
    /// No such link or namespace.
    #[error("{0}: not found")]
    NotFound(String),
    /// Bad input: an invalid CIDR, an overlapping subnet, an address outside its subnet.
    #[error("{0}")]
    Invalid(String),
    /// A subnet has no free address, or no free subnet is left in a pool.
    #[error("{0}")]
    Exhausted(String),
    /// Local I/O or a system call.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
