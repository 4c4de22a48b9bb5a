//! Pull, push, login and registry inspection: `berth_registry` driven over the image store.
//!
//! A pull is two steps so that berthd can answer like dockerd: [`ImageService::pull_resolve`]
//! fetches the manifest and config (its errors — unknown image, bad credentials — become the
//! HTTP status), then [`Pull::run`] streams the layers with progress (errors from then on are
//! reported inside the progress stream). The store's lock is held only to decide which layers
//! are missing and, at the end, to record the image: downloads and unpacking run without it.

use std::sync::atomic::{AtomicBool, Ordering};

use berth_image::store::Unpacker;
use berth_image::ImageRef;
use berth_registry::pull::{self, Need, Resolved};
use berth_registry::push::{self, PushImage, PushLayer, PushOptions};
use berth_registry::Client;
pub use berth_registry::Platform;

/// The registry vocabulary berthd needs (credentials from the API's headers, pull progress,
/// registry options from its configuration); the daemon reaches the registry crate only
/// through the engine.
pub use berth_registry::pull::tag_or_digest;
pub use berth_registry::push::Pushed;
pub use berth_registry::{Credentials, Progress, RegistryOptions};

use crate::error::{invalid, not_found, EngineError};
use crate::images::ImageService;

/// Counts a transfer under way for as long as it lives (see `ImageService::transfers`).
#[derive(Debug)]
struct TransferGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> TransferGuard<'a> {
    fn new(c: &'a std::sync::atomic::AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::SeqCst);
        TransferGuard(c)
    }
}

impl Drop for TransferGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a reference names in its registry (`GET /distribution/{name}/json`).
#[derive(Debug, Clone)]
pub struct DistributionInfo {
    /// The manifest's (or index's) media type, digest and size.
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// The platforms an index offers, or the one a single manifest is for.
    pub platforms: Vec<Platform>,
}

/// A resolved pull, ready to fetch its layers.
#[derive(Debug)]
pub struct Pull<'a> {
    images: &'a ImageService,
    client: Client,
    resolved: Resolved,
    _guard: TransferGuard<'a>,
}

/// How a pull ended.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub id: String,
    /// `repository@sha256:...` (familiar form).
    pub repo_digest: String,
    /// The reference as docker prints it (`localhost:5000/app:latest`).
    pub reference: String,
    /// The tag already named this image.
    pub up_to_date: bool,
}

fn parse_ref(reference: &str) -> Result<ImageRef, EngineError> {
    ImageRef::parse(reference).map_err(|e| invalid(e.to_string()))
}

impl ImageService {
    /// Resolves `reference` for `platform` (default: this machine's).
    #[tracing::instrument(level = "debug", skip_all, fields(reference = %reference))]
    pub fn pull_resolve(
        &self,
        reference: &str,
        platform: Option<&str>,
        creds: Option<Credentials>,
    ) -> Result<Pull<'_>, EngineError> {
        let r = parse_ref(reference)?;
        let platform = match platform.filter(|p| !p.is_empty()) {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        };
        let guard = TransferGuard::new(&self.transfers);
        let client = Client::new(&self.registry, &r.domain, creds)?;
        let content = self.content();
        let resolved = pull::resolve(&client, &content, &r, &platform)?;
        Ok(Pull {
            images: self,
            client,
            resolved,
            _guard: guard,
        })
    }

    /// Every tag of `repository` in its registry (for `pull --all-tags`).
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn registry_tags(
        &self,
        repository: &str,
        creds: Option<Credentials>,
    ) -> Result<Vec<String>, EngineError> {
        let r = parse_ref(repository)?;
        let client = Client::new(&self.registry, &r.domain, creds)?;
        let mut tags = berth_registry::pull::list_tags(&client, &r.path)?;
        tags.sort();
        if tags.is_empty() {
            return Err(not_found(format!(
                "{}: the repository has no tags",
                r.familiar_repository()
            )));
        }
        Ok(tags)
    }

    /// Checks credentials with a registry (`docker login`). `server` is a registry host,
    /// optionally as a URL; empty means docker.io.
    #[tracing::instrument(level = "debug", skip_all, fields(server = %server))]
    pub fn login(&self, server: &str, creds: Credentials) -> Result<(), EngineError> {
        let host = registry_host(server)?;
        let client = Client::new(&self.registry, &host, Some(creds))?;
        client.login()?;
        Ok(())
    }

    /// `GET /distribution/{name}/json`: the descriptor the reference resolves to, and the
    /// platforms of an index.
    #[tracing::instrument(level = "debug", skip_all, fields(reference = %reference))]
    pub fn distribution_inspect(
        &self,
        reference: &str,
        creds: Option<Credentials>,
    ) -> Result<DistributionInfo, EngineError> {
        let r = parse_ref(reference)?;
        let client = Client::new(&self.registry, &r.domain, creds)?;
        let (media_type, raw, digest) = berth_registry::pull::head_document(&client, &r)?;
        let doc = berth_registry::manifest::parse(&media_type, &raw, &r.familiar())?;
        let platforms: Vec<Platform> = match &doc {
            berth_registry::manifest::Document::Index(i) => i
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .map(|p| Platform {
                    architecture: p.architecture.clone(),
                    os: p.os.clone(),
                    variant: p.variant.clone(),
                })
                .collect(),
            berth_registry::manifest::Document::Manifest(m) => {
                let content = self.content();
                match berth_registry::pull::small_blob(
                    &client,
                    client.upstream(),
                    &r.path,
                    &m.config,
                    &content,
                )
                .and_then(|()| Ok(content.read(&m.config.digest)?))
                {
                    Ok(cfg) => match berth_image::config::ImageConfig::parse(&cfg) {
                        Ok(c) => vec![Platform {
                            architecture: c.architecture,
                            os: c.os,
                            variant: c.variant.unwrap_or_default(),
                        }],
                        Err(_) => vec![],
                    },
                    Err(_) => vec![],
                }
            }
        };
        let mt = match &doc {
            berth_registry::manifest::Document::Index(i) if !i.media_type.is_empty() => {
                i.media_type.clone()
            }
            berth_registry::manifest::Document::Manifest(m) if !m.media_type.is_empty() => {
                m.media_type.clone()
            }
            _ => media_type,
        };
        Ok(DistributionInfo {
            media_type: mt,
            digest: digest.to_string(),
            size: raw.len() as u64,
            platforms,
        })
    }

    /// Pushes `name` (`repo:tag`; a repository without a tag pushes each of its tags, as
    /// dockerd does). `each` is called with every pushed tag's result.
    #[tracing::instrument(level = "debug", skip_all, fields(name = %name))]
    pub fn push(
        &self,
        name: &str,
        tag: Option<&str>,
        creds: Option<Credentials>,
        progress: &(dyn Fn(Progress) + Sync),
        cancel: &AtomicBool,
        each: &mut dyn FnMut(&push::Pushed),
    ) -> Result<(), EngineError> {
        let _guard = TransferGuard::new(&self.transfers);
        let full = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        let r = parse_ref(&full)?;
        // ImageRef::parse adds `latest` to a bare name: see whether the caller named a tag.
        let explicit_tag = tag.is_some_and(|t| !t.is_empty()) || name_has_tag(name);
        let targets: Vec<ImageRef> = {
            let store = self.store.lock().expect("image store lock");
            if explicit_tag {
                vec![r.clone()]
            } else {
                let mut v: Vec<ImageRef> = store
                    .images()
                    .iter()
                    .flat_map(|i| store.tags_of(&i.id))
                    .filter(|t| t.domain == r.domain && t.path == r.path && t.tag.is_some())
                    .collect();
                v.sort();
                v
            }
        };
        if targets.is_empty() {
            return Err(not_found(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_repository()
            )));
        }
        let client = Client::new(&self.registry, &r.domain, creds)?;
        progress(Progress::msg(format!(
            "The push refers to repository [{}]",
            r.familiar_repository()
        )));
        let opts = PushOptions {
            concurrency: self.registry.max_concurrent_uploads,
            chunk_size: self.registry.push_chunk_size.max(1),
        };
        for t in targets {
            let (img, content, id) = {
                let store = self.store.lock().expect("image store lock");
                let rec = store.resolve(&t.to_string()).map_err(|_| {
                    not_found(format!(
                        "An image does not exist locally with the tag: {}",
                        t.familiar()
                    ))
                })?;
                let content = store.content().clone();
                let layers = store
                    .layers_of(rec)?
                    .iter()
                    .zip(&rec.layer_media_types)
                    .map(|(l, mt)| {
                        Ok(PushLayer {
                            blob: l.blob.clone(),
                            media_type: mt.clone(),
                            size: content.size(&l.blob)?,
                        })
                    })
                    .collect::<Result<Vec<_>, berth_image::Error>>()?;
                let mount_from = rec
                    .repo_digests
                    .iter()
                    .filter_map(|rd| ImageRef::parse(rd).ok())
                    .filter(|x| x.domain == t.domain)
                    .map(|x| x.path)
                    .collect();
                (
                    PushImage {
                        config: rec.id.clone(),
                        layers,
                        manifest: rec.manifest.clone(),
                        mount_from,
                    },
                    content,
                    rec.id.clone(),
                )
            };
            let pushed = push::push(&client, &content, &t, &img, opts, progress, cancel)?;
            self.store
                .lock()
                .expect("image store lock")
                .add_repo_digest(&id, &format!("{}@{}", t.repository(), pushed.digest))?;
            self.publish("push", &t.familiar(), &t.familiar_repository());
            each(&pushed);
        }
        Ok(())
    }
}

/// Whether `name` ends in `:tag` or `@digest` (a colon after the last slash).
pub fn name_has_tag(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':') || name.contains('@')
}

/// `https://host:5000/v1/`, `host:5000` → `host:5000`; docker.io's index names → `docker.io`.
pub fn registry_host(server: &str) -> Result<String, EngineError> {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    Ok(match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    })
}

impl Pull<'_> {
    /// What the reference names (docker's `Pulling from <repo>` line uses it).
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// Downloads and unpacks the missing layers, then records and tags the image.
    pub fn run(
        self,
        progress: &(dyn Fn(Progress) + Sync),
        cancel: &AtomicBool,
    ) -> Result<PullOutcome, EngineError> {
        let res = &self.resolved;
        let (content, unpacker, needs): (_, Option<Unpacker>, Vec<Need>) = {
            let store = self.images.store.lock().expect("image store lock");
            let content = store.content().clone();
            let unpacker = store.unpacker().ok();
            let diff_ids: Vec<_> = res.layers.iter().map(|l| l.diff_id.clone()).collect();
            let chains = berth_image::config::chain_ids(&diff_ids);
            let needs = res
                .layers
                .iter()
                .zip(&chains)
                .map(
                    |(l, c)| match (store.has_layer(c), content.exists(&l.blob)) {
                        (true, true) => Need::Present,
                        (true, false) => Need::BlobOnly,
                        // The copy-based driver unpacks in order when the image is recorded.
                        (false, _) if unpacker.is_none() => Need::BlobOnly,
                        (false, _) => Need::Unpack,
                    },
                )
                .collect();
            (content, unpacker, needs)
        };
        let mut prepared = pull::fetch_layers(
            &self.client,
            &content,
            unpacker.as_ref(),
            res,
            &needs,
            self.images.registry.max_concurrent_downloads,
            progress,
            cancel,
        )?;
        self.record(&mut prepared)
    }

    fn record(
        self,
        prepared: &mut Vec<berth_image::store::Prepared>,
    ) -> Result<PullOutcome, EngineError> {
        let res = &self.resolved;
        let tags: Vec<ImageRef> = if res.reference.digest.is_none() {
            vec![res.reference.clone()]
        } else {
            vec![]
        };
        let mut store = self.images.store.lock().expect("image store lock");
        let before = tags
            .first()
            .and_then(|t| store.resolve(&t.to_string()).ok())
            .map(|i| i.id.clone());
        let r = store.add_image_prepared(
            &res.config,
            &res.layers,
            Some(res.manifest.clone()),
            &tags,
            prepared,
        );
        for p in prepared.drain(..) {
            p.discard();
        }
        let id = r?;
        let repo_digest = format!("{}@{}", res.reference.repository(), res.repo_digest);
        store.add_repo_digest(&id, &repo_digest)?;
        drop(store);
        self.images.publish(
            "pull",
            &res.reference.familiar(),
            &res.reference.familiar_repository(),
        );
        Ok(PullOutcome {
            up_to_date: before.as_ref() == Some(&id),
            id: id.to_string(),
            repo_digest: crate::images::familiar_digest(&repo_digest),
            reference: res.reference.familiar(),
        })
    }
}
