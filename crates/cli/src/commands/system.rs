//! `berth info` and `berth events`.

use std::io::Write;

use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::format;
use crate::values::{filters_json, parse_time};

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Format output using a Go template, or "json".
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// `berth info`, laid out as `docker info` prints its server section.
pub async fn info(api: &Api, a: InfoArgs) -> anyhow::Result<i32> {
    let v = api.get("/info").await?;
    match a.format.as_deref() {
        Some("json") => println!("{}", serde_json::to_string(&v)?),
        Some(f) => println!("{}", format::render(f, &v)?),
        None => {
            let s = |k: &str| match &v[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            println!("Server:");
            println!(" Containers: {}", s("Containers"));
            println!("  Running: {}", s("ContainersRunning"));
            println!("  Paused: {}", s("ContainersPaused"));
            println!("  Stopped: {}", s("ContainersStopped"));
            println!(" Images: {}", s("Images"));
            println!(" Server Version: {}", s("ServerVersion"));
            println!(" Storage Driver: {}", s("Driver"));
            println!(" Logging Driver: {}", s("LoggingDriver"));
            println!(" Cgroup Driver: {}", s("CgroupDriver"));
            println!(" Cgroup Version: {}", s("CgroupVersion"));
            if let Some(h) = v["CgroupHierarchy"].as_str() {
                println!(" Cgroup Hierarchy: {h}");
            }
            if let Some(c) = v["CgroupControllers"].as_array() {
                let names: Vec<&str> = c.iter().filter_map(Value::as_str).collect();
                println!(" Cgroup Controllers: {}", names.join(" "));
            }
            println!(" Default Runtime: {}", s("DefaultRuntime"));
            println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
            println!(" Kernel Version: {}", s("KernelVersion"));
            println!(" Operating System: {}", s("OperatingSystem"));
            println!(" OSType: {}", s("OSType"));
            println!(" Architecture: {}", s("Architecture"));
            println!(" CPUs: {}", s("NCPU"));
            println!(
                " Total Memory: {:.2}GiB",
                v["MemTotal"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64
            );
            println!(" Name: {}", s("Name"));
            println!(" Docker Root Dir: {}", s("DockerRootDir"));
        }
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template, or "json".
    #[arg(long)]
    pub format: Option<String>,
}

/// `berth events`.
pub async fn events(api: &Api, a: EventsArgs) -> anyhow::Result<i32> {
    let mut qs = Vec::new();
    if let Some(s) = &a.since {
        qs.push(format!("since={}", parse_time(s)?));
    }
    if let Some(u) = &a.until {
        qs.push(format!("until={}", parse_time(u)?));
    }
    if !a.filter.is_empty() {
        qs.push(format!("filters={}", q(&filters_json(&a.filter)?)));
    }
    let res = api
        .stream(Method::GET, &format!("/events?{}", qs.join("&")))
        .await?;
    let mut out = std::io::stdout();
    crate::api::json_lines(res, |ev| {
        {
            match a.format.as_deref() {
                Some("json") => writeln!(out, "{}", serde_json::to_string(&ev)?)?,
                Some(f) => writeln!(out, "{}", format::render(f, &go_fields(&ev))?)?,
                None => {
                    let nanos = ev["timeNano"].as_u64().unwrap_or(0);
                    let t = berth_time(nanos);
                    let mut attrs: Vec<String> = ev["Actor"]["Attributes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    attrs.sort();
                    writeln!(
                        out,
                        "{t} {} {} {} ({})",
                        ev["Type"].as_str().unwrap_or_default(),
                        ev["Action"].as_str().unwrap_or_default(),
                        ev["Actor"]["ID"].as_str().unwrap_or_default(),
                        attrs.join(", ")
                    )?
                }
            }
            out.flush()?;
        }
        Ok(true)
    })
    .await?;
    Ok(0)
}

/// An event as the docker CLI's templates see it: the Go field names of its message
/// (`.Status`, `.ID`, `.From`, `.Time`, `.TimeNano`), which the wire spells in lower case.
fn go_fields(ev: &serde_json::Value) -> serde_json::Value {
    let mut v = ev.clone();
    if let Some(o) = v.as_object_mut() {
        for (wire, go) in [
            ("status", "Status"),
            ("id", "ID"),
            ("from", "From"),
            ("scope", "Scope"),
            ("time", "Time"),
            ("timeNano", "TimeNano"),
        ] {
            if let Some(x) = o.remove(wire) {
                o.insert(go.into(), x);
            }
        }
    }
    v
}

/// Nanoseconds since the epoch as docker prints event times (local time is UTC here).
fn berth_time(nanos: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_templates_see_go_field_names() {
        let ev =
            serde_json::json!({"status": "start", "id": "3f", "Action": "start", "timeNano": 5});
        let v = super::go_fields(&ev);
        assert_eq!(v["Status"], "start");
        assert_eq!(v["ID"], "3f");
        assert_eq!(v["Action"], "start");
        assert_eq!(v["TimeNano"], 5);
    }

    #[test]
    fn event_times() {
        assert_eq!(
            super::berth_time(1_700_000_000_000_000_001),
            "2023-11-14T22:13:20.000000001Z"
        );
    }
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove all unused images, not just dangling ones (image and system prune).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. 'label=<key>=<value>').
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

pub(crate) fn confirm(what: &str, force: bool) -> anyhow::Result<bool> {
    if force {
        return Ok(true);
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn reclaimed(n: u64) -> String {
    crate::values::size_str(n as f64)
}

/// `berth container prune`.
pub async fn container_prune(api: &Api, a: PruneArgs) -> anyhow::Result<i32> {
    if !confirm("all stopped containers", a.force)? {
        return Ok(0);
    }
    let mut qs = String::new();
    if !a.filter.is_empty() {
        qs = format!("?filters={}", q(&filters_json(&a.filter)?));
    }
    let v = api
        .json(Method::POST, &format!("/containers/prune{qs}"), None)
        .await?;
    let gone = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !gone.is_empty() {
        println!("Deleted Containers:");
        for g in &gone {
            println!("{}", g.as_str().unwrap_or_default());
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        reclaimed(v["SpaceReclaimed"].as_u64().unwrap_or(0))
    );
    Ok(0)
}

/// `berth image prune`.
pub async fn image_prune(api: &Api, a: PruneArgs) -> anyhow::Result<i32> {
    let what = if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !confirm(what, a.force)? {
        return Ok(0);
    }
    let f = if a.all {
        r#"{"dangling":["false"]}"#
    } else {
        r#"{"dangling":["true"]}"#
    };
    let v = api
        .json(
            Method::POST,
            &format!("/images/prune?filters={}", q(f)),
            None,
        )
        .await?;
    let items = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for it in &items {
            for (k, x) in it.as_object().into_iter().flatten() {
                println!("{}: {}", k.to_lowercase(), x.as_str().unwrap_or_default());
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        reclaimed(v["SpaceReclaimed"].as_u64().unwrap_or(0))
    );
    Ok(0)
}

/// `berth system prune`: stopped containers, then dangling (or with -a unused) images.
pub async fn system_prune(api: &Api, a: PruneArgs) -> anyhow::Result<i32> {
    if !confirm("all stopped containers and all dangling images", a.force)? {
        return Ok(0);
    }
    let c = container_prune(
        api,
        PruneArgs {
            force: true,
            all: false,
            filter: a.filter.clone(),
        },
    )
    .await?;
    let i = image_prune(
        api,
        PruneArgs {
            force: true,
            all: a.all,
            filter: Vec::new(),
        },
    )
    .await?;
    Ok(c.max(i))
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Repair what is safe to repair (dangling tags, stale records and mounts, leftovers).
    #[arg(long)]
    pub repair: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `berth system check`: exit 0 when nothing is wrong (removable garbage and partial
/// downloads are not wrong), 1 when something is.
pub async fn check(api: &Api, a: CheckArgs) -> anyhow::Result<i32> {
    let path = if a.repair {
        "/system/check?repair=1"
    } else {
        "/system/check"
    };
    let v = api.json(Method::POST, path, None).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for f in v["Findings"].as_array().into_iter().flatten() {
            let state = if f["repaired"].as_bool() == Some(true) {
                "repaired"
            } else {
                f["severity"].as_str().unwrap_or("")
            };
            println!(
                "{state:<10} {}: {}",
                f["subject"].as_str().unwrap_or(""),
                f["problem"].as_str().unwrap_or("")
            );
        }
        println!(
            "{} errors, {} to repair, {} repaired, {} removable",
            v["Errors"], v["Repairable"], v["Repaired"], v["Removable"]
        );
    }
    let bad = v["Errors"].as_u64().unwrap_or(0) + v["Repairable"].as_u64().unwrap_or(0);
    Ok(if bad == 0 { 0 } else { 1 })
}

#[derive(Debug, clap::Args)]
pub struct DfArgs {
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// `berth system df`.
pub async fn df(api: &Api, a: DfArgs) -> anyhow::Result<i32> {
    let v = api.get("/system/df").await?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_u64().unwrap_or(0) > 0)
        .count();
    let img_size = v["LayersSize"].as_u64().unwrap_or(0);
    let img_reclaim: u64 = images
        .iter()
        .filter(|i| i["Containers"].as_u64().unwrap_or(0) == 0)
        .map(|i| i["Size"].as_u64().unwrap_or(0) - i["SharedSize"].as_u64().unwrap_or(0))
        .sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"] == "running" || c["State"] == "paused")
        .count();
    let c_size: u64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_u64().unwrap_or(0))
        .sum();
    let c_reclaim: u64 = containers
        .iter()
        .filter(|c| c["State"] != "running" && c["State"] != "paused")
        .map(|c| c["SizeRw"].as_u64().unwrap_or(0))
        .sum();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let vsize = |x: &Value| x["UsageData"]["Size"].as_u64().unwrap_or(0);
    let vused = |x: &Value| x["UsageData"]["RefCount"].as_u64().unwrap_or(0) > 0;
    let v_active = volumes.iter().filter(|x| vused(x)).count();
    let v_size: u64 = volumes.iter().map(vsize).sum();
    let v_reclaim: u64 = volumes.iter().filter(|x| !vused(x)).map(vsize).sum();
    let cache = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let b_size: u64 = cache.iter().map(|c| c["Size"].as_u64().unwrap_or(0)).sum();
    let pct = |r: u64, t: u64| match (r * 100).checked_div(t) {
        Some(p) => format!("{p}%"),
        None => "0%".to_string(),
    };
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(), "Size": reclaimed(img_size), "Reclaimable": format!("{} ({})", reclaimed(img_reclaim), pct(img_reclaim, img_size))}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": c_active.to_string(), "Size": reclaimed(c_size), "Reclaimable": format!("{} ({})", reclaimed(c_reclaim), pct(c_reclaim, c_size))}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": v_active.to_string(), "Size": reclaimed(v_size), "Reclaimable": format!("{} ({})", reclaimed(v_reclaim), pct(v_reclaim, v_size))}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": "0", "Size": reclaimed(b_size), "Reclaimable": reclaimed(b_size)}),
    ];
    let headers = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    format::print_rows(
        a.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &rows,
        &headers,
    )?;
    Ok(0)
}
