//! Hosted mode's [`Hosted`]: the parts a hosted server runs on (the store, the CloneQueue, the
//! URL policy, accounts, billing, webhooks, the cluster's pieces) wired together at start, and
//! the life of a repository from a pasted URL to a served session (pending -> cloning -> ready,
//! or error), including the recovery after a restart (ready repositories are served from disk,
//! interrupted clones rerun), disk eviction and clone progress feeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use gitvista_actors::clone_queue::{
    CloneConfig, CloneQueue, CloneShape, Enqueue, JobError, JobKind, JobProgress, Priority,
    dir_size,
};
use gitvista_actors::eviction::{EvictionActor, Swept};
use gitvista_actors::repo_session::contents::Hydration;
use gitvista_actors::repo_session::{FetchConfig, FetchDone, FetchNow, GetSnapshot};
use gitvista_actors::supervisor::{Forget, GetSession, Register, Running};
use gitvista_actors::{RepoId, SessionConfig, Supervisor};

use crate::config::HostedConfig;
use crate::remote::Policy;
use crate::store::{Repo, Store};

/// Clone progress by repository, as the status route shows it.
#[derive(Debug, Default)]
pub struct ProgressBoard {
    latest: HashMap<RepoId, JobProgress>,
}

impl Actor for ProgressBoard {
    type Context = Context<Self>;
}

impl Handler<JobProgress> for ProgressBoard {
    type Result = ();

    fn handle(&mut self, msg: JobProgress, _: &mut Context<Self>) {
        self.latest.insert(msg.id.clone(), msg);
    }
}

/// The latest progress of a repository's running job (taken: it is shown once per job).
#[derive(Debug, Message)]
#[rtype(result = "Option<JobProgress>")]
pub struct LatestProgress(pub RepoId, pub bool);

impl Handler<LatestProgress> for ProgressBoard {
    type Result = Option<JobProgress>;

    fn handle(
        &mut self,
        LatestProgress(id, clear): LatestProgress,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if clear {
            self.latest.remove(&id)
        } else {
            self.latest.get(&id).cloned()
        }
    }
}

/// Records finished fetches in the store (off the actor thread), and keeps the clone in shape:
/// past [`MAX_PACKS`] packs a repack (then a commit-graph) is queued.
#[derive(Debug)]
pub struct FetchRecorder {
    store: Store,
    fences: Arc<crate::cluster::Fences>,
    data_dir: std::path::PathBuf,
    queue: Addr<CloneQueue>,
    supervisor: Addr<Supervisor>,
}

/// Packs a clone may gather (each fetch adds one) before they are repacked.
pub const MAX_PACKS: usize = 8;

/// Packs in a repository.
fn pack_count(repo: &std::path::Path) -> usize {
    std::fs::read_dir(repo.join("objects").join("pack")).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    })
}

/// Queues git's own maintenance of repository `id` (background; runs after what is queued for
/// it): a repack first when asked, then the commit-graph. A running session reloads after a
/// repack (its packs were replaced; a reload that raced the repack may have failed).
pub fn maintain(
    queue: &Addr<CloneQueue>,
    supervisor: &Addr<Supervisor>,
    id: &RepoId,
    repack: bool,
) {
    let (queue, supervisor, id) = (queue.clone(), supervisor.clone(), id.clone());
    actix::spawn(async move {
        let job = |kind: JobKind| Enqueue {
            id: id.clone(),
            kind,
            priority: Priority::Background,
            progress: None,
            client: None,
        };
        if repack {
            let repacked = queue.send(job(JobKind::Repack)).await;
            if matches!(repacked, Ok(Ok(())))
                && let Ok(true) = supervisor.send(Running(id.clone())).await
                && let Ok(Ok(session)) = supervisor.send(GetSession(id.clone())).await
            {
                session.do_send(gitvista_actors::repo_session::Refresh);
            }
        }
        let _ = queue.send(job(JobKind::CommitGraph)).await;
    });
}

impl Actor for FetchRecorder {
    type Context = Context<Self>;
}

impl Handler<FetchDone> for FetchRecorder {
    type Result = ();

    fn handle(&mut self, msg: FetchDone, _: &mut Context<Self>) {
        let store = self.store.clone();
        // Only the owner records anything, and only while its epoch is current.
        let Some(fence) = self.fences.get(msg.id.as_str()) else {
            return;
        };
        let dir = self.data_dir.join("repos").join(msg.id.as_str());
        if msg.error.is_none() && pack_count(&dir) > MAX_PACKS {
            maintain(&self.queue, &self.supervisor, &msg.id, true);
        }
        actix::spawn(async move {
            let _ = actix_web::web::block(move || match &msg.error {
                None => {
                    store.set_fetched_fenced(
                        msg.id.as_str(),
                        &fence,
                        msg.commits.map(|c| c as i64),
                        dir_size(&dir) as i64,
                    )?;
                    store.set_state_fenced(msg.id.as_str(), &fence, "ready", None)
                }
                // The last good clone is still served; the error is shown beside it.
                Some(e) => store.set_failure_fenced(
                    msg.id.as_str(),
                    &fence,
                    "ready",
                    msg.code.unwrap_or("failed"),
                    &format!("Updating failed {} time(s): {e}", msg.failures),
                ),
            })
            .await;
        });
    }
}

/// After each eviction sweep: records that running sessions are in use, and deletes clones
/// nobody used for `clone_unused` (row kept as `evicted`; the next request clones again).
#[derive(Debug)]
pub struct CloneReaper {
    hosted: std::sync::Weak<Hosted>,
}

impl Actor for CloneReaper {
    type Context = Context<Self>;
}

impl Handler<Swept> for CloneReaper {
    type Result = ();

    fn handle(&mut self, msg: Swept, _: &mut Context<Self>) {
        let Some(h) = self.hosted.upgrade() else {
            return;
        };
        actix::spawn(async move {
            let store = h.store.clone();
            let unused = h.config.clone_unused.as_secs() as i64;
            let active: Vec<String> = msg.active.iter().map(|i| i.as_str().to_string()).collect();
            h.hooks.clock.forget_quiet(h.config.hook_window);
            let stale =
                actix_web::web::block(move || -> Result<Vec<Repo>, crate::store::StoreError> {
                    for id in &active {
                        store.touch(id)?;
                    }
                    // Deliveries older than the forges' redelivery window cannot come again.
                    store.prune_deliveries(
                        crate::store::now() - crate::store::webhooks::DELIVERIES_KEPT_SECS,
                    )?;
                    // Ended jobs are kept a day for /admin, then forgotten.
                    store.prune_jobs(crate::store::jobs::now_ms() - JOBS_KEPT_MS)?;
                    let cutoff = crate::store::now() - unused;
                    Ok(store
                        .repos_in(&["ready"])?
                        .into_iter()
                        .filter(|r| !active.contains(&r.id))
                        .filter(|r| r.last_access_at.unwrap_or(r.created_at) <= cutoff)
                        .collect())
                })
                .await;
            let Ok(Ok(stale)) = stale else {
                return;
            };
            // Only clones on this node's disk.
            for repo in stale.into_iter().filter(|r| h.fences.get(&r.id).is_some()) {
                if let Some(id) = RepoId::parse(&repo.id) {
                    h.delete_clone(&id).await;
                }
            }
            // Over the disk quota (fetches grow clones): least recently used idle clones go.
            if let Err(why) = h.make_disk_room(false, false).await {
                tracing::warn!(%why, "over the disk quota with every clone watched");
            }
        });
    }
}

/// Everything hosted mode's handlers need.
#[derive(Debug)]
pub struct Hosted {
    /// The settings.
    pub config: HostedConfig,
    /// Metadata.
    pub store: Store,
    /// The only place git runs.
    pub queue: Addr<CloneQueue>,
    /// Clone progress.
    pub progress: Addr<ProgressBoard>,
    /// Which URLs are accepted.
    pub policy: Policy,
    /// Sessions.
    pub supervisor: Addr<Supervisor>,
    clone_config: CloneConfig,
    recorder: Addr<FetchRecorder>,
    /// Repositories whose clone this process started (so duplicate posts don't restart one).
    cloning: Mutex<std::collections::HashSet<String>>,
    /// Token buckets of `POST /api/repos` per client.
    posts: crate::client::RateLimiter,
    /// The EvictionActor (set once it started, right after this).
    pub eviction: std::sync::OnceLock<Addr<EvictionActor>>,
    /// The clones the reaper deleted most recently: (id, unix time), newest last.
    pub reaped: Mutex<std::collections::VecDeque<(String, i64)>>,
    /// One clone-status feed per repository with progress sockets open: the map keeps a
    /// receiver to hand out copies of; the feed's task holds the sender and ends (removing the
    /// entry) when no socket watches or the clone ended.
    feeds: Mutex<HashMap<String, tokio::sync::watch::Receiver<Option<ProgressStatus>>>>,
    /// git's own words about the last failed clone per repository (admins only; bounded).
    details: Mutex<HashMap<String, String>>,
    /// Repositories being completed now: deepened or hydrated (one retry loop each).
    completing: Mutex<std::collections::HashSet<String>>,
    /// Repositories shown from their remote while they are cloned, with the commits shown.
    pub streaming: Mutex<HashMap<String, usize>>,
    /// Streams from remotes at once (each holds a history in memory until its clone lands).
    pub(crate) stream_slots: Arc<tokio::sync::Semaphore>,
    /// Sign-in, sessions and private repositories (`None`: sign-in is off, every repository is
    /// public).
    pub accounts: Option<Arc<crate::auth::accounts::Accounts>>,
    /// The webhook receivers, the hook clock and the on-demand fetcher.
    pub hooks: crate::webhooks::Webhooks,
    /// This node's id in the `nodes` table.
    pub node_id: String,
    /// What this node does.
    pub role: crate::cluster::settings::Role,
    /// The repositories this node owns (`all` and `worker`).
    pub fences: Arc<crate::cluster::Fences>,
    /// Claims and runs this node's jobs (`all` and `worker`; set once it started).
    pub runner: std::sync::OnceLock<Addr<crate::cluster::runner::JobRunner<Hosted>>>,
    /// Viewer events across nodes (`web` and `worker`).
    pub bus: Option<Addr<crate::cluster::bus::Bus>>,
    /// Budgets shared by every web node (with Redis).
    pub limits: Option<crate::cluster::limits::SharedLimits>,
    /// Stripe, when billing is on.
    pub stripe: Option<crate::billing::stripe::Stripe>,
    /// Repositories frozen over their users' plans (read back from the store periodically).
    pub frozen: Arc<gitvista_actors::freshen::RepoSet>,
    /// With billing: repositories a paying user (or a paying team's list) keeps, fetched at the
    /// full pace and at once on a push hook; the others at the free plan's pace.
    pub paid: Arc<gitvista_actors::freshen::RepoSet>,
}

/// Histories streamed from remotes at once.
const STREAMS: usize = 4;

/// Failure details remembered for admins.
const DETAILS_KEPT: usize = 1000;

/// A repository's clone status as its progress sockets send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressStatus {
    /// pending, cloning, ready, error, or `gone` when the repository was deleted.
    pub state: String,
    /// The `status` message's JSON.
    pub text: String,
}

/// How often a progress feed reads the repository's state.
const FEED_INTERVAL: Duration = Duration::from_millis(250);

/// Deleted clones remembered for the admin page.
const REAPED_KEPT: usize = 20;

impl Hosted {
    /// Takes one token from `client`'s budget of new repositories (`posts_per_minute` a
    /// minute); `Err(seconds)` until the next one when it is spent. In a cluster the budget is
    /// shared by every web node (in Redis); alone, or while Redis does not answer, it is this
    /// node's token bucket.
    pub async fn take_token(&self, client: crate::client::ClientKey) -> Result<(), u64> {
        if let Some(limits) = &self.limits {
            match limits
                .take("posts", &client.to_string(), self.config.posts_per_minute)
                .await
            {
                Ok(verdict) => return verdict,
                Err(e) => {
                    metrics::counter!("gitvista_shared_limit_errors_total").increment(1);
                    tracing::warn!(error = %e, "shared limits unavailable; this node's own budget decides");
                }
            }
        }
        self.posts.take(client)
    }
}

impl Hosted {
    /// Opens the store (migrating it), starts the queue and serves what is already cloned, as
    /// node `node_id` (a node that keeps clones must keep its id: see
    /// [`crate::cluster::data_node_id`]); blocking (call before the server runs).
    pub fn start(
        config: HostedConfig,
        node_id: String,
        supervisor: Addr<Supervisor>,
        auth: Option<Arc<crate::auth::settings::AuthSettings>>,
        secure_cookies: bool,
    ) -> anyhow::Result<Arc<Hosted>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = Store::open(&config.database(), 8)?;
        let role = config.cluster.role;
        let fences = Arc::new(crate::cluster::Fences::new(&node_id));
        let limits = config
            .cluster
            .redis_url
            .as_deref()
            .map(crate::cluster::limits::SharedLimits::new)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        // Generic hooks' secrets are shown to trackers on their dashboard: on with sign-in.
        let generic = auth.as_ref().map(|auth| {
            crate::webhooks::verify::HookSecret::from_bytes(
                &auth.jwt.derive("gitvista webhook key"),
            )
        });
        let stripe = config
            .billing
            .clone()
            .map(crate::billing::stripe::Stripe::new)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let accounts = auth
            .map(|auth| {
                crate::auth::accounts::Accounts::new(auth, store.clone(), secure_cookies).map(
                    |mut a| {
                        a.plans = config.plans;
                        a.require_login = config.require_login;
                        a.access_recheck = config.access_recheck;
                        if let Some(b) = &config.billing {
                            a.payment_grace = b.grace;
                            a.paid_price = Some(b.price.clone());
                            a.billing = true;
                        }
                        Arc::new(a)
                    },
                )
            })
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let bus = config
            .cluster
            .redis_url
            .as_deref()
            .map(|url| {
                crate::cluster::bus::Bus::new(url, Arc::clone(&fences)).map(|bus| {
                    match &accounts {
                        Some(a) => {
                            let a = Arc::clone(a);
                            bus.with_revocations(Arc::new(move |what: &str| a.forget_revoked(what)))
                        }
                        None => bus,
                    }
                    .start()
                })
            })
            .transpose()
            .map_err(anyhow::Error::msg)?;
        if let (Some(bus), Some(a)) = (&bus, &accounts) {
            let bus = bus.clone();
            let _ = a.revocations.set(Arc::new(move |what: String| {
                bus.do_send(crate::cluster::bus::Revoke(what));
            }));
        }
        // A private repository's git jobs carry the token of a user who may read it.
        let credentials = accounts.clone().map(|a| {
            gitvista_actors::clone_queue::Credentials(Arc::new(move |id: RepoId| {
                let a = Arc::clone(&a);
                Box::pin(async move { a.credential(id.as_str()).await })
            }))
        });
        let policy = Policy::from_allowed_hosts(&config.allowed_hosts);
        let mut protocols = vec!["https".to_string()];
        if !policy.allowed_hosts.is_empty() {
            // Allowlisted hosts may use plain http, git and ssh.
            protocols.extend(["http", "git", "ssh"].map(String::from));
        }
        // Every git run checks its remote again, resolving the name now and pinning git to the
        // address it checked (a name can resolve elsewhere than when it was pasted).
        let target = {
            let (policy, resolve) = (policy.clone(), config.resolver.0.clone());
            gitvista_actors::clone_queue::TargetCheck(Arc::new(move |url: &str| {
                policy.target(url, &resolve).map_err(|e| e.to_string())
            }))
        };
        let clone_config = CloneConfig {
            target: Some(target),
            git: std::path::PathBuf::from("git"),
            concurrency: config.clone_concurrency,
            clone_timeout: config.clone_timeout,
            max_bytes: config.max_repo_bytes,
            low_speed_limit: config.low_speed_limit,
            low_speed_time: config.low_speed_time,
            max_waiting: config.queue_max,
            per_client: config.clones_per_client,
            protocols,
            credentials,
            ..CloneConfig::new(&config.data_dir)
        };
        let queue = CloneQueue::new(clone_config.clone()).start();
        let recorder = FetchRecorder {
            store: store.clone(),
            fences: Arc::clone(&fences),
            data_dir: config.data_dir.clone(),
            queue: queue.clone(),
            supervisor: supervisor.clone(),
        }
        .start();
        let clock = Arc::new(gitvista_actors::freshen::HookClock::default());
        let freshener = gitvista_actors::freshen::Freshener::new(
            supervisor.clone(),
            queue.clone(),
            Some(recorder.clone().recipient()),
        )
        .start();
        let hooks = crate::webhooks::Webhooks::new(
            config.webhooks.clone(),
            generic,
            Arc::clone(&clock),
            freshener,
        );
        let posts = crate::client::RateLimiter::new(
            config.posts_per_minute,
            config.posts_per_minute,
            crate::client::MAX_BUCKETS,
        );
        let hosted = Arc::new(Hosted {
            recorder,
            config,
            posts,
            store,
            queue,
            progress: ProgressBoard::default().start(),
            policy,
            supervisor,
            clone_config,
            cloning: Mutex::new(Default::default()),
            eviction: std::sync::OnceLock::new(),
            reaped: Mutex::new(Default::default()),
            feeds: Mutex::new(HashMap::new()),
            details: Mutex::new(HashMap::new()),
            completing: Mutex::new(Default::default()),
            streaming: Mutex::new(HashMap::new()),
            stream_slots: Arc::new(tokio::sync::Semaphore::new(STREAMS)),
            accounts,
            hooks,
            node_id,
            role,
            bus,
            limits,
            fences,
            runner: std::sync::OnceLock::new(),
            stripe,
            frozen: Arc::new(gitvista_actors::freshen::RepoSet::default()),
            paid: Arc::new(gitvista_actors::freshen::RepoSet::default()),
        });
        if hosted.accounts.is_some() {
            hosted.start_billing_sweep();
        }
        if role.runs_git() {
            hosted.recover()?;
            hosted.wake_hooks()?;
            let runner = crate::cluster::runner::JobRunner::new(
                Arc::downgrade(&hosted),
                hosted.store.clone(),
                hosted.node_id.clone(),
                hosted.config.clone_concurrency,
                hosted.config.job_lease,
                hosted.config.job_poll,
            )
            .start();
            if let Some(url) = hosted
                .config
                .database_url
                .clone()
                .filter(|u| u.starts_with("postgres"))
            {
                crate::cluster::runner::listen(url, runner.clone());
            }
            let _ = hosted.runner.set(runner);
        }
        crate::cluster::membership::Membership::new(Arc::downgrade(&hosted), hosted.config.heartbeat).start();
        let reaper = CloneReaper {
            hosted: Arc::downgrade(&hosted),
        }
        .start();
        let eviction = EvictionActor::new(
            hosted.supervisor.clone(),
            hosted.config.evict_interval,
            hosted.config.session_idle,
            Some(reaper.recipient()),
        )
        .start();
        let _ = hosted.eviction.set(eviction);
        Ok(hosted)
    }

    /// The status feed of repository `id`'s clone: one task per repository reads its state every
    /// 250 ms for all its progress sockets, while at least one watches, until the clone ends.
    pub fn progress_feed(
        self: &Arc<Self>,
        id: &str,
    ) -> tokio::sync::watch::Receiver<Option<ProgressStatus>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = feeds.get(id) {
            return rx.clone();
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        feeds.insert(id.to_string(), rx.clone());
        metrics::gauge!("gitvista_progress_feeds").increment(1.0);
        let hosted = Arc::clone(self);
        let id = id.to_string();
        actix::spawn(async move {
            loop {
                let (store, rid) = (hosted.store.clone(), id.clone());
                let row = crate::error::blocking(move || store.repo(&rid)).await;
                let status = match row {
                    Ok(Some(repo)) => {
                        let mut v = hosted.repo_status(&repo).await;
                        v["type"] = "status".into();
                        ProgressStatus {
                            state: v["state"].as_str().unwrap_or_default().to_string(),
                            text: v.to_string(),
                        }
                    }
                    Ok(None) | Err(_) => ProgressStatus {
                        state: "gone".into(),
                        text: serde_json::json!({
                            "type": "status", "state": "gone", "id": id,
                            "error": "the repository was deleted",
                        })
                        .to_string(),
                    },
                };
                let done = matches!(status.state.as_str(), "ready" | "error" | "gone");
                tx.send_if_modified(|cur| {
                    let changed = cur.as_ref() != Some(&status);
                    *cur = Some(status);
                    changed
                });
                {
                    let mut feeds = hosted.feeds.lock().unwrap_or_else(|e| e.into_inner());
                    // Only the map's own receiver left: nobody watches.
                    if done || tx.receiver_count() <= 1 {
                        feeds.remove(&id);
                        break;
                    }
                }
                tokio::time::sleep(FEED_INTERVAL).await;
            }
            metrics::gauge!("gitvista_progress_feeds").decrement(1.0);
        });
        rx
    }

    /// Deletes the clone of `id` (its session stops; the row stays as `evicted`, cloned again
    /// when next asked for).
    pub async fn delete_clone(self: &Arc<Self>, id: &RepoId) {
        let _ = self.supervisor.send(Forget(id.clone())).await;
        let dir = self.clone_config.repo_dir(id);
        let store = self.store.clone();
        let key = id.as_str().to_string();
        let rid = key.clone();
        let fence = self
            .fences
            .remove(&key)
            .map(|epoch| crate::store::placement::Fence {
                node: self.node_id.clone(),
                epoch,
            });
        let _ = actix_web::web::block(move || {
            let _ = std::fs::remove_dir_all(&dir);
            // Nobody owns it now: whichever worker clones it next places it.
            if let Some(fence) = fence
                && store.set_state_fenced(&rid, &fence, "evicted", None)?
            {
                store.release_repo(&rid, &fence)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .await;
        metrics::counter!("gitvista_clones_deleted_total").increment(1);
        let mut reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        reaped.push_back((key, crate::store::now()));
        while reaped.len() > REAPED_KEPT {
            reaped.pop_front();
        }
    }

    /// Free bytes on the data directory's filesystem.
    pub fn free_bytes(&self) -> u64 {
        nix::sys::statvfs::statvfs(&self.config.data_dir).map_or(u64::MAX, |s| {
            s.blocks_available().saturating_mul(s.fragment_size())
        })
    }

    /// Keeps clones within the disk quota and the filesystem's free-space floor by deleting the
    /// least recently used clones nobody watches; with `new_clone`, makes room for one more clone,
    /// and with `new_row` for one more repository under `max_repos`. `Err` says, in a sentence,
    /// which limit cannot be met.
    pub async fn make_disk_room(
        self: &Arc<Self>,
        new_clone: bool,
        new_row: bool,
    ) -> Result<(), String> {
        let watched: std::collections::HashSet<String> = self
            .supervisor
            .send(gitvista_actors::supervisor::Watched)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|id| id.as_str().to_string())
            .collect();
        let store = self.store.clone();
        let all = actix_web::web::block(move || store.repos())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let c = &self.config;
        // Only the clones on this node's disk count (every clone, on a single node); a web
        // node keeps none, and workers check their own room before they take a clone.
        let mine = |r: &&Repo| self.fences.get(&r.id).is_some();
        // `all` is most recently used first.
        let idle: Vec<&Repo> = all
            .iter()
            .filter(mine)
            .filter(|r| r.state == "ready" && !watched.contains(&r.id))
            .collect();
        let mut used: u64 = all
            .iter()
            .filter(mine)
            .filter(|r| matches!(r.state.as_str(), "ready" | "fetching"))
            .map(|r| r.disk_bytes.max(0) as u64)
            .sum();
        // Least recently used first.
        let mut victims = idle.iter().rev();
        while self.role.runs_git() {
            let free = self.free_bytes();
            let over_quota = used > c.disk_quota || (new_clone && used >= c.disk_quota);
            let low = free < c.min_free;
            if !over_quota && !low {
                break;
            }
            let Some(victim) = victims.next() else {
                return Err(if low {
                    format!(
                        "The server's disk is nearly full ({} MiB free); no repository can be added now.",
                        free >> 20
                    )
                } else {
                    format!(
                        "The server holds as much repository data as it may ({} MiB); no repository can be added now.",
                        c.disk_quota >> 20
                    )
                });
            };
            let Some(id) = RepoId::parse(&victim.id) else {
                continue;
            };
            tracing::info!(repo = %id, bytes = victim.disk_bytes, "deleting a clone to stay within the disk limits");
            self.delete_clone(&id).await;
            used = used.saturating_sub(victim.disk_bytes.max(0) as u64);
        }
        if new_row && all.len() >= c.max_repos {
            // Rows without a clone (evicted or failed) are the cheapest to forget.
            let forgettable = all
                .iter()
                .rev()
                .find(|r| matches!(r.state.as_str(), "evicted" | "error"));
            match forgettable {
                Some(r) => {
                    let (store, rid) = (self.store.clone(), r.id.clone());
                    let _ = actix_web::web::block(move || store.delete_repo(&rid)).await;
                }
                None => {
                    return Err(format!(
                        "The server holds its maximum of {} repositories; no repository can be added now.",
                        c.max_repos
                    ));
                }
            }
        }
        Ok(())
    }

    /// git's words about recent clone failures, by repository (for admins).
    pub fn failure_details(&self) -> HashMap<String, String> {
        self.details.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// After a restart: serve the ready clones this node owns from disk, clone again those it
    /// owns whose clone is missing or was interrupted, and delete clones it does not own (a
    /// delete that raced a clone, a crash, or repositories that moved while it was away). The
    /// single node first adopts every repository nobody owns (rows from before placement).
    fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        use crate::cluster::settings::Role;
        if self.role == Role::All {
            self.store.adopt_unowned(&self.node_id)?;
        }
        // Jobs this node held when it stopped are queued again now, not after their lease.
        self.store.requeue_jobs_of(&self.node_id)?;
        let owned: HashMap<String, i64> = self.store.owned_by(&self.node_id)?.into_iter().collect();
        if let Ok(rd) = std::fs::read_dir(self.config.data_dir.join("repos")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !owned.contains_key(&name) {
                    tracing::warn!(dir = %e.path().display(), "removing a clone this node does not own");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        for (id, epoch) in &owned {
            self.fences.set(id, *epoch);
        }
        let mut reclone = Vec::new();
        for repo in self.store.repos_in(&["ready", "fetching"])? {
            let Some(id) = RepoId::parse(&repo.id) else {
                continue;
            };
            let Some(fence) = self.fences.get(&repo.id) else {
                continue;
            };
            if self.clone_config.repo_dir(&id).join("HEAD").is_file() {
                if repo.state == "fetching" {
                    self.store
                        .set_state_fenced(&repo.id, &fence, "ready", None)?;
                }
                self.register(&id);
                // Stopped before its history or its contents were whole: carry on.
                Arc::clone(self).complete(id);
            } else {
                reclone.push(repo);
            }
        }
        for repo in self.store.repos_in(&["pending", "cloning"])? {
            if self.fences.get(&repo.id).is_some() {
                reclone.push(repo);
            }
        }
        for repo in reclone {
            self.store.set_state(&repo.id, "cloning", None, None)?;
            self.store.enqueue_job(
                &repo.id,
                "clone",
                CLONE_PRIORITY,
                Some(&clone_payload(None)),
            )?;
        }
        Ok(())
    }

    /// After a restart: remembers which repositories' hooks delivered within the hook window
    /// (their sessions keep polling as a safety net only), and fetches once every repository
    /// used within the fetch window or heard from by a hook, since forges do not redeliver
    /// what they sent while the server was down. The fetches run in the background, as many
    /// at a time as the queue runs.
    fn wake_hooks(self: &Arc<Self>) -> anyhow::Result<()> {
        let now = crate::store::now();
        let window = self.config.hook_window.as_secs() as i64;
        let hooked = self.store.hooked_since(now - window)?;
        for (id, at) in &hooked {
            if let Some(id) = RepoId::parse(id) {
                let ago = Duration::from_secs(now.saturating_sub(*at).max(0) as u64);
                if let Some(at) = std::time::Instant::now().checked_sub(ago) {
                    self.hooks.clock.heard_at(&id, at);
                }
            }
        }
        if !self.config.fetch_on_start {
            return Ok(());
        }
        let used_since = now - self.config.fetch_idle_stop.as_secs() as i64;
        let hooked: std::collections::HashSet<String> = hooked.into_iter().map(|h| h.0).collect();
        let ids: Vec<RepoId> = self
            .store
            .repos_in(&["ready"])?
            .into_iter()
            .filter(|r| {
                r.last_access_at.unwrap_or(r.created_at) >= used_since || hooked.contains(&r.id)
            })
            .filter_map(|r| RepoId::parse(&r.id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        tracing::info!(
            repos = ids.len(),
            "fetching every recently used repository once after the restart"
        );
        let freshener = self.hooks.freshener.clone();
        let at_once = self.config.clone_concurrency.max(1);
        actix::spawn(async move {
            use futures_util::StreamExt as _;
            futures_util::stream::iter(ids)
                .map(|id| freshener.send(gitvista_actors::freshen::Freshen { id }))
                .buffer_unordered(at_once)
                .for_each(|_| async {})
                .await;
        });
        Ok(())
    }

    /// How a hosted repository's session runs: no watcher; fetches on the adaptive timer.
    pub(crate) fn session_config(&self, id: &RepoId) -> SessionConfig {
        let c = &self.config;
        SessionConfig {
            watch: false,
            status: false,
            poll_interval: Duration::from_secs(3600),
            commit_graph_hint_after: None,
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
                frozen: Some(Arc::clone(&self.frozen)),
                paid: self
                    .stripe
                    .as_ref()
                    .map(|_| (Arc::clone(&self.paid), c.free_fetch_interval)),
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
    async fn served_commits(&self, id: &RepoId) -> Option<usize> {
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

    fn register(&self, id: &RepoId) {
        self.supervisor.do_send(Register {
            id: id.clone(),
            config: self.session_config(id),
        });
    }

    /// Queues a clone of `repo` in the shared job table (for `client`, whose clones are
    /// counted against their limit): the node that claims it (this one, on a single node)
    /// places the repository on its disk, clones it, and serves it.
    pub fn start_clone(self: Arc<Self>, repo: Repo, client: Option<crate::client::ClientKey>) {
        actix::spawn(async move {
            let store = self.store.clone();
            let payload = clone_payload(client.map(|c| c.to_string()));
            let queued = actix_web::web::block(move || {
                store.set_state(&repo.id, "cloning", None, None)?;
                store.enqueue_job(&repo.id, "clone", CLONE_PRIORITY, Some(&payload))
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
    ) -> Result<(), crate::error::ApiError> {
        let (store, rid) = (self.store.clone(), id.as_str().to_string());
        crate::error::blocking(move || store.enqueue_job(&rid, kind, priority, None)).await?;
        self.wake_jobs();
        Ok(())
    }

    /// Tells this node's job runner to look for work now (other nodes hear of it through
    /// PostgreSQL's NOTIFY).
    pub fn wake_jobs(&self) {
        if let Some(runner) = self.runner.get() {
            runner.do_send(crate::cluster::runner::Wake);
        }
    }

    /// Whether this node may take one more repository onto its disk (free space above the
    /// floor, clones within the quota).
    pub fn has_room_to_clone(&self) -> bool {
        self.free_bytes() >= self.config.min_free
    }

    /// Runs a job this node claimed (see [`crate::cluster::runner`]); `Err` says why it should
    /// be tried again.
    pub async fn run_job(
        self: &Arc<Self>,
        claimed: &crate::store::jobs::Claimed,
    ) -> Result<(), String> {
        let job = &claimed.job;
        let Some(id) = RepoId::parse(&job.repo_id) else {
            return Ok(());
        };
        // The claim may have placed the repository here.
        self.fences.set(&job.repo_id, claimed.epoch);
        let fence = crate::store::placement::Fence {
            node: self.node_id.clone(),
            epoch: claimed.epoch,
        };
        match job.kind.as_str() {
            "clone" => {
                let payload: crate::store::placement::ClonePayload = job
                    .payload
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok())
                    .unwrap_or_default();
                let (store, rid) = (self.store.clone(), job.repo_id.clone());
                let repo = actix_web::web::block(move || store.repo(&rid))
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
                let repo = actix_web::web::block(move || store.repo(&rid))
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
        let _ = actix_web::web::block(move || std::fs::remove_dir_all(dir)).await;
    }

    /// Tells the viewers of repositories whose owner died that they are moving to another
    /// server (they resync once it serves them again).
    pub async fn moving(self: &Arc<Self>, ids: &[String]) {
        for id in ids {
            tracing::info!(repo = %id, "repository moving to another server");
            if let (Some(bus), Some(rid)) = (&self.bus, RepoId::parse(id)) {
                bus.do_send(crate::cluster::bus::Announce(
                    rid,
                    crate::cluster::bus::Announcement::Moving,
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
    async fn clone_now(
        self: Arc<Self>,
        repo: Repo,
        fence: crate::store::placement::Fence,
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
            let _ =
                actix_web::web::block(move || store.set_state_fenced(&rid, &f, "cloning", None))
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
                    actix_web::web::block(move || store.holds(&rid, &f)).await,
                    Ok(Ok(true))
                )
            };
            if !still_mine {
                if streamed.shown > 0 {
                    self.stream_cloned(&id, false).await;
                }
                self.fences.remove(&repo.id);
                let dir = self.clone_config.repo_dir(&id);
                let _ = actix_web::web::block(move || std::fs::remove_dir_all(dir)).await;
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
            let recorded = actix_web::web::block(move || match outcome {
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
                    bus.do_send(crate::cluster::bus::Announce(
                        id.clone(),
                        crate::cluster::bus::Announcement::Ready(fence.epoch),
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
                            let _ = actix_web::web::block(move || {
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
fn next_step(dir: &std::path::Path, hydrate: bool) -> Option<JobKind> {
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

fn kind_name(kind: &JobKind) -> &'static str {
    match kind {
        JobKind::Deepen => "deepen",
        JobKind::Hydrate { blobs: true } => "hydrate",
        JobKind::Hydrate { blobs: false } => "hydrate-trees",
        _ => "other",
    }
}

/// How long ended jobs stay in the table.
const JOBS_KEPT_MS: i64 = 86_400_000;

/// Clones go ahead of fetches and maintenance in the shared queue.
const CLONE_PRIORITY: i32 = 10;

/// A clone job's payload.
fn clone_payload(client: Option<String>) -> String {
    serde_json::to_string(&crate::store::placement::ClonePayload { client }).unwrap_or_default()
}

/// Attempts at one step of completing a clone before giving up until the next restart.
const COMPLETE_TRIES: u32 = 10;

impl Hosted {
    /// A repository's state, clone progress (text, phase and percent) and error, with the rows
    /// streamed from the remote while it is cloned.
    pub async fn repo_status(&self, repo: &crate::store::Repo) -> serde_json::Value {
        let id = repo.id.as_str();
        let progress = match gitvista_actors::RepoId::parse(id) {
            Some(rid) => self
                .progress
                .send(LatestProgress(rid, false))
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let mut body = crate::wire::repo_json(repo);
        body["progress"] = serde_json::json!(progress.as_ref().map(|p| &p.text));
        body["phase"] = serde_json::json!(progress.as_ref().map(|p| &p.phase));
        body["percent"] = serde_json::json!(progress.as_ref().and_then(|p| p.percent));
        // Shown from the remote while it is cloned: the page need not wait for the clone.
        if let Some(rows) = self.streamed_rows(id).filter(|_| repo.state == "cloning") {
            body["rows"] = serde_json::json!(rows);
            if progress.is_none() {
                body["progress"] =
                    serde_json::json!(format!("reading history from the remote: {rows} commits"));
            }
        }
        body
    }
}

/// The node the cluster's heartbeat and job runner work for.
impl crate::cluster::Node for Hosted {
    fn store(&self) -> &Store {
        &self.store
    }

    fn fences(&self) -> &crate::cluster::Fences {
        &self.fences
    }

    async fn report(&self) -> crate::cluster::NodeReport {
        let sessions = self
            .supervisor
            .send(gitvista_actors::supervisor::Inspect)
            .await
            .unwrap_or_default();
        let viewers: usize = sessions.iter().map(|(_, i)| i.viewers).sum();
        crate::cluster::NodeReport {
            id: self.node_id.clone(),
            role: self.role,
            internal_addr: self.config.cluster.internal_addr.map(|a| a.to_string()),
            free_bytes: if self.role.runs_git() {
                self.free_bytes().min(i64::MAX as u64) as i64
            } else {
                0
            },
            sessions: sessions.len() as i32,
            viewers: viewers as i32,
        }
    }

    fn has_room_to_clone(&self) -> bool {
        Hosted::has_room_to_clone(self)
    }

    async fn run_job(
        self: &Arc<Self>,
        claimed: &crate::store::jobs::Claimed,
    ) -> Result<(), String> {
        Hosted::run_job(self, claimed).await
    }

    async fn moving(self: &Arc<Self>, ids: &[String]) {
        Hosted::moving(self, ids).await;
    }

    fn wake_jobs(&self) {
        Hosted::wake_jobs(self);
    }

    async fn let_go(self: &Arc<Self>, id: &str) {
        Hosted::let_go(self, id).await;
    }
}
