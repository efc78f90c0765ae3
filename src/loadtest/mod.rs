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

pub mod fleet;
pub mod stats;
pub mod viewer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;

use self::fleet::Fleet;
use self::stats::{Percentiles, metric, round};
use self::viewer::{Ledger, Outcome, Plan, key, now_ms};

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
}

/// Upper bounds on every knob: the harness is bounded in count and time.
const MAX_VIEWERS: usize = 100_000;
const MAX_REPOS: usize = 10_000;
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Commits the harness generates at most, over all repositories.
const MAX_GENERATED: usize = 5_000_000;
/// Changes still on their way this long after the last one are counted as lost.
const DRAIN: Duration = Duration::from_secs(10);
/// Graph window size requested by the HTTP load.
const WINDOW: u64 = 100;

impl LoadConfig {
    /// Refuses settings outside the harness's bounds.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.viewers > MAX_VIEWERS {
            bail!("--viewers is at most {MAX_VIEWERS}");
        }
        if self.repos == 0 || self.repos > MAX_REPOS {
            bail!("--repos is between 1 and {MAX_REPOS}");
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
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

/// A repository the viewers watch.
#[derive(Debug, Clone)]
struct Watched {
    id: String,
    rows: u64,
}

/// The server under test.
#[derive(Debug)]
struct Target {
    base: String,
    /// Bearer token for `/metrics` and the admin API.
    token: Option<String>,
    addr: SocketAddr,
    repos: Vec<Watched>,
    /// The harness's own server, when it started one.
    fleet: Option<Fleet>,
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

/// Checks a `--target` URL: plain http, loopback unless `allow_remote`; returns the base URL and
/// the address to connect sockets to.
async fn check_target(target: &str, allow_remote: bool) -> anyhow::Result<(String, SocketAddr)> {
    let url = url::Url::parse(target).with_context(|| format!("--target {target} is not a URL"))?;
    if url.scheme() != "http" {
        bail!(
            "--target must be an http:// URL (the harness speaks plain HTTP and WebSocket; reach a TLS deployment through a tunnel to loopback)"
        );
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let host_for_lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = tokio::net::lookup_host((host_for_lookup.as_str(), port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "--target {target} is not a loopback address: the harness only loads this machine unless --allow-remote is given"
        );
    }
    let base = format!("http://{}:{port}", url.host_str().unwrap_or_default());
    Ok((base, addr))
}

/// Waits until every repository is ready (bounded); returns their ids in order.
async fn register(
    client: &reqwest::Client,
    base: &str,
    urls: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(urls.len());
    for url in urls {
        let resp = client
            .post(format!("{base}/api/repos"))
            .json(&json!({ "url": url }))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let Some(id) = body["id"].as_str() else {
            bail!("POST /api/repos {url}: {status} {body}");
        };
        ids.push(id.to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60 + urls.len() as u64);
    for id in &ids {
        loop {
            let body: serde_json::Value = client
                .get(format!("{base}/api/repos/{id}/status"))
                .send()
                .await?
                .json()
                .await?;
            match body["state"].as_str() {
                Some("ready") => break,
                Some("error") => bail!("cloning {id} failed: {}", body["error"]),
                _ if Instant::now() > deadline => bail!("{id} was not cloned in time: {body}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(ids)
}

/// Repositories an existing server serves: `local` in local mode, else the ready ones it lists.
async fn served_repos(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<String>> {
    let local = client
        .get(format!("{base}/api/repos/local/repository"))
        .send()
        .await?;
    if local.status().is_success() {
        return Ok(vec!["local".into()]);
    }
    let list: serde_json::Value = client
        .get(format!("{base}/api/repos"))
        .send()
        .await?
        .json()
        .await
        .context("the target lists no repositories (is it a GitVista server?)")?;
    let repos = list["repos"].as_array().cloned().unwrap_or_default();
    Ok(repos
        .iter()
        .filter(|r| r["state"] == "ready")
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect())
}

async fn rows(client: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<u64> {
    let body: serde_json::Value = client
        .get(format!("{base}/api/repos/{id}/repository"))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["rows"].as_u64().unwrap_or(0))
}

async fn scrape(client: &reqwest::Client, base: &str, token: Option<&str>) -> Option<String> {
    let mut req = client
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

async fn server_rss(client: &reqwest::Client, base: &str, token: Option<&str>) -> Option<u64> {
    scrape(client, base, token)
        .await
        .and_then(|t| metric(&t, "gitvista_process_resident_bytes"))
        .map(|v| v as u64)
}

/// Sets up the target: the harness's own fleet, or the `--target` server's repositories.
async fn prepare(config: &LoadConfig, client: &reqwest::Client) -> anyhow::Result<Target> {
    let Some(target) = &config.target else {
        let (repos, commits) = (config.repos, config.commits);
        let fleet = tokio::task::spawn_blocking(move || Fleet::start(repos, commits)).await??;
        let (base, addr) = check_target(&fleet.base, false).await?;
        let ids = register(client, &base, &fleet.urls).await?;
        let mut repos = Vec::new();
        for id in ids {
            repos.push(Watched {
                rows: rows(client, &base, &id).await?,
                id,
            });
        }
        return Ok(Target {
            base,
            token: Some(fleet.admin_token.clone()),
            addr,
            repos,
            fleet: Some(fleet),
        });
    };
    let (base, addr) = check_target(target, config.allow_remote).await?;
    let ids = served_repos(client, &base).await?;
    if ids.is_empty() {
        bail!("{base} serves no ready repository to watch");
    }
    let mut repos = Vec::new();
    for id in ids.into_iter().take(config.repos) {
        repos.push(Watched {
            rows: rows(client, &base, &id).await?,
            id,
        });
    }
    let token = config.admin_token.clone();
    if scrape(client, &base, token.as_deref()).await.is_none() {
        eprintln!(
            "loadtest: {base}/metrics does not answer (does it need --admin-token?); memory will read 0"
        );
    }
    Ok(Target {
        base,
        token,
        addr,
        repos,
        fleet: None,
    })
}

/// The JSON report (also printed as text).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The settings this run used.
    pub config: serde_json::Value,
    /// Viewers asked for, connected, failed, dropped before the end; connect time.
    pub viewers: ViewerReport,
    /// Changes made and how many reached every viewer that keeps up.
    pub changes: ChangeReport,
    /// Server stamp to viewer, viewers that keep up (ms).
    pub fanout_ms: Percentiles,
    /// Commit in the remote to viewer, viewers that keep up (ms).
    pub delivery_ms: Percentiles,
    /// Per change: commit in the remote to the last viewer that keeps up holding it (ms).
    pub last_viewer_ms: Percentiles,
    /// (change, viewer) pairs a viewer that keeps up never received.
    pub lost: u64,
    /// The deliberately slow viewers.
    pub slow: SlowReport,
    /// Graph windows over HTTP.
    pub http: HttpReport,
    /// The server's resident memory from `/metrics`.
    pub server_rss_bytes: RssReport,
    /// Server memory per connected idle viewer (bytes).
    pub rss_per_viewer_bytes: f64,
    /// The server's own counters at the end (viewers dropped, resyncs, full mailboxes).
    pub server: serde_json::Value,
    /// The harness's own resident memory at the end (bytes).
    pub harness_rss_bytes: u64,
    /// The open-files limit the harness ran with.
    pub open_files_limit: u64,
    /// Errors by kind, with counts (first few messages kept).
    pub errors: Vec<String>,
}

/// Viewers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerReport {
    /// Asked for.
    pub requested: usize,
    /// Held their summary.
    pub connected: usize,
    /// Never connected.
    pub failed: usize,
    /// Connected viewers that keep up but lost their connection before the end.
    pub dropped: usize,
    /// TCP connect to summary (ms).
    pub connect_ms: Percentiles,
}

/// Changes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    /// Commits made (and fetches asked for).
    pub made: usize,
    /// Changes every viewer that keeps up received.
    pub delivered_to_all: usize,
    /// Deltas received by viewers that keep up, all changes together.
    pub deliveries: usize,
    /// Ticks skipped because every repository still had a change on its way.
    pub skipped_ticks: u64,
}

/// Slow viewers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowReport {
    /// How many.
    pub viewers: usize,
    /// Messages they read.
    pub messages: u64,
    /// `resync`s they were sent.
    pub resyncs: u64,
    /// How many the server cut off.
    pub disconnected: usize,
    /// Server stamp to slow viewer (ms).
    pub fanout_ms: Percentiles,
}

/// HTTP windows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpReport {
    /// Sent.
    pub requests: usize,
    /// Failed or non-2xx.
    pub errors: usize,
    /// From each request's scheduled time to its whole body (ms).
    pub latency_ms: Percentiles,
}

/// Server memory.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RssReport {
    /// Repositories loaded, no viewers.
    pub before: u64,
    /// All viewers connected, nothing changing.
    pub idle: u64,
    /// Highest seen during the changes.
    pub peak: u64,
    /// All viewers gone.
    pub after: u64,
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
    drop(target);
    result
}

async fn measure(
    config: &LoadConfig,
    client: &reqwest::Client,
    target: &Target,
    limit: u64,
) -> anyhow::Result<Report> {
    let base = &target.base;
    let ws_base = base.replacen("http://", "ws://", 1);
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

    let max_changes =
        (config.duration.as_millis() / config.change_interval.as_millis().max(1)) as usize + 1;
    let ledger = Arc::new(Ledger::new(max_changes, nrepos));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
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
        let plan = Plan {
            url: format!("{ws_base}/api/repos/{}/ws", target.repos[repo].id),
            addr: target.addr,
            repo,
            slow: slow.then_some(config.slow_pause),
        };
        let (ledger, conn_tx, stop_rx, gate) = (
            Arc::clone(&ledger),
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
    let connect_deadline = Instant::now() + Duration::from_secs(60 + config.viewers as u64 / 50);
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
    eprintln!("loadtest: {connected} viewers connected");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = server_rss(client, base, token).await.unwrap_or(0);

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
    ));
    let changes = match &target.fleet {
        Some(fleet) => {
            make_changes(
                client,
                fleet,
                &target.repos,
                &ledger,
                config.change_interval,
                config.duration,
            )
            .await?
        }
        None => {
            tokio::time::sleep(config.duration).await;
            Changes::default()
        }
    };
    let http = windows.await?;

    // Drain: until every change reached every viewer that keeps up, or DRAIN passes.
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        let done = changes
            .list
            .iter()
            .enumerate()
            .all(|(c, ch)| ledger.delivered[c].load(Ordering::Relaxed) >= keeping_up[ch.repo]);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_counters = scrape(client, base, token).await.unwrap_or_default();
    let _ = stop_tx.send(true);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(config.viewers);
    while let Some(o) = tasks.join_next().await {
        if let Ok(o) = o {
            outcomes.push(o);
        }
    }
    let peak = sampler.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = server_rss(client, base, token).await.unwrap_or(0);

    Ok(summarize(
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
    ))
}

/// One change made by the harness.
#[derive(Debug, Clone)]
struct Change {
    repo: usize,
    /// When the commit existed in the remote (ms since the epoch).
    made_ms: f64,
}

#[derive(Debug, Default)]
struct Changes {
    list: Vec<Change>,
    skipped: u64,
}

/// One change every `interval` for `duration`, round-robin over repositories whose previous
/// change has reached a viewer (a fetch running when a commit lands would otherwise merge two
/// changes into one delta; they are still matched, but one at a time per repository keeps the
/// latency per change clean).
async fn make_changes(
    client: &reqwest::Client,
    fleet: &Fleet,
    repos: &[Watched],
    ledger: &Ledger,
    interval: Duration,
    duration: Duration,
) -> anyhow::Result<Changes> {
    let mut out = Changes::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Vec<Option<Instant>> = vec![None; repos.len()];
    let mut next = 0usize;
    let started = Instant::now();
    eprintln!(
        "loadtest: one change every {} ms for {} s",
        interval.as_millis(),
        duration.as_secs()
    );
    while started.elapsed() < duration && out.list.len() < ledger.delivered.len() {
        ticker.tick().await;
        let mut chosen = None;
        for _ in 0..repos.len() {
            let r = next;
            next = (next + 1) % repos.len();
            let free = ledger.pending[r].load(Ordering::Relaxed) == 0
                || last[r].is_some_and(|t| t.elapsed() > DRAIN);
            if free {
                chosen = Some(r);
                break;
            }
        }
        let Some(r) = chosen else {
            out.skipped += 1;
            continue;
        };
        let n = out.list.len();
        let source = fleet.sources[r].clone();
        let hash = tokio::task::spawn_blocking(move || fleet::commit(&source, n as u64)).await??;
        let made_ms = now_ms();
        let Some(k) = key(&hash) else {
            bail!("git printed no commit id: {hash}");
        };
        ledger
            .by_key
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, n);
        ledger.pending[r].store(k, Ordering::Relaxed);
        last[r] = Some(Instant::now());
        out.list.push(Change { repo: r, made_ms });
        let resp = client
            .post(format!(
                "{}/api/admin/repos/{}/fetch",
                fleet.base, repos[r].id
            ))
            .bearer_auth(&fleet.admin_token)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "the admin fetch of {} answered {}",
                repos[r].id,
                resp.status()
            );
        }
    }
    Ok(out)
}

/// Open-loop graph windows at `rate` per second for `duration`: request `i` is due at
/// `start + i / rate` and its latency counts from then, so a stalled server cannot hide.
async fn http_load(
    client: reqwest::Client,
    base: String,
    repos: Vec<Watched>,
    rate: u32,
    duration: Duration,
) -> (usize, usize, Vec<f64>) {
    if rate == 0 {
        return (0, 0, Vec::new());
    }
    let total = (u128::from(rate) * duration.as_millis() / 1000) as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below.max(1)
    };
    let base = Arc::new(base);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due).await;
        let r = &repos[random(repos.len() as u64) as usize];
        let offset = random(r.rows.saturating_sub(WINDOW) + 1);
        let url = format!(
            "{base}/api/repos/{}/graph?offset={offset}&limit={WINDOW}",
            r.id
        );
        let client = client.clone();
        set.spawn(async move {
            let ok = match client.get(url).send().await {
                Ok(resp) if resp.status().is_success() => resp.bytes().await.is_ok(),
                _ => false,
            };
            (ok, due.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let (mut errors, mut latencies) = (0usize, Vec::with_capacity(total));
    while let Some(done) = set.join_next().await {
        match done {
            Ok((true, ms)) => latencies.push(ms),
            _ => errors += 1,
        }
    }
    (total, errors, latencies)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site gathering every measurement"
)]
fn summarize(
    config: &LoadConfig,
    target: &Target,
    changes: &Changes,
    outcomes: &[Outcome],
    http: (usize, usize, Vec<f64>),
    rss: RssReport,
    counters: &str,
    limit: u64,
    connected: usize,
) -> Report {
    let normal: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.slow && o.connect.is_some())
        .collect();
    let slow: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.slow && o.connect.is_some())
        .collect();
    let mut fanout = Vec::new();
    let mut delivery = Vec::new();
    let mut last_at = vec![0f64; changes.list.len()];
    let mut got = vec![0usize; changes.list.len()];
    let mut lost = 0u64;
    for o in &normal {
        let mut received = vec![false; changes.list.len()];
        for r in &o.receipts {
            fanout.push(r.at_ms - r.server_ms as f64);
            if let Some(c) = r.change
                && let Some(ch) = changes.list.get(c)
                && !received[c]
            {
                received[c] = true;
                got[c] += 1;
                delivery.push(r.at_ms - ch.made_ms);
                last_at[c] = last_at[c].max(r.at_ms);
            }
        }
        // Every change made on its repository while it was connected was owed to it.
        lost += changes
            .list
            .iter()
            .enumerate()
            .filter(|(c, ch)| ch.repo == o.repo && ch.made_ms >= o.connected_ms && !received[*c])
            .count() as u64;
    }
    let mut per_repo = vec![0usize; target.repos.len()];
    for o in &normal {
        per_repo[o.repo] += 1;
    }
    let delivered_to_all = changes
        .list
        .iter()
        .enumerate()
        .filter(|(c, ch)| got[*c] >= per_repo[ch.repo])
        .count();
    let last_viewer: Vec<f64> = changes
        .list
        .iter()
        .enumerate()
        .filter(|(c, ch)| got[*c] >= per_repo[ch.repo] && got[*c] > 0)
        .map(|(c, ch)| last_at[c] - ch.made_ms)
        .collect();
    let slow_fanout: Vec<f64> = slow
        .iter()
        .flat_map(|o| o.receipts.iter().map(|r| r.at_ms - r.server_ms as f64))
        .collect();
    let mut errors: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for o in outcomes.iter().filter(|o| !o.slow) {
        if let Some(e) = &o.error {
            let kind = e.split(':').next().unwrap_or(e).to_string();
            let entry = errors.entry(kind).or_insert((0, e.clone()));
            entry.0 += 1;
        }
    }
    let (requests, http_errors, latencies) = http;
    let counter = |name: &str| metric(counters, name).unwrap_or(0.0);
    Report {
        config: json!({
            "target": target.base,
            "selfHosted": target.fleet.is_some(),
            "viewers": config.viewers,
            "repos": target.repos.len(),
            "durationSecs": config.duration.as_secs_f64(),
            "slowFraction": config.slow_fraction,
            "slowPauseMs": config.slow_pause.as_millis() as u64,
            "changeIntervalMs": config.change_interval.as_millis() as u64,
            "httpRate": config.http_rate,
            "commitsPerRepo": target.fleet.as_ref().map(|_| config.commits),
            "rowsPerRepo": target.repos.iter().map(|r| r.rows).max().unwrap_or(0),
        }),
        viewers: ViewerReport {
            requested: config.viewers,
            connected,
            failed: outcomes.iter().filter(|o| o.connect.is_none()).count(),
            dropped: normal.iter().filter(|o| o.error.is_some()).count(),
            connect_ms: Percentiles::of(
                outcomes
                    .iter()
                    .filter_map(|o| o.connect)
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .collect(),
            ),
        },
        changes: ChangeReport {
            made: changes.list.len(),
            delivered_to_all,
            deliveries: got.iter().sum(),
            skipped_ticks: changes.skipped,
        },
        fanout_ms: Percentiles::of(fanout),
        delivery_ms: Percentiles::of(delivery),
        last_viewer_ms: Percentiles::of(last_viewer),
        lost,
        slow: SlowReport {
            viewers: slow.len(),
            messages: slow.iter().map(|o| o.messages).sum(),
            resyncs: slow.iter().map(|o| u64::from(o.resyncs)).sum(),
            disconnected: slow.iter().filter(|o| o.error.is_some()).count(),
            fanout_ms: Percentiles::of(slow_fanout),
        },
        http: HttpReport {
            requests,
            errors: http_errors,
            latency_ms: Percentiles::of(latencies),
        },
        rss_per_viewer_bytes: if connected > 0 {
            round(rss.idle.saturating_sub(rss.before) as f64 / connected as f64)
        } else {
            0.0
        },
        server_rss_bytes: rss,
        server: json!({
            "viewersDroppedTotal": counter("gitvista_ws_viewers_dropped_total"),
            "resyncsTotal": counter("gitvista_ws_resyncs_total"),
            "mailboxFullTotal": counter("gitvista_viewer_mailbox_full_total"),
            "eventsSentTotal": counter("gitvista_events_sent_total"),
            "viewers": counter("gitvista_viewers"),
        }),
        harness_rss_bytes: crate::metrics::resident_bytes(),
        open_files_limit: limit,
        errors: errors
            .into_iter()
            .map(|(kind, (n, example))| format!("{n} x {kind} (e.g. {example})"))
            .collect(),
    }
}

impl Report {
    /// The report as a few lines of text.
    pub fn text(&self) -> String {
        let p = |x: &Percentiles| {
            format!(
                "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
                x.p50, x.p95, x.p99, x.max, x.count
            )
        };
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        format!(
            "viewers: {} of {} connected ({} failed, {} dropped); connect {}\n\
             changes: {} made, {} reached every viewer that keeps up, {} lost\n\
             fan-out (server stamp to viewer): {}\n\
             delivery (commit in the remote to viewer, incl. fetch): {}\n\
             last viewer per change: {}\n\
             slow viewers: {} (read {} messages, {} resyncs, {} cut off); fan-out {}\n\
             graph windows: {} requests, {} errors; {}\n\
             server RSS: before {:.1} MiB, idle with viewers {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; {:.1} KiB per viewer\n\
             harness RSS {:.1} MiB; open-files limit {}{}",
            self.viewers.connected,
            self.viewers.requested,
            self.viewers.failed,
            self.viewers.dropped,
            p(&self.viewers.connect_ms),
            self.changes.made,
            self.changes.delivered_to_all,
            self.lost,
            p(&self.fanout_ms),
            p(&self.delivery_ms),
            p(&self.last_viewer_ms),
            self.slow.viewers,
            self.slow.messages,
            self.slow.resyncs,
            self.slow.disconnected,
            p(&self.slow.fanout_ms),
            self.http.requests,
            self.http.errors,
            p(&self.http.latency_ms),
            mib(self.server_rss_bytes.before),
            mib(self.server_rss_bytes.idle),
            mib(self.server_rss_bytes.peak),
            mib(self.server_rss_bytes.after),
            self.rss_per_viewer_bytes / 1024.0,
            mib(self.harness_rss_bytes),
            self.open_files_limit,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!("\nerrors: {}", self.errors.join("; "))
            }
        )
    }
}
