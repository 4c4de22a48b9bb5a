//! Manifests, indexes and platform choice.
//!
//! The documents are parsed into small local structs (rather than `oci-spec`'s) because the
//! same struct must read Docker schema 2 and OCI documents alike, keep unknown fields out of
//! the way, and the raw bytes — never a re-serialisation — are what gets stored and pushed.

use serde::{Deserialize, Serialize};

use berth_image::Digest;

use crate::error::{Error, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What a manifest GET accepts.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Largest manifest or index accepted (containerd's limit).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG: u64 = 16 << 20;

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// What a manifest GET returned.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

/// Parses a manifest or index, by its Content-Type or (when that is vague) its shape.
pub fn parse(content_type: &str, raw: &[u8], what: &str) -> Result<Document> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion", default)]
        schema_version: u32,
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(raw)
        .map_err(|e| Error::Protocol(format!("{what}: manifest is not valid JSON: {e}")))?;
    let mt = if !probe.media_type.is_empty() {
        probe.media_type.as_str()
    } else {
        ct
    };
    if probe.schema_version == 1 || mt == DOCKER_SCHEMA1 || mt == DOCKER_SCHEMA1_SIGNED {
        return Err(Error::Protocol(format!(
            "{what}: Docker image manifest schema 1 is not supported (deprecated); push the image again with a current client"
        )));
    }
    let is_index = mt == OCI_INDEX
        || mt == DOCKER_LIST
        || (mt != OCI_MANIFEST && mt != DOCKER_MANIFEST && probe.manifests.is_some());
    let bad = |e: serde_json::Error| Error::Protocol(format!("{what}: malformed manifest: {e}"));
    if is_index {
        Ok(Document::Index(serde_json::from_slice(raw).map_err(bad)?))
    } else {
        let m: Manifest = serde_json::from_slice(raw).map_err(bad)?;
        for l in &m.layers {
            if !is_layer_type(&l.media_type) {
                return Err(Error::Protocol(format!(
                    "{what}: layer {} has unsupported media type {:?}",
                    l.digest, l.media_type
                )));
            }
        }
        Ok(Document::Manifest(m))
    }
}

/// Layer media types berth can unpack.
pub fn is_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        DOCKER_LAYER_GZIP | DOCKER_LAYER | OCI_LAYER | OCI_LAYER_GZIP | OCI_LAYER_ZSTD
    ) || mt.is_empty()
}

/// An OS / architecture / variant triple (`linux/arm64/v8`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// The platform this machine runs.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", ""),
            "x86" => ("386", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" => ("ppc64le", ""),
            "s390x" => ("s390x", ""),
            "riscv64" => ("riscv64", ""),
            other => (other, ""),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.into(),
        }
    }

    /// Parses `os[/arch[/variant]]` (`linux`, `linux/arm64`, `linux/arm/v7`), with docker's
    /// normalisation of architecture names.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::Config(format!(
                "invalid platform {s:?}: want os[/arch[/variant]]"
            )));
        }
        let host = Platform::host();
        let os = parts[0].to_ascii_lowercase();
        let (architecture, mut variant) = match parts.get(1) {
            Some(a) => normalize_arch(&a.to_ascii_lowercase()),
            None => (host.architecture.clone(), host.variant.clone()),
        };
        if let Some(v) = parts.get(2) {
            variant = v.to_ascii_lowercase();
        }
        if architecture == "arm64" && variant == "v8" {
            variant.clear();
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// Whether an index entry's platform satisfies this one. A wanted variant must match; an
    /// arm64 `v8` variant is the same as none.
    pub fn matches(&self, p: &Platform) -> bool {
        let (arch, var) = normalize_arch(&p.architecture);
        let var = if p.variant.is_empty() {
            var
        } else {
            p.variant.clone()
        };
        let var = if arch == "arm64" && var == "v8" {
            String::new()
        } else {
            var
        };
        p.os == self.os
            && arch == self.architecture
            && (self.variant.is_empty() || var == self.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> (String, String) {
    let (arch, var) = match a {
        "x86_64" | "x86-64" => ("amd64", ""),
        "aarch64" => ("arm64", ""),
        "armhf" | "armel" => ("arm", if a == "armhf" { "v7" } else { "v6" }),
        "i386" | "i686" => ("386", ""),
        other => (other, ""),
    };
    (arch.to_string(), var.to_string())
}

/// Picks the entry of an index for `want`. Among matches, an exact variant is preferred; an
/// entry without a platform matches anything (single-image indexes from OCI layouts).
pub fn choose<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| match &d.platform {
            Some(p) => want.matches(p),
            None => true,
        })
        .collect();
    candidates
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant == want.variant)
        })
        .or(candidates.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn index() -> Index {
        let entry = |n, arch: &str, variant: &str| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: d(n),
            size: 1,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.into(),
            }),
            urls: vec![],
        };
        Index {
            schema_version: 2,
            media_type: OCI_INDEX.into(),
            manifests: vec![
                entry(1, "amd64", ""),
                entry(2, "arm", "v6"),
                entry(3, "arm", "v7"),
                entry(4, "arm64", "v8"),
                Descriptor {
                    platform: Some(Platform {
                        os: "unknown".into(),
                        architecture: "unknown".into(),
                        variant: String::new(),
                    }),
                    ..entry(5, "x", "")
                },
            ],
        }
    }

    #[test]
    fn chooses_platforms_like_docker() {
        let i = index();
        let pick = |s: &str| choose(&i, &Platform::parse(s).unwrap()).map(|x| x.digest.clone());
        assert_eq!(pick("linux/amd64"), Some(d(1)));
        assert_eq!(pick("linux/x86_64"), Some(d(1)));
        assert_eq!(pick("linux/arm/v7"), Some(d(3)));
        assert_eq!(pick("linux/arm/v6"), Some(d(2)));
        assert_eq!(pick("linux/arm64"), Some(d(4)));
        assert_eq!(pick("linux/arm64/v8"), Some(d(4)));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn parses_documents_and_refuses_schema1() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":3}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{}","size":5}}]}}"#,
            d(1),
            d(2)
        );
        assert!(
            matches!(parse("", m.as_bytes(), "x").unwrap(), Document::Manifest(m) if m.layers.len() == 1)
        );
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3}}]}}"#,
            d(1)
        );
        assert!(matches!(
            parse(OCI_INDEX, i.as_bytes(), "x").unwrap(),
            Document::Index(_)
        ));
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(
            matches!(parse("", s1.as_bytes(), "x"), Err(Error::Protocol(m)) if m.contains("schema 1"))
        );
        assert!(parse("", b"not json", "x").is_err());
        let bad_layer = m.replace(DOCKER_LAYER_GZIP, "application/x-evil");
        assert!(
            matches!(parse("", bad_layer.as_bytes(), "x"), Err(Error::Protocol(m)) if m.contains("unsupported media type"))
        );
    }
}
