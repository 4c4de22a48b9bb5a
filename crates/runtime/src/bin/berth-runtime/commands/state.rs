use std::path::Path;

use berth_runtime::Container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let c = Container::load(root, &a.id)?;
    let out = c.state.output(c.status());
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
