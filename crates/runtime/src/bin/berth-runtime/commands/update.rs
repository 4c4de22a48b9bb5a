use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::Container;
use oci_spec::runtime::LinuxResources;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON file with linux.resources, or - for stdin.
    #[arg(short, long)]
    pub resources: PathBuf,
    /// The container id.
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let c = Container::load(root, &a.id)?;
    let mut data = Vec::new();
    if a.resources.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut data)?;
    } else {
        data = std::fs::read(&a.resources)
            .with_context(|| format!("read {}", a.resources.display()))?;
    }
    let r: LinuxResources = serde_json::from_slice(&data).context("parse resources")?;
    c.cgroup()?.apply(&r)?;
    Ok(0)
}
