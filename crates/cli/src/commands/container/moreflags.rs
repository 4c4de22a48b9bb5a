//! `run` and `create` flags beyond the common ones, each one field of the create request as
//! the docker CLI fills it: kernel parameters, CPU placement and quotas, the OOM killer,
//! the runtime, links, the cgroup namespace, the domain name, annotations, label files and
//! `--cidfile`. (`run.rs` holds the common flags and the request.)

use anyhow::Context as _;
use serde_json::{json, Value};

#[derive(Debug, Default, clap::Args)]
pub struct MoreArgs {
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<std::path::PathBuf>,
    /// Sysctl options (name=value).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long = "cpu-quota", allow_negative_numbers = true, value_parser = crate::goflags::go_int64)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long = "cpu-period", value_parser = crate::goflags::go_int64)]
    pub cpu_period: Option<i64>,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long = "oom-score-adj", allow_negative_numbers = true, value_parser = crate::goflags::go_int64)]
    pub oom_score_adj: Option<i64>,
    /// Disable OOM Killer.
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune container memory swappiness (0 to 100).
    #[arg(long = "memory-swappiness", allow_negative_numbers = true, value_parser = crate::goflags::go_int64)]
    pub memory_swappiness: Option<i64>,
    /// Runtime to use for this container.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Add link to another container (name[:alias]).
    #[arg(long)]
    pub link: Vec<String>,
    /// Cgroup namespace to use (host|private).
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime).
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file")]
    pub label_file: Vec<std::path::PathBuf>,
}

impl MoreArgs {
    /// The label files' labels into `labels` (the `--label` flags, added after, win).
    pub fn file_labels(
        &self,
        labels: &mut std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        for f in &self.label_file {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("open {}", f.display()))?;
            for l in text.lines().map(str::trim) {
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                labels.insert(k.to_string(), v.to_string());
            }
        }
        Ok(())
    }

    /// Fills the create request `body` (and its `HostConfig`).
    pub fn apply(&self, body: &mut Value) -> anyhow::Result<()> {
        if let Some(d) = &self.domainname {
            body["Domainname"] = json!(d);
        }
        let hc = &mut body["HostConfig"];
        if !self.sysctl.is_empty() {
            let mut m = serde_json::Map::new();
            for s in &self.sysctl {
                let (k, v) = s
                    .split_once('=')
                    .with_context(|| format!("invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed"))?;
                m.insert(k.to_string(), json!(v));
            }
            hc["Sysctls"] = Value::Object(m);
        }
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                hc[k] = v;
            }
        };
        set("CpusetCpus", self.cpuset_cpus.as_ref().map(|v| json!(v)));
        set("CpusetMems", self.cpuset_mems.as_ref().map(|v| json!(v)));
        set("CpuQuota", self.cpu_quota.map(|v| json!(v)));
        set("CpuPeriod", self.cpu_period.map(|v| json!(v)));
        set("OomScoreAdj", self.oom_score_adj.map(|v| json!(v)));
        set(
            "OomKillDisable",
            self.oom_kill_disable.then_some(Value::Bool(true)),
        );
        set("MemorySwappiness", self.memory_swappiness.map(|v| json!(v)));
        set("Runtime", self.runtime.as_ref().map(|v| json!(v)));
        set("CgroupnsMode", self.cgroupns.as_ref().map(|v| json!(v)));
        if !self.link.is_empty() {
            // As given (`name` or `name:alias`): berthd reads them as dockerd does.
            hc["Links"] = json!(self.link);
        }
        if !self.annotation.is_empty() {
            let mut m = serde_json::Map::new();
            for a in &self.annotation {
                let (k, v) = a.split_once('=').unwrap_or((a, ""));
                m.insert(k.to_string(), json!(v));
            }
            hc["Annotations"] = Value::Object(m);
        }
        Ok(())
    }

    /// `--cidfile`: refused if the file exists (docker 28: "container ID file found, make
    /// sure the other container isn't running or delete FILE"), written once the id is known.
    pub fn check_cidfile(&self) -> anyhow::Result<()> {
        match &self.cidfile {
            Some(f) if f.exists() => anyhow::bail!(
                "container ID file found, make sure the other container isn't running or delete {}",
                f.display()
            ),
            _ => Ok(()),
        }
    }

    pub fn write_cidfile(&self, id: &str) -> anyhow::Result<()> {
        if let Some(f) = &self.cidfile {
            std::fs::write(f, id)
                .with_context(|| format!("write the container ID file {}", f.display()))?;
        }
        Ok(())
    }
}
