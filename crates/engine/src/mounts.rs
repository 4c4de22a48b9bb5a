//! A container's mounts from its create request: `Binds` (`-v src:dst[:opts]`), `Mounts`
//! (`--mount`), `Tmpfs` (`--tmpfs`), `VolumesFrom`, and the anonymous volumes of
//! `Config.Volumes` and the image's `VOLUME`s, resolved once at create into mount points kept
//! in the container's record (docker's `MountPoints`), checked the way docker checks them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::container::{HostConfig, Mount, MountType};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, EngineError};

/// One mount point of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: Option<String>,
    /// The host path (binds; volumes: filled in when the spec is built).
    #[serde(default)]
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// `rprivate`, `rshared`, … (binds).
    #[serde(default)]
    pub propagation: String,
    /// The mode text as given (`ro,z`, …), for inspect.
    #[serde(default)]
    pub mode: String,
    /// Copy the image's content into a new, empty volume (not with `nocopy`).
    #[serde(default)]
    pub copy: bool,
    /// tmpfs options (`size=…,mode=…`).
    #[serde(default)]
    pub tmpfs: String,
    /// Volumes: the part of the volume mounted (`VolumeOptions.Subpath`); empty: all of it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// What is wanted before volumes are looked up or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub point: MountPoint,
    /// For volumes: labels and driver options of a volume to create (`--mount volume-opt`).
    pub labels: BTreeMap<String, String>,
    pub driver_opts: BTreeMap<String, String>,
    /// An anonymous volume (no name given).
    pub anonymous: bool,
    /// `-v` creates a missing bind source; `--mount` refuses it.
    pub create_source: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn check_destination(dst: &str) -> Result<String, EngineError> {
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount config: mount path must be absolute: {dst}"
        )));
    }
    let clean = Path::new(dst)
        .components()
        .collect::<std::path::PathBuf>()
        .display()
        .to_string();
    if clean == "/" {
        return Err(invalid("invalid mount config: the destination cannot be /"));
    }
    if clean == "/proc" || clean.starts_with("/proc/") {
        return Err(invalid(format!(
            "invalid mount config: {clean} is reserved: it is the container's /proc"
        )));
    }
    Ok(clean)
}

/// `-v src:dst[:opts]` or `-v dst`.
pub fn parse_bind(spec: &str) -> Result<Wanted, EngineError> {
    let bad = |why: &str| invalid(format!("invalid volume specification: '{spec}': {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] if d.starts_with('/') => (Some(*s), *d, ""),
        [d, m] if d.starts_with('/') => (None, *d, *m),
        [s, d, m] => (Some(*s), *d, *m),
        _ => return Err(bad("invalid format")),
    };
    let dst = check_destination(dst).map_err(|e| bad(&e.message))?;
    let mut rw = true;
    let mut propagation = String::new();
    let mut copy = true;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" => {}
            "nocopy" => copy = false,
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            other => return Err(bad(&format!("invalid mode: {other}"))),
        }
    }
    if propagation.is_empty() && src.is_some_and(|s| s.starts_with('/')) {
        propagation = "rprivate".into();
    }
    let point = |typ: &str, name: Option<String>, source: String| MountPoint {
        typ: typ.into(),
        name,
        source,
        destination: dst.clone(),
        rw,
        propagation: propagation.clone(),
        mode: mode.to_string(),
        copy,
        tmpfs: String::new(),
        subpath: String::new(),
    };
    match src {
        Some(s) if s.starts_with('/') => Ok(Wanted {
            point: point("bind", None, s.to_string()),
            labels: BTreeMap::new(),
            driver_opts: BTreeMap::new(),
            anonymous: false,
            create_source: true,
        }),
        Some(s) => {
            if !propagation.is_empty() {
                return Err(bad("propagation applies to bind mounts only"));
            }
            crate::volumes::validate_name(s).map_err(|e| bad(&e.message))?;
            Ok(Wanted {
                point: point("volume", Some(s.to_string()), String::new()),
                labels: BTreeMap::new(),
                driver_opts: BTreeMap::new(),
                anonymous: false,
                create_source: false,
            })
        }
        None => Ok(Wanted {
            point: point("volume", None, String::new()),
            labels: BTreeMap::new(),
            driver_opts: BTreeMap::new(),
            anonymous: true,
            create_source: false,
        }),
    }
}

/// `--mount type=…` as the API carries it.
pub fn parse_mount(m: &Mount) -> Result<Wanted, EngineError> {
    let typ = m.typ.as_ref().map(|t| t.to_string()).unwrap_or_default();
    let bad = |why: String| invalid(format!("invalid mount config for type \"{typ}\": {why}"));
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(bad("field Target must not be empty".into()));
    }
    let dst = check_destination(&target).map_err(|e| bad(e.message))?;
    let rw = !m.read_only.unwrap_or(false);
    let source = m.source.clone().unwrap_or_default();
    match m.typ {
        Some(MountType::Bind) => {
            if m.volume_options.is_some() {
                return Err(bad("field VolumeOptions must not be specified".into()));
            }
            if source.is_empty() {
                return Err(bad("field Source must not be empty".into()));
            }
            if !source.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            if !Path::new(&source).exists() {
                return Err(bad(format!("bind source path does not exist: {source}")));
            }
            let propagation = m
                .bind_options
                .as_ref()
                .and_then(|b| b.propagation.as_ref())
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rprivate".into());
            Ok(Wanted {
                point: MountPoint {
                    typ: "bind".into(),
                    name: None,
                    source,
                    destination: dst,
                    rw,
                    propagation,
                    mode: String::new(),
                    copy: false,
                    tmpfs: String::new(),
                    subpath: String::new(),
                },
                labels: BTreeMap::new(),
                driver_opts: BTreeMap::new(),
                anonymous: false,
                create_source: false,
            })
        }
        Some(MountType::Volume) => {
            if m.bind_options.is_some() {
                return Err(bad("field BindOptions must not be specified".into()));
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            if !source.is_empty() {
                crate::volumes::validate_name(&source).map_err(|e| bad(e.message))?;
            }
            Ok(Wanted {
                point: MountPoint {
                    typ: "volume".into(),
                    name: (!source.is_empty()).then_some(source.clone()),
                    source: String::new(),
                    destination: dst,
                    rw,
                    propagation: String::new(),
                    mode: String::new(),
                    copy: !vo.no_copy.unwrap_or(false),
                    tmpfs: String::new(),
                    subpath: match vo.subpath.as_deref().filter(|s| !s.is_empty()) {
                        Some(s) => crate::containers::subpath::check(s)?,
                        None => String::new(),
                    },
                },
                labels: vo.labels.unwrap_or_default().into_iter().collect(),
                driver_opts: vo
                    .driver_config
                    .and_then(|d| d.options)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                anonymous: source.is_empty(),
                create_source: false,
            })
        }
        Some(MountType::Tmpfs) => {
            if !source.is_empty() {
                return Err(bad("field Source must not be specified".into()));
            }
            let mut opts = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if let Some(s) = t.size_bytes.filter(|s| *s > 0) {
                    opts.push(format!("size={s}"));
                }
                if let Some(mode) = t.mode.filter(|m| *m > 0) {
                    opts.push(format!("mode={mode:o}"));
                }
            }
            Ok(Wanted {
                point: tmpfs_point(&dst, &opts.join(","), rw),
                labels: BTreeMap::new(),
                driver_opts: BTreeMap::new(),
                anonymous: false,
                create_source: false,
            })
        }
        _ => Err(invalid(format!("mount type \"{typ}\" is not supported"))),
    }
}

fn tmpfs_point(dst: &str, opts: &str, rw: bool) -> MountPoint {
    MountPoint {
        typ: "tmpfs".into(),
        name: None,
        source: String::new(),
        destination: dst.to_string(),
        rw,
        propagation: String::new(),
        mode: String::new(),
        copy: false,
        tmpfs: opts.to_string(),
        subpath: String::new(),
    }
}

/// Every mount a new container asks for, in docker's order of precedence: `--mount`, then
/// `-v`, then `--tmpfs`; `Config.Volumes` and the image's volumes fill destinations nothing
/// else covers with anonymous volumes. Two mounts on one destination are refused.
pub fn wanted(
    hc: &HostConfig,
    config_volumes: &[String],
    image_volumes: &[String],
) -> Result<Vec<Wanted>, EngineError> {
    let mut out: Vec<Wanted> = Vec::new();
    let add = |w: Wanted, out: &mut Vec<Wanted>| -> Result<(), EngineError> {
        if out
            .iter()
            .any(|o| o.point.destination == w.point.destination)
        {
            return Err(invalid(format!(
                "Duplicate mount point: {}",
                w.point.destination
            )));
        }
        out.push(w);
        Ok(())
    };
    for m in hc.mounts.iter().flatten() {
        add(parse_mount(m)?, &mut out)?;
    }
    for b in hc.binds.iter().flatten() {
        add(parse_bind(b)?, &mut out)?;
    }
    for (dst, opts) in hc.tmpfs.iter().flatten() {
        let dst = check_destination(dst)?;
        let mut rw = true;
        let mut kept = Vec::new();
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => rw = false,
                "rw" => rw = true,
                o => kept.push(o),
            }
        }
        add(
            Wanted {
                point: tmpfs_point(&dst, &kept.join(","), rw),
                labels: BTreeMap::new(),
                driver_opts: BTreeMap::new(),
                anonymous: false,
                create_source: false,
            },
            &mut out,
        )?;
    }
    for v in config_volumes.iter().chain(image_volumes.iter()) {
        let dst = check_destination(v)?;
        if out.iter().any(|o| o.point.destination == dst) {
            continue;
        }
        let mut w = parse_bind(&dst)?;
        w.anonymous = true;
        out.push(w);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_volumes_and_modes() {
        let w = parse_bind("/srv/site:/usr/share/site:ro,rshared").unwrap();
        assert_eq!(w.point.typ, "bind");
        assert!(!w.point.rw);
        assert_eq!(w.point.propagation, "rshared");
        let w = parse_bind("data:/var/lib/db").unwrap();
        assert_eq!(w.point.typ, "volume");
        assert_eq!(w.point.name.as_deref(), Some("data"));
        assert!(w.point.copy && !w.anonymous);
        let w = parse_bind("data:/var/lib/db:nocopy").unwrap();
        assert!(!w.point.copy);
        let w = parse_bind("/cache").unwrap();
        assert!(w.anonymous && w.point.name.is_none());
        for bad in [
            "a/b:/x",
            "data:relative",
            "data:/x:bogus",
            "/h:/proc",
            "/h:/proc/sys",
            "/h:/",
            "data:/x:rshared",
            "a:b:c:d",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn precedence_and_duplicates() {
        let hc = HostConfig {
            binds: Some(vec!["v1:/data".into()]),
            tmpfs: Some([("/run".to_string(), "size=1m".to_string())].into()),
            ..Default::default()
        };
        let w = wanted(&hc, &["/data".into(), "/other".into()], &["/img".into()]).unwrap();
        let dsts: Vec<&str> = w.iter().map(|w| w.point.destination.as_str()).collect();
        assert_eq!(dsts, vec!["/data", "/run", "/other", "/img"]);
        assert!(w[2].anonymous && w[3].anonymous);
        let hc = HostConfig {
            binds: Some(vec!["v1:/data".into(), "/h:/data".into()]),
            ..Default::default()
        };
        assert!(wanted(&hc, &[], &[]).is_err());
    }
}
