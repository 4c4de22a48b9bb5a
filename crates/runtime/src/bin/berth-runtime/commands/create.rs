use std::path::{Path, PathBuf};

use berth_runtime::cgroups::Layout;
use berth_runtime::{container, CreateOptions, StartMode};

#[derive(Debug, clap::Args)]
#[group(id = "create_args")]
pub struct Args {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when the process has a terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on ramfs).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is created).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

/// Where a new container's cgroup goes: the hierarchies, and whether systemd makes it.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub layout: Layout,
    pub systemd: bool,
}

pub fn options(root: &Path, a: &Args, mode: StartMode, place: Placement) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        root: root.to_path_buf(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        mode,
        cgroup_layout: place.layout,
        systemd_cgroup: place.systemd,
    }
}

pub fn run(root: &Path, a: Args, place: Placement) -> anyhow::Result<i32> {
    container::create(&options(root, &a, StartMode::Fifo, place))?;
    Ok(0)
}
