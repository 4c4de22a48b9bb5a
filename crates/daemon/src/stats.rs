//! `GET /containers/{id}/stats`: the engine's samples rendered in Docker's stats JSON, each
//! with the previous sample as `precpu_stats` so that clients can compute CPU percentages.

use std::convert::Infallible;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use berth_engine::model::StatsSample;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{truthy, E};
use crate::ApiError;

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

/// A sample's time as Docker writes it; none: Go's zero time.
fn time(t: Option<SystemTime>) -> String {
    t.map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        berth_engine::time::rfc3339,
    )
}

fn cpu_stats(s: Option<&StatsSample>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    json!({
        "cpu_usage": {
            "total_usage": s.cpu_total_ns,
            "usage_in_kernelmode": s.cpu_kernel_ns,
            "usage_in_usermode": s.cpu_user_ns,
        },
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": s.throttled_periods, "throttled_time": 0},
    })
}

/// Docker's stats document for `cur`, with `prev` (if any) as the previous sample.
pub fn stats_json(cur: &StatsSample, prev: Option<&StatsSample>) -> Value {
    let mut v = stats_doc(cur, prev);
    // As dockerd: `networks` only for a container with interfaces besides loopback.
    if !cur.networks.is_empty() {
        let nets: serde_json::Map<String, Value> = cur
            .networks
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    json!({
                        "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                        "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                        "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                        "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                    }),
                )
            })
            .collect();
        v["networks"] = Value::Object(nets);
    }
    v
}

/// dockerd's blkio entries (`null` when the kernel counted nothing, as dockerd sends).
fn io_entries(e: &[berth_engine::model::CgroupIoEntry]) -> Value {
    if e.is_empty() {
        return Value::Null;
    }
    e.iter()
        .map(|x| json!({"major": x.major, "minor": x.minor, "op": x.op, "value": x.value}))
        .collect()
}

fn stats_doc(cur: &StatsSample, prev: Option<&StatsSample>) -> Value {
    json!({
        "read": time(Some(cur.read)),
        "preread": time(prev.map(|p| p.read)),
        "name": format!("/{}", cur.name),
        "id": cur.id,
        "num_procs": 0,
        "pids_stats": {"current": cur.pids, "limit": cur.pids_limit},
        "blkio_stats": {"io_service_bytes_recursive": io_entries(&cur.io_bytes),
            "io_serviced_recursive": io_entries(&cur.io_ops), "io_queue_recursive": null,
            "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null},
        "storage_stats": {},
        "cpu_stats": cpu_stats(Some(cur)),
        "precpu_stats": cpu_stats(prev),
        "memory_stats": {
            "usage": cur.memory_usage,
            "max_usage": cur.memory_max_usage,
            "failcnt": cur.memory_failcnt,
            "limit": cur.memory_limit,
            "stats": {},
        },
    })
}

/// A sample a second (with the previous one as `precpu_stats`), or one (`stream=false`: two
/// samples a second apart, as dockerd; `one-shot`: one at once).
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
            stats_json(&first, None)
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let second = engine.containers.stats_sample(&id).await?;
            stats_json(&second, Some(&first))
        };
        return Ok(Json(v).into_response());
    }
    let s = futures_util::stream::unfold(
        (engine, id, first, true),
        |(engine, id, prev, first_round)| async move {
            let (cur, line) = if first_round {
                let line = stats_json(&prev, None);
                (prev, line)
            } else {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let cur = engine.containers.stats_sample(&id).await.ok()?;
                let line = stats_json(&cur, Some(&prev));
                (cur, line)
            };
            let line = Bytes::from(line.to_string() + "\n");
            Some((Ok::<_, Infallible>(line), (engine, id, cur, false)))
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(s),
    )
        .into_response())
}
