//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-28T02:18:18.123456789Z"}`, the live file
//! at `<path>` and rotated ones at `<path>.1` (newest) .. `<path>.<max_file-1>` (oldest); or,
//! for a pod's container, the CRI's format at the path the kubelet gave,
//! `2026-11-28T02:18:18.123456789Z stdout F text` (`P` for a piece of a longer line).
//!
//! Hand-written: the format is a few lines of serde, and the reader must know berth's
//! rotation scheme.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::LogConfig;

/// Docker splits lines longer than this into several entries.
const MAX_LINE: usize = 16 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Writes a container's output as json-file entries, rotating by size.
#[derive(Debug)]
pub struct Writer {
    cfg: LogConfig,
    file: File,
    size: u64,
    /// Partial lines per stream (stdout, stderr), written when a newline arrives, when they
    /// reach [`MAX_LINE`], or at [`Writer::flush_partial`].
    partial: [Vec<u8>; 2],
}

impl Writer {
    /// Opens (appends to) the live log file.
    pub fn open(cfg: LogConfig) -> std::io::Result<Writer> {
        // The `none` driver keeps no file at all.
        let path = if cfg.disabled {
            Path::new("/dev/null")
        } else {
            cfg.path.as_path()
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            cfg,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs output of `stream` (1 stdout, 2 stderr), whole lines at a time.
    pub fn write(&mut self, stream: u8, mut data: &[u8]) -> std::io::Result<()> {
        if self.cfg.disabled {
            return Ok(());
        }
        let i = usize::from(stream == crate::STDERR);
        while !data.is_empty() {
            let room = MAX_LINE - self.partial[i].len();
            match data[..data.len().min(room)]
                .iter()
                .position(|&b| b == b'\n')
            {
                Some(nl) => {
                    self.partial[i].extend_from_slice(&data[..=nl]);
                    data = &data[nl + 1..];
                    self.emit(i)?;
                }
                None => {
                    let take = data.len().min(room);
                    self.partial[i].extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.partial[i].len() >= MAX_LINE {
                        self.emit(i)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens the file at its path again (the old one was renamed by its rotator); what was
    /// written so far stays in the old file.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if self.cfg.disabled {
            return Ok(());
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.path)?;
        self.size = self.file.metadata()?.len();
        Ok(())
    }

    /// Writes whatever partial lines are buffered (at the process's exit).
    pub fn flush_partial(&mut self) -> std::io::Result<()> {
        for i in 0..2 {
            if !self.partial[i].is_empty() {
                self.emit(i)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, i: usize) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(&self.partial[i]).into_owned();
        self.partial[i].clear();
        let entry = Entry {
            log: text,
            stream: if i == 0 { "stdout" } else { "stderr" }.into(),
            time: crate::rfc3339(std::time::SystemTime::now()),
        };
        let line = match self.cfg.format {
            crate::LogFormat::JsonFile => {
                let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
                line.push(b'\n');
                line
            }
            crate::LogFormat::Cri => cri_line(&entry),
        };
        if self.cfg.max_size > 0
            && self.size > 0
            && self.size + line.len() as u64 > self.cfg.max_size
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.cfg.max_file.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.cfg.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = std::fs::rename(rotated(&self.cfg.path, n), rotated(&self.cfg.path, n + 1));
        }
        std::fs::rename(&self.cfg.path, rotated(&self.cfg.path, 1))?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.path)?;
        self.size = 0;
        Ok(())
    }
}

/// One entry in the CRI's format: a whole line (its newline dropped) is tagged `F`, a piece of
/// a longer one `P`.
fn cri_line(e: &Entry) -> Vec<u8> {
    let (text, tag) = match e.log.strip_suffix('\n') {
        Some(t) => (t, 'F'),
        None => (e.log.as_str(), 'P'),
    };
    format!("{} {} {tag} {text}\n", e.time, e.stream).into_bytes()
}

/// `<path>.<n>`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The log files of `path`, oldest first (rotated ones, then the live one if present).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        n += 1;
    }
    for k in (1..n).rev() {
        out.push(rotated(path, k));
    }
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Reads every entry of the log at `path`, oldest first. Lines that do not parse (a torn
/// last line after a crash) are skipped.
pub fn read_all(path: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for f in files(path) {
        let file = match File::open(&f) {
            Ok(f) => f,
            // Rotated away between listing and opening.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).split(b'\n') {
            if let Ok(e) = serde_json::from_slice::<Entry>(&line?) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, max_size: u64, max_file: u32) -> LogConfig {
        LogConfig {
            path: dir.join("c-json.log"),
            max_size,
            max_file,
            disabled: false,
            format: crate::LogFormat::JsonFile,
        }
    }

    /// The CRI's format, as the kubelet's parser reads it: time, stream, F or P, the text.
    #[test]
    fn cri_lines() {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path(), 0, 1);
        c.format = crate::LogFormat::Cri;
        let mut w = Writer::open(c).unwrap();
        w.write(
            1, b"one
tw",
        )
        .unwrap();
        w.write(
            2, b"err
",
        )
        .unwrap();
        w.write(1, &vec![b'x'; MAX_LINE + 10]).unwrap();
        w.write(
            1, b"
end",
        )
        .unwrap();
        w.flush_partial().unwrap();
        let text = std::fs::read_to_string(d.path().join("c-json.log")).unwrap();
        let lines: Vec<(String, String, String, usize)> = text
            .lines()
            .map(|l| {
                let mut f = l.splitn(4, ' ');
                let t = f.next().unwrap();
                assert!(crate::parse_rfc3339(t).is_some(), "{t}");
                let (s, tag, body) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
                (
                    s.into(),
                    tag.into(),
                    body.chars().take(3).collect(),
                    body.len(),
                )
            })
            .collect();
        let want =
            |s: &str, t: &str, b: &str, n: usize| (s.to_string(), t.to_string(), b.to_string(), n);
        assert_eq!(
            lines,
            [
                want("stdout", "F", "one", 3),
                want("stderr", "F", "err", 3),
                want("stdout", "P", "twx", MAX_LINE),
                want("stdout", "F", "xxx", 12),
                want("stdout", "P", "end", 3),
            ]
        );
    }

    #[test]
    fn lines_and_partials() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Writer::open(cfg(d.path(), 0, 1)).unwrap();
        w.write(1, b"one\ntw").unwrap();
        w.write(2, b"err\n").unwrap();
        w.write(1, b"o\nthree").unwrap();
        w.flush_partial().unwrap();
        let e = read_all(&d.path().join("c-json.log")).unwrap();
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "three")
            ]
        );
        assert!(crate::parse_rfc3339(&e[0].time).is_some());
    }

    #[test]
    fn long_lines_are_split() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Writer::open(cfg(d.path(), 0, 1)).unwrap();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        w.write(1, &long).unwrap();
        w.write(1, b"\n").unwrap();
        let e = read_all(&d.path().join("c-json.log")).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[2].log.len(), 11);
    }

    #[test]
    fn rotation_keeps_max_file_and_order() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Writer::open(cfg(d.path(), 400, 3)).unwrap();
        for i in 0..100 {
            w.write(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        let path = d.path().join("c-json.log");
        assert_eq!(files(&path).len(), 3);
        assert!(!rotated(&path, 3).exists());
        for f in files(&path) {
            assert!(std::fs::metadata(&f).unwrap().len() <= 400);
        }
        let e = read_all(&path).unwrap();
        let nums: Vec<u32> = e
            .iter()
            .map(|e| e.log.trim().strip_prefix("line ").unwrap().parse().unwrap())
            .collect();
        assert_eq!(*nums.last().unwrap(), 99);
        assert!(
            nums.windows(2).all(|w| w[1] == w[0] + 1),
            "in order: {nums:?}"
        );
    }
}
