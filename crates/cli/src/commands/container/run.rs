//! `run` and `create`: flags into a create body, the container created, started and attached, and the terminal streams.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context as _;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::{q, Api};

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
    #[command(flatten)]
    pub health: super::health::HealthArgs,
    #[command(flatten)]
    pub more: super::moreflags::MoreArgs,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Add additional groups to join.
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
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
    #[arg(value_parser = crate::goflags::ram_in_bytes)]
    pub shm_size: Option<i64>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the pull output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The image.
    #[arg(add = crate::complete::images())]
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Resource flags shared by `run`/`create` and `update`.
#[derive(Debug, clap::Args)]
pub struct ResourceArgs {
    /// Memory limit.
    #[arg(short = 'm', long, allow_negative_numbers = true, value_parser = crate::goflags::ram_in_bytes)]
    pub memory: Option<i64>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap", allow_negative_numbers = true, value_parser = crate::goflags::mem_swap_bytes)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_negative_numbers = true, value_parser = crate::goflags::ram_in_bytes)]
    pub memory_reservation: Option<i64>,
    /// Number of CPUs.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::goflags::rational_cpus)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares", allow_negative_numbers = true, value_parser = crate::goflags::go_int64)]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_negative_numbers = true, value_parser = crate::goflags::go_int64)]
    pub pids_limit: Option<i64>,
}

impl ResourceArgs {
    /// Sets the given limits in a HostConfig (or update body) object.
    pub(crate) fn apply(&self, o: &mut Value) -> anyhow::Result<()> {
        if let Some(m) = self.memory {
            o["Memory"] = json!(m);
        }
        if let Some(m) = self.memory_swap {
            o["MemorySwap"] = json!(m);
        }
        if let Some(m) = self.memory_reservation {
            o["MemoryReservation"] = json!(m);
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

/// `a-b` or `a` → the ports.
pub(crate) fn port_range(s: &str, what: &str) -> anyhow::Result<Vec<u16>> {
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
pub(crate) fn security_opts(opts: &[String]) -> anyhow::Result<Vec<String>> {
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
pub(crate) fn parse_device(spec: &str) -> anyhow::Result<Value> {
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

pub(crate) fn parse_restart(s: &str) -> anyhow::Result<Value> {
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

pub(crate) fn env_file(p: &std::path::Path) -> anyhow::Result<Vec<String>> {
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
pub(crate) fn create_body(a: &CreateArgs, attach_out: bool) -> anyhow::Result<Value> {
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
    a.more.file_labels(&mut labels)?;
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
            "GroupAdd": a.group_add,
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
    if let Some(hc) = a.health.config()? {
        body["Healthcheck"] = hc;
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
        .map(|m| crate::values::parse_mount(m))
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
    if let Some(s) = a.shm_size {
        hc["ShmSize"] = json!(s);
    }
    a.more.apply(&mut body)?;
    Ok(body)
}

pub(crate) async fn create_container(
    api: &Api,
    a: &CreateArgs,
    attach_out: bool,
) -> anyhow::Result<String> {
    a.more.check_cidfile()?;
    let body = create_body(a, attach_out)?;
    let mut query: Vec<String> = Vec::new();
    if let Some(n) = &a.name {
        query.push(format!("name={}", q(n)));
    }
    if let Some(p) = &a.platform {
        query.push(format!("platform={}", q(p)));
    }
    let path = match query.is_empty() {
        true => "/containers/create".to_string(),
        false => format!("/containers/create?{}", query.join("&")),
    };
    let v = api.json(Method::POST, &path, Some(&body)).await?;
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("WARNING: {}", w.as_str().unwrap_or_default());
    }
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    a.more.write_cidfile(&id)?;
    Ok(id)
}

/// An error from `run`: printed as the docker 28 CLI prints it, with its exit code.
pub(crate) fn run_error(e: anyhow::Error) -> i32 {
    let msg = format!("{e:#}");
    eprintln!("berth: {msg}\n\nRun 'berth run --help' for more information");
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

/// `berth create`. Its errors are plain, exit 1, as the docker 28 CLI's `create` has them
/// (`run` has its own words and 125).
pub async fn create(api: &Api, a: CreateArgs) -> anyhow::Result<i32> {
    let id = super::pulling::create_pulling(api, &a, !a.interactive).await?;
    println!("{id}");
    Ok(0)
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
pub(crate) async fn start_wait(
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
    if let Some(code) = crate::tty::refuse_non_tty_input(c.interactive && !a.detach, c.tty) {
        return Ok(code);
    }
    let id = match super::pulling::create_pulling(api, c, !a.detach).await {
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
