//! `ps`: the container list with docker's columns, filters and formats.

use crate::values::filters_json;
use crate::values::human_duration;

use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::format;

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    pub size: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template, or "table", or "json".
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last")]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
}

pub(crate) fn ago(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    format!("{} ago", human_duration(now - secs))
}

pub(crate) fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// `berth ps`.
pub async fn ps(api: &Api, a: PsArgs) -> anyhow::Result<i32> {
    let mut qs = vec![format!("all={}", a.all)];
    if a.size {
        qs.push("size=1".into());
    }
    if let Some(n) = a.last {
        qs.push(format!("limit={n}"));
    }
    if a.latest {
        qs.push("limit=1".into());
    }
    if !a.filter.is_empty() {
        qs.push(format!("filters={}", q(&filters_json(&a.filter)?)));
    }
    let list = api
        .get(&format!("/containers/json?{}", qs.join("&")))
        .await?;
    let items = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        for c in &items {
            let id = c["Id"].as_str().unwrap_or_default();
            println!(
                "{}",
                if a.no_trunc {
                    id
                } else {
                    &id[..12.min(id.len())]
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default();
            let cmd = c["Command"].as_str().unwrap_or_default();
            let names: Vec<&str> = c["Names"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).map(|n| n.trim_start_matches('/')).collect();
            let labels: Vec<String> = c["Labels"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
            let created = c["Created"].as_i64().unwrap_or(0);
            let size = if a.size {
                format!(
                    "{} (virtual {})",
                    crate::values::size_str(c["SizeRw"].as_f64().unwrap_or(0.0)),
                    crate::values::size_str(c["SizeRootFs"].as_f64().unwrap_or(0.0))
                )
            } else {
                String::new()
            };
            json!({
                "ID": if a.no_trunc { id.to_string() } else { id[..12.min(id.len())].to_string() },
                "Image": c["Image"],
                "Command": if a.no_trunc { format!("\"{cmd}\"") } else { format!("\"{}\"", ellipsis(cmd, 20)) },
                "CreatedAt": created.to_string(),
                "RunningFor": ago(created),
                "Status": c["Status"],
                "State": c["State"],
                "Ports": c["Ports"].as_array().into_iter().flatten().map(|p| format!(
                    "{}:{}->{}/{}",
                    p["IP"].as_str().unwrap_or("0.0.0.0"),
                    p["PublicPort"],
                    p["PrivatePort"],
                    p["Type"].as_str().unwrap_or("tcp")
                )).collect::<Vec<_>>().join(", "),
                "Names": names.join(","),
                "Labels": labels.join(","),
                "Size": size,
                "Mounts": "",
                "Networks": c["HostConfig"]["NetworkMode"],
            })
        })
        .collect();
    let headers = json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
        "Labels": "LABELS", "Size": "SIZE", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    });
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let fmt = a.format.as_deref().filter(|f| *f != "table");
    format::print_rows(fmt, default, &rows, &headers)?;
    Ok(0)
}
