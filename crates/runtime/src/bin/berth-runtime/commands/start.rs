use std::path::Path;

use berth_runtime::Container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    Container::load(root, &a.id)?.start()?;
    Ok(0)
}
