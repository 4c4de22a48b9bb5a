//! Pushing an image: each blob the registry lacks is uploaded (after a `HEAD` check and, when
//! the blob is known to be in another repository of the same registry, a cross-repository
//! mount), layers `max_concurrent_uploads` at a time, then the config, then the manifest.
//!
//! Blobs up to `chunk_size` go up in one `PUT`; larger ones as a sequence of `PATCH` chunks
//! with `Content-Range` and a closing `PUT ?digest=`. A failed upload is started again from a
//! new session (at most [`UPLOAD_ATTEMPTS`] times), since a half-written session cannot be
//! trusted.
//!
//! The manifest pushed is the one the image came with, byte for byte, when it still describes
//! the image (so a pulled image pushed elsewhere keeps its digest); otherwise one is written:
//! Docker schema 2 when every layer has a Docker media type, OCI otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use berth_image::content::ContentStore;
use berth_image::{Digest, ImageRef};
use ureq::http::Method;

use crate::client::{status_error, Body, Client, EndpointState, Request};
use crate::error::{Error, Result};
use crate::manifest::{self, Document};
use crate::progress::{Progress, Sink};

/// How many times one blob's upload is started.
pub const UPLOAD_ATTEMPTS: u32 = 3;

/// A layer to push.
#[derive(Debug, Clone)]
pub struct PushLayer {
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
}

/// An image to push.
#[derive(Debug, Clone)]
pub struct PushImage {
    pub config: Digest,
    pub layers: Vec<PushLayer>,
    /// The manifest the image came with, if any.
    pub manifest: Option<Digest>,
    /// Repositories on the same registry known to hold its blobs (cross-repository mounts).
    pub mount_from: Vec<String>,
}

/// Push settings.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    pub concurrency: usize,
    /// Blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            concurrency: 5,
            chunk_size: 64 << 20,
        }
    }
}

/// What was pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
}

/// How a blob got there.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Exists,
    Mounted(String),
    Uploaded,
}

/// The manifest to push for `img`: (bytes, media type).
pub fn manifest_for(content: &ContentStore, img: &PushImage) -> Result<(Vec<u8>, String)> {
    if let Some(m) = &img.manifest {
        if let Ok(raw) = content.read(m) {
            if let Ok(Document::Manifest(doc)) = manifest::parse("", &raw, m.as_str()) {
                let same = doc.config.digest == img.config
                    && doc.layers.len() == img.layers.len()
                    && doc
                        .layers
                        .iter()
                        .zip(&img.layers)
                        .all(|(a, b)| a.digest == b.blob && a.size == b.size);
                if same {
                    let mt = if doc.media_type.is_empty() {
                        manifest::OCI_MANIFEST.to_string()
                    } else {
                        doc.media_type
                    };
                    return Ok((raw, mt));
                }
            }
        }
    }
    let config_size = content.size(&img.config)?;
    let docker = !img.layers.is_empty()
        && img
            .layers
            .iter()
            .all(|l| l.media_type.starts_with("application/vnd.docker."));
    let layer_type = |mt: &str| -> String {
        if docker {
            mt.to_string()
        } else {
            match mt {
                manifest::DOCKER_LAYER_GZIP => manifest::OCI_LAYER_GZIP.into(),
                manifest::DOCKER_LAYER | "" => manifest::OCI_LAYER.into(),
                other => other.to_string(),
            }
        }
    };
    let (mt, config_mt) = if docker {
        (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG)
    } else {
        (manifest::OCI_MANIFEST, manifest::OCI_CONFIG)
    };
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "digest": img.config, "size": config_size},
        "layers": img.layers.iter().map(|l| serde_json::json!({
            "mediaType": layer_type(&l.media_type),
            "digest": l.blob,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    Ok((
        serde_json::to_vec_pretty(&doc).expect("manifest serialises"),
        mt.to_string(),
    ))
}

fn absolute(ep: &EndpointState, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{}{location}", ep.base().unwrap_or_default())
    }
}

fn location(resp: &crate::client::Response, what: &str) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol(format!("{what}: the registry gave no upload Location")))
}

fn with_query(url: &str, q: &str) -> String {
    format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' })
}

/// What every blob upload of one push shares.
struct Uploader<'a> {
    client: &'a Client,
    ep: &'a EndpointState,
    repo: &'a str,
    content: &'a ContentStore,
    mount_from: &'a [String],
    opts: PushOptions,
    cancel: &'a AtomicBool,
}

impl Uploader<'_> {
    fn upload_once(&self, d: &Digest, size: u64, id: &str, progress: Sink<'_>) -> Result<Outcome> {
        let Uploader {
            client,
            ep,
            repo,
            content,
            mount_from,
            opts,
            cancel,
        } = *self;
        let push_scope = vec![format!("repository:{repo}:pull,push")];
        let what = format!("blob {d}");
        let head = Request::new(Method::HEAD, format!("/v2/{repo}/blobs/{d}"), &push_scope);
        let resp = client.send(ep, &head)?;
        if resp.status().as_u16() == 200 {
            return Ok(Outcome::Exists);
        }
        let mut upload_url = None;
        for from in mount_from.iter().filter(|f| f.as_str() != repo) {
            let mut scopes = push_scope.clone();
            scopes.push(format!("repository:{from}:pull"));
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("mount", d.as_str())
                .append_pair("from", from)
                .finish();
            let req = Request::new(
                Method::POST,
                format!("/v2/{repo}/blobs/uploads/?{q}"),
                &scopes,
            );
            let mut resp = client.send(ep, &req)?;
            match resp.status().as_u16() {
                201 => return Ok(Outcome::Mounted(from.clone())),
                202 => {
                    upload_url = Some(absolute(ep, &location(&resp, &what)?));
                    break;
                }
                _ => {
                    let e = status_error(format!("mount {what} from {from}"), &mut resp);
                    tracing::debug!(error = %e, "cross-repository mount refused; uploading");
                }
            }
        }
        let mut url = match upload_url {
            Some(u) => u,
            None => {
                let req = Request::new(
                    Method::POST,
                    format!("/v2/{repo}/blobs/uploads/"),
                    &push_scope,
                );
                let mut resp = client.send(ep, &req)?;
                if resp.status().as_u16() != 202 {
                    return Err(status_error(format!("start upload of {what}"), &mut resp));
                }
                absolute(ep, &location(&resp, &what)?)
            }
        };
        let path = content.path(d);
        let digest_q = form_urlencoded::Serializer::new(String::new())
            .append_pair("digest", d.as_str())
            .finish();
        if size <= opts.chunk_size {
            let mut req = Request::new(Method::PUT, with_query(&url, &digest_q), &push_scope)
                .header("Content-Type", "application/octet-stream")
                .body(Body::File {
                    path,
                    offset: 0,
                    len: size,
                });
            req.retry = false;
            (progress)(Progress::bytes(id, "Pushing", 0, size));
            let mut resp = client.send(ep, &req)?;
            if resp.status().as_u16() != 201 {
                return Err(status_error(format!("upload {what}"), &mut resp));
            }
            (progress)(Progress::bytes(id, "Pushing", size, size));
            return Ok(Outcome::Uploaded);
        }
        let mut offset = 0;
        while offset < size {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let n = opts.chunk_size.min(size - offset);
            let mut req = Request::new(Method::PATCH, url.clone(), &push_scope)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{offset}-{}", offset + n - 1))
                .body(Body::File {
                    path: path.clone(),
                    offset,
                    len: n,
                });
            req.retry = false;
            let mut resp = client.send(ep, &req)?;
            if resp.status().as_u16() != 202 {
                return Err(status_error(
                    format!("upload {what} (bytes {offset}-)"),
                    &mut resp,
                ));
            }
            url = absolute(ep, &location(&resp, &what)?);
            offset += n;
            (progress)(Progress::bytes(id, "Pushing", offset, size));
        }
        let mut req = Request::new(Method::PUT, with_query(&url, &digest_q), &push_scope);
        req.retry = false;
        let mut resp = client.send(ep, &req)?;
        if resp.status().as_u16() != 201 {
            return Err(status_error(format!("finish upload of {what}"), &mut resp));
        }
        Ok(Outcome::Uploaded)
    }

    /// [`Uploader::upload_once`], started again on transient failures.
    fn upload(&self, d: &Digest, size: u64, id: &str, progress: Sink<'_>) -> Result<Outcome> {
        let mut attempt = 0;
        loop {
            match self.upload_once(d, size, id, progress) {
                Err(e) if e.is_transient() && attempt + 1 < UPLOAD_ATTEMPTS => {
                    tracing::debug!(blob = %d, error = %e, "upload failed; starting again");
                    std::thread::sleep(crate::client::backoff(attempt));
                    attempt += 1;
                }
                r => return r,
            }
        }
    }
}

/// Pushes `img` as `target` (a tag; `latest` when none is given).
pub fn push(
    client: &Client,
    content: &ContentStore,
    target: &ImageRef,
    img: &PushImage,
    opts: PushOptions,
    progress: Sink<'_>,
    cancel: &AtomicBool,
) -> Result<Pushed> {
    if target.digest.is_some() {
        return Err(Error::Config(format!(
            "cannot push a digest reference: {}",
            target.familiar()
        )));
    }
    let tag = target
        .tag
        .clone()
        .unwrap_or_else(|| berth_image::reference::DEFAULT_TAG.to_string());
    let ep = client.upstream();
    let repo = target.path.as_str();
    for l in &img.layers {
        (progress)(Progress::layer(&l.blob.hex()[..12], "Preparing"));
    }
    let up = Uploader {
        client,
        ep,
        repo,
        content,
        mount_from: &img.mount_from,
        opts,
        cancel,
    };
    let queue = Mutex::new(img.layers.iter());
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..opts.concurrency.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                    break;
                }
                let Some(l) = queue.lock().expect("queue").next() else {
                    break;
                };
                let id = &l.blob.hex()[..12];
                let r = up.upload(&l.blob, l.size, id, progress);
                match r {
                    Ok(Outcome::Exists) => (progress)(Progress::layer(id, "Layer already exists")),
                    Ok(Outcome::Mounted(from)) => {
                        (progress)(Progress::layer(id, format!("Mounted from {from}")))
                    }
                    Ok(Outcome::Uploaded) => (progress)(Progress::layer(id, "Pushed")),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        first_err.lock().expect("err").get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().expect("err") {
        return Err(e);
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let config_size = content.size(&img.config)?;
    up.upload(&img.config, config_size, &img.config.hex()[..12], &|_| {})?;
    let (raw, mt) = manifest_for(content, img)?;
    let digest = Digest::of(&raw);
    let scopes = vec![format!("repository:{repo}:pull,push")];
    let req = Request::new(Method::PUT, format!("/v2/{repo}/manifests/{tag}"), &scopes)
        .header("Content-Type", mt)
        .body(Body::Bytes(raw.clone()));
    let mut resp = client.send(ep, &req)?;
    if resp.status().as_u16() != 201 {
        return Err(status_error(
            format!("push manifest {}:{tag}", target.familiar_repository()),
            &mut resp,
        ));
    }
    if let Some(h) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        if h != digest.as_str() {
            return Err(Error::Protocol(format!(
                "push manifest: the registry stored {h}, berth sent {digest}"
            )));
        }
    }
    content.put(&raw)?;
    Ok(Pushed {
        tag,
        digest,
        size: raw.len() as u64,
    })
}
