//! The Engine API client: HTTP/1.1 over a unix socket or TCP with TLS (hyper; the connection
//! is `transport`'s), with Docker's version
//! negotiation: `/_ping` reports the daemon's highest API version, and requests are then
//! prefixed with the lower of the daemon's and the client's.

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// The newest API version this client speaks.
pub const CLIENT_API: &str = "1.50";

/// A connection target.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
    pub api_version: Option<String>,
}

impl Client {
    pub fn new(host: &str) -> anyhow::Result<Self> {
        let ok = host.strip_prefix("unix://").is_some_and(|p| !p.is_empty())
            || host.strip_prefix("tcp://").is_some_and(|p| !p.is_empty());
        if !ok {
            anyhow::bail!("invalid host {host:?}: want unix:///path or tcp://host:port");
        }
        Ok(Client {
            host: host.to_string(),
        })
    }

    /// One request on a fresh connection.
    pub async fn request(&self, method: Method, path: &str) -> anyhow::Result<Response> {
        let res = self.send(method, path, None, false).await?;
        let status = res.status();
        let api_version = res
            .headers()
            .get("Api-Version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = res.into_body().collect().await?.to_bytes();
        Ok(Response {
            status,
            body,
            api_version,
        })
    }

    /// Sends a request (with a JSON or raw body) and returns the response as it starts, for
    /// streaming or hijacking (`upgrade` asks for Docker's `Upgrade: tcp`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
        upgrade: bool,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        self.send_with(method, path, body, upgrade, &[]).await
    }

    /// [`Client::send`] with extra headers (`X-Registry-Auth`).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
        upgrade: bool,
        headers: &[(&str, String)],
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let stream = crate::transport::connect(&self.host).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "berth")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        if upgrade {
            req = req.header("Connection", "Upgrade").header("Upgrade", "tcp");
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let body = match body {
            Some((data, ct)) => {
                req = req.header("Content-Type", ct);
                Full::new(Bytes::from(data))
            }
            None => Full::new(Bytes::new()),
        };
        let _ = Empty::<Bytes>::new();
        Ok(sender.send_request(req.body(body)?).await?)
    }

    /// The API version to use: min(daemon's, client's).
    pub async fn negotiate(&self) -> anyhow::Result<String> {
        let ping = self.request(Method::GET, "/_ping").await?;
        Ok(match ping.api_version {
            Some(v) if version_lt(&v, CLIENT_API) => v,
            _ => CLIENT_API.to_string(),
        })
    }

    /// GET `path` under the negotiated version; a non-2xx status becomes the daemon's message.
    pub async fn get_json(&self, version: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        let res = self
            .request(Method::GET, &format!("/v{version}{path}"))
            .await?;
        let v: serde_json::Value =
            serde_json::from_slice(&res.body).unwrap_or(serde_json::Value::Null);
        if !res.status.is_success() {
            let msg = v["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&res.body).into_owned());
            anyhow::bail!("Error response from daemon: {msg}");
        }
        Ok(v)
    }
}

/// Compares "1.41" < "1.50" numerically.
pub fn version_lt(a: &str, b: &str) -> bool {
    let p = |v: &str| -> (u32, u32) {
        let (x, y) = v.split_once('.').unwrap_or((v, "0"));
        (x.parse().unwrap_or(0), y.parse().unwrap_or(0))
    };
    p(a) < p(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_lt("1.9", "1.41"));
        assert!(version_lt("1.41", "1.50"));
        assert!(!version_lt("1.50", "1.50"));
        assert!(Client::new("tcp://x:1").is_ok());
        assert!(Client::new("ssh://x").is_err());
        assert!(Client::new("unix://").is_err());
    }
}
