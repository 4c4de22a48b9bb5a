//! Loading and validating a bundle's `config.json`.
//!
//! Types come from the `oci-spec` crate. Deserialisation goes through `serde_path_to_error` so
//! that a malformed document is reported with the path of the bad field
//! (`linux.namespaces[1].type: unknown variant ...`), and [`validate`] rejects specs that parse
//! but cannot be honoured, again naming the field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};

/// A validated spec with its rootfs resolved to an absolute path.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// The container's root filesystem, absolute and canonical.
    pub rootfs: PathBuf,
    /// The parsed spec.
    pub spec: Spec,
}

/// Reads `<bundle>/config.json`, parses it and validates it.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).ctx(|| format!("bundle {}", bundle.display()))?;
    let path = dir.join("config.json");
    let data = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    let spec = parse(&data).map_err(|e| match e {
        Error::InvalidSpec { field, reason } => Error::InvalidSpec {
            field: format!("{}: {field}", path.display()),
            reason,
        },
        other => other,
    })?;
    let rootfs = validate(&spec, &dir)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Parses a spec document, naming the offending field on error.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            "config.json".to_string()
        } else {
            path
        };
        Error::spec(field, e.inner().to_string())
    })
}

/// Checks what the types alone cannot: that the rootfs exists, that namespaces are not
/// repeated, that a user namespace has mappings and mappings have a user namespace, and so on.
/// Returns the absolute rootfs path.
pub fn validate(spec: &Spec, bundle_dir: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle_dir.join(root.path())
    };
    let meta = std::fs::metadata(&rootfs)
        .map_err(|e| Error::spec("root.path", format!("{}: {e}", rootfs.display())))?;
    if !meta.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("{}: not a directory", rootfs.display()),
        ));
    }
    let rootfs = rootfs
        .canonicalize()
        .map_err(|e| Error::spec("root.path", format!("{}: {e}", rootfs.display())))?;

    check_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "missing"))?;
    match process.args() {
        Some(args) if !args.is_empty() => {}
        _ => return Err(Error::spec("process.args", "must name a program to run")),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::spec(
            "process.cwd",
            format!("{}: must be an absolute path", process.cwd().display()),
        ));
    }

    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::spec("linux", "missing: this runtime runs Linux containers"))?;
    // Fields this runtime does not implement are refused, never silently ignored: a container
    // must not run with less than it asked for.
    let unsupported = [
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        ("linux.timeOffsets", linux.time_offsets().is_some()),
        (
            "linux.netDevices",
            linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
        ),
        ("process.scheduler", process.scheduler().is_some()),
        (
            "linux.seccomp.listenerPath",
            linux
                .seccomp()
                .as_ref()
                .is_some_and(|s| s.listener_path().is_some()),
        ),
    ];
    for (field, set) in unsupported {
        if set {
            return Err(Error::spec(field, "not supported by this runtime"));
        }
    }
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !crate::process::apparmor_enabled()
    {
        return Err(Error::spec(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host",
        ));
    }
    let mut seen = HashSet::new();
    let mut new_userns = false;
    let mut has_userns = false;
    let mut new_uts = false;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::spec(
                format!("linux.namespaces[{i}]"),
                format!("namespace {} listed twice", ns.typ()),
            ));
        }
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(Error::spec(
                format!("linux.namespaces[{i}].type"),
                "time namespaces are not supported",
            ));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(Error::spec(
                    format!("linux.namespaces[{i}].path"),
                    format!("{}: no such file", p.display()),
                ));
            }
        }
        if ns.typ() == LinuxNamespaceType::User {
            has_userns = true;
            new_userns = ns.path().is_none();
        }
        // As runc: a hostname needs a uts namespace of the container's own, new or joined.
        if ns.typ() == LinuxNamespaceType::Uts {
            new_uts = true;
        }
    }
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    if new_userns {
        check_mappings("linux.uidMappings", uid)?;
        check_mappings("linux.gidMappings", gid)?;
    } else if !uid.is_empty() || !gid.is_empty() {
        let field = if uid.is_empty() {
            "linux.gidMappings"
        } else {
            "linux.uidMappings"
        };
        let why = if has_userns {
            "mappings cannot be set when joining an existing user namespace"
        } else {
            "mappings need a user namespace in linux.namespaces"
        };
        return Err(Error::spec(field, why));
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !new_uts {
        return Err(Error::spec(
            "hostname",
            "setting the hostname needs a uts namespace in linux.namespaces",
        ));
    }
    if let Some(p) = linux.cgroups_path() {
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::spec(
                "linux.cgroupsPath",
                format!("{}: must not contain '..'", p.display()),
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::spec(
                format!("mounts[{i}].destination"),
                format!("{}: must be an absolute path", m.destination().display()),
            ));
        }
    }
    Ok(rootfs)
}

/// `ociVersion` must be a 1.x semantic version ("1.0.2", "1.2.0-dev").
fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric || parts[0] != "1" {
        return Err(Error::spec(
            "ociVersion",
            format!("{v:?}: not a supported version (1.x.y)"),
        ));
    }
    Ok(())
}

fn check_mappings(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Err(Error::spec(
            field,
            "a new user namespace needs at least one mapping",
        ));
    }
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(Error::spec(format!("{field}[{i}].size"), "must not be 0"));
        }
        if m.container_id().checked_add(m.size()).is_none()
            || m.host_id().checked_add(m.size()).is_none()
        {
            return Err(Error::spec(
                format!("{field}[{i}]"),
                "range overflows 32 bits",
            ));
        }
    }
    Ok(())
}

/// Validates a container id as runc does: no path separators, no empty id.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn bundle() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        d
    }

    fn check(v: serde_json::Value) -> Result<PathBuf> {
        let d = bundle();
        let spec = parse(v.to_string().as_bytes())?;
        validate(&spec, d.path())
    }

    fn field_of(r: Result<PathBuf>) -> String {
        match r {
            Err(Error::InvalidSpec { field, .. }) => field,
            other => panic!("expected an invalid spec error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_minimal_spec() {
        let d = bundle();
        let spec = parse(base().to_string().as_bytes()).unwrap();
        let rootfs = validate(&spec, d.path()).unwrap();
        assert_eq!(rootfs, d.path().join("rootfs").canonicalize().unwrap());
    }

    #[test]
    fn malformed_json_names_the_field() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        assert_eq!(field_of(check(v)), "linux.namespaces[1].type");
        let err = parse(b"{not json").unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }

    #[test]
    fn missing_rootfs_is_reported() {
        let mut v = base();
        v["root"]["path"] = "nope".into();
        assert_eq!(field_of(check(v)), "root.path");
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        assert_eq!(field_of(check(v.clone())), "linux.uidMappings");
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
        v["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert_eq!(field_of(check(v.clone())), "linux.uidMappings[0].size");
        v["linux"]["uidMappings"][0]["size"] = 1.into();
        check(v).unwrap();
    }

    #[test]
    fn mappings_without_user_namespace_are_refused() {
        let mut v = base();
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert_eq!(field_of(check(v)), "linux.uidMappings");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "pid"}));
        assert_eq!(field_of(check(v)), "linux.namespaces[2]");
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let mut v = base();
        v["hostname"] = "box".into();
        assert_eq!(field_of(check(v)), "hostname");
    }

    #[test]
    fn empty_args_are_refused() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(field_of(check(v)), "process.args");
    }

    #[test]
    fn version_is_checked() {
        for ok in ["1.0.0", "1.0.2-dev", "1.2.0", "1.1.0+dev"] {
            check_version(ok).unwrap();
        }
        for bad in ["invalid", "2.0.0", "1.0", "", "1.x.0"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
