//! `/networks/...`: Docker's network endpoints over the engine's network service.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::events::ObjectType;
use berth_engine::network::{CreateRequest, Network};
use berth_engine::Engine;
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
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

fn body_of<T: serde::de::DeserializeOwned>(b: &Bytes) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(b);
    serde_path_to_error::deserialize(de).map_err(|e| bad(format!("invalid JSON: {e}")))
}

/// The running containers' endpoints, by network id (each attachment read once).
fn members(engine: &Engine) -> BTreeMap<String, serde_json::Map<String, Value>> {
    let mut out: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for e in engine.containers.all() {
        let rec = e.record();
        let Some(a) = engine.containers.attachment(&rec.id) else {
            continue;
        };
        if !a.is_live() {
            continue;
        }
        for ep in &a.endpoints {
            out.entry(ep.network_id.clone()).or_default().insert(
                rec.id.to_string(),
                json!({
                    "Name": rec.name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
                    "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                    "IPv6Address": ep.ip6.map(|a| format!("{a}/{}", ep.prefix6)).unwrap_or_default(),
                }),
            );
        }
    }
    out
}

/// A network in Docker's inspect shape; `Containers` lists the running containers on it.
fn network_json(
    engine: &Engine,
    n: &Network,
    members: &BTreeMap<String, serde_json::Map<String, Value>>,
) -> Value {
    let mut config: Vec<Value> = engine
        .network
        .addressing(n)
        .map(|(sn, gw)| {
            let mut c = json!({"Subnet": sn.to_string(), "Gateway": gw.to_string()});
            if let Some(r) = n.range {
                c["IPRange"] = json!(r.to_string());
            }
            if !n.aux_addresses.is_empty() {
                c["AuxiliaryAddresses"] = json!(n.aux_addresses);
            }
            vec![c]
        })
        .unwrap_or_default();
    if let Some((sn, gw)) = n.subnet6.zip(n.gateway6) {
        let mut c = json!({"Subnet": sn.to_string(), "Gateway": gw.to_string()});
        if let Some(r) = n.range6 {
            c["IPRange"] = json!(r.to_string());
        }
        config.push(c);
    }
    let containers = members.get(&n.id).cloned().unwrap_or_default();
    // The IPAM options as the client sent them: the docker CLI sends `{}`, docker-py nothing
    // (`null`, as dockerd answers it); `null` for berth's own networks.
    let ipam_options = json!(n.ipam_options);
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": n.driver == "bridge",
        "EnableIPv6": n.subnet6.is_some(),
        "IPAM": {"Driver": "default", "Options": ipam_options, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn label_matches(n: &Network, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
        None => n.labels.contains_key(want),
    }
}

fn filter_networks(
    nets: Vec<Network>,
    filters: &BTreeMap<String, Vec<String>>,
    in_use: impl Fn(&Network) -> bool,
) -> Result<Vec<Network>, ApiError> {
    for k in filters.keys() {
        if !["name", "id", "driver", "label", "type", "scope", "dangling"].contains(&k.as_str()) {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        filters
            .get(key)
            .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| f(v)))
    };
    let mut out = Vec::new();
    for n in nets {
        let ok = any("name", &|v| n.name.contains(v))
            && any("id", &|v| n.id.starts_with(v))
            && any("driver", &|v| n.driver == v)
            && filters
                .get("label")
                .is_none_or(|vs| vs.iter().all(|v| label_matches(&n, v)))
            && any("scope", &|v| v == "local")
            && any("type", &|v| match v {
                "custom" => !n.predefined(),
                "builtin" => n.predefined(),
                _ => false,
            })
            && any("dangling", &|v| {
                let dangling = !n.predefined() && !in_use(&n);
                matches!(v, "true" | "1") == dangling
            });
        if ok {
            out.push(n);
        }
    }
    Ok(out)
}

/// Whether any container (running or not) names the network.
fn in_use(engine: &Engine, n: &Network) -> bool {
    engine.containers.all().iter().any(|e| {
        engine
            .containers
            .networks_of(&e.record())
            .iter()
            .any(|r| r.network == n.name || r.network == n.id)
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    filters: Option<String>,
}

/// `GET /networks`.
pub async fn list(State(engine): E, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let filters = parse_filters(q.filters.as_deref())?;
    let nets = filter_networks(engine.network.list(), &filters, |n| in_use(&engine, n))?;
    let m = members(&engine);
    Ok(Json(Value::Array(
        nets.iter().map(|n| network_json(&engine, n, &m)).collect(),
    )))
}

/// `GET /networks/{id}`.
pub async fn inspect(State(engine): E, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let n = engine.network.find(&id)?;
    Ok(Json(network_json(&engine, &n, &members(&engine))))
}

/// `POST /networks/create`.
pub async fn create(State(engine): E, body: Bytes) -> Result<Response, ApiError> {
    let req: NetworkCreateRequest = body_of(&body)?;
    if req.name.is_empty() {
        return Err(bad("network name must not be empty"));
    }
    let pools = req
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    let aux_addresses = pools
        .iter()
        .flat_map(|c| c.auxiliary_addresses.clone().unwrap_or_default())
        .collect();
    let configs = pools
        .into_iter()
        .map(|c| (c.subnet, c.gateway, c.ip_range))
        .collect();
    let r = CreateRequest {
        name: req.name.clone(),
        driver: req.driver.clone(),
        internal: req.internal.unwrap_or(false),
        attachable: req.attachable.unwrap_or(false),
        ipv6: req.enable_ipv6.unwrap_or(false),
        labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
        options: req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        ipam_driver: req.ipam.as_ref().and_then(|i| i.driver.clone()),
        aux_addresses,
        ipam_options: req
            .ipam
            .as_ref()
            .and_then(|i| i.options.clone())
            .map(|o| o.into_iter().collect()),
        configs,
    };
    let net = engine.network.clone();
    let n = tokio::task::spawn_blocking(move || net.create(r))
        .await
        .map_err(|e| bad(format!("create the network: {e}")))??;
    engine.events.publish(
        ObjectType::Network,
        "create",
        &n.id,
        BTreeMap::from([
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]),
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": n.id, "Warning": ""})),
    )
        .into_response())
}

/// `DELETE /networks/{id}`.
pub async fn remove(State(engine): E, Path(id): Path<String>) -> Result<Response, ApiError> {
    let n = engine.network.find(&id)?;
    let net = engine.network.clone();
    let nid = n.id.clone();
    tokio::task::spawn_blocking(move || net.remove(&nid))
        .await
        .map_err(|e| bad(format!("remove the network: {e}")))??;
    engine.events.publish(
        ObjectType::Network,
        "destroy",
        &n.id,
        BTreeMap::from([
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    State(engine): E,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NetworkConnectRequest = body_of(&body)?;
    let endpoint = match &req.endpoint_config {
        Some(ep) => Some(crate::http::to_engine(ep)?),
        None => None,
    };
    engine
        .containers
        .connect(&req.container, &id, endpoint.as_ref())
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    State(engine): E,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NetworkDisconnectRequest = body_of(&body)?;
    engine
        .containers
        .disconnect(&req.container, &id, req.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/prune`: user networks that no container names.
pub async fn prune(State(engine): E, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let filters = parse_filters(q.filters.as_deref())?;
    for k in filters.keys() {
        if !["label", "until"].contains(&k.as_str()) {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    if filters.contains_key("until") {
        return Err(bad("the until filter is not supported for networks yet"));
    }
    let labels = filters.get("label").cloned().unwrap_or_default();
    let net = engine.network.clone();
    let e2 = engine.clone();
    let removed = tokio::task::spawn_blocking(move || {
        net.prune(|n| in_use(&e2, n) || !labels.iter().all(|l| label_matches(n, l)))
    })
    .await
    .map_err(|e| bad(format!("prune: {e}")))?;
    Ok(Json(json!({"NetworksDeleted": removed})))
}
