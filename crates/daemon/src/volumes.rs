//! `/volumes/...`: Docker's volume endpoints over the engine's volume service.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::events::ObjectType;
use berth_engine::volumes::Volume;
use berth_engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::parse_filters;
use crate::ApiError;

type E = State<Arc<Engine>>;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: msg.into(),
    }
}

/// A volume in Docker's shape.
pub fn volume_json(engine: &Engine, v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": engine.containers.volumes.data_dir(&v.name),
        "Name": v.name,
        "Options": v.options,
        "Scope": "local",
    })
}

fn label_matches(v: &Volume, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, x)) => v.labels.get(k).is_some_and(|y| y == x),
        None => v.labels.contains_key(want),
    }
}

#[derive(Debug, Deserialize)]
pub struct FilterQuery {
    filters: Option<String>,
}

/// `GET /volumes` (filters `name`, `label`, `dangling`, `driver`).
pub async fn list(State(engine): E, Query(q): Query<FilterQuery>) -> Result<Json<Value>, ApiError> {
    let f = parse_filters(q.filters.as_deref())?;
    for k in f.keys() {
        if !["name", "label", "dangling", "driver"].contains(&k.as_str()) {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    let any = |key: &str, t: &dyn Fn(&str) -> bool| {
        f.get(key)
            .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| t(v)))
    };
    let vols: Vec<Value> = engine
        .containers
        .volumes
        .list()
        .into_iter()
        .filter(|v| {
            any("name", &|x| v.name.contains(x))
                && any("driver", &|x| v.driver == x)
                && f.get("label")
                    .is_none_or(|vs| vs.iter().all(|l| label_matches(v, l)))
                && any("dangling", &|x| {
                    let dangling = engine.containers.volume_users(&v.name).is_empty();
                    matches!(x, "true" | "1") == dangling
                })
        })
        .map(|v| volume_json(&engine, &v))
        .collect();
    Ok(Json(json!({"Volumes": vols, "Warnings": null})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`.
pub async fn create(State(engine): E, body: Bytes) -> Result<Response, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let b: CreateBody =
        serde_path_to_error::deserialize(de).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let v = engine.containers.volumes.create(
        b.name.as_deref(),
        b.driver.as_deref(),
        b.labels.unwrap_or_default(),
        b.driver_opts.unwrap_or_default(),
    )?;
    engine.events.publish(
        ObjectType::Volume,
        "create",
        &v.name,
        BTreeMap::from([("driver".to_string(), v.driver.clone())]),
    );
    Ok((StatusCode::CREATED, Json(volume_json(&engine, &v))).into_response())
}

/// `GET /volumes/{name}`.
pub async fn inspect(State(engine): E, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let v = engine.containers.volumes.get(&name)?;
    Ok(Json(volume_json(&engine, &v)))
}

/// `DELETE /volumes/{name}`: refused (409) while a container uses it.
pub async fn remove(State(engine): E, Path(name): Path<String>) -> Result<Response, ApiError> {
    let users = engine.containers.volume_users(&name);
    engine.containers.volumes.remove(&name, &users)?;
    engine
        .events
        .publish(ObjectType::Volume, "destroy", &name, BTreeMap::new());
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune`: volumes no container (running or stopped) refers to; from API 1.42
/// on only anonymous ones unless the `all` filter is true, before it every one, as docker.
pub async fn prune(
    State(engine): E,
    version: Option<axum::Extension<crate::version::ApiVersion>>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = parse_filters(q.filters.as_deref())?;
    for k in f.keys() {
        if !["label", "all"].contains(&k.as_str()) {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    let old_api = version.is_some_and(|axum::Extension(v)| v.0 < (1, 42));
    let all = old_api
        || f.get("all")
            .is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "true" | "1")));
    let mut gone = Vec::new();
    let mut space = 0;
    for v in engine.containers.volumes.list() {
        if !all && !v.anonymous {
            continue;
        }
        if !f
            .get("label")
            .is_none_or(|vs| vs.iter().all(|l| label_matches(&v, l)))
        {
            continue;
        }
        let users = engine.containers.volume_users(&v.name);
        if !users.is_empty() {
            continue;
        }
        let size = engine.containers.volumes.size(&v.name);
        if engine.containers.volumes.remove(&v.name, &users).is_ok() {
            space += size;
            gone.push(v.name);
        }
    }
    Ok(Json(
        json!({"VolumesDeleted": gone, "SpaceReclaimed": space}),
    ))
}
