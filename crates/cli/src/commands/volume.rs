//! `berth volume create|ls|inspect|rm|prune`, and the `--mount` parser of `run`/`create`.

use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::commands::container::filters_json;
use crate::format;

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
            json!({"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
                "Scope": v["Scope"], "Labels": v["Labels"]})
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let headers = json!({"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
        "Scope": "SCOPE", "Labels": "LABELS"});
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
        crate::commands::image::size_str(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

/// `--mount type=…,source=…,target=…,…` as the docker CLI reads it, into the API's `Mount`.
pub fn parse_mount(spec: &str) -> anyhow::Result<Value> {
    let mut m = serde_json::Map::new();
    let mut typ = "volume".to_string();
    let mut ro = false;
    let mut bind = serde_json::Map::new();
    let mut vol = serde_json::Map::new();
    let mut vol_opts = serde_json::Map::new();
    let mut tmpfs = serde_json::Map::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> anyhow::Result<bool> {
            match v {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(x) => anyhow::bail!("invalid value for {k}: {x}"),
            }
        };
        let val = || {
            v.map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => typ = val()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(val()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val()?));
            }
            "readonly" | "ro" => ro = flag(v)?,
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(val()?));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(flag(v)?));
            }
            "volume-opt" => {
                let x = val()?;
                let (ok, ov) = x
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("invalid volume-opt: {x}"))?;
                vol_opts.insert(ok.into(), json!(ov));
            }
            "volume-label" => {
                let x = val()?;
                let (lk, lv) = x.split_once('=').unwrap_or((&x, ""));
                let labels = vol.entry("Labels").or_insert_with(|| json!({}));
                labels[lk] = json!(lv);
            }
            "volume-driver" => {}
            "tmpfs-size" => {
                let x = val()?;
                let n = crate::commands::container::parse_bytes(&x)?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let x = val()?;
                let n = i64::from_str_radix(&x, 8)
                    .map_err(|_| anyhow::anyhow!("invalid tmpfs-mode: {x}"))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            "consistency" => {}
            other => anyhow::bail!("unexpected key '{other}' in '{field}'"),
        }
    }
    m.insert("Type".into(), json!(typ));
    m.insert("ReadOnly".into(), json!(ro));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol_opts.is_empty() {
        vol.insert(
            "DriverConfig".into(),
            json!({"Name": "local", "Options": vol_opts}),
        );
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}
