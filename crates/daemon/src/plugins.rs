//! The plugin endpoints, answered as a dockerd with no plugins installed answers them: an
//! empty list, and dockerd's "not found" for any plugin named. berthd runs no managed
//! plugins, so installing one (`pull`, `create`, `privileges`, which dockerd would take to a
//! registry) is refused with 501 and says so.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::Json;

use crate::ApiError;

/// `GET /plugins`: none.
pub async fn list() -> Json<serde_json::Value> {
    Json(serde_json::json!([]))
}

/// Everything under `/plugins/`: names contain slashes (`vieux/sshfs:latest`), so the route
/// captures the rest of the path and the suffix tells the operation, as for images.
pub async fn by_name(req: Request) -> ApiError {
    let path = req.uri().path();
    let rest = path
        .split_once("/plugins/")
        .map_or("", |(_, r)| r)
        .to_string();
    let unsupported = || ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "berthd runs no managed plugins: plugins cannot be installed".into(),
    };
    let not_found = |name: &str| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("plugin {name:?} not found"),
    };
    match (req.method(), rest.as_str()) {
        (&Method::POST, "pull" | "create") | (&Method::GET, "privileges") => unsupported(),
        (&Method::GET, r) if r.ends_with("/json") => not_found(&r[..r.len() - 5]),
        (&Method::DELETE, name) => not_found(name),
        (&Method::POST, r) => {
            let name = ["/enable", "/disable", "/push", "/set", "/upgrade"]
                .iter()
                .find_map(|s| r.strip_suffix(s));
            match name {
                Some(n) => not_found(n),
                None => ApiError {
                    status: StatusCode::NOT_FOUND,
                    message: format!("page not found: POST {path}"),
                },
            }
        }
        _ => ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("page not found: {} {path}", req.method()),
        },
    }
}
