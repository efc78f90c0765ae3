//! Hosted mode's settings, validated: where clones live, the database, the clone queue's limits,
//! fetch paces, budgets, accounts, webhooks, billing and the cluster.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of hosted mode.
#[derive(Debug, Clone)]
pub struct HostedConfig {
    /// Where clones (`repos/`), work in progress (`tmp/`) and `gitvista.db` live.
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL; `None` for SQLite in the data directory.
    pub database_url: Option<String>,
    /// Hosts exempt from the address checks (`GITVISTA_ALLOWED_HOSTS`).
    pub allowed_hosts: String,
    /// The git program every clone, fetch and maintenance job runs (`GITVISTA_GIT`; `git` from
    /// `PATH` by default).
    pub git: PathBuf,
    /// git jobs at once.
    pub clone_concurrency: usize,
    /// Wall-clock limit of a clone.
    pub clone_timeout: Duration,
    /// Largest repository on disk, in bytes.
    pub max_repo_bytes: u64,
    /// Fetch interval while someone watches.
    pub fetch_with_viewers: Duration,
    /// A fetch running this long is announced to its viewers.
    pub fetch_notice: Duration,
    /// Fetch interval when accessed in the last hour.
    pub fetch_recent: Duration,
    /// Fetch interval when cold.
    pub fetch_cold: Duration,
    /// No fetches after this long without access.
    pub fetch_idle_stop: Duration,
    /// How often the EvictionActor sweeps.
    pub evict_interval: Duration,
    /// Sessions without viewers unused this long are stopped.
    pub session_idle: Duration,
    /// Clones unused this long are deleted (the row stays as `evicted`).
    pub clone_unused: Duration,
    /// New repositories one client address may add per minute (`POST /api/repos`).
    pub posts_per_minute: u32,
    /// A first clone asks for commits only (`--filter=tree:0`) when the remote filters; the
    /// graph is served from them at once.
    pub commits_first: bool,
    /// A partial clone is made whole in the background after it is served (`GITVISTA_HYDRATE`);
    /// without it, requests fetch what they need on demand.
    pub hydrate: bool,
    /// A new repository's history is shown from its remote while it is cloned: its commits
    /// stream into memory over git protocol v2 and the graph grows as they come
    /// (`GITVISTA_STREAM_FIRST`). Public repositories on one node only.
    pub stream_first: bool,
    /// Bytes of commits a stream may hold in memory; past it the stream stops, what came is
    /// shown, and the rest waits for the clone.
    pub stream_max_bytes: u64,
    /// Where the remote does not filter: clone this many recent commits first and deepen in
    /// the background (`None`: all at once).
    pub initial_depth: Option<u32>,
    /// Bytes all clones together may occupy (`GITVISTA_DISK_QUOTA`).
    pub disk_quota: u64,
    /// Free bytes the data directory's filesystem must keep (`GITVISTA_MIN_FREE`).
    pub min_free: u64,
    /// Repositories (rows) at most (`GITVISTA_MAX_REPOS`).
    pub max_repos: usize,
    /// A git job receiving fewer bytes a second than this for `low_speed_time` is stopped
    /// (`GITVISTA_LOW_SPEED_LIMIT`).
    pub low_speed_limit: u64,
    /// The window of the low-speed limit (`GITVISTA_LOW_SPEED_TIME`).
    pub low_speed_time: Duration,
    /// Clones waiting at most (`GITVISTA_QUEUE_MAX`); past it new repositories get 503.
    pub queue_max: usize,
    /// Clones one client may have waiting or running (`GITVISTA_CLONES_PER_CLIENT`); past it 429.
    pub clones_per_client: usize,
    /// First wait before a failed deepening is tried again (doubles, up to an hour).
    pub deepen_retry: Duration,
    /// Sessions (repositories in memory) at once (`GITVISTA_MAX_SESSIONS`).
    pub max_sessions: usize,
    /// Bytes of graphs, layouts and caches over all sessions (`GITVISTA_MEMORY_BUDGET`).
    pub memory_budget: u64,
    /// How remote host names are resolved for the address checks (the system's resolver; tests
    /// inject their own).
    pub resolver: crate::remote::Resolver,
    /// Repositories each plan may track (`GITVISTA_FREE_REPOS`, `GITVISTA_PAID_REPOS`).
    pub plans: gitvista_accounts::accounts::Plans,
    /// `GITVISTA_REQUIRE_LOGIN=1`: with sign-in on, nothing is shown to visitors not signed in.
    pub require_login: bool,
    /// A viewer's access to a private repository is asked of its forge again after this
    /// (`GITVISTA_ACCESS_RECHECK`, seconds).
    pub access_recheck: Duration,
    /// The webhook receivers' secrets (`GITVISTA_GITHUB_WEBHOOK_SECRET`,
    /// `GITVISTA_GITLAB_WEBHOOK_SECRET`).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Paid plans through Stripe (`GITVISTA_STRIPE_SECRET_KEY` and what it needs; see
    /// [`gitvista_accounts::billing`]), read by `gitvista serve`.
    pub billing: Option<gitvista_accounts::billing::BillingSettings>,
    /// With billing on, how often a repository that no paying user tracks is fetched at most
    /// (`GITVISTA_FREE_FETCH_INTERVAL`, 5 min); its push hooks wait for that poll too.
    pub free_fetch_interval: Duration,
    /// How often owners whose payment failed are looked at again (their grace period may
    /// end), and the frozen repositories read back from the store (5 min).
    pub billing_sweep: Duration,
    /// How often a node that runs git looks for clones it owns whose directory is gone (a lost
    /// or wiped `repos/`) and clones them anew (30 s).
    pub lost_clone_check: Duration,
    /// How long a stopping node lets its running git jobs end before handing them back
    /// (`GITVISTA_JOB_DRAIN`).
    pub job_drain: Duration,
    /// A repository whose hook delivered within `hook_window` is fetched only this often
    /// (`GITVISTA_HOOKED_FETCH_INTERVAL`, 15 min): a safety net for a lost delivery.
    pub hooked_every: Duration,
    /// How recently a hook must have delivered to be trusted (24 h).
    pub hook_window: Duration,
    /// After a restart, fetch every repository used within `fetch_idle_stop` once (forges do
    /// not redeliver what was sent while the server was down).
    pub fetch_on_start: bool,
    /// How often this node says it is alive in the `nodes` table (and reaps expired job
    /// leases).
    pub heartbeat: Duration,
    /// This node's role and what it shares with the other nodes (`--role`,
    /// `GITVISTA_REDIS_URL`, `GITVISTA_CLUSTER_SECRET`, `GITVISTA_INTERNAL_ADDR`).
    pub cluster: gitvista_cluster::settings::ClusterSettings,
    /// A claimed job's lease (renewed at a third of it while the job runs).
    pub job_lease: Duration,
    /// How often the job runner looks for work without being woken.
    pub job_poll: Duration,
}

impl HostedConfig {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostedConfig {
            data_dir: data_dir.into(),
            database_url: None,
            allowed_hosts: String::new(),
            clone_concurrency: 2,
            clone_timeout: Duration::from_secs(600),
            max_repo_bytes: 2 << 30,
            fetch_with_viewers: Duration::from_secs(30),
            fetch_notice: Duration::from_secs(1),
            fetch_recent: Duration::from_secs(300),
            fetch_cold: Duration::from_secs(1800),
            fetch_idle_stop: Duration::from_secs(86_400),
            evict_interval: Duration::from_secs(60),
            session_idle: Duration::from_secs(900),
            clone_unused: Duration::from_secs(86_400),
            posts_per_minute: 20,
            initial_depth: Some(2000),
            commits_first: true,
            hydrate: true,
            stream_first: true,
            stream_max_bytes: 512 << 20,
            // Sized for the 1 GB machine fly.toml describes: what sessions keep is counted, and
            // the heap peaks about a third above it (loads in flight, buffers, allocator slack;
            // benches/session_budget), leaving the rest for viewers' sockets and git.
            max_sessions: 64,
            memory_budget: 384 << 20,
            deepen_retry: Duration::from_secs(60),
            git: PathBuf::from("git"),
            low_speed_limit: 1024,
            low_speed_time: Duration::from_secs(120),
            queue_max: 200,
            clones_per_client: 3,
            disk_quota: 8 << 30,
            min_free: 512 << 20,
            max_repos: 2000,
            resolver: crate::remote::Resolver::default(),
            plans: gitvista_accounts::accounts::Plans::default(),
            require_login: false,
            access_recheck: Duration::from_secs(600),
            webhooks: crate::webhooks::WebhookSettings::default(),
            billing: None,
            billing_sweep: Duration::from_secs(300),
            lost_clone_check: Duration::from_secs(30),
            job_drain: Duration::from_secs(20),
            free_fetch_interval: Duration::from_secs(300),
            hooked_every: Duration::from_secs(900),
            hook_window: Duration::from_secs(86_400),
            fetch_on_start: true,
            heartbeat: gitvista_cluster::HEARTBEAT,
            cluster: gitvista_cluster::settings::ClusterSettings::default(),
            job_lease: Duration::from_secs(30),
            job_poll: Duration::from_secs(2),
        }
    }

    /// The same settings with the data directory made absolute (see
    /// the server's `Config::with_absolute_paths`).
    pub fn with_absolute_paths(mut self) -> std::io::Result<HostedConfig> {
        self.data_dir = std::path::absolute(&self.data_dir)?;
        Ok(self)
    }

    /// The database URL: the configured one, else `gitvista.db` in the data directory.
    pub fn database(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| self.data_dir.join("gitvista.db").display().to_string())
    }
}
