use std::path::Path;

use berth_runtime::Container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

pub fn pause(root: &Path, a: Args) -> anyhow::Result<i32> {
    Container::load(root, &a.id)?.pause()?;
    Ok(0)
}

pub fn resume(root: &Path, a: Args) -> anyhow::Result<i32> {
    Container::load(root, &a.id)?.resume()?;
    Ok(0)
}
