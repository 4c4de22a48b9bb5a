//! `berthd`'s HTTP edge: the Docker Engine API on a unix socket. This crate turns requests
//! into engine actions and engine results into Docker's JSON; it holds no container state.
//!
//! Modules:
//! - [`version`]: API versions (negotiation, the `/vX.Y` prefix) and the `/_ping` and
//!   `/version` endpoints.
//! - [`config`]: daemon configuration from flags and `daemon.json`, as dockerd names them.
//! - [`images`]: `/images/...` endpoints.
//! - [`system`]: the `/info` endpoint.
//!
//! [`serve`] takes an already bound listener and a shutdown future, so tests bind their own
//! socket.

// serde_json's json! macro for the long /info document needs more than the default depth.
#![recursion_limit = "256"]

pub mod config;
pub mod images;
pub mod system;
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

/// The one place engine error kinds become HTTP statuses.
impl From<berth_engine::error::EngineError> for ApiError {
    fn from(e: berth_engine::error::EngineError) -> Self {
        use axum::http::StatusCode;
        use berth_engine::error::Kind;
        let status = match e.kind {
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::InvalidArgument => StatusCode::BAD_REQUEST,
            Kind::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: e.message,
        }
    }
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
pub fn router(engine: std::sync::Arc<berth_engine::Engine>) -> Router {
    Router::new()
        .route("/_ping", get(version::ping).head(version::ping))
        .route("/version", get(version::version))
        .route("/info", get(system::info))
        .route("/images/json", get(images::list))
        .route("/images/load", axum::routing::post(images::load))
        .route("/images/{*name}", axum::routing::any(images::by_name))
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
        .with_state(engine)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::UnixListener,
    engine: std::sync::Arc<berth_engine::Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The `/vX.Y` prefix is stripped (and checked) before routing.
    let app = router(engine).map_request(version::strip_prefix as fn(Request) -> Request);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
