//! `logs` and `attach`.

use std::io::Write;

use http_body_util::BodyExt;
use hyper::Method;

use crate::api::{q, Api};

use super::*;
use crate::values::parse_time;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(add = crate::complete::containers())]
    pub container: String,
}

/// `berth logs`.
pub async fn logs(api: &Api, a: LogsArgs) -> anyhow::Result<i32> {
    let info = api
        .get(&format!("/containers/{}/json", q(&a.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut qs = format!(
        "stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        a.follow,
        a.timestamps,
        q(&a.tail)
    );
    if let Some(s) = &a.since {
        qs.push_str(&format!("&since={}", parse_time(s)?));
    }
    if let Some(u) = &a.until {
        qs.push_str(&format!("&until={}", parse_time(u)?));
    }
    let res = api
        .stream(
            Method::GET,
            &format!("/containers/{}/logs?{qs}", q(&a.container)),
        )
        .await?;
    let mut body = res.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if tty {
            out.write_all(&data)?;
            out.flush()?;
            continue;
        }
        buf.extend_from_slice(&data);
        while buf.len() >= 8 {
            let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
            if buf.len() < 8 + len {
                break;
            }
            let payload = &buf[8..8 + len];
            if buf[0] == 2 {
                err.write_all(payload)?;
            } else {
                out.write_all(payload)?;
            }
            buf.drain(..8 + len);
        }
        out.flush()?;
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(add = crate::complete::containers())]
    pub container: String,
}

/// `berth attach`.
pub async fn attach(api: &Api, a: AttachArgs) -> anyhow::Result<i32> {
    let info = api
        .get(&format!("/containers/{}/json", q(&a.container)))
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let id = info["Id"].as_str().unwrap_or_default().to_string();
    let conn = api
        .hijack(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if stdin { "&stdin=1" } else { "" }
        ))
        .await?;
    let waiter = start_wait(api, &id, "").await?;
    let raw = if tty { crate::tty::Raw::enable() } else { None };
    if tty {
        crate::tty::watch_size(api.clone(), id.clone());
    }
    let detached = stream_io(conn, tty, stdin, a.detach_keys.as_deref()).await;
    drop(raw);
    if detached {
        return Ok(0);
    }
    Ok(waiter.await.unwrap_or(-1) as i32)
}
