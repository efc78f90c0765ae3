//! Reading 10,000 refs: reftable against packed-refs, side by side in one run, with
//! `git for-each-ref` on each as the peer.
//!
//! `cargo bench --bench refs_load` builds one small history and the same 10,000 refs shaped like
//! a forge mirror's (a third branches, a third tags, half of them annotated, a third
//! `refs/pull/N/head`) three ways: files with every ref in `packed-refs` (`git pack-refs --all`),
//! a reftable stack compacted into one table (`git pack-refs`), and a stack of 20 tables as
//! twenty pushes leave it. Each figure is the median of `GITVISTA_BENCH_RUNS` (default 21) reads
//! of every ref, HEAD and the stash (`RefSnapshot::read`, what a reload does).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitcore::repo::Repository;

#[path = "common/mod.rs"]
mod common;
use common::{Result, git, git_median, median, ms};

const REFS: usize = 10_000;

/// `git update-ref --stdin` with `commands` in `repo`, autocompaction as `compact` says.
fn update_refs(repo: &Path, commands: &str, compact: bool) -> Result<()> {
    let mut child = Command::new("git")
        .args(["update-ref", "--stdin"])
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env(
            "GIT_TEST_REFTABLE_AUTOCOMPACTION",
            if compact { "true" } else { "false" },
        )
        .stdin(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(commands.as_bytes())?;
    if !child.wait()?.success() {
        return Err("git update-ref --stdin failed".into());
    }
    Ok(())
}

/// A repository in `root/name` with `format` refs: 50 commits, an annotated tag object per
/// commit, then the 10,000 refs in `batches` transactions.
fn build(root: &Path, name: &str, format: &str, batches: usize) -> Result<PathBuf> {
    let repo = root.join(name);
    let _ = std::fs::remove_dir_all(&repo);
    git(
        root,
        &[
            "init",
            "-q",
            "-b",
            "main",
            &format!("--ref-format={format}"),
            name,
        ],
    )?;
    let mut commits = Vec::new();
    let mut tags = Vec::new();
    for i in 0..50 {
        git(
            &repo,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("commit {i}"),
            ],
        )?;
        commits.push(git(&repo, &["rev-parse", "HEAD"])?);
        git(&repo, &["tag", "-a", "-m", "t", &format!("anchor-{i}")])?;
        tags.push(git(&repo, &["rev-parse", &format!("anchor-{i}")])?);
    }
    let per = REFS.div_ceil(batches);
    for b in 0..batches {
        let mut cmds = String::new();
        for i in b * per..((b + 1) * per).min(REFS) {
            let c = &commits[i % commits.len()];
            let line = match i % 3 {
                0 => format!("create refs/heads/topic/{i:05} {c}\n"),
                1 if i % 2 == 0 => {
                    format!("create refs/tags/v{i:05} {}\n", tags[i % tags.len()])
                }
                1 => format!("create refs/tags/v{i:05} {c}\n"),
                _ => format!("create refs/pull/{i}/head {c}\n"),
            };
            cmds.push_str(&line);
        }
        update_refs(&repo, &cmds, batches == 1)?;
    }
    Ok(repo)
}

fn read_median(repo: &Path, runs: usize) -> Result<(Duration, usize)> {
    let r = Repository::discover(repo)?;
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let snap = r.refs();
        times.push(start.elapsed());
        n = snap.refs.len();
        if !snap.problems.is_empty() {
            return Err(format!("{}: {:?}", repo.display(), snap.problems).into());
        }
    }
    Ok((median(times), n))
}

fn main() -> Result<()> {
    if !common::benchmarking() {
        return Ok(());
    }
    let runs: usize = std::env::var("GITVISTA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let tmp = std::env::temp_dir().join(format!("gitvista-refs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let packed = build(&tmp, "packed", "files", 1)?;
    git(&packed, &["pack-refs", "--all"])?;
    let table = build(&tmp, "reftable", "reftable", 1)?;
    git(&table, &["pack-refs"])?;
    let stack = build(&tmp, "stack", "reftable", 20)?;
    println!("reading {REFS} refs (+50 anchors), median of {runs} (2 cores)");
    println!(
        "{:<34} {:>10} {:>8} {:>22}",
        "refs in", "gitcore", "refs", "git for-each-ref"
    );
    let mut base = None;
    for (what, repo) in [
        ("packed-refs", &packed),
        ("reftable, one table", &table),
        ("reftable, a stack of 20 tables", &stack),
    ] {
        let (t, n) = read_median(repo, runs)?;
        let peer = git_median(
            repo,
            &["for-each-ref", "--format=%(objectname) %(refname)"],
            runs,
        )?;
        let ratio = base.map_or(String::new(), |b: Duration| {
            format!(" ({:.2}x packed-refs)", t.as_secs_f64() / b.as_secs_f64())
        });
        base.get_or_insert(t);
        println!("{what:<34} {:>10} {n:>8} {:>22}{ratio}", ms(t), ms(peer));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
