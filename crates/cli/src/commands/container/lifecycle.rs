//! `start`, `stop`, `restart`, `kill`, `pause`, `unpause`, `rm`, `wait`, `rename` and `update`.

use hyper::Method;
use serde_json::json;

use crate::api::{q, Api};

use super::*;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

/// `berth start`.
pub async fn start(api: &Api, a: StartArgs) -> anyhow::Result<i32> {
    if a.attach || a.interactive {
        let id = &a.containers[0];
        let info = api.get(&format!("/containers/{}/json", q(id))).await?;
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let full = info["Id"].as_str().unwrap_or(id).to_string();
        let conn = api
            .hijack(&format!(
                "/containers/{full}/attach?stream=1&stdout=1&stderr=1{}",
                if a.interactive { "&stdin=1" } else { "" }
            ))
            .await?;
        let waiter = start_wait(api, &full, "next-exit").await?;
        let raw = if tty { crate::tty::Raw::enable() } else { None };
        api.call(Method::POST, &format!("/containers/{full}/start"), None)
            .await?;
        let detached = stream_io(conn, tty, a.interactive, None).await;
        drop(raw);
        if detached {
            return Ok(0);
        }
        return Ok(waiter.await.unwrap_or(-1) as i32);
    }
    post_each(api, &a.containers, "start", "").await
}

/// Runs `f` for each container, printing what it returns and docker's errors; exit 1 if any
/// failed.
pub(crate) async fn each<F, Fut>(names: &[String], f: F) -> anyhow::Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(out) => {
                if !out.is_empty() {
                    println!("{out}");
                }
            }
            Err(e) => {
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

pub(crate) fn stop_query(a: &StopArgs) -> String {
    let mut qs = Vec::new();
    if let Some(t) = a.time {
        qs.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        qs.push(format!("signal={}", q(s)));
    }
    if qs.is_empty() {
        String::new()
    } else {
        format!("?{}", qs.join("&"))
    }
}

/// `berth stop`.
pub async fn stop(api: &Api, a: StopArgs) -> anyhow::Result<i32> {
    post_each(api, &a.containers, "stop", &stop_query(&a)).await
}

/// `berth restart`.
pub async fn restart(api: &Api, a: StopArgs) -> anyhow::Result<i32> {
    post_each(api, &a.containers, "restart", &stop_query(&a)).await
}

/// POSTs `/containers/{name}/{op}{qs}` for each container, printing each name as docker does.
pub(crate) async fn post_each(
    api: &Api,
    names: &[String],
    op: &str,
    qs: &str,
) -> anyhow::Result<i32> {
    each(names, |c| async move {
        api.call(
            Method::POST,
            &format!("/containers/{}/{op}{qs}", q(&c)),
            None,
        )
        .await
        .map(|_| c)
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

/// `berth kill`.
pub async fn kill(api: &Api, a: KillArgs) -> anyhow::Result<i32> {
    post_each(
        api,
        &a.containers,
        "kill",
        &format!("?signal={}", q(&a.signal)),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

/// `berth pause` / `berth unpause`.
pub async fn pause(api: &Api, a: NamesArgs, on: bool) -> anyhow::Result<i32> {
    post_each(api, &a.containers, if on { "pause" } else { "unpause" }, "").await
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

/// `berth rm`.
pub async fn rm(api: &Api, a: RmArgs) -> anyhow::Result<i32> {
    let qs = format!("?force={}&v={}", a.force, a.volumes);
    each(&a.containers, |c| {
        let qs = qs.clone();
        async move {
            api.call(Method::DELETE, &format!("/containers/{}{qs}", q(&c)), None)
                .await
                .map(|_| c)
        }
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

/// `berth wait`.
pub async fn wait(api: &Api, a: WaitArgs) -> anyhow::Result<i32> {
    each(&a.containers, |c| async move {
        let v = api
            .json(Method::POST, &format!("/containers/{}/wait", q(&c)), None)
            .await?;
        Ok(v["StatusCode"].as_i64().unwrap_or(-1).to_string())
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    #[arg(add = crate::complete::containers())]
    pub container: String,
    pub new_name: String,
}

/// `berth rename`.
pub async fn rename(api: &Api, a: RenameArgs) -> anyhow::Result<i32> {
    api.call(
        Method::POST,
        &format!(
            "/containers/{}/rename?name={}",
            q(&a.container),
            q(&a.new_name)
        ),
        None,
    )
    .await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    #[arg(add = crate::complete::containers())]
    pub containers: Vec<String>,
}

/// `berth update`.
pub async fn update(api: &Api, a: UpdateArgs) -> anyhow::Result<i32> {
    let mut body = json!({});
    a.resources.apply(&mut body)?;
    if let Some(r) = &a.restart {
        body["RestartPolicy"] = parse_restart(r)?;
    }
    let body = &body;
    each(&a.containers, |c| async move {
        api.json(
            Method::POST,
            &format!("/containers/{}/update", q(&c)),
            Some(body),
        )
        .await
        .map(|_| c)
    })
    .await
}
