//! A new repository's history shown straight from its remote while it is cloned.
//!
//! Before the first clone, [`Hosted::stream_first`] lists the remote's refs and fetches every
//! branch and tag's commits (git protocol v2, `filter tree:0`) with GitVista's own client
//! ([`gitwire`]), on a thread of its own. The pack is parsed as it arrives; once the first
//! commits are in (upload-pack sends the newest first), a session serves them from memory, and
//! each time the history has about doubled the session gets the larger graph and its viewers a
//! delta. The clone to disk follows the stream (the files a request asks for meanwhile answer
//! 202 until it lands), and the session then reads the clone and tells viewers what differs,
//! usually nothing.
//!
//! The remote is treated as the CloneQueue treats it: the URL policy, the address checked and
//! pinned at connect time, redirects refused, time and byte caps ([`gitwire::daemon::Limits`])
//! and a cap on the commits held in memory (`stream_max_bytes`). Any failure only means the
//! graph waits for the clone, as without streaming; private repositories and clusters are not
//! streamed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitcore::layout::{Layout, LayoutOptions};
use gitcore::odb::{Odb, OdbOptions};
use gitcore::repo::{Contents, Repository};
use gitvista_actors::ids::RepoId;
use gitvista_actors::repo_session::streamed::{Cloned, Streamed};
use gitvista_actors::supervisor::{Forget, GetSession, Register};
use gitwire::history::{History, Target, stream_history};

use crate::hosted::Hosted;
use gitvista_store::Repo;

/// Commits that make a first screen worth showing (a screen is about 50 rows; the rest of the
/// first batch is scroll room).
const FIRST_ROWS: usize = 2000;

/// A first batch smaller than [`FIRST_ROWS`] is shown anyway once the stream ran this long,
/// if it fills a screen ([`SCREEN_ROWS`]).
const FIRST_WAIT: Duration = Duration::from_millis(300);

/// Rows a tall window shows at once.
const SCREEN_ROWS: usize = 100;

/// The first screen opens at the default branch: a first batch waits this long for HEAD's
/// commit (newer branches, a git/git's `seen` and `todo`, come before it) before it is shown
/// without it.
const HEAD_WAIT: Duration = Duration::from_secs(3);

/// Longest silence of the remote a stream waits out (upload-pack sends progress while it
/// counts objects, so a silent one is stuck or hostile).
const STREAM_STALL: Duration = Duration::from_secs(15);

/// Fewest time between two larger graphs sent to viewers.
const GROW_EVERY: Duration = Duration::from_millis(400);

/// How a stream went, for the log and the caller.
#[derive(Debug, Default)]
pub struct StreamOutcome {
    /// Commits shown (0: nothing was, and the graph waits for the clone).
    pub shown: usize,
    /// The whole history came.
    pub complete: bool,
    /// Why it stopped early.
    pub error: Option<String>,
}

/// Why a stream ended before the whole history came.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    /// The remote does not offer what streaming needs (protocol v2, the commits-only filter):
    /// expected of many servers, and no failure.
    #[error("{0}")]
    NotOffered(gitwire::daemon::WireError),
    /// Anything else: the remote, the network or a limit.
    #[error("{0}")]
    Failed(String),
}

impl From<gitwire::daemon::WireError> for StreamError {
    fn from(e: gitwire::daemon::WireError) -> StreamError {
        use gitwire::v2::ProtocolError;
        match e {
            gitwire::daemon::WireError::Protocol(
                ProtocolError::Missing(_) | ProtocolError::NotV2(_),
            ) => StreamError::NotOffered(e),
            other => StreamError::Failed(other.to_string()),
        }
    }
}

/// What the stream's thread hands the async side: one larger history, ready to serve.
struct Batch {
    streamed: Streamed,
    commits: usize,
}

/// Whether the history as it stands should be shown now; `head_at` is how many commits had
/// come when HEAD's commit did.
fn due(h: &History, shown: usize, started: Instant, last: Instant, head_at: Option<usize>) -> bool {
    let n = h.commits();
    if n == 0 || n == shown {
        return false;
    }
    if h.is_complete() {
        return true;
    }
    if shown == 0 {
        let enough = n >= FIRST_ROWS || (n >= SCREEN_ROWS && started.elapsed() >= FIRST_WAIT);
        // HEAD's commit and a screen of its history below it, so the page can open with HEAD
        // near the top.
        let head_shown = head_at.is_some_and(|at| n >= at + SCREEN_ROWS);
        return enough && (head_shown || started.elapsed() >= HEAD_WAIT);
    }
    n >= shown * 2 && last.elapsed() >= GROW_EVERY
}

/// The snapshot parts of `h`, for a repository that will be cloned into `dir`.
fn batch(h: &History, dir: &std::path::Path) -> Batch {
    let graph = h.graph();
    let layout = Layout::build(&graph, LayoutOptions::standard());
    let dirs = gitcore::discover::GitDir {
        git_dir: dir.to_path_buf(),
        common_dir: dir.to_path_buf(),
        work_tree: None,
    };
    let odb = Odb::held(h.objects(), h.hash(), OdbOptions::default());
    let repo = Arc::new(Repository::in_memory(dirs, odb, Contents::CommitsOnly));
    Batch {
        commits: graph.len(),
        streamed: Streamed {
            repo,
            graph,
            layout,
        },
    }
}

impl Hosted {
    /// Streams `repo`'s history from its remote and serves it from memory as it grows (see the
    /// module's notes). Returns once the stream ended; the caller clones next and then tells
    /// the session with [`Hosted::stream_cloned`].
    pub async fn stream_first(self: &Arc<Self>, id: &RepoId, repo: &Repo) -> StreamOutcome {
        if !self.config.stream_first || repo.is_private || self.bus.is_some() {
            return StreamOutcome::default();
        }
        let Ok(permit) = Arc::clone(&self.stream_slots).try_acquire_owned() else {
            return StreamOutcome::default();
        };
        let target = {
            let (policy, resolve, url) = (
                self.policy.clone(),
                self.config.resolver.0.clone(),
                repo.canonical_url.clone(),
            );
            match tokio::task::spawn_blocking(move || policy.wire_target(&url, &resolve)).await {
                Ok(Ok(Some(t))) => t,
                Ok(Ok(None)) => return StreamOutcome::default(),
                Ok(Err(e)) => {
                    return StreamOutcome {
                        error: Some(e.to_string()),
                        ..StreamOutcome::default()
                    };
                }
                Err(e) => {
                    return StreamOutcome {
                        error: Some(e.to_string()),
                        ..StreamOutcome::default()
                    };
                }
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let dir = self.repo_dir(id);
        let limits = gitwire::daemon::Limits {
            // A stream that stalls only delays the clone: it gives up sooner than git would.
            stall: STREAM_STALL.min(self.config.clone_timeout),
            total: self.config.clone_timeout,
            // What comes over the wire is bounded as a clone is; what it becomes in memory is
            // bounded by `stream_max_bytes` (held compactly, a fraction of the pack).
            max_bytes: self.config.max_repo_bytes,
            min_rate: Some((self.config.low_speed_limit, self.config.low_speed_time)),
            ..gitwire::daemon::Limits::default()
        };
        let started = Instant::now();
        let max_held = self.config.stream_max_bytes;
        let work = tokio::task::spawn_blocking(move || run(&target, &dir, limits, max_held, tx));
        let mut shown = 0;
        while let Some(b) = rx.recv().await {
            if shown == 0 {
                self.supervisor.do_send(Register {
                    id: id.clone(),
                    config: gitvista_actors::repo_session::SessionConfig {
                        streamed: true,
                        ..self.session_config(id)
                    },
                });
            }
            let Ok(Ok(session)) = self.supervisor.send(GetSession(id.clone())).await else {
                continue;
            };
            if shown == 0 {
                tracing::info!(repo = %id, commits = b.commits, ms = started.elapsed().as_millis() as u64, "first rows from the remote");
                metrics::histogram!("gitvista_stream_first_rows_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            session.do_send(b.streamed);
            shown = b.commits;
            self.streaming
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.as_str().to_string(), shown);
        }
        let (complete, error) = match work.await {
            Ok(Ok(())) => (true, None),
            Ok(Err(e)) => (false, Some(e)),
            Err(e) => (false, Some(StreamError::Failed(e.to_string()))),
        };
        drop(permit);
        tracing::info!(repo = %id, shown, complete, error = error.as_ref().map(ToString::to_string).unwrap_or_default(), ms = started.elapsed().as_millis() as u64, "history streamed from the remote");
        match &error {
            // A remote that does not offer what the stream asks for (protocol v2, the commits
            // filter) is shown when cloned, as every remote was before streams: no failure.
            Some(StreamError::NotOffered(_)) => {
                metrics::counter!("gitvista_stream_skipped_total", "reason" => "not_offered")
                    .increment(1);
            }
            Some(StreamError::Failed(_)) => {
                metrics::counter!("gitvista_stream_failures_total").increment(1);
            }
            None => {}
        }
        let error = error.map(|e| e.to_string());
        StreamOutcome {
            shown,
            complete,
            error,
        }
    }

    /// The clone that followed a stream ended: on success the session reads it (and serves it
    /// from now on), else the history shown from memory goes with the session.
    pub async fn stream_cloned(&self, id: &RepoId, cloned: bool) {
        self.streaming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id.as_str());
        if cloned {
            if let Ok(Ok(session)) = self.supervisor.send(GetSession(id.clone())).await {
                session.do_send(Cloned);
            }
        } else {
            let _ = self.supervisor.send(Forget(id.clone())).await;
        }
    }

    /// Commits shown from the remote while repository `id` is cloned, if it is.
    pub fn streamed_rows(&self, id: &str) -> Option<usize> {
        self.streaming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }
}

/// The stream itself (blocking): every larger history worth showing goes to `tx`.
fn run(
    target: &Target,
    dir: &std::path::Path,
    limits: gitwire::daemon::Limits,
    max_held: u64,
    tx: tokio::sync::mpsc::Sender<Batch>,
) -> Result<(), StreamError> {
    let stream_limits = gitcore::odb::stream::StreamLimits::for_memory(max_held);
    let started = Instant::now();
    let mut last = started;
    let mut shown = 0;
    let mut head_at = None;
    // Called inside the stream (over HTTP, inside its runtime): never blocks. A larger history
    // is built only when the session has taken the last one; the last one is sent after.
    let mut send = |h: &History| -> Result<(), String> {
        if tx.is_closed() {
            // The receiver is gone only when the server stops: stop too.
            return Err("stopped".into());
        }
        if head_at.is_none() && h.has_head_commit() {
            head_at = Some(h.commits());
        }
        if h.is_complete() || !due(h, shown, started, last, head_at) || tx.capacity() == 0 {
            return Ok(());
        }
        if tx.try_send(batch(h, dir)).is_ok() {
            shown = h.commits();
            last = Instant::now();
        }
        Ok(())
    };
    let (result, history) = match stream_history(target, limits, stream_limits, &mut send) {
        Ok(h) => (Ok(()), Some(Box::new(h))),
        // What came before the stream broke is still worth showing.
        Err((e, kept)) => (Err(StreamError::from(e)), kept),
    };
    if let Some(h) = history
        && h.commits() > shown
    {
        let _ = tx.blocking_send(batch(&h, dir));
    }
    result
}
