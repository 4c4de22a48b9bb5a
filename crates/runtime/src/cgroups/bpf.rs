//! Device rules on cgroup v2: the rule list of `devices.rs` compiled into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, loaded with bpf(2) and attached to the container's
//! cgroup; `update` attaches the new program before it detaches the old ones, so there is never
//! a moment without a filter.
//!
//! Written by hand because the job is small and no crate does it: the program is a straight
//! list of compare-and-jump blocks (one per rule, about eight instructions each) over the three
//! words of `struct bpf_cgroup_dev_ctx`, so an assembler or an ELF loader (aya, libbpf) would be
//! a large dependency for forty lines of encoding. runc, crun and youki emit the same shape.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devices::{Kind, Rule, MKNOD, READ, WRITE};
use crate::error::{Error, Result};

// bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`; access_type is
// `(access << 16) | type`, type 1 block, 2 char.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }
    /// `dst = *(u32 *)(r1 + off)`
    const fn load_ctx(dst: u8, off: i16) -> Insn {
        Insn::new(0x61, dst, 1, off, 0)
    }
    /// `dst &= imm` (32-bit)
    const fn and(dst: u8, imm: i32) -> Insn {
        Insn::new(0x54, dst, 0, 0, imm)
    }
    /// `dst >>= imm` (32-bit)
    const fn rsh(dst: u8, imm: i32) -> Insn {
        Insn::new(0x74, dst, 0, 0, imm)
    }
    /// `dst = src` (32-bit)
    const fn mov_reg(dst: u8, src: u8) -> Insn {
        Insn::new(0xbc, dst, src, 0, 0)
    }
    /// `r0 = imm`
    const fn ret_value(imm: i32) -> Insn {
        Insn::new(0xb7, 0, 0, 0, imm)
    }
    /// `if (u32)dst != imm goto +off`
    const fn jne(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(0x56, dst, 0, off, imm)
    }
    /// `if (u32)dst == imm goto +off`
    const fn jeq(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(0x16, dst, 0, off, imm)
    }
    const fn exit() -> Insn {
        Insn::new(0x95, 0, 0, 0, 0)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push((self.src << 4) | (self.dst & 0x0f));
        out.extend_from_slice(&self.off.to_le_bytes());
        out.extend_from_slice(&self.imm.to_le_bytes());
    }
}

/// Compiles `rules` (last match wins, deny when none matches) into a program: r2 holds the
/// device type, r3 the access asked for, r4 the major, r5 the minor.
fn compile(rules: &[Rule]) -> Vec<Insn> {
    let mut prog = vec![
        Insn::load_ctx(2, 0),
        Insn::and(2, 0xffff),
        Insn::load_ctx(3, 0),
        Insn::rsh(3, 16),
        Insn::load_ctx(4, 4),
        Insn::load_ctx(5, 8),
    ];
    for rule in rules.iter().rev() {
        let kind = match rule.kind {
            Kind::All => None,
            Kind::Block => Some(DEV_BLOCK),
            Kind::Char => Some(DEV_CHAR),
            // No device access is to a FIFO: the rule can never match.
            Kind::Fifo => continue,
        };
        // Each test jumps past the end of the block when the rule does not match; `None` is
        // patched with that distance once the block's length is known.
        let mut block: Vec<(Insn, bool)> = Vec::new();
        if let Some(k) = kind {
            block.push((Insn::jne(2, k, 0), true));
        }
        let full = READ | WRITE | MKNOD;
        if rule.access & full != full {
            block.push((Insn::mov_reg(1, 3), false));
            if rule.allow {
                // Something asked for is not granted.
                block.push((Insn::and(1, (!rule.access & full) as i32), false));
                block.push((Insn::jne(1, 0, 0), true));
            } else {
                // Nothing asked for is forbidden.
                block.push((Insn::and(1, rule.access as i32), false));
                block.push((Insn::jeq(1, 0, 0), true));
            }
        }
        if let Some(m) = rule.major {
            block.push((Insn::jne(4, m as i32, 0), true));
        }
        if let Some(m) = rule.minor {
            block.push((Insn::jne(5, m as i32, 0), true));
        }
        block.push((Insn::ret_value(i32::from(rule.allow)), false));
        block.push((Insn::exit(), false));
        let len = block.len();
        let unconditional = block.iter().all(|(_, jumps)| !jumps);
        for (i, (mut insn, jumps)) in block.into_iter().enumerate() {
            if jumps {
                insn.off = (len - i - 1) as i16;
            }
            prog.push(insn);
        }
        if unconditional {
            // Every access matches: nothing after it could run, and the verifier refuses
            // unreachable instructions.
            return prog;
        }
    }
    prog.push(Insn::ret_value(0));
    prog.push(Insn::exit());
    prog
}

/// `bpf(cmd, attr, size)`.
fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable buffer of the length passed, laid out as the
    // command's `union bpf_attr` member with the rest zeroed, as the kernel requires.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn put_u32(attr: &mut [u8], off: usize, v: u32) {
    attr[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(attr: &mut [u8], off: usize, v: u64) {
    attr[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

fn err(dir: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cgroup {
        path: dir.into(),
        reason: format!("device rules (eBPF): {what}: {e}"),
    }
}

/// Loads the program for `rules`.
fn load(dir: &Path, rules: &[Rule]) -> Result<OwnedFd> {
    let mut code = Vec::new();
    for i in compile(rules) {
        i.encode(&mut code);
    }
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE);
    put_u32(&mut attr, 4, (code.len() / 8) as u32);
    put_u64(&mut attr, 8, code.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    put_u32(&mut attr, 24, 1); // log_level
    put_u32(&mut attr, 28, log.len() as u32);
    put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
    put_u32(&mut attr, 68, BPF_CGROUP_DEVICE); // expected_attach_type
    let fd = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        let text = text.trim_end_matches('\0').trim();
        err(dir, "load the program", format!("{e}: {text}"))
    })?;
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The ids of the device programs attached to the cgroup itself (not inherited).
fn attached(dir: &Path, cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = [0u8; 40];
    put_u32(&mut attr, 0, cgroup.as_raw_fd() as u32);
    put_u32(&mut attr, 4, BPF_CGROUP_DEVICE);
    put_u64(&mut attr, 16, ids.as_mut_ptr() as u64);
    put_u32(&mut attr, 24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| err(dir, "query attached programs", e))?;
    let n = u32::from_ne_bytes([attr[24], attr[25], attr[26], attr[27]]) as usize;
    ids.truncate(n.min(64));
    Ok(ids)
}

/// Compiles `rules`, attaches the program to the cgroup at `dir`, then detaches whatever
/// device programs were attached there before.
pub(super) fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let cgroup: OwnedFd = std::fs::File::open(dir)
        .map_err(|e| err(dir, "open the cgroup", e))?
        .into();
    let old = attached(dir, &cgroup)?;
    let prog = load(dir, rules)?;
    let mut attr = [0u8; 20];
    put_u32(&mut attr, 0, cgroup.as_raw_fd() as u32);
    put_u32(&mut attr, 4, prog.as_raw_fd() as u32);
    put_u32(&mut attr, 8, BPF_CGROUP_DEVICE);
    put_u32(&mut attr, 12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| err(dir, "attach the program", e))?;
    for id in old {
        let mut attr = [0u8; 12];
        put_u32(&mut attr, 0, id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) else {
            continue; // detached meanwhile
        };
        // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
        let old = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut attr = [0u8; 12];
        put_u32(&mut attr, 0, cgroup.as_raw_fd() as u32);
        put_u32(&mut attr, 4, old.as_raw_fd() as u32);
        put_u32(&mut attr, 8, BPF_CGROUP_DEVICE);
        bpf(BPF_PROG_DETACH, &mut attr).map_err(|e| err(dir, "detach the old program", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::{decide, effective};
    use super::*;

    /// Runs a program on one access: a small interpreter of exactly the instructions
    /// `compile` emits, so that the program's decisions can be compared with the rules'.
    fn run(prog: &[Insn], kind: Kind, major: u32, minor: u32, access: u32) -> bool {
        let t = match kind {
            Kind::Block => 1,
            Kind::Char => 2,
            _ => 0,
        };
        let ctx = [(access << 16) | t, major, minor];
        let mut r = [0u32; 6];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            match i.code {
                0x61 => r[d] = ctx[i.off as usize / 4],
                0x54 => r[d] &= i.imm as u32,
                0x74 => r[d] >>= i.imm,
                0xbc => r[d] = r[s],
                0xb7 => r[d] = i.imm as u32,
                0x56 if r[d] != i.imm as u32 => pc += i.off as usize,
                0x16 if r[d] == i.imm as u32 => pc += i.off as usize,
                0x56 | 0x16 => {}
                0x95 => return r[0] == 1,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn the_program_decides_as_the_rules_do() {
        use super::super::devices::tests::rule as r;
        use oci_spec::runtime::LinuxDeviceType;
        let specs = vec![
            vec![],
            vec![r(true, LinuxDeviceType::A, -1, -1, "rwm")],
            vec![
                r(true, LinuxDeviceType::B, 7, -1, "rw"),
                r(false, LinuxDeviceType::B, 7, 2, "w"),
                r(true, LinuxDeviceType::C, 10, 200, "r"),
                r(true, LinuxDeviceType::P, 1, 1, "rwm"),
            ],
            vec![
                r(true, LinuxDeviceType::A, -1, -1, "rwm"),
                r(false, LinuxDeviceType::C, 1, 1, "rwm"),
            ],
        ];
        let mut checked = 0;
        for spec in &specs {
            let rules = effective(Some(spec));
            let prog = compile(&rules);
            for kind in [Kind::Block, Kind::Char] {
                for (major, minor) in [
                    (1, 1),
                    (1, 3),
                    (5, 2),
                    (7, 0),
                    (7, 2),
                    (8, 0),
                    (10, 200),
                    (136, 9),
                ] {
                    for access in 1..8 {
                        assert_eq!(
                            run(&prog, kind, major, minor, access),
                            decide(&rules, kind, major, minor, access),
                            "{spec:?}: {kind:?} {major}:{minor} access {access}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 2 * 8 * 7);
    }

    #[test]
    fn encodes_as_the_kernel_reads_it() {
        let mut out = Vec::new();
        Insn::jne(4, 259, 3).encode(&mut out);
        assert_eq!(out, [0x56, 0x04, 3, 0, 3, 1, 0, 0]);
        out.clear();
        Insn::load_ctx(3, 8).encode(&mut out);
        assert_eq!(out, [0x61, 0x13, 8, 0, 0, 0, 0, 0]);
    }
}
