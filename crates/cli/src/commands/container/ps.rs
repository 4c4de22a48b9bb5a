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
    /// berth's: list another namespace's containers instead (`k8s.io`: the CRI's pods and
    /// their containers, which the Docker API's lists leave out).
    #[arg(long)]
    pub namespace: Option<String>,
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

/// Whether a `--format` template shows the sizes, which the docker CLI then asks for: it
/// names `.Size`, or prints the whole row with `json .` (the bare `json` format does not).
fn template_shows_size(f: &str) -> bool {
    f.contains(".Size")
        || f.split("{{").any(|action| {
            let a = action.trim_start_matches('-').trim_start();
            a.strip_prefix("json")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| r.trim_start().trim_start_matches('-').starts_with("}}"))
        })
}

/// `berth ps`.
pub async fn ps(api: &Api, a: PsArgs) -> anyhow::Result<i32> {
    let mut qs = vec![format!("all={}", a.all)];
    let size = a.size || a.format.as_deref().is_some_and(template_shows_size);
    if size {
        qs.push("size=1".into());
    }
    if let Some(n) = a.last {
        qs.push(format!("limit={n}"));
    }
    if a.latest {
        qs.push("limit=1".into());
    }
    let mut filters = a.filter.clone();
    if let Some(ns) = &a.namespace {
        filters.push(format!("label=io.berth.namespace={ns}"));
    }
    if !filters.is_empty() {
        qs.push(format!("filters={}", q(&filters_json(&filters)?)));
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
            let rw = crate::values::size_str(c["SizeRw"].as_f64().unwrap_or(0.0));
            let size = match c["SizeRootFs"].as_f64().filter(|v| *v > 0.0) {
                Some(v) => format!("{rw} (virtual {})", crate::values::size_str(v)),
                None => rw,
            };
            let mounts: Vec<&Value> = c["Mounts"].as_array().into_iter().flatten().collect();
            let mount_names: Vec<String> = mounts
                .iter()
                .map(|m| {
                    let n = m["Name"].as_str().filter(|n| !n.is_empty());
                    let n = n.or(m["Source"].as_str()).unwrap_or_default();
                    if a.no_trunc { n.to_string() } else { ellipsis(n, 15) }
                })
                .collect();
            let local = mounts.iter().filter(|m| m["Driver"] == "local").count();
            let mut networks: Vec<&String> = c["NetworkSettings"]["Networks"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
                .collect();
            networks.sort();
            // The docker CLI's order: private port, public port, protocol, address.
            let mut ports: Vec<&Value> = c["Ports"].as_array().into_iter().flatten().collect();
            ports.sort_by_key(|p| {
                (
                    p["PrivatePort"].as_u64(),
                    p["PublicPort"].as_u64(),
                    p["Type"].as_str().unwrap_or_default().to_string(),
                    p["IP"].as_str().unwrap_or_default().to_string(),
                )
            });
            json!({
                "ID": if a.no_trunc { id.to_string() } else { id[..12.min(id.len())].to_string() },
                "Image": c["Image"],
                "Command": if a.no_trunc { format!("\"{cmd}\"") } else { format!("\"{}\"", ellipsis(cmd, 20)) },
                "CreatedAt": crate::values::go_time(i128::from(created) * 1_000_000_000),
                "RunningFor": ago(created),
                "Status": c["Status"],
                "State": c["State"],
                "Ports": ports.iter().map(|p| {
                    let kind = p["Type"].as_str().unwrap_or("tcp");
                    match p["PublicPort"].as_u64() {
                        Some(public) => format!(
                            "{}:{public}->{}/{kind}",
                            p["IP"].as_str().unwrap_or("0.0.0.0"),
                            p["PrivatePort"]
                        ),
                        None => format!("{}/{kind}", p["PrivatePort"]),
                    }
                }).collect::<Vec<_>>().join(", "),
                "Names": names.join(","),
                "Labels": labels.join(","),
                "Size": size,
                "Mounts": mount_names.join(","),
                "LocalVolumes": local.to_string(),
                "Networks": networks.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
                "Platform": null,
            })
        })
        .collect();
    let headers = json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
        "Labels": "LABELS", "Size": "SIZE", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
    });
    let default = if size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let fmt = a.format.as_deref().filter(|f| *f != "table");
    format::print_rows(fmt, default, &rows, &headers)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::template_shows_size;

    #[test]
    fn size_is_asked_for_as_docker_asks() {
        for f in [
            "{{.Size}}",
            "table {{.Names}}\t{{.Size}}",
            "{{json .}}",
            "{{- json . -}}",
        ] {
            assert!(template_shows_size(f), "{f}");
        }
        for f in ["json", "{{.Names}}", "{{json .Labels}}", "table"] {
            assert!(!template_shows_size(f), "{f}");
        }
    }
}
