//! berth's image store.
//!
//! Modules:
//! - [`digest`]: checked `sha256:` digests and hashing readers/writers.
//! - [`content`]: the content-addressed blob store (ingest → verify → commit, resumable).
//! - [`reference`]: image references with Docker's normalisation.
//! - [`layer`]: safe layer application (tar, gzip, zstd; whiteouts; no path escapes).

pub mod content;
pub mod digest;
pub mod error;
pub mod layer;
pub mod reference;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::ImageRef;
