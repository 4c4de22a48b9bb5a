//! berth's one crash-safe write, and the versioned JSON records every crate keeps on disk.
//!
//! [`write`] replaces a file so that after a crash or power loss at any moment the path holds
//! either the old content or the new, never a mix or an empty file: the data goes to a
//! temporary file beside the target (a random name, so concurrent writers never share it),
//! is fsynced, renamed over the target, and the directory is fsynced so the rename itself is
//! on disk. The `atomic-write-file` crate does those steps; this crate fixes how berth uses
//! them and adds what it does not do:
//!
//! - [`replace`]: the same replacement without the fsyncs, for files that cannot outlive the
//!   boot or are rebuilt from a record on every start (the runtime's state under the exec
//!   root, a container's OCI bundle, pid files, caches). A killed process still never leaves
//!   a torn file; only a power loss can leave the old content, which nothing reads after a
//!   reboot. This keeps fsync off the container start path (the shim's two state writes
//!   with fsyncs cost 11 ms of a 21 ms `run --rm` on this machine's disk). [`replace_record`]
//!   is the same for a [`Record`].
//! - [`Record`]: a type kept as JSON with a `schema` number. [`save`] writes it with its
//!   schema; [`load`] refuses a record written by a newer berth (a downgrade must not
//!   misread, then overwrite, what it does not understand) and reads records without a
//!   `schema` key as schema 1, the format every record had before the key existed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What can go wrong reading or writing a file or record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{kind} {path}: not valid JSON for this record: {source}")]
    Corrupt {
        kind: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{kind} {path} has schema {found}; this berth knows up to {known}")]
    Newer {
        kind: &'static str,
        path: PathBuf,
        found: u32,
        known: u32,
    },
}

impl Error {
    /// The file does not exist (a record never written, or removed).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Replaces `path` with `data`, crash-safely (see the crate's documentation). The file gets
/// mode 0644 less the umask, like `std::fs::write`.
pub fn write(path: &Path, data: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = atomic_write_file::AtomicWriteFile::open(path).map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.commit().map_err(err)
}

/// Replaces `path` with `data` atomically but without fsync (see the crate's documentation
/// for which files may use it). The temporary file is removed when the rename fails.
pub fn replace(path: &Path, data: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, data).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// A type berth keeps on disk as a JSON record.
pub trait Record: Serialize + DeserializeOwned {
    /// What the record is, for messages ("container record", "network").
    const KIND: &'static str;
    /// The newest format this build writes and understands.
    const SCHEMA: u32;
}

/// Writes a record with its `schema` key, crash-safely. Records are JSON objects.
pub fn save<R: Record>(path: &Path, record: &R) -> Result<(), Error> {
    write(path, &versioned(record))
}

/// Writes a record with its `schema` key like [`save`], but with [`replace`]: for records of
/// things that do not outlive the boot.
pub fn replace_record<R: Record>(path: &Path, record: &R) -> Result<(), Error> {
    replace(path, &versioned(record))
}

fn versioned<R: Record>(record: &R) -> Vec<u8> {
    let mut v = serde_json::to_value(record).expect("records serialise");
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("schema".into(), R::SCHEMA.into());
    }
    serde_json::to_vec_pretty(&v).expect("a value serialises")
}

/// Reads a record, refusing one of a newer schema than this build knows.
pub fn load<R: Record>(path: &Path) -> Result<R, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &data)
}

/// [`load`] of bytes already read from `path`.
pub fn parse<R: Record>(path: &Path, data: &[u8]) -> Result<R, Error> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        schema: Option<u32>,
    }
    let corrupt = |source| Error::Corrupt {
        kind: R::KIND,
        path: path.to_path_buf(),
        source,
    };
    let probe: Probe = serde_json::from_slice(data).map_err(corrupt)?;
    let found = probe.schema.unwrap_or(1);
    if found > R::SCHEMA {
        return Err(Error::Newer {
            kind: R::KIND,
            path: path.to_path_buf(),
            found,
            known: R::SCHEMA,
        });
    }
    serde_json::from_slice(data).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Thing {
        name: String,
    }
    impl Record for Thing {
        const KIND: &'static str = "thing";
        const SCHEMA: u32 = 2;
    }

    #[test]
    fn write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target is left");
    }

    #[test]
    fn replace_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        replace(&p, b"one").unwrap();
        replace(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A rename onto a directory fails; its temporary file goes.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/x"), b"").unwrap();
        assert!(replace(&dir.path().join("d"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn write_into_a_missing_directory_fails_with_the_path() {
        let e = write(Path::new("/nonexistent-berth-dir/f"), b"x").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-berth-dir/f"), "{e}");
    }

    #[test]
    fn records_carry_their_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        save(&p, &Thing { name: "a".into() }).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["schema"], 2);
        assert_eq!(load::<Thing>(&p).unwrap(), Thing { name: "a".into() });
    }

    #[test]
    fn records_without_schema_are_schema_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(&p, br#"{"name":"old"}"#).unwrap();
        assert_eq!(load::<Thing>(&p).unwrap().name, "old");
    }

    #[test]
    fn newer_records_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        let newer = br#"{"schema":3,"name":"new","extra":1}"#;
        std::fs::write(&p, newer).unwrap();
        let e = load::<Thing>(&p).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Newer {
                    found: 3,
                    known: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("schema 3"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), newer);
    }

    #[test]
    fn corrupt_and_missing_records_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        assert!(load::<Thing>(&p).unwrap_err().is_not_found());
        std::fs::write(&p, b"{\"name\":").unwrap();
        let e = load::<Thing>(&p).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. }) && !e.is_not_found(),
            "{e}"
        );
    }
}
