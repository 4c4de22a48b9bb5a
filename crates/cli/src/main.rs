//! `berth`: the command-line client. It is a client of the Docker Engine API only (it links no
//! other berth crate), so it talks to berthd exactly as the docker CLI does, and can talk to
//! dockerd too.
//!
//! Modules: [`client`] (HTTP over the unix socket, API version negotiation), [`api`] (a
//! negotiated session with Docker's error wording), [`credentials`] (docker's config.json and
//! credential helpers), [`format`] (Go templates and tables),
//! [`tty`] (raw mode, resize, detach keys), [`commands`] (the commands).

mod api;
mod client;
mod commands;
mod complete;
mod credentials;
mod format;
mod goflags;
mod transport;
mod tty;
mod usage;
mod values;

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};
use commands::{container as c, image as i, registry as r, system as s};

/// Default daemon socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A container engine (Docker-compatible)",
    disable_version_flag = true,
    disable_help_flag = true
)]
struct Cli {
    /// Print usage (docker keeps -h for --hostname in run and create).
    #[arg(long, action = clap::ArgAction::Help, global = true)]
    help: Option<bool>,
    /// Daemon socket to connect to (also BERTH_HOST, then DOCKER_HOST).
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    /// Use TLS; implied by --tlsverify.
    #[arg(long, global = true)]
    tls: bool,
    /// Use TLS and verify the remote (also DOCKER_TLS_VERIFY).
    #[arg(long, global = true)]
    tlsverify: bool,
    /// Trust certs signed only by this CA (default DOCKER_CERT_PATH/ca.pem).
    #[arg(long, global = true)]
    tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default DOCKER_CERT_PATH/cert.pem).
    #[arg(long, global = true)]
    tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default DOCKER_CERT_PATH/key.pem).
    #[arg(long, global = true)]
    tlskey: Option<std::path::PathBuf>,
    /// Print the client version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a new container from an image.
    Run(c::RunArgs),
    /// Create a new container.
    Create(c::CreateArgs),
    /// Start one or more stopped containers.
    Start(c::StartArgs),
    /// Stop one or more running containers.
    Stop(c::StopArgs),
    /// Restart one or more containers.
    Restart(c::StopArgs),
    /// Kill one or more running containers.
    Kill(c::KillArgs),
    /// Pause all processes within one or more containers.
    Pause(c::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(c::NamesArgs),
    /// Remove one or more containers.
    Rm(c::RmArgs),
    /// List containers.
    Ps(c::PsArgs),
    /// Fetch the logs of a container.
    Logs(c::LogsArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(c::AttachArgs),
    /// Execute a command in a running container.
    Exec(c::ExecArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(c::CpArgs),
    /// Update configuration of one or more containers.
    Update(c::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(c::DiffArgs),
    /// Create a new image from a container's changes.
    Commit(c::CommitArgs),
    /// Export a container's filesystem as a tar archive.
    Export(c::ExportArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(i::SaveArgs),
    /// Show the history of an image.
    History(i::HistoryArgs),
    /// Display the running processes of a container.
    Top(c::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(c::StatsArgs),
    /// Return low-level information on containers or images.
    Inspect(c::InspectArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(c::WaitArgs),
    /// Rename a container.
    Rename(c::RenameArgs),
    /// List port mappings or a specific mapping for the container.
    Port(c::PortArgs),
    /// List images.
    Images(i::ImagesArgs),
    /// Remove one or more images.
    Rmi(i::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(i::TagArgs),
    /// Load an image from a tar archive or STDIN.
    Load(i::LoadArgs),
    /// Display system-wide information.
    Info(s::InfoArgs),
    /// Get real time events from the server.
    Events(s::EventsArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(i::ImportArgs),
    /// Download an image from a registry.
    Pull(r::PullArgs),
    /// Upload an image to a registry.
    Push(r::PushArgs),
    /// Log in to a registry.
    Login(r::LoginArgs),
    /// Log out from a registry.
    Logout(r::LogoutArgs),
    /// Build an image from a Dockerfile.
    Build(commands::build::BuildArgs),
    /// Manage builds.
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage berth.
    #[command(subcommand)]
    System(SystemCmd),
    /// Show the client and server versions.
    Version(commands::version::Args),
    /// Generate the shell completion script (bash, zsh, fish).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages for berth and each command into DIR (then `man berth-run`).
    Man { dir: std::path::PathBuf },
}

#[derive(Debug, Subcommand)]
enum BuilderCmd {
    /// Build an image from a Dockerfile.
    Build(Box<commands::build::BuildArgs>),
    /// Remove build cache.
    Prune(commands::build::PruneArgs),
}

#[derive(Debug, Subcommand)]
enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container.
    Attach(c::AttachArgs),
    /// Create a new image from a container's changes.
    Commit(c::CommitArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(c::CpArgs),
    /// Create a new container.
    Create(c::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(c::DiffArgs),
    /// Execute a command in a running container.
    Exec(c::ExecArgs),
    /// Export a container's filesystem as a tar archive.
    Export(c::ExportArgs),
    /// Display detailed information on one or more containers.
    Inspect(c::InspectArgs),
    /// Kill one or more running containers.
    Kill(c::KillArgs),
    /// Fetch the logs of a container.
    Logs(c::LogsArgs),
    /// List containers.
    #[command(visible_aliases = ["list", "ps"], name = "ls")]
    Ls(c::PsArgs),
    /// Pause all processes within one or more containers.
    Pause(c::NamesArgs),
    /// List port mappings or a specific mapping for the container.
    Port(c::PortArgs),
    /// Remove all stopped containers.
    Prune(s::PruneArgs),
    /// Rename a container.
    Rename(c::RenameArgs),
    /// Restart one or more containers.
    Restart(c::StopArgs),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(c::RmArgs),
    /// Create and run a new container from an image.
    Run(c::RunArgs),
    /// Start one or more stopped containers.
    Start(c::StartArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(c::StatsArgs),
    /// Stop one or more running containers.
    Stop(c::StopArgs),
    /// Display the running processes of a container.
    Top(c::TopArgs),
    /// Unpause all processes within one or more containers.
    Unpause(c::NamesArgs),
    /// Update configuration of one or more containers.
    Update(c::UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(c::WaitArgs),
}

impl ContainerCmd {
    /// The top-level shorthands of the `container` verbs (`run` is `container run`), so that
    /// one dispatch serves both spellings; other commands come back unchanged.
    fn from_top(cmd: Command) -> Result<ContainerCmd, Box<Command>> {
        Ok(match cmd {
            Command::Container(c) => c,
            Command::Run(a) => ContainerCmd::Run(a),
            Command::Create(a) => ContainerCmd::Create(a),
            Command::Start(a) => ContainerCmd::Start(a),
            Command::Stop(a) => ContainerCmd::Stop(a),
            Command::Restart(a) => ContainerCmd::Restart(a),
            Command::Kill(a) => ContainerCmd::Kill(a),
            Command::Pause(a) => ContainerCmd::Pause(a),
            Command::Unpause(a) => ContainerCmd::Unpause(a),
            Command::Rm(a) => ContainerCmd::Rm(a),
            Command::Ps(a) => ContainerCmd::Ls(a),
            Command::Logs(a) => ContainerCmd::Logs(a),
            Command::Attach(a) => ContainerCmd::Attach(a),
            Command::Exec(a) => ContainerCmd::Exec(a),
            Command::Cp(a) => ContainerCmd::Cp(a),
            Command::Update(a) => ContainerCmd::Update(a),
            Command::Diff(a) => ContainerCmd::Diff(a),
            Command::Commit(a) => ContainerCmd::Commit(a),
            Command::Export(a) => ContainerCmd::Export(a),
            Command::Top(a) => ContainerCmd::Top(a),
            Command::Stats(a) => ContainerCmd::Stats(a),
            Command::Wait(a) => ContainerCmd::Wait(a),
            Command::Rename(a) => ContainerCmd::Rename(a),
            Command::Port(a) => ContainerCmd::Port(a),
            other => return Err(Box::new(other)),
        })
    }

    async fn run(self, api: &api::Api) -> anyhow::Result<i32> {
        match self {
            ContainerCmd::Attach(a) => c::attach(api, a).await,
            ContainerCmd::Commit(a) => c::commit(api, a).await,
            ContainerCmd::Cp(a) => c::cp(api, a).await,
            ContainerCmd::Create(a) => c::create(api, a).await,
            ContainerCmd::Diff(a) => c::diff(api, a).await,
            ContainerCmd::Exec(a) => c::exec(api, a).await,
            ContainerCmd::Export(a) => c::export(api, a).await,
            // Only `container inspect` comes here (the top-level `inspect` looks at any
            // object): it looks only at containers.
            ContainerCmd::Inspect(mut a) => {
                a.typ.get_or_insert_with(|| "container".into());
                c::inspect(api, a).await
            }
            ContainerCmd::Kill(a) => c::kill(api, a).await,
            ContainerCmd::Logs(a) => c::logs(api, a).await,
            ContainerCmd::Ls(a) => c::ps(api, a).await,
            ContainerCmd::Pause(a) => c::pause(api, a, true).await,
            ContainerCmd::Port(a) => c::port(api, a).await,
            ContainerCmd::Prune(a) => s::container_prune(api, a).await,
            ContainerCmd::Rename(a) => c::rename(api, a).await,
            ContainerCmd::Restart(a) => c::restart(api, a).await,
            ContainerCmd::Rm(a) => c::rm(api, a).await,
            ContainerCmd::Run(a) => c::run(api, a).await,
            ContainerCmd::Start(a) => c::start(api, a).await,
            ContainerCmd::Stats(a) => c::stats(api, a).await,
            ContainerCmd::Stop(a) => c::stop(api, a).await,
            ContainerCmd::Top(a) => c::top(api, a).await,
            ContainerCmd::Unpause(a) => c::pause(api, a, false).await,
            ContainerCmd::Update(a) => c::update(api, a).await,
            ContainerCmd::Wait(a) => c::wait(api, a).await,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ImageCmd {
    /// Build an image from a Dockerfile.
    Build(commands::build::BuildArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(i::ImagesArgs),
    /// Remove one or more images.
    Rm(i::RmiArgs),
    /// Remove unused images.
    Prune(s::PruneArgs),
    /// Show the history of an image.
    History(i::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(i::TagArgs),
    /// Display detailed information on one or more images.
    Inspect(c::InspectArgs),
    /// Load an image from a tar archive or STDIN.
    Load(i::LoadArgs),
    /// Save one or more images to a tar archive.
    Save(i::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(i::ImportArgs),
    /// Download an image from a registry.
    Pull(r::PullArgs),
    /// Upload an image to a registry.
    Push(r::PushArgs),
}

#[derive(Debug, Subcommand)]
enum NetworkCmd {
    /// Create a network.
    Create(commands::network::CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(commands::network::LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(commands::network::InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm(commands::network::RmArgs),
    /// Remove all unused networks.
    Prune(commands::network::PruneArgs),
    /// Connect a container to a network.
    Connect(commands::network::ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(commands::network::DisconnectArgs),
}

#[derive(Debug, Subcommand)]
enum VolumeCmd {
    /// Create a volume.
    Create(commands::volume::CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(commands::volume::LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(commands::volume::InspectArgs),
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm(commands::volume::RmArgs),
    /// Remove unused volumes.
    Prune(commands::volume::PruneArgs),
}

#[derive(Debug, Subcommand)]
enum SystemCmd {
    /// Show berth disk usage.
    Df(s::DfArgs),
    /// Remove unused data (stopped containers, dangling or unused images).
    Prune(s::PruneArgs),
    /// Display system-wide information.
    Info(s::InfoArgs),
    /// Get real time events from the server.
    Events(s::EventsArgs),
    /// Verify the store and the containers (berth's own), and repair what is safe.
    Check(s::CheckArgs),
}

/// Writes `berth.1` and `berth-<command>.1` into `dir`.
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join("berth.1"), &buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap names are &'static without its "string" feature; this runs once per page.
        let name: &'static str = Box::leak(format!("berth-{}", sub.get_name()).into_boxed_str());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name).disable_help_flag(true)).render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), &buf)?;
    }
    Ok(())
}

fn main() {
    // Output into a closed pipe (`berth ps | head`) ends the program quietly, as in Go.
    // SAFETY: resetting SIGPIPE's disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // A shell asking for completions (`COMPLETE=bash berth -- berth stop we<TAB>`): answered,
    // names included (complete.rs), and the program ends there.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let args = usage::help_shorthand(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let argv: Vec<OsString> = std::env::args_os().collect();
            std::process::exit(usage::report(&e, &Cli::command(), &argv))
        }
    };
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    if let Err(e) = transport::configure(transport::TlsFlags {
        tls: cli.tls,
        verify: cli.tlsverify,
        ca: cli.tlscacert.clone(),
        cert: cli.tlscert.clone(),
        key: cli.tlskey.clone(),
    }) {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
    let host = cli
        .host
        .or_else(|| std::env::var("BERTH_HOST").ok())
        .or_else(|| std::env::var("DOCKER_HOST").ok())
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        let Some(cmd) = cli.command else {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return 0;
        };
        match cmd {
            Command::Version(a) => return report(commands::version::run(&host, a).await),
            Command::Completion { shell } => return report(completion_script(shell)),
            Command::Man { dir } => return report(write_man_pages(&dir).map(|_| 0)),
            Command::Logout(a) => return report(r::logout(a).await),
            _ => {}
        }
        let api = match api::Api::connect(&host).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{e:#}");
                return if matches!(cmd, Command::Run(_) | Command::Create(_)) {
                    125
                } else {
                    1
                };
            }
        };
        let cmd = match ContainerCmd::from_top(cmd) {
            Ok(c) => return report(c.run(&api).await),
            Err(other) => *other,
        };
        let r = match cmd {
            Command::Build(a) => commands::build::build(&api, a).await,
            Command::Builder(BuilderCmd::Build(a)) => commands::build::build(&api, *a).await,
            Command::Builder(BuilderCmd::Prune(a)) => commands::build::prune(&api, a).await,
            Command::Inspect(a) => c::inspect(&api, a).await,
            Command::Save(a) => i::save(&api, a).await,
            Command::History(a) => i::history(&api, a).await,
            Command::Images(a) => i::images(&api, a).await,
            Command::Rmi(a) => i::rmi(&api, a).await,
            Command::Tag(a) => i::tag(&api, a).await,
            Command::Load(a) => i::load(&api, a).await,
            Command::Info(a) => s::info(&api, a).await,
            Command::Events(a) => s::events(&api, a).await,
            Command::Import(a) => i::import(&api, a).await,
            Command::Pull(a) => r::pull(&api, a).await,
            Command::Push(a) => r::push(&api, a).await,
            Command::Login(a) => r::login(&api, a).await,
            Command::Image(ImageCmd::Pull(a)) => r::pull(&api, a).await,
            Command::Image(ImageCmd::Build(a)) => commands::build::build(&api, a).await,
            Command::Image(ImageCmd::Push(a)) => r::push(&api, a).await,
            Command::Image(ImageCmd::Ls(a)) => i::images(&api, a).await,
            Command::Image(ImageCmd::Rm(a)) => i::rmi(&api, a).await,
            Command::Image(ImageCmd::Prune(a)) => s::image_prune(&api, a).await,
            Command::Image(ImageCmd::History(a)) => i::history(&api, a).await,
            Command::Image(ImageCmd::Tag(a)) => i::tag(&api, a).await,
            Command::Image(ImageCmd::Inspect(mut a)) => {
                a.typ = Some("image".into());
                c::inspect(&api, a).await
            }
            Command::Image(ImageCmd::Load(a)) => i::load(&api, a).await,
            Command::Image(ImageCmd::Save(a)) => i::save(&api, a).await,
            Command::Image(ImageCmd::Import(a)) => i::import(&api, a).await,
            Command::Network(cmd) => {
                use commands::network as n;
                match cmd {
                    NetworkCmd::Create(a) => n::create(&api, a).await,
                    NetworkCmd::Ls(a) => n::ls(&api, a).await,
                    NetworkCmd::Inspect(a) => n::inspect(&api, a).await,
                    NetworkCmd::Rm(a) => n::rm(&api, a).await,
                    NetworkCmd::Prune(a) => n::prune(&api, a).await,
                    NetworkCmd::Connect(a) => n::connect(&api, a).await,
                    NetworkCmd::Disconnect(a) => n::disconnect(&api, a).await,
                }
            }
            Command::Volume(cmd) => {
                use commands::volume as v;
                match cmd {
                    VolumeCmd::Create(a) => v::create(&api, a).await,
                    VolumeCmd::Ls(a) => v::ls(&api, a).await,
                    VolumeCmd::Inspect(a) => v::inspect(&api, a).await,
                    VolumeCmd::Rm(a) => v::rm(&api, a).await,
                    VolumeCmd::Prune(a) => v::prune(&api, a).await,
                }
            }
            Command::System(SystemCmd::Df(a)) => s::df(&api, a).await,
            Command::System(SystemCmd::Prune(a)) => s::system_prune(&api, a).await,
            Command::System(SystemCmd::Info(a)) => s::info(&api, a).await,
            Command::System(SystemCmd::Events(a)) => s::events(&api, a).await,
            Command::System(SystemCmd::Check(a)) => s::check(&api, a).await,
            Command::Version(_)
            | Command::Completion { .. }
            | Command::Run(_)
            | Command::Create(_)
            | Command::Start(_)
            | Command::Stop(_)
            | Command::Restart(_)
            | Command::Kill(_)
            | Command::Pause(_)
            | Command::Unpause(_)
            | Command::Rm(_)
            | Command::Ps(_)
            | Command::Logs(_)
            | Command::Attach(_)
            | Command::Exec(_)
            | Command::Cp(_)
            | Command::Update(_)
            | Command::Diff(_)
            | Command::Commit(_)
            | Command::Export(_)
            | Command::Top(_)
            | Command::Stats(_)
            | Command::Wait(_)
            | Command::Rename(_)
            | Command::Port(_)
            | Command::Container(_)
            | Command::Man { .. }
            | Command::Logout(_) => {
                unreachable!("handled above")
            }
        };
        report(r)
    });
    std::process::exit(code);
}

fn report(r: anyhow::Result<i32>) -> i32 {
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}

/// `berth completion SHELL`: the script that registers berth's completion with the shell. It
/// asks `berth` itself at each TAB (clap_complete's dynamic completion), so that container,
/// image, volume and network names are completed from the daemon, not only flags.
fn completion_script(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(&exe)
        .env("COMPLETE", shell.to_string())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::io::Write::write_all(&mut std::io::stdout(), &out.stdout)?;
    Ok(0)
}
