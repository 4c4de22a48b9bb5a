//! What every endpoint module shares: the engine as the handlers' state, request bodies
//! checked against the API's models and converted into the engine's types, filters and
//! query booleans, and the small responses (400s, 204s, stream media types).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_engine::Engine;
use serde_json::Value;

use crate::ApiError;

/// The handlers' state: the engine.
pub(crate) type E = State<Arc<Engine>>;

/// Docker's boolean query values: `1`, `true`, `True`.
pub(crate) use crate::query::opt_bool as truthy;

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

/// Renames top-level keys that match one of `names` but for case to that name, as Go's JSON
/// decoder matches fields (docker-py sends an exec's `detachKeys` in lower camel case).
pub(crate) fn canonical_keys(body: &[u8], names: &[&str]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice(body) else {
        return body.to_vec();
    };
    for n in names {
        if m.contains_key(*n) {
            continue;
        }
        if let Some(k) = m.keys().find(|k| k.eq_ignore_ascii_case(n)).cloned() {
            if let Some(v) = m.remove(&k) {
                m.insert(n.to_string(), v);
            }
        }
    }
    serde_json::to_vec(&m).unwrap_or_else(|_| body.to_vec())
}

/// The API's model (checked by bollard's types) as the engine's type of the same JSON shape.
/// The engine's container types keep Docker's field names (`berth_engine::model::container`),
/// so this passes on every setting the engine models and drops the rest.
pub(crate) fn to_engine<A: serde::Serialize, T: serde::de::DeserializeOwned>(
    a: &A,
) -> Result<T, ApiError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| bad(format!("invalid JSON: {e}")))
}

pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: msg.into(),
    }
}

/// The media type of a container's stream: raw with a terminal, multiplexed frames without.
pub(crate) fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Docker's `filters` query: `{"key": ["v", ...]}` or the older `{"key": {"v": true}}`.
pub(crate) fn parse_filters(s: Option<&str>) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
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

pub(crate) fn no_content(
    r: Result<(), berth_engine::error::EngineError>,
) -> Result<Response, ApiError> {
    match r {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) if e.kind == berth_engine::error::Kind::NotModified => {
            Ok(StatusCode::NOT_MODIFIED.into_response())
        }
        Err(e) => Err(e.into()),
    }
}
