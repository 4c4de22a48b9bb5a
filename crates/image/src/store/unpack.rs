//! Layer unpacking ahead of the store's lock: a blob streamed into a prepared snapshot (with a read-ahead thread), committed later under the lock.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::layer::{self, Format, Limits};

use super::*;

/// Unpacks layer streams into private directories under `snapshots/` (see
/// [`Store::unpacker`]). Cheap to clone and usable from many threads at once.
#[derive(Debug, Clone)]
pub struct Unpacker {
    pub(super) snapshots: PathBuf,
    pub(super) limits: Limits,
}

impl Unpacker {
    /// Applies the (possibly compressed) layer stream of `blob` into a fresh private
    /// directory. The result is committed by [`Store::add_image_prepared`] or discarded.
    pub fn prepare(&self, blob: &Digest, reader: impl std::io::Read) -> Result<Prepared> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.snapshots.join(format!(
            "tmp-pre-{}-{}-{seq}",
            blob.short(),
            std::process::id()
        ));
        let _ = remove_tree(&tmp);
        let fs = tmp.join("fs");
        std::fs::create_dir_all(&fs).ctx(|| format!("create {}", fs.display()))?;
        match layer::apply(blob.short(), reader, &fs, Format::Overlay, self.limits) {
            Ok(applied) => Ok(Prepared {
                dir: tmp,
                blob: blob.clone(),
                applied,
            }),
            Err(e) => {
                let _ = remove_tree(&tmp);
                Err(e)
            }
        }
    }
}

impl Prepared {
    /// The diff id of what was unpacked.
    pub fn diff_id(&self) -> &Digest {
        &self.applied.diff_id
    }
}

/// Reads a file on a helper thread in 1 MiB chunks, a few chunks ahead of the consumer, so
/// that I/O overlaps decompression.
pub(super) struct ReadAhead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ReadAhead {
    pub(super) fn spawn(mut f: std::fs::File) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        std::thread::spawn(move || loop {
            let mut chunk = vec![0u8; 1 << 20];
            match std::io::Read::read(&mut f, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.send(Ok(chunk)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
        ReadAhead {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the reader finished
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Copies a tree preserving links, modes and owners (the copy-based snapshot fallback).
pub(super) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .ctx(|| "run cp".into())?;
    if !st.success() {
        return Err(Error::Archive(format!(
            "copy {} to {}: cp failed",
            from.display(),
            to.display()
        )));
    }
    Ok(())
}
