use std::path::Path;

use berth_runtime::{Container, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill the container first if it still runs; a missing container is not an error.
    #[arg(short, long)]
    pub force: bool,
    /// The container id.
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    match Container::load(root, &a.id) {
        Ok(c) => c.delete(a.force)?,
        Err(Error::NotFound(_)) if a.force => {}
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
