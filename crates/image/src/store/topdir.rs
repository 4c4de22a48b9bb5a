//! The snapshots directory marked as the top of directory hierarchies (`chattr +T`,
//! `FS_TOPDIR_FL`), so that ext4's Orlov allocator places each snapshot's directory in a block
//! group of its own choosing, as it does for directories under `/`, instead of beside its
//! parent, the group where the store's every other snapshot already lives.
//!
//! Why it matters: ext4 does not hand out an inode freed in the last minute (its
//! `recently_deleted` check), and it finds that out by scanning the group's free inodes one
//! by one. A store that just removed an image has thousands of such inodes in the snapshots'
//! group, and a load right after paid for the scan on every file it created: 0.92-1.10 s for
//! bench/image's 206 MB archive, against 0.33 s with the flag (measured on this machine's
//! ext4). File systems without the flag refuse the ioctl; that is not an error.
//!
//! Written by hand: two ioctls, which no maintained crate wraps.

use std::os::fd::AsRawFd;
use std::path::Path;

/// `FS_TOPDIR_FL` of linux/fs.h.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Sets the flag on the directory at `dir` if it is not set; false when the file system (or
/// anything else) refused.
pub(crate) fn mark(dir: &Path) -> bool {
    let Ok(f) = std::fs::File::open(dir) else {
        return false;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's attribute flags are an int despite
    // the ioctl's declared `long`) into `flags`, which lives across the call.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return false;
    }
    if flags & FS_TOPDIR_FL != 0 {
        return true;
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int from `flags`, which lives across the call.
    unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a file system with attribute flags (ext4, this machine's root), the flag is set and
    /// reads back; setting it again keeps it.
    #[test]
    fn marks_a_directory_on_ext4() {
        let dir = tempfile::tempdir().unwrap();
        let fs = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(dir.path())
            .output()
            .unwrap();
        let fs = String::from_utf8_lossy(&fs.stdout).trim().to_string();
        if fs != "ext2/ext3" {
            // tmpfs, overlay, …: no flags to set; mark says so.
            assert!(!mark(dir.path()), "{fs} takes no FS_TOPDIR_FL");
            return;
        }
        assert!(mark(dir.path()));
        assert!(mark(dir.path()));
        let out = std::process::Command::new("lsattr")
            .args(["-d"])
            .arg(dir.path())
            .output()
            .unwrap();
        let attrs = String::from_utf8_lossy(&out.stdout);
        assert!(
            attrs.split_whitespace().next().unwrap().contains('T'),
            "{attrs}"
        );
    }
}
