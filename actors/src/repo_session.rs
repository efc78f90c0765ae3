//! [`RepoSession`]: one actor per repository.

pub mod contents;
pub mod streamed;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use notify::{RecursiveMode, Watcher};
use tokio::sync::oneshot;

use crate::cache::SessionCaches;
use crate::clone_queue::{CloneQueue, Enqueue, FailureClass, JobKind, Priority};
use crate::events::{DeltaEvent, RemoteState, ViewerEvent};
use crate::ids::RepoId;
use crate::snapshot::Snapshot;
use gitcore::worktree::{StatusOptions, WorkStatus};

/// How a session finds and watches its repository.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Any path inside the repository (work tree, `.git`, or a bare repository).
    pub path: PathBuf,
    /// Watch the git directory for filesystem events (local mode).
    pub watch: bool,
    /// Without a working filesystem watcher (network mounts, some containers, or watching off),
    /// check for changes this often; the interval doubles while nothing changes, up to
    /// [`MAX_POLL`], and starts again after a change. A check that finds nothing costs a few
    /// `stat` calls and sends nothing. With a watcher there is no polling.
    pub poll_interval: Duration,
    /// Events closer together than this make one reload: a `git commit` touches a dozen files.
    pub debounce: Duration,
    /// Compute the work tree's status and push it to viewers when it changes (local mode; needs
    /// a work tree). Work-tree files are watched when `watch` is set, else polled.
    pub status: bool,
    /// Work-tree events closer together than this make one status run.
    pub status_debounce: Duration,
    /// Hosted mode: fetch from the remote through the CloneQueue on an adaptive timer.
    pub fetch: Option<FetchConfig>,
    /// Byte budget of the commit and file diff cache.
    pub diff_cache_bytes: u64,
    /// Byte budget of the blame cache.
    pub blame_cache_bytes: u64,
    /// Without a commit-graph file, a first view at least this slow whose time went mostly to
    /// decoding commits gets a [`crate::snapshot::CommitGraphHint`] (local mode; `None` in hosted
    /// mode, where the CloneQueue writes the file).
    pub commit_graph_hint_after: Option<Duration>,
    /// Cluster mode: whether this session owns the repository (and publishes its events) or
    /// relays another node's (and holds no snapshot).
    pub cluster: Option<crate::events::ClusterLink>,
    /// Hosted mode, before the clone: the snapshots come from the remote's history as it
    /// streams into memory ([`streamed::Streamed`]), and the clone at `path` is read only once
    /// it is there ([`streamed::Cloned`]).
    pub streamed: bool,
}

impl SessionConfig {
    /// Local-mode defaults for the repository at `path`.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        SessionConfig {
            path: path.into(),
            watch: true,
            poll_interval: Duration::from_secs(3),
            debounce: Duration::from_millis(30),
            status: true,
            status_debounce: Duration::from_millis(100),
            fetch: None,
            diff_cache_bytes: crate::cache::DEFAULT_DIFF_BYTES,
            blame_cache_bytes: crate::cache::DEFAULT_BLAME_BYTES,
            commit_graph_hint_after: Some(crate::snapshot::CommitGraphHint::WORTH_IT),
            cluster: None,
            streamed: false,
        }
    }

    /// A session on a web node for repository `id`, which another node serves: its viewers get
    /// the events `interest` relays (see [`crate::events::Interest`]).
    pub fn remote(id: RepoId, interest: Recipient<crate::events::Interest>) -> Self {
        SessionConfig {
            watch: false,
            status: false,
            commit_graph_hint_after: None,
            cluster: Some(crate::events::ClusterLink::Remote { id, interest }),
            ..SessionConfig::local(PathBuf::new())
        }
    }

    /// Whether the repository is served by another node.
    pub fn is_remote(&self) -> bool {
        matches!(
            self.cluster,
            Some(crate::events::ClusterLink::Remote { .. })
        )
    }
}

/// Longest wait between two polls of an unchanged repository without a watcher.
pub const MAX_POLL: Duration = Duration::from_secs(60);

/// How a hosted repository stays fresh: fetched through the CloneQueue every `with_viewers`
/// while someone watches, every `recent` if it was looked at within the last hour, every `cold`
/// within `idle_stop`, and not at all after that. Failures back off (doubling, up to `max_backoff`).
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The queue that runs git.
    pub queue: Addr<CloneQueue>,
    /// The repository's id in the queue.
    pub id: RepoId,
    /// Interval with viewers (30 s).
    pub with_viewers: Duration,
    /// Interval if accessed in the last hour (5 min).
    pub recent: Duration,
    /// Interval when cold (30 min).
    pub cold: Duration,
    /// No fetches after this long without access (24 h).
    pub idle_stop: Duration,
    /// Longest wait after failures (1 h).
    pub max_backoff: Duration,
    /// A fetch still running after this long is announced to viewers (`fetching`, then `ready`
    /// when it ends); quicker ones are not, since a status per viewer per fetch would only
    /// flicker (1 s).
    pub notice_after: Duration,
    /// Told about every finished fetch (the hosted layer records it).
    pub on_done: Option<Recipient<FetchDone>>,
    /// When the repository's webhook last delivered (`None`: no webhooks).
    pub hooks: Option<Arc<crate::freshen::HookClock>>,
    /// While a hook delivered within `hook_window`, fetches run only this often, as a safety
    /// net for a lost delivery (15 min); never more often than without one.
    pub hooked_every: Duration,
    /// How recently a hook must have delivered to be trusted (24 h).
    pub hook_window: Duration,
    /// Repositories frozen over their users' plans: not fetched while in it.
    pub frozen: Option<Arc<crate::freshen::RepoSet>>,
    /// With billing: the repositories a paying user tracks, and how often the others are
    /// fetched at most.
    pub paid: Option<(Arc<crate::freshen::RepoSet>, Duration)>,
}

impl FetchConfig {
    /// The plan's intervals for repository `id`.
    pub fn new(queue: Addr<CloneQueue>, id: RepoId) -> Self {
        FetchConfig {
            queue,
            id,
            with_viewers: Duration::from_secs(30),
            recent: Duration::from_secs(300),
            cold: Duration::from_secs(1800),
            idle_stop: Duration::from_secs(86_400),
            max_backoff: Duration::from_secs(3600),
            notice_after: Duration::from_secs(1),
            on_done: None,
            hooks: None,
            hooked_every: Duration::from_secs(900),
            hook_window: Duration::from_secs(86_400),
            frozen: None,
            paid: None,
        }
    }
}

/// A fetch finished (successfully or not).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FetchDone {
    /// The repository.
    pub id: RepoId,
    /// What users are told, if it failed (a sentence per class, never git's own words).
    pub error: Option<String>,
    /// The failure's class (`unreachable`, `timeout`, ...), if it failed.
    pub code: Option<&'static str>,
    /// Commits after the reload that followed (when it succeeded).
    pub commits: Option<usize>,
    /// Failures in a row.
    pub failures: u32,
}

/// Who may read the repository changed (a webhook said so): every viewer checks its access
/// again now ([`ViewerEvent::AccessChanged`]).
#[derive(Debug, Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct AccessChanged;

/// Fetch now (a webhook, a test), whatever the timer says.
#[derive(Debug, Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct FetchNow;

/// Why a session cannot serve its repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The first load failed (not a repository, unreadable objects).
    #[error("the repository could not be loaded: {0}")]
    Load(String),
    /// The session stopped before answering.
    #[error("the repository session stopped")]
    Stopped,
    /// Another node serves the repository: ask it.
    #[error("the repository is served by another node")]
    Remote,
}

/// Asks for the current snapshot, waiting for the first load if needed. Right after a load
/// from a commit-graph file its commits' authors and subjects may still be being read (see
/// [`GetCompleteSnapshot`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<Arc<Snapshot>, SessionError>")]
pub struct GetSnapshot;

/// Asks for the current snapshot with every commit's author, author time and subject read,
/// waiting for them if needed (author and text searches need them; rows do not).
#[derive(Debug, Message)]
#[rtype(result = "Result<Arc<Snapshot>, SessionError>")]
pub struct GetCompleteSnapshot;

/// Adds a viewer; it receives every [`ViewerEvent`] until it unsubscribes or its mailbox closes.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// Unique per viewer (the caller picks it).
    pub id: u64,
    /// Where events go.
    pub viewer: Recipient<ViewerEvent>,
}

/// Removes a viewer.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    /// The id given to [`Subscribe`].
    pub id: u64,
}

/// Asks for a reload soon (debounced): sent by the watcher, the poll timer, or a finished fetch.
#[derive(Debug, Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Refresh;

/// Asks for a status run soon (debounced): sent by the work-tree watcher.
#[derive(Debug, Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct RefreshStatus;

/// Stops the session: the watcher and timers end, viewers get nothing more.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Tells every viewer the server is going away and forgets them; answers how many there were.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CloseViewers;

/// What an admin sees of a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Whether the repository is loaded.
    pub loaded: bool,
    /// Why the first load failed, if it did.
    pub error: Option<String>,
    /// Snapshot version.
    pub version: u64,
    /// Commits in the graph.
    pub commits: usize,
    /// Viewers connected.
    pub viewers: usize,
    /// Seconds since a request or viewer used it.
    pub idle_secs: u64,
    /// A fetch is running (hosted mode).
    pub fetching: bool,
    /// Fetches that failed in a row.
    pub fetch_failures: u32,
    /// Bytes in the diff, blame and search caches.
    pub cache_bytes: u64,
    /// Heap estimate of the graph and layout.
    pub heap_bytes: usize,
    /// Seconds since the last fetch ended (hosted mode), if one ran.
    pub last_fetch_secs_ago: Option<u64>,
    /// Why the last fetch failed, if it did, as users are told.
    pub last_fetch_error: Option<String>,
    /// git's own words about it (control characters removed): for admins only.
    pub last_fetch_detail: Option<String>,
    /// Seconds until the next timed fetch, if one is scheduled.
    pub next_fetch_in_secs: Option<u64>,
    /// Reloads that read the repository since the session started (checks that found nothing
    /// changed are not counted).
    pub reloads: u64,
    /// Checks for changes since the session started (each a few `stat` calls; a check that finds
    /// a change is followed by a reload).
    pub reload_checks: u64,
    /// What the clone holds: `commits`, `trees` or `complete`.
    pub contents: &'static str,
    /// Percent of the hydration running now, if one runs.
    pub hydrating: Option<u8>,
}

/// Asks a session to describe itself.
#[derive(Debug, Message)]
#[rtype(result = "SessionInfo")]
pub struct Describe;

impl Handler<Describe> for RepoSession {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _: Describe, _: &mut Context<Self>) -> Self::Result {
        let s = self.snapshot.as_ref();
        MessageResult(SessionInfo {
            loaded: s.is_some(),
            error: self.failed.clone(),
            version: s.map_or(0, |s| s.version),
            commits: s.map_or(0, |s| s.graph.len()),
            viewers: self.viewers.len(),
            idle_secs: self.last_access.elapsed().as_secs(),
            fetching: self.fetching,
            fetch_failures: self.fetch_failures,
            cache_bytes: s.map_or(0, |s| {
                s.caches.diffs.bytes() + s.caches.blame.bytes() + s.caches.searches.bytes()
            }),
            heap_bytes: s.map_or(0, |s| s.graph.heap_bytes() + s.layout.heap_bytes()),
            last_fetch_secs_ago: self.last_fetch.map(|t| t.elapsed().as_secs()),
            last_fetch_error: self.fetch_error.clone(),
            last_fetch_detail: self.fetch_detail.clone(),
            next_fetch_in_secs: self.fetch_timer.map(|(_, due)| {
                due.saturating_duration_since(std::time::Instant::now())
                    .as_secs()
            }),
            reloads: self.reloads,
            reload_checks: self.reload_checks,
            contents: s.map_or("complete", |s| s.contents.as_str()),
            hydrating: self.hydrating,
        })
    }
}

/// Viewers and time since last use, for the EvictionActor.
#[derive(Debug, Message)]
#[rtype(result = "(usize, Duration)")]
pub struct Activity;

impl Handler<Activity> for RepoSession {
    type Result = MessageResult<Activity>;

    fn handle(&mut self, _: Activity, _: &mut Context<Self>) -> Self::Result {
        // A viewer keeps the session in use.
        if !self.viewers.is_empty() {
            self.last_access = std::time::Instant::now();
        }
        MessageResult((self.viewers.len(), self.last_access.elapsed()))
    }
}

/// Number of viewers, for metrics and tests.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct ViewerCount;

type Waiter = oneshot::Sender<Result<Arc<Snapshot>, SessionError>>;

/// One repository: its snapshot, refresh sources and viewers.
#[derive(Debug)]
pub struct RepoSession {
    /// Where the repository is and how it is watched; fixed for the session's life.
    config: SessionConfig,
    /// The current snapshot: `None` until the first load ends; replaced by each reload that
    /// finishes; dropped with the session.
    snapshot: Option<Arc<Snapshot>>,
    /// Why the first load failed, if it did; requests get it as an error.
    failed: Option<String>,
    /// Requests waiting for the first load; drained when it ends.
    waiting: Vec<Waiter>,
    /// Requests waiting for a snapshot with every commit's metadata; drained when it is read.
    waiting_complete: Vec<Waiter>,
    /// The metadata of a snapshot loaded from a commit-graph file is being read (reloads wait).
    filling: bool,
    /// Viewers by id; added by `Subscribe`, removed by `Unsubscribe` or when their mailbox is
    /// closed at broadcast time.
    viewers: HashMap<u64, Recipient<ViewerEvent>>,
    /// A reload runs on the blocking pool (at most one at a time).
    reloading: bool,
    /// A refresh arrived during that reload: run one more when it ends.
    again: bool,
    /// A debounced reload is scheduled.
    scheduled: bool,
    /// The filesystem watcher (local mode); stops watching when dropped with the session.
    watcher: Option<notify::RecommendedWatcher>,
    /// The work-tree watcher (local mode with status); `None` falls back to polling.
    tree_watcher: Option<notify::RecommendedWatcher>,
    /// The last status computed; sent to new viewers, compared to decide what to broadcast.
    status: Option<Arc<WorkStatus>>,
    /// A status run is on the blocking pool.
    status_running: bool,
    /// A status refresh arrived during that run: run once more.
    status_again: bool,
    /// A debounced status run is scheduled.
    status_scheduled: bool,
    /// When a viewer or request last used the session.
    last_access: std::time::Instant,
    /// A fetch is running.
    fetching: bool,
    /// A fetch was asked for while one ran (its remote may have changed after that one read
    /// it): fetch once more when it ends.
    fetch_again: bool,
    /// Announces the running fetch once it has taken `notice_after`; cancelled when it ends.
    fetch_notice: Option<SpawnHandle>,
    /// Viewers were told a fetch is running (they are owed a `ready` when it ends).
    fetch_announced: bool,
    /// The error of the last fetch, as viewers were told (a change of it is broadcast).
    fetch_error: Option<String>,
    /// git's own words about the last failed fetch (admins only); cleared by a success.
    fetch_detail: Option<String>,
    /// Fetches that failed in a row.
    fetch_failures: u32,
    /// The next timed fetch, and when it is due (for the admin page).
    fetch_timer: Option<(SpawnHandle, std::time::Instant)>,
    /// When the last fetch ended.
    last_fetch: Option<std::time::Instant>,
    /// A successful fetch waiting for its reload to finish before it is reported.
    report_after_reload: Option<FetchDone>,
    /// What this session holds, published for the supervisor's budget; updated after loads,
    /// reloads, viewer changes and uses.
    footprint: Arc<crate::budget::Footprint>,
    /// Reloads that read the repository (checks that found nothing changed are not counted).
    reloads: u64,
    /// Checks for changes (reloads included).
    reload_checks: u64,
    /// The current wait between polls (no watcher): grows while nothing changes.
    poll_every: Duration,
    /// The next poll, while polling (one at a time: a failing watcher must not start a second
    /// polling loop beside the one the work tree already has).
    poll_timer: Option<SpawnHandle>,
    /// The watcher reported an error: fall back to polling.
    watch_failed: bool,
    /// Percent of the hydration running for this repository (see [`contents`]); `None` when
    /// none runs. Set by its progress, cleared when it ends.
    hydrating: Option<u8>,
    /// The answer caches every snapshot of this session shares.
    caches: Arc<SessionCaches>,
    /// The clone on disk is being read or served (a streamed session stops taking streamed
    /// snapshots then).
    from_disk: bool,
}

impl RepoSession {
    /// A session for the repository `config` names; it loads once started.
    pub fn new(config: SessionConfig) -> Self {
        Self::with_footprint(config, Arc::default())
    }

    /// [`RepoSession::new`], publishing what it holds to `footprint`.
    pub fn with_footprint(config: SessionConfig, footprint: Arc<crate::budget::Footprint>) -> Self {
        let caches = Arc::new(SessionCaches::new(
            config.diff_cache_bytes,
            config.blame_cache_bytes,
        ));
        footprint.set_caches(Arc::clone(&caches));
        RepoSession {
            caches,
            from_disk: false,
            footprint,
            reloads: 0,
            reload_checks: 0,
            poll_every: config.poll_interval,
            poll_timer: None,
            watch_failed: false,
            hydrating: None,
            config,
            snapshot: None,
            failed: None,
            waiting: Vec::new(),
            waiting_complete: Vec::new(),
            filling: false,
            viewers: HashMap::new(),
            reloading: false,
            again: false,
            scheduled: false,
            watcher: None,
            tree_watcher: None,
            status: None,
            status_running: false,
            status_again: false,
            status_scheduled: false,
            last_access: std::time::Instant::now(),
            fetching: false,
            fetch_again: false,
            fetch_notice: None,
            fetch_announced: false,
            fetch_error: None,
            fetch_detail: None,
            fetch_failures: 0,
            fetch_timer: None,
            last_fetch: None,
            report_after_reload: None,
        }
    }

    /// How long until the next fetch, or `None` when the repository is idle enough to stop.
    fn fetch_interval(&self, f: &FetchConfig) -> Option<Duration> {
        if f.frozen.as_ref().is_some_and(|fr| fr.contains(&f.id)) {
            return None;
        }
        let idle = self.last_access.elapsed();
        let base = if !self.viewers.is_empty() {
            f.with_viewers
        } else if idle < Duration::from_secs(3600) {
            f.recent
        } else if idle < f.idle_stop {
            f.cold
        } else {
            return None;
        };
        // Nobody paying tracks it: no faster than the free plan's pace.
        let base = match &f.paid {
            Some((paid, floor)) if !paid.contains(&f.id) => base.max(*floor),
            _ => base,
        };
        // A live webhook says when the remote changes: polling is only the safety net, until
        // the hook has been quiet for the window (then the adaptive poll is back within one
        // interval).
        let base = match f.hooks.as_ref().and_then(|h| h.since(&f.id)) {
            Some(since) if since < f.hook_window => {
                base.max(f.hooked_every.min(f.hook_window - since + base))
            }
            _ => base,
        };
        let backoff = base.saturating_mul(1u32 << self.fetch_failures.min(16));
        Some(if self.fetch_failures > 0 {
            backoff.min(f.max_backoff.max(base))
        } else {
            base
        })
    }

    /// Tells the hosted layer about a finished fetch, with the commits the session now holds.
    fn report_fetch(&self, mut done: FetchDone) {
        done.commits = self.snapshot.as_ref().map(|s| s.graph.len());
        if let Some(on_done) = self.config.fetch.as_ref().and_then(|f| f.on_done.as_ref()) {
            let _ = on_done.try_send(done);
        }
    }

    /// (Re)arms the fetch timer from now.
    fn schedule_fetch(&mut self, ctx: &mut Context<Self>) {
        let Some(f) = self.config.fetch.clone() else {
            return;
        };
        if let Some((h, _)) = self.fetch_timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(after) = self.fetch_interval(&f) {
            let handle = ctx.run_later(after, |act, ctx| {
                act.fetch_timer = None;
                act.start_fetch(ctx);
            });
            self.fetch_timer = Some((handle, std::time::Instant::now() + after));
        }
    }

    /// Fetches through the queue, then reloads; reports to the hosted layer.
    fn start_fetch(&mut self, ctx: &mut Context<Self>) {
        let Some(f) = self.config.fetch.clone() else {
            return;
        };
        if self.fetching || f.frozen.as_ref().is_some_and(|fr| fr.contains(&f.id)) {
            return;
        }
        self.fetching = true;
        self.fetch_notice = Some(ctx.run_later(f.notice_after, |act, _| {
            act.fetch_notice = None;
            act.fetch_announced = true;
            act.broadcast(ViewerEvent::Remote(Arc::new(act.remote_state())));
        }));
        let job = f.queue.send(Enqueue {
            id: f.id.clone(),
            kind: JobKind::Fetch,
            // Fetches for viewers use the slot kept for them.
            priority: if self.viewers.is_empty() {
                Priority::Background
            } else {
                Priority::Watched
            },
            progress: None,
            client: None,
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(job).map(move |result, act, ctx| {
                act.fetching = false;
                act.last_fetch = Some(std::time::Instant::now());
                if let Some(notice) = act.fetch_notice.take() {
                    ctx.cancel_future(notice);
                }
                let failure = match result {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some((e.class().code(), e.public_message(), e.to_string())),
                    Err(e) => Some((
                        FailureClass::Failed.code(),
                        FailureClass::Failed.sentence().to_string(),
                        e.to_string(),
                    )),
                };
                let code = failure.as_ref().map(|f| f.0);
                act.fetch_detail = failure.as_ref().map(|f| f.2.clone());
                let error = failure.map(|f| f.1);
                if error.is_some() {
                    act.fetch_failures = act.fetch_failures.saturating_add(1);
                } else {
                    act.fetch_failures = 0;
                }
                // Viewers hear of the end of a fetch they were told of, and of a fetch that
                // failed, or worked after failing; a quick fetch like the last one is silent.
                let announced = std::mem::take(&mut act.fetch_announced);
                if announced || error != act.fetch_error {
                    act.fetch_error = error.clone();
                    act.broadcast(ViewerEvent::Remote(Arc::new(act.remote_state())));
                }
                let done = FetchDone {
                    id: f.id.clone(),
                    commits: None,
                    failures: act.fetch_failures,
                    error,
                    code,
                };
                if done.error.is_none() {
                    // Reported once the reload holds the fetched commits, not the old count.
                    act.report_after_reload = Some(done);
                    act.start_reload(ctx);
                } else {
                    act.report_fetch(done);
                }
                if std::mem::take(&mut act.fetch_again) {
                    act.start_fetch(ctx);
                } else {
                    act.schedule_fetch(ctx);
                }
            }),
        );
    }

    /// Where fetching stands, as viewers see it.
    fn remote_state(&self) -> RemoteState {
        RemoteState {
            state: if self.fetching && self.fetch_announced {
                "fetching"
            } else {
                "ready"
            },
            error: self.fetch_error.clone(),
            failures: self.fetch_failures,
            contents: self
                .snapshot
                .as_ref()
                .map_or("complete", |s| s.contents.as_str()),
            hydrating: self.hydrating,
        }
    }

    fn wants_status(&self) -> bool {
        self.config.status
            && self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.repo.dirs().work_tree.is_some())
    }

    /// Recomputes the work tree's status off the actor thread; broadcasts it if it changed.
    fn start_status(&mut self, ctx: &mut Context<Self>) {
        if !self.wants_status() {
            return;
        }
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        if self.status_running {
            self.status_again = true;
            return;
        }
        self.status_running = true;
        let work = tokio::task::spawn_blocking(move || {
            // Objects of a new HEAD may be in packs the snapshot has not seen yet.
            let repo = snapshot.repo.refresh().map_err(|e| e.to_string())?;
            gitcore::worktree::status(&repo, StatusOptions::default()).map_err(|e| e.to_string())
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
                act.status_running = false;
                if let Ok(Ok(status)) = result
                    && act.status.as_deref() != Some(&status)
                {
                    let status = Arc::new(status);
                    act.status = Some(Arc::clone(&status));
                    act.broadcast(ViewerEvent::Status(status));
                }
                if std::mem::take(&mut act.status_again) {
                    act.start_status(ctx);
                }
            }),
        );
    }

    fn loaded(&mut self, result: Result<Snapshot, String>, ctx: &mut Context<Self>) {
        match result {
            Ok(mut snapshot) => {
                // The clone of a history shown while it streamed: viewers get what differs
                // (nothing, unless the remote changed in between).
                let streamed = self.snapshot.take();
                let delta = streamed.as_ref().map(|before| {
                    let delta = before.graph.delta_to(&snapshot.graph);
                    snapshot.version = before.version + u64::from(!delta.is_empty());
                    delta
                });
                let snapshot = Arc::new(snapshot);
                if let Some(delta) = delta.filter(|d| !d.is_empty()) {
                    self.broadcast(ViewerEvent::Delta(Arc::new(DeltaEvent::new(
                        snapshot.version,
                        &delta,
                        snapshot.layout.len(),
                    ))));
                }
                self.footprint.set_heap(snapshot.heap_bytes());
                let dirs = snapshot.repo.dirs().clone();
                self.snapshot = Some(Arc::clone(&snapshot));
                for w in self.waiting.drain(..) {
                    let _ = w.send(Ok(Arc::clone(&snapshot)));
                }
                if let Some(hint) = &snapshot.commit_graph_hint {
                    tracing::info!(
                        path = %self.config.path.display(),
                        commits = hint.commits,
                        first_view_ms = hint.first_view.as_millis() as u64,
                        expected_ms = hint.estimate().as_millis() as u64,
                        "{}",
                        hint.message()
                    );
                }
                self.start_fill(ctx);
                if self.config.watch {
                    self.watcher = watch(ctx.address(), &dirs.git_dir, &dirs.common_dir);
                }
                if self.config.watch
                    && self.wants_status()
                    && let Some(tree) = &dirs.work_tree
                {
                    self.tree_watcher = watch_tree(ctx.address(), tree, &dirs.git_dir);
                }
                self.start_status(ctx);
                self.schedule_fetch(ctx);
                self.schedule_poll(ctx);
            }
            Err(e) => {
                self.failed = Some(e.clone());
                for w in self
                    .waiting
                    .drain(..)
                    .chain(self.waiting_complete.drain(..))
                {
                    let _ = w.send(Err(SessionError::Load(e.clone())));
                }
            }
        }
    }

    /// Whether the git directory must be polled (no watcher, or it failed).
    fn polls_refs(&self) -> bool {
        self.watcher.is_none() || self.watch_failed
    }

    /// Whether the work tree's status must be polled (wanted, and no work-tree watcher).
    fn polls_status(&self) -> bool {
        self.wants_status() && (self.tree_watcher.is_none() || self.watch_failed)
    }

    /// Schedules the next poll, if anything needs polling.
    fn schedule_poll(&mut self, ctx: &mut Context<Self>) {
        if let Some(previous) = self.poll_timer.take() {
            ctx.cancel_future(previous);
        }
        if !self.polls_refs() && !self.polls_status() {
            return;
        }
        self.poll_timer = Some(ctx.run_later(self.poll_every, |act, ctx| {
            act.poll_timer = None;
            if act.polls_refs() {
                act.start_reload(ctx);
            }
            if act.polls_status() {
                act.start_status(ctx);
            }
            act.schedule_poll(ctx);
        }));
    }

    /// Reads the metadata of a snapshot loaded from a commit-graph file, off the actor thread,
    /// then swaps it in (same version: rows already shown do not change) and answers the
    /// requests waiting for it. Reloads wait for it: they would read the same metadata again.
    fn start_fill(&mut self, ctx: &mut Context<Self>) {
        let Some(pending) = self.snapshot.clone() else {
            return;
        };
        if pending.graph.has_metadata() {
            for w in self.waiting_complete.drain(..) {
                let _ = w.send(Ok(Arc::clone(&pending)));
            }
            return;
        }
        self.filling = true;
        let work = {
            let pending = Arc::clone(&pending);
            tokio::task::spawn_blocking(move || pending.complete())
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(move |result, act, ctx| {
                act.filling = false;
                match result {
                    Ok(complete) => {
                        if act
                            .snapshot
                            .as_ref()
                            .is_some_and(|s| Arc::ptr_eq(s, &pending))
                        {
                            act.footprint.set_heap(complete.heap_bytes());
                            act.snapshot = Some(Arc::clone(&complete));
                        }
                        for w in act.waiting_complete.drain(..) {
                            let _ = w.send(Ok(Arc::clone(&complete)));
                        }
                    }
                    Err(e) => {
                        let e = format!("reading commit metadata failed: {e}");
                        tracing::warn!(path = %act.config.path.display(), "{e}");
                        for w in act.waiting_complete.drain(..) {
                            let _ = w.send(Err(SessionError::Load(e.clone())));
                        }
                    }
                }
                if std::mem::take(&mut act.again) {
                    act.start_reload(ctx);
                }
            }),
        );
    }

    fn start_reload(&mut self, ctx: &mut Context<Self>) {
        let Some(previous) = self.snapshot.clone() else {
            return;
        };
        if self.reloading || self.filling {
            self.again = true;
            return;
        }
        self.reloading = true;
        self.reload_checks += 1;
        let work = tokio::task::spawn_blocking(move || {
            previous.reload_if_changed().map_err(|e| e.to_string())
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
                act.reloading = false;
                let poll_cap = MAX_POLL.max(act.config.poll_interval);
                match result {
                    // Nothing a reload reads changed: a few stat calls, nothing read.
                    Ok(Ok(None)) => {
                        act.poll_every = (act.poll_every * 2).min(poll_cap);
                    }
                    Ok(Ok(Some((snapshot, delta)))) => {
                        act.reloads += 1;
                        act.poll_every = act.config.poll_interval;
                        metrics::counter!("gitvista_reloads_total").increment(1);
                        let changed = !delta.is_empty();
                        let event = changed.then(|| {
                            DeltaEvent::new(snapshot.version, &delta, snapshot.layout.len())
                        });
                        // The delta carries HEAD; a `head` message follows only when HEAD is on
                        // another branch (or detached) now, not for a branch that advanced.
                        let branch_moved = delta.head.as_ref().is_some_and(|(before, after)| {
                            before.as_ref().and_then(|h| h.branch())
                                != after.as_ref().and_then(|h| h.branch())
                                || after.as_ref().is_some_and(|h| h.branch().is_none())
                        });
                        act.footprint.set_heap(snapshot.heap_bytes());
                        act.snapshot = Some(Arc::new(snapshot));
                        if let Some(event) = event {
                            let head = event.head.clone().filter(|_| branch_moved);
                            act.broadcast(ViewerEvent::Delta(Arc::new(event)));
                            if let Some(head) = head {
                                act.broadcast(ViewerEvent::Head(Arc::new(head)));
                            }
                        }
                    }
                    Ok(Err(e)) => act.broadcast(ViewerEvent::ReloadFailed(Arc::new(e))),
                    Err(e) => act.broadcast(ViewerEvent::ReloadFailed(Arc::new(e.to_string()))),
                }
                if !act.again
                    && let Some(done) = act.report_after_reload.take()
                {
                    act.report_fetch(done);
                }
                if std::mem::take(&mut act.again) {
                    act.start_reload(ctx);
                }
            }),
        );
    }

    /// Sends `event` to every viewer without waiting; viewers whose mailbox is gone are dropped.
    /// A full mailbox is the viewer's problem (its WebSocket actor coalesces or disconnects).
    fn broadcast(&mut self, event: ViewerEvent) {
        if let Some(crate::events::ClusterLink::Owner { id, publish }) = &self.config.cluster
            && !matches!(event, ViewerEvent::Closing | ViewerEvent::Status(_))
        {
            publish.do_send(crate::events::Published {
                id: id.clone(),
                event: event.clone(),
            });
        }
        let started = std::time::Instant::now();
        let before = self.viewers.len();
        let mut full = 0u64;
        self.viewers.retain(|_, v| match v.try_send(event.clone()) {
            Ok(()) => true,
            Err(SendError::Full(_)) => {
                full += 1;
                true
            }
            Err(SendError::Closed(_)) => false,
        });
        let gone = before - self.viewers.len();
        if gone > 0 && self.viewers.is_empty() {
            self.interest(false, None);
        }
        self.footprint.set_viewers(self.viewers.len());
        metrics::gauge!("gitvista_viewers").decrement(gone as f64);
        metrics::counter!("gitvista_events_sent_total").increment(before as u64);
        metrics::counter!("gitvista_viewer_mailbox_full_total").increment(full);
        metrics::histogram!("gitvista_broadcast_seconds").record(started.elapsed().as_secs_f64());
    }
}

impl RepoSession {
    /// A remote session tells the fan-out that it wants its repository's events (`watch`, from
    /// `me`) or no longer does.
    fn interest(&self, watch: bool, me: Option<Recipient<crate::events::Relay>>) {
        let Some(crate::events::ClusterLink::Remote { id, interest }) = &self.config.cluster else {
            return;
        };
        let id = id.clone();
        interest.do_send(match (watch, me) {
            (true, Some(session)) => crate::events::Interest::Watch { id, session },
            _ => crate::events::Interest::Unwatch { id },
        });
    }
}

impl Handler<crate::events::Relay> for RepoSession {
    type Result = ();

    fn handle(&mut self, crate::events::Relay(event): crate::events::Relay, _: &mut Context<Self>) {
        self.broadcast(event);
    }
}

/// Whether a filesystem event means something changed: a write, a creation, a removal or a
/// rename. Opens, reads and closes after reading (the server's own reads of `HEAD`, refs and
/// files) and attribute changes are not: reacting to them made every reload trigger the next.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any | EventKind::Other => false,
    }
}

/// Tells a session its watcher failed (it polls from then on).
#[derive(Debug, Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct WatchFailed;

impl Handler<WatchFailed> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: WatchFailed, ctx: &mut Context<Self>) {
        if !self.watch_failed {
            tracing::warn!(path = %self.config.path.display(), "the filesystem watcher failed; polling for changes");
            self.watch_failed = true;
            self.poll_every = self.config.poll_interval;
            self.schedule_poll(ctx);
        }
    }
}

/// Starts a recursive watcher on the work tree that asks `addr` for a status run on every change
/// outside the git directory (whose changes the other watcher reports).
fn watch_tree(
    addr: Addr<RepoSession>,
    work_tree: &Path,
    git_dir: &Path,
) -> Option<notify::RecommendedWatcher> {
    let addr = addr.downgrade();
    let git_dir = git_dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Some(addr) = addr.upgrade() else {
            return;
        };
        match res {
            Ok(event)
                if is_change(&event.kind)
                    && event.paths.iter().any(|p| !p.starts_with(&git_dir)) =>
            {
                addr.do_send(RefreshStatus);
            }
            Ok(_) => {}
            Err(_) => addr.do_send(WatchFailed),
        }
    })
    .ok()?;
    watcher.watch(work_tree, RecursiveMode::Recursive).ok()?;
    Some(watcher)
}

/// Whether a path is one of git's lock files (written and renamed away in every update).
fn is_lock(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "lock")
}

/// Starts a watcher on the git directory (and the common directory of a linked worktree) that
/// asks `addr` for a refresh on every change but lock-file churn.
/// The watcher holds a weak address: it must not keep a stopped session alive.
fn watch(
    addr: Addr<RepoSession>,
    git_dir: &Path,
    common_dir: &Path,
) -> Option<notify::RecommendedWatcher> {
    let addr = addr.downgrade();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Some(addr) = addr.upgrade() else {
            return;
        };
        match res {
            Ok(event) if is_change(&event.kind) && event.paths.iter().any(|p| !is_lock(p)) => {
                addr.do_send(Refresh);
            }
            Ok(_) => {}
            Err(_) => addr.do_send(WatchFailed),
        }
    })
    .ok()?;
    watcher.watch(git_dir, RecursiveMode::Recursive).ok()?;
    if common_dir != git_dir {
        watcher.watch(common_dir, RecursiveMode::Recursive).ok()?;
    }
    Some(watcher)
}

impl Actor for RepoSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        metrics::gauge!("gitvista_sessions").increment(1.0);
        if self.config.is_remote() {
            // Nothing to load: another node holds the repository.
            return;
        }
        if self.config.streamed {
            // The first snapshots come from the remote; the clone is read when it is there.
            return;
        }
        self.start_load(ctx);
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if !self.viewers.is_empty() {
            self.interest(false, None);
        }
        for w in self
            .waiting
            .drain(..)
            .chain(self.waiting_complete.drain(..))
        {
            let _ = w.send(Err(SessionError::Stopped));
        }
        metrics::gauge!("gitvista_sessions").decrement(1.0);
        metrics::gauge!("gitvista_viewers").decrement(self.viewers.len() as f64);
        self.viewers.clear();
        Running::Stop
    }
}

impl RepoSession {
    /// Reads the repository on disk (the first load, or a streamed session's clone once it
    /// landed), off the actor thread; requests wait for it.
    fn start_load(&mut self, ctx: &mut Context<Self>) {
        self.from_disk = true;
        let path = self.config.path.clone();
        let hint_after = self.config.commit_graph_hint_after;
        let caches = Arc::clone(&self.caches);
        // A few loads at a time: each holds a repository's worth of memory while it runs, and a
        // session stopped while waiting never loads.
        let work = async move {
            let _permit = crate::budget::load_permit().await;
            tokio::task::spawn_blocking(move || {
                Snapshot::load(&path, caches, hint_after).map_err(|e| e.to_string())
            })
            .await
        };
        ctx.wait(
            actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
                let result = result.unwrap_or_else(|e| Err(e.to_string()));
                act.loaded(result, ctx);
            }),
        );
    }
}

impl Handler<GetSnapshot> for RepoSession {
    type Result = ResponseFuture<Result<Arc<Snapshot>, SessionError>>;

    fn handle(&mut self, _: GetSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        self.answer_snapshot(false, ctx)
    }
}

impl Handler<GetCompleteSnapshot> for RepoSession {
    type Result = ResponseFuture<Result<Arc<Snapshot>, SessionError>>;

    fn handle(&mut self, _: GetCompleteSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        self.answer_snapshot(true, ctx)
    }
}

impl RepoSession {
    /// The current snapshot, or a future for it: after the first load, and with `complete` once
    /// its metadata is read.
    fn answer_snapshot(
        &mut self,
        complete: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Arc<Snapshot>, SessionError>> {
        self.last_access = std::time::Instant::now();
        self.footprint.touch();
        if self.config.is_remote() {
            return Box::pin(async { Err(SessionError::Remote) });
        }
        // A repository idle long enough to stop fetching starts again when someone looks.
        if self.snapshot.is_some() && self.fetch_timer.is_none() && !self.fetching {
            self.schedule_fetch(ctx);
        }
        if let Some(s) = &self.snapshot
            && (!complete || s.graph.has_metadata())
        {
            let s = Arc::clone(s);
            return Box::pin(async move { Ok(s) });
        }
        if let Some(e) = &self.failed {
            let e = e.clone();
            return Box::pin(async move { Err(SessionError::Load(e)) });
        }
        let (tx, rx) = oneshot::channel();
        if complete {
            self.waiting_complete.push(tx);
            // A fill that failed (it only can by panicking) is tried again for this request.
            if self.snapshot.is_some() && !self.filling {
                self.start_fill(ctx);
            }
        } else {
            self.waiting.push(tx);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(SessionError::Stopped)) })
    }
}

impl Handler<Subscribe> for RepoSession {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        self.last_access = std::time::Instant::now();
        // A first viewer makes the repository hot: fetch on the short interval from now.
        let first = self.viewers.is_empty();
        if let Some(status) = &self.status {
            let _ = msg.viewer.try_send(ViewerEvent::Status(Arc::clone(status)));
        }
        // A viewer arriving during a long fetch, while fetches fail, or while file contents are
        // still being fetched, is told at once.
        let partial = self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.contents != gitcore::repo::Contents::Complete);
        if self.fetch_announced || self.fetch_error.is_some() || partial {
            let _ = msg
                .viewer
                .try_send(ViewerEvent::Remote(Arc::new(self.remote_state())));
        }
        if self.viewers.insert(msg.id, msg.viewer).is_none() {
            metrics::gauge!("gitvista_viewers").increment(1.0);
        }
        if first {
            self.interest(true, Some(ctx.address().recipient()));
        }
        self.footprint.set_viewers(self.viewers.len());
        self.footprint.touch();
        if (first || self.fetch_timer.is_none()) && self.snapshot.is_some() && !self.fetching {
            self.schedule_fetch(ctx);
        }
    }
}

impl Handler<Unsubscribe> for RepoSession {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if self.viewers.remove(&msg.id).is_some() {
            metrics::gauge!("gitvista_viewers").decrement(1.0);
            if self.viewers.is_empty() {
                self.interest(false, None);
            }
        }
        self.footprint.set_viewers(self.viewers.len());
    }
}

impl Handler<Shutdown> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<CloseViewers> for RepoSession {
    type Result = usize;

    fn handle(&mut self, _: CloseViewers, _: &mut Context<Self>) -> usize {
        let n = self.viewers.len();
        self.broadcast(ViewerEvent::Closing);
        metrics::gauge!("gitvista_viewers").decrement(self.viewers.len() as f64);
        self.viewers.clear();
        self.footprint.set_viewers(0);
        n
    }
}

impl Handler<ViewerCount> for RepoSession {
    type Result = usize;

    fn handle(&mut self, _: ViewerCount, _: &mut Context<Self>) -> usize {
        self.viewers.len()
    }
}

impl Handler<Refresh> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: Refresh, ctx: &mut Context<Self>) {
        if self.scheduled {
            return;
        }
        self.scheduled = true;
        ctx.run_later(self.config.debounce, |act, ctx| {
            act.scheduled = false;
            act.start_reload(ctx);
            // The index and HEAD live in the git directory: status may have changed too.
            act.start_status(ctx);
        });
    }
}

impl Handler<FetchNow> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: FetchNow, ctx: &mut Context<Self>) {
        if self.fetching {
            self.fetch_again = true;
        } else {
            self.start_fetch(ctx);
        }
    }
}

impl Handler<AccessChanged> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: AccessChanged, _: &mut Context<Self>) {
        self.broadcast(ViewerEvent::AccessChanged);
    }
}

impl Handler<RefreshStatus> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: RefreshStatus, ctx: &mut Context<Self>) {
        if self.status_scheduled {
            return;
        }
        self.status_scheduled = true;
        ctx.run_later(self.config.status_debounce, |act, ctx| {
            act.status_scheduled = false;
            act.start_status(ctx);
        });
    }
}
