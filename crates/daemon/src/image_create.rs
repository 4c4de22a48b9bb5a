//! `POST /images/create`: an import of a rootfs tarball (`fromSrc`) or a pull (`fromImage`).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::files::query_all;
use crate::http::{bad, E};
use crate::ApiError;

#[derive(Debug, Deserialize)]
pub struct ImageCreateQuery {
    #[serde(rename = "fromSrc")]
    from_src: Option<String>,
    #[serde(rename = "fromImage")]
    from_image: Option<String>,
    repo: Option<String>,
    tag: Option<String>,
    message: Option<String>,
    platform: Option<String>,
}

/// `POST /images/create`: `fromSrc=-` imports the request body (a rootfs tarball);
/// `fromImage` pulls from a registry (see `distribution`).
pub async fn image_create(
    State(engine): E,
    Query(q): Query<ImageCreateQuery>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    if let Some(img) = q.from_image.filter(|i| !i.is_empty()) {
        let creds = crate::distribution::registry_auth(&headers)?;
        return crate::distribution::pull(engine, img, q.tag, q.platform, creds).await;
    }
    match q.from_src.as_deref() {
        Some("-") => {}
        Some(other) => {
            return Err(bad(format!(
                "import from {other:?}: only a request body (fromSrc=-) is supported"
            )))
        }
        None => return Err(bad("fromSrc or fromImage is required")),
    }
    let changes = query_all(uri.query().unwrap_or(""), "changes");
    let reference = match (
        q.repo.as_deref().filter(|r| !r.is_empty()),
        q.tag.as_deref().filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    };
    let internal = |e: std::io::Error| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("import: {e}"),
    };
    let spool = engine.images.scratch_path("import");
    let mut f = tokio::fs::File::create(&spool).await.map_err(internal)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("import: reading the request: {e}")))?;
        if let Ok(d) = frame.into_data() {
            f.write_all(&d).await.map_err(internal)?;
        }
    }
    f.flush().await.map_err(internal)?;
    drop(f);
    let (e, p, msg) = (engine.clone(), spool.clone(), q.message.unwrap_or_default());
    let r = tokio::task::spawn_blocking(move || {
        e.images.import(&p, reference.as_deref(), &changes, &msg)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?;
    let _ = tokio::fs::remove_file(&spool).await;
    let id = r?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": id}).to_string() + "\r\n",
    )
        .into_response())
}
