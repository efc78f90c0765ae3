//! `gitvista open`'s first screen beside `git log --all --format='%H %s' | head -100`, side by
//! side in one run, on the same repositories, without and with a commit-graph file.
//!
//! `cargo bench --bench first_screen` measures, for each repository (and for a hard-linked copy of
//! it given a commit-graph with `git commit-graph write --reachable`):
//! - git: from spawning `git log --all --format='%H %s'` until it printed 100 lines (then its pipe
//!   closes, as `head -100` closes it); `-c core.commitGraph=false` for the variant without;
//! - gitcore in this process, what `gitvista open` does before its first rows: open the
//!   repository, read the newest commits and lay them out ([`Snapshot::first_screen`]), read the
//!   first 100 rows' authors and subjects; then the whole load that follows, and whether the first
//!   screen's rows are the whole graph's top rows;
//! - the release `gitvista open` as a user runs it: from spawning the process to the first
//!   `graph?limit=100` window answered, and to the summary of the whole history.
//!
//! Repositories: `bench-data/forge.git` (200,202 commits, forge-shaped; generated when missing)
//! and this project's own history, or `GITVISTA_BENCH_REPOS` (colon-separated). Medians of
//! `GITVISTA_BENCH_RUNS` runs (default 5). Servers bind 127.0.0.1; every wait is bounded.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gitcore::mailmap::UserConfig;
use gitvista_actors::Snapshot;
use gitvista_actors::snapshot::FirstScreen;

#[path = "common/mod.rs"]
mod common;
use common::{Result, benchmarking, git, median, ms, repo_shape, runs_and_repos, server_url};

/// Rows on the first screen that both sides must produce.
const ROWS: usize = 100;

/// `git log --all --format='%H %s' | head -100`: time to the 100th line.
fn git_head(dir: &Path, commit_graph: bool) -> Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", &format!("core.commitGraph={commit_graph}")])
        .args(["log", "--all", "--format=%H %s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let lines = std::io::BufReader::new(out).lines().take(ROWS).count();
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    if lines
        < ROWS.min(
            git(dir, &["rev-list", "--all", "--count"])?
                .trim()
                .parse()?,
        )
    {
        return Err(format!("git log printed {lines} lines").into());
    }
    Ok(elapsed)
}

/// Reads what the first rows show (authors and subjects), as the first graph window does.
fn show_first_rows(s: &Snapshot) {
    let rows: Vec<_> = s
        .layout
        .window(0, ROWS)
        .rows
        .iter()
        .map(|r| r.commit)
        .collect();
    std::hint::black_box(s.graph.summaries(&s.repo, &rows));
}

/// What the session does before its first rows, in this process: (first screen time, whole load
/// time after it, commits on the first screen, whether its rows top the whole graph).
fn gitcore_first_screen(dir: &Path) -> Result<(Duration, Duration, usize, bool)> {
    let started = Instant::now();
    let first = Snapshot::first_screen(
        dir,
        FirstScreen::default(),
        Arc::default(),
        UserConfig::Ignore,
    );
    let screen = match &first {
        Some(s) => {
            show_first_rows(s);
            started.elapsed()
        }
        None => Duration::ZERO,
    };
    let whole_started = Instant::now();
    let whole = Snapshot::load(dir, Arc::default(), None, UserConfig::Ignore)?;
    show_first_rows(&whole);
    let whole_time = whole_started.elapsed();
    let (commits, tops) = match &first {
        Some(s) => {
            let tops = (0..s.graph.len()).all(|r| {
                let a = s.graph.at_row(r).map(|c| s.graph.oid(c));
                let b = whole.graph.at_row(r).map(|c| whole.graph.oid(c));
                a.is_some() && a == b
            });
            (s.graph.len(), tops)
        }
        None => (0, true),
    };
    // No first screen: the whole load is the first screen.
    let screen = if first.is_none() { whole_time } else { screen };
    Ok((screen, whole_time, commits, tops))
}

/// The release binary as a user starts it: (spawn to the first window of 100 rows, spawn to the
/// summary of the whole history).
fn binary_first_screen(dir: &Path) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(common::gitvista_binary())
        .args(["open", "--no-browser", "--port", "0"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let base = server_url(&mut child);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let base = base?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?;
        let w: serde_json::Value = client
            .get(format!("{base}/api/repos/local/graph?limit={ROWS}"))
            .send()
            .await?
            .json()
            .await?;
        if w["rows"].as_array().is_none_or(Vec::is_empty) {
            return Err(format!("no rows: {w}").into());
        }
        let first = started.elapsed();
        let limit = Instant::now() + Duration::from_secs(600);
        loop {
            let s: serde_json::Value = client
                .get(format!("{base}/api/repos/local/repository"))
                .send()
                .await?
                .json()
                .await?;
            if s["streaming"] == false {
                return Ok((first, started.elapsed()));
            }
            if Instant::now() > limit {
                return Err("the whole history never came".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A hard-linked copy of `dir` with a commit-graph file (removed by the caller).
fn with_commit_graph(dir: &Path, tmp: &Path) -> Result<PathBuf> {
    let copy = tmp.join("with-commit-graph.git");
    let git_dir = PathBuf::from(git(dir, &["rev-parse", "--absolute-git-dir"])?.trim());
    let status = Command::new("cp")
        .arg("-al")
        .arg(&git_dir)
        .arg(&copy)
        .status()?;
    if !status.success() {
        return Err("cp -al failed".into());
    }
    // The copy's own file: hard links to a file the copy rewrites would change the original.
    let _ = std::fs::remove_file(copy.join("objects/info/commit-graph"));
    let _ = std::fs::remove_dir_all(copy.join("objects/info/commit-graphs"));
    git(&copy, &["commit-graph", "write", "--reachable"])?;
    Ok(copy)
}

fn measure(name: &str, dir: &Path, commit_graph: bool, runs: usize) -> Result<()> {
    let mut git_times = Vec::new();
    let mut screens = Vec::new();
    let mut wholes = Vec::new();
    let mut bin_first = Vec::new();
    let mut bin_whole = Vec::new();
    let mut shown = 0;
    let mut tops = true;
    for _ in 0..runs {
        git_times.push(git_head(dir, commit_graph)?);
        let (s, w, n, t) = gitcore_first_screen(dir)?;
        screens.push(s);
        wholes.push(w);
        shown = n;
        tops &= t;
        let (f, w) = binary_first_screen(dir)?;
        bin_first.push(f);
        bin_whole.push(w);
    }
    let g = median(git_times);
    let s = median(screens);
    let f = median(bin_first);
    println!(
        "| {name}, {} | {} | {} ({} commits{}) | {:.2} | {} | {} | {:.2} | {} |",
        if commit_graph {
            "commit-graph"
        } else {
            "no commit-graph"
        },
        ms(g),
        ms(s),
        shown,
        if tops { "" } else { ", rows differ!" },
        s.as_secs_f64() / g.as_secs_f64(),
        ms(median(wholes)),
        ms(f),
        f.as_secs_f64() / g.as_secs_f64(),
        ms(median(bin_whole)),
    );
    Ok(())
}

fn main() -> Result<()> {
    if !benchmarking() {
        return Ok(());
    }
    let (runs, repos) = runs_and_repos(5)?;
    println!(
        "| repository | `git log --all --format='%H %s' \\| head -100` | first screen in process (newest commits read, laid out, 100 rows) | ratio | whole load after it | `gitvista open` spawned to first 100-row window | ratio | spawned to the whole history |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for dir in repos {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        eprintln!("{name}: {}", repo_shape(&dir)?);
        let has_file = gitcore::graph::commit_graph_file::CommitGraphFile::exists(
            &dir.join(git(&dir, &["rev-parse", "--git-path", "objects"])?.trim()),
        );
        measure(&name, &dir, has_file, runs)?;
        let tmp = tempfile::tempdir()?;
        let copy = with_commit_graph(&dir, tmp.path())?;
        measure(&name, &copy, true, runs)?;
    }
    Ok(())
}
