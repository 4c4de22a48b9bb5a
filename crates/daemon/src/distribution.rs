//! Registry endpoints: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`,
//! `POST /auth` and `GET /distribution/{name}/json`.
//!
//! Pull and push answer with Docker's JSON progress stream. As with dockerd, an error before
//! the first progress message (an unknown image, refused credentials) is the HTTP status; an
//! error later is an `errorDetail` message in the stream. A client that goes away cancels the
//! transfer; partial blobs stay in the store's ingest area and the next pull resumes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::distribution::{Credentials, Progress};
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::ApiError;

/// The credentials in `X-Registry-Auth`, if any.
pub fn registry_auth(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => Credentials::from_header(v).map_err(|e| ApiError {
            status: StatusCode::BAD_REQUEST,
            message: e.to_string(),
        }),
    }
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        return format!("{n}B");
    }
    // Four significant digits, as docker's units.HumanSize.
    let num = if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    format!(
        "{}{}",
        num.trim_end_matches('0').trim_end_matches('.'),
        units[u]
    )
}

/// Docker's JSON message for a progress report.
pub fn progress_json(p: &Progress) -> Value {
    let mut v = json!({"status": p.status});
    if let Some(id) = &p.id {
        v["id"] = json!(id);
    }
    match (p.current, p.total) {
        (Some(c), Some(t)) => {
            v["progressDetail"] = json!({"current": c, "total": t});
            // As docker's JSONProgress: a `>` after one `=` per 2 %, in 51 columns.
            let filled = ((c * 100).checked_div(t).unwrap_or(100) / 2).min(50);
            let bar = format!(
                "[{}>{}]",
                "=".repeat(filled as usize),
                " ".repeat((50 - filled) as usize)
            );
            let numbers = if c > t {
                format!("{:>8}", human(c))
            } else {
                format!("{:>8}/{}", human(c), human(t))
            };
            v["progress"] = json!(format!("{bar} {numbers}"));
        }
        _ => v["progressDetail"] = json!({}),
    }
    v
}

fn line(v: &Value) -> Bytes {
    Bytes::from(v.to_string() + "\r\n")
}

/// A progress stream whose first message decides the HTTP answer (see the module doc).
struct Stream {
    tx: tokio::sync::mpsc::UnboundedSender<Bytes>,
    first: Mutex<Option<tokio::sync::oneshot::Sender<Result<(), ApiError>>>>,
    cancel: Arc<AtomicBool>,
}

impl Stream {
    fn started(&self) {
        if let Some(f) = self.first.lock().expect("first").take() {
            let _ = f.send(Ok(()));
        }
    }

    fn send(&self, v: &Value) {
        self.started();
        if self.tx.send(line(v)).is_err() {
            // The client went away.
            self.cancel.store(true, Ordering::Relaxed);
        }
    }

    fn progress(&self, p: Progress) {
        self.send(&progress_json(&p));
    }

    fn fail(&self, e: berth_engine::error::EngineError) {
        match self.first.lock().expect("first").take() {
            Some(f) => {
                let _ = f.send(Err(e.into()));
            }
            None => {
                let msg = e.message;
                let _ = self.tx.send(line(
                    &json!({"errorDetail": {"message": msg}, "error": msg}),
                ));
            }
        }
    }

    fn finish(&self) {
        self.started();
    }
}

/// Runs `job` on a blocking thread and answers with its progress stream.
async fn streamed(job: impl FnOnce(&Stream) + Send + 'static) -> Result<Response, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let s = Stream {
        tx,
        first: Mutex::new(Some(first_tx)),
        cancel: Arc::new(AtomicBool::new(false)),
    };
    tokio::task::spawn_blocking(move || {
        job(&s);
        s.finish();
    });
    match first_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "the transfer ended without an answer".into(),
            })
        }
    }
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(Ok::<_, std::convert::Infallible>))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `fromImage` + `tag` → a reference (`tag` may be a digest).
fn pull_reference(from_image: &str, tag: Option<&str>) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from_image}@{t}"),
        Some(t) => format!("{from_image}:{t}"),
        None => from_image.to_string(),
    }
}

/// `POST /images/create?fromImage=..&tag=..&platform=..`.
pub async fn pull(
    engine: Arc<Engine>,
    from_image: String,
    tag: Option<String>,
    platform: Option<String>,
    creds: Option<Credentials>,
) -> Result<Response, ApiError> {
    // No tag on a name without one: every tag, as dockerd does (`pull --all-tags`).
    let all_tags = tag.as_deref().is_none_or(str::is_empty)
        && !berth_engine::distribution::name_has_tag(&from_image);
    streamed(move |s| {
        let references = if all_tags {
            match engine.images.registry_tags(&from_image, creds.clone()) {
                Ok(tags) => tags
                    .iter()
                    .map(|t| pull_reference(&from_image, Some(t)))
                    .collect(),
                Err(e) => return s.fail(e),
            }
        } else {
            vec![pull_reference(&from_image, tag.as_deref())]
        };
        for reference in references {
            if !pull_one(&engine, s, &reference, platform.as_deref(), creds.clone()) {
                return;
            }
        }
    })
    .await
}

/// Pulls one reference into the stream; false when it failed (the error is reported).
fn pull_one(
    engine: &Engine,
    s: &Stream,
    reference: &str,
    platform: Option<&str>,
    creds: Option<Credentials>,
) -> bool {
    let pull = match engine.images.pull_resolve(reference, platform, creds) {
        Ok(p) => p,
        Err(e) => {
            s.fail(e);
            return false;
        }
    };
    let r = &pull.resolved().reference;
    let id = berth_engine::distribution::tag_or_digest(r);
    s.send(&json!({"status": format!("Pulling from {}", r.path), "id": id}));
    let sink = |p: Progress| s.progress(p);
    match pull.run(&sink, &s.cancel) {
        Ok(o) => {
            let digest = o.repo_digest.rsplit('@').next().unwrap_or_default();
            s.send(&json!({"status": format!("Digest: {digest}")}));
            s.send(&json!({"status": if o.up_to_date {
                format!("Status: Image is up to date for {}", o.reference)
            } else {
                format!("Status: Downloaded newer image for {}", o.reference)
            }}));
            true
        }
        Err(e) => {
            s.fail(e);
            false
        }
    }
}

/// `POST /images/{name}/push?tag=..`.
pub async fn push(
    engine: Arc<Engine>,
    name: String,
    tag: Option<String>,
    creds: Option<Credentials>,
) -> Result<Response, ApiError> {
    streamed(move |s| {
        let sink = |p: Progress| s.progress(p);
        let mut each = |p: &berth_engine::distribution::Pushed| {
            s.send(&json!({"status": format!("{}: digest: {} size: {}", p.tag, p.digest, p.size)}));
            s.send(&json!({"progressDetail": {}, "aux": {"Tag": p.tag, "Digest": p.digest, "Size": p.size}}));
        };
        if let Err(e) = engine
            .images
            .push(&name, tag.as_deref(), creds, &sink, &s.cancel, &mut each)
        {
            s.fail(e);
        }
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
pub struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
    /// Old clients send these; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    email: String,
    #[serde(default)]
    #[allow(dead_code)]
    auth: String,
}

/// `POST /auth`: checks credentials with the registry.
pub async fn auth(State(engine): State<Arc<Engine>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let b: AuthBody = serde_json::from_slice(&body).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: format!("invalid auth configuration: {e}"),
    })?;
    let creds = Credentials {
        username: b.username,
        password: b.password,
        identity_token: b.identitytoken,
        registry_token: b.registrytoken,
    };
    let server = b.serveraddress;
    tokio::task::spawn_blocking(move || engine.images.login(&server, creds))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        })??;
    Ok(Json(
        json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// `GET /distribution/{name}/json`.
pub async fn inspect(
    State(engine): State<Arc<Engine>>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let name = path.strip_suffix("/json").ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("page not found: /distribution/{path}"),
    })?;
    let name = name.to_string();
    let creds = registry_auth(&headers)?;
    let v = tokio::task::spawn_blocking(move || engine.images.distribution_inspect(&name, creds))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        })??;
    let platforms: Vec<Value> = v
        .platforms
        .iter()
        .map(|p| json!({"architecture": p.architecture, "os": p.os, "variant": p.variant}))
        .collect();
    Ok(Json(json!({
        "Descriptor": {"mediaType": v.media_type, "digest": v.digest, "size": v.size},
        "Platforms": platforms,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_messages_look_like_dockers() {
        let v = progress_json(&Progress::bytes("abc", "Downloading", 500, 1000));
        assert_eq!(v["id"], "abc");
        assert_eq!(v["progressDetail"]["current"], 500);
        assert!(v["progress"]
            .as_str()
            .unwrap()
            .starts_with("[=========================>"));
        // What dockerd 20.10 sent while loading a 2,416,640-byte layer.
        for (c, want) in [
            (32768, format!("[>{}]  32.77kB/2.417MB", " ".repeat(50))),
            (2326528, format!("[{}>  ]  2.327MB/2.417MB", "=".repeat(48))),
            (2416640, format!("[{}>]  2.417MB/2.417MB", "=".repeat(50))),
        ] {
            let v = progress_json(&Progress::bytes(
                "5c1ec405e8fa",
                "Loading layer",
                c,
                2416640,
            ));
            assert_eq!(v["progress"], want);
        }
        let v = progress_json(&Progress::layer("abc", "Pull complete"));
        assert_eq!(v["progressDetail"], json!({}));
        assert_eq!(pull_reference("a", Some("sha256:x")), "a@sha256:x");
        assert_eq!(pull_reference("a", Some("v1")), "a:v1");
        assert_eq!(pull_reference("a", None), "a");
        assert_eq!(human(1_500_000), "1.5MB");
        assert_eq!(human(999), "999B");
    }
}
