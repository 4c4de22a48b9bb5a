//! The CRI's container stats, from the engine's samples of a container's cgroup: CPU time,
//! memory in use (as the working set too: the v1 cgroup's usage, page cache included), and
//! the writable layer's bytes. A container that is not running has its attributes and its
//! writable layer only.

use berth_engine::model::{PodContainer, PodRecord};
use berth_engine::Engine;
use k8s_cri::v1;

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn value(v: u64) -> Option<v1::UInt64Value> {
    Some(v1::UInt64Value { value: v })
}

/// One container's stats.
pub async fn of(engine: &Engine, _pod: &PodRecord, c: &PodContainer) -> v1::ContainerStats {
    let ts = now_nanos();
    let sample = engine.containers.stats_sample(&c.id).await.ok();
    let upper = engine.containers.paths(&c.id).0.join("upper");
    let id = c.id.clone();
    let engine_containers = engine.containers.clone();
    let used = tokio::task::spawn_blocking(move || engine_containers.size_rw(&id))
        .await
        .unwrap_or(0);
    v1::ContainerStats {
        attributes: Some(v1::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(v1::ContainerMetadata {
                name: c.config.name.clone(),
                attempt: c.config.attempt,
            }),
            labels: super::string_map(&c.config.labels),
            annotations: super::string_map(&c.config.annotations),
        }),
        cpu: sample.as_ref().map(|s| v1::CpuUsage {
            timestamp: ts,
            usage_core_nano_seconds: value(s.cpu_total_ns),
            usage_nano_cores: None,
        }),
        memory: sample.as_ref().map(|s| v1::MemoryUsage {
            timestamp: ts,
            working_set_bytes: value(s.memory_usage),
            available_bytes: (s.memory_limit > s.memory_usage)
                .then(|| value(s.memory_limit - s.memory_usage))
                .flatten(),
            usage_bytes: value(s.memory_usage),
            rss_bytes: None,
            page_faults: None,
            major_page_faults: None,
        }),
        writable_layer: Some(v1::FilesystemUsage {
            timestamp: ts,
            fs_id: Some(v1::FilesystemIdentifier {
                mountpoint: upper.display().to_string(),
            }),
            used_bytes: value(used),
            inodes_used: None,
        }),
        swap: None,
    }
}

/// The stats of the containers a filter picks (id or prefix, pod, labels).
pub async fn list(
    engine: &Engine,
    filter: Option<v1::ContainerStatsFilter>,
) -> Vec<v1::ContainerStats> {
    let f = filter.unwrap_or_default();
    let mut out = Vec::new();
    for (pod, c) in engine.pods.all_containers() {
        let picked = (f.id.is_empty() || c.id.starts_with(&f.id))
            && (f.pod_sandbox_id.is_empty() || pod.id.starts_with(&f.pod_sandbox_id))
            && f.label_selector
                .iter()
                .all(|(k, v)| c.config.labels.get(k) == Some(v));
        if picked {
            out.push(of(engine, &pod, &c).await);
        }
    }
    out
}
