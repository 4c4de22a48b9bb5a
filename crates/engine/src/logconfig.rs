//! A container's log driver and rotation, from `HostConfig.LogConfig` and the daemon's
//! defaults. berth writes Docker's json-file format for `json-file` and `local` (rotated as
//! Docker's `local` driver by default) and nothing for `none`; other drivers Docker knows are
//! refused by name, unknown ones with dockerd's wording. The engine's own `cri` driver (pods'
//! containers; not offered through the Docker API) writes the CRI's format at `path`.

use crate::model::container::{HostConfig, LogConfig};

use crate::error::{invalid, EngineError};

/// Drivers dockerd ships that berth does not.
const OTHER_DOCKER_DRIVERS: &[&str] = &[
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// The engine's log driver for a pod's containers.
pub const CRI_DRIVER: &str = "cri";

/// What the shim needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub max_size: u64,
    pub max_file: u32,
    /// The `none` driver: nothing is written, `logs` cannot read.
    pub disabled: bool,
    /// The `cri` driver: the CRI's format at this path, never rotated by berth.
    pub cri_path: Option<std::path::PathBuf>,
}

/// The driver's name (`json-file` when none was given).
pub fn driver(hc: &HostConfig) -> &str {
    hc.log_config
        .as_ref()
        .and_then(|l| l.typ.as_deref())
        .filter(|t| !t.is_empty())
        .unwrap_or("json-file")
}

/// The config as inspect shows it: the driver named, options kept.
pub fn normalized(hc: &HostConfig) -> Result<LogConfig, EngineError> {
    let d = driver(hc);
    check_driver(d)?;
    Ok(LogConfig {
        typ: Some(d.to_string()),
        config: Some(
            hc.log_config
                .as_ref()
                .and_then(|l| l.config.clone())
                .unwrap_or_default(),
        ),
    })
}

fn check_driver(d: &str) -> Result<(), EngineError> {
    match d {
        "json-file" | "local" | "none" | CRI_DRIVER => Ok(()),
        d if OTHER_DOCKER_DRIVERS.contains(&d) => Err(invalid(format!(
            "logging driver {d:?} is not supported by berth (json-file, local and none are)"
        ))),
        d => Err(invalid(format!(
            "logger: no log driver named '{d}' is registered"
        ))),
    }
}

/// The shim's settings, from the options over the daemon's defaults.
pub fn settings(
    hc: &HostConfig,
    default_size: u64,
    default_files: u32,
) -> Result<LogSettings, EngineError> {
    let d = driver(hc);
    check_driver(d)?;
    let mut s = LogSettings {
        max_size: default_size,
        max_file: default_files,
        disabled: d == "none",
        cri_path: None,
    };
    let opts = hc
        .log_config
        .as_ref()
        .and_then(|l| l.config.clone())
        .unwrap_or_default();
    if d == CRI_DRIVER {
        let path = opts
            .get("path")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| invalid("the cri log driver needs an absolute path"))?;
        return Ok(LogSettings {
            max_size: 0,
            max_file: 1,
            disabled: false,
            cri_path: Some(path),
        });
    }
    if s.disabled {
        if let Some(k) = opts.keys().next() {
            return Err(invalid(format!(
                "unknown log opt '{k}' for none log driver"
            )));
        }
        return Ok(s);
    }
    for (k, v) in opts {
        match k.as_str() {
            "max-size" => {
                s.max_size =
                    parse_size(&v).ok_or_else(|| invalid(format!("invalid max-size: {v}")))?
            }
            "max-file" => {
                s.max_file = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| invalid(format!("invalid max-file: {v}")))?
            }
            "compress" | "labels" | "env" | "tag" | "mode" | "max-buffer-size" => {}
            other => {
                return Err(invalid(format!(
                    "unknown log opt '{other}' for {d} log driver"
                )))
            }
        }
    }
    Ok(s)
}

/// `10m`, `1g`, `512k`, `100` → bytes (`-1` means no limit).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_lowercase();
    if s == "-1" {
        return Some(0);
    }
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let n: f64 = s[..digits].parse().ok()?;
    let mult: u64 = match s[digits..].trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(t: &str, opts: &[(&str, &str)]) -> HostConfig {
        HostConfig {
            log_config: Some(LogConfig {
                typ: Some(t.into()),
                config: Some(
                    opts.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn drivers() {
        let d = settings(&HostConfig::default(), 7, 2).unwrap();
        assert_eq!((d.max_size, d.max_file, d.disabled), (7, 2, false));
        let n = normalized(&HostConfig::default()).unwrap();
        assert_eq!(n.typ.as_deref(), Some("json-file"));
        assert!(settings(&hc("none", &[]), 7, 2).unwrap().disabled);
        let l = settings(&hc("local", &[("max-size", "1m"), ("max-file", "3")]), 7, 2).unwrap();
        assert_eq!((l.max_size, l.max_file), (1 << 20, 3));
        let e = settings(&hc("nosuch", &[]), 7, 2).unwrap_err().to_string();
        assert!(
            e.contains("logger: no log driver named 'nosuch' is registered"),
            "{e}"
        );
        let e = settings(&hc("syslog", &[]), 7, 2).unwrap_err().to_string();
        assert!(e.contains("not supported by berth"), "{e}");
        let e = settings(&hc("json-file", &[("bogus", "1")]), 7, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown log opt 'bogus' for json-file log driver"),
            "{e}"
        );
    }
}
