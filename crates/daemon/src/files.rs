//! A container's files over the API: `cp` (`/containers/{id}/archive`), `export`, `changes` (`diff`) and `commit`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::http::{bad, checked, E};
use crate::ApiError;

/// Streams a spooled file as the response body; the file is unlinked once opened.
pub async fn file_body(
    path: std::path::PathBuf,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let f = tokio::fs::File::open(&path).await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?;
    let _ = tokio::fs::remove_file(&path).await;
    let s = futures_util::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = f.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        buf.truncate(n);
        Some((Ok::<_, Infallible>(Bytes::from(buf)), f))
    });
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(s)).into_response())
}

/// `GET /containers/{id}/export`.
pub async fn export(State(engine): E, Path(id): Path<String>) -> Result<Response, ApiError> {
    let spool = engine.images.scratch_path("export");
    engine.containers.export(&id, spool.clone()).await?;
    file_body(spool, "application/x-tar").await
}

#[derive(Debug, Deserialize)]
pub struct ArchiveQuery {
    path: Option<String>,
}

fn archive_path(q: &ArchiveQuery) -> Result<std::path::PathBuf, ApiError> {
    let p = q
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("path is required"))?;
    Ok(std::path::PathBuf::from(if p.starts_with('/') {
        p
    } else {
        format!("/{p}")
    }))
}

fn stat_header(st: &berth_engine::archive::PathStat) -> String {
    use base64::Engine as _;
    let json = serde_json::to_string(st).expect("a path stat serialises");
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// `HEAD /containers/{id}/archive`: the path's stat in `X-Docker-Container-Path-Stat`.
pub async fn archive_head(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let p = archive_path(&q)?;
    let st = engine
        .containers
        .with_view(&id, &p.clone(), move |root, rp| {
            let mut st = berth_engine::archive::stat(root, rp)?;
            st.name = stat_name(&p);
            Ok(st)
        })
        .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("X-Docker-Container-Path-Stat", stat_header(&st))
        .body(Body::empty())
        .expect("response"))
}

/// The stat header's name of a path: its last component, `/` for the root.
fn stat_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

/// `GET /containers/{id}/archive`: a tar of the path, and its stat header.
pub async fn archive_get(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let p = archive_path(&q)?;
    let spool = engine.images.scratch_path("archive");
    let out = spool.clone();
    let st = engine
        .containers
        .with_view(&id, &p.clone(), move |root, rp| {
            let mut st = berth_engine::archive::stat(root, rp)?;
            st.name = stat_name(&p);
            berth_engine::archive::read_as(root, rp, &berth_engine::archive::base_name(&p), &out)?;
            Ok(st)
        })
        .await?;
    let mut r = file_body(spool, "application/x-tar").await?;
    if let Ok(v) = axum::http::HeaderValue::from_str(&stat_header(&st)) {
        r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
    }
    Ok(r)
}

/// `PUT /containers/{id}/archive`: extracts the tar body into the directory at `path`.
pub async fn archive_put(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let p = archive_path(&q)?;
    engine.containers.find(&id)?;
    let spool = engine.images.scratch_path("archive-in");
    let internal = |e: std::io::Error| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    };
    let mut f = tokio::fs::File::create(&spool).await.map_err(internal)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("reading the request: {e}")))?;
        if let Ok(d) = frame.into_data() {
            f.write_all(&d).await.map_err(internal)?;
        }
    }
    f.flush().await.map_err(internal)?;
    drop(f);
    let input = spool.clone();
    let r = engine
        .containers
        .with_view(&id, &p.clone(), move |root, rp| {
            berth_engine::archive::write(root, rp, &input)
        })
        .await;
    let _ = tokio::fs::remove_file(&spool).await;
    r?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/changes`.
pub async fn changes(State(engine): E, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let ch = engine.containers.changes(&id)?;
    Ok(Json(Value::Array(
        ch.into_iter()
            .map(|(p, k)| json!({"Path": p, "Kind": k}))
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub struct CommitQuery {
    container: Option<String>,
    repo: Option<String>,
    tag: Option<String>,
    comment: Option<String>,
    author: Option<String>,
}

/// `POST /commit` (`changes` may repeat, so it is read from the raw query).
pub async fn commit(
    State(engine): E,
    Query(q): Query<CommitQuery>,
    uri: axum::http::Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The body is a container config (docker's client sends `null` without one). It is
    // checked, not applied: `changes` carry what berth applies.
    if !body.is_empty() && body.trim_ascii() != b"null" {
        checked::<bollard_stubs::models::ContainerConfig>(&body)?;
    }
    let c = q
        .container
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("No container specified"))?;
    let changes: Vec<String> = query_all(uri.query().unwrap_or(""), "changes");
    let tag = match (
        q.repo.as_deref().filter(|r| !r.is_empty()),
        q.tag.as_deref().filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    };
    let (e, comment, author) = (
        engine.clone(),
        q.comment.unwrap_or_default(),
        q.author.unwrap_or_default(),
    );
    let id = tokio::task::spawn_blocking(move || {
        e.containers
            .commit(&c, tag.as_deref(), &comment, &author, &changes)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })??;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

/// Every value of `key` in a query string (keys may repeat, which serde's Query cannot take).
pub fn query_all(query: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}
