//! A million-commit history streamed from its remote: memory held per commit and first rows,
//! beside git's own commits-only clone of the same remote in the same run.
//!
//! `cargo bench --bench stream_memory` serves `bench-data/huge.git` (1,000,000 commits over 150
//! branches, `scripts/gen-bench-repo bench-data/huge.git 1000000 150 --commits-only`, generated
//! when missing; `GITVISTA_BENCH_REPOS` names others, colon-separated bare repositories) from
//! `git daemon` on 127.0.0.1 and measures:
//! - git: `git clone --bare --filter=tree:0` (wall time, and its pack's bytes per commit);
//! - gitwire alone, in a process of its own, with the server's default budget (512 MiB held):
//!   the first commit, the whole history in memory, the bytes it holds per commit, the graph
//!   made of it, and the process's peak resident set while streaming and with the graph;
//! - the release `gitvista serve` as it runs by default: from `POST /api/repos` to the first
//!   graph window, the most rows the stream showed before the clone landed (all of them: the
//!   history streamed whole), the clone landed, and the server's peak resident set.
//!
//! Everything binds 127.0.0.1 and every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
use common::{Result, git, paste, rss_kib, server_url, time_clone};

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `bench-data/huge.git`, generated when missing (about two minutes).
fn ensure_huge_repo(root: &Path) -> Result<PathBuf> {
    let huge = root.join("bench-data/huge.git");
    if !huge.exists() {
        let status = Command::new(root.join("scripts/gen-bench-repo"))
            .arg(&huge)
            .args(["1000000", "150", "--commits-only"])
            .status()?;
        if !status.success() {
            return Err("scripts/gen-bench-repo failed".into());
        }
    }
    Ok(huge)
}

/// `git clone --bare --filter=tree:0`: wall time and the bytes of the packs it wrote.
fn git_treeless(url: &str, dest: &Path) -> Result<(Duration, u64)> {
    let took = time_clone(url, dest, &["--filter=tree:0"])?;
    let mut packs = 0;
    for e in std::fs::read_dir(dest.join("objects/pack"))? {
        let e = e?;
        if e.path().extension().is_some_and(|x| x == "pack") {
            packs += e.metadata()?.len();
        }
    }
    Ok((took, packs))
}

/// What gitwire alone measured (in a process of its own, so its peak resident set is its
/// own and not what the allocator kept of a repository measured before).
#[derive(serde::Serialize, serde::Deserialize)]
struct Alone {
    first: Duration,
    whole: Duration,
    commits: usize,
    held: usize,
    graph: Duration,
    rows: usize,
    streaming_peak_kib: u64,
    peak_rss_kib: u64,
    stopped: Option<String>,
}

fn gitwire_alone(port: u16, path: &str) -> Result<Alone> {
    use gitwire::history::{Target, stream_history};
    let target = Target::Daemon {
        addr: ([127, 0, 0, 1], port).into(),
        host: "127.0.0.1".into(),
        path: path.to_string(),
    };
    let started = Instant::now();
    let mut first = None;
    let streamed = stream_history(
        &target,
        gitwire::daemon::Limits::default(),
        // The server's default budget (`stream_max_bytes`).
        gitcore::odb::stream::StreamLimits::for_memory(512 << 20),
        |h| {
            if first.is_none() && h.commits() > 0 {
                first = Some(started.elapsed());
            }
            Ok(())
        },
    );
    let whole = started.elapsed();
    // A stream stopped by the budget still shows what came.
    let (history, stopped) = match streamed {
        Ok(h) => (h, None),
        Err((e, Some(kept))) => (*kept, Some(e.to_string())),
        Err((e, None)) => return Err(e.into()),
    };
    let streaming_peak = rss_kib(std::process::id()).1;
    let graph = history.graph();
    Ok(Alone {
        streaming_peak_kib: streaming_peak,
        first: first.unwrap_or(whole),
        whole,
        commits: history.commits(),
        held: history.held_bytes(),
        graph: started.elapsed() - whole,
        rows: graph.len(),
        peak_rss_kib: rss_kib(std::process::id()).1,
        stopped,
    })
}

/// What the server measured.
struct Served {
    first_window: Duration,
    first_rows: u64,
    most_streamed: u64,
    cloned: Duration,
    peak_rss_kib: u64,
}

async fn served(url: &str, data: &Path) -> Result<Served> {
    let mut child = Command::new(common::gitvista_binary())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data)
        .env("GITVISTA_ALLOWED_HOSTS", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let base = server_url(&mut child)?;
    let pid = child.id();
    let client = reqwest::Client::new();
    let status = |id: String| {
        let client = client.clone();
        let url = format!("{base}/api/repos/{id}/status");
        async move {
            let s: serde_json::Value = client.get(url).send().await?.json().await?;
            Result::Ok(s)
        }
    };
    let started = Instant::now();
    let id = paste(&client, &base, url).await?;
    let limit = started + Duration::from_secs(1800);
    let mut first = None;
    let mut most = 0;
    let cloned = loop {
        let s = status(id.clone()).await?;
        let rows = s["rows"].as_u64().unwrap_or(0);
        most = most.max(rows);
        if first.is_none() && rows > 0 {
            let w: serde_json::Value = client
                .get(format!("{base}/api/repos/{id}/graph?limit=60"))
                .send()
                .await?
                .json()
                .await?;
            if w["rows"].as_array().is_some_and(|r| !r.is_empty()) {
                first = Some((started.elapsed(), w["total"].as_u64().unwrap_or(0)));
            }
        }
        match s["state"].as_str() {
            Some("ready") => break started.elapsed(),
            Some("error") => return Err(format!("clone failed: {s}").into()),
            _ if Instant::now() > limit => return Err("no clone in 30 min".into()),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let (_, peak, _) = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let (first_window, first_rows) = first.unwrap_or((cloned, 0));
    Ok(Served {
        first_window,
        first_rows,
        most_streamed: most,
        cloned,
        peak_rss_kib: peak,
    })
}

async fn run(root: &Path) -> Result<()> {
    let repos: Vec<PathBuf> = match std::env::var("GITVISTA_BENCH_REPOS") {
        Ok(list) => list.split(':').map(PathBuf::from).collect(),
        Err(_) => vec![ensure_huge_repo(root)?],
    };
    let tmp = tempfile::tempdir_in(root.join("target"))?;
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve)?;
    for bare in &repos {
        git(bare, &["config", "uploadpack.allowFilter", "true"])?;
        std::os::unix::fs::symlink(bare, serve.join(bare.file_name().ok_or("name")?))?;
    }
    let daemon = gitvista_testkit::git_daemon(&serve);
    println!(
        "| repository | `git clone --bare --filter=tree:0` | its pack per commit | gitwire: first commit | whole history in memory | held per commit | graph of it | peak RSS: streaming / with the graph | `gitvista serve`: first window (rows) | most rows streamed before the clone | clone landed | server peak RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for bare in &repos {
        let file = bare
            .file_name()
            .ok_or("name")?
            .to_string_lossy()
            .to_string();
        let commits: u64 = git(bare, &["rev-list", "--branches", "--tags", "--count"])?.parse()?;
        let url = format!("git://127.0.0.1:{}/{file}", daemon.port);
        let (treeless, pack) = git_treeless(&url, &tmp.path().join("treeless.git"))?;
        let _ = std::fs::remove_dir_all(tmp.path().join("treeless.git"));
        let alone = alone_in_a_process(daemon.port, &format!("/{file}"))?;
        if let Some(e) = &alone.stopped {
            eprintln!("{file}: the stream stopped: {e}");
        }
        let s = served(&url, &tmp.path().join("data")).await?;
        let _ = std::fs::remove_dir_all(tmp.path().join("data"));
        println!(
            "| {file} ({commits} commits) | {} | {} bytes | {} | {} ({} commits{}) | {} bytes | {} ({} rows) | {} / {} MiB | {} ({}) | {} | {} | {} MiB |",
            secs(treeless),
            pack / commits.max(1),
            secs(alone.first),
            secs(alone.whole),
            alone.commits,
            if alone.stopped.is_some() {
                ", stopped"
            } else {
                ""
            },
            alone.held / alone.commits.max(1),
            secs(alone.graph),
            alone.rows,
            alone.streaming_peak_kib / 1024,
            alone.peak_rss_kib / 1024,
            secs(s.first_window),
            s.first_rows,
            s.most_streamed,
            secs(s.cloned),
            s.peak_rss_kib / 1024,
        );
    }
    Ok(())
}

/// [`gitwire_alone`] in a new process of this benchmark (`--gitwire-alone PORT PATH`).
fn alone_in_a_process(port: u16, path: &str) -> Result<Alone> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--bench", "--gitwire-alone", &port.to_string(), path])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("gitwire alone on {path} failed").into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--gitwire-alone") {
        let (port, path) = (args[i + 1].parse()?, &args[i + 2]);
        println!("{}", serde_json::to_string(&gitwire_alone(port, path)?)?);
        return Ok(());
    }
    common::run_async_bench(|root| async move { run(&root).await })
}
