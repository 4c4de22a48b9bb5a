//! Logging as runc does it: text or JSON lines to `--log` (or stderr). Engines such as conmon
//! read the last `error` entry of the log file to report why a runtime call failed, so errors
//! are always written there in the requested format, and to stderr as well.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing_subscriber::filter::LevelFilter;

pub struct Log {
    file: Option<PathBuf>,
    json: bool,
}

pub fn init(file: Option<&Path>, format: &str, debug: bool) -> Log {
    let json = format == "json";
    let level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    let opened = file.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    match (opened, json) {
        (Some(f), true) => {
            let _ = builder
                .json()
                .with_writer(std::sync::Mutex::new(f))
                .try_init();
        }
        (Some(f), false) => {
            let _ = builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init();
        }
        (None, _) => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
    Log {
        file: file.map(Path::to_path_buf),
        json,
    }
}

impl Log {
    /// Reports a fatal error on stderr and in the log file.
    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        let Some(path) = &self.file else { return };
        let time = berth_runtime::state::rfc3339(SystemTime::now());
        let line = if self.json {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level=error msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
