//! `cp`, `diff`, `commit` and `export`.

use std::io::Write;

use anyhow::Context as _;
use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Always follow symbol links in SRC_PATH (accepted; links are copied as links).
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if
    /// no terminal is attached to STDERR.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or a local path (`-` for a tar on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH or a local path (`-` for a tar on stdout).
    pub dest: String,
}

/// `container:path` → (container, path); a local path → None.
pub(crate) fn split_container_path(s: &str) -> Option<(&str, &str)> {
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/') && !s.starts_with('/') && !s.starts_with('.'))
        .then_some((c, p))
}

/// `berth cp`: docker's rules for the destination (an existing directory receives the
/// source under its own name; otherwise the source takes the destination's name).
/// When STDERR is a terminal and `-q` was not given, what was copied is said afterwards
/// as the docker 28 CLI says it: the archive's size (0B for one read from STDIN, as docker
/// counts it; three significant digits) and the destination as typed; nothing for an archive written to STDOUT.
pub async fn cp(api: &Api, a: CpArgs) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let copied = match (split_container_path(&a.src), split_container_path(&a.dest)) {
        (Some((c, src)), None) => cp_from(api, c, src, &a.dest).await?,
        (None, Some((c, dest))) => cp_to(api, &a.src, c, dest).await?,
        _ => anyhow::bail!("must specify at least one container source (and only one)"),
    };
    if !a.quiet && a.dest != "-" && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {}",
            crate::values::size_str(copied as f64),
            a.dest
        );
    }
    Ok(0)
}

/// Copies out of a container; returns the archive's size.
pub(crate) async fn cp_from(api: &Api, c: &str, src: &str, dest: &str) -> anyhow::Result<u64> {
    use http_body_util::BodyExt;
    let res = api
        .stream(
            Method::GET,
            &format!("/containers/{}/archive?path={}", q(c), q(src)),
        )
        .await?;
    let body = res.into_body().collect().await?.to_bytes();
    let size = body.len() as u64;
    if dest == "-" {
        std::io::stdout().write_all(&body)?;
        return Ok(size);
    }
    let dest = std::path::Path::new(dest);
    let contents_only = src.ends_with("/.");
    if dest.is_dir() && !contents_only {
        tar::Archive::new(&body[..]).unpack(dest)?;
        return Ok(size);
    }
    // Into a scratch directory beside the destination, then renamed to it.
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = parent.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let r = (|| -> anyhow::Result<()> {
        tar::Archive::new(&body[..]).unpack(&tmp)?;
        let top = std::fs::read_dir(&tmp)?
            .next()
            .transpose()?
            .map(|e| e.path());
        let Some(top) = top else {
            anyhow::bail!("the container sent an empty archive")
        };
        if contents_only && dest.is_dir() {
            for e in std::fs::read_dir(&top)? {
                let e = e?;
                std::fs::rename(e.path(), dest.join(e.file_name()))?;
            }
        } else {
            std::fs::rename(&top, dest)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    r?;
    Ok(size)
}

/// Copies into a container; returns the size of the archive made here (0 for one read
/// from STDIN).
pub(crate) async fn cp_to(api: &Api, src: &str, c: &str, dest: &str) -> anyhow::Result<u64> {
    let data = if src == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        v
    } else {
        let srcp = std::path::Path::new(src.trim_end_matches("/.").trim_end_matches('/'));
        let md = std::fs::symlink_metadata(srcp)
            .with_context(|| format!("could not find the file {src}"))?;
        // Where it lands: into an existing directory under its own name, else as `dest`.
        let head = api
            .client
            .send(
                Method::HEAD,
                &format!(
                    "/v{}/containers/{}/archive?path={}",
                    api.version,
                    q(c),
                    q(dest)
                ),
                None,
                false,
            )
            .await?;
        let dest_is_dir = head.status().is_success()
            && head
                .headers()
                .get("X-Docker-Container-Path-Stat")
                .and_then(|v| v.to_str().ok())
                .is_some_and(stat_is_dir);
        let (dir, name) = if dest_is_dir {
            (
                dest.to_string(),
                srcp.file_name().map(|n| n.to_owned()).unwrap_or_default(),
            )
        } else {
            let d = std::path::Path::new(dest);
            let parent = d
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            (
                parent,
                d.file_name().map(|n| n.to_owned()).unwrap_or_default(),
            )
        };
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        if src.ends_with("/.") && md.is_dir() {
            b.append_dir_all(
                if dest_is_dir {
                    std::path::Path::new(".")
                } else {
                    std::path::Path::new(&name)
                },
                srcp,
            )?;
        } else if md.is_dir() {
            b.append_dir_all(&name, srcp)?;
        } else {
            b.append_path_with_name(srcp, &name)?;
        }
        let data = b.into_inner()?;
        let size = data.len() as u64;
        put_archive(api, c, &dir, data).await?;
        return Ok(size);
    };
    put_archive(api, c, dest, data).await?;
    Ok(0)
}

pub(crate) async fn put_archive(
    api: &Api,
    c: &str,
    dir: &str,
    data: Vec<u8>,
) -> anyhow::Result<i32> {
    api.send_raw(
        Method::PUT,
        &format!("/containers/{}/archive?path={}", q(c), q(dir)),
        data,
        "application/x-tar",
    )
    .await?;
    Ok(0)
}

/// Whether a base64 path stat says "directory" (Go's ModeDir bit).
pub(crate) fn stat_is_dir(b64: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
        .and_then(|v| v["mode"].as_u64())
        .is_some_and(|m| m & (1 << 31) != 0)
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[arg(add = crate::complete::containers())]
    pub container: String,
}

/// `berth diff`: `A`, `C` and `D` lines as docker prints them.
pub async fn diff(api: &Api, a: DiffArgs) -> anyhow::Result<i32> {
    let v = api
        .get(&format!("/containers/{}/changes", q(&a.container)))
        .await?;
    for c in v.as_array().into_iter().flatten() {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            _ => "D",
        };
        println!("{k} {}", c["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// Author.
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit (accepted; berth reads the upper layer as it is).
    #[arg(short = 'p', long, default_value_t = true)]
    pub pause: bool,
    #[arg(add = crate::complete::containers())]
    pub container: String,
    pub repository: Option<String>,
}

/// `berth commit`.
pub async fn commit(api: &Api, a: CommitArgs) -> anyhow::Result<i32> {
    let mut qs = vec![format!("container={}", q(&a.container))];
    if let Some(r) = &a.repository {
        let (repo, tag) = crate::values::repo_tag(r);
        qs.push(format!("repo={}&tag={}", q(&repo), q(&tag)));
    }
    if let Some(m) = &a.message {
        qs.push(format!("comment={}", q(m)));
    }
    if let Some(au) = &a.author {
        qs.push(format!("author={}", q(au)));
    }
    for c in &a.change {
        qs.push(format!("changes={}", q(c)));
    }
    let v = api
        .json(
            Method::POST,
            &format!("/commit?{}", qs.join("&")),
            Some(&json!({})),
        )
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    #[arg(add = crate::complete::containers())]
    pub container: String,
}

/// `berth export`.
pub async fn export(api: &Api, a: ExportArgs) -> anyhow::Result<i32> {
    if let Some(code) = crate::tty::refuse_archive_to_terminal(a.output.as_deref()) {
        return Ok(code);
    }
    let res = api
        .stream(
            Method::GET,
            &format!("/containers/{}/export", q(&a.container)),
        )
        .await?;
    crate::api::body_to(res, a.output.as_deref()).await?;
    Ok(0)
}
