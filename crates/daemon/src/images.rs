//! `/images` endpoints.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::ApiError;

/// `GET /images/json`: the image summaries `docker images` reads.
pub async fn list(
    State(engine): State<Arc<Engine>>,
    uri: axum::http::Uri,
) -> Result<Json<serde_json::Value>, ApiError> {
    // `-a`: the build cache's intermediate images too.
    let query = uri.query().unwrap_or("");
    let all = form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "all" && crate::query::bool_value(&v));
    let filters = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "filters")
        .map(|(_, v)| v.into_owned());
    let filters = crate::http::parse_filters(filters.as_deref())?;
    let keep = ImageFilter::new(&engine, &filters)?;
    let images = engine.images.list(all)?;
    let out: Vec<serde_json::Value> = images
        .into_iter()
        .filter(|i| keep.keeps(i))
        .map(|i| {
            // As dockerd: with a reference filter, an image shows only the names that match
            // it (`images busybox` does not list the other tags of the same image).
            let (tags, digests) = keep.names(&i.repo_tags, &i.repo_digests);
            serde_json::json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": digests,
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

/// `docker images --filter`: dangling, label, reference, before and since.
#[derive(Debug, Default)]
struct ImageFilter {
    dangling: Option<bool>,
    labels: Vec<String>,
    references: Vec<String>,
    before: Option<i64>,
    since: Option<i64>,
}

impl ImageFilter {
    fn new(
        engine: &Engine,
        f: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<ImageFilter, ApiError> {
        let bad = |m: String| ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: m,
        };
        let mut out = ImageFilter::default();
        for (k, vals) in f {
            match k.as_str() {
                "dangling" => {
                    for v in vals {
                        out.dangling = Some(match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => return Err(bad(format!("Invalid filter 'dangling={v}'"))),
                        });
                    }
                }
                "label" => out.labels.extend(vals.iter().cloned()),
                "reference" => out.references.extend(vals.iter().cloned()),
                "before" | "since" => {
                    for v in vals {
                        let id = engine.images.resolve(v)?.0;
                        let created = engine
                            .images
                            .list(true)?
                            .into_iter()
                            .find(|i| i.id == id)
                            .map(|i| i.created)
                            .unwrap_or_default();
                        if k == "before" {
                            out.before = Some(created);
                        } else {
                            out.since = Some(created);
                        }
                    }
                }
                _ => return Err(bad(format!("invalid filter '{k}'"))),
            }
        }
        Ok(out)
    }

    /// Whether the name `t` (`repo:tag`, or `repo@digest`) matches a reference pattern.
    fn matches(&self, t: &str) -> bool {
        self.references.iter().any(|pat| {
            let repo = t
                .split_once('@')
                .map(|(r, _)| r)
                .or_else(|| t.rsplit_once(':').map(|(r, _)| r))
                .unwrap_or(t);
            glob(pat, t) || (!pat.contains(':') && !pat.contains('@') && glob(pat, repo))
        })
    }

    /// The tags and digests to show: those the reference filter matches, or all of them.
    fn names(&self, tags: &[String], digests: &[String]) -> (Vec<String>, Vec<String>) {
        if self.references.is_empty() {
            return (tags.to_vec(), digests.to_vec());
        }
        let pick = |v: &[String]| v.iter().filter(|t| self.matches(t)).cloned().collect();
        (pick(tags), pick(digests))
    }

    fn keeps(&self, i: &berth_engine::images::ImageSummary) -> bool {
        if let Some(d) = self.dangling {
            if d != i.repo_tags.is_empty() {
                return false;
            }
        }
        let label_ok = |want: &String| match want.split_once('=') {
            Some((k, v)) => i.labels.get(k).is_some_and(|x| x == v),
            None => i.labels.contains_key(want.as_str()),
        };
        if !self.labels.iter().all(label_ok) {
            return false;
        }
        if !self.references.is_empty() && !i.repo_tags.iter().any(|t| self.matches(t)) {
            return false;
        }
        if self.before.is_some_and(|b| i.created >= b) {
            return false;
        }
        if self.since.is_some_and(|s| i.created <= s) {
            return false;
        }
        true
    }
}

/// Shell-style matching of `*` (any run without `/`) and `?`, as Go's path.Match does for
/// image references.
fn glob(pat: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(rest, &s[i..])),
            Some((b'?', rest)) => s.first().is_some_and(|c| *c != b'/') && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pat.as_bytes(), s.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_globs() {
        use super::glob;
        assert!(glob("busy*", "busybox:latest"));
        assert!(glob("busybox:l?test", "busybox:latest"));
        assert!(!glob("busy*", "reg/busybox"));
        assert!(glob("*/busybox", "reg/busybox"));
        assert!(!glob("busybox", "busybox:latest"));
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct TagQuery {
    repo: Option<String>,
    tag: Option<String>,
    force: Option<String>,
}

/// Everything under `/images/{name...}`: image names contain slashes, so the route captures
/// the rest of the path and the suffix picks the operation, as dockerd's router does.
pub async fn by_name(
    State(engine): State<Arc<Engine>>,
    method: axum::http::Method,
    axum::extract::Path(path): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<TagQuery>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{Method, StatusCode};
    use axum::response::IntoResponse;
    let not_found = || ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("page not found: {method} /images/{path}"),
    };
    match method {
        Method::GET => {
            if let Some(name) = path.strip_suffix("/json") {
                let d = engine.images.inspect(name)?;
                let layers = engine
                    .images
                    .layer_dirs(&d.id, std::path::Path::new(""))
                    .map(|mut l| l.split_off(1))
                    .unwrap_or_default();
                Ok(Json(inspect_json(d, &layers)).into_response())
            } else if let Some(name) = path.strip_suffix("/history") {
                let h: Vec<Value> = engine
                    .images
                    .history(name)?
                    .iter()
                    .map(history_json)
                    .collect();
                Ok(Json(h).into_response())
            } else if let Some(name) = path.strip_suffix("/get") {
                save_response(engine, vec![name.to_string()]).await
            } else {
                Err(not_found())
            }
        }
        Method::POST if path.ends_with("/push") => {
            let name = path.trim_end_matches("/push").to_string();
            let creds = crate::distribution::registry_auth(&headers)?;
            crate::distribution::push(engine, name, query.tag, creds).await
        }
        Method::POST => match path.strip_suffix("/tag") {
            Some(name) => {
                let repo = query
                    .repo
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| ApiError {
                        status: StatusCode::BAD_REQUEST,
                        message: "repository name must have at least one component".into(),
                    })?;
                engine.images.tag(name, &repo, query.tag.as_deref())?;
                Ok(StatusCode::CREATED.into_response())
            }
            None => Err(not_found()),
        },
        Method::DELETE => {
            let in_use = engine.containers.images_in_use();
            let entries: Vec<serde_json::Value> = engine
                .images
                .remove(
                    &path,
                    query.force.as_deref().is_some_and(crate::query::bool_value),
                    &in_use,
                )?
                .into_iter()
                .map(|(k, v)| serde_json::json!({k: v}))
                .collect();
            Ok(Json(entries).into_response())
        }
        _ => Err(not_found()),
    }
}

/// `GET /images/get?names=a&names=b`: a docker-archive of the images.
pub async fn get(
    State(engine): State<Arc<Engine>>,
    uri: axum::http::Uri,
) -> Result<axum::response::Response, ApiError> {
    let names = crate::files::query_all(uri.query().unwrap_or(""), "names");
    if names.is_empty() {
        return Err(ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "no image names given".into(),
        });
    }
    save_response(engine, names).await
}

async fn save_response(
    engine: Arc<Engine>,
    names: Vec<String>,
) -> Result<axum::response::Response, ApiError> {
    let spool = engine.images.scratch_path("save");
    let (e, p) = (engine.clone(), spool.clone());
    tokio::task::spawn_blocking(move || e.images.save(&names, &p))
        .await
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        })??;
    crate::files::file_body(spool, "application/x-tar").await
}

#[derive(Debug, serde::Deserialize)]
pub struct LoadQuery {
    quiet: Option<String>,
}

/// `POST /images/load`: the request body is a docker-archive or OCI archive. It is spooled to
/// the store's ingest area (an archive is read twice to tell the formats apart), loaded on a
/// blocking thread, and answered with Docker's JSON messages: without `quiet`, as dockerd,
/// `Loading layer` progress for each layer the store lacked, streamed while it loads (the
/// docker CLI asks for it only when its output is a terminal).
pub async fn load(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<LoadQuery>,
    body: axum::body::Body,
) -> Result<axum::response::Response, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let internal = |e: std::io::Error| ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("load: {e}"),
    };
    let spool = engine.images.scratch_path("api-load");
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
    if let Err(e) = r {
        let _ = tokio::fs::remove_file(&spool).await;
        return load_answer(Err(e)).map(json_stream);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let quiet = crate::http::truthy(&q.quiet);
    let (e, p) = (engine.clone(), spool.clone());
    let loading = tokio::task::spawn_blocking(move || {
        let mut report = |pr: berth_engine::distribution::Progress| {
            if !quiet {
                let _ = tx.send(crate::distribution::progress_json(&pr).to_string() + "\r\n");
            }
        };
        let r = e.images.load_file_reporting(&p, &mut report);
        let _ = std::fs::remove_file(&p);
        r
    });
    if quiet {
        return load_answer(loaded(loading.await)).map(json_stream);
    }
    // Streamed: the answer is 200 from here on, and an error of any kind is a message in
    // the stream (as dockerd's once it has begun).
    let (ftx, frx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        // The progress, as it comes: the sender goes with the loading thread's end.
        while let Some(m) = rx.recv().await {
            let _ = ftx.send(m);
        }
        let messages = match load_answer(loaded(loading.await)) {
            Ok(m) => m,
            Err(e) => vec![error_message(&e.message)],
        };
        for m in messages {
            let _ = ftx.send(m);
        }
    });
    Ok(json_stream_rx(frx))
}

/// The loading thread's outcome as the API's.
fn loaded(
    r: Result<Result<Vec<String>, berth_engine::error::EngineError>, tokio::task::JoinError>,
) -> Result<Vec<String>, ApiError> {
    r.map_err(|e| ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("load: {e}"),
    })
    .and_then(|r| r.map_err(ApiError::from))
}

/// The closing messages of a load: what was loaded, or a bad archive's error (as dockerd:
/// the answer is 200 once the archive was received, and docker-py raises ImageLoadError
/// from the message). Other errors are the caller's to answer.
fn load_answer(result: Result<Vec<String>, ApiError>) -> Result<Vec<String>, ApiError> {
    match result {
        Ok(lines) => Ok(lines
            .iter()
            .map(|l| serde_json::json!({"stream": format!("{l}\n")}).to_string() + "\r\n")
            .collect()),
        Err(e) if e.status.is_client_error() => Ok(vec![error_message(&e.message)]),
        Err(e) => Err(e),
    }
}

fn error_message(m: &str) -> String {
    serde_json::json!({"errorDetail": {"message": m}, "error": m}).to_string() + "\r\n"
}

/// JSON messages as a response, each a chunk of its own (docker-py decodes chunk by chunk).
fn json_stream(messages: Vec<String>) -> axum::response::Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for m in messages {
        let _ = tx.send(m);
    }
    json_stream_rx(rx)
}

fn json_stream_rx(rx: tokio::sync::mpsc::UnboundedReceiver<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let m = rx.recv().await?;
        Some((
            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(m)),
            rx,
        ))
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Docker's ImageInspect for an image.
fn inspect_json(d: berth_engine::images::ImageDetails, layers: &[std::path::PathBuf]) -> Value {
    let mut config = json!(d.config);
    crate::zero::image_config(&mut config);
    let mut container_config = json!({});
    crate::zero::image_config(&mut container_config);
    // The top layer's snapshot, and those under it; berth keeps no merged or work directory
    // per image.
    let mut data = json!({});
    if let Some((top, lower)) = layers.split_first() {
        data["UpperDir"] = json!(top);
        if !lower.is_empty() {
            let l: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
            data["LowerDir"] = json!(l.join(":"));
        }
    }
    json!({
        "Id": d.id,
        "RepoTags": d.repo_tags,
        "RepoDigests": d.repo_digests,
        "Parent": d.parent,
        "Comment": d.comment,
        "Created": d.created,
        "DockerVersion": "",
        "Author": d.author,
        "Config": config,
        "Container": "",
        "ContainerConfig": container_config,
        "Architecture": d.architecture,
        "Os": d.os,
        "Size": d.size,
        "VirtualSize": d.size,
        "GraphDriver": {"Name": "overlay", "Data": data},
        "RootFS": {"Type": "layers", "Layers": d.layers},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}
    })
}

/// One entry of `GET /images/{name}/history`.
fn history_json(h: &berth_engine::images::HistoryEntry) -> Value {
    json!({
        "Id": h.id.as_deref().unwrap_or("<missing>"),
        "Created": h.created,
        "CreatedBy": h.created_by,
        "Tags": h.tags,
        "Size": h.size,
        "Comment": h.comment,
    })
}
