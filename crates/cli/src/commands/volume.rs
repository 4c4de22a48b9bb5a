//! `berth volume create|ls|inspect|rm|prune`, and the `--mount` parser of `run`/`create`.

use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::format;
use crate::values::filters_json;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

/// `berth volume create`: prints the volume's name.
pub async fn create(api: &Api, a: CreateArgs) -> anyhow::Result<i32> {
    let body = json!({
        "Name": a.name.clone().unwrap_or_default(),
        "Driver": a.driver,
        "DriverOpts": crate::commands::key_values(&a.opt, "option")?,
        "Labels": crate::commands::key_values(&a.label, "label")?,
    });
    let v = api
        .json(Method::POST, "/volumes/create", Some(&body))
        .await?;
    println!("{}", v["Name"].as_str().unwrap_or_default());
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true").
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template, or "json".
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `berth volume ls`.
pub async fn ls(api: &Api, a: LsArgs) -> anyhow::Result<i32> {
    let mut path = "/volumes".to_string();
    if !a.filter.is_empty() {
        path = format!("/volumes?filters={}", q(&filters_json(&a.filter)?));
    }
    let v = api.get(&path).await?;
    let rows: Vec<Value> = v["Volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let labels: Vec<String> = v["Labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                .collect();
            // Cluster volumes' and usage fields berth has not: docker's "N/A".
            json!({"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
                "Scope": v["Scope"], "Labels": labels.join(","), "Availability": "N/A",
                "Group": "N/A", "Links": "N/A", "Size": "N/A", "Status": "N/A"})
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let headers = json!({"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
        "Scope": "SCOPE", "Labels": "LABELS", "Availability": "AVAILABILITY", "Group": "GROUP",
        "Links": "LINKS", "Size": "SIZE", "Status": "STATUS"});
    format::print_rows(
        a.format.as_deref(),
        "table {{.Driver}}\t{{.Name}}",
        &rows,
        &headers,
    )?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template, or "json".
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    #[arg(add = crate::complete::volumes())]
    pub names: Vec<String>,
}

/// `berth volume inspect`.
pub async fn inspect(api: &Api, a: InspectArgs) -> anyhow::Result<i32> {
    crate::commands::inspect_each(api, "/volumes", &a.names, a.format.as_deref()).await
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes (no error if missing).
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::volumes())]
    pub names: Vec<String>,
}

/// `berth volume rm`.
pub async fn rm(api: &Api, a: RmArgs) -> anyhow::Result<i32> {
    crate::commands::remove_each(api, "/volumes", &a.names, a.force).await
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `berth volume prune`.
pub async fn prune(api: &Api, a: PruneArgs) -> anyhow::Result<i32> {
    let what = if a.all {
        "all local volumes not used by at least one container"
    } else {
        "all anonymous local volumes not used by at least one container"
    };
    if !crate::commands::system::confirm(what, a.force)? {
        return Ok(0);
    }
    let mut f = a.filter.clone();
    if a.all {
        f.push("all=true".into());
    }
    let qs = if f.is_empty() {
        String::new()
    } else {
        format!("?filters={}", q(&filters_json(&f)?))
    };
    let v = api
        .json(Method::POST, &format!("/volumes/prune{qs}"), None)
        .await?;
    let gone = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
    if !gone.is_empty() {
        println!("Deleted Volumes:");
        for g in &gone {
            println!("{}", g.as_str().unwrap_or_default());
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::values::size_str(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}
