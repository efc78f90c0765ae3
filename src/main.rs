//! The `gitvista` command line: a thin dispatcher over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gitvista::cli::log::{self, LogFormat};
use gitvista::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "gitvista",
    version,
    about = "A live, interactive Git commit graph"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one repository on this machine (local mode); the graph updates as it changes.
    Open {
        /// The repository (any path inside a work tree, a .git directory, or a bare repository).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "GITVISTA_HOST", default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port to listen on (0: any free port).
        #[arg(long, env = "GITVISTA_PORT", default_value_t = 8080)]
        port: u16,
        /// Do not open a browser.
        #[arg(long, env = "GITVISTA_NO_BROWSER")]
        no_browser: bool,
    },
    /// Print every commit `git rev-list --all` walks, children before parents.
    Log {
        /// The repository (any path inside a work tree, a .git directory, or a bare repository).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// What to print per commit.
        #[arg(long, value_enum, default_value = "oneline")]
        format: LogFormat,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log { path, format } => log::run(&path, format),
        Command::Open {
            path,
            host,
            port,
            no_browser,
        } => gitvista::cli::open::run(
            Config {
                host,
                port,
                repo_path: path,
                ws: gitvista::config::WsSettings::default(),
            },
            !no_browser,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitvista: {e:#}");
            ExitCode::FAILURE
        }
    }
}
