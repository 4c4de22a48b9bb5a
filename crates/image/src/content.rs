//! The content-addressed blob store, as containerd's: content is written to a private ingest,
//! its digest and size are verified, and only then is it committed (renamed) into
//! `blobs/sha256/<hex>`, where it never changes. Partial ingests survive a crash or a kill and
//! are resumed (the data already written is re-hashed, then appended to).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{Context, Error, Result};

/// Ingests open in this process, by directory: one writer per ingest at a time (two would
/// append to one file). Across processes the image store's flock already allows one writer.
static ACTIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static FREED: std::sync::Condvar = std::sync::Condvar::new();

/// The claim on one ingest directory, released when the [`Ingest`] goes.
#[derive(Debug)]
struct Claim(PathBuf);

impl Claim {
    fn take(dir: &Path) -> Claim {
        let mut v = ACTIVE.lock().expect("active ingests");
        while v.iter().any(|d| d == dir) {
            v = FREED.wait(v).expect("active ingests");
        }
        v.push(dir.to_path_buf());
        Claim(dir.to_path_buf())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut v = ACTIVE.lock().expect("active ingests");
        v.retain(|d| *d != self.0);
        FREED.notify_all();
    }
}

/// The blob store under `<root>` (normally `<data-root>/content`).
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store.
    pub fn open(root: &Path) -> Result<Self> {
        for d in ["blobs/sha256", "ingest"] {
            std::fs::create_dir_all(root.join(d))
                .ctx(|| format!("create {}", root.join(d).display()))?;
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    /// Where a committed blob lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// A fresh path in the ingest area for scratch files (spooled uploads, unpacked archives):
    /// on the store's filesystem, and removed by `gc` if a crash leaves it behind.
    pub fn scratch_path(&self, what: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.root
            .join("ingest")
            .join(format!("{what}-{}-{nanos}", std::process::id()))
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    /// Opens a committed blob.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!("blob {d}")),
            _ => Error::Io {
                context: format!("open blob {d}"),
                source: e,
            },
        })
    }

    /// Reads a (small) committed blob whole.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut v)
            .ctx(|| format!("read blob {d}"))?;
        Ok(v)
    }

    /// The size of a committed blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        Ok(std::fs::metadata(self.path(d))
            .ctx(|| format!("stat blob {d}"))?
            .len())
    }

    /// Stores a small blob from memory.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut w = self.writer(d.hex(), Some(&d), Some(data.len() as u64))?;
        if self.exists(&d) {
            // Committed by another writer while this one waited for the ingest.
            w.discard();
            return Ok(d);
        }
        if w.offset() > 0 {
            // A stale partial of a small blob: start again.
            w.discard();
            w = self.writer(d.hex(), Some(&d), Some(data.len() as u64))?;
        }
        w.write_all(data).ctx(|| format!("write blob {d}"))?;
        w.commit()
    }

    /// Opens (or resumes) an ingest named `reference` (letters, digits, '-', '_', '.').
    /// With `expected`, commit checks the digest; with `size`, it checks the length.
    /// While another writer in this process has the same ingest open, this waits for it.
    pub fn writer(
        &self,
        reference: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Ingest> {
        if reference.is_empty()
            || reference.len() > 200
            || !reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || reference.starts_with('.')
        {
            return Err(Error::Archive(format!(
                "invalid ingest reference {reference:?}"
            )));
        }
        let dir = self.root.join("ingest").join(reference);
        let claim = Claim::take(&dir);
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        let path = dir.join("data");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .ctx(|| format!("open {}", path.display()))?;
        // Resume: hash what an earlier, interrupted write left.
        let mut hasher = Hasher::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .ctx(|| format!("read {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if let Some(sz) = size {
            if hasher.len() > sz {
                // A partial longer than the blob is garbage: start again.
                file.set_len(0)
                    .ctx(|| format!("truncate {}", path.display()))?;
                hasher = Hasher::default();
            }
        }
        Ok(Ingest {
            file,
            hasher,
            dir,
            blobs: self.root.join("blobs/sha256"),
            expected: expected.cloned(),
            size,
            name: reference.to_string(),
            _claim: claim,
        })
    }

    /// Removes a committed blob.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        match std::fs::remove_file(self.path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("remove blob {d}")),
        }
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)
            .ctx(|| format!("read {}", dir.display()))?
            .flatten()
        {
            if let Some(name) = e.file_name().to_str() {
                if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Names of unfinished ingests.
    pub fn ingests(&self) -> Result<Vec<String>> {
        let dir = self.root.join("ingest");
        Ok(std::fs::read_dir(&dir)
            .ctx(|| format!("read {}", dir.display()))?
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect())
    }

    /// Drops an unfinished ingest.
    pub fn abort(&self, reference: &str) -> Result<()> {
        let dir = self.root.join("ingest").join(reference);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("remove {}", dir.display())),
        }
    }
}

/// An open ingest: write the content, then [`Ingest::commit`].
#[derive(Debug)]
pub struct Ingest {
    file: File,
    hasher: Hasher,
    dir: PathBuf,
    blobs: PathBuf,
    expected: Option<Digest>,
    size: Option<u64>,
    name: String,
    _claim: Claim,
}

impl Ingest {
    /// Drops the ingest and what it holds.
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Bytes already written (where a resumed download should continue).
    pub fn offset(&self) -> u64 {
        self.hasher.len()
    }

    /// Opens what has been written so far for reading (a resumed download replays it into
    /// its unpacker before continuing from the network).
    pub fn read_back(&self) -> Result<File> {
        let p = self.dir.join("data");
        File::open(&p).ctx(|| format!("open {}", p.display()))
    }

    /// Verifies and commits. On a mismatch the ingest is discarded and nothing is committed.
    pub fn commit(mut self) -> Result<Digest> {
        self.file
            .flush()
            .ctx(|| format!("flush ingest {}", self.name))?;
        self.file
            .sync_all()
            .ctx(|| format!("sync ingest {}", self.name))?;
        let len = self.hasher.len();
        let actual = self.hasher.clone().finish();
        let discard = |dir: &Path| {
            let _ = std::fs::remove_dir_all(dir);
        };
        if let Some(sz) = self.size {
            if sz != len {
                discard(&self.dir);
                return Err(Error::SizeMismatch {
                    what: format!(
                        "blob {}",
                        self.expected
                            .as_ref()
                            .map_or(self.name.clone(), |d| d.to_string())
                    ),
                    expected: sz,
                    actual: len,
                });
            }
        }
        if let Some(exp) = &self.expected {
            if *exp != actual {
                discard(&self.dir);
                return Err(Error::DigestMismatch {
                    what: format!("blob {exp}"),
                    expected: exp.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let dest = self.blobs.join(actual.hex());
        if dest.exists() {
            discard(&self.dir);
            return Ok(actual);
        }
        std::fs::rename(self.dir.join("data"), &dest).ctx(|| format!("commit blob {actual}"))?;
        if let Ok(d) = File::open(&self.blobs) {
            let _ = d.sync_all();
        }
        discard(&self.dir);
        Ok(actual)
    }
}

/// Writeback is started every this many bytes, so that the fsync at commit has little left.
const WRITEBACK_CHUNK: u64 = 8 << 20;

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let before = self.hasher.len();
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        let after = self.hasher.len();
        if before / WRITEBACK_CHUNK != after / WRITEBACK_CHUNK {
            let start = (after / WRITEBACK_CHUNK - 1) * WRITEBACK_CHUNK;
            // SAFETY: sync_file_range only starts asynchronous writeback of a byte range of a
            // descriptor we own; it has no memory effects.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    start as libc::off64_t,
                    WRITEBACK_CHUNK as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let s = ContentStore::open(d.path()).unwrap();
        let dg = s.put(b"hello").unwrap();
        assert_eq!(s.read(&dg).unwrap(), b"hello");
        assert_eq!(s.list().unwrap(), vec![dg.clone()]);
        // Wrong digest: rejected, nothing committed, ingest discarded.
        let wrong = Digest::of(b"other");
        let mut w = s.writer("x", Some(&wrong), None).unwrap();
        w.write_all(b"hello!").unwrap();
        assert!(matches!(w.commit(), Err(Error::DigestMismatch { .. })));
        assert!(!s.exists(&wrong));
        assert!(s.ingests().unwrap().is_empty());
        // Wrong size: rejected.
        let mut w = s.writer("y", None, Some(3)).unwrap();
        w.write_all(b"four").unwrap();
        assert!(matches!(w.commit(), Err(Error::SizeMismatch { .. })));
    }

    #[test]
    fn ingest_resumes() {
        let d = tempfile::tempdir().unwrap();
        let s = ContentStore::open(d.path()).unwrap();
        let full = b"0123456789".repeat(1000);
        let dg = Digest::of(&full);
        {
            let mut w = s
                .writer("resume", Some(&dg), Some(full.len() as u64))
                .unwrap();
            w.write_all(&full[..4000]).unwrap();
            // Dropped without commit, as a killed process would leave it.
        }
        let mut w = s
            .writer("resume", Some(&dg), Some(full.len() as u64))
            .unwrap();
        assert_eq!(w.offset(), 4000);
        w.write_all(&full[4000..]).unwrap();
        assert_eq!(w.commit().unwrap(), dg);
        assert_eq!(s.read(&dg).unwrap(), full);
    }

    #[test]
    fn concurrent_writers_of_one_blob_never_mix() {
        let d = tempfile::tempdir().unwrap();
        let s = ContentStore::open(d.path()).unwrap();
        let data = b"0123456789".repeat(10_000);
        let want = Digest::of(&data);
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..10 {
                        assert_eq!(s.put(&data).unwrap(), want);
                        let _ = s.delete(&want);
                    }
                });
            }
        });
        assert!(s.ingests().unwrap().is_empty(), "no ingest left behind");
    }

    #[test]
    fn bad_ingest_names_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = ContentStore::open(d.path()).unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(s.writer(bad, None, None).is_err(), "{bad:?}");
        }
    }
}
