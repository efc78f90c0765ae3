//! The [`CloneQueue`] actor: jobs queued by priority, joined per repository and kind, run at
//! most `concurrency` at a time, admitted per client and in all, cancelled, listed and counted.

use std::collections::{HashMap, VecDeque};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::*;
use crate::ids::RepoId;

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

pub(super) type Waiter = oneshot::Sender<Result<(), JobError>>;

#[derive(Debug)]
pub(super) struct Job {
    pub(super) id: RepoId,
    pub(super) kind: JobKind,
    pub(super) priority: Priority,
    pub(super) waiters: Vec<Waiter>,
    pub(super) progress: Vec<Recipient<JobProgress>>,
    /// When it was queued.
    pub(super) queued_at: std::time::Instant,
    /// When its git process started.
    pub(super) started_at: Option<std::time::Instant>,
    /// Its latest progress line.
    pub(super) latest: Option<JobProgress>,
    /// Fired to kill its git process (the repository was deleted); set while it runs.
    pub(super) cancel: Option<oneshot::Sender<()>>,
    /// Who asked for it, if a client did.
    pub(super) client: Option<String>,
}

impl Job {
    pub(super) fn info(&self) -> JobInfo {
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
    pub(super) config: CloneConfig,
    /// Why git must not run: the server-owned configuration could not be written (git would
    /// fall back to its defaults: hooks, redirects, credential helpers). Set at start.
    pub(super) broken: Option<String>,
    pub(super) queued: VecDeque<Job>,
    /// Running jobs by repository and lane (`true`: the objects lane, beside the main job).
    pub(super) running: HashMap<(RepoId, bool), Job>,
    pub(super) stats: QueueStats,
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

    pub(super) fn gauges(&self) {
        metrics::gauge!("gitvista_clone_queue_depth").set(self.queued.len() as f64);
        metrics::gauge!("gitvista_clone_jobs_running").set(self.running.len() as f64);
    }

    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn start(&mut self, job: Job, ctx: &mut Context<Self>) {
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

    pub(super) fn finish(
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
