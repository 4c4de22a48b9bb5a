//! berth's engine: the object model (containers, images, volumes, networks, events) and its
//! persistence, orchestrating the image store, the network, the builder and the shims. It knows
//! nothing of HTTP: berthd turns API calls into engine actions.
//!
//! Modules so far:
//! - [`error`]: errors with a kind, mapped to HTTP statuses by berthd in one place.
//! - [`images`]: the image service over `berth_image::Store`.
//! - [`id`]: container ids (256-bit random, hex) and unique-prefix lookup.
//! - [`name`]: container names, Docker's rules and random `adjective_surname` names.
//! - [`lifecycle`]: the container lifecycle as an enum with checked transitions.

pub mod error;
pub mod id;
pub mod images;
pub mod lifecycle;
pub mod name;

/// The engine: one value owning every service, shared by berthd's handlers.
#[derive(Debug)]
pub struct Engine {
    pub images: images::ImageService,
    pub data_root: std::path::PathBuf,
}

impl Engine {
    /// Opens the engine's state under `data_root`.
    pub fn open(data_root: &std::path::Path) -> Result<Self, error::EngineError> {
        Ok(Engine {
            images: images::ImageService::open(data_root)?,
            data_root: data_root.to_path_buf(),
        })
    }
}
