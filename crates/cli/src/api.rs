//! A negotiated API session: paths under `/vX.Y`, JSON in and out, daemon errors in Docker's
//! words (`Error response from daemon: ...`), streams and hijacked connections.

use anyhow::Context as _;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::client::Client;

/// An error the daemon answered with.
#[derive(Debug)]
pub struct DaemonError {
    pub status: StatusCode,
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

/// A client with a negotiated API version.
#[derive(Debug, Clone)]
pub struct Api {
    pub client: Client,
    pub version: String,
}

impl Api {
    pub async fn connect(host: &str) -> anyhow::Result<Api> {
        let client = Client::new(host)?;
        let version = client.negotiate().await?;
        Ok(Api { client, version })
    }

    fn path(&self, p: &str) -> String {
        format!("/v{}{}", self.version, p)
    }

    async fn check(
        res: hyper::Response<hyper::body::Incoming>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        if res.status().is_success()
            || res.status() == StatusCode::SWITCHING_PROTOCOLS
            || res.status() == StatusCode::NOT_MODIFIED
        {
            return Ok(res);
        }
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let message = v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        Err(DaemonError { status, message }.into())
    }

    /// A request whose answer is read whole; returns the status and body.
    pub async fn call(
        &self,
        method: Method,
        p: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let body = body.map(|b| (serde_json::to_vec(b).expect("json"), "application/json"));
        let res = self.client.send(method, &self.path(p), body, false).await?;
        let res = Self::check(res).await?;
        let status = res.status();
        Ok((status, res.into_body().collect().await?.to_bytes()))
    }

    /// A request answered with JSON.
    pub async fn json(
        &self,
        method: Method,
        p: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (_, b) = self.call(method, p, body).await?;
        if b.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&b).context("the daemon's answer is not JSON")
    }

    pub async fn get(&self, p: &str) -> anyhow::Result<Value> {
        self.json(Method::GET, p, None).await
    }

    /// A request with a raw body (an archive).
    pub async fn send_raw(
        &self,
        method: Method,
        p: &str,
        data: Vec<u8>,
        ct: &str,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let res = self
            .client
            .send(method, &self.path(p), Some((data, ct)), false)
            .await?;
        Self::check(res).await
    }

    /// A request whose body is streamed (logs, events, wait).
    pub async fn stream(
        &self,
        method: Method,
        p: &str,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let res = self.client.send(method, &self.path(p), None, false).await?;
        Self::check(res).await
    }

    /// A streamed request with extra headers and an optional JSON body (pull, push).
    pub async fn stream_with(
        &self,
        method: Method,
        p: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let body = body.map(|b| (serde_json::to_vec(b).expect("json"), "application/json"));
        let res = self
            .client
            .send_with(method, &self.path(p), body, false, headers)
            .await?;
        Self::check(res).await
    }

    /// A hijacked connection (attach).
    pub async fn hijack(
        &self,
        p: &str,
    ) -> anyhow::Result<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>> {
        self.hijack_with(p, None).await
    }

    /// A hijacked connection with a JSON request body (exec start).
    pub async fn hijack_with(
        &self,
        p: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>> {
        let body = body.map(|b| (serde_json::to_vec(b).expect("json"), "application/json"));
        let res = self
            .client
            .send(Method::POST, &self.path(p), body, true)
            .await?;
        let res = Self::check(res).await?;
        let up = hyper::upgrade::on(res)
            .await
            .context("the daemon did not hijack the connection")?;
        Ok(hyper_util::rt::TokioIo::new(up))
    }
}

/// Calls `f` with each JSON line of a streamed answer (events, builds), as it arrives, until
/// the stream ends or `f` returns false. Lines that are not JSON are skipped.
pub async fn json_lines(
    res: hyper::Response<hyper::body::Incoming>,
    mut f: impl FnMut(Value) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut body = res.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if !f(v)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Query-string escaping for names and values.
pub fn q(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Streams a response body into a file or stdout.
pub async fn body_to(
    res: hyper::Response<hyper::body::Incoming>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    use std::io::Write;
    let mut w: Box<dyn Write> = match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| anyhow::anyhow!("open {}: {e}", p.display()))?,
        )),
        None => {
            if crate::tty::size().is_some() {
                anyhow::bail!(
                    "refusing to write a tar archive to a terminal: use -o or redirect the output"
                );
            }
            Box::new(std::io::stdout())
        }
    };
    let mut body = res.into_body();
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame?.into_data() {
            w.write_all(&d)?;
        }
    }
    w.flush()?;
    Ok(())
}
