//! `GET /events`: the engine's events rendered as Docker's JSON, one object per line, with
//! the API's `since`, `until` and `filters`.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_engine::events::{Event, ObjectType};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{parse_filters, E};
use crate::streams::parse_unix;
use crate::ApiError;

/// An event as dockerd sends it; container events carry the pre-1.22 fields (`status`,
/// `id`, `from`) too, which the docker CLI still reads.
pub fn render(e: &Event) -> Value {
    let mut v = json!({
        "Type": e.object.as_str(),
        "Action": e.action,
        "Actor": {"ID": e.actor, "Attributes": e.attributes},
        "scope": "local",
        "time": e.time_nanos / 1_000_000_000,
        "timeNano": e.time_nanos,
    });
    // The legacy fields, which dockerd still writes for container and image events.
    if matches!(e.object, ObjectType::Container | ObjectType::Image) {
        v["status"] = json!(e.action);
        v["id"] = json!(e.actor);
        if let Some(img) = e.attributes.get("image") {
            v["from"] = json!(img);
        }
    }
    v
}

fn line(e: &Event) -> Bytes {
    Bytes::from(render(e).to_string() + "\n")
}

/// Docker's event filters: `type`, `event`, `container`, `image`, `label`.
pub fn matches(e: &Event, filters: &BTreeMap<String, Vec<String>>) -> bool {
    let attr = |k: &str| e.attributes.get(k).map(String::as_str);
    filters.iter().all(|(k, vals)| {
        let any = |f: &dyn Fn(&str) -> bool| vals.iter().any(|v| f(v));
        match k.as_str() {
            "type" => any(&|v| e.object.as_str() == v),
            // As dockerd: `health_status`, `exec_create` and `exec_start` also match the
            // actions that carry a detail after a colon (`health_status: healthy`).
            "event" | "status" => any(&|v| {
                e.action == v
                    || (["health_status", "exec_create", "exec_start"].contains(&v)
                        && e.action.strip_prefix(v).is_some_and(|r| r.starts_with(':')))
            }),
            "container" => any(&|v| {
                e.object == ObjectType::Container
                    && (e.actor.starts_with(v) || attr("name") == Some(v))
            }),
            "image" => any(&|v| attr("image") == Some(v) || e.actor == v),
            "label" => any(&|v| match v.split_once('=') {
                Some((lk, lv)) => attr(lk) == Some(lv),
                None => attr(v).is_some(),
            }),
            _ => true,
        }
    })
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// `GET /events`: recent events since `since`, then live ones until `until` (or for ever).
pub async fn events(State(engine): E, Query(q): Query<EventsQuery>) -> Result<Response, ApiError> {
    let since = parse_unix(&q.since)?;
    let until = parse_unix(&q.until)?;
    let filters = parse_filters(q.filters.as_deref())?;
    let (history, rx) = engine.events.subscribe();
    let nanos = |e: &Event| e.time_nanos as i128;
    let mut first: Vec<Event> = Vec::new();
    if let Some(s) = since {
        first = history
            .into_iter()
            .filter(|e| nanos(e) >= s && until.is_none_or(|u| nanos(e) <= u))
            .filter(|e| matches(e, &filters))
            .collect();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128;
    let live = until.is_none_or(|u| u > now);
    let deadline = until.map(|u| {
        tokio::time::Instant::now() + std::time::Duration::from_nanos((u - now).max(0) as u64)
    });
    struct St {
        first: std::vec::IntoIter<Event>,
        rx: tokio::sync::broadcast::Receiver<Event>,
        live: bool,
        deadline: Option<tokio::time::Instant>,
        filters: BTreeMap<String, Vec<String>>,
    }
    let st = St {
        first: first.into_iter(),
        rx,
        live,
        deadline,
        filters,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if let Some(e) = st.first.next() {
            return Some((Ok::<_, Infallible>(line(&e)), st));
        }
        if !st.live {
            return None;
        }
        loop {
            let next = match st.deadline {
                Some(d) => match tokio::time::timeout_at(d, st.rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return None,
                },
                None => st.rx.recv().await,
            };
            match next {
                Ok(e) if matches(&e, &st.filters) => return Some((Ok(line(&e)), st)),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(object: ObjectType, action: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            object,
            action: action.into(),
            actor: "3f2a".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time_nanos: 1_700_000_000_123_456_789,
        }
    }

    #[test]
    fn container_events_carry_the_old_fields() {
        let v = render(&ev(
            ObjectType::Container,
            "die",
            &[("image", "busybox"), ("exitCode", "3")],
        ));
        assert_eq!(v["Type"], "container");
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], "3f2a");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["time"], 1_700_000_000u64);
        assert_eq!(v["timeNano"], 1_700_000_000_123_456_789u64);
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
        let n = render(&ev(ObjectType::Network, "create", &[]));
        assert!(n.get("status").is_none() && n.get("from").is_none());
    }

    #[test]
    fn filters() {
        let e = ev(
            ObjectType::Container,
            "start",
            &[("name", "web"), ("image", "busybox"), ("app", "x")],
        );
        let f = |k: &str, v: &str| BTreeMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(matches(&e, &f("type", "container")));
        assert!(!matches(&e, &f("type", "network")));
        assert!(matches(&e, &f("event", "start")));
        assert!(!matches(&e, &f("event", "sta")));
        assert!(matches(&e, &f("container", "web")));
        assert!(matches(&e, &f("container", "3f")));
        assert!(matches(&e, &f("image", "busybox")));
        assert!(matches(&e, &f("label", "app=x")));
        assert!(matches(&e, &f("label", "app")));
        assert!(!matches(&e, &f("label", "app=y")));
        let h = ev(ObjectType::Container, "health_status: healthy", &[]);
        assert!(matches(&h, &f("event", "health_status")));
        assert!(matches(&h, &f("event", "health_status: healthy")));
        assert!(!matches(&h, &f("event", "health")));
    }
}
