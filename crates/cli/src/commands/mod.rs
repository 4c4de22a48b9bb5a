//! Commands, grouped by object.

pub mod container;
pub mod image;
pub mod network;
pub mod registry;
pub mod system;
pub mod version;
pub mod volume;
