//! The `gitvista` command line: a thin dispatcher over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gitvista::cli::log::{self, LogFormat};

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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitvista: {e:#}");
            ExitCode::FAILURE
        }
    }
}
