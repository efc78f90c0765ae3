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

/// Settings both servers share.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The URL users reach the server at (https://gitvista.example): state-changing requests must
    /// come from its origin, and https marks the admin cookie Secure.
    #[arg(long, env = "GITVISTA_PUBLIC_URL")]
    public_url: Option<String>,
    /// The header a proxy in front names clients with: `Fly-Client-IP` (believed from any peer:
    /// only when the proxy is the sole way in) or `X-Forwarded-For@10.0.0.0/8,...` (believed only
    /// from those peers). Without it the socket's peer is the client.
    #[arg(long, env = "GITVISTA_TRUSTED_PROXY")]
    trusted_proxy: Option<gitvista::client::TrustedProxy>,
    /// WebSockets one client (an IPv4 address or an IPv6 /64) may hold open at once.
    #[arg(long, env = "GITVISTA_WS_PER_CLIENT", default_value_t = 100)]
    ws_per_client: usize,
    /// Milliseconds of expensive work (diffs, blame, highlighting, object-reading searches) one
    /// client may use per second (bursts of four seconds' worth).
    #[arg(long, env = "GITVISTA_WORK_MS_PER_SECOND", default_value_t = 250)]
    work_ms_per_second: u32,
}

impl ServerArgs {
    fn config(self, host: std::net::IpAddr, port: u16, mode: Mode) -> Config {
        let mut config = Config::new(host, port, mode);
        config.ws.per_client = self.ws_per_client.max(1);
        config.public_url = self.public_url.filter(|u| !u.is_empty());
        config.trusted_proxy = self.trusted_proxy;
        config.work_ms_per_second = self.work_ms_per_second.max(1);
        config.admin_token = std::env::var("GITVISTA_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        config
    }
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
        /// Without a commit-graph file, say what writing one would save when the first view
        /// takes at least this many milliseconds and decoding commits is most of it.
        #[arg(long, env = "GITVISTA_COMMIT_GRAPH_HINT_MS", default_value_t = 200)]
        commit_graph_hint_ms: u64,
        /// Show the newest commits first, while the whole history loads, when the repository's
        /// packs hold at least this many objects (smaller ones load whole about as fast).
        #[arg(long, env = "GITVISTA_FIRST_SCREEN_OBJECTS", default_value_t = 50_000)]
        first_screen_objects: usize,
        /// How many of the newest commits that first screen reads (more when HEAD is below
        /// newer branches: it shows HEAD with a screen of history under it).
        #[arg(long, env = "GITVISTA_FIRST_SCREEN_ROWS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        first_screen_rows: u64,
        #[command(flatten)]
        server: ServerArgs,
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
        /// The git program clones, fetches and maintenance run.
        #[arg(long, env = "GITVISTA_GIT", default_value = "git")]
        git: PathBuf,
        /// git jobs at once.
        #[arg(long, env = "GITVISTA_CLONE_CONCURRENCY", default_value_t = 2)]
        clone_concurrency: usize,
        /// Repositories one client address may add per minute.
        #[arg(long, env = "GITVISTA_POSTS_PER_MINUTE", default_value_t = 20)]
        posts_per_minute: u32,
        /// Repositories held in memory at once.
        #[arg(long, env = "GITVISTA_MAX_SESSIONS", default_value_t = 64)]
        max_sessions: usize,
        /// Bytes of graphs, layouts and caches over all repositories in memory (e.g. 384MiB).
        #[arg(long, env = "GITVISTA_MEMORY_BUDGET", default_value = "384MiB", value_parser = parse_bytes)]
        memory_budget: u64,
        /// Bytes all clones together may occupy (e.g. 8GiB).
        #[arg(long, env = "GITVISTA_DISK_QUOTA", default_value = "8GiB", value_parser = parse_bytes)]
        disk_quota: u64,
        /// Free space the data directory must keep; clones are refused below it.
        #[arg(long, env = "GITVISTA_MIN_FREE", default_value = "512MiB", value_parser = parse_bytes)]
        min_free: u64,
        /// Repositories at most.
        #[arg(long, env = "GITVISTA_MAX_REPOS", default_value_t = 2000)]
        max_repos: usize,
        /// A git job receiving fewer bytes a second than this, over the low-speed time, is stopped.
        #[arg(long, env = "GITVISTA_LOW_SPEED_LIMIT", default_value_t = 1024)]
        low_speed_limit: u64,
        /// Seconds over which the low-speed limit is measured.
        #[arg(long, env = "GITVISTA_LOW_SPEED_TIME", default_value_t = 120)]
        low_speed_time: u64,
        /// Clones waiting at most; past it new repositories are refused (503).
        #[arg(long, env = "GITVISTA_QUEUE_MAX", default_value_t = 200)]
        queue_max: usize,
        /// Clones one client may have waiting or running; past it 429.
        #[arg(long, env = "GITVISTA_CLONES_PER_CLIENT", default_value_t = 3)]
        clones_per_client: usize,
        /// Repositories a user on the free plan may track (with sign-in on).
        #[arg(long, env = "GITVISTA_FREE_REPOS", default_value_t = 5)]
        free_repos: i64,
        /// Repositories a user on the paid plan may track.
        #[arg(long, env = "GITVISTA_PAID_REPOS", default_value_t = 50)]
        paid_repos: i64,
        /// Private repositories a user on the free plan may track.
        #[arg(long, env = "GITVISTA_FREE_PRIVATE_REPOS", default_value_t = 1)]
        free_private_repos: i64,
        /// With billing on, how often a repository no paying user tracks is fetched at most
        /// (seconds); its push hooks wait for that poll too.
        #[arg(long, env = "GITVISTA_FREE_FETCH_INTERVAL", default_value_t = 300)]
        free_fetch_interval: u64,
        /// With sign-in on, show nothing (not even public repositories) to visitors not signed in.
        #[arg(long, env = "GITVISTA_REQUIRE_LOGIN", value_parser = clap::builder::BoolishValueParser::new())]
        require_login: bool,
        /// Seconds after which a viewer's access to a private repository is asked of its forge again.
        #[arg(long, env = "GITVISTA_ACCESS_RECHECK", default_value_t = 600)]
        access_recheck: u64,
        /// Seconds between fetches of a repository someone is watching (without a live webhook).
        #[arg(long, env = "GITVISTA_FETCH_INTERVAL", default_value_t = 30)]
        fetch_interval: u64,
        /// Seconds between fetches of a repository whose webhook delivered within a day.
        #[arg(long, env = "GITVISTA_HOOKED_FETCH_INTERVAL", default_value_t = 900)]
        hooked_fetch_interval: u64,
        /// Seconds a stopping node lets its running git jobs end before handing them back to
        /// the queue (keep it under the platform's kill timeout).
        #[arg(long, env = "GITVISTA_JOB_DRAIN", default_value_t = 20)]
        job_drain: u64,
        /// After a commits-only first clone, fetch every file's contents in the background
        /// (`false`: only what requests need, fetched on demand; less disk).
        #[arg(long, env = "GITVISTA_HYDRATE", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
        hydrate: bool,
        /// Show a new repository's history from its remote while it is cloned: its commits
        /// stream into memory (git protocol v2, `filter tree:0`) and the graph grows as they
        /// come (`false`: the graph waits for the clone).
        #[arg(long, env = "GITVISTA_STREAM_FIRST", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
        stream_first: bool,
        /// What this node does: `all` (one node), or `web` / `worker` (a cluster sharing
        /// PostgreSQL and Redis/Valkey).
        #[arg(long, env = "GITVISTA_ROLE", value_enum, default_value_t = gitvista::cluster::settings::Role::All)]
        role: gitvista::cluster::settings::Role,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Load-test a server with many WebSocket viewers, graph windows and live changes.
    ///
    /// Without --target it generates repositories, serves them with `git daemon` on loopback,
    /// starts `gitvista serve` and commits into them. It raises its open-files limit to the hard
    /// limit; each viewer needs one file in the harness and one in the server.
    Loadtest {
        /// An existing GitVista server (http://127.0.0.1:8080); without it the harness starts one.
        #[arg(long, env = "GITVISTA_TARGET")]
        target: Option<String>,
        /// Allow a target that is not a loopback address.
        #[arg(long, env = "GITVISTA_ALLOW_REMOTE")]
        allow_remote: bool,
        /// The target's admin token (its /metrics needs it when it has one).
        #[arg(long, env = "GITVISTA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Concurrent WebSocket viewers, spread evenly over the repositories: 1,000, or 2,000 with
        /// --soak.
        #[arg(long, env = "GITVISTA_VIEWERS")]
        viewers: Option<usize>,
        /// Repositories watched (generated without --target; the first ready ones with it): 1,
        /// or 20 with --soak.
        #[arg(long, env = "GITVISTA_REPOS")]
        repos: Option<usize>,
        /// Hold the load for MINUTES (2,000 viewers over 20 repositories unless told otherwise),
        /// sampling the server's memory, open files, threads and p99s each minute and pasting
        /// one new repository a minute; replaces --duration.
        #[arg(long, env = "GITVISTA_SOAK", value_name = "MINUTES")]
        soak: Option<usize>,
        /// With --soak: paste nothing, so what memory does is the load's alone (not the
        /// repositories a paste a minute adds).
        #[arg(long, env = "GITVISTA_SOAK_NO_PASTES", requires = "soak")]
        soak_no_pastes: bool,
        /// A soak minute's length in seconds (shorter ones for trying a soak out).
        #[arg(
            long,
            env = "GITVISTA_SOAK_MINUTE_SECS",
            default_value_t = 60,
            hide = true
        )]
        soak_minute_secs: u64,
        /// Seconds of changes and window requests.
        #[arg(long, env = "GITVISTA_DURATION", default_value_t = 30)]
        duration: u64,
        /// Share of viewers that read slowly (tiny receive buffer, a pause after each message).
        #[arg(long, env = "GITVISTA_SLOW_FRACTION", default_value_t = 0.0)]
        slow_fraction: f64,
        /// A slow viewer's pause after each message, in milliseconds.
        #[arg(long, env = "GITVISTA_SLOW_PAUSE_MS", default_value_t = 1000)]
        slow_pause_ms: u64,
        /// One change every this many milliseconds, round-robin over the repositories.
        #[arg(long, env = "GITVISTA_CHANGE_INTERVAL_MS", default_value_t = 500)]
        change_interval_ms: u64,
        /// Graph windows requested per second.
        #[arg(long, env = "GITVISTA_HTTP_RATE", default_value_t = 50)]
        http_rate: u32,
        /// Commits in each generated repository.
        #[arg(long, env = "GITVISTA_COMMITS", default_value_t = 500)]
        commits: usize,
        /// Viewers connecting at once.
        #[arg(long, env = "GITVISTA_CONNECT_CONCURRENCY", default_value_t = 64)]
        connect_concurrency: usize,
        /// Write the report as JSON to this file.
        #[arg(long, env = "GITVISTA_JSON")]
        json: Option<PathBuf>,
        /// Then run the same load against a bare tokio-tungstenite broadcaster, for comparison.
        #[arg(long, env = "GITVISTA_PEER")]
        peer: bool,
        /// How each change reaches the server: an admin fetch, a signed GitHub push delivery,
        /// or the server's own poll (every 30 s with viewers).
        #[arg(long, env = "GITVISTA_CHANGE_VIA", value_enum, default_value = "admin")]
        change_via: gitvista::loadtest::ChangeVia,
        /// Badly signed deliveries sent to /webhooks/github per second during the run.
        #[arg(long, env = "GITVISTA_BAD_WEBHOOKS_PER_SEC", default_value_t = 0)]
        bad_webhooks_per_sec: u32,
        /// Start WEBSxWORKERS web and worker nodes (e.g. 2x2) instead of one server, on a
        /// database of the run's own at --database-url's server and on --redis-url.
        #[arg(long, env = "GITVISTA_TIERS", value_parser = parse_tiers)]
        tiers: Option<(usize, usize)>,
        /// PostgreSQL for --tiers (a database is made there for the run and dropped after).
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// Redis/Valkey for --tiers.
        #[arg(long, env = "GITVISTA_REDIS_URL")]
        redis_url: Option<String>,
    },
    /// The load test's peer: a bare broadcaster told what to send on stdin (used by --peer).
    #[command(hide = true)]
    LoadtestPeer {
        /// Repositories (one broadcast channel each).
        #[arg(long, default_value_t = 1)]
        repos: usize,
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
    /// Copy hosted mode's SQLite database to FILE while the server runs (a consistent copy:
    /// SQLite's VACUUM INTO) and exit. PostgreSQL: use pg_dump.
    Backup {
        /// The new file to write (refused when it exists).
        #[arg(long = "to", value_name = "FILE")]
        to: PathBuf,
        /// Where the SQLite database lives.
        #[arg(long, env = "GITVISTA_DATA_DIR", default_value = "gitvista-data")]
        data_dir: PathBuf,
    },
    /// Put a backup taken by `gitvista backup` in place of the data directory's database (stop
    /// the server first; the database it replaces is kept beside it) and exit.
    Restore {
        /// The backup.
        #[arg(long = "from", value_name = "FILE")]
        from: PathBuf,
        /// The data directory to restore into (made when missing).
        #[arg(long, env = "GITVISTA_DATA_DIR", default_value = "gitvista-data")]
        data_dir: PathBuf,
    },
    /// Re-encrypt every stored GitHub token under GITVISTA_ENCRYPTION_KEY (the old key stays in
    /// GITVISTA_ENCRYPTION_KEY_PREVIOUS until this has run) and exit.
    RotateKey {
        /// Where the SQLite database lives.
        #[arg(long, env = "GITVISTA_DATA_DIR", default_value = "gitvista-data")]
        data_dir: PathBuf,
        /// `postgres://...` for PostgreSQL.
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

/// A size: bytes, or with a unit (`KiB`, `MiB`, `GiB`, `TiB`; `K`, `M`, `G`, `T` mean the same).
/// `WEBSxWORKERS`, each from 1 to 8.
fn parse_tiers(s: &str) -> Result<(usize, usize), String> {
    let (w, k) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?} is not WEBSxWORKERS (e.g. 2x2)"))?;
    let n = |v: &str| {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=8).contains(n))
            .ok_or_else(|| format!("{s:?}: each count is from 1 to 8"))
    };
    Ok((n(w)?, n(k)?))
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        other => {
            return Err(format!(
                "{other:?} is not a unit of size (KiB, MiB, GiB, TiB)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
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
            git,
            clone_concurrency,
            posts_per_minute,
            max_sessions,
            memory_budget,
            disk_quota,
            min_free,
            max_repos,
            low_speed_limit,
            low_speed_time,
            queue_max,
            clones_per_client,
            free_repos,
            paid_repos,
            free_private_repos,
            free_fetch_interval,
            require_login,
            access_recheck,
            fetch_interval,
            hooked_fetch_interval,
            job_drain,
            hydrate,
            stream_first,
            role,
            server,
        } => gitvista::cli::serve::run(server.config(
            host,
            port,
            Mode::Hosted(Box::new(HostedConfig {
                database_url,
                allowed_hosts,
                git,
                clone_concurrency,
                posts_per_minute,
                max_sessions,
                memory_budget,
                disk_quota,
                min_free,
                max_repos: max_repos.max(1),
                low_speed_limit,
                low_speed_time: std::time::Duration::from_secs(low_speed_time.max(1)),
                queue_max: queue_max.max(1),
                clones_per_client: clones_per_client.max(1),
                plans: gitvista::auth::accounts::Plans {
                    free: free_repos.max(0),
                    paid: paid_repos.max(0),
                    free_private: free_private_repos.max(0),
                },
                free_fetch_interval: std::time::Duration::from_secs(free_fetch_interval.max(1)),
                require_login,
                hydrate,
                stream_first,
                access_recheck: std::time::Duration::from_secs(access_recheck.max(1)),
                fetch_with_viewers: std::time::Duration::from_secs(fetch_interval.max(1)),
                hooked_every: std::time::Duration::from_secs(hooked_fetch_interval.max(1)),
                job_drain: std::time::Duration::from_secs(job_drain),
                cluster: gitvista::cluster::settings::ClusterSettings {
                    role,
                    ..Default::default()
                },
                ..HostedConfig::new(data_dir)
            })),
        )),
        Command::Migrate {
            data_dir,
            database_url,
        } => gitvista::cli::serve::migrate(&HostedConfig {
            database_url,
            ..HostedConfig::new(data_dir)
        }),
        Command::Backup { to, data_dir } => {
            gitvista::cli::serve::backup(&HostedConfig::new(data_dir), &to)
        }
        Command::Restore { from, data_dir } => {
            gitvista::cli::serve::restore(&HostedConfig::new(data_dir), &from)
        }
        Command::RotateKey {
            data_dir,
            database_url,
        } => gitvista::cli::serve::rotate_key(&HostedConfig {
            database_url,
            ..HostedConfig::new(data_dir)
        }),
        Command::Log { path, format } => log::run(&path, format),
        Command::Loadtest {
            target,
            allow_remote,
            admin_token,
            viewers,
            repos,
            soak,
            soak_no_pastes,
            soak_minute_secs,
            duration,
            slow_fraction,
            slow_pause_ms,
            change_interval_ms,
            http_rate,
            commits,
            connect_concurrency,
            json,
            peer,
            change_via,
            bad_webhooks_per_sec,
            tiers,
            database_url,
            redis_url,
        } => (|| {
            let tiers = match tiers {
                None => None,
                Some((webs, workers)) => Some(gitvista::loadtest::fleet::Tiers {
                    webs,
                    workers,
                    database_url: database_url.ok_or_else(|| {
                        anyhow::anyhow!(
                            "--tiers needs --database-url postgres://... (or DATABASE_URL)"
                        )
                    })?,
                    redis_url: redis_url.ok_or_else(|| {
                        anyhow::anyhow!(
                            "--tiers needs --redis-url redis://... (or GITVISTA_REDIS_URL)"
                        )
                    })?,
                }),
            };
            let minute = std::time::Duration::from_secs(soak_minute_secs.max(1));
            gitvista::cli::loadtest::run(&gitvista::loadtest::LoadConfig {
                tiers,
                target,
                allow_remote,
                admin_token,
                viewers: viewers.unwrap_or(if soak.is_some() { 2000 } else { 1000 }),
                repos: repos.unwrap_or(if soak.is_some() { 20 } else { 1 }),
                soak: soak.map(|m| (m, minute)),
                soak_pastes: !soak_no_pastes,
                duration: match soak {
                    Some(m) => minute * m.min(100_000) as u32,
                    None => std::time::Duration::from_secs(duration),
                },
                slow_fraction,
                slow_pause: std::time::Duration::from_millis(slow_pause_ms),
                change_interval: std::time::Duration::from_millis(change_interval_ms),
                http_rate,
                commits,
                connect_concurrency,
                json,
                peer,
                change_via,
                bad_webhooks_per_sec,
            })
        })(),
        Command::LoadtestPeer { repos } => gitvista::loadtest::peer::serve(repos),
        Command::Open {
            path,
            host,
            port,
            no_browser,
            commit_graph_hint_ms,
            first_screen_objects,
            first_screen_rows,
            server,
        } => gitvista::cli::open::run(
            server.config(
                host,
                port,
                Mode::Local {
                    repo_path: path,
                    commit_graph_hint_after: std::time::Duration::from_millis(commit_graph_hint_ms),
                    first_screen: gitvista_actors::snapshot::FirstScreen {
                        from_objects: first_screen_objects,
                        rows: first_screen_rows as usize,
                    },
                },
            ),
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

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse_bytes("384MiB"), Ok(384 << 20));
        assert_eq!(parse_bytes("8GiB"), Ok(8 << 30));
        assert_eq!(parse_bytes("1 TiB"), Ok(1 << 40));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("2k"), Ok(2048));
        for bad in ["", "MiB", "12 parsecs", "-1MiB", "99999999999TiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
