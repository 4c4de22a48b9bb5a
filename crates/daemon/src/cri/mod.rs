//! The CRI front end: Kubernetes' `runtime.v1` RuntimeService and ImageService over gRPC on a
//! unix socket (`--cri-socket`, default `<exec-root>/cri.sock`), a thin edge over the engine
//! as the Docker API front end is. The wire types and service traits are k8s-cri's (generated
//! from the cri-api proto); tonic serves them.
//!
//! Under way (issue 21): version, status and runtime config, the whole image service, pod
//! sandboxes and their containers (create, start, stop, remove, status, list, exec sync,
//! stats, resource updates, log reopening) answer; streaming (exec, attach, port-forward),
//! pod stats, events and the rest answer `Unimplemented` with a reason, and tonic answers `Unimplemented` for RPCs newer
//! than the proto k8s-cri carries.

mod containers;
mod images;
mod pods;
mod runtime;
mod stats;

use std::sync::Arc;

use berth_engine::error::{EngineError, Kind};
use berth_engine::Engine;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;

/// Serves the CRI on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::UnixListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(runtime::Runtime::new(
            engine.clone(),
        )))
        .add_service(ImageServiceServer::new(images::Images::new(engine)))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}

/// An engine error as a gRPC status, with the engine's message.
pub(crate) fn status_of(e: EngineError) -> tonic::Status {
    let code = match e.kind {
        Kind::NotFound => tonic::Code::NotFound,
        Kind::Conflict => tonic::Code::FailedPrecondition,
        Kind::InvalidArgument => tonic::Code::InvalidArgument,
        Kind::Unavailable => tonic::Code::Unavailable,
        Kind::Unauthorized => tonic::Code::Unauthenticated,
        Kind::NotModified => tonic::Code::AlreadyExists,
        Kind::Forbidden => tonic::Code::PermissionDenied,
        Kind::NotImplemented => tonic::Code::Unimplemented,
    };
    tonic::Status::new(code, e.message)
}

/// The engine's ordered labels or annotations as the CRI's map.
pub(crate) fn string_map(
    m: &std::collections::BTreeMap<String, String>,
) -> std::collections::HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The answer of an RPC berth's CRI does not do yet.
pub(crate) fn not_yet(rpc: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!(
        "{rpc}: not implemented yet by berth's CRI (it serves version, status, runtime \
         config, images, pod sandboxes and containers' lifecycle, exec sync and stats so far)"
    ))
}

/// Runs blocking engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .map_err(status_of)
}
