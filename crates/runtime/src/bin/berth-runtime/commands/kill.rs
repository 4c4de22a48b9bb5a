use std::path::Path;

use berth_runtime::{container::parse_signal, Container};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Send the signal to every process in the container.
    #[arg(short, long)]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let sig = parse_signal(&a.signal)?;
    Container::load(root, &a.id)?.kill(sig, a.all)?;
    Ok(0)
}
