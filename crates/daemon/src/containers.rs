//! `/containers/...`: create, list, inspect, the lifecycle (start, stop, restart, kill,
//! pause, rename, resize, wait, remove) and update, over the engine's container service; and
//! the helpers the other endpoint modules share (body checks, filters, `E`). Streams are in
//! `streams`, files in `files`, exec in `exec`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::containers::Entry;
use berth_engine::lifecycle::{Phase, State as CState};
use berth_engine::model::health::{Health, HealthStatus};
use berth_engine::model::{ResourceUpdate, RestartPolicy, WaitCondition};
use berth_engine::Engine;
use bollard_stubs::models::{ContainerCreateBody, ContainerCreateResponse, ContainerWaitResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{bad, no_content, parse_filters, to_engine, truthy, typed, E};
use crate::ApiError;

#[derive(Debug, Deserialize)]
pub struct CreateQuery {
    name: Option<String>,
}

/// `POST /containers/create`.
pub async fn create(
    State(engine): E,
    Query(q): Query<CreateQuery>,
    body_bytes: Bytes,
) -> Result<Response, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(&body_bytes);
    let mut body: ContainerCreateBody =
        serde_path_to_error::deserialize(de).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    // API versions before 1.44 (docker 20.10) send `--mac-address` in the config; it belongs
    // to the endpoint of the container's network mode.
    #[derive(Deserialize)]
    struct Legacy {
        #[serde(rename = "MacAddress", default)]
        mac: Option<String>,
    }
    let legacy_mac = serde_json::from_slice::<Legacy>(&body_bytes)
        .ok()
        .and_then(|l| l.mac)
        .filter(|m| !m.is_empty());
    if let Some(mac) = legacy_mac {
        let mode = body
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.clone())
            .filter(|m| !m.is_empty() && m != "default")
            .unwrap_or_else(|| "bridge".into());
        let nc = body.networking_config.get_or_insert_with(Default::default);
        let eps = nc.endpoints_config.get_or_insert_with(Default::default);
        let ep = eps.entry(mode).or_default();
        if ep.mac_address.as_deref().is_none_or(str::is_empty) {
            ep.mac_address = Some(mac);
        }
    }
    crate::engine_only::refuse(body.host_config.as_ref())?;
    let (id, warnings) = engine
        .containers
        .create(q.name.as_deref(), to_engine(&body)?)?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse {
            id: id.to_string(),
            warnings,
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    all: Option<String>,
    limit: Option<i64>,
    size: Option<String>,
    filters: Option<String>,
}

/// Go's `units.HumanDuration`, as `docker ps` prints it.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (s as f64 / 3600.0).round() as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

pub(crate) fn secs_of(t: &str) -> Option<i64> {
    berth_engine::images::unix_seconds(t)
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
pub(crate) fn status_text(e: &Entry) -> String {
    let s = e.view().status();
    let ago = |t: &str| human_duration(now_secs() - secs_of(t).unwrap_or(now_secs()));
    match &s.phase {
        Phase::Created => "Created".into(),
        Phase::Running { .. } => match e.health().map(|h| h.status) {
            None => format!("Up {}", ago(&s.started_at)),
            Some(HealthStatus::Starting) => {
                format!("Up {} (health: starting)", ago(&s.started_at))
            }
            Some(h) => format!("Up {} ({})", ago(&s.started_at), h.api_name()),
        },
        Phase::Paused { .. } => format!("Up {} (Paused)", ago(&s.started_at)),
        Phase::Restarting { exit_code } => {
            format!("Restarting ({exit_code}) {} ago", ago(&s.finished_at))
        }
        Phase::Exited { exit_code, .. } => {
            format!("Exited ({exit_code}) {} ago", ago(&s.finished_at))
        }
        Phase::Removing => "Removal In Progress".into(),
        Phase::Dead => "Dead".into(),
    }
}

pub(crate) fn command_line(rec: &berth_engine::containers::Record) -> String {
    std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn list_matches(engine: &Engine, e: &Entry, f: &BTreeMap<String, Vec<String>>) -> bool {
    let rec = e.record();
    let labels = rec.config.labels.clone().unwrap_or_default();
    // Docker's rule: every `label` filter must hold; for other keys, any one value.
    f.iter().all(|(k, vals)| {
        let test = |v: &String| match k.as_str() {
            "status" => e.view().state().api_name() == v,
            // A regular expression, tried against the name with and without its `/`, as
            // dockerd does; one that does not compile matches nothing.
            "name" => regex::Regex::new(v).is_ok_and(|re| {
                let n = rec.name.trim_start_matches('/');
                re.is_match(n) || re.is_match(&format!("/{n}"))
            }),
            "id" => rec.id.starts_with(v.as_str()),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => labels.get(lk).is_some_and(|x| x == lv),
                None => labels.contains_key(v),
            },
            "ancestor" => {
                rec.image_ref == *v
                    || rec.image == *v
                    || rec
                        .image
                        .trim_start_matches("sha256:")
                        .starts_with(v.as_str())
                    || engine
                        .images
                        .resolve(v)
                        .is_ok_and(|(id, _)| id == rec.image)
            }
            "health" => {
                e.health()
                    .map_or("none", |h| h.status.api_name())
                    == v
            }
            "exited" => {
                e.view().state() == CState::Exited
                    && matches!(e.view().status().phase, Phase::Exited { exit_code, .. } if exit_code.to_string() == *v)
            }
            _ => true,
        };
        if k == "label" {
            vals.iter().all(test)
        } else {
            vals.iter().any(test)
        }
    })
}

/// `GET /containers/json`.
pub async fn list(State(engine): E, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let filters = parse_filters(q.filters.as_deref())?;
    for k in filters.keys() {
        if ![
            "status", "name", "id", "label", "ancestor", "exited", "health",
        ]
        .contains(&k.as_str())
        {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    for v in filters.get("health").into_iter().flatten() {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
            return Err(bad(format!("Unrecognised filter value for health: {v}")));
        }
    }
    let all = truthy(&q.all) || filters.contains_key("status") || q.limit.is_some_and(|l| l > 0);
    // The CRI's pods and containers (namespace k8s.io) are listed only when that namespace
    // is asked for by its label, as containerd keeps them out of dockerd's namespace.
    let namespace = format!(
        "{}={}",
        berth_engine::pods::NAMESPACE_LABEL,
        berth_engine::pods::CRI_NAMESPACE
    );
    let cri_asked = filters
        .get("label")
        .is_some_and(|ls| ls.contains(&namespace));
    let mut out = Vec::new();
    for e in engine.containers.all() {
        let rec = e.record();
        if berth_engine::pods::in_cri_namespace(&rec.config) && !cri_asked {
            continue;
        }
        let v = e.view();
        if !all
            && !matches!(
                v.state(),
                CState::Running | CState::Paused | CState::Restarting
            )
        {
            continue;
        }
        if !list_matches(&engine, &e, &filters) {
            continue;
        }
        let mut c = list_entry(&engine, &e);
        if truthy(&q.size) {
            let size = engine.containers.size_rw(&rec.id);
            c["SizeRw"] = json!(size);
            c["SizeRootFs"] = json!(size + image_size(&engine, &rec.image));
        }
        out.push(c);
        if q.limit.is_some_and(|l| l > 0 && out.len() as i64 >= l) {
            break;
        }
    }
    Ok(Json(Value::Array(out)))
}

/// A container as `GET /containers/json` (and `system df`) lists it.
pub(crate) fn list_entry(engine: &Engine, e: &Entry) -> Value {
    let rec = e.record();
    let att = engine.containers.attachment(&rec.id);
    let ports: Vec<Value> = att
        .iter()
        .flat_map(|a| a.ports.iter())
        .map(|p| {
            json!({
                "IP": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                "PrivatePort": p.container_port, "PublicPort": p.host_port,
                "Type": p.proto.as_str(),
            })
        })
        .collect();
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image_ref,
        "ImageID": rec.image,
        "Command": command_line(&rec),
        "Created": secs_of(&rec.created).unwrap_or(0),
        "Ports": ports,
        "Labels": rec.config.labels.clone().unwrap_or_default(),
        "State": e.view().state().api_name(),
        "Status": status_text(e),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": network_settings(engine, &rec)["Networks"]},
        "Mounts": mounts_json(engine, &rec),
    })
}

/// `NetworkSettings` in Docker's shape: an entry per network the container is on (with its
/// address while it runs), and the top-level fields of the default bridge's endpoint.
pub fn network_settings(engine: &Engine, rec: &berth_engine::containers::Record) -> Value {
    let a = engine.containers.attachment(&rec.id);
    let mut ports = serde_json::Map::new();
    for p in a.iter().flat_map(|a| a.ports.iter()) {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let entry = ports.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({
                "HostIp": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    let mut networks = serde_json::Map::new();
    let mut top = json!({
        "Bridge": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "MacAddress": "",
    });
    for req in engine.containers.networks_of(rec) {
        let net = engine.network.find(&req.network).ok();
        let ep = a.as_ref().and_then(|a| {
            a.endpoints.iter().find(|e| {
                e.network == req.network || net.as_ref().is_some_and(|n| n.id == e.network_id)
            })
        });
        // dockerd leaves out what was not asked for (`omitempty`).
        let mut ipam = serde_json::Map::new();
        if let Some(ip) = req.ip {
            ipam.insert("IPv4Address".into(), json!(ip.to_string()));
        }
        if let Some(ip) = req.ip6 {
            ipam.insert("IPv6Address".into(), json!(ip.to_string()));
        }
        if !req.link_local_ips.is_empty() {
            let ips: Vec<String> = req.link_local_ips.iter().map(|i| i.to_string()).collect();
            ipam.insert("LinkLocalIPs".into(), json!(ips));
        }
        let ipam = (!ipam.is_empty()).then_some(serde_json::Value::Object(ipam));
        let links = (!req.links.is_empty()).then(|| json!(req.links));
        // On user networks docker lists the short id among the aliases too (API < 1.45 clients,
        // Compose v1 among them, look for it there).
        let mut aliases = req.aliases.clone();
        if req.network != berth_engine::network::DEFAULT_NETWORK && ep.is_some() {
            aliases.push(rec.id[..12].to_string());
        }
        let aliases = (!aliases.is_empty()).then(|| json!(aliases));
        let driver_opts = (!req.driver_opts.is_empty()).then(|| json!(req.driver_opts));
        let v = match ep {
            Some(e) => json!({
                "IPAMConfig": ipam, "Links": links, "Aliases": aliases,
                "MacAddress": e.mac, "DriverOpts": driver_opts, "NetworkID": e.network_id,
                "EndpointID": e.endpoint_id, "Gateway": e.gateway, "IPAddress": e.ip,
                "IPPrefixLen": e.prefix,
                "IPv6Gateway": e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.ip6.map(|a| a.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.prefix6,
                "DNSNames": (!e.dns_names.is_empty()).then(|| json!(e.dns_names)),
            }),
            None => json!({
                "IPAMConfig": ipam, "Links": links, "Aliases": aliases,
                "MacAddress": req.mac.clone().unwrap_or_default(), "DriverOpts": driver_opts,
                "NetworkID": net.as_ref().map(|n| n.id.clone()).unwrap_or_default(),
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": null,
            }),
        };
        if req.network == berth_engine::network::DEFAULT_NETWORK {
            if let Some(e) = ep {
                top = json!({
                    "Bridge": e.bridge, "EndpointID": e.endpoint_id, "Gateway": e.gateway,
                    "IPAddress": e.ip, "IPPrefixLen": e.prefix, "MacAddress": e.mac,
                });
            }
        }
        networks.insert(req.network.clone(), v);
    }
    let mode = rec.host_config.network_mode.as_deref().unwrap_or("");
    if networks.is_empty() && (mode == "host" || mode == "none") {
        let net = engine.network.find(mode).ok();
        networks.insert(
            mode.to_string(),
            json!({
                "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                "DriverOpts": null, "NetworkID": net.map(|n| n.id).unwrap_or_default(),
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": null,
            }),
        );
    }
    let mut out = json!({
        "SandboxID": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SandboxKey": a.as_ref().map(|a| a.netns.display().to_string()).unwrap_or_default(),
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
        "Networks": networks,
    });
    for (k, v) in top.as_object().expect("object") {
        out[k] = v.clone();
    }
    out
}

fn image_size(engine: &Engine, id: &str) -> u64 {
    engine
        .images
        .list(true)
        .ok()
        .and_then(|l| l.into_iter().find(|i| i.id == id).map(|i| i.size))
        .unwrap_or(0)
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `GET /containers/{id}/json`.
pub async fn inspect(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let e = engine.containers.find(&id)?;
    let rec = e.record();
    let s = e.view().status();
    let st = s.phase.state();
    let (dir, log_path) = engine.containers.paths(&rec.id);
    let time_or_zero = |t: &str| {
        if t.is_empty() {
            ZERO_TIME.to_string()
        } else {
            t.to_string()
        }
    };
    let mut host_config = json!(rec.host_config);
    crate::zero::host_config(
        &mut host_config,
        rec.host_config.privileged.unwrap_or(false),
    );
    // Links as dockerd shows them: `/target:/this/alias`.
    if let Some(links) = &rec.host_config.links {
        let shown: Vec<String> = links
            .iter()
            .filter_map(|l| berth_engine::containers::parse_link(l).ok())
            .map(|(t, a)| format!("/{t}:/{}/{a}", rec.name))
            .collect();
        host_config["Links"] = json!(shown);
    }
    let mut config = json!(rec.config);
    crate::zero::container_config(&mut config);
    // The image's layers under the container's own, as overlayfs stacks them.
    let lower: Vec<String> = engine
        .images
        .layer_dirs(&rec.image, &dir.join("upper"))
        .map(|l| l.iter().skip(1).map(|p| p.display().to_string()).collect())
        .unwrap_or_default();
    let lower = lower.join(":");
    let mut out = json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": st.api_name(),
            "Running": matches!(st, CState::Running | CState::Paused | CState::Restarting),
            "Paused": st == CState::Paused,
            "Restarting": st == CState::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": st == CState::Dead,
            "Pid": s.phase.pid(),
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": time_or_zero(&s.started_at),
            "FinishedAt": time_or_zero(&s.finished_at),
        },
        "Image": rec.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", rec.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": lower,
            "UpperDir": dir.join("upper"),
            "WorkDir": dir.join("work"),
            "MergedDir": dir.join("rootfs"),
        }},
        "Mounts": mounts_json(&engine, &rec),
        "Config": config,
        "NetworkSettings": network_settings(&engine, &rec),
    });
    if let Some(h) = e.health() {
        out["State"]["Health"] = health_json(&h);
    }
    if q.get("size").is_some_and(|v| crate::query::bool_value(v)) {
        let size = engine.containers.size_rw(&rec.id);
        out["SizeRw"] = json!(size);
        out["SizeRootFs"] = json!(size + image_size(&engine, &rec.image));
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
pub struct StopQuery {
    t: Option<i64>,
    timeout: Option<i64>,
    signal: Option<String>,
}

/// `POST /containers/{id}/start`.
pub async fn start(State(engine): E, Path(id): Path<String>) -> Result<Response, ApiError> {
    no_content(engine.containers.start(&id).await)
}

/// `POST /containers/{id}/stop`.
pub async fn stop(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    no_content(
        engine
            .containers
            .stop(&id, q.signal.as_deref(), q.t.or(q.timeout))
            .await,
    )
}

/// `POST /containers/{id}/restart`.
pub async fn restart(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    no_content(
        engine
            .containers
            .restart(&id, q.signal.as_deref(), q.t.or(q.timeout))
            .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct KillQuery {
    signal: Option<String>,
}

/// `POST /containers/{id}/kill`.
pub async fn kill(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> Result<Response, ApiError> {
    no_content(engine.containers.kill(&id, q.signal.as_deref()).await)
}

/// `POST /containers/{id}/pause`.
pub async fn pause(State(engine): E, Path(id): Path<String>) -> Result<Response, ApiError> {
    no_content(engine.containers.pause(&id, true).await)
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(State(engine): E, Path(id): Path<String>) -> Result<Response, ApiError> {
    no_content(engine.containers.pause(&id, false).await)
}

#[derive(Debug, Deserialize)]
pub struct RenameQuery {
    name: Option<String>,
}

/// `POST /containers/{id}/rename`.
pub async fn rename(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> Result<Response, ApiError> {
    let name = q
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("Neither old nor new names may be empty"))?;
    no_content(engine.containers.rename(&id, &name))
}

#[derive(Debug, Deserialize)]
pub struct ResizeQuery {
    pub(crate) h: Option<u16>,
    pub(crate) w: Option<u16>,
}

/// `POST /containers/{id}/resize`.
pub async fn resize(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<Response, ApiError> {
    let (h, w) = (q.h.unwrap_or(0), q.w.unwrap_or(0));
    match engine.containers.resize(&id, h, w).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    condition: Option<String>,
}

/// `POST /containers/{id}/wait`.
pub async fn wait(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    // Errors that show at once (no such container, bad condition) are plain errors; after
    // that the headers go out immediately and the body when the condition holds: the docker
    // CLI waits for the headers before it starts the container.
    engine.containers.find(&id)?;
    let condition = WaitCondition::parse(q.condition.as_deref().unwrap_or_default())?;
    let fut = async move {
        let body = match engine.containers.wait(&id, condition).await {
            Ok(code) => serde_json::to_vec(&ContainerWaitResponse {
                status_code: code,
                error: None,
            }),
            Err(e) => {
                serde_json::to_vec(&json!({"StatusCode": -1, "Error": {"Message": e.message}}))
            }
        }
        .expect("wait response serialises");
        Ok::<_, Infallible>(Bytes::from(body))
    };
    let stream = futures_util::stream::once(fut);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct RemoveQuery {
    force: Option<String>,
    v: Option<String>,
}

/// `DELETE /containers/{id}`.
pub async fn remove(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    engine
        .containers
        .remove_with_volumes(&id, truthy(&q.force), truthy(&q.v))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /containers/{parent}/{alias}?link=1`: removes a legacy link from the parent.
pub async fn remove_link(
    State(engine): E,
    Path((id, link)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !q.get("link").is_some_and(|v| crate::query::bool_value(v)) {
        return Err(bad(format!(
            "page not found: DELETE /containers/{id}/{link}"
        )));
    }
    engine.containers.remove_link(&id, &link)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /containers/{id}/top` (`ps_args` is accepted; the columns are `ps -ef`'s).
pub async fn top(State(engine): E, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (titles, procs) = engine.containers.top(&id).await?;
    Ok(Json(json!({"Titles": titles, "Processes": procs})))
}

/// The engine's resource update from the API's body. As dockerd, a restart policy with an
/// empty name (what `docker update` sends when `--restart` is not given) changes nothing.
fn resource_update(
    u: bollard_stubs::models::ContainerUpdateBody,
) -> Result<ResourceUpdate, ApiError> {
    let restart = match u.restart_policy {
        Some(p) => {
            let name = p.name.map(|n| n.to_string()).unwrap_or_default();
            if name.is_empty() {
                None
            } else {
                Some(RestartPolicy::parse(
                    &name,
                    p.maximum_retry_count.unwrap_or(0),
                )?)
            }
        }
        None => None,
    };
    Ok(ResourceUpdate {
        cpu_shares: u.cpu_shares,
        memory: u.memory,
        memory_swap: u.memory_swap,
        memory_reservation: u.memory_reservation,
        nano_cpus: u.nano_cpus,
        cpu_quota: u.cpu_quota,
        cpu_period: u.cpu_period,
        cpuset_cpus: u.cpuset_cpus,
        cpuset_mems: u.cpuset_mems,
        pids_limit: u.pids_limit,
        restart,
    })
}

/// `POST /containers/{id}/update`.
pub async fn update(
    State(engine): E,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let u = typed::<bollard_stubs::models::ContainerUpdateBody>(&body)?;
    engine.containers.update(&id, resource_update(u)?).await?;
    Ok(Json(json!({"Warnings": []})))
}

/// A container's `Mounts` in Docker's shape.
pub fn mounts_json(engine: &Engine, rec: &berth_engine::containers::Record) -> Value {
    Value::Array(
        rec.mounts
            .iter()
            .map(|m| match m.typ.as_str() {
                "volume" => {
                    let name = m.name.clone().unwrap_or_default();
                    json!({
                        "Type": "volume", "Name": name,
                        "Source": engine.containers.volumes.data_dir(&name),
                        "Destination": m.destination, "Driver": "local", "Mode": m.mode,
                        "RW": m.rw, "Propagation": "",
                    })
                }
                typ => json!({
                    "Type": typ, "Source": m.source, "Destination": m.destination,
                    "Mode": m.mode, "RW": m.rw, "Propagation": m.propagation,
                }),
            })
            .collect(),
    )
}

/// `State.Health` as dockerd writes it.
fn health_json(h: &Health) -> Value {
    let log: Vec<Value> = h
        .log
        .iter()
        .map(|r| {
            json!({
                "Start": berth_engine::time::rfc3339(r.start),
                "End": berth_engine::time::rfc3339(r.end),
                "ExitCode": r.exit_code,
                "Output": r.output,
            })
        })
        .collect();
    json!({"Status": h.status.api_name(), "FailingStreak": h.failing_streak, "Log": log})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn filters_both_shapes() {
        let a = parse_filters(Some(r#"{"status":["running"],"label":["a=b"]}"#)).unwrap();
        assert_eq!(a["status"], ["running"]);
        let b = parse_filters(Some(r#"{"name":{"web":true}}"#)).unwrap();
        assert_eq!(b["name"], ["web"]);
        assert!(parse_filters(Some("nope")).is_err());
    }
}
