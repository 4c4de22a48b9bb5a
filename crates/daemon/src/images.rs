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
