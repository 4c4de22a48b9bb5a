//! OCI image layouts (a directory with `oci-layout`, `index.json` and `blobs/`) and OCI
//! archives (the same as a tar), as skopeo, umoci and buildah write them.

use std::io::Read;
use std::path::Path;

use serde_json::json;

use super::{ingest, layer_media_type, Loaded};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::reference::ImageRef;
use crate::store::{LayerSource, Store};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Loads the images of an OCI layout directory. A `ref.name` that is only a tag is combined
/// with `repository` (when given) into a reference.
pub fn load_dir(store: &mut Store, dir: &Path, repository: Option<&str>) -> Result<Vec<Loaded>> {
    let layout = std::fs::read(dir.join("oci-layout"))
        .ctx(|| format!("{}: not an OCI layout (no oci-layout file)", dir.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&layout).ctx(|| "parse oci-layout".into())?;
    if v["imageLayoutVersion"] != "1.0.0" {
        return Err(Error::Archive(format!(
            "unsupported imageLayoutVersion {}",
            v["imageLayoutVersion"]
        )));
    }
    let blob = |store: &Store, d: &Digest, size: Option<u64>| -> Result<Digest> {
        let p = dir.join("blobs/sha256").join(d.hex());
        let mut f = std::fs::File::open(&p).ctx(|| format!("blob {d} missing from the layout"))?;
        ingest(store, &format!("oci-{}", d.hex()), &mut f, Some(d), size)
    };
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("index.json")).ctx(|| "read index.json".into())?,
    )
    .ctx(|| "parse index.json".into())?;
    let mut out = Vec::new();
    let mut queue: Vec<(serde_json::Value, Option<String>)> = index["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let name = m["annotations"][REF_NAME].as_str().map(str::to_string);
            (m, name)
        })
        .collect();
    while let Some((desc, name)) = queue.pop() {
        let d = Digest::parse(desc["digest"].as_str().unwrap_or_default())?;
        let size = desc["size"].as_u64();
        let mt = desc["mediaType"].as_str().unwrap_or(MANIFEST);
        let stored = blob(store, &d, size)?;
        let doc: serde_json::Value = serde_json::from_slice(&store.content().read(&stored)?)
            .ctx(|| format!("parse manifest {d}"))?;
        if mt == INDEX || mt == DOCKER_LIST || doc["manifests"].is_array() {
            // An index: take the manifest for this platform.
            let pick = doc["manifests"].as_array().into_iter().flatten().find(|m| {
                let p = &m["platform"];
                p.is_null()
                    || (p["os"] == "linux"
                        && p["architecture"]
                            == std::env::consts::ARCH
                                .replace("x86_64", "amd64")
                                .replace("aarch64", "arm64"))
            });
            if let Some(m) = pick {
                queue.push((m.clone(), name));
            }
            continue;
        }
        let config = Digest::parse(doc["config"]["digest"].as_str().unwrap_or_default())?;
        let config = blob(store, &config, doc["config"]["size"].as_u64())?;
        let cfg = ImageConfig::parse(&store.content().read(&config)?)?;
        let descs = doc["layers"].as_array().cloned().unwrap_or_default();
        if descs.len() != cfg.rootfs.diff_ids.len() {
            return Err(Error::Archive(format!(
                "manifest {d}: {} layers, config has {} diff ids",
                descs.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (l, diff_id) in descs.iter().zip(&cfg.rootfs.diff_ids) {
            let ld = Digest::parse(l["digest"].as_str().unwrap_or_default())?;
            let b = blob(store, &ld, l["size"].as_u64())?;
            layers.push(LayerSource {
                blob: b,
                media_type: l["mediaType"]
                    .as_str()
                    .unwrap_or("application/vnd.oci.image.layer.v1.tar")
                    .to_string(),
                diff_id: diff_id.clone(),
            });
        }
        let tag = name.as_deref().and_then(|n| {
            if n.contains('/') || n.contains(':') {
                ImageRef::parse(n).ok()
            } else {
                repository.and_then(|r| ImageRef::parse(&format!("{r}:{n}")).ok())
            }
        });
        let tags: Vec<ImageRef> = tag.into_iter().collect();
        let id = store.add_image(&config, &layers, Some(stored), &tags)?;
        out.push(Loaded {
            id,
            tags: tags.iter().map(|t| t.familiar()).collect(),
        });
    }
    Ok(out)
}

/// Loads an OCI archive (a tar of a layout) by unpacking it to a temporary directory.
pub fn load_archive(
    store: &mut Store,
    reader: impl Read,
    repository: Option<&str>,
) -> Result<Vec<Loaded>> {
    let tmp = tempdir_in(store)?;
    let r = (|| {
        let mut ar = tar::Archive::new(reader);
        // The tar crate refuses entries that escape the destination.
        ar.unpack(&tmp)
            .map_err(|e| Error::Archive(format!("unpack OCI archive: {e}")))?;
        load_dir(store, &tmp, repository)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

fn tempdir_in(store: &Store) -> Result<std::path::PathBuf> {
    let d = store.content().scratch_path("oci-tmp");
    std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
    Ok(d)
}

/// Writes the named images as an OCI layout directory. Each gets `ref.name` = its tag (what
/// `skopeo inspect oci:DIR:TAG` and `umoci unpack --image DIR:TAG` look for).
pub fn save_dir(store: &Store, names: &[String], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))
        .ctx(|| format!("create {}", dir.display()))?;
    let put = |d: &Digest| -> Result<u64> {
        let dest = dir.join("blobs/sha256").join(d.hex());
        if !dest.exists() {
            std::fs::copy(store.content().path(d), &dest).ctx(|| format!("copy blob {d}"))?;
        }
        store.content().size(d)
    };
    let write_bytes = |data: &[u8]| -> Result<(Digest, u64)> {
        let d = Digest::of(data);
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), data)
            .ctx(|| format!("write blob {d}"))?;
        Ok((d, data.len() as u64))
    };
    let mut manifests = Vec::new();
    for name in names {
        let img = store.resolve(name)?.clone();
        let config_size = put(&img.id)?;
        let mut layers = Vec::new();
        for b in &img.layers {
            let size = put(b)?;
            layers
                .push(json!({"mediaType": layer_media_type(store, b)?, "digest": b, "size": size}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id, "size": config_size},
            "layers": layers
        });
        let (md, msize) = write_bytes(&serde_json::to_vec(&manifest).expect("serialises"))?;
        let tag = match ImageRef::parse(name) {
            Ok(r) if store.tags_of(&img.id).contains(&r) => Some(r),
            _ => store.tags_of(&img.id).into_iter().next(),
        };
        let mut desc = json!({"mediaType": MANIFEST, "digest": md, "size": msize});
        if let Some(t) = tag {
            desc["annotations"] = json!({REF_NAME: t.tag.clone().unwrap_or_else(|| "latest".into()), "io.containerd.image.name": t.to_string()});
        }
        manifests.push(desc);
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .ctx(|| "write oci-layout".into())?;
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    let data = serde_json::to_vec(&index).expect("serialises");
    berth_durable::write(&dir.join("index.json"), &data).map_err(|e| Error::Io {
        context: "write index.json".into(),
        source: std::io::Error::other(e),
    })
}
