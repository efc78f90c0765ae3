//! gitcore against the git CLI, side by side in one run, on the same repositories.
//!
//! `cargo bench --bench gitcore_load` measures, for each repository (a generated one under
//! bench-data/, made by `scripts/gen-bench-repo` when missing, and the project's own history):
//! full graph load against `git log --all --format=...` without a commit-graph; topology plus
//! layout (the first window ready) against `git rev-list --all --parents` with a commit-graph;
//! the whole-graph layout; a reload after one new commit; heap bytes per commit. Every figure is
//! the median of several runs. `GITVISTA_BENCH_REPOS` (colon-separated paths) replaces the list;
//! `GITVISTA_BENCH_RUNS` sets the number of runs (default 5).

use std::path::Path;
use std::process::Command;

use std::time::{Duration, Instant};

use gitcore::graph::{CommitGraph, LoadOptions};
use gitcore::layout::{Layout, LayoutOptions};
use gitcore::repo::Repository;

#[path = "common/mod.rs"]
mod common;
use common::{Result, git, git_median, median, ms, repo_shape, rss_kib, time_git};

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

/// Set in a child process of the benchmark: `gitcore:DIR` loads DIR once, `git:DIR` runs
/// `git log --all --format=...` in DIR once; either prints its peak resident set (KiB), its CPU
/// time and its wall time (ms).
const PEAK_CHILD: &str = "GITVISTA_BENCH_PEAK_CHILD";

fn peak_child(spec: &str) -> Result<()> {
    use nix::sys::resource::{UsageWho, getrusage};
    let (what, dir) = spec.split_once(':').ok_or("bad spec")?;
    let start = Instant::now();
    let (peak, cpu) = match what {
        "gitcore" => {
            let repo = Repository::discover(Path::new(dir))?;
            let opts = LoadOptions {
                use_commit_graph: false,
                scan_packs: true,
            };
            let graph = CommitGraph::load_with(&repo, opts)?;
            std::hint::black_box(graph.len());
            let (_, hwm, _) = rss_kib(std::process::id());
            let u = getrusage(UsageWho::RUSAGE_SELF)?;
            (hwm, u.user_time() + u.system_time())
        }
        "git" => {
            time_git(
                Path::new(dir),
                &[
                    "-c",
                    "core.commitGraph=false",
                    "log",
                    "--all",
                    "--format=%H %P %an %at %s",
                ],
            )?;
            let u = getrusage(UsageWho::RUSAGE_CHILDREN)?;
            (u.max_rss() as u64, u.user_time() + u.system_time())
        }
        _ => return Err("bad spec".into()),
    };
    let cpu_ms = cpu.tv_sec() as f64 * 1000.0 + cpu.tv_usec() as f64 / 1000.0;
    println!(
        "{peak} {cpu_ms:.1} {:.1}",
        start.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// (peak KiB, CPU ms, wall ms) of one load in a fresh process, the median run by wall time.
fn peak_of(what: &str, dir: &Path, runs: usize) -> Result<(u64, f64, f64)> {
    let mut results = Vec::new();
    for _ in 0..runs {
        let out = Command::new(std::env::current_exe()?)
            .env(PEAK_CHILD, format!("{what}:{}", dir.display()))
            .output()?;
        if !out.status.success() {
            return Err(format!("{what} child: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() != 3 {
            return Err(format!("{what} child printed {text:?}").into());
        }
        results.push((f[0] as u64, f[1], f[2]));
    }
    results.sort_by(|a, b| a.2.total_cmp(&b.2));
    Ok(results[results.len() / 2])
}

/// What `gitvista open` does before the first rows show: the session's load (topology first
/// with a commit-graph), the layout, and the first 100 rows' authors and subjects. Returns the
/// median time and the commit-graph hint of the last run.
fn open_first_view(
    repo_dir: &Path,
    runs: usize,
) -> Result<(Duration, Option<gitvista_actors::snapshot::CommitGraphHint>)> {
    measure(runs, || {
        let snap = gitvista_actors::Snapshot::load(
            repo_dir,
            std::sync::Arc::default(),
            Some(Duration::ZERO),
            gitcore::mailmap::UserConfig::Ignore,
        )?;
        let rows: Vec<_> = snap
            .layout
            .window(0, 100)
            .rows
            .iter()
            .map(|r| r.commit)
            .collect();
        let shown = snap.graph.summaries(&snap.repo, &rows);
        std::hint::black_box(shown);
        Ok(snap.commit_graph_hint.clone())
    })
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
    println!("shape: {}", repo_shape(&repo_dir)?);

    let no_cg = ["-c", "core.commitGraph=false"];
    let log_args = [&no_cg[..], &["log", "--all", "--format=%H %P %an %at %s"]].concat();
    let revlist_args = [&no_cg[..], &["rev-list", "--all", "--parents"]].concat();
    let git_log = git_median(&repo_dir, &log_args, runs)?;
    let git_revlist = git_median(&repo_dir, &revlist_args, runs)?;
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
    // "Only matches" of a broad search: every hit drawn to its nearest hits, without the
    // edges another hit's path already says.
    let broad = "fix";
    let hits = {
        let repo = Repository::discover(&repo_dir)?;
        let query = gitcore::search::Query::parse(broad, 0)?;
        gitcore::search::search(repo.odb(), &graph, &query)?
    };
    let (matches_time, matches) = measure(runs, || {
        let subset = gitcore::layout::Subset::new(broad, graph.len(), hits.iter().copied());
        Ok(Layout::build(
            &graph,
            LayoutOptions {
                subset: Some(subset),
                ..LayoutOptions::default()
            },
        ))
    })?;
    let matches_edges = matches
        .window(0, matches.len())
        .rows
        .iter()
        .map(|r| r.edges.len())
        .max()
        .unwrap_or(0);
    // Peak memory and CPU of one load each, in fresh processes.
    let (git_peak, git_cpu, git_wall) = peak_of("git", &repo_dir, runs)?;
    let (gc_peak, gc_cpu, gc_wall) = peak_of("gitcore", &repo_dir, runs)?;
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
    println!(
        "| peak resident set of the load (fresh process) | {} MiB | {} MiB | {:.2} |",
        git_peak / 1024,
        gc_peak / 1024,
        gc_peak as f64 / git_peak.max(1) as f64
    );
    println!(
        "| CPU time / wall time of the load (fresh process) | {:.2} | {:.2} | |",
        git_cpu / git_wall,
        gc_cpu / gc_wall
    );

    // `path:` against git, before and after changed-path filters exist.
    let files = git(&repo_dir, &["ls-tree", "-r", "--name-only", "HEAD"])?;
    let files: Vec<&str> = files.lines().collect();
    let file = files.get(files.len() / 2).copied().unwrap_or("README.md");
    let dir = file.rsplit_once('/').map_or(file, |(d, _)| d).to_string();
    let path_rows = |label: &str| -> Result<()> {
        for p in [file, dir.as_str()] {
            let repo = Repository::discover(&repo_dir)?;
            let query = gitcore::search::Query::parse(&format!("fullpath:\"{p}\""), 0)?;
            let (ours, hits) = measure(runs, || {
                Ok(gitcore::search::search(repo.odb(), &graph, &query)?.len())
            })?;
            let full = git_median(
                &repo_dir,
                &["rev-list", "--all", "--full-history", "--", p],
                runs,
            )?;
            let simple = git_median(&repo_dir, &["rev-list", "--all", "--", p], runs)?;
            println!(
                "| `fullpath:{p}` ({hits} commits), {label}, vs `git rev-list --all --full-history -- path` | {} | {} | {:.2} |",
                ms(full),
                ms(ours),
                ours.as_secs_f64() / full.as_secs_f64()
            );
            let query = gitcore::search::Query::parse(&format!("path:\"{p}\""), 0)?;
            let (simplified, hits) = measure(runs, || {
                Ok(gitcore::search::search(repo.odb(), &graph, &query)?.len())
            })?;
            println!(
                "| `path:{p}` ({hits} commits, git's history simplification), {label}, vs `git rev-list --all -- path` | {} | {} | {:.2} |",
                ms(simple),
                ms(simplified),
                simplified.as_secs_f64() / simple.as_secs_f64()
            );
        }
        Ok(())
    };
    path_rows("no commit-graph")?;
    // Blame of the same file at HEAD against git's: every parent (git's default), then first
    // parents only.
    let head =
        gitcore::ObjectId::from_hex(git(&repo_dir, &["rev-parse", "HEAD"])?.trim().as_bytes())
            .ok_or("HEAD is not an id")?;
    for first_parent in [false, true] {
        let (ours, lines) = measure(runs, || {
            let repo = Repository::discover(&repo_dir)?;
            let options = gitcore::blame::BlameOptions {
                first_parent,
                ..gitcore::blame::BlameOptions::default()
            };
            let b = gitcore::blame::blame(&repo, head, file, options)?;
            Ok(b.lines.len())
        })?;
        let mut args = vec!["blame", "--porcelain", "HEAD", "--", file];
        if first_parent {
            args.insert(1, "--first-parent");
        }
        let theirs = git_median(&repo_dir, &args, runs)?;
        println!(
            "| blame of `{file}` at HEAD ({lines} lines) vs `git {}` | {} | {} | {:.2} |",
            args[..2].join(" "),
            ms(theirs),
            ms(ours),
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    let (open_no_cg, hint) = open_first_view(&repo_dir, runs)?;
    git(
        &repo_dir,
        &["commit-graph", "write", "--reachable", "--changed-paths"],
    )?;
    path_rows("commit-graph with changed-path filters")?;
    let (open_cg, _) = open_first_view(&repo_dir, runs)?;
    let hint = hint.ok_or("no commit-graph hint without a commit-graph")?;
    println!(
        "\n| `gitvista open` first view (session load, layout, first 100 rows) | no commit-graph | with commit-graph | faster |"
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| measured | {} | {} | {:.1}x |",
        ms(open_no_cg),
        ms(open_cg),
        open_no_cg.as_secs_f64() / open_cg.as_secs_f64()
    );
    println!(
        "| what the hint said (from the load without: its decoding share) | {} | {} | {:.1}x |",
        ms(hint.first_view),
        ms(hint.estimate()),
        hint.speedup()
    );
    let git_revlist_cg = git_median(&repo_dir, &["rev-list", "--all", "--parents"], runs)?;
    let git_log_cg = git_median(
        &repo_dir,
        &["log", "--all", "--format=%H %P %an %at %s"],
        runs,
    )?;
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
    // What an idle session pays per check: has anything it reads changed?
    let stamp = repo.change_stamp();
    let mut checks = Vec::new();
    for _ in 0..(runs * 20) {
        let start = Instant::now();
        let same = repo.change_stamp() == stamp;
        checks.push(start.elapsed());
        std::hint::black_box(same);
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
        "| layout of only the matches of `{broad}` ({} rows, width {}, at most {matches_edges} edges a row) | {} |",
        matches.len(),
        matches.width(),
        ms(matches_time)
    );
    println!(
        "| reload + layout extension after one new commit | {} |",
        ms(median(reloads))
    );
    println!(
        "| no-change check of a reload (stat data of HEAD, refs, packed-refs, packs) | {:.3} ms |",
        median(checks).as_secs_f64() * 1000.0
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
    if let Ok(spec) = std::env::var(PEAK_CHILD) {
        return peak_child(&spec);
    }
    // `cargo test --all-targets` runs benches in test mode: do nothing there.
    if !common::benchmarking() {
        return Ok(());
    }
    let (runs, repos) = common::runs_and_repos(5)?;
    for r in repos {
        bench_repo(&r, runs)?;
    }
    Ok(())
}
