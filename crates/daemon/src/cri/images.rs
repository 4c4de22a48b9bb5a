//! The CRI ImageService over the engine's image store (the same store the Docker API uses):
//! images named in full (`docker.io/library/busybox:latest`) as the kubelet names them, pulls
//! with the kubelet's credentials through berth's registry settings (mirrors, certs.d),
//! removal of an image with all its names, and the image file system's usage.

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::distribution::Credentials;
use berth_engine::Engine;
use k8s_cri::v1;
use k8s_cri::v1::image_service_server::ImageService;
use tonic::{Request, Response, Status};

use super::blocking;

#[derive(Debug)]
pub struct Images {
    engine: Arc<Engine>,
}

impl Images {
    pub fn new(engine: Arc<Engine>) -> Self {
        Images { engine }
    }
}

/// Names in the CRI's fully qualified form (a name that is not a reference is kept).
fn qualified(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| berth_engine::images::qualified(n).unwrap_or_else(|| n.clone()))
        .collect()
}

/// The image's user: a number is the uid, anything else a name (`user` or `user:group`).
fn user_of(user: Option<&str>) -> (Option<v1::Int64Value>, String) {
    let user = user.unwrap_or_default();
    let name = user.split(':').next().unwrap_or_default();
    match name.parse::<i64>() {
        Ok(uid) => (Some(v1::Int64Value { value: uid }), String::new()),
        Err(_) if name.is_empty() => (Some(v1::Int64Value { value: 0 }), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

fn image_of(engine: &Engine, name: &str) -> Result<Option<v1::Image>, Status> {
    match engine.images.inspect(name) {
        Ok(d) => {
            let (uid, username) = user_of(d.config.user.as_deref());
            Ok(Some(v1::Image {
                spec: Some(v1::ImageSpec {
                    image: d.id.clone(),
                    ..Default::default()
                }),
                id: d.id,
                repo_tags: qualified(&d.repo_tags),
                repo_digests: qualified(&d.repo_digests),
                size: d.size,
                uid,
                username,
                pinned: false,
            }))
        }
        Err(e) if e.kind == berth_engine::error::Kind::NotFound => Ok(None),
        Err(e) => Err(super::status_of(e)),
    }
}

/// The kubelet's registry credentials: user and password, `auth` (base64 `user:password`),
/// or a token.
fn credentials(a: Option<&v1::AuthConfig>) -> Result<Option<Credentials>, Status> {
    let Some(a) = a else { return Ok(None) };
    let (mut username, mut password) = (a.username.clone(), a.password.clone());
    if !a.auth.is_empty() {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|_| Status::invalid_argument("auth: not base64"))?;
        let text = String::from_utf8(raw)
            .map_err(|_| Status::invalid_argument("auth: not user:password"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument("auth: not user:password"))?;
        (username, password) = (u.to_string(), p.to_string());
    }
    let c = Credentials {
        username,
        password,
        identity_token: a.identity_token.clone(),
        registry_token: a.registry_token.clone(),
    };
    Ok((c != Credentials::default()).then_some(c))
}

fn spec_name(spec: Option<&v1::ImageSpec>) -> Result<String, Status> {
    spec.map(|s| s.image.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Status::invalid_argument("image spec: no image named"))
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(
        &self,
        r: Request<v1::ListImagesRequest>,
    ) -> Result<Response<v1::ListImagesResponse>, Status> {
        let want = r
            .get_ref()
            .filter
            .as_ref()
            .and_then(|f| f.image.as_ref())
            .map(|s| s.image.clone())
            .filter(|s| !s.is_empty());
        let engine = self.engine.clone();
        let images = blocking(move || {
            let only = match &want {
                Some(n) => match engine.images.resolve(n) {
                    Ok((id, _)) => Some(id),
                    Err(_) => return Ok(Vec::new()),
                },
                None => None,
            };
            let mut out = Vec::new();
            for s in engine.images.list(false)? {
                if only.as_ref().is_some_and(|id| *id != s.id) {
                    continue;
                }
                if let Ok(Some(i)) = image_of(&engine, &s.id) {
                    out.push(i);
                }
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(v1::ListImagesResponse { images }))
    }

    /// An image the store does not have is not an error: the answer has no image.
    async fn image_status(
        &self,
        r: Request<v1::ImageStatusRequest>,
    ) -> Result<Response<v1::ImageStatusResponse>, Status> {
        let name = spec_name(r.get_ref().image.as_ref())?;
        let verbose = r.get_ref().verbose;
        let engine = self.engine.clone();
        let (image, config) = tokio::task::spawn_blocking(move || {
            let image = image_of(&engine, &name)?;
            let config = match (&image, verbose) {
                (Some(_), true) => engine.images.inspect(&name).ok().map(|d| d.config),
                _ => None,
            };
            Ok::<_, Status>((image, config))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        let mut info = HashMap::new();
        if let Some(c) = config {
            info.insert(
                "info".to_string(),
                serde_json::json!({ "imageSpec": { "config": c } }).to_string(),
            );
        }
        Ok(Response::new(v1::ImageStatusResponse { image, info }))
    }

    async fn pull_image(
        &self,
        r: Request<v1::PullImageRequest>,
    ) -> Result<Response<v1::PullImageResponse>, Status> {
        let req = r.into_inner();
        let name = spec_name(req.image.as_ref())?;
        let creds = credentials(req.auth.as_ref())?;
        let engine = self.engine.clone();
        let outcome = blocking(move || {
            let cancel = std::sync::atomic::AtomicBool::new(false);
            engine
                .images
                .pull_resolve(&name, None, creds)?
                .run(&|_| {}, &cancel)
        })
        .await?;
        Ok(Response::new(v1::PullImageResponse {
            image_ref: outcome.id,
        }))
    }

    /// Removes the image with every name it has, as containerd's CRI does; one that is not
    /// there is already removed.
    async fn remove_image(
        &self,
        r: Request<v1::RemoveImageRequest>,
    ) -> Result<Response<v1::RemoveImageResponse>, Status> {
        let name = spec_name(r.get_ref().image.as_ref())?;
        let engine = self.engine.clone();
        blocking(move || {
            let id = match engine.images.resolve(&name) {
                Ok((id, _)) => id,
                Err(e) if e.kind == berth_engine::error::Kind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let in_use = engine.containers.images_in_use();
            engine.images.remove(&id, true, &in_use).map(drop)
        })
        .await?;
        Ok(Response::new(v1::RemoveImageResponse {}))
    }

    /// The bytes of the unpacked layers, on the file system of the store's snapshots.
    async fn image_fs_info(
        &self,
        _: Request<v1::ImageFsInfoRequest>,
    ) -> Result<Response<v1::ImageFsInfoResponse>, Status> {
        let engine = self.engine.clone();
        let (used, _) = blocking(move || engine.images.df()).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let usage = v1::FilesystemUsage {
            timestamp: now,
            fs_id: Some(v1::FilesystemIdentifier {
                mountpoint: self
                    .engine
                    .data_root
                    .join("snapshots")
                    .display()
                    .to_string(),
            }),
            used_bytes: Some(v1::UInt64Value { value: used }),
            inodes_used: None,
        };
        Ok(Response::new(v1::ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: Vec::new(),
        }))
    }
}
