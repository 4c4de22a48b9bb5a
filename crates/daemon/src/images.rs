//! `/images` endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use berth_engine::Engine;

use crate::ApiError;

/// `GET /images/json`: the image summaries `docker images` reads.
pub async fn list(State(engine): State<Arc<Engine>>) -> Result<Json<serde_json::Value>, ApiError> {
    let images = engine.images.list()?;
    let out: Vec<serde_json::Value> = images
        .into_iter()
        .map(|i| {
            serde_json::json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": i.repo_tags,
                "RepoDigests": [],
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
