//! The one signal table: Linux signal names and numbers as docker, runc and the kernel name
//! them (`SIGTERM`, `TERM`, `term`, `15`, `SIGRTMIN+3`). Written by hand because nix's
//! `Signal` has no real-time signals, which `docker kill --signal RTMIN+3` sends.

/// A name or number that is not a Linux signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid signal: {0}")]
pub struct InvalidSignal(pub String);

/// Real-time signals as glibc numbers them (the kernel's 32 and 33 are taken by the C library).
pub const RTMIN: i32 = 34;
pub const RTMAX: i32 = 64;

/// Standard signals, by number, with their aliases after the main name.
const NAMES: &[(i32, &[&str])] = &[
    (1, &["HUP"]),
    (2, &["INT"]),
    (3, &["QUIT"]),
    (4, &["ILL"]),
    (5, &["TRAP"]),
    (6, &["ABRT", "IOT"]),
    (7, &["BUS"]),
    (8, &["FPE"]),
    (9, &["KILL"]),
    (10, &["USR1"]),
    (11, &["SEGV"]),
    (12, &["USR2"]),
    (13, &["PIPE"]),
    (14, &["ALRM"]),
    (15, &["TERM"]),
    (16, &["STKFLT"]),
    (17, &["CHLD"]),
    (18, &["CONT"]),
    (19, &["STOP"]),
    (20, &["TSTP"]),
    (21, &["TTIN"]),
    (22, &["TTOU"]),
    (23, &["URG"]),
    (24, &["XCPU"]),
    (25, &["XFSZ"]),
    (26, &["VTALRM"]),
    (27, &["PROF"]),
    (28, &["WINCH"]),
    (29, &["IO", "POLL"]),
    (30, &["PWR"]),
    (31, &["SYS"]),
];

/// `SIGTERM`, `TERM`, `term`, `15` → 15; `RTMIN+2` → 36; `SIGRTMAX-1` → 63.
pub fn parse(s: &str) -> Result<i32, InvalidSignal> {
    let bad = || InvalidSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((n, _)) = NAMES.iter().find(|(_, names)| names.contains(&name)) {
        return Ok(*n);
    }
    let (base, rest) = if let Some(r) = name.strip_prefix("RTMIN") {
        (RTMIN, r)
    } else if let Some(r) = name.strip_prefix("RTMAX") {
        (RTMAX, r)
    } else {
        return Err(bad());
    };
    let off: i32 = match rest {
        "" => 0,
        r if r.starts_with('+') || r.starts_with('-') => r.parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let n = base + off;
    if (RTMIN..=RTMAX).contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

/// The signal's main name without `SIG` (`TERM`, `RTMIN+2`), or None for a number that is no
/// signal.
pub fn name(n: i32) -> Option<String> {
    if let Some((_, names)) = NAMES.iter().find(|(m, _)| *m == n) {
        return Some(names[0].to_string());
    }
    match n {
        RTMIN => Some("RTMIN".into()),
        RTMAX => Some("RTMAX".into()),
        n if (RTMIN..RTMAX).contains(&n) => Some(format!("RTMIN+{}", n - RTMIN)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("kill"), Ok(9));
        assert_eq!(parse("sigusr1"), Ok(10));
        assert_eq!(parse("IOT"), Ok(6));
        assert_eq!(parse("10"), Ok(10));
        assert_eq!(parse("RTMIN+2"), Ok(36));
        assert_eq!(parse("SIGRTMAX-1"), Ok(63));
        assert_eq!(parse("RTMIN"), Ok(34));
        for bad in [
            "SIGNOPE", "99", "0", "-1", "RTMIN+40", "RTMINX", "RTMAX+1", "",
        ] {
            assert_eq!(parse(bad), Err(InvalidSignal(bad.into())), "{bad}");
        }
    }

    #[test]
    fn every_signal_round_trips_through_its_name() {
        for n in 1..=RTMAX {
            if (32..RTMIN).contains(&n) {
                assert_eq!(name(n), None);
                continue;
            }
            let nm = name(n).unwrap_or_else(|| panic!("{n} has a name"));
            assert_eq!(parse(&nm), Ok(n), "{nm}");
        }
    }
}
