//! The build cache's key for a step: what must be equal for a step's result to be reused.

use sha2::Digest;

/// sha256 over the parent image (`scratch` for none), the step's history text, the image
/// config the step starts from (as JSON), and what else the step depends on (`extra`: the
/// hashed sources of a COPY, the mounts of a RUN), each separated by a NUL.
pub fn key(parent: Option<&str>, created_by: &str, config_json: &[u8], extra: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(parent.unwrap_or("scratch"));
    h.update(b"\0");
    h.update(created_by);
    h.update(b"\0");
    h.update(config_json);
    h.update(b"\0");
    h.update(extra);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_key() {
        let base = key(Some("sha256:a"), "RUN x", b"{}", "");
        assert_eq!(base.len(), 64);
        assert_eq!(base, key(Some("sha256:a"), "RUN x", b"{}", ""));
        for other in [
            key(None, "RUN x", b"{}", ""),
            key(Some("sha256:b"), "RUN x", b"{}", ""),
            key(Some("sha256:a"), "RUN y", b"{}", ""),
            key(Some("sha256:a"), "RUN x", b"{\"Env\":[]}", ""),
            key(Some("sha256:a"), "RUN x", b"{}", "@f"),
        ] {
            assert_ne!(base, other);
        }
        // The separators keep inputs from sliding into each other.
        assert_ne!(key(Some("a"), "bc", b"", ""), key(Some("ab"), "c", b"", ""));
    }
}
