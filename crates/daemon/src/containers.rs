//! `/containers/...` and `/events`: Docker's container endpoints over the engine's container
//! service. Attach is a hijacked connection (HTTP 101, `Upgrade: tcp`), as the docker CLI
//! expects; logs and events are streamed bodies.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::containers::{Entry, LogOptions};
use berth_engine::lifecycle::State as CState;
use berth_engine::model::{frames, ResourceUpdate, RestartPolicy, WaitCondition};
use berth_engine::Engine;
use bollard_stubs::models::{ContainerCreateBody, ContainerCreateResponse, ContainerWaitResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ApiError;

pub(crate) type E = State<Arc<Engine>>;

/// A JSON body checked against the API's model `T`: an object whose fields have the
/// documented types (unknown fields are ignored, as dockerd ignores them). Kept as a `Value`
/// for the handler.
pub(crate) fn checked<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    serde_path_to_error::deserialize::<_, T>(&v)
        .map_err(|e| bad(format!("invalid JSON: {} (at {})", e.inner(), e.path())))?;
    Ok(v)
}

/// The body as `T`, with the path of a field of the wrong type in the error.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| bad(format!("invalid JSON: {} (at {})", e.inner(), e.path())))
}

pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: msg.into(),
    }
}

/// Docker's boolean query values: `1`, `true`, `True`.
use crate::query::opt_bool as truthy;

/// The media type of a container's stream: raw with a terminal, multiplexed frames without.
pub(crate) fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

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
    let (id, warnings) = engine.containers.create(q.name.as_deref(), body)?;
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

/// Docker's `filters` query: `{"key": ["v", ...]}` or the older `{"key": {"v": true}}`.
pub fn parse_filters(s: Option<&str>) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: Value = serde_json::from_str(s).map_err(|e| bad(format!("invalid filter: {e}")))?;
    let mut out = BTreeMap::new();
    for (k, v) in v.as_object().ok_or_else(|| bad("invalid filter"))? {
        let vals: Vec<String> = match v {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => return Err(bad(format!("invalid filter '{k}'"))),
        };
        out.insert(k.clone(), vals);
    }
    Ok(out)
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

fn secs_of(t: &str) -> Option<i64> {
    berth_engine::images::unix_seconds(t)
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
fn status_text(e: &Entry) -> String {
    let v = e.view();
    let shim = v.shim.clone();
    let ago = |t: &str| human_duration(now_secs() - secs_of(t).unwrap_or(now_secs()));
    match v.state() {
        CState::Created => "Created".into(),
        CState::Running => format!("Up {}", ago(&shim.unwrap().started_at)),
        CState::Paused => format!("Up {} (Paused)", ago(&shim.unwrap().started_at)),
        CState::Restarting => {
            let s = shim.unwrap();
            format!("Restarting ({}) {} ago", s.exit_code, ago(&s.finished_at))
        }
        CState::Exited => {
            let s = shim.unwrap();
            format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at))
        }
        CState::Removing => "Removal In Progress".into(),
        CState::Dead => "Dead".into(),
    }
}

fn command_line(rec: &berth_engine::containers::Record) -> String {
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
            "exited" => {
                e.view().state() == CState::Exited
                    && e.view().shim.is_some_and(|s| s.exit_code.to_string() == *v)
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
        if !["status", "name", "id", "label", "ancestor", "exited"].contains(&k.as_str()) {
            return Err(bad(format!("invalid filter '{k}'")));
        }
    }
    let all = truthy(&q.all) || filters.contains_key("status") || q.limit.is_some_and(|l| l > 0);
    let mut out = Vec::new();
    for e in engine.containers.all() {
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
        let mut c = json!({
            "Id": rec.id,
            "Names": [format!("/{}", rec.name)],
            "Image": rec.image_ref,
            "ImageID": rec.image,
            "Command": command_line(&rec),
            "Created": secs_of(&rec.created).unwrap_or(0),
            "Ports": ports,
            "Labels": rec.config.labels.clone().unwrap_or_default(),
            "State": v.state().api_name(),
            "Status": status_text(&e),
            "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_default()},
            "NetworkSettings": {"Networks": network_settings(&engine, &rec)["Networks"]},
            "Mounts": crate::volumes::mounts_json(&engine, &rec),
        });
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
        let ipam = (req.ip.is_some() || req.ip6.is_some()).then(|| {
            json!({
                "IPv4Address": req.ip.map(|i| i.to_string()).unwrap_or_default(),
                "IPv6Address": req.ip6.map(|i| i.to_string()).unwrap_or_default(),
            })
        });
        // On user networks docker lists the short id among the aliases too (API < 1.45 clients,
        // Compose v1 among them, look for it there).
        let mut aliases = req.aliases.clone();
        if req.network != berth_engine::network::DEFAULT_NETWORK && ep.is_some() {
            aliases.push(rec.id[..12].to_string());
        }
        let aliases = (!aliases.is_empty()).then(|| json!(aliases));
        let v = match ep {
            Some(e) => json!({
                "IPAMConfig": ipam, "Links": null, "Aliases": aliases,
                "MacAddress": e.mac, "DriverOpts": null, "NetworkID": e.network_id,
                "EndpointID": e.endpoint_id, "Gateway": e.gateway, "IPAddress": e.ip,
                "IPPrefixLen": e.prefix,
                "IPv6Gateway": e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.ip6.map(|a| a.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.prefix6,
                "DNSNames": (!e.dns_names.is_empty()).then(|| json!(e.dns_names)),
            }),
            None => json!({
                "IPAMConfig": ipam, "Links": null, "Aliases": aliases,
                "MacAddress": req.mac.clone().unwrap_or_default(), "DriverOpts": null,
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
    let v = e.view();
    let st = v.state();
    let shim = v.shim.clone();
    let (dir, log_path) = engine.containers.paths(&rec.id);
    let s = shim.clone();
    let time_or_zero = |t: Option<String>| {
        t.filter(|t| !t.is_empty())
            .unwrap_or_else(|| ZERO_TIME.into())
    };
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
            "OOMKilled": s.as_ref().is_some_and(|s| s.oom_killed),
            "Dead": st == CState::Dead,
            "Pid": s.as_ref().map_or(0, |s| s.pid),
            "ExitCode": s.as_ref().map_or(0, |s| s.exit_code),
            "Error": s.as_ref().map(|s| s.error.clone()).unwrap_or_default(),
            "StartedAt": time_or_zero(s.as_ref().map(|s| s.started_at.clone())),
            "FinishedAt": time_or_zero(s.as_ref().map(|s| s.finished_at.clone())),
        },
        "Image": rec.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", rec.name),
        "RestartCount": s.as_ref().map_or(0, |s| s.restart_count),
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": rec.host_config,
        "GraphDriver": {"Name": "overlay", "Data": {
            "UpperDir": dir.join("upper"),
            "WorkDir": dir.join("work"),
            "MergedDir": dir.join("rootfs"),
        }},
        "Mounts": crate::volumes::mounts_json(&engine, &rec),
        "Config": rec.config,
        "NetworkSettings": network_settings(&engine, &rec),
    });
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

fn no_content(r: Result<(), berth_engine::error::EngineError>) -> Result<Response, ApiError> {
    match r {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) if e.kind == berth_engine::error::Kind::NotModified => {
            Ok(StatusCode::NOT_MODIFIED.into_response())
        }
        Err(e) => Err(e.into()),
    }
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

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    since: Option<String>,
    until: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
}

/// Docker's `since`/`until`: Unix seconds with an optional fraction.
pub(crate) fn parse_unix(s: &Option<String>) -> Result<Option<i128>, ApiError> {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty() && *s != "0") else {
        return Ok(None);
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = secs
        .parse()
        .map_err(|_| bad(format!("invalid time value: {s}")))?;
    let mut nanos: i128 = 0;
    if !frac.is_empty() {
        let f = &frac[..frac.len().min(9)];
        nanos = f
            .parse::<i128>()
            .map_err(|_| bad(format!("invalid time value: {s}")))?
            * 10i128.pow(9 - f.len() as u32);
    }
    Ok(Some(secs * 1_000_000_000 + nanos))
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let o = LogOptions {
        follow: truthy(&q.follow),
        stdout: truthy(&q.stdout),
        stderr: truthy(&q.stderr),
        since: parse_unix(&q.since)?,
        until: parse_unix(&q.until)?,
        // As dockerd: `all`, nothing or a negative number is every line (Testcontainers
        // sends `tail=-1`).
        tail: match q.tail.as_deref() {
            None | Some("") | Some("all") => None,
            Some(n) => {
                let n: i64 = n
                    .parse()
                    .map_err(|_| bad(format!("invalid tail value: {n}")))?;
                usize::try_from(n).ok()
            }
        },
    };
    if !o.stdout && !o.stderr {
        return Err(bad("Bad parameters: you must choose at least one stream"));
    }
    let timestamps = truthy(&q.timestamps);
    let (tty, rx) = engine.containers.logs(&id, o)?;
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let l = rx.recv().await?;
        let mut payload = Vec::new();
        if timestamps {
            payload.extend_from_slice(l.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(&l.data);
        let out = if tty {
            payload
        } else {
            let mut f = frames::header(l.stream, payload.len()).to_vec();
            f.extend_from_slice(&payload);
            f
        };
        Some((Ok::<_, Infallible>(Bytes::from(out)), rx))
    });
    let ct = content_type(tty);
    Ok(([(header::CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AttachQuery {
    stdin: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// `POST /containers/{id}/attach`: answers 101 at once (the docker CLI starts the container
/// only after that), then connects the hijacked connection to the shim once it runs.
pub async fn attach(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let e = engine.containers.find(&id)?;
    if matches!(e.view().state(), CState::Removing | CState::Dead) {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: "You cannot attach to a stopped container, start it first".into(),
        });
    }
    let tty = e.record().config.tty.unwrap_or(false);
    let (stdin, stdout, stderr) = (truthy(&q.stdin), truthy(&q.stdout), truthy(&q.stderr));
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ct = content_type(tty);
    if !upgrade {
        // A plain request: the output as the response body.
        let (tty, shim) = engine.containers.attach(&id, false, stdout, stderr).await?;
        let stream = shim_body(shim, tty, None);
        return Ok(([(header::CONTENT_TYPE, ct)], stream).into_response());
    }
    let sock = crate::hijack::socket_of(&req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        crate::hijack::until_read(sock).await;
        let mut client = hyper_util::rt::TokioIo::new(upgraded);
        let (tty, shim) = match engine.containers.attach(&id, stdin, stdout, stderr).await {
            Ok(s) => s,
            Err(err) => {
                let _ = client.write_all(format!("Error: {err}\n").as_bytes()).await;
                let _ = client.shutdown().await;
                return;
            }
        };
        pipe(client, shim, tty, stdin, None).await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, ct)
        .body(Body::empty())
        .expect("response"))
}

/// A shim stream as a response body, for clients that did not ask for a hijack: the same
/// framing as [`pipe`] (frames kept without a terminal, stripped with one), streamed.
pub(crate) fn shim_body(
    shim: tokio::net::UnixStream,
    tty: bool,
    on_exit: Option<Box<dyn FnOnce(i64) + Send>>,
) -> Body {
    let (r, w) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pipe(w, shim, tty, false, on_exit));
    let stream = futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 32 * 1024];
        let n = r.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        buf.truncate(n);
        Some((Ok::<_, Infallible>(Bytes::from(buf)), r))
    });
    Body::from_stream(stream)
}

/// Copies a client's stdin to the shim and the shim's frames to the client (without the
/// frame headers for a terminal), until the shim's side ends.
pub(crate) async fn pipe<C>(
    client: C,
    shim: tokio::net::UnixStream,
    tty: bool,
    stdin: bool,
    on_exit: Option<Box<dyn FnOnce(i64) + Send>>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let input = tokio::spawn(async move {
        if stdin {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
        } else {
            // Still read, so that a client closing its side is noticed; discard the bytes.
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut cr, &mut sink).await;
        }
        let _ = sw.shutdown().await;
    });
    let mut on_exit = on_exit;
    let mut hdr = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if sr.read_exact(&mut hdr).await.is_err() {
            break;
        }
        let mut len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        if hdr[0] == frames::EXIT {
            // An exec's exit code: recorded before the client sees the end of the stream,
            // so that its next inspect has it.
            let mut data = vec![0u8; len.min(64)];
            if sr.read_exact(&mut data).await.is_err() {
                break;
            }
            if let Some(f) = on_exit.take() {
                f(String::from_utf8_lossy(&data).trim().parse().unwrap_or(-1));
            }
            continue;
        }
        if !tty && cw.write_all(&hdr).await.is_err() {
            break;
        }
        let mut ok = true;
        while len > 0 {
            let n = len.min(buf.len());
            if sr.read_exact(&mut buf[..n]).await.is_err() || cw.write_all(&buf[..n]).await.is_err()
            {
                ok = false;
                break;
            }
            len -= n;
        }
        if !ok {
            break;
        }
        let _ = cw.flush().await;
    }
    let _ = cw.shutdown().await;
    input.abort();
}

/// `GET /containers/{id}/top` (`ps_args` is accepted; the columns are `ps -ef`'s).
pub async fn top(State(engine): E, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (titles, procs) = engine.containers.top(&id).await?;
    Ok(Json(json!({"Titles": titles, "Processes": procs})))
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

/// `GET /containers/{id}/stats`: a sample a second (with the previous one as `precpu_stats`),
/// or one (`stream=false`: two samples a second apart, as dockerd; `one-shot`: one at once).
pub async fn stats(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let stream = crate::query::bool_or(q.stream.as_deref(), true);
    let one_shot = truthy(&q.one_shot);
    let first = engine.containers.stats_sample(&id).await?;
    if !stream {
        let v = if one_shot {
            first
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let mut second = engine.containers.stats_sample(&id).await?;
            second["precpu_stats"] = first["cpu_stats"].clone();
            second["preread"] = first["read"].clone();
            second
        };
        return Ok(Json(v).into_response());
    }
    let s = futures_util::stream::unfold(
        (engine, id, first, true),
        |(engine, id, prev, first_round)| async move {
            if !first_round {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            let mut cur = if first_round {
                prev.clone()
            } else {
                engine.containers.stats_sample(&id).await.ok()?
            };
            if !first_round {
                cur["precpu_stats"] = prev["cpu_stats"].clone();
                cur["preread"] = prev["read"].clone();
            }
            let line = Bytes::from(cur.to_string() + "\n");
            Some((Ok::<_, Infallible>(line), (engine, id, cur, false)))
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(s),
    )
        .into_response())
}

/// Streams a spooled file as the response body; the file is unlinked once opened.
pub async fn file_body(
    path: std::path::PathBuf,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let f = tokio::fs::File::open(&path).await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?;
    let _ = tokio::fs::remove_file(&path).await;
    let s = futures_util::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = f.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        buf.truncate(n);
        Some((Ok::<_, Infallible>(Bytes::from(buf)), f))
    });
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(s)).into_response())
}

/// `GET /containers/{id}/export`.
pub async fn export(State(engine): E, Path(id): Path<String>) -> Result<Response, ApiError> {
    let spool = engine.images.scratch_path("export");
    engine.containers.export(&id, spool.clone()).await?;
    file_body(spool, "application/x-tar").await
}

#[derive(Debug, Deserialize)]
pub struct ArchiveQuery {
    path: Option<String>,
}

fn archive_path(q: &ArchiveQuery) -> Result<std::path::PathBuf, ApiError> {
    let p = q
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("path is required"))?;
    Ok(std::path::PathBuf::from(if p.starts_with('/') {
        p
    } else {
        format!("/{p}")
    }))
}

fn stat_header(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// `HEAD /containers/{id}/archive`: the path's stat in `X-Docker-Container-Path-Stat`.
pub async fn archive_head(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let p = archive_path(&q)?;
    let st = engine
        .containers
        .with_view(&id, &p.clone(), move |root, rp| {
            let mut st = berth_engine::archive::stat(root, rp)?;
            st["name"] = json!(stat_name(&p));
            Ok(st)
        })
        .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("X-Docker-Container-Path-Stat", stat_header(&st))
        .body(Body::empty())
        .expect("response"))
}

/// The stat header's name of a path: its last component, `/` for the root.
fn stat_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

/// `GET /containers/{id}/archive`: a tar of the path, and its stat header.
pub async fn archive_get(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let p = archive_path(&q)?;
    let spool = engine.images.scratch_path("archive");
    let out = spool.clone();
    let st = engine
        .containers
        .with_view(&id, &p.clone(), move |root, rp| {
            let mut st = berth_engine::archive::stat(root, rp)?;
            st["name"] = json!(stat_name(&p));
            berth_engine::archive::read_as(root, rp, &berth_engine::archive::base_name(&p), &out)?;
            Ok(st)
        })
        .await?;
    let mut r = file_body(spool, "application/x-tar").await?;
    if let Ok(v) = axum::http::HeaderValue::from_str(&stat_header(&st)) {
        r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
    }
    Ok(r)
}

/// `PUT /containers/{id}/archive`: extracts the tar body into the directory at `path`.
pub async fn archive_put(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let p = archive_path(&q)?;
    engine.containers.find(&id)?;
    let spool = engine.images.scratch_path("archive-in");
    let internal = |e: std::io::Error| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    };
    let mut f = tokio::fs::File::create(&spool).await.map_err(internal)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("reading the request: {e}")))?;
        if let Ok(d) = frame.into_data() {
            f.write_all(&d).await.map_err(internal)?;
        }
    }
    f.flush().await.map_err(internal)?;
    drop(f);
    let input = spool.clone();
    let r = engine
        .containers
        .with_view(&id, &p.clone(), move |root, rp| {
            berth_engine::archive::write(root, rp, &input)
        })
        .await;
    let _ = tokio::fs::remove_file(&spool).await;
    r?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/changes`.
pub async fn changes(State(engine): E, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let ch = engine.containers.changes(&id)?;
    Ok(Json(Value::Array(
        ch.into_iter()
            .map(|(p, k)| json!({"Path": p, "Kind": k}))
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub struct CommitQuery {
    container: Option<String>,
    repo: Option<String>,
    tag: Option<String>,
    comment: Option<String>,
    author: Option<String>,
}

/// `POST /commit` (`changes` may repeat, so it is read from the raw query).
pub async fn commit(
    State(engine): E,
    Query(q): Query<CommitQuery>,
    uri: axum::http::Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The body is a container config (docker's client sends `null` without one). It is
    // checked, not applied: `changes` carry what berth applies.
    if !body.is_empty() && body.trim_ascii() != b"null" {
        checked::<bollard_stubs::models::ContainerConfig>(&body)?;
    }
    let c = q
        .container
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("No container specified"))?;
    let changes: Vec<String> = query_all(uri.query().unwrap_or(""), "changes");
    let tag = match (
        q.repo.as_deref().filter(|r| !r.is_empty()),
        q.tag.as_deref().filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    };
    let (e, comment, author) = (
        engine.clone(),
        q.comment.unwrap_or_default(),
        q.author.unwrap_or_default(),
    );
    let id = tokio::task::spawn_blocking(move || {
        e.containers
            .commit(&c, tag.as_deref(), &comment, &author, &changes)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })??;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

/// Every value of `key` in a query string (keys may repeat, which serde's Query cannot take).
pub fn query_all(query: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
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
            let rec = e.record();
            json!({
                "Id": rec.id, "Names": [format!("/{}", rec.name)], "Image": rec.image_ref,
                "ImageID": rec.image, "Command": command_line(&rec),
                "Created": secs_of(&rec.created).unwrap_or(0),
                "State": e.view().state().api_name(), "Status": status_text(e),
                "SizeRw": engine.containers.size_rw(&rec.id), "SizeRootFs": 0,
                "Labels": rec.config.labels.clone().unwrap_or_default(), "Mounts": [],
            })
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
    Ok(Json(json!({
        "LayersSize": layers, "Images": images, "Containers": containers,
        "Volumes": volumes, "BuildCache": cache,
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

#[derive(Debug, Deserialize)]
pub struct ImageCreateQuery {
    #[serde(rename = "fromSrc")]
    from_src: Option<String>,
    #[serde(rename = "fromImage")]
    from_image: Option<String>,
    repo: Option<String>,
    tag: Option<String>,
    message: Option<String>,
    platform: Option<String>,
}

/// `POST /images/create`: `fromSrc=-` imports the request body (a rootfs tarball);
/// `fromImage` pulls from a registry (see `distribution`).
pub async fn image_create(
    State(engine): E,
    Query(q): Query<ImageCreateQuery>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    if let Some(img) = q.from_image.filter(|i| !i.is_empty()) {
        let creds = crate::distribution::registry_auth(&headers)?;
        return crate::distribution::pull(engine, img, q.tag, q.platform, creds).await;
    }
    match q.from_src.as_deref() {
        Some("-") => {}
        Some(other) => {
            return Err(bad(format!(
                "import from {other:?}: only a request body (fromSrc=-) is supported"
            )))
        }
        None => return Err(bad("fromSrc or fromImage is required")),
    }
    let changes = query_all(uri.query().unwrap_or(""), "changes");
    let reference = match (
        q.repo.as_deref().filter(|r| !r.is_empty()),
        q.tag.as_deref().filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    };
    let internal = |e: std::io::Error| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("import: {e}"),
    };
    let spool = engine.images.scratch_path("import");
    let mut f = tokio::fs::File::create(&spool).await.map_err(internal)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("import: reading the request: {e}")))?;
        if let Ok(d) = frame.into_data() {
            f.write_all(&d).await.map_err(internal)?;
        }
    }
    f.flush().await.map_err(internal)?;
    drop(f);
    let (e, p, msg) = (engine.clone(), spool.clone(), q.message.unwrap_or_default());
    let r = tokio::task::spawn_blocking(move || {
        e.images.import(&p, reference.as_deref(), &changes, &msg)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?;
    let _ = tokio::fs::remove_file(&spool).await;
    let id = r?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": id}).to_string() + "\r\n",
    )
        .into_response())
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

    #[test]
    fn unix_times() {
        assert_eq!(
            parse_unix(&Some("12.5".into())).unwrap(),
            Some(12_500_000_000)
        );
        assert_eq!(parse_unix(&Some("3".into())).unwrap(), Some(3_000_000_000));
        assert!(parse_unix(&Some("x".into())).is_err());
    }
}
