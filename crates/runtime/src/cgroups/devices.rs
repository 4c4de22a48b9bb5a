//! Device access rules: the OCI spec's `linux.resources.devices` with the defaults every
//! container gets, in one typed list that both cgroup versions enforce (v1 by writing each rule
//! to `devices.allow`/`devices.deny`, v2 by compiling them into an eBPF program, `bpf.rs`).
//!
//! Semantics are those of the v1 devices controller as runc drives it: everything is denied,
//! then the spec's rules apply in order, then the defaults; for one access the last rule that
//! matches decides. An allow rule matches when it grants every kind of access asked for; a deny
//! rule when it forbids any of them.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, as the kernel's `BPF_DEVCG_ACC_*`.
pub(crate) const MKNOD: u32 = 1;
pub(crate) const READ: u32 = 2;
pub(crate) const WRITE: u32 = 4;

/// What kind of device a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Block,
    Char,
    /// A FIFO: the v1 controller accepts the rule; no device access ever matches it.
    Fifo,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// None is the wildcard.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// A set of [`MKNOD`], [`READ`], [`WRITE`].
    pub access: u32,
}

/// The devices every container gets, as runc allows them: mknod of any device (creation is
/// not access), null, zero, full, tty, random, urandom, /dev/pts/*, /dev/ptmx.
const DEFAULT_ALLOW: &[(Kind, Option<u32>, Option<u32>, u32)] = &[
    (Kind::Char, None, None, MKNOD),
    (Kind::Block, None, None, MKNOD),
    (Kind::Char, Some(1), Some(3), READ | WRITE | MKNOD),
    (Kind::Char, Some(1), Some(5), READ | WRITE | MKNOD),
    (Kind::Char, Some(1), Some(7), READ | WRITE | MKNOD),
    (Kind::Char, Some(5), Some(0), READ | WRITE | MKNOD),
    (Kind::Char, Some(1), Some(8), READ | WRITE | MKNOD),
    (Kind::Char, Some(1), Some(9), READ | WRITE | MKNOD),
    (Kind::Char, Some(136), None, READ | WRITE | MKNOD),
    (Kind::Char, Some(5), Some(2), READ | WRITE | MKNOD),
];

impl Rule {
    fn from_spec(r: &LinuxDeviceCgroup) -> Rule {
        let kind = match r.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Kind::Char,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::P) => Kind::Fifo,
            Some(LinuxDeviceType::A) | None => Kind::All,
        };
        let num = |n: Option<i64>| n.filter(|&n| n >= 0).and_then(|n| u32::try_from(n).ok());
        let (major, minor) = if kind == Kind::All {
            (None, None)
        } else {
            (num(r.major()), num(r.minor()))
        };
        Rule {
            allow: r.allow(),
            kind,
            major,
            minor,
            access: parse_access(r.access().as_deref().unwrap_or("rwm")),
        }
    }

    /// The rule as the v1 controller's files take it (`c 1:3 rwm`).
    pub(crate) fn v1_line(&self) -> String {
        let t = match self.kind {
            Kind::All => "a",
            Kind::Block => "b",
            Kind::Char => "c",
            Kind::Fifo => "p",
        };
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        if self.kind == Kind::All {
            return format!("a *:* {access}");
        }
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!("{t} {}:{} {access}", num(self.major), num(self.minor))
    }

    /// Whether this rule decides an access of `access` bits to device `kind major:minor`
    /// (the reference the eBPF program is tested against).
    #[cfg(test)]
    pub(crate) fn matches(&self, kind: Kind, major: u32, minor: u32, access: u32) -> bool {
        let kind_ok = self.kind == Kind::All || self.kind == kind;
        let num_ok = |want: Option<u32>, got: u32| want.is_none_or(|w| w == got);
        let access_ok = if self.allow {
            access & !self.access == 0
        } else {
            access & self.access != 0
        };
        kind_ok && num_ok(self.major, major) && num_ok(self.minor, minor) && access_ok
    }
}

/// `rwm` in any order; unknown letters are ignored, as the spec's validation refuses them.
fn parse_access(s: &str) -> u32 {
    s.chars().fold(0, |acc, c| match c {
        'r' => acc | READ,
        'w' => acc | WRITE,
        'm' => acc | MKNOD,
        _ => acc,
    })
}

/// The whole list in force for a container: deny everything, the spec's rules, the defaults.
pub(crate) fn effective(spec: Option<&[LinuxDeviceCgroup]>) -> Vec<Rule> {
    let mut rules = vec![Rule {
        allow: false,
        kind: Kind::All,
        major: None,
        minor: None,
        access: READ | WRITE | MKNOD,
    }];
    rules.extend(spec.unwrap_or_default().iter().map(Rule::from_spec));
    rules.extend(
        DEFAULT_ALLOW
            .iter()
            .map(|&(kind, major, minor, access)| Rule {
                allow: true,
                kind,
                major,
                minor,
                access,
            }),
    );
    rules
}

/// The decision for one access: the last matching rule's, deny when none matches.
#[cfg(test)]
pub(crate) fn decide(rules: &[Rule], kind: Kind, major: u32, minor: u32, access: u32) -> bool {
    rules
        .iter()
        .rev()
        .find(|r| r.matches(kind, major, minor, access))
        .is_some_and(|r| r.allow)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    /// One spec rule (shared with the eBPF program's tests).
    pub(crate) fn rule(
        allow: bool,
        t: LinuxDeviceType,
        maj: i64,
        min: i64,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(t)
            .major(maj)
            .minor(min)
            .access(acc)
            .build()
            .unwrap()
    }

    #[test]
    fn defaults_allow_the_standard_nodes_and_nothing_else() {
        let r = effective(None);
        assert!(decide(&r, Kind::Char, 1, 3, READ | WRITE)); // /dev/null
        assert!(decide(&r, Kind::Char, 136, 4, READ)); // a pts
        assert!(decide(&r, Kind::Block, 8, 0, MKNOD)); // creating is not access
        assert!(!decide(&r, Kind::Block, 8, 0, READ)); // /dev/sda
        assert!(!decide(&r, Kind::Char, 1, 1, READ)); // /dev/mem
        assert!(!decide(&r, Kind::Char, 1, 11, WRITE)); // /dev/kmsg
    }

    #[test]
    fn later_rules_win_and_access_is_a_subset_check() {
        let spec = [
            rule(true, LinuxDeviceType::B, 7, -1, "r"),
            rule(false, LinuxDeviceType::B, 7, 3, "w"),
        ];
        let r = effective(Some(&spec));
        assert!(decide(&r, Kind::Block, 7, 0, READ));
        assert!(!decide(&r, Kind::Block, 7, 0, READ | WRITE));
        assert!(decide(&r, Kind::Block, 7, 3, READ));
        assert!(!decide(&r, Kind::Char, 7, 0, READ));
        let all = [rule(true, LinuxDeviceType::A, -1, -1, "rwm")];
        assert!(decide(
            &effective(Some(&all)),
            Kind::Block,
            8,
            0,
            READ | WRITE
        ));
    }

    #[test]
    fn v1_lines() {
        let spec = [
            rule(true, LinuxDeviceType::C, 10, -1, "mr"),
            rule(false, LinuxDeviceType::A, 3, 3, "rwm"),
        ];
        let lines: Vec<String> = effective(Some(&spec)).iter().map(Rule::v1_line).collect();
        assert_eq!(lines[0], "a *:* rwm");
        assert_eq!(lines[1], "c 10:* rm");
        assert_eq!(lines[2], "a *:* rwm");
        assert_eq!(lines[3], "c *:* m");
    }
}
