//! A repository's life from a pasted URL to a served session: how its session runs, the clone
//! queued in the shared job table and run by its owner, the jobs this node claims, letting go of
//! a repository that moved, and completing a partial clone (deepened, then hydrated).

use std::sync::Arc;
use std::time::Duration;

use gitvista_actors::clone_queue::{CloneShape, Enqueue, JobError, JobKind, Priority, dir_size};
use gitvista_actors::repo_session::contents::Hydration;
use gitvista_actors::repo_session::{FetchConfig, FetchNow, GetSnapshot};
use gitvista_actors::supervisor::{Forget, GetSession, Register, Running};
use gitvista_actors::{RepoId, SessionConfig};

use crate::hosted::DETAILS_KEPT;
use crate::hosted::Hosted;
use crate::hosted::fetches::maintain;
use crate::hosted::status::LatestProgress;
use gitvista_actors::pace::{Pace, PaceRule};
use gitvista_store::Repo;

impl Hosted {
    /// Each repository's fetch pace from the plans: none while frozen over its users' plans;
    /// with billing, no faster than the free plan's pace unless a paying user (or a paying team's
    /// list) keeps it.
    pub(crate) fn pace_rule(&self) -> PaceRule {
        let frozen = Arc::clone(&self.frozen);
        let paid = self
            .stripe
            .as_ref()
            .map(|_| (Arc::clone(&self.paid), self.config.free_fetch_interval));
        PaceRule(Arc::new(move |id| {
            if frozen.contains(id) {
                Pace::Never
            } else {
                match &paid {
                    Some((paid, floor)) if !paid.contains(id) => Pace::AtMost(*floor),
                    _ => Pace::Adaptive,
                }
            }
        }))
    }

    /// How a hosted repository's session runs: no watcher; fetches on the adaptive timer.
    pub(crate) fn session_config(&self, id: &RepoId) -> SessionConfig {
        let c = &self.config;
        SessionConfig {
            watch: false,
            status: false,
            poll_interval: Duration::from_secs(3600),
            commit_graph_hint_after: None,
            // The server's own git configuration is not the repository's.
            user_config: gitcore::mailmap::UserConfig::Ignore,
            fetch: Some(FetchConfig {
                with_viewers: c.fetch_with_viewers,
                notice_after: c.fetch_notice,
                recent: c.fetch_recent,
                cold: c.fetch_cold,
                idle_stop: c.fetch_idle_stop,
                on_done: Some(self.recorder.clone().recipient()),
                hooks: Some(Arc::clone(&self.hooks.clock)),
                hooked_every: c.hooked_every,
                hook_window: c.hook_window,
                pace: Some(self.pace_rule()),
                ..FetchConfig::new(self.queue.clone(), id.clone())
            }),
            cluster: self
                .bus
                .as_ref()
                .map(|bus| gitvista_actors::events::ClusterLink::Owner {
                    id: id.clone(),
                    publish: bus.clone().recipient(),
                }),
            ..SessionConfig::local(self.clone_config.repo_dir(id))
        }
    }

    /// Commits of the served session of `id` (loading it if needed).
    pub(crate) async fn served_commits(&self, id: &RepoId) -> Option<usize> {
        let session = self
            .supervisor
            .send(GetSession(id.clone()))
            .await
            .ok()?
            .ok()?;
        let snapshot = session.send(GetSnapshot).await.ok()?.ok()?;
        Some(snapshot.graph.len())
    }

    /// Where repository `id`'s clone lives.
    pub fn repo_dir(&self, id: &RepoId) -> std::path::PathBuf {
        self.clone_config.repo_dir(id)
    }

    pub(crate) fn register(&self, id: &RepoId) {
        self.supervisor.do_send(Register {
            id: id.clone(),
            config: self.session_config(id),
        });
    }

    /// Queues a clone of `repo` in the shared job table (for `client`, whose clones are
    /// counted against their limit): the node that claims it (this one, on a single node)
    /// places the repository on its disk, clones it, and serves it. Where regions are named,
    /// a repository asked for the first time is placed in region `asked_in` (the one the
    /// request came through; this node's own when `None`), or the nearest with a worker.
    pub fn start_clone(
        self: Arc<Self>,
        repo: Repo,
        client: Option<crate::client::ClientKey>,
        asked_in: Option<String>,
    ) {
        actix::spawn(async move {
            let store = self.store.clone();
            let payload = clone_payload(client.map(|c| c.to_string()));
            let asked_in =
                asked_in.or_else(|| self.config.cluster.regions.region().map(str::to_string));
            let queued = tokio::task::spawn_blocking(move || {
                if let Some(asked_in) = asked_in {
                    let have = store
                        .regions_with_workers(gitvista_cluster::NODE_LEASE.as_millis() as i64)?;
                    let region = gitvista_cluster::regions::nearest(Some(&asked_in), &have)
                        .unwrap_or(&asked_in);
                    store.place_in_region(&repo.id, region)?;
                }
                queue_clone(&store, &repo.id, None, &payload)
            })
            .await;
            match queued {
                Ok(Ok(_)) => self.wake_jobs(),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not queue a clone"),
                Err(e) => tracing::warn!(error = %e, "could not queue a clone"),
            }
        });
    }

    /// Queues a `kind` job for repository `id` in the shared table (coalescing with one queued
    /// already) and wakes the runners.
    pub async fn queue_job(
        &self,
        id: &RepoId,
        kind: &'static str,
        priority: i32,
    ) -> Result<(), gitvista_errors::ApiError> {
        let (store, rid) = (self.store.clone(), id.as_str().to_string());
        gitvista_errors::blocking(move || store.enqueue_job(&rid, kind, priority, None)).await?;
        self.wake_jobs();
        Ok(())
    }

    /// Tells this node's job runner to look for work now (other nodes hear of it through
    /// PostgreSQL's NOTIFY).
    pub fn wake_jobs(&self) {
        if let Some(runner) = self.runner.get() {
            runner.do_send(gitvista_cluster::runner::Wake);
        }
    }

    /// This node is stopping: its job runner claims nothing more, lets running jobs end for up
    /// to `within`, and hands back those still running. Answers how many were handed back.
    pub async fn drain_jobs(&self, within: std::time::Duration) -> usize {
        match self.runner.get() {
            Some(runner) => runner
                .send(gitvista_cluster::runner::Drain { within })
                .await
                .unwrap_or(0),
            None => 0,
        }
    }

    /// Whether this node may take one more repository onto its disk (free space above the
    /// floor, clones within the quota).
    pub fn has_room_to_clone(&self) -> bool {
        self.free_bytes() >= self.config.min_free
    }

    /// Runs a job this node claimed (see [`gitvista_cluster::runner`]); `Err` says why it should
    /// be tried again.
    pub async fn run_job(
        self: &Arc<Self>,
        claimed: &gitvista_store::jobs::Claimed,
    ) -> Result<(), String> {
        let job = &claimed.job;
        let Some(id) = RepoId::parse(&job.repo_id) else {
            return Ok(());
        };
        // The claim may have placed the repository here.
        self.fences.set(&job.repo_id, claimed.epoch);
        let fence = gitvista_store::placement::Fence {
            node: self.node_id.clone(),
            epoch: claimed.epoch,
        };
        match job.kind.as_str() {
            "clone" => {
                let payload: gitvista_store::placement::ClonePayload = job
                    .payload
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok())
                    .unwrap_or_default();
                let (store, rid) = (self.store.clone(), job.repo_id.clone());
                let repo = tokio::task::spawn_blocking(move || store.repo(&rid))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                match repo {
                    Some(repo) => {
                        Arc::clone(self)
                            .clone_now(repo, fence, payload.client)
                            .await
                    }
                    None => {
                        self.fences.remove(&job.repo_id);
                    }
                }
                Ok(())
            }
            "fetch" => {
                let _ = self
                    .hooks
                    .freshener
                    .send(gitvista_actors::freshen::Freshen { id })
                    .await;
                Ok(())
            }
            "set-url" => {
                let (store, rid) = (self.store.clone(), job.repo_id.clone());
                let repo = tokio::task::spawn_blocking(move || store.repo(&rid))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                if let Some(repo) = repo {
                    let _ = self
                        .queue
                        .send(Enqueue {
                            id: id.clone(),
                            kind: JobKind::SetUrl {
                                url: repo.canonical_url,
                            },
                            priority: Priority::Background,
                            progress: None,
                            client: None,
                        })
                        .await;
                    let _ = self
                        .hooks
                        .freshener
                        .send(gitvista_actors::freshen::Freshen { id })
                        .await;
                }
                Ok(())
            }
            other => {
                tracing::warn!(kind = other, "a job of a kind this node does not know");
                Ok(())
            }
        }
    }

    /// Lets go of repository `id`, which another node owns now: its session stops and its clone
    /// here is deleted; nothing is written about it.
    pub async fn let_go(self: &Arc<Self>, id: &str) {
        self.fences.remove(id);
        let Some(rid) = RepoId::parse(id) else {
            return;
        };
        let _ = self.supervisor.send(Forget(rid.clone())).await;
        let dir = self.clone_config.repo_dir(&rid);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }

    /// Tells the viewers of repositories whose owner died that they are moving to another
    /// server (they resync once it serves them again).
    pub async fn moving(self: &Arc<Self>, ids: &[String]) {
        for id in ids {
            tracing::info!(repo = %id, "repository moving to another server");
            if let (Some(bus), Some(rid)) = (&self.bus, RepoId::parse(id)) {
                bus.do_send(gitvista_cluster::bus::Announce(
                    rid,
                    gitvista_cluster::bus::Announcement::Moving,
                ));
            }
        }
    }

    /// Registers, on a web node, the session of repository `id` that relays its owner's events
    /// to this node's viewers (done before the first viewer subscribes).
    pub fn register_remote(&self, id: &RepoId) {
        if let Some(bus) = &self.bus {
            self.supervisor.do_send(Register {
                id: id.clone(),
                config: SessionConfig::remote(id.clone(), bus.clone().recipient()),
            });
        }
    }

    /// Clones `repo` into this node's data directory under `fence` (unless this process is
    /// cloning it already), serves it, and records the outcome while the fence is current.
    pub(crate) async fn clone_now(
        self: Arc<Self>,
        repo: Repo,
        fence: gitvista_store::placement::Fence,
        client: Option<String>,
    ) {
        {
            let mut cloning = self.cloning.lock().unwrap_or_else(|e| e.into_inner());
            if !cloning.insert(repo.id.clone()) {
                return;
            }
        }
        let Some(id) = RepoId::parse(&repo.id) else {
            return;
        };
        {
            let store = self.store.clone();
            let (rid, f) = (repo.id.clone(), fence.clone());
            let _ = tokio::task::spawn_blocking(move || {
                store.set_state_fenced(&rid, &f, "cloning", None)
            })
            .await;
            // The history from the remote first, shown while it streams; the clone follows.
            let streamed = self.stream_first(&id, &repo).await;
            let clone = |shape: CloneShape| Enqueue {
                id: id.clone(),
                kind: JobKind::Clone {
                    url: repo.canonical_url.clone(),
                    depth: self.config.initial_depth,
                    shape,
                },
                priority: Priority::Interactive,
                progress: Some(self.progress.clone().recipient()),
                client: client.clone(),
            };
            let first = if self.config.commits_first {
                CloneShape::CommitsOnly
            } else {
                CloneShape::Everything
            };
            let mut result = self
                .queue
                .send(clone(first))
                .await
                .unwrap_or(Err(JobError::Stopped));
            // A ref names a tree (which a commits-only clone leaves out): commits and trees.
            if result == Err(JobError::RefToTree) {
                tracing::info!(repo = %id, "a ref names a tree; cloning commits and trees");
                result = self
                    .queue
                    .send(clone(CloneShape::NoBlobs))
                    .await
                    .unwrap_or(Err(JobError::Stopped));
            }
            // The server does not filter: the recent history first, the rest in the background.
            if result == Err(JobError::NoFilter) {
                tracing::info!(repo = %id, "the remote does not filter objects; cloning the recent history first");
                result = self
                    .queue
                    .send(clone(CloneShape::Everything))
                    .await
                    .unwrap_or(Err(JobError::Stopped));
            }
            let _ = self.progress.send(LatestProgress(id.clone(), true)).await;
            if let Err(e) = &result {
                let mut details = self.details.lock().unwrap_or_else(|e| e.into_inner());
                if details.len() >= DETAILS_KEPT
                    && let Some(k) = details.keys().next().cloned()
                {
                    details.remove(&k);
                }
                details.insert(repo.id.clone(), e.to_string());
            }
            // Deleted meanwhile (the delete cancelled the job, or came just after it ended), or
            // moved to another node: nothing is served and nothing stays on disk.
            let still_mine = {
                let (store, rid, f) = (self.store.clone(), repo.id.clone(), fence.clone());
                matches!(
                    tokio::task::spawn_blocking(move || store.holds(&rid, &f)).await,
                    Ok(Ok(true))
                )
            };
            if !still_mine {
                if streamed.shown > 0 {
                    self.stream_cloned(&id, false).await;
                }
                self.fences.remove(&repo.id);
                let dir = self.clone_config.repo_dir(&id);
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
                self.cloning
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&repo.id);
                return;
            }
            // Serve it before saying it is ready, so a page that sees "ready" finds a session;
            // its first load (which the page needs anyway) gives the commit count.
            let mut commits = 0;
            if result.is_ok() {
                self.register(&id);
                if streamed.shown > 0 {
                    self.stream_cloned(&id, true).await;
                }
                commits = self.served_commits(&id).await.unwrap_or(0) as i64;
            } else if streamed.shown > 0 {
                self.stream_cloned(&id, false).await;
            }
            let store = self.store.clone();
            let dir = self.clone_config.repo_dir(&id);
            let rid = repo.id.clone();
            let outcome = result.clone();
            let f = fence.clone();
            let recorded = tokio::task::spawn_blocking(move || match outcome {
                Ok(()) => {
                    store.set_fetched_fenced(&rid, &f, Some(commits), dir_size(&dir) as i64)?;
                    // Someone asked for it just now: a fresh clone counts as a use.
                    store.touch(&rid)?;
                    store.set_state_fenced(&rid, &f, "ready", None)
                }
                Err(e) => {
                    let set = store.set_failure_fenced(
                        &rid,
                        &f,
                        "error",
                        e.class().code(),
                        &e.public_message(),
                    )?;
                    // Nothing of it is kept here: whichever worker tries next places it.
                    store.release_repo(&rid, &f)?;
                    Ok(set)
                }
            })
            .await;
            self.cloning
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&repo.id);
            if result.is_err() {
                self.fences.remove(&repo.id);
            } else if !matches!(recorded, Ok(Ok(true))) {
                // Moved while it was being recorded: another node serves it.
                self.let_go(&repo.id).await;
            } else {
                // Viewers on web nodes (of a repository that moved here) resync now.
                if let Some(bus) = &self.bus {
                    bus.do_send(gitvista_cluster::bus::Announce(
                        id.clone(),
                        gitvista_cluster::bus::Announcement::Ready(fence.epoch),
                    ));
                }
                // A commit-graph first (the next load reads the topology without inflating a
                // commit), then a shallow first clone deepens in the background (the session
                // reloads after it and viewers get the older history as a delta), and a
                // partial one is hydrated.
                maintain(&self.queue, &self.supervisor, &id, false);
                Arc::clone(&self).complete(id);
            }
        }
    }

    /// Makes a clone whole in the background, one step at a time, each retried with backoff
    /// (1 min doubling to 1 h, [`COMPLETE_TRIES`] times): a shallow clone's older history
    /// (deepening; the page says "history incomplete" until then), then a partial clone's
    /// trees and file contents (hydration, with its progress in the viewers' `status`). A
    /// hydration over the disk cap with file contents is tried again with trees only, and the
    /// rest stays on demand (`gitvista-contents` in the clone says so). Stops if the repository
    /// is deleted or evicted meanwhile.
    pub fn complete(self: Arc<Self>, id: RepoId) {
        {
            let mut completing = self.completing.lock().unwrap_or_else(|e| e.into_inner());
            if !completing.insert(id.as_str().to_string()) {
                return;
            }
        }
        actix::spawn(async move {
            let mut wait = self.config.deepen_retry;
            let mut attempt = 0;
            while attempt < COMPLETE_TRIES {
                let dir = self.clone_config.repo_dir(&id);
                let Some(kind) = next_step(&dir, self.config.hydrate) else {
                    break;
                };
                attempt += 1;
                // Viewers of a served repository follow a hydration's progress.
                let session = match self.supervisor.send(Running(id.clone())).await {
                    Ok(true) => self
                        .supervisor
                        .send(GetSession(id.clone()))
                        .await
                        .ok()
                        .and_then(Result::ok),
                    _ => None,
                };
                let hydrating = matches!(kind, JobKind::Hydrate { .. });
                let done = self
                    .queue
                    .send(Enqueue {
                        id: id.clone(),
                        kind: kind.clone(),
                        priority: Priority::Background,
                        progress: session
                            .as_ref()
                            .filter(|_| hydrating)
                            .map(|s| s.clone().recipient()),
                        client: None,
                    })
                    .await;
                // The session running now (one may have started meanwhile, reading the old
                // clone) reads the new one.
                if hydrating
                    && let Ok(true) = self.supervisor.send(Running(id.clone())).await
                    && let Ok(Ok(s)) = self.supervisor.send(GetSession(id.clone())).await
                {
                    s.do_send(Hydration::Ended {
                        replaced: matches!(done, Ok(Ok(()))),
                    });
                }
                match done {
                    Ok(Ok(())) => {
                        attempt = 0;
                        wait = self.config.deepen_retry;
                        maintain(&self.queue, &self.supervisor, &id, false);
                        // A fetch right after reloads the session with the older history and
                        // records the new count (FetchRecorder), like every other fetch.
                        if !hydrating
                            && let Ok(Ok(session)) =
                                self.supervisor.send(GetSession(id.clone())).await
                        {
                            session.do_send(FetchNow);
                        }
                        // The disk it takes now (only while this node owns it).
                        if hydrating && let Some(fence) = self.fences.get(id.as_str()) {
                            let (store, rid) = (self.store.clone(), id.as_str().to_string());
                            let size = dir_size(&dir) as i64;
                            let _ = tokio::task::spawn_blocking(move || {
                                store.set_fetched_fenced(&rid, &fence, None, size)
                            })
                            .await;
                        }
                    }
                    Ok(Err(JobError::TooLarge { limit })) if hydrating => {
                        // Whole, it does not fit: trees only (if it has none yet), the rest on
                        // demand.
                        let blobs = matches!(kind, JobKind::Hydrate { blobs: true });
                        tracing::info!(repo = %id, limit, blobs, "hydration is over the size limit; the rest stays on demand");
                        let kept = if blobs { "trees" } else { "commits" };
                        let _ = std::fs::write(dir.join(CONTENTS_CAP), kept);
                    }
                    Ok(Err(JobError::Cancelled | JobError::NotCloned(_))) | Err(_) => break,
                    Ok(Err(e)) => {
                        tracing::warn!(repo = %id, attempt, step = kind_name(&kind), error = %e, retry_secs = wait.as_secs(), "completing the clone failed; will retry");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(3600));
                    }
                }
            }
            self.completing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id.as_str());
        });
    }
}

/// A clone's file that says how far hydration may go (`trees`: file contents did not fit
/// under the size cap; `commits`: neither did trees).
pub const CONTENTS_CAP: &str = "gitvista-contents";

/// What the clone in `dir` still needs, if anything: deepening while shallow, then hydration
/// (when `hydrate`) up to what fits.
pub(crate) fn next_step(dir: &std::path::Path, hydrate: bool) -> Option<JobKind> {
    use gitcore::repo::Contents;
    if !dir.join("HEAD").is_file() {
        return None;
    }
    if dir.join("shallow").exists() {
        return Some(JobKind::Deepen);
    }
    if !hydrate {
        return None;
    }
    let cap = std::fs::read_to_string(dir.join(CONTENTS_CAP)).unwrap_or_default();
    match (Contents::of_git_dir(dir), cap.trim()) {
        (Contents::Complete, _) | (_, "commits") => None,
        (Contents::NoBlobs, "trees") => None,
        (Contents::CommitsOnly, "trees") => Some(JobKind::Hydrate { blobs: false }),
        _ => Some(JobKind::Hydrate { blobs: true }),
    }
}

pub(crate) fn kind_name(kind: &JobKind) -> &'static str {
    match kind {
        JobKind::Deepen => "deepen",
        JobKind::Hydrate { blobs: true } => "hydrate",
        JobKind::Hydrate { blobs: false } => "hydrate-trees",
        _ => "other",
    }
}

/// How long ended jobs stay in the table.
pub(crate) const JOBS_KEPT_MS: i64 = 86_400_000;

/// Clones go ahead of fetches and maintenance in the shared queue.
pub(crate) const CLONE_PRIORITY: i32 = 10;

/// A clone job's payload.
pub(crate) fn clone_payload(client: Option<String>) -> String {
    serde_json::to_string(&gitvista_store::placement::ClonePayload { client }).unwrap_or_default()
}

/// Attempts at one step of completing a clone before giving up until the next restart.
pub(crate) const COMPLETE_TRIES: u32 = 10;

/// Shows repository `id` as `cloning` (only while `fence` is current, when given) and queues its
/// clone with `payload` ([`clone_payload`]): a pasted URL, an evicted repository asked for
/// again, a clone lost or interrupted.
pub(crate) fn queue_clone(
    store: &gitvista_store::Store,
    id: &str,
    fence: Option<&gitvista_store::placement::Fence>,
    payload: &str,
) -> Result<(), gitvista_store::StoreError> {
    match fence {
        Some(fence) => {
            store.set_state_fenced(id, fence, "cloning", None)?;
        }
        None => {
            store.set_state(id, "cloning", None, None)?;
        }
    }
    store.enqueue_job(id, "clone", CLONE_PRIORITY, Some(payload))?;
    Ok(())
}
