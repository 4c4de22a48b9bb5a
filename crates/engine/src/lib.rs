//! berth's engine: the object model (containers, images, volumes, networks, events) and its
//! persistence, orchestrating the image store, the network, the builder and the shims. It knows
//! nothing of HTTP: berthd turns API calls into engine actions.
//!
//! Modules so far:
//! - [`id`]: container ids (256-bit random, hex) and unique-prefix lookup.
//! - [`name`]: container names, Docker's rules and random `adjective_surname` names.
//! - [`lifecycle`]: the container lifecycle as an enum with checked transitions.

pub mod id;
pub mod lifecycle;
pub mod name;
