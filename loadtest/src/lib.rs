//! `gitvista loadtest`: many concurrent WebSocket viewers over many repositories, graph windows
//! over HTTP and a steady stream of changes, for a bounded time; it reports how long each change
//! took to reach every viewer, whether any was lost, connect times, window latency and the
//! server's memory (from its `/metrics`) before, during and after.
//!
//! Without `--target` it builds its own world ([`fleet::Fleet`]): generated repositories served
//! by `git daemon` on loopback and a `gitvista serve` child that clones them; each change is a
//! commit in one of those repositories followed by an admin fetch (what a push and a webhook
//! do), so a delta goes through the whole path: fetch, reload, broadcast, viewer. With
//! `--target URL` it watches the repositories an existing server already serves and measures the
//! deltas that happen there. Targets must be loopback unless `--allow-remote` is given.
//!
//! Latencies: *fan-out* runs from the server's stamp on a delta (the `time` field, taken when the
//! reload found the change) to its arrival at a viewer; *delivery* runs from the moment the commit
//! existed in the remote to its arrival, so it includes the fetch. Both are over every (change,
//! viewer) pair of the viewers that keep up; slow viewers are reported apart.
//!
//! A client, not a part of the server: it imports no crate of the server's and reaches it only
//! over HTTP and WebSocket, like any viewer (and its own fleet over `git` and the `gitvista`
//! binary's commands, like an operator). Its world comes from `gitvista-testkit` (generated
//! repositories, `git daemon`, GitHub's webhook signature). Modules, bottom up: [`stats`],
//! `fleet` (the world it builds), `target` (the server it watches), [`viewer`] (one WebSocket
//! viewer), `windows` (graph windows over HTTP), `changes` (commits and how they reach the
//! server), [`peer`] (the bare broadcaster it compares with), [`soak`] (the same load held for
//! minutes, sampled each one), [`report`].

mod changes;
mod deliveries;
pub mod fleet;
pub mod peer;
pub mod report;
pub mod soak;
pub mod stats;
mod target;
pub mod viewer;
mod windows;

pub use self::report::Report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;

use self::changes::{Changes, make_changes};
use self::report::{RssReport, summarize};
use self::target::{Target, prepare, scrape, server_rss};
use self::viewer::{Ledger, Outcome, Plan};
use self::windows::http_load;

/// What to run, validated by [`LoadConfig::validate`].
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// An existing server (`http://127.0.0.1:8080`); `None` starts one.
    pub target: Option<String>,
    /// Accept a target that is not loopback.
    pub allow_remote: bool,
    /// The `--target`'s admin token, for its `/metrics` when it has one.
    pub admin_token: Option<String>,
    /// WebSocket viewers, spread evenly over the repositories.
    pub viewers: usize,
    /// Repositories watched.
    pub repos: usize,
    /// How long changes and windows run (connecting comes before, draining after).
    pub duration: Duration,
    /// Share of viewers that read slowly (0 to 1).
    pub slow_fraction: f64,
    /// How long a slow viewer pauses after each message.
    pub slow_pause: Duration,
    /// One change every this long, round-robin over the repositories.
    pub change_interval: Duration,
    /// Graph windows requested per second.
    pub http_rate: u32,
    /// Commits in each generated repository.
    pub commits: usize,
    /// Viewers connecting at once.
    pub connect_concurrency: usize,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Run the same load against a bare broadcaster afterwards, for comparison.
    pub peer: bool,
    /// How each change reaches the server (the harness's own fleet only).
    pub change_via: ChangeVia,
    /// Deliveries with a bad signature sent to `/webhooks/github` per second during the run
    /// (an attacker's flood; the harness's own fleet only).
    pub bad_webhooks_per_sec: u32,
    /// Web and worker nodes instead of one server (the harness's own fleet only): viewers are
    /// spread over the web nodes, every repository's viewers over all of them.
    pub tiers: Option<fleet::Tiers>,
    /// `--soak MINUTES`: the load held that long, sampled each minute (minutes, a minute's
    /// length); `duration` is then their product.
    pub soak: Option<(usize, Duration)>,
    /// Whether a soak pastes one new repository a minute (the harness's own fleet only).
    pub soak_pastes: bool,
}

/// How a change (a commit in a served repository) reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeVia {
    /// The admin API asks for a fetch (what the harness always did).
    #[default]
    Admin,
    /// A correctly signed GitHub `push` delivery to `/webhooks/github`.
    Webhook,
    /// Nothing: the server's own poll finds it (every `FETCH_INTERVAL` with viewers).
    Poll,
}

/// The server's poll interval with viewers in `--change-via poll` runs (its default, 30 s).
pub const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Most bad deliveries a second the harness sends.
const MAX_BAD_WEBHOOKS: u32 = 20_000;

/// Upper bounds on every knob: the harness is bounded in count and time.
const MAX_VIEWERS: usize = 100_000;
const MAX_REPOS: usize = 10_000;
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// A soak is at most a day.
const MAX_SOAK_MINUTES: usize = 1440;
/// Commits the harness generates at most, over all repositories.
const MAX_GENERATED: usize = 5_000_000;
/// Changes still on their way this long after the last one are counted as lost.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);
/// Graph window size requested by the HTTP load.
const WINDOW: u64 = 100;

impl LoadConfig {
    /// How long a change may take to arrive before it counts as lost: 10 s, plus the poll
    /// interval when only the poll brings changes in.
    pub fn drain(&self) -> Duration {
        match self.change_via {
            ChangeVia::Poll => DRAIN + POLL_INTERVAL,
            ChangeVia::Admin | ChangeVia::Webhook => DRAIN,
        }
    }

    /// Most changes a run makes: one per interval of the duration, and one more.
    pub fn max_changes(&self) -> usize {
        (self.duration.as_millis() / self.change_interval.as_millis().max(1)) as usize + 1
    }

    /// Refuses settings outside the harness's bounds.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.viewers > MAX_VIEWERS {
            bail!("--viewers is at most {MAX_VIEWERS}");
        }
        if self.repos == 0 || self.repos > MAX_REPOS {
            bail!("--repos is between 1 and {MAX_REPOS}");
        }
        if let Some((minutes, _)) = self.soak
            && (minutes == 0 || minutes > MAX_SOAK_MINUTES)
        {
            bail!("--soak is between 1 and {MAX_SOAK_MINUTES} minutes");
        }
        if self.duration.is_zero() || (self.soak.is_none() && self.duration > MAX_DURATION) {
            bail!(
                "--duration is between 1 and {} seconds",
                MAX_DURATION.as_secs()
            );
        }
        if !(0.0..=1.0).contains(&self.slow_fraction) {
            bail!("--slow-fraction is between 0 and 1");
        }
        if self.change_interval < Duration::from_millis(10) {
            bail!("--change-interval-ms is at least 10");
        }
        if self.bad_webhooks_per_sec > MAX_BAD_WEBHOOKS {
            bail!("--bad-webhooks-per-sec is at most {MAX_BAD_WEBHOOKS}");
        }
        if self.target.is_some() && self.tiers.is_some() {
            bail!("--tiers starts the harness's own nodes (no --target)");
        }
        if self.target.is_some()
            && (self.change_via != ChangeVia::Admin || self.bad_webhooks_per_sec > 0)
        {
            bail!(
                "--change-via and --bad-webhooks-per-sec drive the harness's own server (no --target)"
            );
        }
        if self.http_rate > 10_000 {
            bail!("--http-rate is at most 10000 requests per second");
        }
        if self.commits == 0 || self.commits > 1_000_000 {
            bail!("--commits is between 1 and 1000000");
        }
        if self.target.is_none() && self.commits.saturating_mul(self.repos) > MAX_GENERATED {
            bail!(
                "--commits x --repos is at most {MAX_GENERATED} (the harness generates them all)"
            );
        }
        Ok(())
    }
}

/// Raises this process's open-files limit to its hard limit (the server child inherits it);
/// returns the limit now in force.
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 0,
    }
}

/// Runs the harness on a runtime of its own and returns the report.
pub fn run(config: &LoadConfig) -> anyhow::Result<Report> {
    config.validate()?;
    let limit = raise_open_files();
    // Each viewer is a socket in this process (and one in a self-hosted server).
    if limit != 0 && (config.viewers as u64) + 256 > limit {
        bail!(
            "{} viewers need about {} open files but the limit is {limit}; raise it (ulimit -Hn, or LimitNOFILE= in a systemd unit) or ask for fewer viewers",
            config.viewers,
            config.viewers + 256
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(drive(config, limit))
}

async fn drive(config: &LoadConfig, limit: u64) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;
    eprintln!("loadtest: preparing the target");
    // Ctrl-C ends the run here, so the server, the git daemon (its own process group, which the
    // terminal's signal does not reach) and the temporary directory are cleaned up.
    let target = tokio::select! {
        t = prepare(config, &client) => t?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted while preparing"),
    };
    let result = tokio::select! {
        r = measure(config, &client, &target, limit) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if result.is_err()
        && let Some(f) = &target.fleet
    {
        eprintln!(
            "loadtest: the server's log was {}:\n{}",
            f.server_log.display(),
            std::fs::read_to_string(&f.server_log).unwrap_or_default()
        );
    }
    let repos = target.repos.len();
    // The server goes first: the peer gets the machine (and the open files) to itself.
    drop(target);
    let mut report = result?;
    if config.peer {
        let peer = tokio::select! {
            p = peer::measure(config, repos) => p?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        };
        report.peer = Some(peer);
    }
    Ok(report)
}

async fn measure(
    config: &LoadConfig,
    client: &reqwest::Client,
    target: &Target,
    limit: u64,
) -> anyhow::Result<Report> {
    let base = &target.base;
    let nrepos = target.repos.len();
    // Load every session, then the baseline.
    for r in &target.repos {
        let _ = client
            .get(format!("{base}/api/repos/{}/graph?offset=0&limit=1", r.id))
            .send()
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let token = target.token.as_deref();
    let rss_before = server_rss(client, base, token).await.unwrap_or(0);

    let soak_windows = config.soak.map(|_| Arc::new(soak::Recent::default()));
    let ledger = Arc::new(Ledger {
        fanout: config.soak.map(|_| Arc::new(soak::Recent::default())),
        ..Ledger::new(config.max_changes(), nrepos)
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let paths: Vec<String> = target
        .repos
        .iter()
        .map(|r| format!("/api/repos/{}/ws", r.id))
        .collect();
    let webs: Vec<(String, std::net::SocketAddr)> = target
        .webs
        .iter()
        .map(|(b, a)| (b.replacen("http://", "ws://", 1), *a))
        .collect();
    let crowd = Crowd::connect(config, &paths, &webs, &ledger, &stop_rx).await;
    let connected = crowd.connected;
    eprintln!("loadtest: {connected} viewers connected");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = server_rss(client, base, token).await.unwrap_or(0);
    // Each node's memory with the viewers connected (a cluster's).
    let mut nodes_rss = Vec::new();
    if let Some(fleet) = &target.fleet {
        for node in &fleet.nodes {
            let rss = server_rss(client, &node.base, token).await.unwrap_or(0);
            nodes_rss.push((node.role, node.base.clone(), rss));
        }
    } else if target.webs.len() > 1 {
        // `--target` naming several web nodes.
        for (web, _) in &target.webs {
            let rss = server_rss(client, web, token).await.unwrap_or(0);
            nodes_rss.push(("web", web.clone(), rss));
        }
    }

    // Changes, windows and memory samples for the duration.
    let sampler = {
        let (client, base, stop) = (client.clone(), base.clone(), stop_rx.clone());
        let token = target.token.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            while !*stop.borrow() {
                if let Some(rss) = server_rss(&client, &base, token.as_deref()).await {
                    peak = peak.max(rss);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            peak
        })
    };
    let windows = tokio::spawn(http_load(
        client.clone(),
        base.clone(),
        target.repos.clone(),
        config.http_rate,
        config.duration,
        soak_windows.clone(),
    ));
    let soaking = config.soak.map(|minutes| {
        tokio::spawn(soak::sample(
            client.clone(),
            base.clone(),
            target.token.clone(),
            target
                .fleet
                .as_ref()
                .filter(|_| config.soak_pastes)
                .and_then(soak::PastingFleet::of),
            minutes,
            soak_windows.clone().unwrap_or_default(),
            ledger.fanout.clone().unwrap_or_default(),
        ))
    });
    let flood = (config.bad_webhooks_per_sec > 0).then(|| {
        tokio::spawn(changes::flood(
            client.clone(),
            base.clone(),
            config.bad_webhooks_per_sec,
            config.duration,
        ))
    });
    let changes = match &target.fleet {
        Some(fleet) => make_changes(client, fleet, &target.repos, &ledger, config).await?,
        None => {
            tokio::time::sleep(config.duration).await;
            Changes::default()
        }
    };
    let http = windows.await?;
    let soak = match soaking {
        Some(s) => Some(s.await?),
        None => None,
    };

    crowd.drain(&changes, &ledger, config.drain()).await;
    let bad_webhooks = match flood {
        Some(f) => Some(f.await??),
        None => None,
    };
    let server_counters = scrape(client, base, token).await.unwrap_or_default();
    let outcomes = crowd.finish(&stop_tx).await;
    let peak = sampler.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = server_rss(client, base, token).await.unwrap_or(0);

    let mut report = summarize(
        config,
        target,
        &changes,
        &outcomes,
        http,
        RssReport {
            before: rss_before,
            idle: rss_idle,
            peak: peak.max(rss_idle),
            after: rss_after,
        },
        &server_counters,
        limit,
        connected,
    );
    report.bad_webhooks = bad_webhooks;
    report.soak = soak;
    report.add_nodes(&outcomes, &target.webs, &nodes_rss);
    Ok(report)
}

/// Viewers connected and reading, each a task returning its [`Outcome`].
struct Crowd {
    tasks: tokio::task::JoinSet<Outcome>,
    /// How many hold their summary.
    connected: usize,
    /// Connected viewers that keep up, by repository: what each change is owed to.
    keeping_up: Vec<u32>,
}

impl Crowd {
    /// Connects `config.viewers` viewers spread evenly over `paths` (one per repository) and,
    /// for each repository, over the web nodes `webs` (`ws://` base, address); some of them slow, `config.connect_concurrency` at a time, and waits until each connected or
    /// failed (bounded).
    async fn connect(
        config: &LoadConfig,
        paths: &[String],
        webs: &[(String, std::net::SocketAddr)],
        ledger: &Arc<Ledger>,
        stop_rx: &tokio::sync::watch::Receiver<bool>,
    ) -> Crowd {
        let nrepos = paths.len();
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel();
        let slow_count = (config.viewers as f64 * config.slow_fraction).round() as usize;
        let gate = Arc::new(tokio::sync::Semaphore::new(
            config.connect_concurrency.max(1),
        ));
        eprintln!(
            "loadtest: connecting {} viewers ({slow_count} slow) over {nrepos} repositories",
            config.viewers
        );
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..config.viewers {
            let repo = i % nrepos;
            // Slow viewers are spread evenly: every (1/fraction)-th viewer.
            let slow = slow_count > 0
                && (i * slow_count) / config.viewers.max(1)
                    != ((i + 1) * slow_count) / config.viewers.max(1);
            // Each repository's viewers are spread over every web node.
            let web = (i / nrepos) % webs.len().max(1);
            let (ws_base, addr) = &webs[web];
            let plan = Plan {
                url: format!("{ws_base}{}", paths[repo]),
                addr: *addr,
                web,
                repo,
                slow: slow.then_some(config.slow_pause),
            };
            let (ledger, conn_tx, stop_rx, gate) = (
                Arc::clone(ledger),
                conn_tx.clone(),
                stop_rx.clone(),
                Arc::clone(&gate),
            );
            let (repo, is_slow) = (plan.repo, plan.slow.is_some());
            tasks.spawn(async move {
                // The permit covers the connect only; it is released once the summary arrived.
                let permit = gate.acquire_owned().await;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let run = viewer::run(plan, ledger, tx, stop_rx);
                tokio::pin!(run);
                let mut permit = Some(permit);
                loop {
                    tokio::select! {
                        outcome = &mut run => return outcome,
                        Some(ok) = rx.recv() => {
                            permit.take();
                            let _ = conn_tx.send((repo, is_slow, ok));
                        }
                    }
                }
            });
        }
        drop(conn_tx);
        let connect_deadline =
            Instant::now() + Duration::from_secs(60 + config.viewers as u64 / 50);
        let mut connected = 0usize;
        let mut seen = 0usize;
        // Connected viewers that keep up, by repository: what each change is owed to.
        let mut keeping_up = vec![0u32; nrepos];
        while seen < config.viewers && Instant::now() < connect_deadline {
            match tokio::time::timeout(Duration::from_secs(1), conn_rx.recv()).await {
                Ok(Some((repo, slow, ok))) => {
                    seen += 1;
                    connected += usize::from(ok);
                    if ok && !slow {
                        keeping_up[repo] += 1;
                    }
                    if seen.is_multiple_of(1000) {
                        eprintln!("loadtest: {seen} viewers tried, {connected} connected");
                    }
                }
                Ok(None) => break,
                Err(_) => {}
            }
        }
        Crowd {
            tasks,
            connected,
            keeping_up,
        }
    }

    /// Waits until every change reached every viewer that keeps up, or `drain` passes.
    async fn drain(&self, changes: &Changes, ledger: &Ledger, drain: Duration) {
        let drain_until = Instant::now() + drain;
        while Instant::now() < drain_until {
            let done = changes.list.iter().enumerate().all(|(c, ch)| {
                ledger.delivered[c].load(Ordering::Relaxed) >= self.keeping_up[ch.repo]
            });
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the viewers and collects what each saw.
    async fn finish(mut self, stop: &tokio::sync::watch::Sender<bool>) -> Vec<Outcome> {
        let _ = stop.send(true);
        let mut outcomes = Vec::with_capacity(self.tasks.len());
        while let Some(o) = self.tasks.join_next().await {
            if let Ok(o) = o {
                outcomes.push(o);
            }
        }
        outcomes
    }
}
