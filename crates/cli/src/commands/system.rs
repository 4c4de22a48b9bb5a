//! `berth info` and `berth events`.

use std::io::Write;

use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use crate::api::{q, Api};
use crate::commands::container::{filters_json, parse_time};
use crate::format;

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
    let mut body = res.into_body();
    let mut buf = Vec::new();
    let mut out = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            match a.format.as_deref() {
                Some("json") => writeln!(out, "{}", serde_json::to_string(&ev)?)?,
                Some(f) => writeln!(out, "{}", format::render(f, &ev)?)?,
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
    }
    Ok(0)
}

/// Nanoseconds since the epoch as docker prints event times (local time is UTC here).
fn berth_time(nanos: u64) -> String {
    let secs = (nanos / 1_000_000_000) as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        nanos % 1_000_000_000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_times() {
        assert_eq!(
            super::berth_time(1_700_000_000_000_000_001),
            "2023-11-14T22:13:20.000000001Z"
        );
    }
}
