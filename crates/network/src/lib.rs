//! berth's container networking.
//!
//! Modules:
//! - [`error`]: the crate's error enum; messages name the link, namespace or subnet.
//! - [`netlink`]: a synchronous rtnetlink socket (links, addresses, routes) in the calling
//!   thread's network namespace.
//! - [`netns`]: persistent network namespaces (bind-mounted files), and running code inside one.
//! - [`ipam`]: subnets and address allocation, persisted so it survives daemon restarts.
//! - [`bridge`]: a bridge with its gateway addresses, and a container's veth plumbed into
//!   its namespace.
//! - [`firewall`]: outbound NAT, published ports and isolation between networks in berth's
//!   own nftables tables.
//! - [`dns`]: the embedded DNS server of user-defined networks.

pub mod bridge;
pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;

pub use error::{Error, Result};
