//! Container ids: 256 random bits as 64 lowercase hex digits, shown as their first 12; found by
//! any unique prefix, as Docker does.

use std::io::Read;

/// A container id.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

/// What can go wrong with ids.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("invalid container id {0:?}: want 64 lowercase hex digits")]
    Invalid(String),
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple containers found with provided prefix: {0}")]
    Ambiguous(String),
}

impl ContainerId {
    /// A new random id from the kernel's random source.
    pub fn random() -> Self {
        let mut b = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .expect("/dev/urandom is readable");
        ContainerId(b.iter().map(|x| format!("{x:02x}")).collect())
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ContainerId(s.to_string()))
        } else {
            Err(IdError::Invalid(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit form `docker ps` shows.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An id reads as the string it is, so it keys maps and names files without conversions.
impl std::ops::Deref for ContainerId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by id are searched by `&str` (the order is the string's, so this is sound).
impl std::borrow::Borrow<str> for ContainerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ContainerId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ContainerId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ContainerId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl TryFrom<String> for ContainerId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        ContainerId::parse(&s)
    }
}

impl From<ContainerId> for String {
    fn from(i: ContainerId) -> String {
        i.0
    }
}

/// Finds the one id starting with `prefix` (a full id matches itself).
pub fn find_by_prefix<'a>(
    ids: impl IntoIterator<Item = &'a ContainerId>,
    prefix: &str,
) -> Result<&'a ContainerId, IdError> {
    if prefix.is_empty() {
        return Err(IdError::NotFound(prefix.to_string()));
    }
    let mut found = None;
    for id in ids {
        if id.0 == prefix {
            return Ok(id);
        }
        if id.0.starts_with(prefix) {
            if found.is_some() {
                return Err(IdError::Ambiguous(prefix.to_string()));
            }
            found = Some(id);
        }
    }
    found.ok_or_else(|| IdError::NotFound(prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = ContainerId::random();
        let b = ContainerId::random();
        assert_ne!(a, b);
        assert_eq!(ContainerId::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.short().len(), 12);
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64)] {
            assert!(ContainerId::parse(bad).is_err());
        }
        assert!(serde_json::from_str::<ContainerId>("\"nope\"").is_err());
    }

    #[test]
    fn prefix_lookup() {
        let a = ContainerId::parse(&format!("ab{}", "0".repeat(62))).unwrap();
        let b = ContainerId::parse(&format!("ac{}", "0".repeat(62))).unwrap();
        let ids = [a.clone(), b.clone()];
        assert_eq!(find_by_prefix(&ids, "ab").unwrap(), &a);
        assert_eq!(
            find_by_prefix(&ids, "a"),
            Err(IdError::Ambiguous("a".into()))
        );
        assert_eq!(
            find_by_prefix(&ids, "ff"),
            Err(IdError::NotFound("ff".into()))
        );
        assert_eq!(find_by_prefix(&ids, a.as_str()).unwrap(), &a);
    }
}
