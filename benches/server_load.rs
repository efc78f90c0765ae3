//! The server under load, with git beside it in the same run.
//!
//! `cargo bench --bench server_load` starts the real `gitvista open` binary on a shared bare clone
//! of `bench-data/forge.git` (200,202 commits, 4,398 refs, forge-shaped; generated when missing)
//! and measures:
//! - time until the first API answer and the server's resident memory holding the repository,
//!   beside `git rev-list --all --parents` (its wall time and peak RSS);
//! - `graph` windows of 200 rows at random offsets, sent open-loop at a fixed rate (default 1,000
//!   requests/s for 10 s, over keep-alive connections; latency counted from each request's
//!   scheduled time, so a stall cannot hide), without compression and with brotli, beside
//!   `git log --date-order --skip=N -n 200` for the same windows;
//! - commit-to-viewer latency: from the start of `git update-ref` moving `main` to a new commit
//!   until a WebSocket viewer holds the `delta` naming it;
//! - CPU and reloads of the server holding the repository with nothing happening
//!   (`GITVISTA_BENCH_IDLE_SECS`, default 60);
//! - resident memory per connected WebSocket viewer (500 viewers).
//!
//! Environment: `GITVISTA_BENCH_RATE` (requests/s), `GITVISTA_BENCH_SECS` (seconds per run),
//! `GITVISTA_BENCH_REPO` (another bare repository). Everything binds 127.0.0.1 and every loop is
//! bounded in count and time.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

#[path = "common/mod.rs"]
mod common;
use common::{Result, ensure_forge_repo, git, median, ms, rss_kib, server_url, time_git};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// User plus system CPU ticks (USER_HZ) a process has used, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Starts `gitvista open` on a free loopback port; returns the child and its base URL.
fn spawn_server(repo: &Path) -> Result<(Child, String)> {
    let mut child = Command::new(common::gitvista_binary())
        .args(["open", "--no-browser", "--port", "0"])
        .arg(repo)
        // All 500 viewers come from this one loopback client: lift the per-client socket cap.
        .env("GITVISTA_WS_PER_CLIENT", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let base = server_url(&mut child)?;
    Ok((child, base))
}

/// Peak RSS (KiB) and wall time of a git command, via /usr/bin/time.
fn git_peak(dir: &Path, args: &[&str]) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let elapsed = start.elapsed();
    let peak = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    Ok((peak, elapsed))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A small deterministic generator for offsets.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

struct WindowRun {
    sorted: Vec<Duration>,
    errors: usize,
    achieved: f64,
    bytes: usize,
}

/// Open-loop load: request `i` is due at `start + i / rate`; its latency counts from then.
async fn window_load(
    base: &str,
    rows: u64,
    rate: u64,
    secs: u64,
    encoding: &'static str,
) -> Result<WindowRun> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let total = rate * secs;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut lcg = Lcg(42);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total as usize);
    let base = Arc::new(base.to_string());
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let offset = lcg.next(rows.saturating_sub(200));
        let client = client.clone();
        let base = Arc::clone(&base);
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/api/repos/local/graph?offset={offset}&limit=200");
            let resp = tokio::time::timeout(
                Duration::from_secs(10),
                client.get(url).header("Accept-Encoding", encoding).send(),
            )
            .await;
            let body = match resp {
                Ok(Ok(r)) if r.status().is_success() => r.bytes().await.ok(),
                _ => None,
            };
            (due.elapsed(), body.map(|b| b.len()))
        }));
    }
    let mut sorted = Vec::with_capacity(tasks.len());
    let (mut errors, mut bytes) = (0, 0);
    for t in tasks {
        let (latency, body) = t.await?;
        match body {
            Some(n) => {
                sorted.push(latency);
                bytes += n;
            }
            None => errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    sorted.sort();
    let n = sorted.len().max(1);
    Ok(WindowRun {
        achieved: sorted.len() as f64 / elapsed,
        sorted,
        errors,
        bytes: bytes / n,
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next `delta` naming `commit` (bounded wait).
async fn wait_delta(ws: &mut Socket, commit: &str, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "no delta in time")?
            .ok_or("socket closed")??;
        if let Message::Text(t) = msg
            && t.contains("\"delta\"")
            && t.contains(commit)
        {
            return Ok(());
        }
    }
}

async fn run(root: &Path) -> Result<()> {
    let rate = env_num("GITVISTA_BENCH_RATE", 1000);
    let secs = env_num("GITVISTA_BENCH_SECS", 10);
    let source = match std::env::var("GITVISTA_BENCH_REPO") {
        Ok(p) => std::path::PathBuf::from(p),
        Err(_) => ensure_forge_repo(root)?,
    };
    // A shared clone: the objects stay in the source, the refs the bench moves are its own.
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("served.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--shared",
            &source.to_string_lossy(),
            "served.git",
        ],
    )?;
    let (peer_peak, peer_time) = git_peak(&repo, &["rev-list", "--all", "--parents"])?;

    let started = Instant::now();
    let (mut child, base) = spawn_server(&repo)?;
    let client = reqwest::Client::new();
    let summary: serde_json::Value = loop {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("the server did not answer within 120 s".into());
        }
        if let Ok(r) = client
            .get(format!("{base}/api/repos/local/repository"))
            .send()
            .await
            && r.status().is_success()
        {
            break r.json().await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ready = started.elapsed();
    let rows = summary["rows"].as_u64().unwrap_or(0);
    let (rss, hwm, anon) = rss_kib(child.id());
    println!("## server_load on {} ({rows} rows)\n", source.display());
    println!("| holding the repository | gitvista | git rev-list --all --parents |");
    println!("| --- | --- | --- |");
    println!(
        "| time to first answer / run time | {} | {} |",
        ms(ready),
        ms(peer_time)
    );
    println!(
        "| resident memory after load (of which heap; the rest is mapped pack pages) | {} ({} heap) | |",
        mib(rss),
        mib(anon)
    );
    println!(
        "| peak resident memory | {} | {} |\n",
        mib(hwm),
        mib(peer_peak)
    );

    // Idle: the repository loaded, no viewer connected, nothing changing.
    let idle_secs = env_num("GITVISTA_BENCH_IDLE_SECS", 60);
    let reloads = || async {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok::<f64, Box<dyn std::error::Error>>(
            text.lines()
                .filter(|l| l.starts_with("gitvista_reloads_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ticks0, reloads0) = (cpu_ticks(child.id()), reloads().await?);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let (ticks1, reloads1) = (cpu_ticks(child.id()), reloads().await?);
    let hz = 100.0; // USER_HZ on Linux
    println!("| idle, no viewer, {idle_secs} s | CPU | reloads |");
    println!("| --- | --- | --- |");
    println!(
        "| `gitvista open` holding the repository | {:.3}% of a core ({} ticks) | {} |\n",
        (ticks1 - ticks0) as f64 / hz / idle_secs as f64 * 100.0,
        ticks1 - ticks0,
        reloads1 - reloads0
    );

    // Windows: warm up, then the measured runs.
    window_load(&base, rows, 200, 1, "identity").await?;
    println!(
        "| graph window, 200 rows, random offsets, {rate} req/s for {secs} s | p50 | p90 | p99 | max | achieved | errors | bytes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for encoding in ["identity", "zstd", "gzip", "gzip, deflate, br, zstd"] {
        let r = window_load(&base, rows, rate, secs, encoding).await?;
        println!(
            "| {encoding} | {} | {} | {} | {} | {:.0}/s | {} | {} |",
            ms(percentile(&r.sorted, 0.5)),
            ms(percentile(&r.sorted, 0.9)),
            ms(percentile(&r.sorted, 0.99)),
            ms(percentile(&r.sorted, 1.0)),
            r.achieved,
            r.errors,
            r.bytes
        );
    }
    let mut lcg = Lcg(7);
    let mut peers = Vec::new();
    for _ in 0..5 {
        let skip = lcg.next(rows.saturating_sub(200)).to_string();
        peers.push(time_git(
            &repo,
            &[
                "log",
                "--all",
                "--date-order",
                &format!("--skip={skip}"),
                "-n",
                "200",
                "--format=%H %P %an %at %s",
            ],
        )?);
    }
    println!(
        "| peer: `git log --all --date-order --skip=N -n 200` (median of 5 random N) | {} | | | | | | |\n",
        ms(median(peers))
    );

    // Search over the whole history (first run of each query: the result cache is cold).
    println!("| search (whole history, cold) | gitvista | git |");
    println!("| --- | --- | --- |");
    let searches: [(&str, &[&str]); 4] = [
        (
            "render",
            &["log", "--all", "-i", "--grep=render", "--format=%H"],
        ),
        (
            "message:cache -merge:only",
            &["rev-list", "--all", "-i", "--grep=cache", "--no-merges"],
        ),
        (
            "fullpath:README",
            &["rev-list", "--all", "--full-history", "--", "README"],
        ),
        (
            "author:\"Dev 001\" merge:exclude",
            &["rev-list", "--all", "--author=Dev 001", "--no-merges"],
        ),
    ];
    for (q, peer) in searches {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/repos/local/search"),
            [("q", q), ("limit", "1")],
        )?;
        let t = Instant::now();
        let body: serde_json::Value = client.get(url).send().await?.json().await?;
        let ours = t.elapsed();
        let theirs = time_git(&repo, peer)?;
        println!(
            "| `{q}` ({} hits) vs `git {}` | {} | {} |",
            body["total"],
            peer.join(" "),
            ms(ours),
            ms(theirs)
        );
    }
    println!();

    // Commit-to-viewer latency.
    let ws_url = format!("{}/api/repos/local/ws", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await?;
    let mut latencies = Vec::new();
    let mut ref_updates = Vec::new();
    for k in 0..20 {
        let tree = git(&repo, &["rev-parse", "main^{tree}"])?;
        let commit = git(
            &repo,
            &[
                "commit-tree",
                &tree,
                "-p",
                "main",
                "-m",
                &format!("latency probe {k}"),
            ],
        )?;
        let t0 = Instant::now();
        let ref_time = time_git(&repo, &["update-ref", "refs/heads/main", &commit])?;
        wait_delta(&mut ws, &commit, Duration::from_secs(10)).await?;
        latencies.push(t0.elapsed());
        ref_updates.push(ref_time);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    latencies.sort();
    println!("| commit to viewer (20 commits on main) | p50 | p95 | max |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| `git update-ref` start to `delta` received | {} | {} | {} |",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "| of which `git update-ref` itself | {} | | |",
        ms(median(ref_updates))
    );
    let peer = median(
        (0..3)
            .map(|_| time_git(&repo, &["rev-list", "--all", "--count"]))
            .collect::<Result<_>>()?,
    );
    println!(
        "| peer: re-reading the history with `git rev-list --all --count` | {} | | |\n",
        ms(peer)
    );

    // Memory per viewer.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, _, _) = rss_kib(child.id());
    let mut viewers = Vec::new();
    for _ in 0..500 {
        let (mut v, _) = tokio_tungstenite::connect_async(&ws_url).await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), v.next()).await;
        viewers.push(v);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (with, _, _) = rss_kib(child.id());
    println!(
        "| 500 WebSocket viewers | RSS before {} | with them {} | {:.1} KiB per viewer |",
        mib(before),
        mib(with),
        with.saturating_sub(before) as f64 / 500.0
    );
    drop(viewers);
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

fn main() -> Result<()> {
    common::run_async_bench(|root| async move { run(&root).await })
}
