//! berth's OCI runtime: turns an OCI bundle (a rootfs plus `config.json`) into an isolated
//! process on the shared host kernel, the way runc and crun do.
//!
//! The pipeline reads top to bottom:
//!
//! ```text
//! spec::load ─▶ container::create ─┬─▶ cgroups::Cgroup::create      (parent, host namespaces)
//!                                  ├─▶ fork "stage 1" ─▶ namespaces: setns / unshare, id maps
//!                                  │        └─▶ clone(CLONE_PARENT) "init" (pid 1 of the container)
//!                                  │                 ├─▶ rootfs: mounts, devices, pivot_root, masks
//!                                  │                 ├─▶ process: sysctl, rlimits, caps, user, seccomp
//!                                  │                 └─▶ waits for `start`, then execve
//!                                  └─▶ state::ContainerState saved under the runtime root
//! ```
//!
//! Modules:
//! - [`error`]: the crate's error type; every message names the object or spec field at fault.
//! - [`spec`]: loading and validating `config.json` (types from the `oci-spec` crate).
//! - [`state`]: the persisted per-container state and the runc-compatible `state` JSON.
//! - [`container`]: the lifecycle verbs: create, start, kill, delete, pause, resume, exec.
//! - [`cgroups`]: cgroup v1, v2 and hybrid hierarchies: limits, freezer, stats, device rules
//!   (v1 files, or an eBPF program on cgroup v2), and the `unified` layout on hybrid hosts.
//! - [`namespaces`]: namespace flags, joining by path, uid/gid maps.
//! - [`rootfs`]: mounts, device nodes, pivot_root, masked and read-only paths.
//! - [`process`]: the last steps before execve: rlimits, capabilities, user, seccomp, fds.
//! - [`seccomp`]: the spec's seccomp profile compiled with libseccomp, loaded as a BPF program.
//! - [`seccomp_cache`]: compiled filters kept under the runtime root, keyed by their inputs.
//! - [`hooks`]: OCI hooks with the state on stdin and a timeout.
//! - [`console`]: the pty handed to `--console-socket`, as runc sends it.
//! - [`sync`]: the message channel between the runtime and its children.
//! - [`signal`]: the one table of signal names and numbers (docker's, runc's and the kernel's).
//! - [`selfexe`]: re-exec from a sealed memfd, so a container can never overwrite the runtime
//!   binary (CVE-2019-5736).

pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod seccomp_cache;
pub mod selfexe;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
mod sys;

pub use container::{Container, CreateOptions, ExecOptions, StartMode};
pub use error::{Error, Result};
pub use state::Status;

/// The OCI runtime spec version this runtime implements, as `state` reports it.
pub const OCI_VERSION: &str = "1.2.0";
