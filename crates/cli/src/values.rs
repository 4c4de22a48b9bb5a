//! Docker's value syntaxes on the command line and in tables: `--filter k=v` as the API's
//! JSON, times (`--since 10m`, RFC 3339, Unix seconds), sizes (`64m`), image references
//! split into repository and tag, `--mount` specifications, and sizes and durations as
//! docker prints them. Shared by every command group, so that no group reaches into another.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{json, Value};

/// `key=value` filters → Docker's JSON filters.
pub fn filters_json(f: &[String]) -> anyhow::Result<String> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for x in f {
        let (k, v) = x
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {x}"))?;
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(serde_json::to_string(&m)?)
}

/// Go's `units.HumanDuration`.
pub fn human_duration(s: i64) -> String {
    let s = s.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        _ => {
            let m = s / 60;
            if m == 1 {
                return "About a minute".into();
            }
            if m < 60 {
                return format!("{m} minutes");
            }
            let h = (s as f64 / 3600.0).round() as i64;
            match h {
                1 => "About an hour".into(),
                2..=47 => format!("{h} hours"),
                _ if h < 24 * 14 => format!("{} days", h / 24),
                _ if h < 24 * 60 => format!("{} weeks", h / 24 / 7),
                _ if h < 24 * 730 => format!("{} months", h / 24 / 30),
                _ => format!("{} years", h / 24 / 365),
            }
        }
    }
}

/// Docker's `--since`/`--until`: RFC 3339, Unix seconds, or a duration ago (`10m`).
pub fn parse_time(s: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(s.to_string());
    }
    let units = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
    for (u, mult) in units {
        if let Some(n) = s.strip_suffix(u) {
            if let Ok(v) = n.parse::<f64>() {
                let t = now.as_secs_f64() - v * mult;
                return Ok(format!("{t:.9}"));
            }
        }
    }
    if let Some(n) = parse_rfc3339(s) {
        return Ok(format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000));
    }
    anyhow::bail!("invalid value for time: {s}")
}

fn parse_rfc3339(s: &str) -> Option<i128> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// A moment as Go's `time.Time.String()` prints it in UTC, as the docker CLI shows
/// `CreatedAt`: `2006-01-02 15:04:05[.fraction] +0000 UTC`, the fraction's trailing zeros
/// dropped.
pub fn go_time(unix_nanos: i128) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(unix_nanos) else {
        return String::new();
    };
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let ns = t.nanosecond();
    if ns != 0 {
        s.push_str(format!(".{ns:09}").trim_end_matches('0'));
    }
    s + " +0000 UTC"
}

/// [`go_time`] of an RFC 3339 time as the API gives it (empty when it is not one).
pub fn go_time_rfc3339(s: &str) -> String {
    parse_rfc3339(s).map(go_time).unwrap_or_default()
}

/// `10m`, `1g`, `512k` → bytes.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let l = s.trim().to_lowercase();
    if l == "-1" {
        return Ok(-1);
    }
    let digits = l
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(l.len());
    let n: f64 = l[..digits]
        .parse()
        .with_context(|| format!("invalid size: '{s}'"))?;
    let mult: f64 = match l[digits..].trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => anyhow::bail!("invalid size: '{s}'"),
    };
    Ok((n * mult) as i64)
}

/// Docker's decimal sizes (`1.98MB`: three significant digits).
pub fn size_str(n: f64) -> String {
    size_with_precision(n, 3)
}

/// Decimal sizes with `prec` significant digits, as go-units' `HumanSizeWithPrecision`
/// (`HumanSize` is 4: `1.982MB`).
pub fn size_with_precision(n: f64, prec: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let (mut v, mut i) = (n, 0);
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let whole = if v >= 100.0 {
        3
    } else if v >= 10.0 {
        2
    } else {
        1
    };
    let digits = prec.saturating_sub(whole);
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// `repo[:tag]` → (repo, tag), the tag `latest` by default (a `:` in a registry's
/// `host:port` is not a tag).
pub fn repo_tag(r: &str) -> (String, String) {
    match r.rsplit_once(':') {
        Some((repo, t)) if !t.contains('/') => (repo.to_string(), t.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

/// `--mount type=…,source=…,target=…,…` as the docker CLI reads it, into the API's `Mount`.
pub fn parse_mount(spec: &str) -> anyhow::Result<Value> {
    let mut m = serde_json::Map::new();
    let mut typ = "volume".to_string();
    let mut ro = false;
    let mut bind = serde_json::Map::new();
    let mut vol = serde_json::Map::new();
    let mut vol_opts = serde_json::Map::new();
    let mut tmpfs = serde_json::Map::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> anyhow::Result<bool> {
            match v {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(x) => anyhow::bail!("invalid value for {k}: {x}"),
            }
        };
        let val = || {
            v.map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => typ = val()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(val()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val()?));
            }
            "readonly" | "ro" => ro = flag(v)?,
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(val()?));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(flag(v)?));
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(val()?));
            }
            "volume-opt" => {
                let x = val()?;
                let (ok, ov) = x
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("invalid volume-opt: {x}"))?;
                vol_opts.insert(ok.into(), json!(ov));
            }
            "volume-label" => {
                let x = val()?;
                let (lk, lv) = x.split_once('=').unwrap_or((&x, ""));
                let labels = vol.entry("Labels").or_insert_with(|| json!({}));
                labels[lk] = json!(lv);
            }
            "volume-driver" => {}
            "tmpfs-size" => {
                let x = val()?;
                let n = parse_bytes(&x)?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let x = val()?;
                let n = i64::from_str_radix(&x, 8)
                    .map_err(|_| anyhow::anyhow!("invalid tmpfs-mode: {x}"))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            "consistency" => {}
            other => anyhow::bail!("unexpected key '{other}' in '{field}'"),
        }
    }
    m.insert("Type".into(), json!(typ));
    m.insert("ReadOnly".into(), json!(ro));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol_opts.is_empty() {
        vol.insert(
            "DriverConfig".into(),
            json!({"Name": "local", "Options": vol_opts}),
        );
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(size_str(0.0), "0B");
        assert_eq!(size_str(1234.0), "1.23kB");
        assert_eq!(size_str(4_300_000.0), "4.3MB");
        assert_eq!(parse_time("1700000000").unwrap(), "1700000000");
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            "1700000000.000000000"
        );
        assert!(parse_time("soon").is_err());
    }
}
