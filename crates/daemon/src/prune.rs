//! Prunes and disk usage: `/containers/prune`, `/images/prune`, `/system/df`, and the prunes berth has nothing for.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{bad, parse_filters, E};
use crate::ApiError;

#[derive(Debug, Deserialize)]
pub struct FiltersQuery {
    filters: Option<String>,
}

/// `POST /containers/prune` (filter `label`).
pub async fn prune(
    State(engine): E,
    Query(q): Query<FiltersQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = parse_filters(q.filters.as_deref())?;
    for k in f.keys() {
        if k != "label" {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    let labels = f.get("label").cloned().unwrap_or_default();
    let (gone, freed) = engine.containers.prune(&labels).await?;
    Ok(Json(
        json!({"ContainersDeleted": gone, "SpaceReclaimed": freed}),
    ))
}

/// `POST /images/prune` (filter `dangling`: true by default, false for every unused image).
pub async fn image_prune(
    State(engine): E,
    Query(q): Query<FiltersQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = parse_filters(q.filters.as_deref())?;
    for k in f.keys() {
        if k != "dangling" {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    let all = f
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
    let in_use = engine.containers.images_in_use();
    let e = engine.clone();
    let (items, freed) = tokio::task::spawn_blocking(move || e.images.prune(all, &in_use))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        })??;
    let items: Vec<Value> = items.into_iter().map(|(k, v)| json!({k: v})).collect();
    Ok(Json(
        json!({"ImagesDeleted": items, "SpaceReclaimed": freed}),
    ))
}

/// `GET /system/df`: images, containers (with their writable layers), volumes and the build
/// cache.
pub async fn system_df(State(engine): E) -> Result<Json<Value>, ApiError> {
    let (layers, usage) = engine.images.df()?;
    let in_use = engine.containers.all();
    let list = engine.images.list(false)?;
    let images: Vec<Value> = list
        .into_iter()
        .map(|i| {
            let (size, unique) = usage.iter().find(|u| u.0 == i.id).map_or((i.size, i.size), |u| (u.1, u.2));
            let users = in_use.iter().filter(|e| e.record().image == i.id).count();
            json!({
                "Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
                "Created": i.created, "Size": size, "SharedSize": size - unique, "VirtualSize": size,
                "Labels": i.labels, "Containers": users,
            })
        })
        .collect();
    let containers: Vec<Value> = in_use
        .iter()
        .map(|e| {
            // dockerd lists them as `GET /containers/json?size=1` does.
            let mut c = crate::containers::list_entry(&engine, e);
            let rec = e.record();
            c["SizeRw"] = json!(engine.containers.size_rw(&rec.id));
            c["SizeRootFs"] = json!(0);
            c
        })
        .collect();
    let volumes: Vec<Value> = engine
        .containers
        .volumes
        .list()
        .iter()
        .map(|v| {
            let mut j = crate::volumes::volume_json(&engine, v);
            j["UsageData"] = json!({
                "Size": engine.containers.volumes.size(&v.name),
                "RefCount": engine.containers.volume_users(&v.name).len(),
            });
            j
        })
        .collect();
    // The build cache: one record per step image, its own layer counted once.
    let mut seen = std::collections::HashSet::new();
    let mut cache: Vec<Value> = Vec::new();
    for (id, used) in engine.builder.cache_entries() {
        let size = match engine.images.top_layer(&id) {
            Some((chain, size)) if seen.insert(chain.clone()) => size,
            _ => 0,
        };
        let when = berth_engine::build::rfc3339(used);
        cache.push(json!({
            "ID": id.trim_start_matches("sha256:").chars().take(25).collect::<String>(),
            "Parents": [], "Type": "regular", "Description": "berth build step",
            "InUse": false, "Shared": false, "Size": size, "CreatedAt": when,
            "LastUsedAt": when, "UsageCount": 1,
        }));
    }
    let mounts = engine.builder.cache_mounts();
    if let Ok(rd) = std::fs::read_dir(&mounts) {
        for e in rd.flatten() {
            cache.push(json!({
                "ID": e.file_name().to_string_lossy(), "Parents": [], "Type": "exec.cachemount",
                "Description": "cache mount (RUN --mount=type=cache)", "InUse": false,
                "Shared": false, "Size": berth_engine::build::dir_size(&e.path()),
                "CreatedAt": berth_engine::build::rfc3339(0), "LastUsedAt": null, "UsageCount": 1,
            }));
        }
    }
    let builder_size: u64 = cache.iter().filter_map(|c| c["Size"].as_u64()).sum();
    Ok(Json(json!({
        "LayersSize": layers, "Images": images, "Containers": containers,
        "Volumes": volumes, "BuildCache": cache, "BuilderSize": builder_size,
    })))
}

/// `POST /build/prune` (called by `docker system prune`): berth has no build cache yet, so
/// there is nothing to remove.
pub async fn nothing_to_prune(uri: axum::http::Uri) -> Json<Value> {
    if uri.path().contains("build") {
        Json(json!({"CachesDeleted": [], "SpaceReclaimed": 0}))
    } else {
        Json(json!({"NetworksDeleted": []}))
    }
}
