//! `/images` endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use berth_engine::Engine;

use crate::ApiError;

/// `GET /images/json`: the image summaries `docker images` reads.
pub async fn list(State(engine): State<Arc<Engine>>) -> Result<Json<serde_json::Value>, ApiError> {
    let images = engine.images.list()?;
    let out: Vec<serde_json::Value> = images
        .into_iter()
        .map(|i| {
            serde_json::json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": i.repo_tags,
                "RepoDigests": [],
                "Created": i.created,
                "Size": i.size,
                "SharedSize": -1,
                "VirtualSize": i.size,
                "Labels": i.labels,
                "Containers": -1
            })
        })
        .collect();
    Ok(Json(serde_json::Value::Array(out)))
}

#[derive(Debug, serde::Deserialize)]
pub struct TagQuery {
    repo: String,
    tag: Option<String>,
}

/// Everything under `/images/{name...}`: image names contain slashes, so the route captures
/// the rest of the path and the suffix picks the operation, as dockerd's router does.
pub async fn by_name(
    State(engine): State<Arc<Engine>>,
    method: axum::http::Method,
    axum::extract::Path(path): axum::extract::Path<String>,
    query: axum::extract::RawQuery,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{Method, StatusCode};
    use axum::response::IntoResponse;
    let not_found = || ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("page not found: {method} /images/{path}"),
    };
    match method {
        Method::GET => match path.strip_suffix("/json") {
            Some(name) => Ok(Json(engine.images.inspect(name)?).into_response()),
            None => Err(not_found()),
        },
        Method::POST => match path.strip_suffix("/tag") {
            Some(name) => {
                let q: TagQuery = parse_tag_query(query.0.as_deref().unwrap_or(""))?;
                engine.images.tag(name, &q.repo, q.tag.as_deref())?;
                Ok(StatusCode::CREATED.into_response())
            }
            None => Err(not_found()),
        },
        Method::DELETE => {
            let entries: Vec<serde_json::Value> = engine
                .images
                .remove(&path)?
                .into_iter()
                .map(|(k, v)| serde_json::json!({k: v}))
                .collect();
            Ok(Json(entries).into_response())
        }
        _ => Err(not_found()),
    }
}

/// Parses `repo=..&tag=..` (the values are references: no escapes beyond %XX are needed).
fn parse_tag_query(q: &str) -> Result<TagQuery, ApiError> {
    let mut repo = None;
    let mut tag = None;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "repo" => repo = Some(v),
            "tag" => tag = Some(v),
            _ => {}
        }
    }
    match repo {
        Some(repo) if !repo.is_empty() => Ok(TagQuery { repo, tag }),
        _ => Err(ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "repository name must have at least one component".into(),
        }),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /images/load`: the request body is a docker-archive or OCI archive. It is spooled to
/// the store's ingest area (an archive is read twice to tell the formats apart), loaded on a
/// blocking thread, and answered with Docker's JSON progress lines.
pub async fn load(
    State(engine): State<Arc<Engine>>,
    body: axum::body::Body,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let internal = |e: std::io::Error| ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("load: {e}"),
    };
    let spool = engine.data_root.join("content/ingest").join(format!(
        "api-load-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    let mut f = tokio::fs::File::create(&spool).await.map_err(internal)?;
    let mut body = body;
    let r: Result<(), ApiError> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError {
                status: axum::http::StatusCode::BAD_REQUEST,
                message: format!("load: reading the request: {e}"),
            })?;
            if let Ok(data) = frame.into_data() {
                f.write_all(&data).await.map_err(internal)?;
            }
        }
        f.flush().await.map_err(internal)
    }
    .await;
    drop(f);
    let result = match r {
        Ok(()) => {
            let (e, p) = (engine.clone(), spool.clone());
            tokio::task::spawn_blocking(move || e.images.load_file(&p))
                .await
                .map_err(|e| ApiError {
                    status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    message: format!("load: {e}"),
                })
                .and_then(|r| r.map_err(ApiError::from))
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&spool).await;
    let lines = result?;
    let out: String = lines
        .iter()
        .map(|l| serde_json::json!({"stream": format!("{l}\n")}).to_string() + "\r\n")
        .collect();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}
