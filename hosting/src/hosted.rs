//! Hosted mode's [`Hosted`]: the parts a hosted server runs on (the store, the CloneQueue, the
//! URL policy, accounts, billing, webhooks, the cluster's pieces) and their wiring at start.
//! What it does with them lives in its rooms: [`clones`] (a repository's life from a pasted URL
//! to a served session), [`recovery`] (after a restart), [`disk`] (eviction and the disk quota),
//! [`fetches`] (recording fetches), [`status`] (progress and status), [`quota`] (plans over
//! lists), [`deliveries`] (a webhook delivery handled), [`hints`] (hints confirmed with the
//! forge), [`hook_registration`] (hooks registered on forges), [`node`] (what the cluster
//! asks of this node) and [`readiness`] (whether this node can serve now).

pub mod clones;
pub mod deliveries;
pub mod disk;
pub mod fetches;
pub mod hints;
pub mod hook_registration;
pub mod node;
pub mod quota;
pub mod readiness;
pub mod recovery;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use gitvista_actors::clone_queue::{CloneConfig, CloneQueue};
use gitvista_actors::eviction::EvictionActor;
use gitvista_actors::{RepoId, Supervisor};

use crate::config::HostedConfig;
use crate::hosted::disk::CloneReaper;
use crate::hosted::fetches::FetchRecorder;
use crate::hosted::status::ProgressBoard;
use crate::remote::Policy;
use gitvista_store::Store;

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
    pub(crate) clone_config: CloneConfig,
    pub(crate) recorder: Addr<FetchRecorder>,
    /// Repositories whose clone this process started (so duplicate posts don't restart one).
    pub(crate) cloning: Mutex<std::collections::HashSet<String>>,
    /// Token buckets of `POST /api/repos` per client.
    pub(crate) posts: crate::client::RateLimiter,
    /// The EvictionActor (set once it started, right after this).
    pub eviction: std::sync::OnceLock<Addr<EvictionActor>>,
    /// The clones the reaper deleted most recently: (id, unix time), newest last.
    pub reaped: Mutex<std::collections::VecDeque<(String, i64)>>,
    /// One clone-status feed per repository with progress sockets open: the map keeps a
    /// receiver to hand out copies of; the feed's task holds the sender and ends (removing the
    /// entry) when no socket watches or the clone ended.
    pub(crate) feeds: Mutex<HashMap<String, tokio::sync::watch::Receiver<Option<ProgressStatus>>>>,
    /// git's own words about the last failed clone per repository (admins only; bounded).
    pub(crate) details: Mutex<HashMap<String, String>>,
    /// Repositories being completed now: deepened or hydrated (one retry loop each).
    pub(crate) completing: Mutex<std::collections::HashSet<String>>,
    /// Repositories shown from their remote while they are cloned, with the commits shown.
    pub streaming: Mutex<HashMap<String, usize>>,
    /// Streams from remotes at once (each holds a history in memory until its clone lands).
    pub(crate) stream_slots: Arc<tokio::sync::Semaphore>,
    /// Sign-in, sessions and private repositories (`None`: sign-in is off, every repository is
    /// public).
    pub accounts: Option<Arc<gitvista_accounts::accounts::Accounts>>,
    /// The webhook receivers, the hook clock and the on-demand fetcher.
    pub hooks: crate::webhooks::Webhooks,
    /// This node's id in the `nodes` table.
    pub node_id: String,
    /// What this node does.
    pub role: gitvista_cluster::settings::Role,
    /// The repositories this node owns (`all` and `worker`).
    pub fences: Arc<gitvista_cluster::Fences>,
    /// Whether this node holds its presence on PostgreSQL (a node that runs git, on PostgreSQL).
    pub presence: Arc<gitvista_cluster::presence::Presence>,
    /// Claims and runs this node's jobs (`all` and `worker`; set once it started).
    pub runner: std::sync::OnceLock<Addr<gitvista_cluster::runner::JobRunner<Hosted>>>,
    /// Viewer events across nodes (`web` and `worker`).
    pub bus: Option<Addr<gitvista_cluster::bus::Bus>>,
    /// Budgets shared by every web node (with Redis).
    pub limits: Option<gitvista_cluster::limits::SharedLimits>,
    /// Stripe, when billing is on.
    pub stripe: Option<gitvista_accounts::billing::stripe::Stripe>,
    /// Repositories frozen over their users' plans (read back from the store periodically).
    pub frozen: Arc<crate::hosted::quota::RepoSet>,
    /// With billing: repositories a paying user (or a paying team's list) keeps, fetched at the
    /// full pace and at once on a push hook; the others at the free plan's pace.
    pub paid: Arc<crate::hosted::quota::RepoSet>,
    /// The last readiness answer and git check (see [`readiness`]).
    pub(crate) readiness: Mutex<readiness::ReadinessMemo>,
}

/// Histories streamed from remotes at once.
pub(crate) const STREAMS: usize = 4;

/// Failure details remembered for admins.
pub(crate) const DETAILS_KEPT: usize = 1000;

/// A repository's clone status as its progress sockets send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressStatus {
    /// pending, cloning, ready, error, or `gone` when the repository was deleted.
    pub state: String,
    /// The `status` message's JSON.
    pub text: String,
    /// The history is served already (streamed from the remote while the clone runs): a page
    /// watching the clone should connect again, as a viewer, for the growth that follows.
    pub served: bool,
}

/// How often a progress feed reads the repository's state.
pub(crate) const FEED_INTERVAL: Duration = Duration::from_millis(250);

/// Deleted clones remembered for the admin page.
pub(crate) const REAPED_KEPT: usize = 20;

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
    /// [`gitvista_cluster::data_node_id`]); blocking (call before the server runs).
    pub fn start(
        config: HostedConfig,
        node_id: String,
        supervisor: Addr<Supervisor>,
        auth: Option<Arc<gitvista_accounts::settings::AuthSettings>>,
        secure_cookies: bool,
    ) -> anyhow::Result<Arc<Hosted>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = Store::open(&config.database(), 8)?;
        let role = config.cluster.role;
        let fences = Arc::new(gitvista_cluster::Fences::new(&node_id));
        let limits = config
            .cluster
            .redis_url
            .as_deref()
            .map(gitvista_cluster::limits::SharedLimits::new)
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
            .map(gitvista_accounts::billing::stripe::Stripe::new)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let accounts = auth
            .map(|auth| {
                gitvista_accounts::accounts::Accounts::new(auth, store.clone(), secure_cookies).map(
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
                gitvista_cluster::bus::Bus::new(url, Arc::clone(&fences)).map(|bus| {
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
                bus.do_send(gitvista_cluster::bus::Revoke(what));
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
            git: config.git.clone(),
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
        let clock = Arc::new(gitvista_actors::pace::HookClock::default());
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
            presence: Arc::default(),
            runner: std::sync::OnceLock::new(),
            stripe,
            frozen: Arc::new(crate::hosted::quota::RepoSet::default()),
            paid: Arc::new(crate::hosted::quota::RepoSet::default()),
            readiness: Mutex::new(Default::default()),
        });
        if hosted.accounts.is_some() {
            hosted.start_billing_sweep();
        }
        if role.runs_git() {
            hosted.recover()?;
            hosted.wake_hooks()?;
            hosted.start_lost_clone_check();
            let runner = gitvista_cluster::runner::JobRunner::new(
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
                gitvista_cluster::runner::listen(
                    url,
                    runner.clone(),
                    hosted.node_id.clone(),
                    Arc::clone(&hosted.presence),
                );
            }
            let _ = hosted.runner.set(runner);
        }
        gitvista_cluster::membership::Membership::new(
            Arc::downgrade(&hosted),
            hosted.config.heartbeat,
        )
        .start();
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
}
