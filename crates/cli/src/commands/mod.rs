//! One module per command.

pub mod version;
