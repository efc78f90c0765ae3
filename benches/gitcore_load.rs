//! gitcore against the git CLI, side by side in one run, on the same repositories.
//!
//! `cargo bench --bench gitcore_load` measures, for each repository (a generated one under
//! bench-data/, made by `scripts/gen-bench-repo` when missing, and the project's own history):
//! full graph load against `git log --all --format=...` without a commit-graph; topology plus
//! layout (the first window ready) against `git rev-list --all --parents` with a commit-graph;
//! the whole-graph layout; a reload after one new commit; heap bytes per commit. Every figure is
//! the median of several runs. `GITVISTA_BENCH_REPOS` (colon-separated paths) replaces the list;
//! `GITVISTA_BENCH_RUNS` sets the number of runs (default 5).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gitcore::graph::{CommitGraph, LoadOptions};
use gitcore::layout::{Layout, LayoutOptions};
use gitcore::repo::Repository;

#[path = "common/mod.rs"]
mod common;
use common::{Result, ensure_big_repo, git, median, ms, time_git};

fn measure<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Duration, T)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f()?;
        times.push(start.elapsed());
        last = Some(v);
    }
    let v = last.ok_or("no runs")?;
    Ok((median(times), v))
}

fn bench_repo(source: &Path, runs: usize) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let repo_dir = scratch.path().join("repo.git");
    println!("\n## {}", source.display());
    // A private bare copy: packed as the source is, free to gain a commit-graph and commits.
    let status = Command::new("cp")
        .arg("-r")
        .arg(if source.join(".git").is_dir() {
            source.join(".git")
        } else {
            source.to_path_buf()
        })
        .arg(&repo_dir)
        .status()?;
    if !status.success() {
        return Err("copy failed".into());
    }
    git(&repo_dir, &["config", "core.bare", "true"])?;
    let _ = std::fs::remove_file(repo_dir.join("objects/info/commit-graph"));
    let _ = std::fs::remove_dir_all(repo_dir.join("objects/info/commit-graphs"));
    let commits: usize = git(&repo_dir, &["rev-list", "--all", "--count"])?.parse()?;
    println!("commits (rev-list --all): {commits}");

    let no_cg = ["-c", "core.commitGraph=false"];
    let log_args = [&no_cg[..], &["log", "--all", "--format=%H %P %an %at %s"]].concat();
    let revlist_args = [&no_cg[..], &["rev-list", "--all", "--parents"]].concat();
    let git_log = median(
        (0..runs)
            .map(|_| time_git(&repo_dir, &log_args))
            .collect::<Result<_>>()?,
    );
    let git_revlist = median(
        (0..runs)
            .map(|_| time_git(&repo_dir, &revlist_args))
            .collect::<Result<_>>()?,
    );
    let no_cg_opts = LoadOptions {
        use_commit_graph: false,
        scan_packs: true,
    };
    let (load, graph) = measure(runs, || {
        let repo = Repository::discover(&repo_dir)?;
        Ok(CommitGraph::load_with(&repo, no_cg_opts)?)
    })?;
    let (layout_time, layout) =
        measure(runs, || Ok(Layout::build(&graph, LayoutOptions::default())))?;
    let graph_bytes = graph.heap_bytes() - graph.summary_bytes();
    println!("| without commit-graph | git | gitcore | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| full load (topology, author, time, subject) vs `git log --all --format='%H %P %an %at %s'` | {} | {} | {:.2} |",
        ms(git_log),
        ms(load),
        load.as_secs_f64() / git_log.as_secs_f64()
    );
    println!(
        "| full load vs `git rev-list --all --parents` | {} | {} | {:.2} |",
        ms(git_revlist),
        ms(load),
        load.as_secs_f64() / git_revlist.as_secs_f64()
    );

    git(&repo_dir, &["commit-graph", "write", "--reachable"])?;
    let git_revlist_cg = median(
        (0..runs)
            .map(|_| time_git(&repo_dir, &["rev-list", "--all", "--parents"]))
            .collect::<Result<_>>()?,
    );
    let git_log_cg = median(
        (0..runs)
            .map(|_| time_git(&repo_dir, &["log", "--all", "--format=%H %P %an %at %s"]))
            .collect::<Result<_>>()?,
    );
    let (first_window, _) = measure(runs, || {
        let repo = Repository::discover(&repo_dir)?;
        let g = CommitGraph::load_topology_with(&repo, LoadOptions::default())?;
        let l = Layout::build(&g, LayoutOptions::default());
        Ok(l.window(0, 100).rows.len())
    })?;
    let (full_cg, _) = measure(runs, || {
        let repo = Repository::discover(&repo_dir)?;
        Ok(CommitGraph::load(&repo)?.len())
    })?;
    println!("\n| with commit-graph | git | gitcore | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| topology + layout + first window vs `git rev-list --all --parents` | {} | {} | {:.2} |",
        ms(git_revlist_cg),
        ms(first_window),
        first_window.as_secs_f64() / git_revlist_cg.as_secs_f64()
    );
    println!(
        "| full load (metadata filled) vs `git log --all --format=...` | {} | {} | {:.2} |",
        ms(git_log_cg),
        ms(full_cg),
        full_cg.as_secs_f64() / git_log_cg.as_secs_f64()
    );

    // One new commit on main, then reload + layout extension; repeated `runs` times.
    let repo = Repository::discover(&repo_dir)?;
    let mut graph = CommitGraph::load(&repo)?;
    let mut layout_now = Layout::build(&graph, LayoutOptions::default());
    let head_ref = git(&repo_dir, &["symbolic-ref", "HEAD"])?;
    let mut reloads = Vec::new();
    for i in 0..runs {
        let tree = git(&repo_dir, &["rev-parse", "HEAD^{tree}"])?;
        let parent = git(&repo_dir, &["rev-parse", "HEAD"])?;
        let new = git(
            &repo_dir,
            &[
                "commit-tree",
                &tree,
                "-p",
                &parent,
                "-m",
                &format!("bench {i}"),
            ],
        )?;
        git(&repo_dir, &["update-ref", &head_ref, &new])?;
        let start = Instant::now();
        let fresh = repo.refresh()?;
        let (next, delta) = graph.reload(&fresh)?;
        let next_layout = layout_now.extend(&next)?;
        reloads.push(start.elapsed());
        if delta.added.len() != 1 {
            return Err(format!("expected one added commit, got {}", delta.added.len()).into());
        }
        graph = next;
        layout_now = next_layout;
    }
    println!("\n| other | gitcore |");
    println!("| --- | --- |");
    println!(
        "| layout of the whole graph ({} rows, width {}) | {} |",
        layout.len(),
        layout.width(),
        ms(layout_time)
    );
    println!(
        "| reload + layout extension after one new commit | {} |",
        ms(median(reloads))
    );
    println!(
        "| graph heap per commit beyond subjects | {} bytes |",
        graph_bytes / graph.len().max(1)
    );
    println!(
        "| layout heap per commit | {} bytes |",
        layout.heap_bytes() / layout.len().max(1)
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo test --all-targets` runs benches in test mode: do nothing there.
    if std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let runs: usize = std::env::var("GITVISTA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repos: Vec<PathBuf> = match std::env::var("GITVISTA_BENCH_REPOS") {
        Ok(list) => list.split(':').map(PathBuf::from).collect(),
        Err(_) => vec![ensure_big_repo(&root)?, root.clone()],
    };
    for r in repos {
        bench_repo(&r, runs)?;
    }
    Ok(())
}
