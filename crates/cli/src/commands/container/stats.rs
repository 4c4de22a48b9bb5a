//! `top` and `stats`.

use crate::values::size_str;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::format;

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    #[arg(add = crate::complete::containers())]
    pub container: String,
    /// ps options (accepted; the columns are `ps -ef`'s).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `berth top`.
pub async fn top(api: &Api, a: TopArgs) -> anyhow::Result<i32> {
    let v = api
        .get(&format!("/containers/{}/top", q(&a.container)))
        .await?;
    let mut lines = Vec::new();
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    lines.push(titles.join("\t"));
    for p in v["Processes"].as_array().into_iter().flatten() {
        let row: Vec<String> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        lines.push(row.join("\t"));
    }
    print!("{}", format::tabwrite(&lines));
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Containers (default: all running).
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

pub(crate) fn binary_size(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (n, 0);
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, no trailing zeros.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let mut t = format!("{v:.decimals$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    t + units[i]
}

/// A `docker stats` row from one stats document.
pub(crate) fn stats_row(s: &Value, no_trunc: bool) -> Value {
    let id = s["id"].as_str().unwrap_or_default();
    let cpu_delta = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys_delta = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let ncpu = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let usage = s["memory_stats"]["usage"].as_f64().unwrap_or(0.0);
    let limit = s["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    // As the docker CLI: every network's bytes, and the block I/O entries by operation.
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let v = e["value"].as_f64().unwrap_or(0.0);
        match e["op"].as_str().map(str::to_lowercase).as_deref() {
            Some("read") => read += v,
            Some("write") => write += v,
            _ => {}
        }
    }
    let pair = |a: f64, b: f64| format!("{} / {}", size_str(a), size_str(b));
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", binary_size(usage), binary_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": pair(rx, tx),
        "BlockIO": pair(read, write),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

/// `berth stats`.
pub async fn stats(api: &Api, a: StatsArgs) -> anyhow::Result<i32> {
    let names: Vec<String> = if a.containers.is_empty() {
        api.get("/containers/json")
            .await?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    let headers = json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"});
    let default = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    let tty = crate::tty::size().is_some();
    loop {
        let mut rows = Vec::new();
        let mut code = 0;
        for n in &names {
            match api
                .get(&format!("/containers/{}/stats?stream=false", q(n)))
                .await
            {
                Ok(s) => rows.push(stats_row(&s, a.no_trunc)),
                Err(e) => {
                    eprintln!("{e:#}");
                    code = 1;
                }
            }
        }
        if !a.no_stream && tty {
            print!("\x1b[2J\x1b[H");
        }
        format::print_rows(a.format.as_deref(), default, &rows, &headers)?;
        if a.no_stream || code != 0 {
            return Ok(code);
        }
    }
}
