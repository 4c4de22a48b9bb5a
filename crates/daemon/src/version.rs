//! API versions. berthd speaks API 1.24 up to 1.50: the docker 20.10 client (API 1.41) and the
//! docker 28 client (1.50) both negotiate with `/_ping`, whose `Api-Version` header gives the
//! highest version berthd speaks, then prefix their paths with `/vX.Y`. A prefix below the
//! minimum is refused with Docker's message; one above the maximum is refused too.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The highest API version berthd speaks.
pub const MAX_API: (u32, u32) = (1, 50);
/// The lowest.
pub const MIN_API: (u32, u32) = (1, 24);

pub fn fmt((a, b): (u32, u32)) -> String {
    format!("{a}.{b}")
}

/// Parses "1.41".
pub fn parse(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Removes a `/vX.Y` prefix from the request path; a version out of range becomes a request
/// for a path that answers with the error (so the client sees Docker's message).
pub fn strip_prefix(mut req: Request) -> Request {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/v") else {
        return req;
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = parse(ver) else { return req };
    let new_path = if v < MIN_API {
        format!("/__version_error/too-old/{}", fmt(v))
    } else if v > MAX_API {
        format!("/__version_error/too-new/{}", fmt(v))
    } else {
        tail.to_string()
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    if let Ok(uri) = pq.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    req.extensions_mut().insert(ApiVersion(v));
    req
}

/// The API version a request named in its `/vX.Y` prefix (none: the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion(pub (u32, u32));

/// Headers every response carries, as dockerd sends them.
pub async fn add_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_str(&fmt(MAX_API)).expect("ascii"),
    );
    h.insert(
        "Server",
        HeaderValue::from_str(&format!("berth/{} (linux)", env!("CARGO_PKG_VERSION")))
            .expect("ascii"),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    res
}

/// `GET|HEAD /_ping`: "OK", no caching.
pub async fn ping() -> Response {
    let mut r = "OK".into_response();
    r.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r.headers_mut()
        .insert("Pragma", HeaderValue::from_static("no-cache"));
    r.headers_mut()
        .insert("Builder-Version", HeaderValue::from_static("1"));
    r
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Component {
    name: String,
    version: String,
    details: serde_json::Value,
}

/// The `GET /version` document, field for field as dockerd writes it.
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    #[serde(rename = "Platform")]
    platform: serde_json::Value,
    #[serde(rename = "Components")]
    components: Vec<Component>,
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "ApiVersion")]
    api_version: String,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: String,
    #[serde(rename = "GitCommit")]
    git_commit: String,
    #[serde(rename = "GoVersion")]
    go_version: String,
    #[serde(rename = "Os")]
    os: String,
    #[serde(rename = "Arch")]
    arch: String,
    #[serde(rename = "KernelVersion")]
    kernel_version: String,
    #[serde(rename = "BuildTime")]
    build_time: String,
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `GET /version`.
pub async fn version() -> axum::Json<VersionInfo> {
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let v = env!("CARGO_PKG_VERSION").to_string();
    axum::Json(VersionInfo {
        platform: serde_json::json!({"Name": "berth"}),
        components: vec![Component {
            name: "Engine".into(),
            version: v.clone(),
            details: serde_json::json!({
                "ApiVersion": fmt(MAX_API), "MinAPIVersion": fmt(MIN_API), "Arch": arch,
                "Os": "linux", "KernelVersion": kernel(), "Experimental": "false",
                "GitCommit": GIT_COMMIT, "GoVersion": "", "BuildTime": BUILD_TIME
            }),
        }],
        version: v,
        api_version: fmt(MAX_API),
        min_api_version: fmt(MIN_API),
        git_commit: GIT_COMMIT.into(),
        go_version: String::new(),
        os: "linux".into(),
        arch,
        kernel_version: kernel(),
        build_time: BUILD_TIME.into(),
    })
}

/// The commit berthd was built from, and that commit's time (RFC 3339), from build.rs.
const GIT_COMMIT: &str = env!("BERTH_GIT_COMMIT");
const BUILD_TIME: &str = env!("BERTH_BUILD_TIME");

/// The answer to a request whose version prefix is out of range.
pub fn version_error(kind: &str, v: &str) -> crate::ApiError {
    let message = if kind == "too-old" {
        format!("client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version", fmt(MIN_API))
    } else {
        format!(
            "client version {v} is too new. Maximum supported API version is {}",
            fmt(MAX_API)
        )
    };
    crate::ApiError {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_after(p: &str) -> String {
        let req = Request::builder()
            .uri(p)
            .body(axum::body::Body::empty())
            .unwrap();
        strip_prefix(req).uri().to_string()
    }

    #[test]
    fn strips_and_checks_version_prefixes() {
        assert_eq!(path_after("/v1.41/version"), "/version");
        assert_eq!(
            path_after("/v1.50/containers/json?all=1"),
            "/containers/json?all=1"
        );
        assert_eq!(path_after("/_ping"), "/_ping");
        assert_eq!(
            path_after("/v1.12/version"),
            "/__version_error/too-old/1.12"
        );
        assert_eq!(path_after("/v9.0/version"), "/__version_error/too-new/9.0");
        assert_eq!(
            path_after("/volumes"),
            "/volumes",
            "a path starting with v is not a version"
        );
    }
}
