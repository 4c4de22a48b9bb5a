//! The image a pod's sandbox container runs: berth's static holder (`holder/holder.c`, built
//! by the engine's build.rs) as `/pause`, alone in one layer. Made in the store the first
//! time a pod needs it (and again if it was removed), named after the holder's digest so a
//! new berth brings a new one; no registry is involved.

use std::io::Write;

use sha2::Digest as _;

use crate::error::{unavailable, EngineError};
use crate::images::ImageService;

/// The holder executable.
const HOLDER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-pod-holder"));

/// The holder image's reference: `berth.local/pod-holder:<first 12 hex of its digest>`.
pub fn reference() -> String {
    let digest = hex::encode(sha2::Sha256::digest(HOLDER));
    format!("berth.local/pod-holder:{}", &digest[..12])
}

/// The holder image's id, made first if the store lacks it (under [`reference`]).
pub fn ensure(images: &ImageService) -> Result<String, EngineError> {
    let name = reference();
    if let Ok((id, _)) = images.resolve(&name) {
        return Ok(id);
    }
    let tar = images.scratch_path("pod-holder");
    let made = (|| -> std::io::Result<()> {
        let mut b = tar::Builder::new(std::fs::File::create(&tar)?);
        let mut h = tar::Header::new_ustar();
        h.set_size(HOLDER.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "pause", HOLDER)?;
        b.into_inner()?.flush()
    })();
    let r = made
        .map_err(|e| unavailable(format!("write the pod holder image: {e}")))
        .and_then(|()| {
            images.import(
                &tar,
                Some(&name),
                &["ENTRYPOINT [\"/pause\"]".to_string()],
                "berth's pod holder",
            )
        });
    let _ = std::fs::remove_file(&tar);
    r
}
