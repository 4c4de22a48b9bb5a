//! Host devices given to a container, as dockerd turns them into the OCI spec: `--device`
//! (`HostConfig.Devices`) becomes a device node in the container and a cgroup rule allowing
//! it; `--device-cgroup-rule` (`HostConfig.DeviceCgroupRules`) becomes an allow rule. Both
//! come after the default rules, so they widen them; the runtime enforces the list on cgroup v1
//! and, by eBPF, on cgroup v2.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::model::container::{DeviceMapping, HostConfig};
use serde_json::{json, Value};

use crate::error::{invalid, EngineError};

/// What the host devices add to the spec.
#[derive(Debug, Default)]
pub struct Devices {
    /// `linux.devices`: nodes to create in the container's /dev.
    pub nodes: Vec<Value>,
    /// `linux.resources.devices` entries, after the defaults.
    pub rules: Vec<Value>,
}

/// The devices and rules `hc` asks for.
pub fn from_host_config(hc: &HostConfig) -> Result<Devices, EngineError> {
    let mut d = Devices::default();
    for m in hc.devices.iter().flatten() {
        mapping(m, &mut d)?;
    }
    for r in hc.device_cgroup_rules.iter().flatten() {
        d.rules.push(cgroup_rule(r)?);
    }
    Ok(d)
}

/// `rwm` letters, each at most once, at least one.
fn valid_access(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 3
        && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && s.chars().enumerate().all(|(i, c)| !s[..i].contains(c))
}

fn mapping(m: &DeviceMapping, out: &mut Devices) -> Result<(), EngineError> {
    let src = m.path_on_host.as_deref().unwrap_or_default();
    if src.is_empty() {
        return Err(invalid("invalid device mapping: no path on the host"));
    }
    let dst = match m.path_in_container.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => src,
    };
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "{dst} is not an absolute path in the container"
        )));
    }
    let access = match m.cgroup_permissions.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => "rwm",
    };
    if !valid_access(access) {
        return Err(invalid(format!("invalid device mode: {access}")));
    }
    let gather = |e: String| {
        invalid(format!(
            "error gathering device information while adding custom device {src:?}: {e}"
        ))
    };
    let meta = std::fs::metadata(src).map_err(|e| gather(os_message(&e)))?;
    if meta.is_dir() {
        // As dockerd: every device below the directory, at the same place below `dst`.
        let mut found = Vec::new();
        walk(Path::new(src), &mut found).map_err(|e| gather(os_message(&e)))?;
        for (path, meta) in found {
            let rel = path.strip_prefix(src).unwrap_or(&path);
            add(&PathBuf::from(dst).join(rel), &meta, access, out);
        }
        return Ok(());
    }
    let ft = meta.file_type();
    if !ft.is_block_device() && !ft.is_char_device() {
        return Err(gather("not a device node".into()));
    }
    add(Path::new(dst), &meta, access, out);
    Ok(())
}

/// "No such file or directory", as Go prints an errno (without Rust's "(os error 2)").
fn os_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s.to_string(),
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = std::fs::symlink_metadata(e.path())?;
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_block_device() || ft.is_char_device() {
            out.push((e.path(), meta));
        }
    }
    Ok(())
}

fn add(dst: &Path, meta: &std::fs::Metadata, access: &str, out: &mut Devices) {
    let t = if meta.file_type().is_block_device() {
        "b"
    } else {
        "c"
    };
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    out.nodes.push(json!({
        "path": dst, "type": t, "major": major, "minor": minor,
        "fileMode": meta.mode() & 0o777, "uid": meta.uid(), "gid": meta.gid(),
    }));
    out.rules.push(json!({
        "allow": true, "type": t, "major": major, "minor": minor, "access": access,
    }));
}

/// `c 1:3 mr`, `b 8:* rwm`, `a *:* rwm`: docker's `--device-cgroup-rule` form.
fn cgroup_rule(rule: &str) -> Result<Value, EngineError> {
    let bad = || invalid(format!("invalid device cgroup format '{rule}'"));
    let parts: Vec<&str> = rule.split(' ').collect();
    let [t, nums, access] = parts[..] else {
        return Err(bad());
    };
    if !matches!(t, "a" | "b" | "c") || !valid_access(access) {
        return Err(bad());
    }
    let (maj, min) = nums.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Option<i64>, EngineError> {
        if s == "*" {
            return Ok(None);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map(Some).map_err(|_| bad())
    };
    let mut v = json!({"allow": true, "type": t, "access": access});
    if let Some(m) = num(maj)? {
        v["major"] = json!(m);
    }
    if let Some(m) = num(min)? {
        v["minor"] = json!(m);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_rules_as_docker_reads_them() {
        assert_eq!(
            cgroup_rule("c 1:3 mr").unwrap(),
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mr"})
        );
        assert_eq!(
            cgroup_rule("b 7:* rwm").unwrap(),
            json!({"allow": true, "type": "b", "major": 7, "access": "rwm"})
        );
        for bad in [
            "",
            "c 1:3",
            "x 1:3 r",
            "c 1:3 rr",
            "c 1-3 r",
            "c a:3 r",
            "c 1:3 rwmx",
        ] {
            let e = cgroup_rule(bad).unwrap_err();
            assert!(
                e.to_string().contains("invalid device cgroup format"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_device_becomes_a_node_and_a_rule() {
        let hc = HostConfig {
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/null".into()),
                path_in_container: Some("/dev/mynull".into()),
                cgroup_permissions: Some("r".into()),
            }]),
            ..Default::default()
        };
        let d = from_host_config(&hc).unwrap();
        assert_eq!(d.nodes[0]["path"], "/dev/mynull");
        assert_eq!(d.nodes[0]["type"], "c");
        assert_eq!(
            (d.nodes[0]["major"].as_u64(), d.nodes[0]["minor"].as_u64()),
            (Some(1), Some(3))
        );
        assert_eq!(d.rules[0]["access"], "r");
        let missing = HostConfig {
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/no-such-device".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let e = from_host_config(&missing).unwrap_err().to_string();
        assert!(
            e.contains("error gathering device information while adding custom device \"/dev/no-such-device\": no such file or directory"),
            "{e}"
        );
    }
}
