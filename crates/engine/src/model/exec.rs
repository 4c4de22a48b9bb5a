//! Exec instances: a process started in a running container's namespaces.

use std::fmt;

/// An exec instance's id: 256 random bits in hex, like a container's, and never one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecId(String);

impl ExecId {
    /// A fresh random id.
    pub fn random() -> ExecId {
        ExecId(crate::id::ContainerId::random().as_str().to_string())
    }

    /// The id a caller gave, checked: 64 lowercase hex digits.
    pub fn parse(s: &str) -> Option<ExecId> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| ExecId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to run, as whom, and which streams the caller will attach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments; never empty once accepted.
    pub cmd: Vec<String>,
    /// `KEY=value` pairs added to the container's environment.
    pub env: Vec<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty: the container's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub workdir: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Every capability, no seccomp filter.
    pub privileged: bool,
    /// The sequence that detaches the client (`ctrl-p,ctrl-q` when empty).
    pub detach_keys: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_are_checked() {
        let id = ExecId::random();
        assert_eq!(ExecId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.to_string().len(), 64);
        assert_eq!(ExecId::parse("abc"), None);
        assert_eq!(ExecId::parse(&"G".repeat(64)), None);
    }
}
