use std::path::Path;

use berth_runtime::Container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Print only ids.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let all = Container::list(root)?;
    if a.quiet {
        for c in &all {
            println!("{}", c.state.id);
        }
        return Ok(0);
    }
    let rows: Vec<_> = all.iter().map(|c| c.state.output(c.status())).collect();
    if a.format == "json" {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(0);
    }
    let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        table.push(vec![
            r.id.clone(),
            r.pid.to_string(),
            r.status.to_string(),
            r.bundle.display().to_string(),
            r.created.clone(),
            r.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}
