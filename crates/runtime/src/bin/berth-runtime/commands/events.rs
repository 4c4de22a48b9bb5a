use std::path::Path;

use berth_runtime::Container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics (e.g. 5s) when not --stats.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// The container id.
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let c = Container::load(root, &a.id)?;
    let secs: u64 = a.interval.trim_end_matches('s').parse().unwrap_or(5);
    loop {
        let stats = c.stats()?;
        let ev = serde_json::json!({"type": "stats", "id": a.id, "data": stats});
        println!("{ev}");
        if a.stats || c.status() == berth_runtime::Status::Stopped {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(secs.max(1)));
    }
}
