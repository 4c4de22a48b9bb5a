//! `berthd`'s HTTP edge: the Docker Engine API on a unix socket. This crate turns requests
//! into engine actions and engine results into Docker's JSON; it holds no container state.
//!
//! Modules:
//! - [`version`]: API versions (negotiation, the `/vX.Y` prefix) and the `/_ping` and
//!   `/version` endpoints.
//! - [`config`]: daemon configuration from flags and `daemon.json`, as dockerd names them.
//!
//! [`serve`] takes an already bound listener and a shutdown future, so tests bind their own
//! socket.

pub mod config;
pub mod version;

use std::future::Future;

use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower::ServiceExt as _;

/// An API error in Docker's shape: `{"message": "..."}` with a status code.
#[derive(Debug)]
pub struct ApiError {
    pub status: axum::http::StatusCode,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        (
            self.status,
            axum::Json(serde_json::json!({"message": self.message})),
        )
            .into_response()
    }
}

/// The API's routes (paths without the version prefix).
pub fn router() -> Router {
    Router::new()
        .route("/_ping", get(version::ping).head(version::ping))
        .route("/version", get(version::version))
        .route(
            "/__version_error/{kind}/{v}",
            axum::routing::any(
                |axum::extract::Path((kind, v)): axum::extract::Path<(String, String)>| async move {
                    version::version_error(&kind, &v)
                },
            ),
        )
        .fallback(|req: Request| async move {
            ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                message: format!(
                    "page not found: {} {} is not implemented by berthd yet",
                    req.method(),
                    req.uri().path()
                ),
            }
        })
        .layer(axum::middleware::map_response(version::add_headers))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The `/vX.Y` prefix is stripped (and checked) before routing.
    let app = router().map_request(version::strip_prefix as fn(Request) -> Request);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
