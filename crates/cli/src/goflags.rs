//! Flag values parsed as the docker CLI parses them, failing in its words (the text after
//! `invalid argument "V" for "-m, --memory" flag: `): go-units' sizes, docker's rational CPU
//! counts, Go's integers. Written here because they are the docker CLI's own rules, which no
//! crate carries; each is a few lines.

/// go-units' `RAMInBytes` (`-m`, `--memory-reservation`, `--shm-size`): binary multiples,
/// `k`/`m`/`g`/`t`/`p` with an optional `b` or `ib`, a space allowed before the suffix.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let sfx = sfx.to_lowercase();
    let bad = || Err(format!("invalid suffix: '{sfx}'"));
    if sfx.len() > 3 {
        return bad();
    }
    let b = sfx.as_bytes();
    if b[0] == b'b' {
        return if sfx.len() > 1 {
            bad()
        } else {
            Ok(size as i64)
        };
    }
    let Some(power) = b"kmgtp".iter().position(|&u| u == b[0]) else {
        return bad();
    };
    if (sfx.len() == 2 && b[1] != b'b') || (sfx.len() == 3 && &sfx[1..] != "ib") {
        return bad();
    }
    Ok((size * 1024f64.powi(power as i32 + 1)) as i64)
}

/// docker's `--memory-swap`: `-1` (unlimited) or a size.
pub fn mem_swap_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// docker's `--cpus`: a rational number (`1.5`, `3/2`).
pub fn rational_cpus(s: &str) -> Result<f64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if b == 0.0 {
                return Err(bad());
            }
            a / b
        }
        None => s.parse::<f64>().map_err(|_| bad())?,
    };
    if !v.is_finite() {
        return Err(bad());
    }
    Ok(v)
}

/// Go's `strconv.ParseInt(s, 0, 64)` as pflag's int64 flags use it, with its error text.
pub fn go_int64(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {s:?}: {why}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512 KB"), Ok(512 << 10));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("-5").unwrap_err(), "invalid size: '-5'");
        assert_eq!(ram_in_bytes("abc").unwrap_err(), "invalid size: 'abc'");
        assert_eq!(ram_in_bytes("5x").unwrap_err(), "invalid suffix: 'x'");
        assert_eq!(ram_in_bytes("5MX").unwrap_err(), "invalid suffix: 'mx'");
        assert_eq!(ram_in_bytes("5bb").unwrap_err(), "invalid suffix: 'bb'");
        assert_eq!(mem_swap_bytes("-1"), Ok(-1));
    }

    #[test]
    fn cpus_and_ints() {
        assert_eq!(rational_cpus("1.5"), Ok(1.5));
        assert_eq!(rational_cpus("3/2"), Ok(1.5));
        assert_eq!(
            rational_cpus("abc").unwrap_err(),
            "failed to parse abc as a rational number"
        );
        assert_eq!(go_int64("-1"), Ok(-1));
        assert_eq!(
            go_int64("x").unwrap_err(),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            go_int64("99999999999999999999").unwrap_err(),
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
    }
}
