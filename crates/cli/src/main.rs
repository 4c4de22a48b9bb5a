//! `berth`: the command-line client. It is a client of the Docker Engine API only (it links no
//! other berth crate), so it talks to berthd exactly as the docker CLI does, and can talk to
//! dockerd too.
//!
//! Modules: [`client`] (HTTP over the unix socket, API version negotiation), [`commands`] (one
//! file per command).

mod client;
mod commands;

use clap::{Parser, Subcommand};

/// Default daemon socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A container engine (Docker-compatible)",
    disable_version_flag = true
)]
struct Cli {
    /// Daemon socket to connect to (also BERTH_HOST, then DOCKER_HOST).
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    /// Print the client version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the client and server versions.
    Version(commands::version::Args),
}

fn main() {
    let cli = Cli::parse();
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return;
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
        let r = match cli.command {
            Some(Command::Version(a)) => commands::version::run(&host, a).await,
            None => {
                use clap::CommandFactory;
                let _ = Cli::command().print_help();
                Ok(0)
            }
        };
        match r {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{e:#}");
                1
            }
        }
    });
    std::process::exit(code);
}
