use std::path::{Path, PathBuf};

use berth_runtime::{container, Container, StartMode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when the process has a terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Detach: create and start, then exit.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Pass this many extra descriptors (from 3) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let create = super::create::Args {
        bundle: a.bundle,
        console_socket: a.console_socket,
        pid_file: a.pid_file,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        id: a.id.clone(),
    };
    if a.detach {
        container::create(&super::create::options(root, &create, StartMode::Fifo))?;
        Container::load(root, &a.id)?.start()?;
        return Ok(0);
    }
    let created = container::create(&super::create::options(root, &create, StartMode::Direct))?;
    let running = created.start()?;
    let code = running.wait();
    if !a.keep {
        if let Ok(c) = Container::load(root, &a.id) {
            c.delete(true)?;
        }
    }
    Ok(code?)
}
