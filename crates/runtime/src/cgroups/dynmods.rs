//! The kernel's `favordynmods` cgroup2 mount option, which decides what a task migration costs.
//!
//! Moving a process into a cgroup (a container's init, on every start) takes the global
//! `cgroup_threadgroup_rwsem` for writing. By default that can wait for an RCU grace period
//! (12–13 ms in some `bench/startpath` runs on this project's machines, not in others; see
//! docs/benchmarks.md). With `favordynmods` the lock's readers (fork and exit) take a slightly
//! slower path and writers no longer wait. The lock is global, so setting the option on the
//! cgroup2 mount speeds up migrations in every hierarchy, v1 ones included. It is a host-wide
//! choice, so berthd makes it only when configured to (`cgroup-favordynmods`).

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The cgroup2 mount and its file-system options, from /proc/self/mountinfo.
fn cgroup2_mount() -> Result<Option<(PathBuf, String)>> {
    let data = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::Cgroup {
        path: "/proc/self/mountinfo".into(),
        reason: e.to_string(),
    })?;
    for line in data.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() >= 5 && post.len() >= 3 && post[0] == "cgroup2" {
            return Ok(Some((
                PathBuf::from(super::unescape(pre[4])),
                post[2].to_string(),
            )));
        }
    }
    Ok(None)
}

/// The options to remount with: the file system's own ones kept (`nsdelegate`,
/// `memory_recursiveprot` …), `favordynmods` added; `rw`/`ro` are the mount's, not options.
fn with_favordynmods(options: &str) -> String {
    let mut opts: Vec<&str> = options
        .split(',')
        .filter(|o| !o.is_empty() && *o != "rw" && *o != "ro" && *o != "favordynmods")
        .collect();
    opts.push("favordynmods");
    opts.join(",")
}

/// Turns `favordynmods` on for the host; false when it already was on.
pub fn favor_dynamic_modifications() -> Result<bool> {
    let (mount, options) = cgroup2_mount()?.ok_or_else(|| Error::Cgroup {
        path: "/proc/self/mountinfo".into(),
        reason: "favordynmods needs a cgroup2 mount, and none is mounted".into(),
    })?;
    if options.split(',').any(|o| o == "favordynmods") {
        return Ok(false);
    }
    nix::mount::mount(
        None::<&str>,
        &mount,
        None::<&str>,
        nix::mount::MsFlags::MS_REMOUNT,
        Some(with_favordynmods(&options).as_str()),
    )
    .map_err(|e| Error::Cgroup {
        path: mount.clone(),
        reason: format!("remount with favordynmods: {e}"),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_file_systems_options() {
        assert_eq!(with_favordynmods("rw"), "favordynmods");
        assert_eq!(
            with_favordynmods("rw,nsdelegate,memory_recursiveprot"),
            "nsdelegate,memory_recursiveprot,favordynmods"
        );
        assert_eq!(with_favordynmods("rw,favordynmods"), "favordynmods");
    }
}
