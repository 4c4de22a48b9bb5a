//! One registry: its endpoints (mirrors, then the upstream), requests with authentication,
//! redirects and retries.
//!
//! A request is described by a [`Request`] that can be sent again (its body is bytes or a
//! file range, never a consumed stream), so that a `401` with a challenge, a `5xx`, a `429` or
//! a broken connection is answered by getting a token or waiting with exponential back-off
//! and sending it again. Redirects are followed by the HTTP agent (at most 10, credentials
//! kept only for the same host, so a blob store behind a redirect never sees the token).

use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ureq::http;

use crate::auth::{fetch_token, parse_challenge, Credentials, TokenCache};
use crate::error::{Error, Result};
use crate::hosts::{Endpoint, RegistryOptions};

/// A response with its body still to be read.
pub type Response = http::Response<ureq::Body>;

/// How many times a transient failure is retried.
pub const RETRIES: u32 = 4;

/// The back-off before retry `attempt` (0-based): 200 ms, 400 ms, 800 ms, 1.6 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(5))
}

/// A request body that can be produced again for a retry.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of a file from `offset`.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// One request to a registry.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    /// A path under the endpoint (`/v2/...`) or an absolute URL (an upload's `Location`).
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Token scopes this request needs (`repository:name:pull`).
    pub scopes: Vec<String>,
    /// Whether transient failures are retried (idempotent requests).
    pub retry: bool,
}

impl Request {
    pub fn new(method: http::Method, url: impl Into<String>, scopes: &[String]) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
            scopes: scopes.to_vec(),
            retry: true,
        }
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub fn body(mut self, b: Body) -> Self {
        self.body = b;
        self
    }
}

/// An endpoint with what was learnt about it: its scheme and its auth challenge and tokens.
#[derive(Debug)]
pub struct EndpointState {
    pub ep: Endpoint,
    base: OnceLock<String>,
    auth: Mutex<TokenCache>,
}

impl EndpointState {
    /// `https://host` or `http://host`, once known.
    pub fn base(&self) -> Option<&str> {
        self.base.get().map(String::as_str)
    }
}

/// A client for one registry (`docker.io`, `localhost:5000`).
#[derive(Debug)]
pub struct Client {
    domain: String,
    endpoints: Vec<EndpointState>,
    creds: Option<Credentials>,
}

impl Client {
    pub fn new(opts: &RegistryOptions, domain: &str, creds: Option<Credentials>) -> Result<Self> {
        let endpoints = opts
            .endpoints(domain)?
            .into_iter()
            .map(|ep| {
                let base = OnceLock::new();
                if let Some(u) = &ep.url {
                    let _ = base.set(u.clone());
                }
                EndpointState {
                    ep,
                    base,
                    auth: Mutex::new(TokenCache::default()),
                }
            })
            .collect();
        Ok(Client {
            domain: domain.to_string(),
            endpoints,
            creds,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The registry itself (pushes, logins).
    pub fn upstream(&self) -> &EndpointState {
        self.endpoints.last().expect("the upstream is always there")
    }

    /// Where pulls go, in order: mirrors, then the upstream.
    pub fn pull_endpoints(&self) -> &[EndpointState] {
        &self.endpoints
    }

    /// Finds the scheme of an endpoint that was not configured with one: HTTPS (verified
    /// unless the registry is insecure), then, for insecure and loopback registries, plain
    /// HTTP when the registry answers `/v2/` there.
    pub fn probe(&self, ep: &EndpointState) -> Result<String> {
        if let Some(b) = ep.base.get() {
            return Ok(b.clone());
        }
        let https = format!("https://{}", ep.ep.host);
        let https_err = match ep.ep.agent.get(format!("{https}/v2/")).call() {
            Ok(_) => {
                let _ = ep.base.set(https.clone());
                return Ok(https);
            }
            Err(e) => e.to_string(),
        };
        if ep.ep.http_fallback {
            let http_url = format!("http://{}", ep.ep.host);
            if let Ok(r) = ep.ep.agent.get(format!("{http_url}/v2/")).call() {
                if matches!(r.status().as_u16(), 200 | 401) {
                    let _ = ep.base.set(http_url.clone());
                    return Ok(http_url);
                }
            }
        }
        Err(Error::Transport {
            what: format!("GET {https}/v2/"),
            message: https_err,
        })
    }

    /// The Authorization header for `scopes`, when one is known to be needed.
    fn authorization(&self, ep: &EndpointState, scopes: &[String]) -> Result<Option<String>> {
        let creds = if ep.ep.mirror {
            None
        } else {
            self.creds.as_ref()
        };
        if let Some(c) = creds.filter(|c| !c.registry_token.is_empty()) {
            return Ok(Some(format!("Bearer {}", c.registry_token)));
        }
        let key = scopes.join(" ");
        let challenge = {
            let cache = ep.auth.lock().expect("token cache");
            let Some(ch) = cache.challenge.clone() else {
                return Ok(None);
            };
            if ch.scheme == "bearer" {
                if let Some(t) = cache.get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
            }
            ch
        };
        match challenge.scheme.as_str() {
            "basic" => Ok(creds.map(Credentials::basic)),
            "bearer" => {
                let (token, life) = fetch_token(&ep.ep.agent, &challenge, scopes, creds)?;
                ep.auth
                    .lock()
                    .expect("token cache")
                    .put(&key, token.clone(), life);
                Ok(Some(format!("Bearer {token}")))
            }
            other => Err(Error::Unauthorized(format!(
                "{}: unsupported authentication scheme {other:?}",
                ep.ep.host
            ))),
        }
    }

    fn run(
        &self,
        ep: &EndpointState,
        url: &str,
        req: &Request,
        auth: Option<&str>,
    ) -> Result<Response> {
        let mut b = http::Request::builder().method(req.method.clone()).uri(url);
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        let what = || format!("{} {url}", req.method);
        let transport = |e: ureq::Error| Error::Transport {
            what: what(),
            message: e.to_string(),
        };
        let bad = |e: http::Error| Error::Config(format!("{}: {e}", what()));
        match &req.body {
            Body::Empty => {
                let r = b.body(()).map_err(bad)?;
                ep.ep.agent.run(r).map_err(transport)
            }
            Body::Bytes(v) => {
                let r = b
                    .header("Content-Length", v.len().to_string())
                    .body(v.as_slice())
                    .map_err(bad)?;
                ep.ep.agent.run(r).map_err(transport)
            }
            Body::File { path, offset, len } => {
                let mut f = std::fs::File::open(path)
                    .map_err(crate::error::io(format!("open {}", path.display())))?;
                f.seek(std::io::SeekFrom::Start(*offset))
                    .map_err(crate::error::io(format!("seek {}", path.display())))?;
                let mut limited = f.take(*len);
                let r = b
                    .header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut limited))
                    .map_err(bad)?;
                ep.ep.agent.run(r).map_err(transport)
            }
        }
    }

    /// Sends a request to an endpoint: authenticates on a challenge, retries transient
    /// failures. Statuses other than 401 are returned for the caller to judge.
    pub fn send(&self, ep: &EndpointState, req: &Request) -> Result<Response> {
        let base = self.probe(ep)?;
        let url = if req.url.starts_with("http://") || req.url.starts_with("https://") {
            req.url.clone()
        } else {
            format!("{base}{}", req.url)
        };
        let mut reauthed = false;
        let mut attempt = 0;
        loop {
            let auth = self.authorization(ep, &req.scopes)?;
            let r = self.run(ep, &url, req, auth.as_deref());
            match r {
                Ok(resp) if resp.status().as_u16() == 401 && !reauthed => {
                    let ch = resp
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_challenge);
                    let Some(ch) = ch else {
                        return Err(Error::Unauthorized(
                            "unauthorized: authentication required".into(),
                        ));
                    };
                    if ch.scheme == "basic"
                        && (ep.ep.mirror
                            || self.creds.as_ref().is_none_or(|c| c.username.is_empty()))
                    {
                        return Err(Error::Unauthorized(format!(
                            "{}: no basic auth credentials",
                            self.domain
                        )));
                    }
                    let mut cache = ep.auth.lock().expect("token cache");
                    cache.challenge = Some(ch);
                    // A token for this scope was refused: forget it.
                    cache.forget(&req.scopes.join(" "));
                    reauthed = true;
                }
                Ok(mut resp) if resp.status().as_u16() == 401 || resp.status().as_u16() == 403 => {
                    let msg = error_message(&mut resp);
                    return Err(Error::Unauthorized(if msg.is_empty() {
                        "unauthorized: authentication required".into()
                    } else {
                        msg
                    }));
                }
                Ok(resp)
                    if req.retry
                        && attempt < RETRIES
                        && matches!(resp.status().as_u16(), 408 | 429 | 500 | 502 | 503 | 504) =>
                {
                    tracing::debug!(url, status = resp.status().as_u16(), attempt, "retrying");
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                Ok(resp) => return Ok(resp),
                Err(e) if req.retry && attempt < RETRIES && e.is_transient() => {
                    tracing::debug!(url, error = %e, attempt, "retrying");
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks the credentials against the registry (what `docker login` asks the daemon).
    pub fn login(&self) -> Result<()> {
        let ep = self.upstream();
        let req = Request::new(http::Method::GET, "/v2/", &[]);
        let mut resp = self.send(ep, &req)?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let msg = error_message(&mut resp);
        Err(Error::Status {
            what: format!(
                "login attempt to {}/v2/ failed",
                ep.base().unwrap_or(&ep.ep.host)
            ),
            status,
            message: if msg.is_empty() {
                format!("status {status}")
            } else {
                msg
            },
        })
    }
}

/// The message of a registry error body (`{"errors":[{"code":..,"message":..}]}`) in docker's
/// form: `manifest unknown: manifest unknown`.
pub fn error_message(resp: &mut Response) -> String {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    match serde_json::from_slice::<Errs>(&body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| {
                let code = e.code.replace('_', " ").to_lowercase();
                if e.message.is_empty() {
                    code
                } else {
                    format!("{code}: {}", e.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(300)
            .collect(),
    }
}

/// Turns a non-success response into an error about `what`.
pub fn status_error(what: String, resp: &mut Response) -> Error {
    let status = resp.status().as_u16();
    let msg = error_message(resp);
    let message = if msg.is_empty() {
        format!(
            "{status} {}",
            resp.status().canonical_reason().unwrap_or("")
        )
        .trim()
        .to_string()
    } else {
        msg
    };
    match status {
        404 => Error::NotFound(format!("{what}: {message}")),
        401 | 403 => Error::Unauthorized(format!("{what}: {message}")),
        _ => Error::Status {
            what,
            status,
            message,
        },
    }
}

/// Reads a small body whole, refusing more than `limit` bytes (an endless body is an error,
/// not an out-of-memory).
pub fn read_limited(resp: &mut Response, limit: u64, what: &str) -> Result<Vec<u8>> {
    if let Some(len) = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(Error::Protocol(format!(
                "{what}: {len} bytes, more than the {limit} allowed"
            )));
        }
    }
    let mut out = Vec::new();
    let mut r = resp.body_mut().as_reader().take(limit + 1);
    r.read_to_end(&mut out).map_err(|e| Error::Transport {
        what: format!("read {what}"),
        message: e.to_string(),
    })?;
    if out.len() as u64 > limit {
        return Err(Error::Protocol(format!(
            "{what}: more than the {limit} bytes allowed"
        )));
    }
    Ok(out)
}
