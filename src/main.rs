//! The `gitvista` command line: a thin dispatcher over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gitvista::cli::log::{self, LogFormat};
use gitvista::config::{Config, HostedConfig, Mode};

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
    /// Serve hosted mode: users paste Git URLs, the server clones and serves them.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "GITVISTA_HOST", default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port to listen on (0: any free port).
        #[arg(long, env = "GITVISTA_PORT", default_value_t = 8080)]
        port: u16,
        /// Where clones and the SQLite database live.
        #[arg(long, env = "GITVISTA_DATA_DIR", default_value = "gitvista-data")]
        data_dir: PathBuf,
        /// `postgres://...` to use PostgreSQL instead of SQLite.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// Hosts exempt from the address checks, comma-separated `host` or `host:port`.
        #[arg(long, env = "GITVISTA_ALLOWED_HOSTS", default_value = "")]
        allowed_hosts: String,
        /// git jobs at once.
        #[arg(long, env = "GITVISTA_CLONE_CONCURRENCY", default_value_t = 2)]
        clone_concurrency: usize,
    },
    /// Run the database migrations of hosted mode and exit.
    Migrate {
        /// Where the SQLite database lives.
        #[arg(long, env = "GITVISTA_DATA_DIR", default_value = "gitvista-data")]
        data_dir: PathBuf,
        /// `postgres://...` to migrate PostgreSQL instead.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
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
    gitvista::telemetry::init();
    let result = match cli.command {
        Command::Serve {
            host,
            port,
            data_dir,
            database_url,
            allowed_hosts,
            clone_concurrency,
        } => gitvista::cli::serve::run(Config {
            host,
            port,
            mode: Mode::Hosted(Box::new(HostedConfig {
                database_url,
                allowed_hosts,
                clone_concurrency,
                ..HostedConfig::new(data_dir)
            })),
            ws: gitvista::config::WsSettings::default(),
            admin_token: std::env::var("GITVISTA_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        }),
        Command::Migrate {
            data_dir,
            database_url,
        } => gitvista::cli::serve::migrate(&HostedConfig {
            database_url,
            ..HostedConfig::new(data_dir)
        }),
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
                mode: Mode::Local { repo_path: path },
                ws: gitvista::config::WsSettings::default(),
                admin_token: std::env::var("GITVISTA_ADMIN_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
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
