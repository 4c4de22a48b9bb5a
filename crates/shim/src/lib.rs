//! berth-shim's protocol, shared by the shim binary and the engine that talks to it.
//!
//! One `berth-shim` process supervises one container: it creates the container through the
//! runtime library, owns its stdio, writes its log, reaps it, records the exit status and
//! applies the restart policy. It outlives berthd; a new berthd finds it through its socket.
//!
//! The protocol is hand-written because it is tiny and must cost the shim nothing: a client
//! connects to the shim's unix socket and sends one JSON [`Request`] on one line. The shim
//! answers with one JSON [`Reply`] line; `subscribe` then sends a [`ShimState`] line on every
//! change, and `attach` turns the connection into a byte stream: output in Docker's
//! multiplexed frames (8-byte header: stream, 0, 0, 0, big-endian length), input as raw bytes.
//!
//! Modules:
//! - [`logfile`]: Docker's json-file log format, rotation and reading.

pub mod logfile;

/// Whether systemd is the init system (the systemd cgroup driver needs it).
pub use berth_runtime::cgroups::systemd::booted as systemd_booted;
/// The cgroup vocabulary the engine needs to configure shims and report on the host.
pub use berth_runtime::cgroups::{
    favor_dynamic_modifications, Hierarchies as CgroupHierarchies, IoEntry as CgroupIoEntry,
    Layout as CgroupLayout, Mode as CgroupMode, Stats as CgroupStats,
};

/// Signal names and numbers, from the runtime's one table.
pub use berth_runtime::signal;

use std::path::PathBuf;

/// What the engine writes for a shim to start (as `shim.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShimConfig {
    /// The container id (also the runtime's container id).
    pub id: String,
    /// The OCI bundle (holds config.json; its root.path is absolute).
    pub bundle: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// The shim's control socket.
    pub socket: PathBuf,
    /// Where the shim keeps [`ShimState`] (written atomically on every change).
    pub state_file: PathBuf,
    /// Mounts that make up the container's root file system, made by the shim before the
    /// container is created and undone after it has exited for good.
    pub rootfs_mounts: Vec<MountSpec>,
    pub log: LogConfig,
    pub restart: RestartPolicy,
    /// Keep the container's stdin open for attach clients.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes it.
    pub stdin_once: bool,
    /// Give the container a terminal.
    pub tty: bool,
    /// Start the process right away instead of waiting for a `start` request.
    #[serde(default)]
    pub autostart: bool,
    /// The cgroup hierarchies the container is placed in.
    #[serde(default)]
    pub cgroup_layout: CgroupLayout,
    /// The systemd cgroup driver: the container's cgroup is a scope systemd makes.
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// berthd's log level: at `debug` or `trace` the shim writes its tracing spans (container
    /// id, request) to `shim.log` beside its state; below that it records only its warnings.
    #[serde(default)]
    pub log_level: String,
}

/// One mount of the root file system.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub target: PathBuf,
    pub options: Vec<String>,
}

/// The json-file log's place and rotation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_file: u32,
    /// The `none` log driver: output goes to attached clients only, nothing is written.
    #[serde(default)]
    pub disabled: bool,
    /// The file's format: Docker's json-file, or the CRI's (a pod container's log, which the
    /// kubelet reads and rotates).
    #[serde(default)]
    pub format: LogFormat,
}

/// A log file's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `{"log":"…\n","stream":"stdout","time":"…"}` per line.
    #[default]
    JsonFile,
    /// `<RFC 3339 nanoseconds> <stdout|stderr> <F|P> <text>` per line: `F` ends a line, `P`
    /// is part of a longer one.
    Cri,
}

impl MountSpec {
    /// Performs the mount (`bind`, `rbind` and `ro` become flags; other options are the
    /// file system's data), creating the target directory if needed.
    pub fn mount(&self) -> nix::Result<()> {
        use nix::mount::MsFlags;
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        for o in &self.options {
            match o.as_str() {
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                "ro" => flags |= MsFlags::MS_RDONLY,
                other => data.push(other),
            }
        }
        let data = data.join(",");
        let _ = std::fs::create_dir_all(&self.target);
        nix::mount::mount(
            Some(self.source.as_str()),
            &self.target,
            Some(self.fstype.as_str()),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
    }

    /// Lazily unmounts the target.
    pub fn unmount(target: &std::path::Path) -> nix::Result<()> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
    }
}

/// Docker's restart policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartPolicy {
    /// "no", "always", "unless-stopped" or "on-failure".
    pub name: String,
    /// For on-failure: the most restarts (0: no limit).
    pub max_retries: u32,
}

impl RestartPolicy {
    /// Whether a process that exited with `code`, after `restarts` restarts, is restarted.
    /// A stop asked for by the user is never restarted.
    pub fn should_restart(&self, code: i32, restarts: u32, manual_stop: bool) -> bool {
        if manual_stop {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retries == 0 || restarts < self.max_retries),
            _ => false,
        }
    }
}

/// The container's status as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, waiting for `start`.
    Created,
    Running,
    Paused,
    /// Exited; waiting out the back-off before the policy restarts it.
    Restarting,
    /// Exited for good; the shim is gone or about to go.
    Exited,
}

/// The shim's record of its container; the shim writes it to [`ShimConfig::state_file`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShimState {
    pub status: Status,
    /// The container's init process in the host's pid namespace (0 when none).
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    pub exit_code: i32,
    /// RFC 3339 times; empty when not yet.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// How many times a process of this shim exited (restarts included).
    pub exits: u64,
    pub oom_killed: bool,
    /// Why the container could not be (re)started.
    pub error: String,
    /// Set once the user asked for a stop: the restart policy no longer applies.
    pub manual_stop: bool,
}

impl berth_durable::Record for ShimState {
    const KIND: &'static str = "shim state";
    const SCHEMA: u32 = 1;
}

impl ShimState {
    /// Reads a state file.
    pub fn load(path: &std::path::Path) -> Result<ShimState, berth_durable::Error> {
        berth_durable::load(path)
    }

    /// Writes a state file atomically (`berth_durable::replace`, with the record's schema),
    /// without fsync: the state describes processes that do not outlive the boot (after a
    /// reboot berth finds every shim gone and records its container as exited), and two
    /// fsyncs per state change measured 11 ms on `run --rm` (bench/run, docs/benchmarks.md).
    pub fn save(&self, path: &std::path::Path) -> Result<(), berth_durable::Error> {
        berth_durable::replace_record(path, self)
    }
}

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// The current [`ShimState`].
    State,
    /// Runs the created container's process.
    Start,
    /// Sends a signal to the container's init (with `all`: to every process in it).
    Kill {
        signal: i32,
        all: bool,
    },
    /// A user's stop: the restart policy no longer applies; `signal` now, SIGKILL after
    /// `timeout` seconds (negative: wait for ever).
    Stop {
        signal: i32,
        timeout: i64,
    },
    /// A [`ShimState`] line now and on every change until the shim exits.
    Subscribe,
    /// The container's stdio as a stream.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Pause,
    Resume,
    /// The terminal's size.
    Resize {
        height: u16,
        width: u16,
    },
    /// Runs an extra process (an OCI `process` object) in the container; the connection
    /// becomes its stream, ending with a frame of stream [`EXIT`] holding its exit code.
    Exec {
        key: u64,
        process: serde_json::Value,
        tty: bool,
        stdin: bool,
    },
    /// A signal to an exec process (a health probe past its timeout).
    ExecKill {
        key: u64,
        signal: i32,
    },
    /// An exec process's terminal size.
    ExecResize {
        key: u64,
        height: u16,
        width: u16,
    },
    /// New cgroup limits (an OCI `linux.resources` object) and, if given, a new restart
    /// policy.
    Update {
        resources: Box<oci_spec::runtime::LinuxResources>,
        restart: Option<RestartPolicy>,
    },
    /// Cgroup statistics and the processes of the container (host pids), in `Reply::data`:
    /// `{"stats": {...}, "pids": [...]}`.
    Stats,
    /// Opens the log file again at its path (after whoever rotates it renamed it: the CRI's
    /// ReopenContainerLog).
    ReopenLog,
}

impl Request {
    /// The request's name (its `op`), for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Request::State => "state",
            Request::Start => "start",
            Request::Kill { .. } => "kill",
            Request::Stop { .. } => "stop",
            Request::Subscribe => "subscribe",
            Request::Attach { .. } => "attach",
            Request::Pause => "pause",
            Request::Resume => "resume",
            Request::Resize { .. } => "resize",
            Request::Exec { .. } => "exec",
            Request::ExecKill { .. } => "execkill",
            Request::ExecResize { .. } => "execresize",
            Request::Update { .. } => "update",
            Request::ReopenLog => "reopenlog",
            Request::Stats => "stats",
        }
    }
}

/// The shim's answer to a request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// Empty when the request succeeded.
    #[serde(default)]
    pub error: String,
    /// The OS error behind a failure, when the runtime met one (`ENOENT`: the program does
    /// not exist; `EACCES`: it may not be run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ShimState>,
    /// What a request returns besides success (statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// Stream numbers of Docker's multiplexed frames.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// berth's own frame type on exec streams: the process's exit code, in decimal.
pub const EXIT: u8 = 255;

/// The 8-byte header of a multiplexed frame.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Formats a time as RFC 3339 with nanoseconds in UTC.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    berth_runtime::state::rfc3339(t)
}

/// Parses RFC 3339 times (those [`rfc3339`] writes, Docker's with fewer fraction digits,
/// and any offset) into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_000_000, 123_456_789);
        let s = rfc3339(t);
        assert_eq!(parse_rfc3339(&s), Some(1_795_000_000_123_456_789));
        assert_eq!(
            parse_rfc3339("1970-01-01T01:00:00+01:00"),
            Some(0),
            "offsets are applied"
        );
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn restart_policies() {
        let p = |n: &str, m| RestartPolicy {
            name: n.into(),
            max_retries: m,
        };
        assert!(!p("no", 0).should_restart(1, 0, false));
        assert!(p("always", 0).should_restart(0, 100, false));
        assert!(!p("always", 0).should_restart(0, 0, true));
        assert!(p("on-failure", 0).should_restart(1, 50, false));
        assert!(!p("on-failure", 0).should_restart(0, 0, false));
        assert!(p("on-failure", 2).should_restart(1, 1, false));
        assert!(!p("on-failure", 2).should_restart(1, 2, false));
    }

    #[test]
    fn request_wire_format() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9,"all":false}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 9,
                all: false
            }
        );
        assert_eq!(frame_header(STDERR, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
