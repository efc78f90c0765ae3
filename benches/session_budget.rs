//! Memory under a flood of repositories: the session budget against no budget, in one run.
//!
//! `cargo bench --bench session_budget` prepares a hosted data directory holding 500 ready
//! clones (hard-linked copies of one generated repository of 10,000 commits over 20 topic
//! branches, with a commit-graph, as the CloneQueue leaves them), then for each server setting:
//! starts the release `gitvista serve` on it, asks for a graph window of each of the 500
//! repositories (16 at a time), then opens a WebSocket viewer on one repository after another
//! until the server refuses one, and asks for the rest. It reports the server's peak RSS
//! (VmHWM), the answers by status, and how many watched repositories fit. The peer in the same
//! run is the same server without a budget (`--memory-budget 1TiB`).
//!
//! Environment: `GITVISTA_BENCH_REPOS` (500), `GITVISTA_BENCH_COMMITS` (10,000),
//! `GITVISTA_BENCH_BUDGET` (256MiB). Everything binds 127.0.0.1; every loop is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
use common::{Result, benchmarking, git, rss_kib, serve_command, server_url};

fn env_str(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The generated source repository (with a commit-graph), made once.
fn source_repo(root: &Path, commits: usize) -> Result<PathBuf> {
    let src = root.join(format!("bench-data/budget-{commits}.git"));
    if !src.join("objects/info/commit-graphs").exists()
        && !src.join("objects/info/commit-graph").exists()
    {
        let _ = std::fs::remove_dir_all(&src);
        let ok = Command::new(root.join("scripts/gen-bench-repo"))
            .arg(&src)
            .arg(commits.to_string())
            .arg("20")
            .status()?
            .success();
        if !ok {
            return Err("scripts/gen-bench-repo failed".into());
        }
        git(
            &src,
            &[
                "commit-graph",
                "write",
                "--reachable",
                "--split",
                "--changed-paths",
            ],
        )?;
    }
    Ok(src)
}

/// A data directory with `n` ready repositories, all hard links of `src`.
fn data_dir(src: &Path, n: usize, commits: usize) -> Result<(tempfile::TempDir, Vec<String>)> {
    let dir = tempfile::Builder::new()
        .prefix("gitvista-budget-")
        .tempdir()?;
    let repos = dir.path().join("repos");
    std::fs::create_dir_all(&repos)?;
    let store =
        gitvista::store::Store::open(&dir.path().join("gitvista.db").display().to_string(), 2)?;
    let size = gitvista_actors::clone_queue::dir_size(src) as i64;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{:016x}", 0xb0d6_e700_0000_0000u64 + i as u64);
        // Port 9 (discard) on loopback: a fetch fails at once and harmlessly.
        let url = format!("git://127.0.0.1:9/r{i}");
        store.upsert_repo(&id, &url, &url)?;
        store.set_fetched(&id, Some(commits as i64), size)?;
        store.set_state(&id, "ready", None, None)?;
        let ok = Command::new("cp")
            .arg("-al")
            .arg(src)
            .arg(repos.join(&id))
            .status()?
            .success();
        if !ok {
            return Err("cp -al failed".into());
        }
        ids.push(id);
    }
    Ok((dir, ids))
}

fn spawn_serve(data: &Path, budget: &str) -> Result<(Child, String)> {
    let mut child = serve_command(data)
        .args(["--memory-budget", budget, "--max-sessions", "100000"])
        .env("GITVISTA_WS_PER_CLIENT", "100000")
        .env("GITVISTA_WORK_MS_PER_SECOND", "1000000")
        .env_remove("DATABASE_URL")
        .env_remove("GITVISTA_ADMIN_TOKEN")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let base = server_url(&mut child)?;
    Ok((child, base))
}

#[derive(Debug, Default)]
struct Outcome {
    ok: usize,
    busy: usize,
    other: usize,
    secs: f64,
    watched: usize,
    busy_after_watch: usize,
    peak_kib: u64,
    peak_anon_kib: u64,
}

async fn run(base: &str, pid: u32, ids: &[String]) -> Result<Outcome> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()?;
    let peak = Arc::new(AtomicU64::new(0));
    let peak_anon = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, peak_anon, stop) = (peak.clone(), peak_anon.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (rss, _, anon) = rss_kib(pid);
                peak.fetch_max(rss, Ordering::Relaxed);
                peak_anon.fetch_max(anon, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut out = Outcome::default();
    let started = Instant::now();
    // Phase 1: every repository once, 16 at a time.
    for chunk in ids.chunks(16) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|id| {
                let (client, url) = (
                    client.clone(),
                    format!("{base}/api/repos/{id}/graph?limit=100"),
                );
                tokio::spawn(async move {
                    match client
                        .get(url)
                        .timeout(Duration::from_secs(120))
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    }
                })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap_or(0) {
                200 => out.ok += 1,
                503 => out.busy += 1,
                _ => out.other += 1,
            }
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    // Phase 2: viewers, one repository after another, until one is refused.
    let ws_base = base.replacen("http", "ws", 1);
    let mut viewers = Vec::new();
    let mut next = 0;
    while next < ids.len() {
        match tokio_tungstenite::connect_async(format!("{ws_base}/api/repos/{}/ws", ids[next]))
            .await
        {
            Ok((ws, _)) => viewers.push(ws),
            Err(_) => break,
        }
        next += 1;
        // Let the session load and count its viewer before the next one asks for room.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.watched = viewers.len();
    for id in &ids[next.min(ids.len())..] {
        let status = client
            .get(format!("{base}/api/repos/{id}/graph?limit=100"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 503 {
            out.busy_after_watch += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let (_, hwm, _) = rss_kib(pid);
    out.peak_kib = hwm.max(peak.load(Ordering::Relaxed));
    out.peak_anon_kib = peak_anon.load(Ordering::Relaxed);
    drop(viewers);
    Ok(out)
}

fn main() -> Result<()> {
    if !benchmarking() {
        return Ok(());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let n = env_num("GITVISTA_BENCH_REPOS", 500);
    let commits = env_num("GITVISTA_BENCH_COMMITS", 10_000);
    let budget = env_str("GITVISTA_BENCH_BUDGET", "256MiB");
    let src = source_repo(&root, commits)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "{n} repositories of {commits} commits (20 topic branches, commit-graph), 16 requests at a time"
    );
    println!(
        "| server | windows answered 200 / 503 / other | time | peak RSS (VmHWM) | peak heap (RssAnon, sampled every 20 ms) | watched repositories that fit | 503 for the rest while watched |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (label, setting) in [
        (format!("memory budget {budget}"), budget.as_str()),
        ("no budget (peer)".to_string(), "1TiB"),
    ] {
        let (dir, ids) = data_dir(&src, n, commits)?;
        let (mut child, base) = spawn_serve(dir.path(), setting)?;
        let out = rt.block_on(run(&base, child.id(), &ids));
        let _ = child.kill();
        let _ = child.wait();
        let out = out?;
        println!(
            "| {label} | {} / {} / {} | {:.1} s | {:.0} MiB | {:.0} MiB | {} | {} of {} |",
            out.ok,
            out.busy,
            out.other,
            out.secs,
            out.peak_kib as f64 / 1024.0,
            out.peak_anon_kib as f64 / 1024.0,
            out.watched,
            out.busy_after_watch,
            n - out.watched.min(n),
        );
    }
    Ok(())
}
