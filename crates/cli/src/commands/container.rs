//! Container commands: `run`, `create`, `start`, `stop`, `kill`, `restart`, `pause`,
//! `unpause`, `rm`, `ps`, `logs`, `attach`, `inspect`, `wait`, `rename`, with docker's flags,
//! output and exit codes (125 for a daemon error in run/create, 126/127 when the program
//! cannot be run or found, the container's own code for `run`).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context as _;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::{q, Api, DaemonError};
use crate::format;

/// Flags shared by `run` and `create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Restart policy to apply when a container exits.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Add a host device to the container (HOST[:CONTAINER][:PERMISSIONS]).
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list ('c 1:3 rwm').
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// PID namespace to use ("host" shares the host's).
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use ("host", "private" or "shareable").
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use ("host" shares the host's).
    #[arg(long)]
    pub uts: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security Options.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Log driver options.
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Logging driver for the container.
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Connect a container to a network (bridge, host, none, container:<name|id>, or a
    /// user network's name).
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33).
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Bind mount a volume: [name|/host/path:]/container/path[:ro|rw|nocopy|shared|…].
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,…).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (/path[:options]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s) (name[:ro|rw]).
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Publish a container's port(s) to the host: [ip:][hostPort:]containerPort[/proto],
    /// ports as numbers or ranges.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long = "expose")]
    pub expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// The image.
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Resource flags shared by `run`/`create` and `update`.
#[derive(Debug, clap::Args)]
pub struct ResourceArgs {
    /// Memory limit.
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
}

impl ResourceArgs {
    /// Sets the given limits in a HostConfig (or update body) object.
    fn apply(&self, o: &mut Value) -> anyhow::Result<()> {
        if let Some(m) = &self.memory {
            o["Memory"] = json!(parse_bytes(m)?);
        }
        if let Some(m) = &self.memory_swap {
            o["MemorySwap"] = json!(parse_bytes(m)?);
        }
        if let Some(m) = &self.memory_reservation {
            o["MemoryReservation"] = json!(parse_bytes(m)?);
        }
        if let Some(c) = self.cpus {
            o["NanoCpus"] = json!((c * 1e9) as i64);
        }
        if let Some(c) = self.cpu_shares {
            o["CpuShares"] = json!(c);
        }
        if let Some(p) = self.pids_limit {
            o["PidsLimit"] = json!(p);
        }
        Ok(())
    }
}

/// `10m`, `1g`, `512k` → bytes.
pub(crate) fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let l = s.trim().to_lowercase();
    if l == "-1" {
        return Ok(-1);
    }
    let digits = l
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(l.len());
    let n: f64 = l[..digits]
        .parse()
        .with_context(|| format!("invalid size: '{s}'"))?;
    let mult: f64 = match l[digits..].trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => anyhow::bail!("invalid size: '{s}'"),
    };
    Ok((n * mult) as i64)
}

/// `a-b` or `a` → the ports.
fn port_range(s: &str, what: &str) -> anyhow::Result<Vec<u16>> {
    let bad = || anyhow::anyhow!("invalid {what}: {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a..=b).collect())
}

/// `-p` and `--expose` values → (PortBindings, ExposedPorts), as the docker CLI sends them.
pub fn parse_publish(
    publish: &[String],
    expose: &[String],
) -> anyhow::Result<(
    serde_json::Map<String, Value>,
    serde_json::Map<String, Value>,
)> {
    let mut bindings = serde_json::Map::new();
    let mut exposed = serde_json::Map::new();
    for e in expose {
        let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        for p in port_range(ports, "range format for --expose")? {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }
    for spec in publish {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p),
            None => (spec.as_str(), "tcp"),
        };
        if !matches!(proto, "tcp" | "udp") {
            anyhow::bail!("invalid proto: {proto}");
        }
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [ip, h, c] => (*ip, *h, *c),
            _ => anyhow::bail!("invalid port format: {spec}"),
        };
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            anyhow::bail!("invalid IP address: {ip}");
        }
        let cports = port_range(container, "containerPort")?;
        let hports: Vec<Option<u16>> = if host.is_empty() {
            vec![None; cports.len()]
        } else {
            let h = port_range(host, "hostPort")?;
            if h.len() != cports.len() {
                anyhow::bail!(
                    "invalid ranges specified for container and host Ports: {container} and {host}"
                );
            }
            h.into_iter().map(Some).collect()
        };
        for (c, h) in cports.into_iter().zip(hports) {
            let key = format!("{c}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(
                    json!({"HostIp": ip, "HostPort": h.map(|p| p.to_string()).unwrap_or_default()}),
                );
            }
        }
    }
    Ok((bindings, exposed))
}

/// `--security-opt`, with a seccomp profile's file read here and its JSON sent, as the
/// docker CLI does (the daemon may not see the client's files).
fn security_opts(opts: &[String]) -> anyhow::Result<Vec<String>> {
    opts.iter()
        .map(|o| {
            let Some(v) = o
                .strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"))
            else {
                return Ok(o.clone());
            };
            if v == "unconfined" || v.trim_start().starts_with('{') {
                return Ok(o.clone());
            }
            let text = std::fs::read_to_string(v)
                .map_err(|e| anyhow::anyhow!("opening seccomp profile ({v}) failed: {e}"))?;
            Ok(format!("seccomp={text}"))
        })
        .collect()
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`, as the docker CLI splits it: a second field
/// made only of `rwm` letters is the permissions.
fn parse_device(spec: &str) -> anyhow::Result<Value> {
    let mode = |s: &str| {
        !s.is_empty()
            && s.len() <= 3
            && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
            && s.chars().enumerate().all(|(i, c)| !s[..i].contains(c))
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, perms) = match parts[..] {
        [src] => (src, src, "rwm"),
        [src, second] if mode(second) => (src, src, second),
        [src, dst] => (src, dst, "rwm"),
        [src, dst, perms] => (src, dst, perms),
        _ => anyhow::bail!("invalid device specification: {spec}"),
    };
    if !mode(perms) {
        anyhow::bail!("invalid device specification: {spec}");
    }
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

fn parse_restart(s: &str) -> anyhow::Result<Value> {
    let (name, max) = s.split_once(':').unwrap_or((s, ""));
    let max: i64 = if max.is_empty() {
        0
    } else {
        max.parse().with_context(|| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    match name {
        "no" | "always" | "unless-stopped" | "on-failure" | "" => {}
        _ => anyhow::bail!("invalid restart policy format: unknown policy '{name}'"),
    }
    Ok(json!({"Name": name, "MaximumRetryCount": max}))
}

fn env_file(p: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("open {}", p.display()))?;
    let mut out = Vec::new();
    for l in text.lines() {
        let l = l.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.contains('=') {
            out.push(l.to_string());
        } else if let Ok(v) = std::env::var(l) {
            out.push(format!("{l}={v}"));
        }
    }
    Ok(out)
}

/// The create request's body.
fn create_body(a: &CreateArgs, attach_out: bool) -> anyhow::Result<Value> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(env_file(f)?);
    }
    for e in &a.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut log_config = BTreeMap::new();
    for o in &a.log_opt {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("invalid key/value pair format in logging opts: {o}"))?;
        log_config.insert(k.to_string(), v.to_string());
    }
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        let (name, vals) = u
            .split_once('=')
            .with_context(|| format!("invalid ulimit argument: {u}"))?;
        let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
        ulimits.push(
            json!({"Name": name, "Soft": soft.parse::<i64>()?, "Hard": hard.parse::<i64>()?}),
        );
    }
    let attach_stdin = a.interactive && attach_out;
    let mut body = json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_out,
        "AttachStderr": attach_out,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": attach_stdin,
        "Env": env,
        "Cmd": if a.command.is_empty() { Value::Null } else { json!(a.command) },
        "Image": a.image,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Labels": labels,
        "HostConfig": {
            "AutoRemove": a.rm,
            "RestartPolicy": parse_restart(&a.restart)?,
            "Privileged": a.privileged,
            "PidMode": a.pid.clone().unwrap_or_default(),
            "IpcMode": a.ipc.clone().unwrap_or_default(),
            "UTSMode": a.uts.clone().unwrap_or_default(),
            "ReadonlyRootfs": a.read_only,
            "CapAdd": a.cap_add,
            "CapDrop": a.cap_drop,
            "Devices": a.device.iter().map(|d| parse_device(d)).collect::<anyhow::Result<Vec<_>>>()?,
            "DeviceCgroupRules": a.device_cgroup_rule,
            "SecurityOpt": security_opts(&a.security_opt)?,
            "Init": if a.init { json!(true) } else { Value::Null },
            "NetworkMode": a.network.clone().unwrap_or_else(|| "default".into()),
            "ExtraHosts": a.add_host,
            "Dns": a.dns,
            "DnsSearch": a.dns_search,
            "DnsOptions": a.dns_option,
            "LogConfig": {"Type": a.log_driver.clone().unwrap_or_default(), "Config": log_config},
            "Ulimits": ulimits,
        },
    });
    if let Some(ep) = &a.entrypoint {
        body["Entrypoint"] = if ep.is_empty() {
            json!([""])
        } else {
            json!([ep])
        };
    }
    if let Some(s) = &a.stop_signal {
        body["StopSignal"] = json!(s);
    }
    // The endpoint of the network the container starts on: aliases, address, MAC address.
    if !a.network_alias.is_empty() || a.ip.is_some() || a.ip6.is_some() || a.mac_address.is_some() {
        let net = match a.network.as_deref() {
            None | Some("default") | Some("") => "bridge",
            Some(n) => n,
        };
        let mut ep = json!({"Aliases": a.network_alias});
        if a.ip.is_some() || a.ip6.is_some() {
            ep["IPAMConfig"] = json!({
                "IPv4Address": a.ip.clone().unwrap_or_default(),
                "IPv6Address": a.ip6.clone().unwrap_or_default(),
            });
        }
        if let Some(m) = &a.mac_address {
            ep["MacAddress"] = json!(m);
        }
        body["NetworkingConfig"] = json!({"EndpointsConfig": {net: ep}});
    }
    if let Some(t) = a.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    let (bindings, exposed) = parse_publish(&a.publish, &a.expose)?;
    if !exposed.is_empty() {
        body["ExposedPorts"] = Value::Object(exposed);
    }
    // `-v /path` alone is an anonymous volume (Config.Volumes); with a source, a bind.
    let (anon, binds): (Vec<&String>, Vec<&String>) =
        a.volume.iter().partition(|v| !v.contains(':'));
    if !anon.is_empty() {
        let m: serde_json::Map<String, Value> =
            anon.iter().map(|v| (v.to_string(), json!({}))).collect();
        body["Volumes"] = Value::Object(m);
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| crate::commands::volume::parse_mount(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut tmpfs = serde_json::Map::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(p.to_string(), json!(o));
    }
    let hc = &mut body["HostConfig"];
    hc["Binds"] = json!(binds);
    hc["Mounts"] = json!(mounts);
    hc["Tmpfs"] = Value::Object(tmpfs);
    hc["VolumesFrom"] = json!(a.volumes_from);
    hc["PortBindings"] = Value::Object(bindings);
    hc["PublishAllPorts"] = json!(a.publish_all);
    a.resources.apply(hc)?;
    if let Some(s) = &a.shm_size {
        hc["ShmSize"] = json!(parse_bytes(s)?);
    }
    Ok(body)
}

async fn create_container(api: &Api, a: &CreateArgs, attach_out: bool) -> anyhow::Result<String> {
    let body = create_body(a, attach_out)?;
    let path = match &a.name {
        Some(n) => format!("/containers/create?name={}", q(n)),
        None => "/containers/create".to_string(),
    };
    match api.json(Method::POST, &path, Some(&body)).await {
        Ok(v) => {
            for w in v["Warnings"].as_array().into_iter().flatten() {
                eprintln!("WARNING: {}", w.as_str().unwrap_or_default());
            }
            Ok(v["Id"].as_str().unwrap_or_default().to_string())
        }
        Err(e) => {
            if let Some(d) = e.downcast_ref::<DaemonError>() {
                if d.status == hyper::StatusCode::NOT_FOUND
                    && d.message.starts_with("No such image")
                {
                    eprintln!("Unable to find image '{}' locally", a.image);
                }
            }
            Err(e)
        }
    }
}

/// An error from run/create: printed as docker prints it, with docker's exit code.
fn run_error(e: anyhow::Error) -> i32 {
    let msg = format!("{e:#}");
    eprintln!("berth: {msg}.");
    eprintln!("See 'berth run --help'.");
    // 126 and 127 are for the container's program only (the runtime's words); any other
    // error, a missing file of the client's included, is 125.
    let started = msg.contains("OCI runtime") || msg.contains("executable file not found");
    if !started {
        125
    } else if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("No such file or directory")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("Permission denied") {
        126
    } else {
        125
    }
}

/// `berth create`.
pub async fn create(api: &Api, a: CreateArgs) -> anyhow::Result<i32> {
    match create_container(api, &a, !a.interactive).await {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => Ok(run_error(e)),
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// Starts a wait request and returns once the daemon has taken it (its headers arrived), so
/// that an exit right after `start` is not missed.
async fn start_wait(
    api: &Api,
    id: &str,
    condition: &str,
) -> anyhow::Result<tokio::task::JoinHandle<i64>> {
    let res = api
        .stream(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let body = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        v["StatusCode"].as_i64().unwrap_or(-1)
    }))
}

/// `berth run`.
pub async fn run(api: &Api, a: RunArgs) -> anyhow::Result<i32> {
    let c = &a.create;
    let id = match create_container(api, c, !a.detach).await {
        Ok(id) => id,
        Err(e) => return Ok(run_error(e)),
    };
    if a.detach {
        if let Err(e) = api
            .call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
        {
            return Ok(run_error(e));
        }
        println!("{id}");
        return Ok(0);
    }
    let stdin = c.interactive;
    let conn = api
        .hijack(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if stdin { "&stdin=1" } else { "" }
        ))
        .await;
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return Ok(run_error(e)),
    };
    let cond = if c.rm { "removed" } else { "next-exit" };
    let waiter = match start_wait(api, &id, cond).await {
        Ok(w) => w,
        Err(e) => return Ok(run_error(e)),
    };
    let raw = if c.tty {
        crate::tty::Raw::enable()
    } else {
        None
    };
    if let Err(e) = api
        .call(Method::POST, &format!("/containers/{id}/start"), None)
        .await
    {
        drop(raw);
        let code = run_error(e);
        if c.rm {
            let _ = waiter.await;
        }
        return Ok(code);
    }
    if c.tty {
        crate::tty::watch_size(api.clone(), id.clone());
    }
    let detached = stream_io(conn, c.tty, stdin, a.detach_keys.as_deref()).await;
    drop(raw);
    if detached {
        return Ok(0);
    }
    Ok(waiter.await.unwrap_or(-1) as i32)
}

/// Pumps an attach stream: output demultiplexed to stdout/stderr (raw for a terminal),
/// stdin to the container. Returns true when the user detached (Ctrl-P Ctrl-Q).
pub async fn stream_io<S>(conn: S, tty: bool, stdin: bool, detach_keys: Option<&str>) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(conn);
    let keys = crate::tty::detach_sequence(detach_keys.unwrap_or("ctrl-p,ctrl-q"));
    let (det_tx, mut det_rx) = tokio::sync::oneshot::channel::<()>();
    let input = if stdin {
        Some(tokio::spawn(async move {
            let mut inp = tokio::io::stdin();
            let mut buf = [0u8; 4096];
            let mut matched = 0usize;
            loop {
                let n = match inp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if tty && !keys.is_empty() {
                    for &b in &buf[..n] {
                        if b == keys[matched] {
                            matched += 1;
                            if matched == keys.len() {
                                let _ = det_tx.send(());
                                return;
                            }
                        } else {
                            matched = usize::from(b == keys[0]);
                        }
                    }
                }
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            // End of input: close the container's stdin.
            let _ = w.shutdown().await;
            std::future::pending::<()>().await;
        }))
    } else {
        None
    };
    let output = async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        if tty {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                }
            }
        } else {
            let mut hdr = [0u8; 8];
            loop {
                if r.read_exact(&mut hdr).await.is_err() {
                    break;
                }
                let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
                let mut data = vec![0u8; len];
                if r.read_exact(&mut data).await.is_err() {
                    break;
                }
                if hdr[0] == 2 {
                    let _ = err.write_all(&data);
                    let _ = err.flush();
                } else {
                    let _ = out.write_all(&data);
                    let _ = out.flush();
                }
            }
        }
    };
    let detached = tokio::select! {
        _ = output => false,
        r = &mut det_rx => r.is_ok(),
    };
    if let Some(i) = input {
        i.abort();
    }
    detached
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `berth start`.
pub async fn start(api: &Api, a: StartArgs) -> anyhow::Result<i32> {
    if a.attach || a.interactive {
        let id = &a.containers[0];
        let info = api.get(&format!("/containers/{}/json", q(id))).await?;
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let full = info["Id"].as_str().unwrap_or(id).to_string();
        let conn = api
            .hijack(&format!(
                "/containers/{full}/attach?stream=1&stdout=1&stderr=1{}",
                if a.interactive { "&stdin=1" } else { "" }
            ))
            .await?;
        let waiter = start_wait(api, &full, "next-exit").await?;
        let raw = if tty { crate::tty::Raw::enable() } else { None };
        api.call(Method::POST, &format!("/containers/{full}/start"), None)
            .await?;
        let detached = stream_io(conn, tty, a.interactive, None).await;
        drop(raw);
        if detached {
            return Ok(0);
        }
        return Ok(waiter.await.unwrap_or(-1) as i32);
    }
    post_each(api, &a.containers, "start", "").await
}

/// Runs `f` for each container, printing what it returns and docker's errors; exit 1 if any
/// failed.
async fn each<F, Fut>(names: &[String], f: F) -> anyhow::Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(out) => {
                if !out.is_empty() {
                    println!("{out}");
                }
            }
            Err(e) => {
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn stop_query(a: &StopArgs) -> String {
    let mut qs = Vec::new();
    if let Some(t) = a.time {
        qs.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        qs.push(format!("signal={}", q(s)));
    }
    if qs.is_empty() {
        String::new()
    } else {
        format!("?{}", qs.join("&"))
    }
}

/// `berth stop`.
pub async fn stop(api: &Api, a: StopArgs) -> anyhow::Result<i32> {
    post_each(api, &a.containers, "stop", &stop_query(&a)).await
}

/// `berth restart`.
pub async fn restart(api: &Api, a: StopArgs) -> anyhow::Result<i32> {
    post_each(api, &a.containers, "restart", &stop_query(&a)).await
}

/// POSTs `/containers/{name}/{op}{qs}` for each container, printing each name as docker does.
async fn post_each(api: &Api, names: &[String], op: &str, qs: &str) -> anyhow::Result<i32> {
    each(names, |c| async move {
        api.call(
            Method::POST,
            &format!("/containers/{}/{op}{qs}", q(&c)),
            None,
        )
        .await
        .map(|_| c)
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `berth kill`.
pub async fn kill(api: &Api, a: KillArgs) -> anyhow::Result<i32> {
    post_each(
        api,
        &a.containers,
        "kill",
        &format!("?signal={}", q(&a.signal)),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `berth pause` / `berth unpause`.
pub async fn pause(api: &Api, a: NamesArgs, on: bool) -> anyhow::Result<i32> {
    post_each(api, &a.containers, if on { "pause" } else { "unpause" }, "").await
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `berth rm`.
pub async fn rm(api: &Api, a: RmArgs) -> anyhow::Result<i32> {
    let qs = format!("?force={}&v={}", a.force, a.volumes);
    each(&a.containers, |c| {
        let qs = qs.clone();
        async move {
            api.call(Method::DELETE, &format!("/containers/{}{qs}", q(&c)), None)
                .await
                .map(|_| c)
        }
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `berth wait`.
pub async fn wait(api: &Api, a: WaitArgs) -> anyhow::Result<i32> {
    each(&a.containers, |c| async move {
        let v = api
            .json(Method::POST, &format!("/containers/{}/wait", q(&c)), None)
            .await?;
        Ok(v["StatusCode"].as_i64().unwrap_or(-1).to_string())
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

/// `berth rename`.
pub async fn rename(api: &Api, a: RenameArgs) -> anyhow::Result<i32> {
    api.call(
        Method::POST,
        &format!(
            "/containers/{}/rename?name={}",
            q(&a.container),
            q(&a.new_name)
        ),
        None,
    )
    .await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    pub size: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template, or "table", or "json".
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last")]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
}

/// `key=value` filters → Docker's JSON filters.
pub fn filters_json(f: &[String]) -> anyhow::Result<String> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for x in f {
        let (k, v) = x
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {x}"))?;
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(serde_json::to_string(&m)?)
}

fn ago(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    format!("{} ago", human_duration(now - secs))
}

/// Go's `units.HumanDuration`.
pub fn human_duration(s: i64) -> String {
    let s = s.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        _ => {
            let m = s / 60;
            if m == 1 {
                return "About a minute".into();
            }
            if m < 60 {
                return format!("{m} minutes");
            }
            let h = (s as f64 / 3600.0).round() as i64;
            match h {
                1 => "About an hour".into(),
                2..=47 => format!("{h} hours"),
                _ if h < 24 * 14 => format!("{} days", h / 24),
                _ if h < 24 * 60 => format!("{} weeks", h / 24 / 7),
                _ if h < 24 * 730 => format!("{} months", h / 24 / 30),
                _ => format!("{} years", h / 24 / 365),
            }
        }
    }
}

fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// `berth ps`.
pub async fn ps(api: &Api, a: PsArgs) -> anyhow::Result<i32> {
    let mut qs = vec![format!("all={}", a.all)];
    if a.size {
        qs.push("size=1".into());
    }
    if let Some(n) = a.last {
        qs.push(format!("limit={n}"));
    }
    if a.latest {
        qs.push("limit=1".into());
    }
    if !a.filter.is_empty() {
        qs.push(format!("filters={}", q(&filters_json(&a.filter)?)));
    }
    let list = api
        .get(&format!("/containers/json?{}", qs.join("&")))
        .await?;
    let items = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        for c in &items {
            let id = c["Id"].as_str().unwrap_or_default();
            println!(
                "{}",
                if a.no_trunc {
                    id
                } else {
                    &id[..12.min(id.len())]
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default();
            let cmd = c["Command"].as_str().unwrap_or_default();
            let names: Vec<&str> = c["Names"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).map(|n| n.trim_start_matches('/')).collect();
            let labels: Vec<String> = c["Labels"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
            let created = c["Created"].as_i64().unwrap_or(0);
            let size = if a.size {
                format!(
                    "{} (virtual {})",
                    crate::commands::image::size_str(c["SizeRw"].as_f64().unwrap_or(0.0)),
                    crate::commands::image::size_str(c["SizeRootFs"].as_f64().unwrap_or(0.0))
                )
            } else {
                String::new()
            };
            json!({
                "ID": if a.no_trunc { id.to_string() } else { id[..12.min(id.len())].to_string() },
                "Image": c["Image"],
                "Command": if a.no_trunc { format!("\"{cmd}\"") } else { format!("\"{}\"", ellipsis(cmd, 20)) },
                "CreatedAt": created.to_string(),
                "RunningFor": ago(created),
                "Status": c["Status"],
                "State": c["State"],
                "Ports": c["Ports"].as_array().into_iter().flatten().map(|p| format!(
                    "{}:{}->{}/{}",
                    p["IP"].as_str().unwrap_or("0.0.0.0"),
                    p["PublicPort"],
                    p["PrivatePort"],
                    p["Type"].as_str().unwrap_or("tcp")
                )).collect::<Vec<_>>().join(", "),
                "Names": names.join(","),
                "Labels": labels.join(","),
                "Size": size,
                "Mounts": "",
                "Networks": c["HostConfig"]["NetworkMode"],
            })
        })
        .collect();
    let headers = json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
        "Labels": "LABELS", "Size": "SIZE", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    });
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let fmt = a.format.as_deref().filter(|f| *f != "table");
    format::print_rows(fmt, default, &rows, &headers)?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// Docker's `--since`/`--until`: RFC 3339, Unix seconds, or a duration ago (`10m`).
pub fn parse_time(s: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(s.to_string());
    }
    let units = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
    for (u, mult) in units {
        if let Some(n) = s.strip_suffix(u) {
            if let Ok(v) = n.parse::<f64>() {
                let t = now.as_secs_f64() - v * mult;
                return Ok(format!("{t:.9}"));
            }
        }
    }
    if let Some(n) = parse_rfc3339(s) {
        return Ok(format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000));
    }
    anyhow::bail!("invalid value for time: {s}")
}

fn parse_rfc3339(s: &str) -> Option<i128> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// `berth logs`.
pub async fn logs(api: &Api, a: LogsArgs) -> anyhow::Result<i32> {
    let info = api
        .get(&format!("/containers/{}/json", q(&a.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut qs = format!(
        "stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        a.follow,
        a.timestamps,
        q(&a.tail)
    );
    if let Some(s) = &a.since {
        qs.push_str(&format!("&since={}", parse_time(s)?));
    }
    if let Some(u) = &a.until {
        qs.push_str(&format!("&until={}", parse_time(u)?));
    }
    let res = api
        .stream(
            Method::GET,
            &format!("/containers/{}/logs?{qs}", q(&a.container)),
        )
        .await?;
    let mut body = res.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if tty {
            out.write_all(&data)?;
            out.flush()?;
            continue;
        }
        buf.extend_from_slice(&data);
        while buf.len() >= 8 {
            let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
            if buf.len() < 8 + len {
                break;
            }
            let payload = &buf[8..8 + len];
            if buf[0] == 2 {
                err.write_all(payload)?;
            } else {
                out.write_all(payload)?;
            }
            buf.drain(..8 + len);
        }
        out.flush()?;
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

/// `berth attach`.
pub async fn attach(api: &Api, a: AttachArgs) -> anyhow::Result<i32> {
    let info = api
        .get(&format!("/containers/{}/json", q(&a.container)))
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let id = info["Id"].as_str().unwrap_or_default().to_string();
    let conn = api
        .hijack(&format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if stdin { "&stdin=1" } else { "" }
        ))
        .await?;
    let waiter = start_wait(api, &id, "").await?;
    let raw = if tty { crate::tty::Raw::enable() } else { None };
    if tty {
        crate::tty::watch_size(api.clone(), id.clone());
    }
    let detached = stream_io(conn, tty, stdin, a.detach_keys.as_deref()).await;
    drop(raw);
    if detached {
        return Ok(0);
    }
    Ok(waiter.await.unwrap_or(-1) as i32)
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `berth exec`: exit code of the command; 126 when it cannot be run, 127 when not found.
pub async fn exec(api: &Api, a: ExecArgs) -> anyhow::Result<i32> {
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Env": a.env,
        "User": a.user.clone().unwrap_or_default(),
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Cmd": a.command,
    });
    let v = api
        .json(
            Method::POST,
            &format!("/containers/{}/exec", q(&a.container)),
            Some(&body),
        )
        .await?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    let fail = |e: anyhow::Error| {
        let msg = format!("{e:#}");
        eprintln!("{msg}");
        if msg.contains("executable file not found") || msg.contains("No such file or directory") {
            127
        } else {
            126
        }
    };
    if a.detach {
        return Ok(
            match api
                .call(Method::POST, &format!("/exec/{id}/start"), Some(&start))
                .await
            {
                Ok(_) => 0,
                Err(e) => fail(e),
            },
        );
    }
    let conn = match api
        .hijack_with(&format!("/exec/{id}/start"), Some(&start))
        .await
    {
        Ok(c) => c,
        Err(e) => return Ok(fail(e)),
    };
    let raw = if a.tty {
        crate::tty::Raw::enable()
    } else {
        None
    };
    if a.tty {
        if let Some((h, w)) = crate::tty::size() {
            let _ = api
                .call(
                    Method::POST,
                    &format!("/exec/{id}/resize?h={h}&w={w}"),
                    None,
                )
                .await;
        }
    }
    stream_io(conn, a.tty, a.interactive, a.detach_keys.as_deref()).await;
    drop(raw);
    let info = api.get(&format!("/exec/{id}/json")).await?;
    Ok(info["ExitCode"].as_i64().unwrap_or(126) as i32)
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    pub container: String,
    /// ps options (accepted; the columns are `ps -ef`'s).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `berth top`.
pub async fn top(api: &Api, a: TopArgs) -> anyhow::Result<i32> {
    let v = api
        .get(&format!("/containers/{}/top", q(&a.container)))
        .await?;
    let mut lines = Vec::new();
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    lines.push(titles.join("\t"));
    for p in v["Processes"].as_array().into_iter().flatten() {
        let row: Vec<String> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        lines.push(row.join("\t"));
    }
    print!("{}", format::tabwrite(&lines));
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Containers (default: all running).
    pub containers: Vec<String>,
}

fn binary_size(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (n, 0);
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, no trailing zeros.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let mut t = format!("{v:.decimals$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    t + units[i]
}

/// A `docker stats` row from one stats document.
fn stats_row(s: &Value, no_trunc: bool) -> Value {
    let id = s["id"].as_str().unwrap_or_default();
    let cpu_delta = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys_delta = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let ncpu = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let usage = s["memory_stats"]["usage"].as_f64().unwrap_or(0.0);
    let limit = s["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", binary_size(usage), binary_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": "0B / 0B",
        "BlockIO": "0B / 0B",
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

/// `berth stats`.
pub async fn stats(api: &Api, a: StatsArgs) -> anyhow::Result<i32> {
    let names: Vec<String> = if a.containers.is_empty() {
        api.get("/containers/json")
            .await?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    let headers = json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"});
    let default = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    let tty = crate::tty::size().is_some();
    loop {
        let mut rows = Vec::new();
        let mut code = 0;
        for n in &names {
            match api
                .get(&format!("/containers/{}/stats?stream=false", q(n)))
                .await
            {
                Ok(s) => rows.push(stats_row(&s, a.no_trunc)),
                Err(e) => {
                    eprintln!("{e:#}");
                    code = 1;
                }
            }
        }
        if !a.no_stream && tty {
            print!("\x1b[2J\x1b[H");
        }
        format::print_rows(a.format.as_deref(), default, &rows, &headers)?;
        if a.no_stream || code != 0 {
            return Ok(code);
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `berth update`.
pub async fn update(api: &Api, a: UpdateArgs) -> anyhow::Result<i32> {
    let mut body = json!({});
    a.resources.apply(&mut body)?;
    if let Some(r) = &a.restart {
        body["RestartPolicy"] = parse_restart(r)?;
    }
    let body = &body;
    each(&a.containers, |c| async move {
        api.json(
            Method::POST,
            &format!("/containers/{}/update", q(&c)),
            Some(body),
        )
        .await
        .map(|_| c)
    })
    .await
}

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Always follow symbol links in SRC_PATH (accepted; links are copied as links).
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// CONTAINER:SRC_PATH or a local path (`-` for a tar on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH or a local path (`-` for a tar on stdout).
    pub dest: String,
}

/// `container:path` → (container, path); a local path → None.
fn split_container_path(s: &str) -> Option<(&str, &str)> {
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/') && !s.starts_with('/') && !s.starts_with('.'))
        .then_some((c, p))
}

/// `berth cp`: docker's rules for the destination (an existing directory receives the
/// source under its own name; otherwise the source takes the destination's name).
pub async fn cp(api: &Api, a: CpArgs) -> anyhow::Result<i32> {
    match (split_container_path(&a.src), split_container_path(&a.dest)) {
        (Some((c, src)), None) => cp_from(api, c, src, &a.dest).await,
        (None, Some((c, dest))) => cp_to(api, &a.src, c, dest).await,
        _ => anyhow::bail!("must specify at least one container source (and only one)"),
    }
}

async fn cp_from(api: &Api, c: &str, src: &str, dest: &str) -> anyhow::Result<i32> {
    use http_body_util::BodyExt;
    let res = api
        .stream(
            Method::GET,
            &format!("/containers/{}/archive?path={}", q(c), q(src)),
        )
        .await?;
    let body = res.into_body().collect().await?.to_bytes();
    if dest == "-" {
        std::io::stdout().write_all(&body)?;
        return Ok(0);
    }
    let dest = std::path::Path::new(dest);
    let contents_only = src.ends_with("/.");
    if dest.is_dir() && !contents_only {
        tar::Archive::new(&body[..]).unpack(dest)?;
        return Ok(0);
    }
    // Into a scratch directory beside the destination, then renamed to it.
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = parent.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let r = (|| -> anyhow::Result<()> {
        tar::Archive::new(&body[..]).unpack(&tmp)?;
        let top = std::fs::read_dir(&tmp)?
            .next()
            .transpose()?
            .map(|e| e.path());
        let Some(top) = top else {
            anyhow::bail!("the container sent an empty archive")
        };
        if contents_only && dest.is_dir() {
            for e in std::fs::read_dir(&top)? {
                let e = e?;
                std::fs::rename(e.path(), dest.join(e.file_name()))?;
            }
        } else {
            std::fs::rename(&top, dest)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    r?;
    Ok(0)
}

async fn cp_to(api: &Api, src: &str, c: &str, dest: &str) -> anyhow::Result<i32> {
    let data = if src == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        v
    } else {
        let srcp = std::path::Path::new(src.trim_end_matches("/.").trim_end_matches('/'));
        let md = std::fs::symlink_metadata(srcp)
            .with_context(|| format!("could not find the file {src}"))?;
        // Where it lands: into an existing directory under its own name, else as `dest`.
        let head = api
            .client
            .send(
                Method::HEAD,
                &format!(
                    "/v{}/containers/{}/archive?path={}",
                    api.version,
                    q(c),
                    q(dest)
                ),
                None,
                false,
            )
            .await?;
        let dest_is_dir = head.status().is_success()
            && head
                .headers()
                .get("X-Docker-Container-Path-Stat")
                .and_then(|v| v.to_str().ok())
                .is_some_and(stat_is_dir);
        let (dir, name) = if dest_is_dir {
            (
                dest.to_string(),
                srcp.file_name().map(|n| n.to_owned()).unwrap_or_default(),
            )
        } else {
            let d = std::path::Path::new(dest);
            let parent = d
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            (
                parent,
                d.file_name().map(|n| n.to_owned()).unwrap_or_default(),
            )
        };
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        if src.ends_with("/.") && md.is_dir() {
            b.append_dir_all(
                if dest_is_dir {
                    std::path::Path::new(".")
                } else {
                    std::path::Path::new(&name)
                },
                srcp,
            )?;
        } else if md.is_dir() {
            b.append_dir_all(&name, srcp)?;
        } else {
            b.append_path_with_name(srcp, &name)?;
        }
        let data = b.into_inner()?;
        return put_archive(api, c, &dir, data).await;
    };
    put_archive(api, c, dest, data).await
}

async fn put_archive(api: &Api, c: &str, dir: &str, data: Vec<u8>) -> anyhow::Result<i32> {
    api.send_raw(
        Method::PUT,
        &format!("/containers/{}/archive?path={}", q(c), q(dir)),
        data,
        "application/x-tar",
    )
    .await?;
    Ok(0)
}

/// Whether a base64 path stat says "directory" (Go's ModeDir bit).
fn stat_is_dir(b64: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
        .and_then(|v| v["mode"].as_u64())
        .is_some_and(|m| m & (1 << 31) != 0)
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    pub container: String,
}

/// `berth diff`: `A`, `C` and `D` lines as docker prints them.
pub async fn diff(api: &Api, a: DiffArgs) -> anyhow::Result<i32> {
    let v = api
        .get(&format!("/containers/{}/changes", q(&a.container)))
        .await?;
    for c in v.as_array().into_iter().flatten() {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            _ => "D",
        };
        println!("{k} {}", c["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// Author.
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit (accepted; berth reads the upper layer as it is).
    #[arg(short = 'p', long, default_value_t = true)]
    pub pause: bool,
    pub container: String,
    pub repository: Option<String>,
}

/// `berth commit`.
pub async fn commit(api: &Api, a: CommitArgs) -> anyhow::Result<i32> {
    let mut qs = vec![format!("container={}", q(&a.container))];
    if let Some(r) = &a.repository {
        let (repo, tag) = crate::commands::image::repo_tag(r);
        qs.push(format!("repo={}&tag={}", q(&repo), q(&tag)));
    }
    if let Some(m) = &a.message {
        qs.push(format!("comment={}", q(m)));
    }
    if let Some(au) = &a.author {
        qs.push(format!("author={}", q(au)));
    }
    for c in &a.change {
        qs.push(format!("changes={}", q(c)));
    }
    let v = api
        .json(
            Method::POST,
            &format!("/commit?{}", qs.join("&")),
            Some(&json!({})),
        )
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    pub container: String,
}

/// `berth export`.
pub async fn export(api: &Api, a: ExportArgs) -> anyhow::Result<i32> {
    let res = api
        .stream(
            Method::GET,
            &format!("/containers/{}/export", q(&a.container)),
        )
        .await?;
    crate::commands::image::body_to(res, a.output.as_deref()).await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for specified type (container, image).
    #[arg(long = "type")]
    pub typ: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `berth inspect` (containers, then images).
pub async fn inspect(api: &Api, a: InspectArgs) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let mut found = None;
        if a.typ.as_deref() != Some("image") {
            let sz = if a.size { "?size=1" } else { "" };
            if let Ok(v) = api.get(&format!("/containers/{}/json{sz}", q(n))).await {
                found = Some(v);
            }
        }
        if found.is_none() && a.typ.as_deref() != Some("container") {
            if let Ok(v) = api.get(&format!("/images/{n}/json")).await {
                found = Some(v);
            }
        }
        match found {
            Some(v) => docs.push(v),
            None => {
                eprintln!("Error: No such object: {n}");
                code = 1;
            }
        }
    }
    print_inspected(a.format.as_deref(), docs)?;
    Ok(code)
}

/// What the inspect commands print: each document through `--format` (`json`: one line
/// each), or all of them as one indented JSON array.
pub fn print_inspected(format: Option<&str>, docs: Vec<Value>) -> anyhow::Result<()> {
    match format {
        Some("json") => {
            for d in &docs {
                println!("{}", serde_json::to_string(d)?);
            }
        }
        Some(f) => {
            for d in &docs {
                println!("{}", format::render(f, d)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(crate::commands::image::size_str(0.0), "0B");
        assert_eq!(crate::commands::image::size_str(1234.0), "1.23kB");
        assert_eq!(crate::commands::image::size_str(4_300_000.0), "4.3MB");
        assert_eq!(binary_size(716.0 * 1024.0), "716KiB");
        assert_eq!(binary_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(binary_size(1536.0), "1.5KiB");
        assert_eq!(parse_time("1700000000").unwrap(), "1700000000");
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            "1700000000.000000000"
        );
        assert!(parse_time("soon").is_err());
        assert_eq!(
            ellipsis("sh -c i=0; while true; do", 20),
            "sh -c i=0; while tr…"
        );
    }

    #[test]
    fn cp_paths() {
        assert_eq!(
            split_container_path("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_container_path("./a:b"), None);
        assert_eq!(split_container_path("/tmp/x"), None);
        // {"mode":2147484141} in base64.
        assert!(stat_is_dir("eyJtb2RlIjoyMTQ3NDg0MTQxfQ=="));
        assert!(!stat_is_dir("eyJtb2RlIjo0MjB9"));
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            parse_restart("on-failure:3").unwrap()["MaximumRetryCount"],
            3
        );
        assert!(parse_restart("sometimes").is_err());
    }
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// `berth port`: the container's published ports, from its inspect document.
pub async fn port(api: &Api, a: PortArgs) -> anyhow::Result<i32> {
    let v = api
        .get(&format!("/containers/{}/json", crate::api::q(&a.container)))
        .await?;
    let filter = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    let mut keys: Vec<(&String, &Value)> = v["NetworkSettings"]["Ports"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    keys.sort_by_key(|(k, _)| {
        let (n, p) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), p.to_string())
    });
    for (k, list) in keys {
        if filter.as_ref().is_some_and(|f| f != k) {
            continue;
        }
        for b in list.as_array().into_iter().flatten() {
            found = true;
            let addr = format!(
                "{}:{}",
                b["HostIp"].as_str().unwrap_or("0.0.0.0"),
                b["HostPort"].as_str().unwrap_or("")
            );
            if filter.is_some() {
                println!("{addr}");
            } else {
                println!("{k} -> {addr}");
            }
        }
    }
    if let (Some(f), false) = (&filter, found) {
        anyhow::bail!("Error: No public port '{f}' published for {}", a.container);
    }
    Ok(0)
}
