//! Pulling an image: a streaming pipeline.
//!
//! 1. [`resolve`]: the manifest for the reference (tag or digest) from the first endpoint
//!    that has it (mirrors, then the upstream), the platform's manifest when it is an index,
//!    and the config; each verified against its digest and stored in the content store.
//! 2. [`fetch_layers`]: up to `max_concurrent_downloads` layers at once, each on its own
//!    thread, each a single pass over the network stream: the bytes are written to the
//!    layer's ingest (hashed as they go) *and* fed to the decompressor and the safe layer
//!    applier, which unpacks into a private snapshot directory. Download, decompression and
//!    unpacking of all layers overlap; nothing waits for a whole blob to land first.
//!    When the blob ends, its digest and size are verified and it is committed; the
//!    unpacked tree's diff id is checked against the config. Only then does the caller record
//!    the image (layers committed bottom-up by `Store::add_image_prepared`).
//!
//! An interrupted pull leaves each partial blob in its ingest: the next pull replays the bytes
//! already there into the unpacker and continues from the network with a range request.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use berth_image::config::ImageConfig;
use berth_image::content::{ContentStore, Ingest};
use berth_image::store::{LayerSource, Prepared, Unpacker};
use berth_image::{Digest, ImageRef};
use ureq::http::Method;

use crate::blob::RemoteBlob;
use crate::client::{read_limited, status_error, Client, EndpointState, Request};
use crate::error::{Error, Result};
use crate::manifest::{self, Document, Manifest, Platform};
use crate::progress::{Progress, Sink, Throttle};

/// A resolved image: everything but its layers is in the content store.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub reference: ImageRef,
    /// The digest of the document the reference names (an index or a manifest): what
    /// `RepoDigests` and `docker pull` print.
    pub repo_digest: Digest,
    /// The platform's manifest.
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<LayerSource>,
    /// Each layer blob's size.
    pub sizes: Vec<u64>,
    /// Index into the client's pull endpoints of the one that answered.
    pub endpoint: usize,
}

/// What a layer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Unpacked and its blob stored: nothing to do.
    Present,
    /// Unpacked, but the blob is missing: download it only.
    BlobOnly,
    /// Download and unpack.
    Unpack,
}

/// What a manifest URL names for `r`: its digest, else its tag, else `latest`.
pub fn tag_or_digest(r: &ImageRef) -> String {
    match (&r.digest, &r.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => berth_image::reference::DEFAULT_TAG.to_string(),
    }
}

fn scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull")]
}

/// Fetches a manifest or index by tag or digest; returns (content type, bytes, digest).
fn get_manifest(
    client: &Client,
    ep: &EndpointState,
    repo: &str,
    reference: &str,
    display: &str,
) -> Result<(String, Vec<u8>, Digest)> {
    let req = Request::new(
        Method::GET,
        format!("/v2/{repo}/manifests/{reference}"),
        &scope(repo),
    )
    .header("Accept", manifest::ACCEPT);
    let mut resp = client.send(ep, &req)?;
    if resp.status().as_u16() == 404 {
        let msg = crate::client::error_message(&mut resp);
        return Err(Error::NotFound(format!(
            "manifest for {display} not found: {}",
            if msg.is_empty() {
                "manifest unknown".into()
            } else {
                msg
            }
        )));
    }
    if !resp.status().is_success() {
        return Err(status_error(format!("manifest for {display}"), &mut resp));
    }
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw = read_limited(
        &mut resp,
        manifest::MAX_MANIFEST,
        &format!("manifest for {display}"),
    )?;
    let actual = Digest::of(&raw);
    if let Ok(want) = Digest::parse(reference) {
        if want != actual {
            return Err(Error::Image(berth_image::Error::DigestMismatch {
                what: format!("manifest for {display}"),
                expected: want.to_string(),
                actual: actual.to_string(),
            }));
        }
    } else if let Some(h) = header_digest.as_deref().and_then(|h| Digest::parse(h).ok()) {
        if h != actual {
            return Err(Error::Protocol(format!(
                "manifest for {display}: Docker-Content-Digest {h} does not match its content ({actual})"
            )));
        }
    }
    Ok((ct, raw, actual))
}

/// The document a reference names (manifest or index), from the first endpoint that has
/// it: (content type, bytes, digest). Nothing is stored.
pub fn head_document(client: &Client, r: &ImageRef) -> Result<(String, Vec<u8>, Digest)> {
    let reference = tag_or_digest(r);
    let mut last = None;
    for ep in client.pull_endpoints() {
        match get_manifest(client, ep, &r.path, &reference, &r.familiar()) {
            Ok(x) => return Ok(x),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Config("no registry endpoints".into())))
}

/// Every tag of a repository (`GET /v2/<name>/tags/list`, following `Link` pages).
pub fn list_tags(client: &Client, repo: &str) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let mut last = None;
    for ep in client.pull_endpoints() {
        let mut url = format!("/v2/{repo}/tags/list");
        let mut all = Vec::new();
        let r: Result<()> = (|| {
            for _ in 0..1000 {
                let req = Request::new(Method::GET, url.clone(), &scope(repo));
                let mut resp = client.send(ep, &req)?;
                if !resp.status().is_success() {
                    return Err(status_error(format!("tags of {repo}"), &mut resp));
                }
                let next = resp
                    .headers()
                    .get("link")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| l.split(';').next())
                    .map(|l| {
                        l.trim()
                            .trim_start_matches('<')
                            .trim_end_matches('>')
                            .to_string()
                    });
                let raw = read_limited(
                    &mut resp,
                    manifest::MAX_MANIFEST,
                    &format!("tags of {repo}"),
                )?;
                let t: Tags = serde_json::from_slice(&raw)
                    .map_err(|e| Error::Protocol(format!("tags of {repo}: {e}")))?;
                all.extend(t.tags.unwrap_or_default());
                match next {
                    Some(n) if !n.is_empty() => url = n,
                    _ => return Ok(()),
                }
            }
            Err(Error::Protocol(format!("tags of {repo}: too many pages")))
        })();
        match r {
            Ok(()) => return Ok(all),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Config("no registry endpoints".into())))
}

/// Fetches a small blob (a config), verifying digest and size, into the content store.
pub fn small_blob(
    client: &Client,
    ep: &EndpointState,
    repo: &str,
    d: &manifest::Descriptor,
    content: &ContentStore,
) -> Result<()> {
    if content.exists(&d.digest) {
        return Ok(());
    }
    if d.size > manifest::MAX_CONFIG {
        return Err(Error::Protocol(format!(
            "config {}: {} bytes, more than the {} allowed",
            d.digest,
            d.size,
            manifest::MAX_CONFIG
        )));
    }
    let req = Request::new(
        Method::GET,
        format!("/v2/{repo}/blobs/{}", d.digest),
        &scope(repo),
    );
    let mut resp = client.send(ep, &req)?;
    if !resp.status().is_success() {
        return Err(status_error(format!("blob {}", d.digest), &mut resp));
    }
    let raw = read_limited(&mut resp, d.size, &format!("blob {}", d.digest))?;
    let got = Digest::of(&raw);
    if got != d.digest {
        return Err(Error::Image(berth_image::Error::DigestMismatch {
            what: format!("blob {}", d.digest),
            expected: d.digest.to_string(),
            actual: got.to_string(),
        }));
    }
    content.put(&raw)?;
    Ok(())
}

/// Resolves `r` for `platform`: manifest (and index), config, layer list.
pub fn resolve(
    client: &Client,
    content: &ContentStore,
    r: &ImageRef,
    platform: &Platform,
) -> Result<Resolved> {
    let reference = tag_or_digest(r);
    let display = r.familiar();
    let mut last_err = None;
    for (i, ep) in client.pull_endpoints().iter().enumerate() {
        match resolve_at(client, ep, content, r, &reference, &display, platform) {
            Ok(mut res) => {
                res.endpoint = i;
                return Ok(res);
            }
            Err(e) if ep.ep.mirror => {
                tracing::info!(mirror = %ep.ep.host, error = %e, "mirror failed; trying the next endpoint");
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::Config("no registry endpoints".into())))
}

fn resolve_at(
    client: &Client,
    ep: &EndpointState,
    content: &ContentStore,
    r: &ImageRef,
    reference: &str,
    display: &str,
    platform: &Platform,
) -> Result<Resolved> {
    let repo = r.path.as_str();
    let (ct, raw, repo_digest) = get_manifest(client, ep, repo, reference, display)?;
    let mut doc = manifest::parse(&ct, &raw, display)?;
    content.put(&raw)?;
    let mut manifest_digest = repo_digest.clone();
    if let Document::Index(index) = &doc {
        let pick = manifest::choose(index, platform).ok_or_else(|| {
            Error::NotFound(format!(
                "no matching manifest for {platform} in the manifest list entries"
            ))
        })?;
        let (ct, raw, d) = get_manifest(client, ep, repo, pick.digest.as_str(), display)?;
        if raw.len() as u64 != pick.size {
            return Err(Error::Protocol(format!(
                "manifest {d}: {} bytes, the index says {}",
                raw.len(),
                pick.size
            )));
        }
        let inner = manifest::parse(&ct, &raw, display)?;
        if matches!(inner, Document::Index(_)) {
            return Err(Error::Protocol(format!(
                "manifest {d}: an index inside an index is not supported"
            )));
        }
        content.put(&raw)?;
        manifest_digest = d;
        doc = inner;
    }
    let Document::Manifest(m) = doc else {
        unreachable!("indexes were resolved above")
    };
    let Manifest { config, layers, .. } = m;
    small_blob(client, ep, repo, &config, content)?;
    let cfg = ImageConfig::parse(&content.read(&config.digest)?)?;
    if cfg.rootfs.diff_ids.len() != layers.len() {
        return Err(Error::Protocol(format!(
            "manifest {manifest_digest}: {} layers, its config has {} diff ids",
            layers.len(),
            cfg.rootfs.diff_ids.len()
        )));
    }
    Ok(Resolved {
        reference: r.clone(),
        repo_digest,
        manifest: manifest_digest,
        config: config.digest,
        sizes: layers.iter().map(|l| l.size).collect(),
        layers: layers
            .iter()
            .zip(&cfg.rootfs.diff_ids)
            .map(|(l, diff_id)| LayerSource {
                blob: l.digest.clone(),
                media_type: if l.media_type.is_empty() {
                    manifest::OCI_LAYER_GZIP.to_string()
                } else {
                    l.media_type.clone()
                },
                diff_id: diff_id.clone(),
            })
            .collect(),
        endpoint: 0,
    })
}

/// Reads a resumed ingest's bytes first, then the network; network bytes are written to the
/// ingest as they pass (the consumer sees every byte of the blob exactly once).
struct Tee<'a, 'b> {
    prefix: Option<std::io::Take<std::fs::File>>,
    remote: RemoteBlob<'a>,
    ingest: &'b mut Ingest,
    id: &'a str,
    total: u64,
    done: u64,
    throttle: Throttle,
    progress: Sink<'a>,
}

impl Read for Tee<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(p) = self.prefix.as_mut() {
            let n = p.read(buf)?;
            if n > 0 {
                self.done += n as u64;
                return Ok(n);
            }
            self.prefix = None;
        }
        let n = self.remote.read(buf)?;
        self.ingest.write_all(&buf[..n])?;
        self.done += n as u64;
        if self.throttle.due(self.done == self.total) {
            (self.progress)(Progress::bytes(
                self.id,
                "Downloading",
                self.done,
                self.total,
            ));
        }
        Ok(n)
    }
}

/// Blobs being downloaded in this process: a second pull of the same layer waits for the
/// first (they would otherwise append to one ingest) and then unpacks the stored blob.
static IN_FLIGHT: Mutex<Vec<String>> = Mutex::new(Vec::new());
static IN_FLIGHT_DONE: std::sync::Condvar = std::sync::Condvar::new();

/// The right to download one blob, held for the download's length.
struct Claim(String);

impl Claim {
    fn take(d: &Digest) -> Claim {
        let mut v = IN_FLIGHT.lock().expect("in-flight blobs");
        while v.iter().any(|x| x == d.as_str()) {
            v = IN_FLIGHT_DONE.wait(v).expect("in-flight blobs");
        }
        v.push(d.to_string());
        Claim(d.to_string())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut v = IN_FLIGHT.lock().expect("in-flight blobs");
        v.retain(|x| *x != self.0);
        IN_FLIGHT_DONE.notify_all();
    }
}

/// Checks an unpacked layer's diff id, discarding it when wrong.
fn check_diff_id(layer: &LayerSource, p: Prepared) -> Result<Prepared> {
    if p.diff_id() == &layer.diff_id {
        return Ok(p);
    }
    let e = berth_image::Error::DigestMismatch {
        what: format!("layer {}", layer.blob),
        expected: layer.diff_id.to_string(),
        actual: p.diff_id().to_string(),
    };
    p.discard();
    Err(e.into())
}

/// Downloads one layer, unpacking it on the way when asked.
#[allow(clippy::too_many_arguments)]
fn fetch_one(
    client: &Client,
    ep: &EndpointState,
    repo: &str,
    content: &ContentStore,
    unpacker: Option<&Unpacker>,
    layer: &LayerSource,
    size: u64,
    unpack: bool,
    progress: Sink<'_>,
    cancel: [&AtomicBool; 2],
) -> Result<Option<Prepared>> {
    let id = &layer.blob.hex()[..12];
    let name = format!("pull-{}", layer.blob.hex());
    let _claim = Claim::take(&layer.blob);
    if content.exists(&layer.blob) {
        // Stored already (by a concurrent pull, or before an image was removed).
        (progress)(Progress::layer(id, "Download complete"));
        return match unpacker.filter(|_| unpack) {
            Some(u) => {
                let f = content.open_blob(&layer.blob)?;
                let p = u.prepare(&layer.blob, std::io::BufReader::with_capacity(1 << 20, f))?;
                check_diff_id(layer, p).map(Some)
            }
            None => Ok(None),
        };
    }
    for attempt in 0..2 {
        let mut ingest = content.writer(&name, Some(&layer.blob), Some(size))?;
        let offset = ingest.offset();
        let prefix = if offset > 0 {
            Some(ingest.read_back()?.take(offset))
        } else {
            None
        };
        let remote = RemoteBlob::new(client, ep, repo, &layer.blob, size, offset, cancel);
        let mut tee = Tee {
            prefix,
            remote,
            ingest: &mut ingest,
            id,
            total: size,
            done: 0,
            throttle: Throttle::new(),
            progress,
        };
        let prepared = if let Some(unpacker) = unpacker.filter(|_| unpack) {
            match unpacker.prepare(&layer.blob, &mut tee) {
                Ok(p) => Some(p),
                Err(e) => {
                    if let Some(net) = tee.remote.error.take() {
                        return Err(net);
                    }
                    if e.is_out_of_space() {
                        // A full disk: the partial blob would only keep it full.
                        drop(tee);
                        ingest.discard();
                        return Err(Error::Image(e));
                    }
                    // Corrupt data usually means a blob that is not what its digest says:
                    // read the rest and report that, the root cause, when it is so.
                    let drained = std::io::copy(&mut tee, &mut std::io::sink()).is_ok();
                    drop(tee);
                    if drained {
                        if let Err(d @ berth_image::Error::DigestMismatch { .. }) = ingest.commit()
                        {
                            return Err(d.into());
                        }
                    }
                    return Err(Error::Image(e));
                }
            }
        } else {
            None
        };
        // The applier may stop at the tar's end: the rest of the blob is hashed too.
        let drained = std::io::copy(&mut tee, &mut std::io::sink());
        if let Err(e) = drained {
            if let Some(p) = prepared {
                p.discard();
            }
            if berth_image::error::is_out_of_space(&e) {
                drop(tee);
                ingest.discard();
                return Err(Error::Io {
                    context: format!("download blob {}", layer.blob),
                    source: e,
                });
            }
            return Err(tee.remote.error.take().unwrap_or(Error::Io {
                context: format!("download blob {}", layer.blob),
                source: e,
            }));
        }
        (progress)(Progress::layer(id, "Verifying Checksum"));
        match ingest.commit() {
            Ok(_) => {}
            Err(e @ berth_image::Error::DigestMismatch { .. }) if offset > 0 && attempt == 0 => {
                // The bytes kept from an earlier attempt were bad: start over, once.
                tracing::warn!(blob = %layer.blob, error = %e, "discarding a resumed download");
                if let Some(p) = prepared {
                    p.discard();
                }
                continue;
            }
            Err(e) => {
                if let Some(p) = prepared {
                    p.discard();
                }
                return Err(e.into());
            }
        }
        (progress)(Progress::layer(id, "Download complete"));
        return match prepared {
            Some(p) => check_diff_id(layer, p).map(Some),
            None => Ok(None),
        };
    }
    unreachable!("the loop returns or continues once")
}

/// Downloads (and, with an unpacker, unpacks) the layers that need it, `concurrency` at a
/// time. Without an unpacker (the copy-based storage driver) blobs are only downloaded. On the first
/// failure the other downloads stop; every unpacked directory is then discarded and partial
/// blobs stay in their ingests for the next attempt.
#[allow(clippy::too_many_arguments)]
pub fn fetch_layers(
    client: &Client,
    content: &ContentStore,
    unpacker: Option<&Unpacker>,
    res: &Resolved,
    needs: &[Need],
    concurrency: usize,
    progress: Sink<'_>,
    cancel: &AtomicBool,
) -> Result<Vec<Prepared>> {
    let ep = &client.pull_endpoints()[res.endpoint];
    let repo = res.reference.path.as_str();
    let mut todo = Vec::new();
    for (i, l) in res.layers.iter().enumerate() {
        let id = &l.blob.hex()[..12];
        match needs.get(i).copied().unwrap_or(Need::Unpack) {
            Need::Present => (progress)(Progress::layer(id, "Already exists")),
            n => {
                (progress)(Progress::layer(id, "Pulling fs layer"));
                todo.push((i, n));
            }
        }
    }
    let workers = concurrency.max(1);
    for (i, _) in todo.iter().skip(workers) {
        (progress)(Progress::layer(&res.layers[*i].blob.hex()[..12], "Waiting"));
    }
    let queue = Mutex::new(todo.into_iter());
    let done: Mutex<Vec<Prepared>> = Mutex::new(Vec::new());
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                    break;
                }
                let Some((i, need)) = queue.lock().expect("queue").next() else {
                    break;
                };
                let l = &res.layers[i];
                let r = fetch_one(
                    client,
                    ep,
                    repo,
                    content,
                    unpacker,
                    l,
                    res.sizes[i],
                    need == Need::Unpack,
                    progress,
                    [&stop, cancel],
                );
                match r {
                    Ok(p) => {
                        (progress)(Progress::layer(&l.blob.hex()[..12], "Pull complete"));
                        done.lock().expect("done").extend(p);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        let mut slot = first_err.lock().expect("err");
                        if slot.is_none() || matches!(*slot, Some(Error::Cancelled)) {
                            *slot = Some(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    let prepared = done.into_inner().expect("done");
    let err = first_err.into_inner().expect("err");
    if cancel.load(Ordering::Relaxed) && err.is_none() {
        for p in prepared {
            p.discard();
        }
        return Err(Error::Cancelled);
    }
    if let Some(e) = err {
        for p in prepared {
            p.discard();
        }
        return Err(e);
    }
    Ok(prepared)
}
