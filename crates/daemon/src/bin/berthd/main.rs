//! `berthd`: the berth daemon. Flags as dockerd names them; `/etc/berth/daemon.json` with
//! dockerd's keys. Serves the Docker Engine API on a unix socket (mode 0660, group `berth` if it
//! exists), writes a pid file, and stops cleanly on SIGTERM or SIGINT.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::Context as _;
use berth_daemon::config::{unix_path, FileConfig};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    about = "berth daemon: the Docker Engine API on a unix socket",
    disable_version_flag = true
)]
struct Args {
    /// Where to serve the API: unix:///path, or tcp://addr:port with --tlsverify. One unix
    /// socket and any number of TCP listeners.
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Serve TCP with TLS and verify client certificates against --tlscacert.
    #[arg(long = "tlsverify", num_args = 0..=1, default_missing_value = "true")]
    tlsverify: Option<bool>,
    /// TLS without client verification (refused for TCP: use --tlsverify).
    #[arg(long = "tls", num_args = 0..=1, default_missing_value = "true")]
    tls: Option<bool>,
    /// Trust client certificates signed by this CA only (default ~/.docker/ca.pem).
    #[arg(long = "tlscacert")]
    tlscacert: Option<PathBuf>,
    /// The server's TLS certificate (default ~/.docker/cert.pem).
    #[arg(long = "tlscert")]
    tlscert: Option<PathBuf>,
    /// The server's TLS key (default ~/.docker/key.pem).
    #[arg(long = "tlskey")]
    tlskey: Option<PathBuf>,
    /// Root of persistent state.
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root of runtime state.
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Pid file.
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// debug, info, warn, error.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// daemon.json.
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// A registry to reach over plain HTTP or unverified HTTPS (host[:port] or CIDR).
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// A mirror of docker.io (other registries: hosts.toml in the certs directory).
    #[arg(long = "registry-mirror")]
    registry_mirror: Vec<String>,
    /// Docker's certs.d layout: per-registry CAs, client certificates, hosts.toml.
    #[arg(long = "certs-dir")]
    certs_dir: Option<PathBuf>,
    /// Layers downloaded at once per pull (default 3).
    #[arg(long = "max-concurrent-downloads")]
    max_concurrent_downloads: Option<usize>,
    /// Layers uploaded at once per push (default 5).
    #[arg(long = "max-concurrent-uploads")]
    max_concurrent_uploads: Option<usize>,
    /// The default bridge (`none`: containers get no network unless told otherwise).
    #[arg(short = 'b', long = "bridge")]
    bridge: Option<String>,
    /// The default bridge's address and subnet (172.30.0.1/16).
    #[arg(long = "bip")]
    bip: Option<String>,
    /// Manage NAT and published ports with nftables.
    #[arg(long = "iptables", num_args = 0..=1, default_missing_value = "true")]
    iptables: Option<bool>,
    /// The cgroup hierarchies containers are placed in: `host` (every mounted one) or
    /// `unified` (only cgroup2, as on a pure v2 host: a test and migration aid on hybrid hosts).
    #[arg(long = "cgroup-hierarchy")]
    cgroup_hierarchy: Option<String>,
    /// Remount the host's cgroup2 with `favordynmods` at start: moving a task into a cgroup
    /// then never waits for an RCU grace period (seen at 12–13 ms of some starts here), at a
    /// small cost to every fork and exit on the host.
    #[arg(long = "cgroup-favordynmods", num_args = 0..=1, default_missing_value = "true")]
    cgroup_favordynmods: Option<bool>,
    /// Where to serve the CRI v1 (Kubernetes) API (default <exec-root>/cri.sock, that is
    /// /run/berth/cri.sock).
    #[cfg(feature = "cri")]
    #[arg(long = "cri-socket")]
    cri_socket: Option<PathBuf>,
    /// Runtime options: `native.cgroupdriver=cgroupfs` (the default) or `systemd`.
    #[arg(long = "exec-opt")]
    exec_opt: Vec<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    version: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.version {
        println!("berthd version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let explicit = a.config_file.is_some();
    let cfg_path = a
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/berth/daemon.json"));
    let file = FileConfig::load(&cfg_path, explicit)?;
    let tls = tls_files(&a.tlscacert, &a.tlscert, &a.tlskey, &file);
    let tlsverify = a.tlsverify.or(file.tlsverify).unwrap_or(false);
    let tls_only = a.tls.or(file.tls).unwrap_or(false);
    let network = berth_daemon::config::network_config(&file, a.bridge, a.bip, a.iptables)?;
    let cgroup_layout = berth_daemon::config::cgroup_layout(&file, a.cgroup_hierarchy.as_deref())?;
    let cgroup_driver = berth_daemon::config::cgroup_driver(&file, &a.exec_opt)?;
    let favordynmods = a
        .cgroup_favordynmods
        .or(file.cgroup_favordynmods)
        .unwrap_or(false);
    let level = a
        .log_level
        .or(file.log_level)
        .unwrap_or_else(|| "info".into());
    let filter: tracing_subscriber::filter::LevelFilter = level
        .parse()
        .with_context(|| format!("--log-level {level}"))?;
    // At debug, a line as each span closes (with its time): an API request's path through
    // the daemon and the engine, one operation per line (docs/daemon.md).
    tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    if favordynmods {
        let changed =
            berth_engine::cgroups::favor_dynamic_modifications().context("cgroup-favordynmods")?;
        tracing::info!(changed, "cgroup2 mounted with favordynmods");
    }
    let hosts = if !a.host.is_empty() {
        a.host
    } else if !file.hosts.is_empty() {
        file.hosts
    } else {
        vec!["unix:///run/berth/berth.sock".into()]
    };
    let (unix_hosts, tcp_hosts): (Vec<String>, Vec<String>) =
        hosts.into_iter().partition(|h| !h.starts_with("tcp://"));
    if unix_hosts.len() > 1 {
        anyhow::bail!("one unix socket is supported (and any number of tcp:// listeners)");
    }
    let mut tcp = Vec::new();
    for h in &tcp_hosts {
        let addr = h.trim_start_matches("tcp://").trim_end_matches('/');
        if !tlsverify {
            anyhow::bail!(
                "refusing to serve the API on {h} without --tlsverify: anyone who can reach the port would be root on this host{}",
                if tls_only { " (--tls alone does not check who connects)" } else { "" }
            );
        }
        if addr.is_empty() || !addr.contains(':') {
            anyhow::bail!("invalid host {h:?}: give tcp://address:port");
        }
        tcp.push(addr.to_string());
    }
    let acceptor = if tcp.is_empty() {
        None
    } else {
        Some(berth_daemon::tls::acceptor(&tls).context("--tlsverify")?)
    };
    let sock = unix_path(
        unix_hosts
            .first()
            .map(String::as_str)
            .unwrap_or("unix:///run/berth/berth.sock"),
    )?;
    let data_root = a
        .data_root
        .or(file.data_root)
        .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
    let exec_root = a
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| PathBuf::from("/run/berth"));
    let pidfile = a
        .pidfile
        .or(file.pidfile)
        .unwrap_or_else(|| exec_root.join("berthd.pid"));
    for d in [&data_root, &exec_root] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    // Relative roots would end up relative to each container's bundle: made absolute once.
    let data_root = std::path::absolute(&data_root).context("the data root")?;
    let exec_root = std::path::absolute(&exec_root).context("the exec root")?;
    #[cfg(feature = "cri")]
    let cri_socket = a
        .cri_socket
        .or(file.cri_socket)
        .unwrap_or_else(|| exec_root.join("cri.sock"));
    if let Some(parent) = sock.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let activated = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    // A socket left by a crashed daemon is replaced; one a live daemon answers on is not.
    if sock.exists() && !activated {
        if answers_ping(&sock) {
            anyhow::bail!("{} is in use by another daemon", sock.display());
        }
        std::fs::remove_file(&sock).with_context(|| format!("remove stale {}", sock.display()))?;
        tracing::info!(socket = %sock.display(), pid = std::process::id(), "removed a stale socket");
    }
    match file.log_driver.as_deref() {
        None | Some("json-file") | Some("local") => {}
        Some(d) => anyhow::bail!("log-driver {d:?} is not supported (json-file is)"),
    }
    // Rotated by default, with the sizes of Docker's `local` driver.
    let log_max_size = match file.log_opts.get("max-size") {
        Some(v) => berth_engine::logconfig::parse_size(v)
            .with_context(|| format!("log-opts max-size {v:?}"))?,
        None => 20 << 20,
    };
    let log_max_file = match file.log_opts.get("max-file") {
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| format!("log-opts max-file {v:?}"))?,
        None => 5,
    };
    let shim_bin = std::env::current_exe()
        .context("find berthd's own path")?
        .with_file_name("berth-shim");
    if !shim_bin.exists() {
        anyhow::bail!(
            "{} is missing: it belongs beside berthd",
            shim_bin.display()
        );
    }
    let defaults = berth_engine::distribution::RegistryOptions::default();
    let mut insecure = file.insecure_registries.clone();
    insecure.extend(a.insecure_registry);
    let mut mirrors = file.registry_mirrors.clone();
    mirrors.extend(a.registry_mirror);
    let registry = berth_engine::distribution::RegistryOptions {
        certs_dir: a
            .certs_dir
            .or(file.certs_dir.clone())
            .unwrap_or(defaults.certs_dir),
        insecure,
        docker_io_mirrors: mirrors,
        max_concurrent_downloads: a
            .max_concurrent_downloads
            .or(file.max_concurrent_downloads)
            .unwrap_or(defaults.max_concurrent_downloads)
            .max(1),
        max_concurrent_uploads: a
            .max_concurrent_uploads
            .or(file.max_concurrent_uploads)
            .unwrap_or(defaults.max_concurrent_uploads)
            .max(1),
        push_chunk_size: file
            .push_chunk_size
            .unwrap_or(defaults.push_chunk_size)
            .max(1),
        ..defaults
    };
    let engine = std::sync::Arc::new(
        berth_engine::Engine::open(
            berth_engine::Settings {
                data_root: data_root.clone(),
                exec_root: exec_root.clone(),
                shim_bin,
                log_max_size,
                log_max_file,
                network,
                cgroup_layout,
                cgroup_driver,
            },
            registry,
        )
        .with_context(|| format!("open the data root {}", data_root.display()))?,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        tokio::spawn(berth_daemon::heap::watch());
        engine.restore().await;
        // What a crash may leave (a create cut short, a root file system still mounted):
        // repaired before the API opens. `berth system check` verifies the rest on demand.
        for f in engine.containers.check(true).await {
            tracing::warn!(subject = %f.subject, problem = %f.problem, repaired = f.repaired, "start-up check");
        }
        let listener = match activation_listener() {
            // systemd socket activation (contrib/systemd/berth.socket): the unit owns the
            // socket's path, mode and group.
            Some(l) => {
                l.set_nonblocking(true)?;
                tokio::net::UnixListener::from_std(l)?
            }
            None => {
                let l = tokio::net::UnixListener::bind(&sock)
                    .with_context(|| format!("listen on {}", sock.display()))?;
                std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660))?;
                if let Some(gid) = group_id("berth") {
                    let _ = nix::unistd::chown(&sock, None, Some(nix::unistd::Gid::from_raw(gid)));
                }
                l
            }
        };
        std::fs::write(&pidfile, std::process::id().to_string())
            .with_context(|| format!("write {}", pidfile.display()))?;
        tracing::info!(socket = %sock.display(), data_root = %data_root.display(), pid = std::process::id(), "API listening");
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("shutting down");
        };
        // Streams (logs -f, events) would hold a graceful shutdown open for ever: give them
        // a few seconds. Containers are not touched: their shims keep them running.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = tx.send(());
        };
        // Every listener stops with the same signal.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        for addr in &tcp {
            let l =
                berth_daemon::tls::TlsListener::bind(addr, acceptor.clone().expect("TLS set up"))
                    .await
                    .with_context(|| format!("listen on tcp://{addr}"))?;
            tracing::info!(address = %addr, "API listening with TLS, client certificates verified");
            let engine = engine.clone();
            let stop = stopped(stop_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = berth_daemon::serve(l, engine, stop).await {
                    tracing::error!(error = %e, "TCP listener");
                }
            });
        }
        #[cfg(feature = "cri")]
        {
            let cri = cri_socket.clone();
            let _ = std::fs::remove_file(&cri);
            let l = tokio::net::UnixListener::bind(&cri)
                .with_context(|| format!("listen on {} (the CRI socket)", cri.display()))?;
            std::fs::set_permissions(&cri, std::fs::Permissions::from_mode(0o660))?;
            if let Some(gid) = group_id("berth") {
                let _ = nix::unistd::chown(&cri, None, Some(nix::unistd::Gid::from_raw(gid)));
            }
            tracing::info!(socket = %cri.display(), "CRI listening");
            let engine = engine.clone();
            let stop = stopped(stop_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = berth_daemon::cri::serve(l, engine, stop).await {
                    tracing::error!(error = %e, "CRI listener");
                }
                let _ = std::fs::remove_file(&cri);
            });
        }
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let containers = engine.containers.clone();
        tokio::select! {
            r = berth_daemon::serve(listener, engine, shutdown) => r?,
            _ = async {
                let _ = rx.await;
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            } => {}
        }
        if !containers.removals_done(std::time::Duration::from_secs(10)).await {
            tracing::warn!("removals still deleting at shutdown: the next start finishes them");
        }
        if !activated {
            let _ = std::fs::remove_file(&sock);
        }
        let _ = std::fs::remove_file(&pidfile);
        Ok(())
    })
}

/// The listening socket systemd passed (LISTEN_FDS=1, LISTEN_PID = this process), if any.
fn activation_listener() -> Option<std::os::unix::net::UnixListener> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || n != 1 {
        return None;
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    // SAFETY: systemd's protocol hands descriptor 3 to this process; nothing else owns it.
    Some(unsafe { <std::os::unix::net::UnixListener as std::os::fd::FromRawFd>::from_raw_fd(3) })
}

/// The TLS files from the flags, daemon.json, or dockerd's defaults in ~/.docker.
fn tls_files(
    ca: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    file: &FileConfig,
) -> berth_daemon::tls::TlsFiles {
    let dir = std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    let pick = |flag: &Option<PathBuf>, cfg: &Option<PathBuf>, name: &str| {
        flag.clone()
            .or_else(|| cfg.clone())
            .unwrap_or_else(|| dir.join(name))
    };
    berth_daemon::tls::TlsFiles {
        ca: pick(ca, &file.tlscacert, "ca.pem"),
        cert: pick(cert, &file.tlscert, "cert.pem"),
        key: pick(key, &file.tlskey, "key.pem"),
    }
}

/// A group's id from /etc/group. (getgrnam would go through NSS, which a statically linked
/// glibc program must not load.)
fn group_id(name: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next()? == name)
                .then(|| f.nth(1)?.parse().ok())
                .flatten()
        })
}

/// Whether a daemon answers `/_ping` on `sock`. A connect alone is not proof: a child that a
/// killed berthd was spawning holds a copy of its listening socket until its exec, and the
/// kernel queues connections to it that nothing will ever answer.
fn answers_ping(sock: &std::path::Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
    let _ = s.set_write_timeout(Some(std::time::Duration::from_secs(3)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berthd\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 9];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
