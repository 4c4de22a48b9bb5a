//! Shell completion of object names (containers, images, volumes, networks), asked of berthd
//! while the user presses TAB: clap_complete's dynamic completion (`COMPLETE=bash berth …`,
//! registered by `berth completion bash`). The daemon is the one `BERTH_HOST`, `DOCKER_HOST`
//! or the default socket names; when it does not answer, names are simply not offered.

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use serde_json::Value;

/// `GET path` of the daemon, blocking (completion runs before any runtime exists).
fn get(path: &str) -> Value {
    let host = std::env::var("BERTH_HOST")
        .or_else(|_| std::env::var("DOCKER_HOST"))
        .unwrap_or_else(|_| crate::DEFAULT_HOST.to_string());
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Value::Null;
    };
    rt.block_on(async {
        let Ok(api) = crate::api::Api::connect(&host).await else {
            return Value::Null;
        };
        api.get(path).await.unwrap_or(Value::Null)
    })
}

fn candidates(names: impl Iterator<Item = String>) -> Vec<CompletionCandidate> {
    let mut v: Vec<String> = names.filter(|n| !n.is_empty()).collect();
    v.sort();
    v.dedup();
    v.into_iter().map(CompletionCandidate::new).collect()
}

fn container_names() -> Vec<CompletionCandidate> {
    let list = get("/containers/json?all=1");
    candidates(list.as_array().into_iter().flatten().flat_map(|c| {
        c["Names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(|n| n.trim_start_matches('/').to_string()))
            .collect::<Vec<_>>()
    }))
}

fn image_names() -> Vec<CompletionCandidate> {
    let list = get("/images/json");
    candidates(list.as_array().into_iter().flatten().flat_map(|i| {
        i["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .filter(|t| t != "<none>:<none>")
            .collect::<Vec<_>>()
    }))
}

fn volume_names() -> Vec<CompletionCandidate> {
    let v = get("/volumes");
    candidates(
        v["Volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["Name"].as_str().map(str::to_string)),
    )
}

fn network_names() -> Vec<CompletionCandidate> {
    let list = get("/networks");
    candidates(
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["Name"].as_str().map(str::to_string)),
    )
}

fn object_names() -> Vec<CompletionCandidate> {
    let mut v = container_names();
    v.extend(image_names());
    v
}

pub fn containers() -> ArgValueCandidates {
    ArgValueCandidates::new(container_names)
}
pub fn images() -> ArgValueCandidates {
    ArgValueCandidates::new(image_names)
}
pub fn volumes() -> ArgValueCandidates {
    ArgValueCandidates::new(volume_names)
}
pub fn networks() -> ArgValueCandidates {
    ArgValueCandidates::new(network_names)
}
/// `inspect`: containers and images.
pub fn objects() -> ArgValueCandidates {
    ArgValueCandidates::new(object_names)
}
