//! Running git: the hardened command, the pinned target and credential of a job, the disk cap
//! and the timeout enforced on the process group, progress read from stderr, and the job's steps
//! (clone, fetch, deepen, hydrate, maintenance) into a temporary directory renamed on success.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use actix::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use super::*;
use crate::ids::RepoId;

/// The global git configuration the server owns: nothing a user's or the system's configuration
/// could add, no hooks, no redirects, no credential helpers. Fetched objects always stay packed
/// (`unpackLimit = 1`: packs read faster than thousands of loose files, and the repack job
/// merges them), and fetches extend the commit-graph.
pub(super) const GITCONFIG: &str = "[core]\n\thooksPath = /dev/null\n\tfsmonitor = false\n[http]\n\tfollowRedirects = false\n[credential]\n\thelper =\n[protocol]\n\tallow = never\n[protocol \"https\"]\n\tallow = always\n[transfer]\n\tfsckObjects = false\n\tunpackLimit = 1\n[gc]\n\tauto = 0\n[fetch]\n\twriteCommitGraph = true\n";

/// A git command with the hardened environment, in the repository `repo` (named explicitly
/// with `--git-dir`, as git 3.0's `safe.bareRepository = explicit` requires of a bare one), or
/// in the data directory for a command that makes a repository (a clone).
pub(super) fn git_command(config: &CloneConfig, repo: Option<&Path>) -> tokio::process::Command {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let mut cmd = tokio::process::Command::new(program_path(&config.git, &path));
    if let Some(repo) = repo {
        cmd.arg("--git-dir").arg(repo);
    }
    cmd.current_dir(repo.unwrap_or(&config.data_dir))
        .env_clear()
        .env("PATH", &path)
        .env("HOME", config.data_dir.join("git-home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", config.data_dir.join("gitconfig"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes",
        )
        .env("GIT_ALLOW_PROTOCOL", config.protocols.join(":"))
        .env("GIT_NO_LAZY_FETCH", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // protocol.<name>.allow for the extra protocols the operator allowed (http/git/ssh for
    // allowlisted hosts); the URL itself was checked before it got here.
    for p in &config.protocols {
        cmd.arg("-c").arg(format!("protocol.{p}.allow=always"));
    }
    // curl gives up on a transfer slower than this (http and https).
    cmd.arg("-c")
        .arg(format!("http.lowSpeedLimit={}", config.low_speed_limit))
        .arg("-c")
        .arg(format!(
            "http.lowSpeedTime={}",
            config.low_speed_time.as_secs().max(1)
        ));
    cmd
}

/// `program` as a path: a bare name (`git`) is looked up in `path` here, as the child would.
///
/// The standard library spawns a command whose environment sets `PATH` with fork+exec unless
/// its program is a path (posix_spawn would search the parent's `PATH`). A fork copies the
/// server's page tables and file table (hundreds of MiB and a socket per viewer) and turns every
/// page the server writes next into a copy-on-write fault: with 10,000 viewers, each fetch's
/// `git` cost the broadcast that followed it tens of milliseconds. posix_spawn (vfork-like in
/// glibc) copies nothing.
fn program_path(program: &Path, path: &std::ffi::OsStr) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        return program.to_path_buf();
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        // Not found: the spawn says so, as it would have.
        .unwrap_or_else(|| program.to_path_buf())
}

/// Bytes of the files under `dir` (what a clone occupies on disk).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Parses one progress line: "Receiving objects:  72% (1450/2013), 1.2 MiB | 3 MiB/s".
pub fn parse_progress(line: &str) -> Option<(String, Option<u8>)> {
    let line = line.trim().trim_start_matches("remote:").trim();
    let (phase, rest) = line.split_once(':')?;
    if phase.is_empty()
        || phase.len() > 40
        || !phase.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
        || matches!(phase, "fatal" | "error" | "warning" | "hint")
    {
        return None;
    }
    let percent = rest
        .trim()
        .split_once('%')
        .and_then(|(p, _)| p.trim().parse::<u8>().ok())
        .filter(|p| *p <= 100);
    Some((phase.to_string(), percent))
}

pub(super) fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Runs one job to its end. Answers the job's repository id with the outcome.
pub(super) async fn run_job(
    config: &CloneConfig,
    id: &RepoId,
    kind: &JobKind,
    progress: &[Recipient<JobProgress>],
    cancelled: oneshot::Receiver<()>,
) -> (RepoId, Result<(), JobError>) {
    use tracing::Instrument;
    let span = tracing::info_span!("git_job", repo = %id, kind = kind.name());
    let started = std::time::Instant::now();
    let result = run_job_inner(config, id, kind, progress, cancelled)
        .instrument(span.clone())
        .await;
    let _enter = span.enter();
    metrics::histogram!("gitvista_git_job_seconds", "kind" => kind.name())
        .record(started.elapsed().as_secs_f64());
    let ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(()) => tracing::info!(ms, "git job done"),
        // The caller clones again in another shape: nothing failed, nothing to alert on.
        Err(e) if e.is_fallback() => {
            metrics::counter!("gitvista_git_job_fallbacks_total", "kind" => kind.name(), "reason" => e.fallback_reason()).increment(1);
            tracing::info!(
                ms,
                reason = e.fallback_reason(),
                "git job ended early: {e}; another shape follows"
            );
        }
        Err(e) => {
            metrics::counter!("gitvista_git_job_failures_total", "kind" => kind.name())
                .increment(1);
            tracing::warn!(ms, class = e.class().code(), error = %e, "git job failed")
        }
    }
    (id.clone(), result)
}

/// [`git_command`] with `to`'s pinning settings (`-c name=value`) before the subcommand, and
/// the job's credential, if any, in the environment.
pub(super) fn pinned_git_command(
    config: &CloneConfig,
    repo: Option<&Path>,
    to: &GitTarget,
    credential: Option<&Credential>,
) -> tokio::process::Command {
    let mut cmd = git_command(config, repo);
    for c in &to.config {
        cmd.arg("-c").arg(c);
    }
    if let Some(c) = credential {
        // git reads GIT_CONFIG_COUNT/KEY_n/VALUE_n as command-line configuration that no
        // process listing shows; the header goes to the one remote this job talks to
        // (redirects are off in the server's gitconfig).
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", c.header.as_str());
    }
    cmd
}

/// [`pinned_git_command`] for a job that names the remote `origin` (whose URL is `url`), so a
/// partial clone's fetch goes to its promisor remote: its filter applies and the pack is marked
/// a promisor pack (fetched by URL, new commits' trees would be checked for blobs the clone
/// never had, and the fetch would fail). `url.<pinned>.insteadOf` sends git to the address just
/// checked.
pub(super) fn origin_git_command(
    config: &CloneConfig,
    repo: &Path,
    url: &str,
    to: &GitTarget,
    credential: Option<&Credential>,
) -> tokio::process::Command {
    let mut cmd = pinned_git_command(config, Some(repo), to, credential);
    cmd.arg("-c").arg(format!("url.{}.insteadOf={url}", to.url));
    cmd
}

/// The credential for a job on `id` that reaches its remote.
pub(super) async fn credential(
    config: &CloneConfig,
    id: &RepoId,
) -> Result<Option<Credential>, JobError> {
    match &config.credentials {
        None => Ok(None),
        Some(lookup) => (lookup.0)(id.clone()).await.map_err(JobError::NoCredential),
    }
}

/// The URL a cloned repository fetches from (`remote.origin.url`, the canonical URL).
pub(super) async fn origin_url(config: &CloneConfig, repo: &Path) -> Result<String, JobError> {
    let mut cmd = git_command(config, Some(repo));
    cmd.args(["config", "--local", "--get", "remote.origin.url"])
        .stdout(Stdio::piped());
    let out = cmd
        .output()
        .await
        .map_err(|e| JobError::Io(format!("cannot run git: {e}")))?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if url.is_empty() {
        return Err(JobError::Io("the clone has no remote URL".into()));
    }
    Ok(url)
}

/// Checks `url` with the configured policy (resolving its host now, off the async threads) and
/// answers where git may connect.
pub(super) async fn target(config: &CloneConfig, url: &str) -> Result<GitTarget, JobError> {
    let Some(check) = config.target.clone() else {
        return Ok(GitTarget {
            url: url.to_string(),
            config: Vec::new(),
        });
    };
    let url = url.to_string();
    tokio::task::spawn_blocking(move || (check.0)(&url))
        .await
        .map_err(|e| JobError::Io(e.to_string()))?
        .map_err(JobError::Refused)
}

/// What a killed or failed fetch leaves in a live repository: temporary packs and indexes, lock
/// files (a later fetch would fail on them, and they count against the size cap).
pub fn remove_debris(repo: &Path) {
    let pack = repo.join("objects").join("pack");
    if let Ok(rd) = std::fs::read_dir(&pack) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("tmp_") || name.starts_with(".tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(repo.join("objects")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("tmp_obj_") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // A killed commit-graph or multi-pack-index write leaves its lock and temporary files.
    for dir in [
        repo.join("objects").join("info"),
        repo.join("objects").join("info").join("commit-graphs"),
        pack.clone(),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".lock") || name.starts_with("tmp_") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                // Objects hold no lock files; skip the big directory.
                if e.file_name() != "objects" {
                    stack.push(e.path());
                }
            } else if e.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

pub(super) async fn run_job_inner(
    config: &CloneConfig,
    id: &RepoId,
    kind: &JobKind,
    progress: &[Recipient<JobProgress>],
    cancelled: oneshot::Receiver<()>,
) -> Result<(), JobError> {
    // Resolves only when fired: a sender dropped unfired (the queue stopping) cancels nothing.
    let cancelled = async move {
        if cancelled.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(cancelled);
    let final_dir = config.repo_dir(id);
    let tmp_dir = || {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        config
            .data_dir
            .join("tmp")
            .join(format!("{}-{}-{n}", id.as_str(), std::process::id()))
    };
    let (mut cmd, work_dir, timeout, canonical) = match kind {
        JobKind::Clone { url, depth, shape } => {
            let tmp = tmp_dir();
            let to = target(config, url).await?;
            let credential = credential(config, id).await?;
            let mut cmd = pinned_git_command(config, None, &to, credential.as_ref());
            cmd.args(["clone", "--bare", "--progress", "--no-local"]);
            match shape {
                CloneShape::CommitsOnly => {
                    cmd.arg("--filter=tree:0");
                }
                CloneShape::NoBlobs => {
                    cmd.arg("--filter=blob:none");
                }
                // No filter at all (a server that does not filter would ignore one, yet git
                // would still record the clone as partial).
                CloneShape::Everything => {
                    if let Some(d) = depth {
                        // `--depth` alone implies `--single-branch`: every branch is wanted.
                        cmd.arg(format!("--depth={d}")).arg("--no-single-branch");
                    }
                }
            }
            cmd.arg("--").arg(&to.url).arg(&tmp);
            (cmd, tmp, config.clone_timeout, Some(url.clone()))
        }
        JobKind::Hydrate { blobs } => {
            if !final_dir.join("HEAD").is_file() {
                return Err(JobError::NotCloned(id.clone()));
            }
            let tmp = tmp_dir();
            let url = origin_url(config, &final_dir).await?;
            let to = target(config, &url).await?;
            let credential = credential(config, id).await?;
            let mut cmd = pinned_git_command(config, None, &to, credential.as_ref());
            cmd.args(["clone", "--bare", "--progress", "--no-local"]);
            if !blobs {
                cmd.arg("--filter=blob:none");
            }
            cmd.arg("--").arg(&to.url).arg(&tmp);
            (cmd, tmp, config.clone_timeout, Some(url))
        }
        JobKind::Objects { ids } => {
            if !final_dir.join("HEAD").is_file() {
                return Err(JobError::NotCloned(id.clone()));
            }
            if ids.is_empty()
                || ids.len() > MAX_OBJECTS
                || !ids
                    .iter()
                    .all(|i| gitcore::ObjectId::from_hex(i.as_bytes()).is_some())
            {
                return Err(JobError::Io("object ids must be 1 to 4096 hex ids".into()));
            }
            let url = origin_url(config, &final_dir).await?;
            let to = target(config, &url).await?;
            let credential = credential(config, id).await?;
            let mut cmd = origin_git_command(config, &final_dir, &url, &to, credential.as_ref());
            // What git's own lazy fetch runs (promisor-remote.c): no negotiation, the objects as
            // refspecs, a promisor pack; blob:none keeps a wanted tree's subtrees and leaves
            // out the blobs not named.
            cmd.args([
                "-c",
                "fetch.negotiationAlgorithm=noop",
                "fetch",
                "--no-tags",
                "--no-write-fetch-head",
                "--recurse-submodules=no",
                "--filter=blob:none",
                "--progress",
                "origin",
            ]);
            cmd.args(ids);
            (cmd, final_dir.clone(), config.fetch_timeout, None)
        }
        JobKind::Fetch | JobKind::Deepen => {
            if !final_dir.join("HEAD").is_file() {
                return Err(JobError::NotCloned(id.clone()));
            }
            let url = origin_url(config, &final_dir).await?;
            let to = target(config, &url).await?;
            let credential = credential(config, id).await?;
            let mut cmd = origin_git_command(config, &final_dir, &url, &to, credential.as_ref());
            cmd.args(["fetch", "--prune", "--progress", "--no-write-fetch-head"]);
            if *kind == JobKind::Deepen && final_dir.join("shallow").exists() {
                cmd.arg("--unshallow");
            }
            cmd.args([
                "origin",
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ]);
            // Deepening fetches most of the history: it gets a clone's time.
            let timeout = if *kind == JobKind::Deepen {
                config.clone_timeout
            } else {
                config.fetch_timeout
            };
            (cmd, final_dir.clone(), timeout, None)
        }
        JobKind::CommitGraph | JobKind::Repack => {
            if !final_dir.join("HEAD").is_file() {
                return Err(JobError::NotCloned(id.clone()));
            }
            let mut cmd = git_command(config, Some(&final_dir));
            if *kind == JobKind::CommitGraph {
                cmd.args(["commit-graph", "write", "--reachable", "--split"]);
                // Changed-path filters read every commit's trees: a commits-only clone has none
                // (git would stop at the first). Its hydrated clone gets them.
                let commits_only = gitcore::repo::Contents::of_git_dir(&final_dir)
                    == gitcore::repo::Contents::CommitsOnly;
                if !commits_only {
                    cmd.arg("--changed-paths");
                }
                cmd.arg("--no-progress");
            } else {
                // Everything into one pack (promisor objects into their own, as a partial clone
                // needs); no bitmap, which a partial clone cannot have. Geometric repacks refuse
                // promisor packs ("cannot use internal rev list with --stdin-packs").
                cmd.args([
                    "repack",
                    "-a",
                    "-d",
                    "-l",
                    "--no-write-bitmap-index",
                    "--quiet",
                ]);
            }
            (cmd, final_dir.clone(), config.clone_timeout, None)
        }
        JobKind::SetUrl { url } => {
            if !final_dir.join("HEAD").is_file() {
                return Err(JobError::NotCloned(id.clone()));
            }
            let mut cmd = git_command(config, Some(&final_dir));
            cmd.args(["config", "--local", "remote.origin.url", url]);
            (cmd, final_dir.clone(), config.fetch_timeout, None)
        }
    };
    let name = kind.name();
    let networked = kind.networked();
    // A filtered clone stops as soon as git says the server will not filter.
    let needs_filter = matches!(
        kind,
        JobKind::Clone {
            shape: CloneShape::CommitsOnly | CloneShape::NoBlobs,
            ..
        }
    );
    let mut unfiltered = false;
    let mut child = cmd
        .spawn()
        .map_err(|e| JobError::Io(format!("cannot run git: {e}")))?;
    let pid = child.id();
    let mut stderr = child.stderr.take();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tail = String::new();
    let mut buf = vec![0u8; 4096];
    let mut line = Vec::new();
    let mut size_check = tokio::time::interval(Duration::from_millis(500));
    // Bytes received (objects on disk and progress text) at each check, for the low-speed
    // limit: a remote that drips a byte a second would otherwise hold a slot until the timeout.
    let mut stderr_bytes: u64 = 0;
    let started_size = dir_size(&work_dir);
    let mut samples: std::collections::VecDeque<(tokio::time::Instant, u64)> =
        std::collections::VecDeque::new();
    let window = config.low_speed_time;
    let outcome: Result<std::process::ExitStatus, JobError> = loop {
        tokio::select! {
            read = async {
                match stderr.as_mut() {
                    Some(s) => s.read(&mut buf).await,
                    None => std::future::pending().await,
                }
            } => {
                match read {
                    Ok(0) | Err(_) => {
                        stderr = None;
                    }
                    Ok(n) => {
                        stderr_bytes += n as u64;
                        for &b in &buf[..n] {
                            if b == b'\r' || b == b'\n' {
                                let text = String::from_utf8_lossy(&line).trim().to_string();
                                line.clear();
                                if text.is_empty() {
                                    continue;
                                }
                                if let Some((phase, percent)) = parse_progress(&text) {
                                    for p in progress {
                                        let _ = p.try_send(JobProgress {
                                            id: id.clone(),
                                            phase: phase.clone(),
                                            percent,
                                            text: text.clone(),
                                        });
                                    }
                                }
                                // git's words (fetch-pack.c) when the server lacks `filter`.
                                if needs_filter && text.contains("filtering not recognized by server") {
                                    unfiltered = true;
                                }
                                tail.push_str(&text);
                                tail.push('\n');
                                if tail.len() > 4096 {
                                    tail.drain(..tail.len() - 2048);
                                }
                            } else if line.len() < 4096 {
                                line.push(b);
                            }
                        }
                        if unfiltered {
                            kill_group(pid);
                            let _ = child.wait().await;
                            break Err(JobError::NoFilter);
                        }
                    }
                }
            }
            status = child.wait(), if stderr.is_none() => {
                break status.map_err(|e| JobError::Io(e.to_string()));
            }
            _ = size_check.tick() => {
                let size = dir_size(&work_dir);
                if size > config.max_bytes {
                    kill_group(pid);
                    let _ = child.wait().await;
                    break Err(JobError::TooLarge { limit: config.max_bytes });
                }
                let now = tokio::time::Instant::now();
                let received = size.saturating_sub(started_size) + stderr_bytes;
                samples.push_back((now, received));
                // Keep as the front the youngest sample that is a full window old.
                while samples.get(1).is_some_and(|(t, _)| now.duration_since(*t) >= window) {
                    samples.pop_front();
                }
                // A full window, measured from its oldest sample, under the limit: stalled.
                if networked
                    && let Some(&(t0, r0)) = samples.front()
                    && now.duration_since(t0) >= window
                    && (received - r0) < config.low_speed_limit.saturating_mul(window.as_secs().max(1))
                {
                    kill_group(pid);
                    let _ = child.wait().await;
                    break Err(JobError::Stalled {
                        kind: name,
                        limit: config.low_speed_limit,
                        secs: window.as_secs(),
                    });
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                kill_group(pid);
                let _ = child.wait().await;
                break Err(JobError::Timeout { kind: name, secs: timeout.as_secs() });
            }
            () = &mut cancelled => {
                kill_group(pid);
                let _ = child.wait().await;
                break Err(JobError::Cancelled);
            }
        }
    };
    let is_clone = matches!(kind, JobKind::Clone { .. } | JobKind::Hydrate { .. });
    let cleanup = |e: JobError| {
        if is_clone {
            let _ = std::fs::remove_dir_all(&work_dir);
        } else {
            remove_debris(&work_dir);
        }
        Err(e)
    };
    let status = match outcome {
        Ok(s) => s,
        Err(e) => return cleanup(e),
    };
    if !status.success() {
        // git's words when a ref names a tree the commits-only filter left out.
        let commits_only = matches!(
            kind,
            JobKind::Clone {
                shape: CloneShape::CommitsOnly,
                ..
            }
        );
        if commits_only && tail.contains("did not send all necessary objects") {
            return cleanup(JobError::RefToTree);
        }
        let message = tail
            .lines()
            .rfind(|l| parse_progress(l).is_none())
            .unwrap_or("no message")
            .to_string();
        return cleanup(JobError::Git {
            kind: name,
            message: sanitize(&message),
        });
    }
    if dir_size(&work_dir) > config.max_bytes {
        return cleanup(JobError::TooLarge {
            limit: config.max_bytes,
        });
    }
    // A clone gitcore would refuse to read (a SHA-256 repository) is a failed clone, said
    // by name, not a repository that is "ready" and cannot be shown.
    if is_clone && let Err(e) = gitcore::format::check(&work_dir) {
        return cleanup(JobError::Unreadable(e.to_string()));
    }
    if let Some(canonical) = canonical {
        // git was given the pinned URL; later fetches read the canonical one back and check it
        // again (a name's address may change).
        let mut set = git_command(config, Some(&work_dir));
        set.args(["config", "--local", "remote.origin.url", &canonical]);
        let ok = set.status().await.is_ok_and(|s| s.success());
        if !ok {
            return cleanup(JobError::Io("cannot record the remote URL".into()));
        }
    }
    if is_clone {
        // The old directory moves aside first and goes after, so the repository is missing
        // only between two renames (sessions reading the old packs keep their mappings).
        let old = work_dir.with_extension("old");
        let moved = std::fs::rename(&final_dir, &old).is_ok();
        if !moved {
            let _ = std::fs::remove_dir_all(&final_dir);
        }
        // The clones' directory itself may be gone (lost or wiped under a running node).
        if let Some(parent) = final_dir.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::rename(&work_dir, &final_dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&work_dir);
            if moved {
                let _ = std::fs::rename(&old, &final_dir);
            }
            JobError::Io(format!("cannot move the clone into place: {e}"))
        })?;
        if moved {
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare name is found where the child's `PATH` would find it (so the spawn can use
    /// posix_spawn); a path is kept, and a name found nowhere is left for the spawn to refuse.
    #[test]
    fn a_bare_program_name_is_looked_up_in_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (first, second) = (tmp.path().join("a"), tmp.path().join("b"));
        for dir in [&first, &second] {
            std::fs::create_dir(dir).expect("dir");
        }
        // Not executable in the first directory, executable in the second.
        std::fs::write(first.join("tool"), "").expect("write");
        std::fs::write(second.join("tool"), "#!/bin/sh\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(second.join("tool"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let path = std::env::join_paths([&first, &second]).expect("PATH");
        assert_eq!(program_path(Path::new("tool"), &path), second.join("tool"));
        assert_eq!(
            program_path(Path::new("./tool"), &path),
            Path::new("./tool")
        );
        assert_eq!(
            program_path(Path::new("missing"), &path),
            Path::new("missing")
        );
    }
}
