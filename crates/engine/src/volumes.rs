//! Volumes with the `local` driver: `<data-root>/volumes/<name>/_data` holds the data and
//! `<data-root>/volumes/<name>/volume.json` the record (driver, labels, options, whether it is
//! anonymous, whether the image's content was copied in). Records are written crash-safely;
//! a volume's data is never removed except by `volume rm`, `volume prune` or `rm -v` of the
//! container an anonymous volume belongs to.
//!
//! The local driver's options are docker's: `type`, `device`, `o` (and `size`). A volume with
//! `type=tmpfs` is a tmpfs mounted at each use, one with `o=bind` binds `device`; any other
//! `type` mounts `device` with that filesystem type. Others are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{conflict, invalid, not_found, unavailable, EngineError};

/// The label dockerd puts on a volume created without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME): removed with it by `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
    /// The image's content at the first mount point was copied in (it happens once).
    #[serde(default)]
    pub populated: bool,
}

impl berth_durable::Record for Volume {
    const KIND: &'static str = "volume record";
    const SCHEMA: u32 = 1;
}

impl Volume {
    /// Whether the data is the volume's own directory (not a tmpfs or another device).
    pub fn is_plain(&self) -> bool {
        self.options.is_empty()
    }
}

/// Docker's rule for local volume names.
pub fn validate_name(name: &str) -> Result<(), EngineError> {
    let mut b = name.bytes();
    let ok = name.len() >= 2
        && b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    if name.len() < 2 {
        return Err(invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    Err(invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// The volume service.
#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    /// Serialises creation and removal.
    lock: Mutex<()>,
}

impl Volumes {
    pub fn new(data_root: &Path) -> Self {
        // Removals cut short by a crash (see `remove`): finish them.
        for e in std::fs::read_dir(data_root.join("volumes"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(".removing-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Volumes {
            root: data_root.join("volumes"),
            lock: Mutex::new(()),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where a volume's data is.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir(name).join("_data")
    }

    fn save(&self, v: &Volume) -> Result<(), EngineError> {
        Ok(berth_durable::save(
            &self.dir(&v.name).join("volume.json"),
            v,
        )?)
    }

    /// `POST /volumes/create`: a new volume, or the existing one of that name (as docker).
    /// A volume created without a name is anonymous, whoever asks for it (a container's
    /// `-v /path` or `POST /volumes/create` with no name): it gets dockerd's
    /// `com.docker.volume.anonymous` label and `volume prune` takes it without `all=true`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        mut labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume, EngineError> {
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or("local");
        if driver != "local" {
            return Err(not_found(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        for k in options.keys() {
            if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
                return Err(invalid(format!("invalid option key: {k:?}")));
            }
        }
        let bind = options
            .get("o")
            .is_some_and(|o| o.split(',').any(|x| x == "bind"));
        if bind && !options.get("device").is_some_and(|d| d.starts_with('/')) {
            return Err(invalid(
                "invalid option: a bind volume (o=bind) needs an absolute device path",
            ));
        }
        if options.contains_key("device") && !options.contains_key("type") && !bind {
            return Err(invalid("missing required option: \"type\""));
        }
        let anonymous = name.is_none_or(str::is_empty);
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(n)?;
                n.to_string()
            }
            None => {
                labels.insert(ANONYMOUS_LABEL.into(), String::new());
                crate::id::ContainerId::random().as_str().to_string()
            }
        };
        let _g = self.lock.lock().expect("volumes");
        if let Ok(v) = self.get(&name) {
            return Ok(v);
        }
        let v = Volume {
            name: name.clone(),
            driver: driver.into(),
            created: berth_shim::rfc3339(std::time::SystemTime::now()),
            labels,
            options,
            anonymous,
            populated: false,
        };
        std::fs::create_dir_all(self.data_dir(&name))
            .map_err(|e| unavailable(format!("create volume {name}: {e}")))?;
        self.save(&v)?;
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<Volume, EngineError> {
        if validate_name(name).is_err() {
            return Err(not_found(format!("get {name}: no such volume")));
        }
        // Only a missing record is "no such volume": one this berth cannot read must not be
        // taken for absent, or `create` would write a new record over it.
        berth_durable::load(&self.dir(name).join("volume.json")).map_err(|e| {
            if e.is_not_found() {
                not_found(format!("get {name}: no such volume"))
            } else {
                e.into()
            }
        })
    }

    pub fn list(&self) -> Vec<Volume> {
        let mut v: Vec<Volume> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Records that the image's content was copied in.
    pub fn mark_populated(&self, name: &str) -> Result<(), EngineError> {
        let mut v = self.get(name)?;
        v.populated = true;
        self.save(&v)
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it (`users`).
    #[tracing::instrument(level = "debug", skip_all, fields(name = %name))]
    pub fn remove(&self, name: &str, users: &[String]) -> Result<(), EngineError> {
        let _g = self.lock.lock().expect("volumes");
        self.get(name)?;
        if !users.is_empty() {
            return Err(conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        // Renamed first: a crash half-way leaves a trash directory, not half a volume.
        let trash = self.root.join(format!(".removing-{name}"));
        std::fs::rename(self.dir(name), &trash)
            .map_err(|e| unavailable(format!("remove {name}: {e}")))?;
        std::fs::remove_dir_all(&trash).map_err(|e| unavailable(format!("remove {name}: {e}")))?;
        Ok(())
    }

    /// Bytes used by a volume's data (for `system df`).
    pub fn size(&self, name: &str) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(md) = std::fs::symlink_metadata(p) else {
                return 0;
            };
            if md.is_dir() {
                std::fs::read_dir(p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| walk(&e.path()))
                    .sum()
            } else {
                md.len()
            }
        }
        walk(&self.data_dir(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_options_and_records() {
        for bad in ["a", "with/slash", "-dash", "sp ace", ""] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("db-data_1.x").unwrap();
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::new(d.path());
        let a = v
            .create(Some("data"), None, BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(
            v.create(Some("data"), None, BTreeMap::new(), BTreeMap::new())
                .unwrap(),
            a,
            "creating an existing volume gives it back"
        );
        let bad = BTreeMap::from([("bogus".to_string(), "1".to_string())]);
        assert!(v.create(Some("x1"), None, BTreeMap::new(), bad).is_err());
        assert!(v.get("x1").is_err(), "nothing created");
        assert!(v
            .create(Some("x2"), Some("nfs"), BTreeMap::new(), BTreeMap::new(),)
            .is_err());
        std::fs::write(v.data_dir("data").join("f"), b"keep").unwrap();
        assert!(v.remove("data", &["c1".into()]).is_err());
        assert!(v.data_dir("data").join("f").exists(), "in use: kept");
        v.remove("data", &[]).unwrap();
        assert!(v.list().is_empty());
        assert!(!a.anonymous && !a.labels.contains_key(ANONYMOUS_LABEL));
        let anon = v
            .create(None, None, BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(anon.anonymous, "no name given: anonymous, as dockerd");
        assert_eq!(
            anon.labels.get(ANONYMOUS_LABEL).map(String::as_str),
            Some("")
        );
        assert_eq!(anon.name.len(), 64);
    }
}
