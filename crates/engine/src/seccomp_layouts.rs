//! Docker's default seccomp profile compiled as libseccomp's list and as its binary tree (what
//! a start loads) gives the same verdict for every syscall number, architecture and argument
//! set tried. The filters are run by a small classic-BPF interpreter written here: the kernel
//! offers no way to run a filter without loading it into a process for good, and no crate
//! interprets seccomp's cBPF.

use berth_runtime::seccomp::{Layout, Program};
use oci_spec::runtime::LinuxSeccomp;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// `struct seccomp_data`: nr, arch, instruction pointer, six arguments.
fn data(nr: u32, arch: u32, args: [u64; 6]) -> Vec<u8> {
    let mut d = Vec::with_capacity(64);
    d.extend_from_slice(&nr.to_ne_bytes());
    d.extend_from_slice(&arch.to_ne_bytes());
    d.extend_from_slice(&0x7fff_0000u64.to_ne_bytes());
    for a in args {
        d.extend_from_slice(&a.to_ne_bytes());
    }
    d
}

/// Runs a classic BPF program over `data` and returns its RET value. Panics on an opcode
/// seccomp filters do not use, or on a jump out of the program.
fn run(code: &[u8], data: &[u8]) -> u32 {
    let ins: Vec<(u16, u8, u8, u32)> = code
        .chunks_exact(8)
        .map(|c| {
            (
                u16::from_ne_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
    let word = |off: u32| {
        let o = off as usize;
        u32::from_ne_bytes(
            data[o..o + 4]
                .try_into()
                .expect("a load inside seccomp_data"),
        )
    };
    loop {
        let (op, jt, jf, k) = ins[pc];
        pc += 1;
        let src = if op & 0x08 != 0 { x } else { k };
        match op & 0x07 {
            // BPF_LD: W|ABS, W|IMM, W|MEM.
            0x00 => match op & 0xe0 {
                0x20 => a = word(k),
                0x00 => a = k,
                0x60 => a = mem[k as usize],
                m => panic!("BPF_LD mode {m:#x}"),
            },
            // BPF_LDX: IMM, MEM.
            0x01 => match op & 0xe0 {
                0x00 => x = k,
                0x60 => x = mem[k as usize],
                m => panic!("BPF_LDX mode {m:#x}"),
            },
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            // BPF_ALU.
            0x04 => {
                a = match op & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ src,
                    o => panic!("BPF_ALU op {o:#x}"),
                }
            }
            // BPF_JMP.
            0x05 => {
                let taken = match op & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    o => panic!("BPF_JMP op {o:#x}"),
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            // BPF_RET: K or A.
            0x06 => return if op & 0x10 != 0 { a } else { k },
            // BPF_MISC: TAX, TXA.
            0x07 => {
                if op & 0xf8 == 0x80 {
                    a = x
                } else {
                    x = a
                }
            }
            _ => unreachable!(),
        }
        assert!(pc < ins.len(), "a jump out of the program");
    }
}

fn profile(caps: &[&str]) -> LinuxSeccomp {
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    serde_json::from_value(crate::seccomp::default_profile(&caps)).expect("an OCI profile")
}

#[test]
fn the_tree_and_the_list_give_the_same_verdicts() {
    let default_caps = crate::spec::DEFAULT_CAPS;
    let mut all = default_caps.to_vec();
    all.extend([
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_SYS_MODULE",
        "CAP_SYS_TIME",
    ]);
    // Arguments that the profile's conditional rules look at: clone's namespace flags,
    // personality's values, socket's AF_VSOCK, high bits set (for the 64-bit compares).
    let arg_sets: [[u64; 6]; 6] = [
        [0; 6],
        [0x7E02_0000, 0, 0, 0, 0, 0],
        [0x0001_0000, 0, 0, 0, 0, 0],
        [8, 0, 0, 0, 0, 0],
        [40, 1, 0, 0, 0, 0],
        [u64::MAX, 0xffff_ffff_0000_0000, 1, 2, 3, 4],
    ];
    for caps in [default_caps, &all[..]] {
        let p = profile(caps);
        let list = Program::compile_at(&p, Layout::List).unwrap();
        let tree = Program::compile_at(&p, Layout::Tree).unwrap();
        assert_ne!(list.code, tree.code, "the layouts differ");
        let mut allowed = 0;
        for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0x1234_5678] {
            for nr in (0..1100).chain([0x4000_0000, 0x4000_0001, 0x4000_0200, u32::MAX]) {
                for args in &arg_sets {
                    let d = data(nr, arch, *args);
                    let (l, t) = (run(&list.code, &d), run(&tree.code, &d));
                    assert_eq!(l, t, "syscall {nr} arch {arch:#x} args {args:?}");
                    allowed += usize::from(l == 0x7fff_0000);
                }
            }
        }
        // Not a filter that allows or refuses everything.
        assert!(allowed > 1000, "{allowed} verdicts were allow");
    }
}
