//! [`RepoSession`]: one actor per repository. Here: its settings, the messages it takes, its
//! state and its life (start, stop); beside it, its rooms: `fetching` (a hosted session's
//! fetches), `loading` (loads, reloads, status, polls), `viewers` (broadcasts and the requests
//! viewers send), `watching` (filesystem watchers), [`contents`] (hydrating file contents) and
//! [`streamed`] (a first view streamed from the remote).

pub mod contents;
mod fetching;
mod loading;
pub mod streamed;
mod viewers;
mod watching;

pub use watching::WatchFailed;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::cache::SessionCaches;
use crate::clone_queue::CloneQueue;
use crate::ids::RepoId;
use crate::snapshot::Snapshot;
use gitcore::worktree::WorkStatus;

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
    /// Whether the user's own git configuration may name mailmaps (local mode, as `git log` run
    /// by the user reads it); a hosted repository's mailmap comes from the repository alone.
    pub user_config: gitcore::mailmap::UserConfig,
    /// Show a large repository's newest commits while its whole history loads (`None`: the
    /// first view waits for the whole load).
    pub first_screen: Option<crate::snapshot::FirstScreen>,
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
            user_config: gitcore::mailmap::UserConfig::Read,
            first_screen: Some(crate::snapshot::FirstScreen::default()),
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
    pub hooks: Option<Arc<crate::pace::HookClock>>,
    /// While a hook delivered within `hook_window`, fetches run only this often, as a safety
    /// net for a lost delivery (15 min); never more often than without one.
    pub hooked_every: Duration,
    /// How recently a hook must have delivered to be trusted (24 h).
    pub hook_window: Duration,
    /// How often the layer above lets the repository be fetched (`None`: at the adaptive pace).
    pub pace: Option<crate::pace::PaceRule>,
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
            pace: None,
        }
    }
}

impl FetchConfig {
    /// The repository's pace now.
    pub fn pace(&self) -> crate::pace::Pace {
        self.pace
            .as_ref()
            .map_or(crate::pace::Pace::Adaptive, |rule| (rule.0)(&self.id))
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
    /// Where events go: a socket's queue, or an actor's mailbox (`Arc::new(addr.recipient())`).
    pub viewer: crate::viewer::Viewer,
    /// The snapshot version the viewer was last told of (its socket's opening summary), if any:
    /// a change between that and this subscription reaches no viewer's mailbox, so a session
    /// past it tells the viewer to read again ([`ViewerEvent::Behind`]).
    pub seen: Option<u64>,
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
    /// Work-tree status runs since the session started.
    pub status_runs: u64,
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
            status_runs: self.status_runs,
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
    viewers: HashMap<u64, crate::viewer::Viewer>,
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
    /// A remote session: the owner's version after the last delta it relayed (it holds no
    /// snapshot to say which version its viewers have).
    relayed_version: Option<u64>,
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
    /// Work-tree status runs.
    status_runs: u64,
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
    /// The whole history is being read from disk (a first screen, or a streamed history, may be
    /// served meanwhile; reloads wait for it).
    loading: bool,
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
            loading: false,
            footprint,
            reloads: 0,
            reload_checks: 0,
            status_runs: 0,
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
            relayed_version: None,
            fetch_detail: None,
            fetch_failures: 0,
            fetch_timer: None,
            last_fetch: None,
            report_after_reload: None,
        }
    }
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
