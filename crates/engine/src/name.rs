//! Container names: Docker's rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, shown with a leading `/` in the
//! API) and, when none is given, a random `adjective_surname` name. The word lists are berth's
//! own: adjectives, and surnames of people who shaped computing and its mathematics.

/// What can go wrong with names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    Invalid(String),
}

/// Checks a user-given name (a leading `/` is accepted, as the API allows).
pub fn validate(name: &str) -> Result<String, NameError> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let b = n.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(n.to_string())
    } else {
        Err(NameError::Invalid(name.to_string()))
    }
}

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious",
    "daring", "deft", "eager", "earnest", "fearless", "fervent", "gentle", "glad", "golden",
    "happy", "hardy", "humble", "jolly", "keen", "kind", "lively", "lucid", "merry", "mighty",
    "nimble", "noble", "patient", "placid", "plucky", "proud", "quick", "quiet", "radiant",
    "rapid", "serene", "sharp", "shiny", "silent", "steady", "stoic", "sunny", "swift", "tender",
    "tidy", "vivid", "wise", "witty", "zealous",
];

const SURNAMES: &[&str] = &[
    "allen",
    "babbage",
    "backus",
    "bernerslee",
    "cerf",
    "church",
    "codd",
    "conway",
    "corbato",
    "dijkstra",
    "engelbart",
    "floyd",
    "goldwasser",
    "hamilton",
    "hartree",
    "hoare",
    "hopper",
    "kahn",
    "kay",
    "kernighan",
    "knuth",
    "lamport",
    "liskov",
    "lovelace",
    "mccarthy",
    "milner",
    "minsky",
    "naur",
    "neumann",
    "perlman",
    "pike",
    "ritchie",
    "sammet",
    "shannon",
    "shaw",
    "sutherland",
    "tarjan",
    "thompson",
    "torvalds",
    "turing",
    "wilkes",
    "wirth",
    "yao",
];

/// A random name not in `taken`. After a few collisions a number is appended, as Docker does.
pub fn random(taken: impl Fn(&str) -> bool) -> String {
    let mut seed = [0u8; 8];
    let _ = std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"),
        &mut seed,
    );
    let mut x = u64::from_le_bytes(seed) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for attempt in 0.. {
        let a = ADJECTIVES[(next() % ADJECTIVES.len() as u64) as usize];
        let s = SURNAMES[(next() % SURNAMES.len() as u64) as usize];
        let name = if attempt < 10 {
            format!("{a}_{s}")
        } else {
            format!("{a}_{s}{}", next() % 10)
        };
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(validate("/web-1").unwrap(), "web-1");
        assert_eq!(validate("a.b_c-d").unwrap(), "a.b_c-d");
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "ünï"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn random_names_are_valid_and_avoid_taken_ones() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let n = random(|n| seen.contains(n));
            assert!(validate(&n).is_ok(), "{n}");
            assert!(seen.insert(n));
        }
        // Everything taken but numbered names: a number is appended.
        let n = random(|n| !n.chars().last().unwrap().is_ascii_digit());
        assert!(n.chars().last().unwrap().is_ascii_digit());
    }
}
