//! Paste to first graph window, beside `git clone` of the same remote in the same run.
//!
//! `cargo bench --bench first_view` serves each benchmark repository from `git daemon` and from
//! `git http-backend` (protocol v2) on 127.0.0.1, with partial clones allowed as on GitHub
//! (`uploadpack.allowFilter`, `uploadpack.allowAnySHA1InWant`), and measures for each:
//! - `git clone --bare` and `git clone --bare --filter=tree:0`: wall time and disk;
//! - the release `gitvista serve` as it runs by default: from `POST /api/repos` to the first
//!   `graph` window answered from the history streaming in from the remote (the page asks as
//!   soon as the status says rows are there), to the clone on disk (`ready`), and to the clone
//!   fully hydrated (`contents: complete`), with the disk at the first and last points;
//! - the same server with `GITVISTA_STREAM_FIRST=false`: the first window from the commits-only
//!   clone (step 1 alone).
//!
//! - the clone-less reader alone (gitwire and gitcore, in this process): `ls-refs`, a
//!   commits-only fetch of every branch and tag streamed into gitcore's pack reader, made a
//!   graph in memory.
//!
//! Repositories: `bench-data/forge.git` (200,202 commits, 4,398 refs, forge-shaped; generated
//! when missing) and this project's own history, or `GITVISTA_BENCH_REPOS` (colon-separated bare
//! or non-bare repositories). `GITVISTA_BENCH_RUNS` runs of each (default 1; the table shows the
//! median). Everything binds 127.0.0.1 and every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
use common::{Result, ensure_forge_repo, git, median, paste, server_url, time_clone};

/// What one run of one remote measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    full: Duration,
    full_bytes: u64,
    treeless: Duration,
    treeless_bytes: u64,
    first_window: Duration,
    first_bytes: u64,
    first_rows: usize,
    cloned: Duration,
    clone_first: Duration,
    hydrated: Duration,
    hydrated_bytes: u64,
    whole: Duration,
    whole_commits: usize,
}

fn du(dir: &Path) -> u64 {
    gitvista_actors::clone_queue::dir_size(dir)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1 << 20) as f64)
}

fn spawn_server(data: &Path, stream_first: bool) -> Result<(Child, String)> {
    let mut child = Command::new(common::gitvista_binary())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data)
        .env("GITVISTA_ALLOWED_HOSTS", "127.0.0.1")
        .env("GITVISTA_STREAM_FIRST", stream_first.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let base = server_url(&mut child)?;
    Ok((child, base))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<(u16, serde_json::Value)> {
    let resp = client.get(url).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or_default()))
}

/// What one paste into a fresh server measured.
struct Paste {
    first_window: Duration,
    first_bytes: u64,
    first_rows: usize,
    cloned: Duration,
    hydrated: Duration,
    hydrated_bytes: u64,
}

/// Paste `url` into a fresh server (streaming first or not): time to the first graph window,
/// to the clone on disk and (with `whole`) to full hydration.
async fn gitvista_run(url: &str, data: &Path, stream_first: bool, whole: bool) -> Result<Paste> {
    let (mut child, base) = spawn_server(data, stream_first)?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let id = paste(&client, &base, url).await?;
    let limit = Instant::now() + Duration::from_secs(1800);
    // As the page does: the status until ready or rows are shown, then the first window.
    loop {
        let (_, s) = get_json(&client, &format!("{base}/api/repos/{id}/status")).await?;
        if s["rows"].as_u64().is_some_and(|r| r > 0) {
            break;
        }
        match s["state"].as_str() {
            Some("ready") => break,
            Some("error") => return Err(format!("clone failed: {s}").into()),
            _ if Instant::now() > limit => return Err("no clone in 30 min".into()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let (status, w) = get_json(&client, &format!("{base}/api/repos/{id}/graph?limit=60")).await?;
    if status != 200 || w["rows"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("no window: {status} {w}").into());
    }
    let first_window = started.elapsed();
    let first_rows = w["total"].as_u64().unwrap_or(0) as usize;
    let repo = data.join("repos").join(&id);
    let first_bytes = du(&repo);
    loop {
        let (_, s) = get_json(&client, &format!("{base}/api/repos/{id}/status")).await?;
        match s["state"].as_str() {
            Some("ready") => break,
            Some("error") => return Err(format!("clone failed: {s}").into()),
            _ if Instant::now() > limit => return Err("no clone in 30 min".into()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let cloned = started.elapsed();
    let mut hydrated = cloned;
    if whole {
        loop {
            let (_, r) = get_json(&client, &format!("{base}/api/repos/{id}/repository")).await?;
            if r["contents"] == "complete" {
                break;
            }
            if Instant::now() > limit {
                return Err("not hydrated in 30 min".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        hydrated = started.elapsed();
    }
    let hydrated_bytes = du(&repo);
    let _ = child.kill();
    let _ = child.wait();
    Ok(Paste {
        first_window,
        first_bytes,
        first_rows,
        cloned,
        hydrated,
        hydrated_bytes,
    })
}

/// The clone-less reader on `url` (git:// or http://), in this process: time until the whole
/// history of branches and tags is a graph in memory, and its commits.
fn streamed(url: &str) -> Result<(Duration, usize)> {
    use gitwire::history::{Target, stream_history};
    let started = Instant::now();
    let target = if let Some(rest) = url.strip_prefix("git://") {
        let (host, path) = rest.split_once('/').ok_or("url")?;
        Target::Daemon {
            addr: host.parse()?,
            host: "127.0.0.1".into(),
            path: format!("/{path}"),
        }
    } else {
        Target::Http {
            url: url.to_string(),
            pin: None,
        }
    };
    let history = stream_history(
        &target,
        gitwire::daemon::Limits::default(),
        gitcore::odb::stream::StreamLimits::default(),
        |_| Ok(()),
    )
    .map_err(|(e, _)| e)?;
    let graph = history.graph();
    Ok((started.elapsed(), graph.len()))
}

async fn one_run(url: &str, work: &Path) -> Result<Run> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let full = time_clone(url, &work.join("full.git"), &[])?;
    let full_bytes = du(&work.join("full.git"));
    let treeless = time_clone(url, &work.join("treeless.git"), &["--filter=tree:0"])?;
    let treeless_bytes = du(&work.join("treeless.git"));
    let _ = std::fs::remove_dir_all(work.join("full.git"));
    let _ = std::fs::remove_dir_all(work.join("treeless.git"));
    let pasted = gitvista_run(url, &work.join("data"), true, true).await?;
    let _ = std::fs::remove_dir_all(work.join("data"));
    let clone_first = gitvista_run(url, &work.join("data2"), false, false).await?;
    let (whole, whole_commits) = streamed(url)?;
    let _ = std::fs::remove_dir_all(work);
    Ok(Run {
        full,
        full_bytes,
        treeless,
        treeless_bytes,
        first_window: pasted.first_window,
        first_bytes: pasted.first_bytes,
        first_rows: pasted.first_rows,
        cloned: pasted.cloned,
        clone_first: clone_first.first_window,
        hydrated: pasted.hydrated,
        hydrated_bytes: pasted.hydrated_bytes,
        whole,
        whole_commits,
    })
}

/// The benchmark repositories, each as a bare repository the servers can export.
fn repositories(root: &Path, tmp: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let list = std::env::var("GITVISTA_BENCH_REPOS").ok();
    let paths: Vec<PathBuf> = match &list {
        Some(l) => l.split(':').map(PathBuf::from).collect(),
        None => vec![ensure_forge_repo(root)?, root.to_path_buf()],
    };
    for p in paths {
        let bare = if p.join("HEAD").is_file() && p.join("objects").is_dir() {
            p.clone()
        } else {
            // A work tree (this project): its branches and tags in a bare copy, packed as
            // git would serve them.
            let dest = tmp.join(format!(
                "{}.git",
                p.file_name().map_or("repo".into(), |n| n.to_string_lossy())
            ));
            git(
                tmp,
                &[
                    "clone",
                    "-q",
                    "--bare",
                    "--no-local",
                    p.to_str().ok_or("path")?,
                    dest.to_str().ok_or("path")?,
                ],
            )?;
            dest
        };
        // Partial clones and wants of any object, as GitHub and GitLab allow them.
        git(&bare, &["config", "uploadpack.allowFilter", "true"])?;
        git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"])?;
        // What a bare clone takes: branches and tags (not pull refs or notes).
        let commits = git(&bare, &["rev-list", "--branches", "--tags", "--count"])?;
        let name = format!(
            "{} ({commits} commits)",
            bare.file_name()
                .map_or("repo".into(), |n| n.to_string_lossy())
        );
        out.push((name, bare));
    }
    Ok(out)
}

async fn run(root: &Path) -> Result<()> {
    let runs = std::env::var("GITVISTA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let tmp = tempfile::tempdir_in(root.join("target"))?;
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve)?;
    let repos = repositories(root, tmp.path())?;
    for (_, bare) in &repos {
        let link = serve.join(bare.file_name().ok_or("name")?);
        if !link.exists() {
            std::os::unix::fs::symlink(bare, &link)?;
        }
    }
    let daemon = gitvista_testkit::git_daemon(&serve);
    let http = gitvista_testkit::git_http(&serve);
    println!(
        "| repository | remote | git clone --bare | --filter=tree:0 | GitVista first rows (streamed) | ratio | rows in it | clone on disk | first window, commits-only clone first | ratio | fully hydrated | disk: full / tree:0 / first rows / hydrated | gitwire alone: whole history in memory |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, bare) in &repos {
        let file = bare
            .file_name()
            .ok_or("name")?
            .to_string_lossy()
            .to_string();
        for (remote, url) in [
            (
                "git daemon",
                format!("git://127.0.0.1:{}/{file}", daemon.port),
            ),
            (
                "http-backend v2",
                format!("http://127.0.0.1:{}/{file}", http.port),
            ),
        ] {
            let mut all = Vec::new();
            for _ in 0..runs {
                all.push(one_run(&url, &tmp.path().join("work")).await?);
            }
            let m = |f: fn(&Run) -> Duration| median(all.iter().map(f).collect());
            let last = all.last().ok_or("no run")?;
            let (full, first) = (m(|r| r.full), m(|r| r.first_window));
            let clone_first = m(|r| r.clone_first);
            println!(
                "| {name} | {remote} | {} | {} | {} | {:.3}x | {} | {} | {} | {:.3}x | {} | {} / {} / {} / {} | {} ({} commits) |",
                secs(full),
                secs(m(|r| r.treeless)),
                secs(first),
                first.as_secs_f64() / full.as_secs_f64(),
                last.first_rows,
                secs(m(|r| r.cloned)),
                secs(clone_first),
                clone_first.as_secs_f64() / full.as_secs_f64(),
                secs(m(|r| r.hydrated)),
                mib(last.full_bytes),
                mib(last.treeless_bytes),
                mib(last.first_bytes),
                mib(last.hydrated_bytes),
                secs(m(|r| r.whole)),
                last.whole_commits,
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    common::run_async_bench(|root| async move { run(&root).await })
}
