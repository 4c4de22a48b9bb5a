//! A blob download as a [`Read`] stream that survives broken connections.
//!
//! The stream never yields more than the descriptor's size (an endless or oversized body is
//! cut there, and the digest check that follows refuses it). When the connection breaks, ends
//! early or the registry answers a transient error, the stream waits with back-off and asks
//! again with `Range: bytes=<offset>-`, so the consumer (the layer applier) never notices; a
//! registry that ignores the range and answers 200 has the bytes already read skipped.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_image::Digest;
use ureq::http::Method;

use crate::client::{backoff, status_error, Client, EndpointState, Request, RETRIES};
use crate::error::{Error, Result};

/// Progress since the last failure that earns a fresh set of retries.
const PROGRESS_RESETS_RETRIES: u64 = 1 << 20;

/// A remote blob from `start` to its end.
pub struct RemoteBlob<'a> {
    client: &'a Client,
    ep: &'a EndpointState,
    repo: &'a str,
    digest: &'a Digest,
    size: u64,
    pos: u64,
    body: Option<ureq::BodyReader<'static>>,
    failures: u32,
    pos_at_failure: u64,
    cancel: [&'a AtomicBool; 2],
    /// The error behind the last failed read, for a clearer message than the io::Error the
    /// consumer sees.
    pub error: Option<Error>,
}

impl std::fmt::Debug for RemoteBlob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBlob")
            .field("digest", &self.digest)
            .field("pos", &self.pos)
            .field("size", &self.size)
            .finish()
    }
}

impl<'a> RemoteBlob<'a> {
    pub fn new(
        client: &'a Client,
        ep: &'a EndpointState,
        repo: &'a str,
        digest: &'a Digest,
        size: u64,
        start: u64,
        cancel: [&'a AtomicBool; 2],
    ) -> Self {
        RemoteBlob {
            client,
            ep,
            repo,
            digest,
            size,
            pos: start,
            body: None,
            failures: 0,
            pos_at_failure: start,
            cancel,
            error: None,
        }
    }

    /// Bytes of the blob consumed so far (including where it started).
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn open(&mut self) -> Result<()> {
        let scope = vec![format!("repository:{}:pull", self.repo)];
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{}/blobs/{}", self.repo, self.digest),
            &scope,
        );
        if self.pos > 0 {
            req = req.header("Range", format!("bytes={}-", self.pos));
        }
        let mut resp = self.client.send(self.ep, &req)?;
        let what = || format!("blob {}", self.digest);
        let header = |resp: &crate::client::Response, name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let len: Option<u64> = header(&resp, "content-length").and_then(|v| v.parse().ok());
        match resp.status().as_u16() {
            200 => {
                if let Some(len) = len.filter(|l| *l != self.size) {
                    return Err(Error::Protocol(format!(
                        "{}: the registry sends {len} bytes, the manifest says {}",
                        what(),
                        self.size
                    )));
                }
                let mut body = resp.into_body().into_reader();
                if self.pos > 0 {
                    // The range was ignored: skip what is already here.
                    let skipped =
                        std::io::copy(&mut (&mut body).take(self.pos), &mut std::io::sink())
                            .map_err(|e| Error::Transport {
                                what: what(),
                                message: e.to_string(),
                            })?;
                    if skipped != self.pos {
                        return Err(Error::Transport {
                            what: what(),
                            message: format!(
                                "connection closed after {skipped} of {} bytes",
                                self.size
                            ),
                        });
                    }
                }
                self.body = Some(body);
                Ok(())
            }
            206 => {
                // Content-Range: bytes <start>-<end>/<total>
                let range = header(&resp, "content-range").unwrap_or_default();
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(self.pos) {
                    return Err(Error::Protocol(format!(
                        "{}: asked for bytes from {}, got Content-Range {range:?}",
                        what(),
                        self.pos
                    )));
                }
                if let Some(total) = range.rsplit('/').next().and_then(|t| t.parse::<u64>().ok()) {
                    if total != self.size {
                        return Err(Error::Protocol(format!(
                            "{}: the registry has {total} bytes, the manifest says {}",
                            what(),
                            self.size
                        )));
                    }
                }
                self.body = Some(resp.into_body().into_reader());
                Ok(())
            }
            416 => Err(Error::Protocol(format!(
                "{}: the registry has fewer bytes than the manifest's {}",
                what(),
                self.size
            ))),
            _ => Err(status_error(what(), &mut resp)),
        }
    }

    /// Records a failure; `Ok` means try again.
    fn fail(&mut self, e: Error) -> std::io::Result<()> {
        self.body = None;
        if self.pos - self.pos_at_failure >= PROGRESS_RESETS_RETRIES {
            self.failures = 0;
        }
        self.pos_at_failure = self.pos;
        if !e.is_transient() || self.failures >= RETRIES {
            let msg = e.to_string();
            self.error = Some(e);
            return Err(std::io::Error::other(msg));
        }
        tracing::debug!(blob = %self.digest, pos = self.pos, error = %e, "blob download interrupted; resuming");
        std::thread::sleep(backoff(self.failures));
        self.failures += 1;
        Ok(())
    }
}

impl Read for RemoteBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.cancel.iter().any(|c| c.load(Ordering::Relaxed)) {
                self.error = Some(Error::Cancelled);
                return Err(std::io::Error::other("cancelled"));
            }
            if self.body.is_none() {
                if let Err(e) = self.open() {
                    self.fail(e)?;
                    continue;
                }
            }
            let want = buf.len().min((self.size - self.pos) as usize);
            let body = self.body.as_mut().expect("opened above");
            match body.read(&mut buf[..want]) {
                Ok(0) => {
                    let e = Error::Transport {
                        what: format!("blob {}", self.digest),
                        message: format!(
                            "connection closed after {} of {} bytes",
                            self.pos, self.size
                        ),
                    };
                    self.fail(e)?;
                }
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e = Error::Transport {
                        what: format!("blob {}", self.digest),
                        message: e.to_string(),
                    };
                    self.fail(e)?;
                }
            }
        }
    }
}
