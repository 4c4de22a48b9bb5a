//! Reading a container's json-file log for `logs`: the rotated files, then the live one,
//! then (with `follow`) whatever the shim appends, across rotations, until the container
//! stops.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use berth_shim::logfile::{self, Entry};
use tokio::sync::mpsc;

/// Options of `logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Nanoseconds since the epoch.
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub tail: Option<usize>,
}

/// One log entry for a client.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub stream: u8,
    pub time: String,
    pub data: Vec<u8>,
}

fn to_line(e: Entry) -> LogLine {
    LogLine {
        stream: if e.stream == "stderr" {
            berth_shim::STDERR
        } else {
            berth_shim::STDOUT
        },
        time: e.time,
        data: e.log.into_bytes(),
    }
}

fn wanted(e: &Entry, o: &LogOptions) -> bool {
    let stream_ok = (e.stream == "stdout" && o.stdout) || (e.stream == "stderr" && o.stderr);
    if !stream_ok {
        return false;
    }
    if o.since.is_some() || o.until.is_some() {
        let Some(t) = berth_shim::parse_rfc3339(&e.time) else {
            return false;
        };
        if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
            return false;
        }
    }
    true
}

/// Reads whole lines from `r`; a torn last line is left for the next read.
fn read_entries(r: &mut BufReader<File>, out: &mut Vec<Entry>) {
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with(b"\n") => {
                // Incomplete: step back so it is read again when finished.
                let _ = r.seek_relative(-(line.len() as i64));
                return;
            }
            Ok(_) => {
                if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                    out.push(e);
                }
            }
        }
    }
}

/// Sends the log's entries on `tx` (blocking; run it on its own thread). With `follow`, it
/// goes on until `stopped()` is true (checked before each read, so the last lines come).
pub fn read(path: &Path, o: LogOptions, stopped: impl Fn() -> bool, tx: mpsc::Sender<LogLine>) {
    let mut entries = Vec::new();
    let files = logfile::files(path);
    let mut live: Option<(BufReader<File>, u64)> = None;
    for f in &files {
        let Ok(file) = File::open(f) else { continue };
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        let mut r = BufReader::new(file);
        read_entries(&mut r, &mut entries);
        if f == path {
            live = Some((r, ino));
        }
    }
    let mut sel: Vec<Entry> = entries.into_iter().filter(|e| wanted(e, &o)).collect();
    if let Some(n) = o.tail {
        let skip = sel.len().saturating_sub(n);
        sel.drain(..skip);
    }
    for e in sel {
        if tx.blocking_send(to_line(e)).is_err() {
            return;
        }
    }
    if !o.follow {
        return;
    }
    loop {
        // Whether the container had stopped before this read: then this read is the last.
        let last = stopped();
        let mut batch = Vec::new();
        match &mut live {
            Some((r, ino)) => {
                read_entries(r, &mut batch);
                // Rotated: finish the old file (done above), continue with the new one.
                if let Ok(md) = std::fs::metadata(path) {
                    if md.ino() != *ino {
                        if let Ok(f) = File::open(path) {
                            *ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                            *r = BufReader::new(f);
                            read_entries(r, &mut batch);
                        }
                    }
                }
            }
            None => {
                if let Ok(f) = File::open(path) {
                    let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    let mut r = BufReader::new(f);
                    read_entries(&mut r, &mut batch);
                    live = Some((r, ino));
                }
            }
        }
        for e in batch.into_iter().filter(|e| wanted(e, &o)) {
            if o.until
                .is_some_and(|u| berth_shim::parse_rfc3339(&e.time).is_some_and(|t| t > u))
            {
                return;
            }
            if tx.blocking_send(to_line(e)).is_err() {
                return;
            }
        }
        if last || tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
