//! `exec`: a process in a running container, attached or detached.

use hyper::Method;
use serde_json::json;

use crate::api::{q, Api};

use super::*;

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(add = crate::complete::containers())]
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `berth exec`: exit code of the command; 126 when it cannot be run, 127 when not found.
pub async fn exec(api: &Api, a: ExecArgs) -> anyhow::Result<i32> {
    if let Some(code) = crate::tty::refuse_non_tty_input(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Env": a.env,
        "User": a.user.clone().unwrap_or_default(),
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Cmd": a.command,
    });
    let v = api
        .json(
            Method::POST,
            &format!("/containers/{}/exec", q(&a.container)),
            Some(&body),
        )
        .await?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    let fail = |e: anyhow::Error| {
        let msg = format!("{e:#}");
        eprintln!("{msg}");
        if msg.contains("executable file not found") || msg.contains("No such file or directory") {
            127
        } else {
            126
        }
    };
    if a.detach {
        return Ok(
            match api
                .call(Method::POST, &format!("/exec/{id}/start"), Some(&start))
                .await
            {
                Ok(_) => 0,
                Err(e) => fail(e),
            },
        );
    }
    let conn = match api
        .hijack_with(&format!("/exec/{id}/start"), Some(&start))
        .await
    {
        Ok(c) => c,
        Err(e) => return Ok(fail(e)),
    };
    let raw = if a.tty {
        crate::tty::Raw::enable()
    } else {
        None
    };
    if a.tty {
        if let Some((h, w)) = crate::tty::size() {
            let _ = api
                .call(
                    Method::POST,
                    &format!("/exec/{id}/resize?h={h}&w={w}"),
                    None,
                )
                .await;
        }
    }
    stream_io(conn, a.tty, a.interactive, a.detach_keys.as_deref()).await;
    drop(raw);
    let info = api.get(&format!("/exec/{id}/json")).await?;
    Ok(info["ExitCode"].as_i64().unwrap_or(126) as i32)
}
