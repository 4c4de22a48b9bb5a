//! `berth-runtime`: berth's OCI runtime with runc's command-line interface, so that podman,
//! containerd or dockerd can use it as their runtime. Global flags, verbs, exit codes and the
//! JSON of `state` follow runc.

mod commands;
mod logging;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Default state root, beside runc's /run/runc.
const DEFAULT_ROOT: &str = "/run/berth-runtime";

#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    disable_version_flag = true,
    about = "berth's OCI runtime (runc-compatible command line)"
)]
pub struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd cgroups (not supported: use cgroupfs paths).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, global = true)]
    criu: Option<String>,
    /// The cgroup hierarchies new containers are placed in: `host` (all that are mounted) or
    /// `unified` (only cgroup2, as on a pure v2 host; a test and migration aid on hybrid
    /// hosts). Default: $BERTH_CGROUP_HIERARCHY, else host.
    #[arg(long = "cgroup-hierarchy", global = true)]
    cgroup_hierarchy: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container (it waits for `start`).
    Create(commands::create::Args),
    /// Start a created container.
    Start(commands::start::Args),
    /// Create and start a container, wait for it, delete it.
    Run(commands::run::Args),
    /// Print a container's state as JSON.
    State(commands::state::Args),
    /// Send a signal to a container's init (or all its processes).
    Kill(commands::kill::Args),
    /// Delete a container.
    Delete(commands::delete::Args),
    /// Run a new process in a running container.
    Exec(commands::exec::Args),
    /// List the processes of a container.
    Ps(commands::ps::Args),
    /// List containers.
    List(commands::list::Args),
    /// Freeze a container.
    Pause(commands::pause::Args),
    /// Thaw a paused container.
    Resume(commands::pause::Args),
    /// Print container resource usage.
    Events(commands::events::Args),
    /// Update a container's resource limits.
    Update(commands::update::Args),
    /// Print the features this runtime supports, as JSON.
    Features,
    /// Write a default config.json.
    Spec(commands::spec::Args),
}

fn main() {
    let cli = Cli::parse();
    if cli.version {
        println!(
            "berth-runtime version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            berth_runtime::OCI_VERSION
        );
        return;
    }
    let log = logging::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    // Anything that enters a container first re-executes from a sealed memfd (CVE-2019-5736).
    if std::env::var_os("XX_NOCLONE").is_none()
        && matches!(
            command,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    {
        berth_runtime::selfexe::ensure_cloned()?;
    }
    let layout = match cli.cgroup_hierarchy {
        Some(h) => h,
        None => std::env::var("BERTH_CGROUP_HIERARCHY").unwrap_or_default(),
    };
    let layout = berth_runtime::cgroups::Layout::parse(&layout)?;
    let place = commands::create::Placement {
        layout,
        systemd: cli.systemd_cgroup,
    };
    let root = cli.root;
    let rootless = cli.rootless.as_deref().is_some_and(|v| v == "true");
    match command {
        Command::Create(a) => commands::create::run(&root, a, place),
        Command::Start(a) => commands::start::run(&root, a),
        Command::Run(a) => commands::run::run(&root, a, place),
        Command::State(a) => commands::state::run(&root, a),
        Command::Kill(a) => commands::kill::run(&root, a),
        Command::Delete(a) => commands::delete::run(&root, a),
        Command::Exec(a) => commands::exec::run(&root, a),
        Command::Ps(a) => commands::ps::run(&root, a),
        Command::List(a) => commands::list::run(&root, a),
        Command::Pause(a) => commands::pause::pause(&root, a),
        Command::Resume(a) => commands::pause::resume(&root, a),
        Command::Events(a) => commands::events::run(&root, a),
        Command::Update(a) => commands::update::run(&root, a),
        Command::Features => commands::features::run(),
        Command::Spec(a) => commands::spec::run(a, rootless),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn runc_style_invocations_parse() {
        use clap::Parser;
        // What conmon passes for create, and a runc-style exec.
        let cli = super::Cli::try_parse_from([
            "berth-runtime",
            "--root",
            "/run/x",
            "--log",
            "/tmp/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--no-new-keyring",
            "--console-socket",
            "/s",
            "id1",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(super::Command::Create(ref a)) if a.id == "id1"));
        let cli =
            super::Cli::try_parse_from(["berth-runtime", "exec", "-t", "id1", "sh", "-c", "ls -l"])
                .unwrap();
        assert!(
            matches!(cli.command, Some(super::Command::Exec(ref a)) if a.command == ["sh", "-c", "ls -l"])
        );
    }
}
