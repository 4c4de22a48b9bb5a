//! berth's engine: the object model (containers, images, volumes, networks, events) and its
//! persistence, orchestrating the image store, the network, the builder and the shims. It knows
//! nothing of HTTP: berthd turns API calls into engine actions.
//!
//! Modules:
//! - [`error`]: errors with a kind, mapped to HTTP statuses by berthd in one place.
//! - [`images`]: the image service over `berth_image::Store`.
//! - [`distribution`]: pull, push, login and registry inspection through `berth_registry`.
//! - [`archive`]: copying files out of and into containers, paths resolved in their root.
//! - [`containers`]: container records, shims, the live view of each container.
//! - `spec` (internal): a container's OCI spec (oci-spec's types) from its config, with
//!   Docker's defaults.
//! - [`logs`]: reading and following json-file logs.
//! - [`logconfig`]: a container's log driver (`json-file`, `local`, `none`) and rotation.
//! - [`events`]: Docker-style events, live and recent.
//! - [`procs`]: host process information for top and stats.
//! - [`id`]: container ids (256-bit random, hex) and unique-prefix lookup.
//! - [`network`]: networks (the default bridge, host, none, user bridges): namespaces, veths,
//!   addresses, published ports, isolation.
//! - [`volumes`]: named and anonymous volumes (the `local` driver).
//! - [`mounts`]: a container's binds, volumes and tmpfs mounts from its create request.
//! - [`name`]: container names, Docker's rules and random `adjective_surname` names.
//! - [`build`]: Dockerfile builds: stages as tasks, steps as containers and commits, the cache.
//! - [`buildfs`]: a build's COPY/ADD: sources picked in the context, hashed and written, paths
//!   resolved in their roots.
//! - `seccomp` (internal): docker's default seccomp profile, and profiles given with
//!   `--security-opt`.
//! - `devices` (internal): `--device` and `--device-cgroup-rule` as device nodes and cgroup
//!   rules.
//! - [`cgroups`]: what the host's cgroups give containers, for `info`.
//! - [`model`]: the engine's own vocabulary (container configs, exec specs, resource updates,
//!   restart policies, wait conditions, stats samples, attach frames) that front ends
//!   translate their wire formats into.
//! - [`lifecycle`]: the container lifecycle: states, the transitions they allow, and the
//!   states with their data (`Phase`, `Status`).
//! - [`time`]: RFC 3339 times as the APIs write them.

pub mod archive;
pub mod build;
pub mod buildfs;
pub mod cgroups;
pub mod containers;
pub(crate) mod devices;
pub mod distribution;
pub mod error;
pub mod events;
pub mod id;
pub mod images;
pub mod lifecycle;
pub mod logconfig;
pub mod logs;
pub mod model;
pub mod mounts;
pub mod name;
pub mod network;
pub mod pods;
pub mod procs;
pub(crate) mod seccomp;
#[cfg(test)]
mod seccomp_layouts;
pub(crate) mod spec;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

pub use containers::Settings;
#[doc(hidden)]
pub use spec::{build_for_fuzzing, INTERNAL, MASKED as MASKED_PATHS, READONLY as READONLY_PATHS};

/// Times as the APIs write them: RFC 3339 in UTC with nanoseconds (the runtime's one
/// formatter) and its parser.
pub mod time {
    pub use berth_shim::{parse_rfc3339, rfc3339};
}

/// The engine: one value owning every service, shared by berthd's handlers.
#[derive(Debug)]
pub struct Engine {
    pub images: Arc<images::ImageService>,
    pub containers: Arc<containers::Containers>,
    pub events: Arc<events::Events>,
    pub network: Arc<network::NetworkService>,
    pub builder: Arc<build::Builder>,
    /// Pod sandboxes (the CRI's).
    pub pods: Arc<pods::Pods>,
    pub data_root: PathBuf,
}

impl Engine {
    /// Opens the engine's state under the settings' data root.
    pub fn open(
        s: Settings,
        registry: berth_registry::RegistryOptions,
    ) -> Result<Self, error::EngineError> {
        let events = Arc::new(events::Events::default());
        let images = Arc::new(images::ImageService::open(
            &s.data_root,
            registry,
            events.clone(),
        )?);
        let data_root = s.data_root.clone();
        let containers = Arc::new(containers::Containers::open(
            s,
            images.clone(),
            events.clone(),
        )?);
        let builder = Arc::new(build::Builder::open(
            &data_root,
            images.clone(),
            containers.clone(),
        )?);
        let pods = Arc::new(pods::Pods::open(
            &data_root,
            containers.clone(),
            images.clone(),
        )?);
        Ok(Engine {
            builder,
            pods,
            images,
            network: containers.network.clone(),
            containers,
            events,
            data_root,
        })
    }

    /// Re-adopts running containers; needs the tokio runtime.
    pub async fn restore(&self) {
        self.containers.restore().await;
    }
}
