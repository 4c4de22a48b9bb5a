//! What runs in a container and what it uses: `top`, `stats` and `diff`.

use super::*;

impl Containers {
    /// The shim's statistics for a running container: (cgroup stats, host pids).
    pub(super) async fn shim_stats(
        &self,
        name: &str,
    ) -> Result<(Record, berth_shim::CgroupStats, Vec<i32>), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if !matches!(e.view().state(), State::Running | State::Paused) {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        #[derive(Deserialize)]
        struct Reply {
            #[serde(default)]
            pids: Vec<i32>,
            #[serde(default)]
            stats: berth_shim::CgroupStats,
        }
        let d = shim_data(&self.socket(&rec.id), &Request::Stats).await?;
        let r: Reply = serde_json::from_value(d)
            .map_err(|e| unavailable(format!("the shim's statistics: {e}")))?;
        Ok((rec, r.stats, r.pids))
    }

    /// `GET /containers/{id}/top`: `ps -ef`'s columns for the container's processes.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn top(&self, name: &str) -> Result<(Vec<String>, Vec<Vec<String>>), EngineError> {
        let (_, _, pids) = self.shim_stats(name).await?;
        let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];
        let mut rows = Vec::new();
        for pid in pids {
            if let Some(r) = crate::procs::ps_row(pid) {
                rows.push(r);
            }
        }
        Ok((titles.iter().map(|t| t.to_string()).collect(), rows))
    }

    /// One sample of a running container's resource use (`GET /containers/{id}/stats`).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn stats_sample(&self, name: &str) -> Result<StatsSample, EngineError> {
        let (rec, st, pids) = self.shim_stats(name).await?;
        let host_mem = crate::procs::mem_total();
        let limit = st.memory.limit;
        Ok(StatsSample {
            read: SystemTime::now(),
            name: rec.name,
            id: rec.id,
            pids: if st.pids.current > 0 {
                st.pids.current
            } else {
                pids.len() as u64
            },
            pids_limit: st.pids.limit,
            cpu_total_ns: st.cpu.usage_total,
            cpu_kernel_ns: st.cpu.usage_kernel,
            cpu_user_ns: st.cpu.usage_user,
            throttled_periods: st.cpu.throttled_periods,
            system_cpu_ns: crate::procs::system_cpu_ns(),
            online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_usage: st.memory.usage,
            memory_max_usage: st.memory.max_usage,
            memory_limit: if limit == u64::MAX || limit > host_mem {
                host_mem
            } else {
                limit
            },
            memory_failcnt: st.memory.failcnt,
            // The namespace's view through one of its processes.
            networks: pids
                .first()
                .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/net/dev")).ok())
                .map(|t| crate::model::NetStats::parse(&t))
                .unwrap_or_default(),
            io_bytes: st.io_bytes,
            io_ops: st.io_ops,
        })
    }

    /// `GET /containers/{id}/changes`: paths changed in the container's writable layer,
    /// as (path, kind) with Docker's kinds: 0 modified, 1 added, 2 deleted.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub fn changes(&self, name: &str) -> Result<Vec<(String, u8)>, EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let upper = self.dir(&rec.id).join("upper");
        let layers = self.images.layer_dirs(&rec.image, &upper)?;
        let lowers = &layers[1..];
        let mut out = Vec::new();
        fn walk(dir: &Path, rel: &str, lowers: &[PathBuf], out: &mut Vec<(String, u8)>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            let mut names: Vec<_> = rd.flatten().collect();
            names.sort_by_key(|e| e.file_name());
            for ent in names {
                let name = ent.file_name().to_string_lossy().into_owned();
                let path = format!("{rel}/{name}");
                let Ok(md) = ent.path().symlink_metadata() else {
                    continue;
                };
                if md.is_file()
                    && md.len() == 0
                    && MOUNT_POINTS.contains(&path.trim_start_matches('/'))
                {
                    continue;
                }
                // Mount points berth made for the container, not its changes (dockerd keeps
                // them in an init layer that `diff` never shows): /dev, /proc and /sys are
                // mounted over, and an /etc made only for the placeholders above.
                if md.is_dir() && matches!(path.as_str(), "/dev" | "/proc" | "/sys") {
                    continue;
                }
                if path == "/etc" && only_placeholders(&ent.path()) {
                    continue;
                }
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                // An overlay whiteout: a 0/0 character device.
                if md.file_type().is_char_device() && md.rdev() == 0 {
                    out.push((path, 2));
                    continue;
                }
                let in_lower = lowers.iter().any(|l| {
                    l.join(path.trim_start_matches('/'))
                        .symlink_metadata()
                        .is_ok()
                });
                out.push((path.clone(), if in_lower { 0 } else { 1 }));
                if md.is_dir() {
                    walk(&ent.path(), &path, lowers, out);
                }
            }
        }
        walk(&upper, "", lowers, &mut out);
        Ok(out)
    }
}

/// Whether a directory berth made holds nothing but the empty files it mounts over.
fn only_placeholders(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten().all(|e| {
            let rel = format!("etc/{}", e.file_name().to_string_lossy());
            MOUNT_POINTS.contains(&rel.as_str())
                && e.metadata().is_ok_and(|m| m.is_file() && m.len() == 0)
        })
    })
}
