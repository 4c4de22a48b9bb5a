//! `berthd`'s HTTP edge: the Docker Engine API on a unix socket. This crate turns requests
//! into engine actions and engine results into Docker's JSON; it holds no container state.
//!
//! Modules:
//! - [`version`]: API versions (negotiation, the `/vX.Y` prefix) and the `/_ping` and
//!   `/version` endpoints.
//! - [`config`]: daemon configuration from flags and `daemon.json`, as dockerd names them.
//! - [`images`]: `/images/...` endpoints.
//! - [`containers`]: `/containers/...` endpoints: create, list, inspect, the lifecycle, update.
//! - [`streams`]: logs and attach (hijacked streams); [`attach_ws`]: attach over a websocket.
//! - [`stats`]: `/containers/{id}/stats`: the engine's samples in Docker's JSON.
//! - [`files`]: `cp`, export, diff and commit.
//! - [`prune`]: container and image prunes, `system df`.
//! - [`image_create`]: `POST /images/create` (import or pull).
//! - [`events`]: `/events`: the engine's events in Docker's JSON, filtered.
//! - [`exec`]: `/containers/{id}/exec` and `/exec/...`: exec instances.
//! - [`distribution`]: pull, push, `/auth` and `/distribution/{name}/json`.
//! - [`system`]: the `/info` endpoint.
//! - [`query`]: query-string booleans as dockerd reads them.
//! - [`http`]: what the endpoint modules share: state, body checks and conversion, filters.
//! - [`hijack`]: attach and exec streams start once the client has read the 101 head.
//! - [`swarm`]: swarm mode's endpoints, answered as a dockerd outside a swarm (503).
//!
//! [`serve`] takes an already bound listener and a shutdown future, so tests bind their own
//! socket.

// serde_json's json! macro for the long /info document needs more than the default depth.
#![recursion_limit = "256"]

pub mod attach_ws;
pub mod build;
pub mod config;
pub mod containers;
#[cfg(feature = "cri")]
pub mod cri;
pub mod detach;
pub mod distribution;
mod engine_only;
pub mod events;
pub mod exec;
pub mod files;
pub mod heap;
pub mod hijack;
pub mod http;
pub mod image_create;
pub mod images;
pub mod networks;
pub mod plugins;
pub mod prune;
pub mod query;
pub mod stats;
pub mod streams;
pub mod swarm;
pub mod system;
pub mod tls;
pub mod version;
pub mod volumes;
pub mod zero;

use std::future::Future;

use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::{get, post};
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
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::NotModified => StatusCode::NOT_MODIFIED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
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
    let mut r = Router::new();
    for path in swarm::ROUTES {
        r = r.route(path, axum::routing::any(swarm::unavailable));
    }
    r.route("/_ping", get(version::ping).head(version::ping))
        .route("/version", get(version::version))
        .route("/info", get(system::info))
        .route("/images/json", get(images::list))
        .route("/events", get(events::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/logs", get(streams::logs))
        .route("/containers/{id}/attach", post(streams::attach))
        .route("/containers/{id}/attach/ws", get(attach_ws::attach_ws))
        .route("/containers/{id}/exec", post(exec::exec_create))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/exec/{id}/start", post(exec::exec_start))
        .route("/exec/{id}/resize", post(exec::exec_resize))
        .route("/exec/{id}/json", get(exec::exec_inspect))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        // `DELETE /containers/{parent}/{alias}?link=1`: a legacy link removed.
        .route(
            "/containers/{id}/{link}",
            axum::routing::delete(containers::remove_link).fallback(not_implemented),
        )
        .route("/images/load", axum::routing::post(images::load))
        .route("/images/get", get(images::get))
        .route("/images/prune", post(prune::image_prune))
        .route("/images/create", post(image_create::image_create))
        .route("/containers/prune", post(prune::prune))
        .route("/system/df", get(prune::system_df))
        .route("/system/check", post(system::check))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/build/prune", post(build::prune))
        .route("/build", post(build::build))
        .route("/commit", post(files::commit))
        .route("/containers/{id}/export", get(files::export))
        .route(
            "/containers/{id}/archive",
            get(files::archive_get)
                .head(files::archive_head)
                .put(files::archive_put),
        )
        .route("/containers/{id}/changes", get(files::changes))
        .route("/images/{*name}", axum::routing::any(images::by_name))
        .route("/plugins", get(plugins::list))
        .route("/plugins/{*rest}", axum::routing::any(plugins::by_name))
        .route("/auth", post(distribution::auth))
        .route("/distribution/{*name}", get(distribution::inspect))
        .route(
            "/__version_error/{kind}/{v}",
            axum::routing::any(
                |axum::extract::Path((kind, v)): axum::extract::Path<(String, String)>| async move {
                    version::version_error(&kind, &v)
                },
            ),
        )
        .fallback(not_implemented)
        .layer(axum::middleware::map_response(version::add_headers))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(engine)
}

/// What berthd answers for a path it does not serve.
async fn not_implemented(req: Request) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        message: format!(
            "page not found: {} {} is not implemented by berthd yet",
            req.method(),
            req.uri().path()
        ),
    }
}

/// Logs each request at debug level (and failures at info), inside a `request` span that the
/// engine's operation spans (`container` = id) nest in, so `--log-level debug` shows a request's
/// path through berthd and the engine.
async fn log_request(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use tracing::Instrument;
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let span = tracing::debug_span!("request", %method, path = %uri.path());
    let t0 = std::time::Instant::now();
    let res = next.run(req).instrument(span).await;
    let status = res.status();
    // Until the response head is ready (a streamed body goes on after it); bench/startpath
    // reads these.
    let us = t0.elapsed().as_micros() as u64;
    if status.is_server_error() {
        tracing::info!(%method, %uri, %status, us, "request failed");
    } else {
        tracing::debug!(%method, %uri, %status, us, "request");
    }
    res
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve<L>(
    listener: L,
    engine: std::sync::Arc<berth_engine::Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    hijack::ConnSocket:
        for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    // The `/vX.Y` prefix is stripped (and checked) before routing.
    let app = router(engine).map_request(version::strip_prefix as fn(Request) -> Request);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<hijack::ConnSocket>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
