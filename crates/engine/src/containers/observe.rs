//! What runs in a container and what it uses: `top`, `stats` and `diff`.

use super::*;

impl Containers {
    /// The shim's statistics for a running container: (cgroup stats, host pids).
    pub(super) async fn shim_stats(
        &self,
        name: &str,
    ) -> Result<(Record, serde_json::Value, Vec<i32>), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if !matches!(e.view().state(), State::Running | State::Paused) {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        let d = shim_data(&self.socket(&rec.id), &Request::Stats).await?;
        let pids = d["pids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_i64().map(|p| p as i32))
                    .collect()
            })
            .unwrap_or_default();
        Ok((rec, d["stats"].clone(), pids))
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

    /// One sample of `GET /containers/{id}/stats` in Docker's shape (without `precpu_stats`).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn stats_sample(&self, name: &str) -> Result<serde_json::Value, EngineError> {
        let (rec, st, pids) = self.shim_stats(name).await?;
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limit = st["memory"]["limit"].as_u64().unwrap_or(u64::MAX);
        let host_mem = crate::procs::mem_total();
        Ok(serde_json::json!({
            "read": berth_shim::rfc3339(SystemTime::now()),
            "preread": "0001-01-01T00:00:00Z",
            "name": format!("/{}", rec.name),
            "id": rec.id,
            "num_procs": 0,
            "pids_stats": {"current": st["pids"]["current"].as_u64().unwrap_or(pids.len() as u64), "limit": st["pids"]["limit"]},
            "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null,
                "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null},
            "storage_stats": {},
            "cpu_stats": {
                "cpu_usage": {
                    "total_usage": st["cpu"]["usage_total"],
                    "usage_in_kernelmode": st["cpu"]["usage_kernel"],
                    "usage_in_usermode": st["cpu"]["usage_user"],
                },
                "system_cpu_usage": crate::procs::system_cpu_ns(),
                "online_cpus": ncpu,
                "throttling_data": {"periods": 0, "throttled_periods": st["cpu"]["throttled_periods"], "throttled_time": 0},
            },
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {
                "usage": st["memory"]["usage"],
                "max_usage": st["memory"]["max_usage"],
                "failcnt": st["memory"]["failcnt"],
                "limit": if limit == u64::MAX || limit > host_mem { host_mem } else { limit },
                "stats": {},
            },
        }))
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
