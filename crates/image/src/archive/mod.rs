//! Image archives: docker-archive (`docker save` / `podman save`), OCI image layouts and OCI
//! archives (`skopeo copy ... oci:`, `umoci`), and rootfs import.

pub mod docker;
pub mod import;
pub mod oci;
pub mod progress;

use std::io::Read;

use crate::digest::Digest;
use crate::error::{Context, Result};
use crate::layer::{self, Compression};
use crate::store::Store;

/// A loaded image: its id and the references it was tagged with.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// Streams `r` into the content store under a private ingest, returning the committed digest.
pub(crate) fn ingest(
    store: &Store,
    name: &str,
    r: &mut impl Read,
    expected: Option<&Digest>,
    size: Option<u64>,
) -> Result<Digest> {
    let mut w = store.content().writer(name, expected, size)?;
    // Large writes: 1 MiB at a time rather than io::copy's 8 KiB.
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).ctx(|| format!("read {name}")),
        };
        std::io::Write::write_all(&mut w, &buf[..n]).ctx(|| format!("store {name}"))?;
    }
    w.commit()
}

/// The OCI media type of a layer blob, from its magic bytes.
pub(crate) fn layer_media_type(store: &Store, blob: &Digest) -> Result<&'static str> {
    let (c, _) = layer::decompress(store.content().open_blob(blob)?)?;
    Ok(match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    })
}

/// Whether an archive file is an OCI archive (has `oci-layout`, no `manifest.json`).
pub fn is_oci_archive(path: &std::path::Path) -> Result<bool> {
    let f = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
    let mut ar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, f));
    let mut oci = false;
    for e in ar
        .entries()
        .map_err(|e| crate::Error::Archive(format!("not a tar archive: {e}")))?
    {
        let e = e.map_err(|e| crate::Error::Archive(format!("corrupt archive: {e}")))?;
        let p = e
            .path()
            .map_err(|e| crate::Error::Archive(format!("bad entry name: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if p == "manifest.json" {
            return Ok(false);
        }
        oci |= p == "oci-layout";
    }
    Ok(oci)
}

/// Loads a docker-archive or OCI archive file, telling them apart by their entries.
pub fn load_file(
    store: &mut Store,
    path: &std::path::Path,
    name: Option<&str>,
) -> Result<Vec<Loaded>> {
    load_file_with(store, path, name, &mut |_, _, _| {})
}

/// [`load_file`], telling `progress` how far each layer of a docker-archive that the store
/// does not have yet has been read (an OCI archive is unpacked whole first: no progress).
pub fn load_file_with(
    store: &mut Store,
    path: &std::path::Path,
    name: Option<&str>,
    progress: progress::LoadProgress<'_>,
) -> Result<Vec<Loaded>> {
    let oci_archive = is_oci_archive(path)?;
    let f = std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?,
    );
    if oci_archive {
        oci::load_archive(store, f, name)
    } else {
        let ids = progress::layer_ids(store, path)?;
        docker::load_with(store, f, &ids, progress)
    }
}
