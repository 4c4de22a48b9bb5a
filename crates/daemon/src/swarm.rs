//! Swarm mode's endpoints, answered as a dockerd that is not part of a swarm answers them:
//! 503 with dockerd's messages. Clients count on that shape: docker-py's `leave_swarm(force=True)`
//! treats 503 as "nothing to leave", and `docker info` shows the swarm as inactive.

use axum::extract::Request;
use axum::http::StatusCode;

use crate::ApiError;

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \
                           \"docker swarm join\" to connect this node to swarm and try again.";
const NOT_IN_SWARM: &str = "This node is not part of a swarm";

/// Any `/swarm…`, `/nodes…`, `/services…`, `/tasks…`, `/secrets…` or `/configs…` request.
pub async fn unavailable(req: Request) -> ApiError {
    let path = req.uri().path();
    let message = match path {
        "/swarm/leave" | "/swarm/unlockkey" | "/swarm/unlock" => NOT_IN_SWARM.to_string(),
        "/swarm/init" | "/swarm/join" => {
            "berth does not run swarm mode: this node cannot init or join a swarm".to_string()
        }
        _ => NOT_MANAGER.to_string(),
    };
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message,
    }
}

/// The route patterns this module answers.
pub const ROUTES: &[&str] = &[
    "/swarm",
    "/swarm/{*rest}",
    "/nodes",
    "/nodes/{*rest}",
    "/services",
    "/services/{*rest}",
    "/tasks",
    "/tasks/{*rest}",
    "/secrets",
    "/secrets/{*rest}",
    "/configs",
    "/configs/{*rest}",
];
