//! Image archives: docker-archive (`docker save` / `podman save`), OCI image layouts and OCI
//! archives (`skopeo copy ... oci:`, `umoci`), and rootfs import.

pub mod docker;
pub mod import;
pub mod oci;

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
