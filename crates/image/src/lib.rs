//! berth's image store.
//!
//! Modules:
//! - [`digest`]: checked `sha256:` digests and hashing readers/writers.
//! - [`content`]: the content-addressed blob store (ingest → verify → commit, resumable).
//! - [`reference`]: image references with Docker's normalisation.
//! - [`layer`]: safe layer application (tar, gzip, zstd; whiteouts; no path escapes).
//! - [`config`]: the image config (Docker's extensions included) and chain ids.
//! - [`defaults`]: a create request merged with its image's config by dockerd's rules, a pure
//!   function for the engine.
//! - [`store`]: images, tags, snapshots keyed by chain id, mounts for containers, GC.
//! - [`archive`]: docker-archive, OCI layout/archive, rootfs import.
//! - [`diff`]: a container's overlay upper dir as a new layer (commit, build).
//! - [`export`]: a mounted filesystem as a tar (`docker export`).

pub mod archive;
pub mod config;
pub mod content;
pub mod defaults;
pub mod diff;
pub mod digest;
pub mod error;
pub mod export;
pub mod layer;
pub mod openat;
pub mod reference;
pub mod store;
mod walk;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::ImageRef;
pub use store::Store;
