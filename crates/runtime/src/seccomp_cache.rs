//! Compiled seccomp filters kept on disk, so that a container start loads a profile without
//! compiling it (docker's default profile costs libseccomp milliseconds per start; crun keeps
//! a cache for the same reason).
//!
//! A filter is keyed by the SHA-256 of everything its bytes depend on: the cache format, the
//! compile rules' revision, this runtime's version (which fixes the statically linked libseccomp and the compile rules in
//! `seccomp.rs`), the architecture, and the profile itself as JSON. The engine's default
//! profile already depends on the container's capabilities, so the capability set is part of
//! the profile's content; any change of profile, runtime or architecture is a different key,
//! and an entry is never rewritten.
//!
//! Entries are `<root>/@seccomp/<key>.bpf` (`@` is in no container id): a header (magic,
//! flags, length) and the program. A missing, short or corrupt entry is compiled again and
//! replaced; writes go to a temporary name and are renamed into place, so a reader never sees
//! half an entry. No fsync: the runtime root is a tmpfs (`/run`), and a lost entry only costs
//! one compilation.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::seccomp::Program;

const MAGIC: &[u8; 8] = b"BSECCMP1";
/// The compile rules' revision, in the key: a filter compiled by older rules (2: the binary
/// tree) is never reused.
const RULES: u32 = 2;

/// The cache's directory under a runtime root.
pub fn dir(root: &Path) -> PathBuf {
    root.join("@seccomp")
}

/// The entry name of `s`.
pub fn key(s: &LinuxSeccomp) -> String {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(RULES.to_le_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update([0]);
    h.update(std::env::consts::ARCH.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(s).expect("a seccomp profile serialises"));
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The compiled filter of `s`: read from `dir` when it is there and whole, compiled (and
/// stored) otherwise. A cache that cannot be written is not an error.
pub fn program(dir: &Path, s: &LinuxSeccomp) -> Result<Program> {
    let path = dir.join(format!("{}.bpf", key(s)));
    if let Some(p) = read(&path) {
        return Ok(p);
    }
    let p = Program::compile(s)?;
    if let Err(e) = write(dir, &path, &p) {
        tracing::debug!(path = %path.display(), error = %e, "seccomp cache not written");
    }
    Ok(p)
}

fn read(path: &Path) -> Option<Program> {
    let data = std::fs::read(path).ok()?;
    let header = 8 + 4 + 4;
    if data.len() < header || &data[..8] != MAGIC {
        return None;
    }
    let flags = u32::from_le_bytes(data[8..12].try_into().ok()?);
    let len = u32::from_le_bytes(data[12..16].try_into().ok()?) as usize;
    if data.len() != header + len {
        return None;
    }
    Program::new(data[header..].to_vec(), flags).ok()
}

fn write(dir: &Path, path: &Path, p: &Program) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut data = Vec::with_capacity(MAGIC.len() + 8 + p.code.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&p.flags.to_le_bytes());
    data.extend_from_slice(&(p.code.len() as u32).to_le_bytes());
    data.extend_from_slice(&p.code);
    // A cache entry is rebuilt when missing, so it needs no fsync.
    berth_durable::replace(path, &data).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    fn docker_like() -> LinuxSeccomp {
        profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "exit", "exit_group", "getpid", "rt_sigreturn",
                           "futex", "mmap", "munmap", "brk", "close", "sched_yield"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }))
    }

    #[test]
    fn a_cached_filter_is_the_compiled_one() {
        let d = tempfile::tempdir().unwrap();
        let s = docker_like();
        let cold = program(d.path(), &s).unwrap();
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        let warm = program(d.path(), &s).unwrap();
        assert_eq!(cold, warm);
        assert_eq!(cold, Program::compile(&s).unwrap());
    }

    #[test]
    fn any_change_is_a_new_entry() {
        let d = tempfile::tempdir().unwrap();
        let a = docker_like();
        let mut v = serde_json::to_value(&a).unwrap();
        v["syscalls"][2]["errnoRet"] = 1.into();
        let b: LinuxSeccomp = serde_json::from_value(v.clone()).unwrap();
        v["flags"] = serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"]);
        let c: LinuxSeccomp = serde_json::from_value(v).unwrap();
        assert_ne!(key(&a), key(&b));
        assert_ne!(key(&b), key(&c));
        let (pa, pb, pc) = (
            program(d.path(), &a).unwrap(),
            program(d.path(), &b).unwrap(),
            program(d.path(), &c).unwrap(),
        );
        assert_ne!(pa.code, pb.code, "a different errno is a different program");
        assert_eq!(pb.code, pc.code);
        assert_eq!((pb.flags, pc.flags), (0, 2));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);
    }

    #[test]
    fn a_damaged_entry_is_compiled_again() {
        let d = tempfile::tempdir().unwrap();
        let s = docker_like();
        let good = program(d.path(), &s).unwrap();
        let path = d.path().join(format!("{}.bpf", key(&s)));
        for damage in [vec![], b"BSECCMP1\0\0\0\0\xff\0\0\0xx".to_vec(), {
            let mut v = std::fs::read(&path).unwrap();
            v.truncate(v.len() - 3);
            v
        }] {
            std::fs::write(&path, &damage).unwrap();
            assert_eq!(program(d.path(), &s).unwrap(), good);
            assert_eq!(read(&path).as_ref(), Some(&good), "the entry was replaced");
        }
    }

    /// The cached program and libseccomp's own load give the same answers to the same
    /// syscalls, each in a forked child.
    #[test]
    fn the_cached_filter_filters_as_libseccomp_does() {
        let d = tempfile::tempdir().unwrap();
        let s = docker_like();
        program(d.path(), &s).unwrap();
        let cached = program(d.path(), &s).unwrap();
        let probe = |load: &dyn Fn() -> Result<()>| -> Vec<i64> {
            let (r, w) = nix::unistd::pipe().unwrap();
            // SAFETY: the child only makes raw syscalls and writes to a pipe before _exit.
            match unsafe { libc::fork() } {
                0 => {
                    // SAFETY: prctl with integer arguments.
                    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                    if load().is_err() {
                        // SAFETY: leaving the forked child.
                        unsafe { libc::_exit(3) };
                    }
                    let mut out = [0i64; 4];
                    for (i, nr) in [
                        libc::SYS_getpid,
                        libc::SYS_getppid,
                        libc::SYS_getuid,
                        libc::SYS_personality,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        // SAFETY: argument-less (or personality(0xffffffff): query) syscalls.
                        let rc = unsafe {
                            if nr == libc::SYS_personality {
                                libc::syscall(nr, 0xffff_ffffu64)
                            } else {
                                libc::syscall(nr)
                            }
                        };
                        out[i] = if rc < 0 {
                            -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
                        } else {
                            0
                        };
                    }
                    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
                    // SAFETY: writing a live buffer to our pipe, then leaving the child.
                    unsafe {
                        libc::write(w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                        libc::_exit(0);
                    }
                }
                pid => {
                    drop(w);
                    let mut buf = Vec::new();
                    use std::io::Read;
                    std::fs::File::from(r).read_to_end(&mut buf).unwrap();
                    let mut status = 0;
                    // SAFETY: waiting for our own child.
                    unsafe { libc::waitpid(pid, &mut status, 0) };
                    assert_eq!(buf.len(), 32, "child status {status}");
                    buf.chunks(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                        .collect()
                }
            }
        };
        use std::os::fd::AsRawFd;
        let with_cache = probe(&|| cached.load());
        let with_libseccomp = probe(&|| crate::seccomp::load(&s));
        assert_eq!(with_cache, with_libseccomp);
        // getpid allowed, getppid ENOSYS (38) by its rule, getuid EPERM by the default,
        // personality(query) refused: its value matches neither allowed argument.
        assert_eq!(with_cache, vec![0, -38, -1, -1]);
    }
}
