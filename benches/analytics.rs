//! The analytics' whole-history read against `git log --all --numstat`, side by side in one run.
//!
//! `cargo bench --bench analytics` measures, for each repository (the forge-shaped one under
//! bench-data/, made by `scripts/gen-forge-repo` when missing, and the project's own history):
//! reading every commit's changed files and line counts (gitcore's `HistoryStats`, all cores)
//! against `git log --all --numstat --format=%H`; the dashboard's figures for the whole history
//! and for its last year; and a push: one new commit's changes read and the figures computed
//! again. Medians of `GITVISTA_BENCH_RUNS` runs (default 3); `GITVISTA_BENCH_REPOS`
//! (colon-separated paths) replaces the list.

use std::time::Instant;

use gitcore::analytics::HistoryStats;
use gitcore::analytics::report::{Window, report};
use gitcore::graph::CommitGraph;
use gitcore::layout::{Layout, LayoutOptions};
use gitcore::repo::Repository;

#[path = "common/mod.rs"]
mod common;
use common::{Result, benchmarking, git_median, median, ms, runs_and_repos};

fn bench_repo(path: &std::path::Path, runs: usize) -> Result<()> {
    let repo = Repository::discover(path)?;
    let graph = CommitGraph::load(&repo)?;
    let layout = Layout::build(&graph, LayoutOptions::standard());
    let commits: Vec<u32> = (0..layout.len())
        .filter_map(|r| layout.commit_at(r))
        .collect();
    println!(
        "\n{} ({} commits, {} in the default view)\n",
        path.display(),
        graph.len(),
        commits.len()
    );
    println!("| what | git | gitcore | ratio |\n|---|---|---|---|");
    let mut times = Vec::new();
    let mut stats = HistoryStats::default();
    for _ in 0..runs {
        stats = HistoryStats::default();
        let started = Instant::now();
        stats.extend(&repo, &graph, &commits)?;
        times.push(started.elapsed());
    }
    let ours = median(times);
    let theirs = git_median(path, &["log", "--all", "--numstat", "--format=%H"], runs)?;
    println!(
        "| every commit's changed files and lines ({} commits) vs `git log --all --numstat --format=%H` | {} | {} | {:.2} |",
        stats.len(),
        ms(theirs),
        ms(ours),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    // The same commits as the default view reads (pull requests and notes left out).
    let view = git_median(
        path,
        &[
            "log",
            "--numstat",
            "--format=%H",
            "--exclude=refs/pull/*",
            "--exclude=refs/notes/*",
            "--all",
        ],
        runs,
    )?;
    println!(
        "| the same, against git on the default view's commits (`--exclude=refs/pull/* --exclude=refs/notes/* --all`) | {} | {} | {:.2} |",
        ms(view),
        ms(ours),
        ours.as_secs_f64() / view.as_secs_f64()
    );
    let times: Vec<i64> = commits.iter().map(|&c| graph.author_time(c)).collect();
    let (lo, hi) = (
        times.iter().copied().min().unwrap_or(0),
        times.iter().copied().max().unwrap_or(0) + 1,
    );
    for (label, window) in [
        ("the whole history", Window { start: lo, end: hi }),
        (
            "its last year",
            Window {
                start: hi - 365 * 86_400,
                end: hi,
            },
        ),
    ] {
        let mut t = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let r = report(&graph, &commits, &stats, window);
            let _ = report(&graph, &commits, &stats, window.previous());
            std::hint::black_box(r);
            t.push(started.elapsed());
        }
        println!(
            "| the figures of {label} and the period before (from the changes read) | | {} | |",
            ms(median(t))
        );
    }
    // A push: the newest commit of the view is new to the stats.
    let newest = commits[0];
    let mut t = Vec::new();
    for _ in 0..runs {
        let mut without = stats.clone();
        without.forget(&graph.oid(newest));
        let started = Instant::now();
        let read = without.extend(&repo, &graph, &commits)?;
        let r = report(&graph, &commits, &without, Window { start: lo, end: hi });
        std::hint::black_box(r);
        t.push(started.elapsed());
        assert_eq!(read, 1);
    }
    println!(
        "| a push: one new commit's changes read, the whole history's figures again | | {} | |",
        ms(median(t))
    );
    println!(
        "\nheap of the changes read: {:.1} MiB ({:.0} bytes per commit)",
        stats.heap_bytes() as f64 / (1 << 20) as f64,
        stats.heap_bytes() as f64 / stats.len().max(1) as f64
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo test --all-targets` runs benches in test mode: do nothing there.
    if !benchmarking() {
        return Ok(());
    }
    let (runs, repos) = runs_and_repos(3)?;
    for r in repos {
        bench_repo(&r, runs)?;
    }
    Ok(())
}
