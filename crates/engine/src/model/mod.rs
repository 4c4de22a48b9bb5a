//! The engine's own vocabulary: what its callers ask of it, in types of its own rather than
//! an API's wire format. berthd translates the Docker API into these (and the CRI front end
//! will translate its protobufs into the same), so the engine never reads a JSON field by
//! its wire name.
//!
//! - [`container`]: a container's configuration: [`ContainerConfig`], [`HostConfig`],
//!   [`NetworkingConfig`], and [`CreateRequest`] that carries them.
//! - [`exec`]: a process to run in a running container ([`ExecSpec`]).
//! - [`frames`]: the multiplexed frames of attach and exec streams.
//! - [`health`]: health checks: their settings and the health they earn.
//! - [`pod`]: a pod sandbox: the namespaces its containers share ([`PodConfig`]).
//! - [`resources`]: a live change of a container's limits and restart policy
//!   ([`ResourceUpdate`]).
//! - [`restart`]: restart policies, checked ([`RestartPolicy`]).
//! - [`stats`]: one sample of a container's resource use ([`StatsSample`]).
//! - [`wait`]: what a wait waits for ([`WaitCondition`]).

pub mod container;
pub mod exec;
pub mod frames;
pub mod health;
pub mod pod;
pub mod resources;
pub mod restart;
pub mod stats;
pub mod wait;

pub use berth_shim::CgroupIoEntry;
pub use container::{ContainerConfig, CreateRequest, HostConfig, NetworkingConfig};
pub use exec::{ExecId, ExecSpec};
pub use pod::{
    PodConfig, PodContainer, PodContainerConfig, PodMount, PodRecord, PodState, Sharing,
};
pub use resources::ResourceUpdate;
pub use restart::RestartPolicy;
pub use stats::{NetStats, StatsSample};
pub use wait::WaitCondition;
