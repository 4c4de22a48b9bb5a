//! berth's Registry HTTP API v2 / OCI distribution client.
//!
//! Modules:
//! - [`error`]: the crate's error enum; every message names the registry object at fault.
//! - [`hosts`]: per-registry settings: TLS roots and client certificates from docker's
//!   `certs.d` layout, insecure (plain HTTP) registries, mirrors from containerd-style
//!   `hosts.toml` files.
//! - [`auth`]: credentials, `WWW-Authenticate` challenges, bearer tokens and their cache.
//! - [`client`]: one registry: requests with auth, redirects, retries with back-off.
//! - [`manifest`]: media types, manifests and indexes, platform choice.
//! - [`blob`]: a blob download that resumes with range requests when the connection breaks.
//! - [`pull`]: the streaming pull pipeline (download → verify → decompress → unpack, several
//!   layers at once).
//! - [`push`]: blob upload (HEAD check, cross-repository mount, monolithic and chunked) and
//!   manifest push.
//! - [`progress`]: progress reports in the shape of Docker's JSON messages.

pub mod auth;
pub mod blob;
pub mod client;
pub mod error;
pub mod hosts;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;

pub use auth::Credentials;
pub use client::Client;
pub use error::{Error, Result};
pub use hosts::RegistryOptions;
pub use manifest::Platform;
pub use progress::Progress;
