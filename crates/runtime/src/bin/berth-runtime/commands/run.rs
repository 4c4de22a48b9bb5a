use std::path::Path;

use berth_runtime::{container, Container, StartMode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Everything `create` takes.
    #[command(flatten)]
    pub create: super::create::Args,
    /// Detach: create and start, then exit.
    #[arg(short, long)]
    pub detach: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(root: &Path, a: Args, place: super::create::Placement) -> anyhow::Result<i32> {
    let id = a.create.id.clone();
    if a.detach {
        container::create(&super::create::options(
            root,
            &a.create,
            StartMode::Fifo,
            place,
        ))?;
        Container::load(root, &id)?.start()?;
        return Ok(0);
    }
    let created = container::create(&super::create::options(
        root,
        &a.create,
        StartMode::Direct,
        place,
    ))?;
    let running = created.start()?;
    let (code, container) = running.wait();
    // Skipped if someone else deleted it meanwhile.
    if !a.keep && berth_runtime::state::ContainerState::dir(root, &id).exists() {
        container.delete(true)?;
    }
    Ok(code?)
}
