//! Image commands: `images`, `rmi`, `tag`, `load`.

use crate::api::body_to;
use crate::values::repo_tag;
use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::format;
use crate::values::human_duration;

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided (dangling, label, reference, before, since).
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Only images of this repository (and tag).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth images`.
pub async fn images(api: &Api, a: ImagesArgs) -> anyhow::Result<i32> {
    let mut filter = a.filter.clone();
    if let Some(r) = &a.reference {
        filter.push(format!("reference={r}"));
    }
    let mut qs = Vec::new();
    if a.all {
        qs.push("all=1".to_string());
    }
    if !filter.is_empty() {
        qs.push(format!(
            "filters={}",
            crate::api::q(&crate::values::filters_json(&filter)?)
        ));
    }
    let list = api.get(&format!("/images/json?{}", qs.join("&"))).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let mut rows = Vec::new();
    for i in list.as_array().into_iter().flatten() {
        let id = i["Id"].as_str().unwrap_or_default();
        let short = if a.no_trunc {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        };
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let tags = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        let digests: Vec<&str> = i["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .collect();
        let created = i["Created"].as_i64().unwrap_or(now);
        let size = i["Size"].as_f64().unwrap_or(0.0);
        // The API's -1 is docker's "N/A".
        let count = |k: &str| match i[k].as_i64() {
            Some(n) if n >= 0 => n.to_string(),
            _ => "N/A".to_string(),
        };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
            let digest = digests
                .iter()
                .find_map(|d| d.strip_prefix(repo).and_then(|d| d.strip_prefix('@')))
                .unwrap_or("<none>");
            rows.push(json!({
                "ID": short, "Repository": repo, "Tag": tag, "Digest": digest,
                "CreatedSince": format!("{} ago", human_duration(now - created)),
                "CreatedAt": crate::values::go_time(i128::from(created) * 1_000_000_000),
                "Size": crate::values::size_str(size),
                "VirtualSize": crate::values::size_with_precision(size, 4),
                "Containers": count("Containers"),
                "SharedSize": count("SharedSize"),
                "UniqueSize": "N/A",
            }));
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default().to_string();
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let headers = json!({"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "CreatedSince": "CREATED", "Size": "SIZE",
        "Digest": "DIGEST", "CreatedAt": "CREATED AT", "VirtualSize": "VIRTUAL SIZE", "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"});
    format::print_rows(
        a.format.as_deref(),
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
        &rows,
        &headers,
    )?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Force removal of the image.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::images())]
    pub images: Vec<String>,
}

/// `berth rmi`.
pub async fn rmi(api: &Api, a: RmiArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for i in &a.images {
        match api
            .json(
                Method::DELETE,
                &format!("/images/{i}?force={}", a.force),
                None,
            )
            .await
        {
            Ok(Value::Array(items)) => {
                for it in items {
                    for (k, v) in it.as_object().into_iter().flatten() {
                        println!("{k}: {}", v.as_str().unwrap_or_default());
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    #[arg(add = crate::complete::images())]
    pub source: String,
    pub target: String,
}

/// `berth tag`.
pub async fn tag(api: &Api, a: TagArgs) -> anyhow::Result<i32> {
    let (repo, tag) = repo_tag(&a.target);
    api.call(
        Method::POST,
        &format!("/images/{}/tag?repo={}&tag={}", a.source, q(&repo), q(&tag)),
        None,
    )
    .await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short = 'i', long)]
    pub input: Option<std::path::PathBuf>,
    /// Suppress the load output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `berth load`.
pub async fn load(api: &Api, a: LoadArgs) -> anyhow::Result<i32> {
    let data = match &a.input {
        Some(p) => std::fs::read(p).map_err(|e| anyhow::anyhow!("open {}: {e}", p.display()))?,
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            // docker's words: an archive is not typed at a terminal.
            eprintln!("requested load from stdin, but stdin is empty");
            return Ok(1);
        }
        None => {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
            v
        }
    };
    // As the docker CLI: the daemon's per-layer progress only for a terminal, and the
    // `Loaded image` lines with or without `-q`.
    let quiet = a.quiet || !std::io::IsTerminal::is_terminal(&std::io::stdout());
    let res = api
        .send_raw(
            Method::POST,
            &format!("/images/load?quiet={}", u8::from(quiet)),
            data,
            "application/x-tar",
        )
        .await?;
    super::registry::render(res, false, super::registry::Out::Stdout).await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    #[arg(required = true)]
    #[arg(add = crate::complete::images())]
    pub images: Vec<String>,
}

/// `berth save`.
pub async fn save(api: &Api, a: SaveArgs) -> anyhow::Result<i32> {
    if let Some(code) = crate::tty::refuse_archive_to_terminal(a.output.as_deref()) {
        return Ok(code);
    }
    let qs: Vec<String> = a.images.iter().map(|n| format!("names={}", q(n))).collect();
    let res = api
        .stream(Method::GET, &format!("/images/get?{}", qs.join("&")))
        .await?;
    body_to(res, a.output.as_deref()).await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    #[arg(add = crate::complete::images())]
    pub image: String,
}

/// `berth history`.
pub async fn history(api: &Api, a: HistoryArgs) -> anyhow::Result<i32> {
    let v = api.get(&format!("/images/{}/history", a.image)).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let mut rows = Vec::new();
    for h in v.as_array().into_iter().flatten() {
        let id = h["Id"].as_str().unwrap_or_default();
        let short = if id == "<missing>" || a.no_trunc {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        };
        let by = h["CreatedBy"].as_str().unwrap_or_default();
        let by = if a.no_trunc || by.chars().count() <= 45 {
            by.to_string()
        } else {
            by.chars().take(44).collect::<String>() + "…"
        };
        rows.push(json!({
            "ID": short,
            "CreatedSince": format!("{} ago", human_duration(now - h["Created"].as_i64().unwrap_or(now))),
            "CreatedBy": by,
            "Size": crate::values::size_str(h["Size"].as_f64().unwrap_or(0.0)),
            "Comment": h["Comment"],
        }));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let headers = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    format::print_rows(
        a.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &rows,
        &headers,
    )?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image.
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// A tarball file, or - for STDIN.
    pub file: String,
    pub reference: Option<String>,
}

/// `berth import`.
pub async fn import(api: &Api, a: ImportArgs) -> anyhow::Result<i32> {
    let data = if a.file == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        v
    } else {
        std::fs::read(&a.file).map_err(|e| anyhow::anyhow!("open {}: {e}", a.file))?
    };
    let mut qs = vec!["fromSrc=-".to_string()];
    if let Some(r) = &a.reference {
        let (repo, tag) = repo_tag(r);
        qs.push(format!("repo={}&tag={}", q(&repo), q(&tag)));
    }
    if let Some(m) = &a.message {
        qs.push(format!("message={}", q(m)));
    }
    for c in &a.change {
        qs.push(format!("changes={}", q(c)));
    }
    let res = api
        .send_raw(
            Method::POST,
            &format!("/images/create?{}", qs.join("&")),
            data,
            "application/x-tar",
        )
        .await?;
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await?
        .to_bytes();
    let v: Value = serde_json::from_slice(body.split(|&b| b == b'\r').next().unwrap_or(&[]))
        .unwrap_or(Value::Null);
    println!("{}", v["status"].as_str().unwrap_or_default());
    Ok(0)
}
