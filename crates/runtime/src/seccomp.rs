//! The spec's seccomp profile compiled with libseccomp (the `libseccomp` crate, the library
//! runc and crun use), then loaded into the kernel.
//!
//! Default-deny profiles answer syscalls newer than any the profile names with ENOSYS instead
//! of the default errno: a libc probing `clone3` must see "not implemented" and fall back to
//! `clone`, not "permission denied" (the glibc 2.34 lesson that runc's seccomp patcher learned).

use std::collections::HashMap;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use crate::error::{Error, Result};

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::spec(
                field,
                "SCMP_ACT_NOTIFY needs a seccomp agent, which this runtime does not support yet",
            ))
        }
    })
}

fn compare(
    op: &str,
    value: u64,
    value_two: Option<u64>,
    field: &str,
) -> Result<(ScmpCompareOp, u64)> {
    Ok(match op {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, value),
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0)),
        other => return Err(Error::spec(field, format!("unknown operator {other:?}"))),
    })
}

/// Compiles the profile into a filter context, ready to load.
pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let err =
        |what: &str, e: libseccomp::error::SeccompError| Error::Seccomp(format!("{what}: {e}"));
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("create filter", e))?;
    // libseccomp sets no_new_privs on load by default; the spec decides that, not the filter.
    ctx.set_ctl_nnp(false).map_err(|e| err("ctl nnp", e))?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let name = name_of(a);
        let arch = ScmpArch::from_str(&name).map_err(|_| {
            Error::spec(
                format!("linux.seccomp.architectures[{i}]"),
                format!("unknown architecture {name:?}"),
            )
        })?;
        ctx.add_arch(arch)
            .map_err(|e| err(&format!("add architecture {name}"), e))?;
    }
    for f in s.flags().iter().flatten() {
        match name_of(f).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => ctx.set_ctl_tsync(true).map(|_| ()),
            "SECCOMP_FILTER_FLAG_LOG" => ctx.set_ctl_log(true).map(|_| ()),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => ctx.set_ctl_ssb(true).map(|_| ()),
            other => {
                tracing::warn!(flag = other, "seccomp flag not supported, ignored");
                Ok(())
            }
        }
        .map_err(|e| err("set flag", e))?;
    }

    let mut max_named: i32 = -1;
    let mut named = std::collections::HashSet::new();
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &format!("{field}.action"))?;
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Unknown to this libseccomp (or this architecture): skipped, as runc does.
                tracing::debug!(syscall = %name, "unknown syscall in seccomp profile skipped");
                continue;
            };
            named.insert(name.clone());
            max_named = max_named.max(i32::from(sc));
            if act == default {
                continue;
            }
            add_rule(&mut ctx, act, sc, rule, &field)
                .map_err(|e| Error::Seccomp(format!("{field} ({name}): {e}")))?;
        }
    }

    if matches!(
        default,
        ScmpAction::Errno(_) | ScmpAction::KillThread | ScmpAction::KillProcess | ScmpAction::Trap
    ) && max_named >= 0
    {
        // Syscalls newer than every syscall the profile knows about get ENOSYS.
        for nr in (max_named + 1)..1024 {
            let sc = ScmpSyscall::from(nr);
            let Ok(name) = sc.get_name() else { continue };
            if named.contains(&name) {
                continue;
            }
            let _ = ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), sc);
        }
    }
    Ok(ctx)
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    sc: ScmpSyscall,
    rule: &LinuxSyscall,
    field: &str,
) -> std::result::Result<(), String> {
    let args = rule.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return ctx.add_rule(act, sc).map(|_| ()).map_err(|e| e.to_string());
    }
    let mut conds = Vec::new();
    let mut per_index: HashMap<usize, usize> = HashMap::new();
    for a in args {
        let (op, datum) = compare(&name_of(&a.op()), a.value(), a.value_two(), field)
            .map_err(|e| e.to_string())?;
        conds.push(ScmpArgCompare::new(a.index() as u32, op, datum));
        *per_index.entry(a.index()).or_default() += 1;
    }
    if per_index.values().all(|&n| n == 1) {
        // Distinct arguments: all conditions must hold (AND).
        ctx.add_rule_conditional(act, sc, &conds)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        // Several conditions on one argument cannot all hold: each is its own rule (OR).
        for c in conds {
            ctx.add_rule_conditional(act, sc, &[c])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Compiles and loads the profile into the calling thread.
pub fn load(s: &LinuxSeccomp) -> Result<()> {
    let ctx = compile(s)?;
    ctx.load()
        .map_err(|e| Error::Seccomp(format!("load filter: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_a_docker_like_profile() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }));
        compile(&p).unwrap();
    }

    #[test]
    fn refuses_unknown_arch_and_notify() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let Err(e) = compile(&p) else {
            panic!("notify must be refused")
        };
        let e = e.to_string();
        assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
    }
}
