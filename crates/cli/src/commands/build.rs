//! `berth build` and `berth builder prune`: the context is packed here, as the docker CLI
//! packs it (`.dockerignore` applied, the Dockerfile and `.dockerignore` always sent), and
//! sent to `POST /build`; the daemon's stream is printed as it comes.

use std::io::Write;
use std::path::{Path, PathBuf};

use hyper::Method;
use serde_json::Value;

use crate::api::{q, Api};

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (Default is 'PATH/Dockerfile').
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables.
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set metadata for an image.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Images to consider as cache sources.
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to the file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Set type of progress output (auto, plain, tty).
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Remove intermediate containers after a successful build.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers.
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Set the networking mode for the RUN instructions during build.
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Build context: a directory, or `-` for a Dockerfile (or a tar context) on STDIN.
    pub path: String,
}

/// The context as a tar: every file `.dockerignore` keeps, plus the Dockerfile and the
/// ignore file themselves (the daemon needs them; it leaves them out of `COPY`).
fn pack(dir: &Path, dockerfile: &Path, extra: Option<(&str, &[u8])>) -> anyhow::Result<Vec<u8>> {
    let ig = berth_build::ignore::Ignore::for_context(dir, dockerfile)
        .map_err(|e| anyhow::anyhow!("error checking context: {e}"))?;
    let df_rel = dockerfile
        .strip_prefix(dir)
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&here)
            .map_err(|e| anyhow::anyhow!("error checking context: {}: {e}", here.display()))?
            .flatten()
            .collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let r = rel.join(e.file_name());
            let rs = r.to_string_lossy().into_owned();
            let keep = !ig.excluded(&rs)
                || rs == ".dockerignore"
                || df_rel.as_deref() == Some(rs.as_str())
                || rs.ends_with(".dockerignore")
                    && df_rel
                        .as_deref()
                        .is_some_and(|d| rs == format!("{d}.dockerignore"));
            let md = std::fs::symlink_metadata(e.path())?;
            if md.is_dir() {
                // An ignored directory may still hold an exception: look inside.
                if keep {
                    b.append_dir(&r, e.path())?;
                }
                stack.push(r);
                continue;
            }
            if !keep {
                continue;
            }
            if md.is_file() || md.file_type().is_symlink() {
                b.append_path_with_name(e.path(), &r).map_err(|x| {
                    anyhow::anyhow!(
                        "error checking context: can't stat '{}': {x}",
                        e.path().display()
                    )
                })?;
            }
        }
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data)?;
    }
    Ok(b.into_inner()?)
}

/// `KEY=value`, or `KEY` taken from the environment (dropped when unset, as docker does).
fn build_args(list: &[String]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for a in list {
        match a.split_once('=') {
            Some((k, v)) => {
                m.insert(k.into(), Value::String(v.into()));
            }
            None => {
                m.insert(
                    a.clone(),
                    std::env::var(a).map(Value::String).unwrap_or(Value::Null),
                );
            }
        }
    }
    m
}

/// `berth build`.
pub async fn build(api: &Api, a: BuildArgs) -> anyhow::Result<i32> {
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty") {
        anyhow::bail!("invalid progress mode {:?}: auto, plain or tty", a.progress);
    }
    let (body, df_name) = if a.path == "-" {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)?;
        let is_tar =
            data.len() > 262 && &data[257..262] == b"ustar" || data.starts_with(&[0x1f, 0x8b]);
        if is_tar {
            (data, a.file.clone().unwrap_or_else(|| "Dockerfile".into()))
        } else {
            let empty = tempfile_dir()?;
            let name = ".dockerfile.stdin";
            let t = pack(&empty, &empty.join(name), Some((name, &data)))?;
            let _ = std::fs::remove_dir_all(&empty);
            (t, name.to_string())
        }
    } else {
        let dir = PathBuf::from(&a.path);
        let md = std::fs::metadata(&dir).map_err(|_| {
            anyhow::anyhow!("unable to prepare context: path {:?} not found", a.path)
        })?;
        if !md.is_dir() {
            anyhow::bail!(
                "unable to prepare context: context must be a directory: {}",
                a.path
            );
        }
        let dir = dir.canonicalize()?;
        let df = match &a.file {
            Some(f) if f == "-" => None,
            Some(f) => Some(
                std::path::absolute(Path::new(f))
                    .map_err(|e| anyhow::anyhow!("unable to prepare context: {e}"))?,
            ),
            None => Some(dir.join("Dockerfile")),
        };
        match df {
            // A Dockerfile inside the context travels by its path there.
            Some(df) if df.starts_with(&dir) => {
                if !df.is_file() {
                    anyhow::bail!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                        df.display()
                    );
                }
                let rel = df.strip_prefix(&dir)?.to_string_lossy().into_owned();
                (pack(&dir, &df, None)?, rel)
            }
            // One outside (or on STDIN) is added under a name of its own.
            other => {
                let data = match other {
                    Some(p) => std::fs::read(&p).map_err(|e| {
                        anyhow::anyhow!("unable to prepare context: {}: {e}", p.display())
                    })?,
                    None => {
                        let mut v = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                        v
                    }
                };
                let name = ".dockerfile.berth";
                (
                    pack(&dir, &dir.join(name), Some((name, &data)))?,
                    name.to_string(),
                )
            }
        }
    };
    if !a.quiet {
        // Byte for byte as the docker CLI's classic builder writes it, on a terminal or not:
        // its progress writer ends the line with two carriage returns.
        print!(
            "Sending build context to Docker daemon  {}\r\r\n",
            crate::values::size_with_precision(body.len() as f64, 4)
        );
    }
    let mut qs = vec![
        format!("dockerfile={}", q(&df_name)),
        format!("rm={}", if a.rm { 1 } else { 0 }),
    ];
    for t in &a.tags {
        qs.push(format!("t={}", q(t)));
    }
    if !a.build_args.is_empty() {
        qs.push(format!(
            "buildargs={}",
            q(&Value::Object(build_args(&a.build_args)).to_string())
        ));
    }
    if !a.labels.is_empty() {
        let mut m = serde_json::Map::new();
        for l in &a.labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            m.insert(k.into(), Value::String(v.into()));
        }
        qs.push(format!("labels={}", q(&Value::Object(m).to_string())));
    }
    if let Some(t) = &a.target {
        qs.push(format!("target={}", q(t)));
    }
    if a.no_cache {
        qs.push("nocache=1".into());
    }
    if !a.cache_from.is_empty() {
        qs.push(format!(
            "cachefrom={}",
            q(&serde_json::json!(a.cache_from).to_string())
        ));
    }
    if a.pull {
        qs.push("pull=1".into());
    }
    if a.quiet {
        qs.push("q=1".into());
    }
    if a.force_rm {
        qs.push("forcerm=1".into());
    }
    if a.network != "default" {
        qs.push(format!("networkmode={}", q(&a.network)));
    }
    let res = api
        .send_raw(
            Method::POST,
            &format!("/build?{}", qs.join("&")),
            body,
            "application/x-tar",
        )
        .await?;
    let mut id = None;
    let mut failed = None;
    let mut stdout = std::io::stdout();
    crate::api::json_lines(res, |v| {
        if let Some(s) = v["stream"].as_str() {
            if !a.quiet {
                stdout.write_all(s.as_bytes())?;
                stdout.flush()?;
            }
        }
        if let Some(i) = v["aux"]["ID"].as_str() {
            id = Some(i.to_string());
        }
        if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            let code = v["errorDetail"]["code"]
                .as_i64()
                .filter(|c| *c != 0)
                .unwrap_or(1);
            failed = Some(code as i32);
            return Ok(false);
        }
        Ok(true)
    })
    .await?;
    if let Some(code) = failed {
        return Ok(code);
    }
    let Some(id) = id else {
        anyhow::bail!("the build ended without an image");
    };
    if let Some(p) = &a.iidfile {
        std::fs::write(p, &id).map_err(|e| anyhow::anyhow!("write {}: {e}", p.display()))?;
    }
    if a.quiet {
        println!("{id}");
    }
    Ok(0)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("berth-build-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove all unused build cache, not just dangling ones.
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// `berth builder prune`.
pub async fn prune(api: &Api, a: PruneArgs) -> anyhow::Result<i32> {
    if !crate::commands::system::confirm("all dangling build cache", a.force)? {
        return Ok(0);
    }
    let v = api.json(Method::POST, "/build/prune", None).await?;
    if let Some(ids) = v["CachesDeleted"].as_array() {
        if !ids.is_empty() {
            println!("Deleted build cache objects:");
            for i in ids {
                println!("{}", i.as_str().unwrap_or_default());
            }
        }
    }
    println!(
        "Total reclaimed space: {}",
        crate::values::size_str(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}
