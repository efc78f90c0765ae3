//! [`CloneQueue`]: the only place GitVista runs `git`.
//!
//! Jobs (a clone, a fetch, a deepen) run at most `concurrency` at a time, one per repository;
//! a request for a repository whose job of the same kind is queued or running joins it;
//! interactive jobs go ahead of background ones. Every git process runs hardened: a cleared
//! environment, no system or user configuration (a global file the server owns), no terminal
//! prompts, only the allowed protocols, no hooks, no redirects, stdin closed, the URL after
//! `--`, in its own process group, which is killed whole at the wall-clock timeout or when the
//! clone grows past the disk cap. A clone goes into a temporary directory that is renamed into
//! `repos/<id>` only on success and removed otherwise. Progress lines on stderr become
//! [`JobProgress`] messages.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use actix::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use crate::ids::RepoId;

/// How the queue runs git.
#[derive(Debug, Clone)]
pub struct CloneConfig {
    /// The data directory: clones live in `repos/<id>`, work in progress in `tmp/`.
    pub data_dir: PathBuf,
    /// The git executable.
    pub git: PathBuf,
    /// Jobs running at once.
    pub concurrency: usize,
    /// Wall-clock limit of a clone (and of a deepen).
    pub clone_timeout: Duration,
    /// Wall-clock limit of a fetch.
    pub fetch_timeout: Duration,
    /// Largest repository on disk, in bytes.
    pub max_bytes: u64,
    /// Protocols git may use (`GIT_ALLOW_PROTOCOL`): https, plus http/git/ssh when allowlisted
    /// hosts need them.
    pub protocols: Vec<String>,
    /// Checks a remote URL before every git run that reaches it and says where git may connect
    /// (the hosted layer's address policy); `None` runs git on the URL as given.
    pub target: Option<TargetCheck>,
    /// A job that receives fewer than this many bytes a second (objects on disk plus progress
    /// text), averaged over `low_speed_time`, is stalled and killed (also git's
    /// `http.lowSpeedLimit`).
    pub low_speed_limit: u64,
    /// The window `low_speed_limit` is measured over (also `http.lowSpeedTime`).
    pub low_speed_time: Duration,
    /// Jobs waiting at most, over all clients.
    pub max_waiting: usize,
    /// Jobs queued or running at most per client.
    pub per_client: usize,
    /// Where a job that reaches a remote gets its credential (private repositories); `None`:
    /// every remote is read anonymously.
    pub credentials: Option<Credentials>,
}

/// An HTTP `Authorization` header git sends to the remote for one job. It reaches git only
/// through the environment of that one process (`GIT_CONFIG_COUNT`, `http.extraHeader`): never
/// argv, the URL, the clone's config or a log line. Zeroed when dropped; `Debug` hides it.
pub struct Credential {
    header: zeroize::Zeroizing<String>,
}

impl Credential {
    /// HTTP Basic with `user` and `password` (GitHub: `x-access-token` and the user's token).
    pub fn basic(user: &str, password: &str) -> Credential {
        use base64::Engine as _;
        let pair = zeroize::Zeroizing::new(format!("{user}:{password}"));
        let encoded = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()),
        );
        Credential {
            header: zeroize::Zeroizing::new(format!("Authorization: Basic {}", encoded.as_str())),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

/// What a credential lookup answers: `Ok(None)` to read anonymously, `Err` with the sentence
/// why nobody's credential can read the repository (the job fails as `auth_required`).
pub type CredentialFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Credential>, String>> + Send>>;

/// The lookup [`CloneConfig::credentials`] runs before every job that reaches a remote.
#[derive(Clone)]
pub struct Credentials(pub std::sync::Arc<dyn Fn(RepoId) -> CredentialFuture + Send + Sync>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials")
    }
}

/// Where git may connect for one run: the URL to give it and `-c` settings that pin it (e.g.
/// `http.curloptResolve=host:443:addr`, so git cannot resolve the name again to elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTarget {
    /// The URL git is given.
    pub url: String,
    /// `name=value` settings passed with `-c`.
    pub config: Vec<String>,
}

/// The check [`CloneConfig::target`] runs (blocking: it resolves names); `Err` is the sentence
/// why the URL is refused.
#[derive(Clone)]
pub struct TargetCheck(pub std::sync::Arc<TargetFn>);

/// The function inside a [`TargetCheck`].
pub type TargetFn = dyn Fn(&str) -> Result<GitTarget, String> + Send + Sync;

impl std::fmt::Debug for TargetCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetCheck")
    }
}

impl CloneConfig {
    /// Defaults under `data_dir`: 2 at a time, 10 min per clone, 2 min per fetch, 2 GiB, https.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CloneConfig {
            data_dir: data_dir.into(),
            git: PathBuf::from("git"),
            concurrency: 2,
            clone_timeout: Duration::from_secs(600),
            fetch_timeout: Duration::from_secs(120),
            max_bytes: 2 << 30,
            protocols: vec!["https".into()],
            target: None,
            low_speed_limit: 1024,
            low_speed_time: Duration::from_secs(120),
            max_waiting: 200,
            per_client: 3,
            credentials: None,
        }
    }

    /// Where repository `id` lives once cloned.
    pub fn repo_dir(&self, id: &RepoId) -> PathBuf {
        self.data_dir.join("repos").join(id.as_str())
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// `git clone --bare` of `url`, of the objects `shape` says. A filtered clone of a server
    /// that does not filter fails at once with [`JobError::NoFilter`] (git would fetch
    /// everything instead).
    Clone {
        /// The canonical remote URL (already checked by the caller).
        url: String,
        /// With [`CloneShape::Everything`]: only this many commits of each branch first.
        depth: Option<u32>,
        /// Which objects.
        shape: CloneShape,
    },
    /// Makes a partial clone whole: a fresh clone of its remote (with every object when
    /// `blobs`, else commits and trees) in `tmp/`, moved into place over the partial one. One
    /// clone was measured cheapest: `fetch --refetch` moves the same bytes and leaves two packs
    /// that git 2.47's `repack` mishandles (objects outside promisor packs are dropped).
    Hydrate {
        /// File contents too (else trees only).
        blobs: bool,
    },
    /// Fetches named objects into a partial clone (what one request needs: a commit's trees,
    /// a file's two versions), as git's own lazy fetch does: no negotiation, trees with their
    /// subtrees and no blobs but those named, into a promisor pack. Runs beside the
    /// repository's other job (a hydration may take minutes); at most [`OBJECT_JOBS`] at once.
    /// Ask for trees and blobs in separate jobs: a blob under a tree asked for in the same
    /// fetch is filtered out with the tree's other blobs, and the fetch fails.
    Objects {
        /// The objects, as 40 hex digits.
        ids: Vec<String>,
    },
    /// `git fetch --prune` of branches and tags.
    Fetch,
    /// Fetch the rest of a shallow clone's history.
    Deepen,
    /// `git commit-graph write --reachable --split --changed-paths`: gitcore then reads the
    /// topology without inflating a single commit, and path searches use the Bloom filters.
    CommitGraph,
    /// `git repack -a -d -l`: merges the small packs fetches leave behind.
    Repack,
    /// Points the clone at the repository's new URL (renamed or transferred on its forge);
    /// the next fetch checks it like any URL.
    SetUrl {
        /// The new canonical URL (already checked by the caller).
        url: String,
    },
}

impl JobKind {
    fn same_job(&self, other: &JobKind) -> bool {
        matches!(
            (self, other),
            (JobKind::Clone { .. }, JobKind::Clone { .. })
                | (JobKind::Hydrate { .. }, JobKind::Hydrate { .. })
                | (JobKind::Fetch, JobKind::Fetch)
                | (JobKind::Deepen, JobKind::Deepen)
                | (JobKind::CommitGraph, JobKind::CommitGraph)
                | (JobKind::Repack, JobKind::Repack)
                | (JobKind::SetUrl { .. }, JobKind::SetUrl { .. })
        )
    }

    /// Whether it talks to the remote (the low-speed limit applies).
    fn networked(&self) -> bool {
        matches!(
            self,
            JobKind::Clone { .. }
                | JobKind::Fetch
                | JobKind::Deepen
                | JobKind::Hydrate { .. }
                | JobKind::Objects { .. }
        )
    }

    /// Whether it runs beside the repository's other job (in the objects lane).
    fn beside(&self) -> bool {
        matches!(self, JobKind::Objects { .. })
    }

    fn name(&self) -> &'static str {
        match self {
            JobKind::Clone { .. } => "clone",
            JobKind::Fetch => "fetch",
            JobKind::Deepen => "deepen",
            JobKind::Hydrate { .. } => "hydrate",
            JobKind::Objects { .. } => "objects",
            JobKind::CommitGraph => "commit-graph",
            JobKind::Repack => "repack",
            JobKind::SetUrl { .. } => "set-url",
        }
    }
}

/// Which objects a clone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneShape {
    /// Commits only (`--filter=tree:0`): what a graph needs. Fails with
    /// [`JobError::RefToTree`] when a ref names a tree (Linux's `v2.6.11-tree`): the filter
    /// leaves out even a tree asked for by name.
    CommitsOnly,
    /// Commits and trees (`--filter=blob:none`).
    NoBlobs,
    /// Every object.
    Everything,
}

/// Who is waiting: a timer (background), viewers of a served repository (watched), or a user
/// at a progress bar (interactive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Timers: fetches, deepening.
    Background,
    /// A fetch of a repository people are watching: one slot is kept for these, so pasted
    /// clones (however slow their remotes) cannot starve them.
    Watched,
    /// Someone is looking at a progress bar.
    Interactive,
}

/// Progress parsed from git's stderr.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct JobProgress {
    /// The repository.
    pub id: RepoId,
    /// The phase as git names it ("Receiving objects", "Resolving deltas", ...).
    pub phase: String,
    /// Percent of the phase, when git gives one.
    pub percent: Option<u8>,
    /// The whole line, for people.
    pub text: String,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// git exited with an error; its last stderr lines say why.
    #[error("git {kind} failed: {message}")]
    Git {
        /// clone, fetch or deepen.
        kind: &'static str,
        /// The end of git's stderr.
        message: String,
    },
    /// The wall-clock limit passed; the process group was killed.
    #[error("git {kind} took longer than {secs} s and was stopped")]
    Timeout {
        /// clone, fetch or deepen.
        kind: &'static str,
        /// The limit.
        secs: u64,
    },
    /// The repository grew past the disk cap; the process group was killed.
    #[error("the repository is larger than the {limit}-byte limit")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// The job could not start or its files could not be moved.
    #[error("{0}")]
    Io(String),
    /// A fetch or deepen for a repository that is not cloned.
    #[error("repository {0} is not cloned")]
    NotCloned(RepoId),
    /// The queue stopped.
    #[error("the clone queue stopped")]
    Stopped,
    /// The remote's address is not allowed (checked before git ran).
    #[error("{0}")]
    Refused(String),
    /// The job was cancelled (its repository was deleted).
    #[error("the job was cancelled")]
    Cancelled,
    /// A filtered clone's server does not filter objects (it would send everything).
    #[error("the server does not support partial clones")]
    NoFilter,
    /// A commits-only clone could not be completed: a ref names a tree, which the filter left
    /// out.
    #[error("a ref names a tree, which a commits-only clone cannot hold")]
    RefToTree,
    /// [`MAX_QUEUED_OBJECTS`] object fetches wait already.
    #[error("too many object fetches are waiting")]
    Busy,
    /// The repository needs a credential and no user's works any more.
    #[error("no credential: {0}")]
    NoCredential(String),
    /// The remote sent less than the low-speed limit for the whole window; the process group
    /// was killed.
    #[error("git {kind} received under {limit} bytes a second for {secs} s and was stopped")]
    Stalled {
        /// clone, fetch or deepen.
        kind: &'static str,
        /// Bytes a second required.
        limit: u64,
        /// The window.
        secs: u64,
    },
}

/// Why the queue will not take another job now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueFull {
    /// This client has this many jobs queued or running already.
    #[error("this address has {0} clones waiting or running already; wait for one to finish")]
    Client(usize),
    /// The queue holds this many waiting jobs.
    #[error("{0} clones are waiting already; try again in a few minutes")]
    Total(usize),
}

impl QueueFull {
    /// Whether one more job of a client may wait, with `waiting` jobs queued in all and `mine`
    /// of the client's queued or running: at most `max_waiting` and `per_client`. The rule of
    /// this queue and of the cluster's shared one (whose counts the store reads).
    pub fn admit(
        waiting: usize,
        mine: usize,
        per_client: usize,
        max_waiting: usize,
    ) -> Result<(), QueueFull> {
        if waiting >= max_waiting {
            return Err(QueueFull::Total(waiting));
        }
        if mine >= per_client {
            return Err(QueueFull::Client(mine));
        }
        Ok(())
    }
}

/// Asks whether a new job for `client` would be accepted (checked before a clone is promised).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), QueueFull>")]
pub struct Admit {
    /// The client asking.
    pub client: String,
}

/// What users are told about a failed job: a few classes, each with a sentence. git's own text
/// (which would turn the page into a port scanner: "connection refused" vs "timed out") is for
/// the logs and the admin API only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// No repository at that URL (or it is private).
    NotFound,
    /// The remote wants credentials.
    AuthRequired,
    /// The remote could not be reached or did not speak git.
    Unreachable,
    /// It took too long.
    Timeout,
    /// The repository is over the size limit.
    TooLarge,
    /// The URL's address is not allowed.
    Refused,
    /// Anything else (the server's own trouble, a cancelled job).
    Failed,
}

impl FailureClass {
    /// The stable code (`not_found`, ...).
    pub fn code(self) -> &'static str {
        match self {
            FailureClass::NotFound => "not_found",
            FailureClass::AuthRequired => "auth_required",
            FailureClass::Unreachable => "unreachable",
            FailureClass::Timeout => "timeout",
            FailureClass::TooLarge => "too_large",
            FailureClass::Refused => "refused",
            FailureClass::Failed => "failed",
        }
    }

    /// The sentence users see.
    pub fn sentence(self) -> &'static str {
        match self {
            FailureClass::NotFound => {
                "No repository was found at this URL. Check the address; a private repository needs you signed in with an account that can read it."
            }
            FailureClass::AuthRequired => {
                "The repository's server asks for a sign-in: sign in with an account that can read this repository."
            }
            FailureClass::Unreachable => {
                "The repository's server could not be reached or did not answer as a Git server."
            }
            FailureClass::Timeout => {
                "The repository's server took too long to answer; try again later."
            }
            FailureClass::TooLarge => "The repository is larger than this server accepts.",
            FailureClass::Refused => "This address is not one GitVista may reach.",
            FailureClass::Failed => "GitVista could not read the repository; try again later.",
        }
    }
}

impl JobError {
    /// Whether this only says which shape of clone the remote takes ([`JobError::NoFilter`],
    /// [`JobError::RefToTree`]): the caller clones again in another shape, so it is neither
    /// logged as a failure nor counted as one.
    pub fn is_fallback(&self) -> bool {
        matches!(self, JobError::NoFilter | JobError::RefToTree)
    }

    /// The `reason` label of a fallback (`no_filter`, `ref_to_tree`); empty for anything else.
    pub fn fallback_reason(&self) -> &'static str {
        match self {
            JobError::NoFilter => "no_filter",
            JobError::RefToTree => "ref_to_tree",
            _ => "",
        }
    }

    /// Which class of failure this is, for users.
    pub fn class(&self) -> FailureClass {
        match self {
            JobError::Timeout { .. } | JobError::Stalled { .. } => FailureClass::Timeout,
            JobError::TooLarge { .. } => FailureClass::TooLarge,
            JobError::Refused(_) => FailureClass::Refused,
            JobError::NoCredential(_) => FailureClass::AuthRequired,
            JobError::Git { message, .. } => classify_git(message),
            JobError::Io(_)
            | JobError::NotCloned(_)
            | JobError::Stopped
            | JobError::Cancelled
            | JobError::NoFilter
            | JobError::RefToTree
            | JobError::Busy => FailureClass::Failed,
        }
    }

    /// What users are told: the class's sentence (the policy's own sentence for a refusal, which
    /// names only what the user typed).
    pub fn public_message(&self) -> String {
        match self {
            JobError::Refused(why) => why.clone(),
            JobError::TooLarge { limit } => {
                format!("The repository is larger than this server's limit of {limit} bytes.")
            }
            other => other.class().sentence().to_string(),
        }
    }
}

/// Sorts git's last words into a class.
fn classify_git(message: &str) -> FailureClass {
    let m = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "returned error: 401",
        "returned error: 403",
        "permission denied",
    ]) {
        FailureClass::AuthRequired
    } else if any(&[
        "not found",
        "does not appear to be a git repository",
        "returned error: 404",
        "no such repository",
        "does not exist",
        "access denied",
    ]) {
        FailureClass::NotFound
    } else if any(&["timed out", "timeout"]) {
        FailureClass::Timeout
    } else {
        FailureClass::Unreachable
    }
}

/// git's text made safe to log and show to admins: control characters and terminal escape
/// sequences removed, at most 500 characters.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(500));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte (CSI), or ESC and one more character.
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        if c.is_control() || ('\u{80}'..='\u{9f}').contains(&c) {
            continue;
        }
        if out.chars().count() >= 500 {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Queues a job; answers when it (or the job it joined) ends.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), JobError>")]
pub struct Enqueue {
    /// The repository.
    pub id: RepoId,
    /// What to run.
    pub kind: JobKind,
    /// Interactive jobs go first.
    pub priority: Priority,
    /// Where progress goes, if anywhere.
    pub progress: Option<Recipient<JobProgress>>,
    /// Who asked (a client key), for the per-client cap; `None` for the server's own jobs.
    pub client: Option<String>,
}

/// Counters, for metrics and tests.
#[derive(Debug, Message)]
#[rtype(result = "QueueStats")]
pub struct GetStats;

/// What the queue has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, MessageResponse)]
pub struct QueueStats {
    /// git processes started.
    pub started: u64,
    /// Of which fetches.
    pub fetches: u64,
    /// Jobs that joined one already queued or running.
    pub joined: u64,
    /// Jobs running now.
    pub running: usize,
    /// Jobs waiting.
    pub queued: usize,
}

type Waiter = oneshot::Sender<Result<(), JobError>>;

#[derive(Debug)]
struct Job {
    id: RepoId,
    kind: JobKind,
    priority: Priority,
    waiters: Vec<Waiter>,
    progress: Vec<Recipient<JobProgress>>,
    /// When it was queued.
    queued_at: std::time::Instant,
    /// When its git process started.
    started_at: Option<std::time::Instant>,
    /// Its latest progress line.
    latest: Option<JobProgress>,
    /// Fired to kill its git process (the repository was deleted); set while it runs.
    cancel: Option<oneshot::Sender<()>>,
    /// Who asked for it, if a client did.
    client: Option<String>,
}

impl Job {
    fn info(&self) -> JobInfo {
        JobInfo {
            id: self.id.as_str().to_string(),
            kind: self.kind.name(),
            priority: match self.priority {
                Priority::Interactive => "interactive",
                Priority::Watched => "watched",
                Priority::Background => "background",
            },
            running: self.started_at.is_some(),
            secs: self
                .started_at
                .unwrap_or(self.queued_at)
                .elapsed()
                .as_secs_f64(),
            waiters: self.waiters.len(),
            phase: self.latest.as_ref().map(|p| p.phase.clone()),
            percent: self.latest.as_ref().and_then(|p| p.percent),
        }
    }
}

/// A queued or running job, for the admin page.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    /// The repository.
    pub id: String,
    /// clone, fetch or deepen.
    pub kind: &'static str,
    /// interactive or background.
    pub priority: &'static str,
    /// Whether its git process runs (else it waits).
    pub running: bool,
    /// Seconds it has run, or waited.
    pub secs: f64,
    /// Callers waiting for it (joined duplicates included).
    pub waiters: usize,
    /// The phase of its latest progress line.
    pub phase: Option<String>,
    /// Percent of that phase.
    pub percent: Option<u8>,
}

/// Cancels every job of a repository: queued ones are dropped, a running one has its git process
/// group killed and its debris removed; their callers get [`JobError::Cancelled`]. Answers how
/// many jobs were cancelled.
#[derive(Debug, Clone, Message)]
#[rtype(result = "usize")]
pub struct Cancel(pub RepoId);

impl Handler<Cancel> for CloneQueue {
    type Result = usize;

    fn handle(&mut self, Cancel(id): Cancel, _: &mut Context<Self>) -> usize {
        let mut n = 0;
        let mut kept = VecDeque::with_capacity(self.queued.len());
        for job in self.queued.drain(..) {
            if job.id == id {
                n += 1;
                for w in job.waiters {
                    let _ = w.send(Err(JobError::Cancelled));
                }
            } else {
                kept.push_back(job);
            }
        }
        self.queued = kept;
        for lane in [false, true] {
            if let Some(cancel) = self
                .running
                .get_mut(&(id.clone(), lane))
                .and_then(|j| j.cancel.take())
            {
                n += 1;
                let _ = cancel.send(());
            }
        }
        self.gauges();
        n
    }
}

impl Handler<Admit> for CloneQueue {
    type Result = Result<(), QueueFull>;

    fn handle(&mut self, msg: Admit, _: &mut Context<Self>) -> Self::Result {
        let mine = self
            .queued
            .iter()
            .chain(self.running.values())
            .filter(|j| j.client.as_deref() == Some(msg.client.as_str()))
            .count();
        QueueFull::admit(
            self.queued.len(),
            mine,
            self.config.per_client,
            self.config.max_waiting,
        )
    }
}

/// Lists the running jobs, then the queued ones in queue order.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<JobInfo>")]
pub struct ListJobs;

/// The queue of git jobs.
#[derive(Debug)]
pub struct CloneQueue {
    config: CloneConfig,
    /// Why git must not run: the server-owned configuration could not be written (git would
    /// fall back to its defaults: hooks, redirects, credential helpers). Set at start.
    broken: Option<String>,
    queued: VecDeque<Job>,
    /// Running jobs by repository and lane (`true`: the objects lane, beside the main job).
    running: HashMap<(RepoId, bool), Job>,
    stats: QueueStats,
}

impl CloneQueue {
    /// A queue running git as `config` says. A relative data directory is made absolute here
    /// (against the working directory now): git runs inside it and is handed paths under it,
    /// which must name the same places from there.
    pub fn new(mut config: CloneConfig) -> Self {
        if let Ok(absolute) = std::path::absolute(&config.data_dir) {
            config.data_dir = absolute;
        }
        CloneQueue {
            config,
            broken: None,
            queued: VecDeque::new(),
            running: HashMap::new(),
            stats: QueueStats::default(),
        }
    }

    fn gauges(&self) {
        metrics::gauge!("gitvista_clone_queue_depth").set(self.queued.len() as f64);
        metrics::gauge!("gitvista_clone_jobs_running").set(self.running.len() as f64);
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        // Object fetches first: small, and someone waits for each; a lane of their own, so a
        // long hydration or clone never holds up a diff.
        loop {
            let beside = self.running.keys().filter(|(_, lane)| *lane).count();
            if beside >= OBJECT_JOBS {
                break;
            }
            let Some(i) = self
                .queued
                .iter()
                .position(|j| j.kind.beside() && !self.running.contains_key(&(j.id.clone(), true)))
            else {
                break;
            };
            let Some(job) = self.queued.remove(i) else {
                break;
            };
            self.start(job, ctx);
        }
        let slots = self.config.concurrency.max(1);
        while self.running.keys().filter(|(_, lane)| !*lane).count() < slots {
            // With two slots or more, one is kept for fetches of watched repositories.
            let others = self
                .running
                .iter()
                .filter(|((_, lane), j)| !*lane && j.priority != Priority::Watched)
                .count();
            let only_watched = slots >= 2 && others >= slots - 1;
            // The first job of the highest priority whose repository has nothing running.
            let Some(best) = self
                .queued
                .iter()
                .enumerate()
                .filter(|(_, j)| !j.kind.beside())
                .filter(|(_, j)| !self.running.contains_key(&(j.id.clone(), false)))
                .filter(|(_, j)| !only_watched || j.priority == Priority::Watched)
                .max_by(|(ia, a), (ib, b)| a.priority.cmp(&b.priority).then(ib.cmp(ia)))
                .map(|(i, _)| i)
            else {
                return;
            };
            let Some(job) = self.queued.remove(best) else {
                return;
            };
            self.start(job, ctx);
        }
    }

    fn start(&mut self, job: Job, ctx: &mut Context<Self>) {
        {
            self.stats.started += 1;
            if job.kind == JobKind::Fetch {
                self.stats.fetches += 1;
            }
            let id = job.id.clone();
            let kind = job.kind.clone();
            let mut progress = job.progress.clone();
            // The queue keeps each running job's latest line too, for the admin page.
            progress.push(ctx.address().recipient());
            let mut job = job;
            job.started_at = Some(std::time::Instant::now());
            let (cancel, cancelled) = oneshot::channel();
            job.cancel = Some(cancel);
            let lane = kind.beside();
            self.running.insert((id.clone(), lane), job);
            let config = self.config.clone();
            let work = async move { run_job(&config, &id, &kind, &progress, cancelled).await };
            ctx.spawn(actix::fut::wrap_future::<_, Self>(work).map(
                move |(id, result), act, ctx| {
                    act.finish((id, lane), result, ctx);
                },
            ));
        }
    }

    fn finish(
        &mut self,
        key: (RepoId, bool),
        result: Result<(), JobError>,
        ctx: &mut Context<Self>,
    ) {
        if let Some(job) = self.running.remove(&key) {
            for w in job.waiters {
                let _ = w.send(result.clone());
            }
        }
        self.pump(ctx);
        self.gauges();
    }
}

impl Actor for CloneQueue {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        // Work left in tmp/ by a crash is half a repository: remove it.
        let tmp = self.config.data_dir.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::create_dir_all(&tmp);
        let _ = std::fs::create_dir_all(self.config.data_dir.join("repos"));
        let _ = std::fs::create_dir_all(self.config.data_dir.join("git-home"));
        let path = self.config.data_dir.join("gitconfig");
        let written = std::fs::write(&path, GITCONFIG)
            .and_then(|()| std::fs::read_to_string(&path))
            .map(|back| back == GITCONFIG);
        if !matches!(written, Ok(true)) {
            let why = format!(
                "the server's git configuration {} could not be written; git will not run",
                path.display()
            );
            tracing::error!("{why}");
            self.broken = Some(why);
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        for job in self
            .queued
            .drain(..)
            .chain(self.running.drain().map(|(_, j)| j))
        {
            for w in job.waiters {
                let _ = w.send(Err(JobError::Stopped));
            }
        }
        Running::Stop
    }
}

impl Handler<Enqueue> for CloneQueue {
    type Result = ResponseFuture<Result<(), JobError>>;

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(why) = &self.broken {
            let e = JobError::Io(why.clone());
            return Box::pin(async move { Err(e) });
        }
        let (tx, rx) = oneshot::channel();
        let objects_waiting = self.queued.iter().filter(|j| j.kind.beside()).count();
        let existing = match &msg.kind {
            // Objects join a fetch, running or queued, that asks for all of them. Requests are
            // not merged: one may ask for trees and another for blobs under them, which one
            // fetch cannot bring together (see `JobKind::Objects`).
            JobKind::Objects { ids } => {
                let covers = |j: &Job| match &j.kind {
                    JobKind::Objects { ids: theirs } => ids.iter().all(|i| theirs.contains(i)),
                    _ => false,
                };
                match self
                    .running
                    .get_mut(&(msg.id.clone(), true))
                    .filter(|j| covers(j))
                {
                    Some(j) => Some(j),
                    None => self.queued.iter_mut().find(|j| j.id == msg.id && covers(j)),
                }
            }
            kind => self
                .running
                .get_mut(&(msg.id.clone(), false))
                .filter(|j| j.kind.same_job(kind))
                .or_else(|| {
                    self.queued
                        .iter_mut()
                        .find(|j| j.id == msg.id && j.kind.same_job(kind))
                }),
        };
        if existing.is_none() && msg.kind.beside() && objects_waiting >= MAX_QUEUED_OBJECTS {
            return Box::pin(async { Err(JobError::Busy) });
        }
        match existing {
            Some(job) => {
                self.stats.joined += 1;
                job.waiters.push(tx);
                job.progress.extend(msg.progress);
                job.priority = job.priority.max(msg.priority);
            }
            None => {
                self.queued.push_back(Job {
                    id: msg.id,
                    kind: msg.kind,
                    priority: msg.priority,
                    waiters: vec![tx],
                    progress: msg.progress.into_iter().collect(),
                    queued_at: std::time::Instant::now(),
                    started_at: None,
                    latest: None,
                    cancel: None,
                    client: msg.client,
                });
                self.pump(ctx);
                self.gauges();
            }
        }
        Box::pin(async move { rx.await.unwrap_or(Err(JobError::Stopped)) })
    }
}

impl Handler<JobProgress> for CloneQueue {
    type Result = ();

    fn handle(&mut self, msg: JobProgress, _: &mut Context<Self>) {
        // Progress of the main job (an object fetch's is not worth a line on the admin page).
        if let Some(job) = self.running.get_mut(&(msg.id.clone(), false)) {
            job.latest = Some(msg);
        }
    }
}

impl Handler<ListJobs> for CloneQueue {
    type Result = MessageResult<ListJobs>;

    fn handle(&mut self, _: ListJobs, _: &mut Context<Self>) -> Self::Result {
        let mut running: Vec<JobInfo> = self.running.values().map(Job::info).collect();
        running.sort_by(|a, b| b.secs.total_cmp(&a.secs));
        running.extend(self.queued.iter().map(Job::info));
        MessageResult(running)
    }
}

impl Handler<GetStats> for CloneQueue {
    type Result = QueueStats;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> QueueStats {
        QueueStats {
            running: self.running.len(),
            queued: self.queued.len(),
            ..self.stats
        }
    }
}

/// Object fetches running at once (over all repositories), beside the other jobs.
pub const OBJECT_JOBS: usize = 2;

/// Object fetches waiting at most (each is one request's; past it requests wait for the
/// hydration instead).
pub const MAX_QUEUED_OBJECTS: usize = 64;

/// Objects one fetch asks for at most (a request needing more is told to wait for hydration).
pub const MAX_OBJECTS: usize = 4096;

/// The global git configuration the server owns: nothing a user's or the system's configuration
/// could add, no hooks, no redirects, no credential helpers. Fetched objects always stay packed
/// (`unpackLimit = 1`: packs read faster than thousands of loose files, and the repack job
/// merges them), and fetches extend the commit-graph.
const GITCONFIG: &str = "[core]\n\thooksPath = /dev/null\n\tfsmonitor = false\n[http]\n\tfollowRedirects = false\n[credential]\n\thelper =\n[protocol]\n\tallow = never\n[protocol \"https\"]\n\tallow = always\n[transfer]\n\tfsckObjects = false\n\tunpackLimit = 1\n[gc]\n\tauto = 0\n[fetch]\n\twriteCommitGraph = true\n";

/// A git command with the hardened environment.
fn git_command(config: &CloneConfig, cwd: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&config.git);
    cmd.current_dir(cwd)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
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

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Runs one job to its end. Answers the job's repository id with the outcome.
async fn run_job(
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
fn pinned_git_command(
    config: &CloneConfig,
    cwd: &Path,
    to: &GitTarget,
    credential: Option<&Credential>,
) -> tokio::process::Command {
    let mut cmd = git_command(config, cwd);
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
fn origin_git_command(
    config: &CloneConfig,
    cwd: &Path,
    url: &str,
    to: &GitTarget,
    credential: Option<&Credential>,
) -> tokio::process::Command {
    let mut cmd = pinned_git_command(config, cwd, to, credential);
    cmd.arg("-c").arg(format!("url.{}.insteadOf={url}", to.url));
    cmd
}

/// The credential for a job on `id` that reaches its remote.
async fn credential(config: &CloneConfig, id: &RepoId) -> Result<Option<Credential>, JobError> {
    match &config.credentials {
        None => Ok(None),
        Some(lookup) => (lookup.0)(id.clone()).await.map_err(JobError::NoCredential),
    }
}

/// The URL a cloned repository fetches from (`remote.origin.url`, the canonical URL).
async fn origin_url(config: &CloneConfig, repo: &Path) -> Result<String, JobError> {
    let mut cmd = git_command(config, repo);
    cmd.args(["config", "--file", "config", "--get", "remote.origin.url"])
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
async fn target(config: &CloneConfig, url: &str) -> Result<GitTarget, JobError> {
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

async fn run_job_inner(
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
            let mut cmd = pinned_git_command(config, &config.data_dir, &to, credential.as_ref());
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
            let mut cmd = pinned_git_command(config, &config.data_dir, &to, credential.as_ref());
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
                    .all(|i| i.len() == 40 && i.bytes().all(|b| b.is_ascii_hexdigit()))
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
            let mut cmd = git_command(config, &final_dir);
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
            let mut cmd = git_command(config, &final_dir);
            cmd.args(["config", "--file", "config", "remote.origin.url", url]);
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
    if let Some(canonical) = canonical {
        // git was given the pinned URL; later fetches read the canonical one back and check it
        // again (a name's address may change).
        let mut set = git_command(config, &work_dir);
        set.args([
            "config",
            "--file",
            "config",
            "remote.origin.url",
            &canonical,
        ]);
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
    use super::{parse_progress, sanitize};

    #[test]
    fn gits_words_lose_escape_sequences_and_control_characters() {
        let hostile = "fatal: \u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}bell\r\u{8}back \u{9b}csi";
        let clean = sanitize(hostile);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(clean.starts_with("fatal: red"), "{clean:?}");
        assert_eq!(
            sanitize(&"x".repeat(2000)).chars().count(),
            501,
            "500 and an ellipsis"
        );
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("Receiving objects:  72% (1450/2013), 1.20 MiB | 3.00 MiB/s"),
            Some(("Receiving objects".into(), Some(72)))
        );
        assert_eq!(
            parse_progress("remote: Counting objects: 100% (5/5), done."),
            Some(("Counting objects".into(), Some(100)))
        );
        assert_eq!(parse_progress("Cloning into bare repository '/x'..."), None);
        assert_eq!(parse_progress("fatal: repository 'x' not found"), None);
    }
}
