//! `POST /build` (the classic builder's API: a tar context in the body, the JSON stream of
//! `stream` / `aux` / `errorDetail` messages out) and `POST /build/prune`.
//!
//! As with dockerd, an error before the build printed anything (a bad Dockerfile, a missing
//! one) is the HTTP status; an error later is an `errorDetail` message in the stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use berth_engine::build::{BuildOptions, Message};
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::ApiError;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

use crate::query::bool_value as truthy;

/// The build options from the query string (docker's names).
fn options(query: &str) -> Result<BuildOptions, ApiError> {
    let mut o = BuildOptions {
        dockerfile: "Dockerfile".into(),
        remove: true,
        ..Default::default()
    };
    let mut dockerfile_seen = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            // The first one counts, as Go's FormValue reads it (docker-py sends a Dockerfile
            // from outside the context as a second `dockerfile` holding its text).
            "dockerfile" if !v.is_empty() && !dockerfile_seen => {
                dockerfile_seen = true;
                o.dockerfile = v;
            }
            "extrahosts" if !v.is_empty() => o
                .extra_hosts
                .extend(v.split(',').filter(|h| !h.is_empty()).map(str::to_string)),
            "t" if !v.is_empty() => o.tags.push(v),
            "nocache" => o.no_cache = truthy(&v),
            "cachefrom" if !v.is_empty() => {
                o.cache_from =
                    serde_json::from_str(&v).map_err(|e| bad(format!("cachefrom: {e}")))?;
            }
            "pull" => o.pull = truthy(&v),
            "rm" => o.remove = truthy(&v),
            "forcerm" => o.force_remove = truthy(&v),
            "target" if !v.is_empty() => o.target = Some(v),
            "networkmode" if !v.is_empty() && v != "default" => o.network = Some(v),
            "buildargs" if !v.is_empty() => {
                let m: BTreeMap<String, Option<String>> =
                    serde_json::from_str(&v).map_err(|e| bad(format!("buildargs: {e}")))?;
                // A null value is an arg given by name only whose value the client did not
                // have: docker drops it.
                o.build_args = m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
            }
            "labels" if !v.is_empty() => {
                o.labels = serde_json::from_str(&v).map_err(|e| bad(format!("labels: {e}")))?;
            }
            "version" if v == "2" => {
                return Err(bad(
                    "berth speaks the classic builder's API only: set DOCKER_BUILDKIT=0",
                ))
            }
            "remote" if !v.is_empty() => {
                return Err(bad(
                    "berth builds from an uploaded context only, not a remote URL",
                ))
            }
            "platform" if !v.is_empty() && v != "linux/amd64" && v != "linux" => {
                return Err(bad(format!(
                    "platform {v}: berth builds for this machine's platform only"
                )))
            }
            _ => {}
        }
    }
    Ok(o)
}

/// `X-Registry-Config`: base64 JSON of credentials by registry host.
fn registry_config(
    headers: &HeaderMap,
) -> Result<std::collections::HashMap<String, berth_engine::distribution::Credentials>, ApiError> {
    let mut out = std::collections::HashMap::new();
    let Some(v) = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(out);
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(v.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(v.trim()))
        .map_err(|_| bad("X-Registry-Config: not base64"))?;
    let m: BTreeMap<String, Value> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("X-Registry-Config: {e}")))?;
    for (host, auth) in m {
        let enc = base64::engine::general_purpose::URL_SAFE.encode(auth.to_string());
        if let Ok(Some(c)) = berth_engine::distribution::Credentials::from_header(&enc) {
            let host = berth_engine::distribution::registry_host(&host).unwrap_or(host);
            out.insert(host, c);
        }
    }
    Ok(out)
}

fn line(v: Value) -> Bytes {
    Bytes::from(v.to_string() + "\r\n")
}

enum Event {
    Out(Message),
    Done(Result<String, berth_engine::error::EngineError>),
}

/// `POST /build`.
pub async fn build(
    State(engine): State<Arc<Engine>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let mut opts = options(uri.query().unwrap_or(""))?;
    opts.auth = registry_config(&headers)?;
    let quiet = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "q" && truthy(&v));
    let dir = engine.builder.scratch();
    let guard = Scratch(dir.clone());
    let internal = |e: std::io::Error| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("build: {e}"),
    };
    // The context: kept in memory up to MEMORY_LIMIT, spooled to a file beyond.
    const MEMORY_LIMIT: usize = 64 << 20;
    let mut mem: Vec<u8> = Vec::new();
    let mut file: Option<tokio::fs::File> = None;
    let spool = dir.join("context.tar");
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("build: reading the context: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match &mut file {
            Some(f) => f.write_all(&data).await.map_err(internal)?,
            None if mem.len() + data.len() > MEMORY_LIMIT => {
                std::fs::create_dir_all(&dir).map_err(internal)?;
                let mut f = tokio::fs::File::create(&spool).await.map_err(internal)?;
                f.write_all(&mem).await.map_err(internal)?;
                f.write_all(&data).await.map_err(internal)?;
                mem = Vec::new();
                file = Some(f);
            }
            None => mem.extend_from_slice(&data),
        }
    }
    let data = match file {
        Some(mut f) => {
            f.flush().await.map_err(internal)?;
            berth_engine::build::ContextData::File(spool)
        }
        None => berth_engine::build::ContextData::Memory(mem),
    };
    let lease = {
        let b = engine.builder.clone();
        tokio::task::spawn_blocking(move || b.lease_context(data))
            .await
            .map_err(|e| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: e.to_string(),
            })??
    };
    drop(guard);
    let ctx = lease.path.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let (mtx, mut mrx) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let b = engine.builder.clone();
    let handle = tokio::spawn(async move { b.build(ctx, opts, mtx).await });
    // The build's messages in order, then its end (its sender is gone once it returned);
    // the context is removed after the answer.
    tokio::spawn(async move {
        while let Some(m) = mrx.recv().await {
            let _ = tx.send(Event::Out(m));
        }
        let r = handle
            .await
            .unwrap_or_else(|e| Err(berth_engine::error::unavailable(format!("the build: {e}"))));
        let _ = tx.send(Event::Done(r));
        drop(tx);
        let _ = tokio::task::spawn_blocking(move || drop(lease)).await;
    });
    // The first event decides between an HTTP error and a stream.
    let first = rx.recv().await;
    let first = match first {
        Some(Event::Done(Err(e))) => return Err(e.into()),
        Some(e) => e,
        None => {
            return Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "the build ended without an answer".into(),
            })
        }
    };
    let render = move |e: Event| -> Option<Bytes> {
        match e {
            Event::Out(Message::Stream(s)) if !quiet => Some(line(json!({"stream": s}))),
            Event::Out(Message::Stream(_)) => None,
            Event::Out(Message::Aux(id)) => Some(line(json!({"aux": {"ID": id}}))),
            // Quiet: the image id is all the output, as dockerd prints it.
            Event::Done(Ok(id)) if quiet => Some(line(json!({"stream": format!("{id}\n")}))),
            Event::Done(Ok(_)) => None,
            Event::Done(Err(e)) => {
                // A RUN that failed: its exit code, as dockerd's classic builder reports it
                // (the docker CLI exits with it).
                let code = e
                    .message
                    .rsplit_once("returned a non-zero code: ")
                    .and_then(|(_, c)| c.trim().parse::<i64>().ok());
                let mut detail = json!({"message": e.message});
                if let Some(c) = code {
                    detail["code"] = json!(c);
                }
                Some(line(json!({"errorDetail": detail, "error": e.message})))
            }
        }
    };
    let mut pending = Some(first);
    let mut done = false;
    let stream = futures_util::stream::poll_fn(move |cx| loop {
        if done {
            return std::task::Poll::Ready(None);
        }
        let ev = match pending.take() {
            Some(e) => e,
            None => match rx.poll_recv(cx) {
                std::task::Poll::Ready(Some(e)) => e,
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(None),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            },
        };
        if matches!(ev, Event::Done(_)) {
            done = true;
        }
        if let Some(b) = render(ev) {
            return std::task::Poll::Ready(Some(Ok::<_, std::convert::Infallible>(b)));
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /build/prune`.
pub async fn prune(State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let b = engine.builder.clone();
    let (ids, bytes) = tokio::task::spawn_blocking(move || b.prune())
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        })??;
    Ok(Json(json!({"CachesDeleted": ids, "SpaceReclaimed": bytes})))
}
