//! Fetching on demand: webhooks ("the remote changed, fetch now") and the fetch of every
//! watched repository after a restart. A repository whose session runs fetches through that
//! session (which reloads and tells its viewers); one without a running session is fetched in
//! the background through the queue, so its clone is fresh when someone next looks. Either way
//! a burst of requests for one repository makes one fetch run and at most one more queued
//! after it (the remote may have changed after the running fetch read it).
//!
//! When each repository's webhook last delivered is [`crate::pace::HookClock`]'s to remember.

use std::collections::HashMap;

use actix::prelude::*;

use crate::Supervisor;
use crate::clone_queue::{CloneQueue, Enqueue, JobError, JobKind, Priority};
use crate::ids::RepoId;
use crate::repo_session::{FetchDone, FetchNow};
use crate::supervisor::{GetSession, Running};

/// Fetch repository `id` soon. Answers how the request was taken; the future of a background
/// fetch this request started resolves once that fetch ended (start-up paces itself on it).
#[derive(Debug, Message)]
#[rtype(result = "Freshened")]
pub struct Freshen {
    /// The repository.
    pub id: RepoId,
}

/// How a [`Freshen`] was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshened {
    /// Its running session fetches (now, or right after the fetch it is running).
    Session,
    /// A background fetch ran for it (this request started it and waited for it).
    Fetched,
    /// A background fetch was running: one more follows it (or was already to follow).
    Queued,
}

/// Counters, for metrics, the admin page and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, MessageResponse)]
pub struct FreshenStats {
    /// Requests handed to running sessions.
    pub to_sessions: u64,
    /// Background fetches started.
    pub background: u64,
    /// Requests folded into a fetch already to follow.
    pub coalesced: u64,
}

/// Asks for the counters.
#[derive(Debug, Message)]
#[rtype(result = "FreshenStats")]
pub struct GetFreshenStats;

/// Fetches repositories on demand, coalescing per repository.
#[derive(Debug)]
pub struct Freshener {
    supervisor: Addr<Supervisor>,
    queue: Addr<CloneQueue>,
    on_done: Option<Recipient<FetchDone>>,
    /// Repositories with a background fetch running, and whether one more should follow.
    busy: HashMap<RepoId, bool>,
    stats: FreshenStats,
}

impl Freshener {
    /// A freshener fetching through `queue`, handing requests for running sessions to them;
    /// background fetches are reported to `on_done` (without a commit count: nothing loaded
    /// them).
    pub fn new(
        supervisor: Addr<Supervisor>,
        queue: Addr<CloneQueue>,
        on_done: Option<Recipient<FetchDone>>,
    ) -> Self {
        Freshener {
            supervisor,
            queue,
            on_done,
            busy: HashMap::new(),
            stats: FreshenStats::default(),
        }
    }
}

impl Actor for Freshener {
    type Context = Context<Self>;
}

/// Runs background fetches of `id` until no request asked for another; tells `on_done` of
/// each.
async fn fetch_loop(
    me: Addr<Freshener>,
    queue: Addr<CloneQueue>,
    on_done: Option<Recipient<FetchDone>>,
    id: RepoId,
) {
    loop {
        let result = queue
            .send(Enqueue {
                id: id.clone(),
                kind: JobKind::Fetch,
                priority: Priority::Background,
                progress: None,
                client: None,
            })
            .await
            .unwrap_or(Err(JobError::Stopped));
        if let Some(done) = &on_done {
            let failed = result.as_ref().err();
            let _ = done
                .send(FetchDone {
                    id: id.clone(),
                    error: failed.map(JobError::public_message),
                    code: failed.map(|e| e.class().code()),
                    commits: None,
                    failures: u32::from(failed.is_some()),
                })
                .await;
        }
        match me.send(BackgroundEnded(id.clone())).await {
            Ok(true) => continue,
            _ => break,
        }
    }
}

/// A background fetch of the repository ended: answers whether another should run.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
struct BackgroundEnded(RepoId);

impl Handler<BackgroundEnded> for Freshener {
    type Result = bool;

    fn handle(&mut self, BackgroundEnded(id): BackgroundEnded, _: &mut Context<Self>) -> bool {
        match self.busy.get_mut(&id) {
            Some(again) if *again => {
                *again = false;
                self.stats.background += 1;
                metrics::counter!("gitvista_freshen_total", "via" => "background").increment(1);
                true
            }
            _ => {
                self.busy.remove(&id);
                false
            }
        }
    }
}

impl Handler<Freshen> for Freshener {
    type Result = ResponseActFuture<Self, Freshened>;

    fn handle(&mut self, Freshen { id }: Freshen, _: &mut Context<Self>) -> Self::Result {
        let supervisor = self.supervisor.clone();
        let check = {
            let id = id.clone();
            async move {
                if !matches!(supervisor.send(Running(id.clone())).await, Ok(true)) {
                    return None;
                }
                supervisor.send(GetSession(id)).await.ok()?.ok()
            }
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(check).then(move |session, act, ctx| {
                if let Some(session) = session {
                    session.do_send(FetchNow);
                    act.stats.to_sessions += 1;
                    metrics::counter!("gitvista_freshen_total", "via" => "session").increment(1);
                    return actix::fut::ready(Freshened::Session).boxed_local();
                }
                if let Some(again) = act.busy.get_mut(&id) {
                    if *again {
                        act.stats.coalesced += 1;
                        metrics::counter!("gitvista_freshen_total", "via" => "coalesced")
                            .increment(1);
                    }
                    *again = true;
                    return actix::fut::ready(Freshened::Queued).boxed_local();
                }
                act.busy.insert(id.clone(), false);
                act.stats.background += 1;
                metrics::counter!("gitvista_freshen_total", "via" => "background").increment(1);
                let run = fetch_loop(ctx.address(), act.queue.clone(), act.on_done.clone(), id);
                actix::fut::wrap_future::<_, Self>(run)
                    .map(|(), _, _| Freshened::Fetched)
                    .boxed_local()
            }),
        )
    }
}

impl Handler<GetFreshenStats> for Freshener {
    type Result = FreshenStats;

    fn handle(&mut self, _: GetFreshenStats, _: &mut Context<Self>) -> FreshenStats {
        self.stats
    }
}
