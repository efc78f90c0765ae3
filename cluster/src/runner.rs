//! The job runner of a node that runs git (`all` or `worker`): claims jobs from the shared
//! `jobs` table and runs them through this node's CloneQueue, the only place git runs.
//!
//! - **Claims** happen while fewer jobs than the node's git slots run: at start, when woken
//!   (an enqueue in this process, or PostgreSQL's `NOTIFY gitvista_jobs` from any node), and by
//!   a poll every few seconds that covers a lost notification. A job is claimed only for a
//!   repository this node owns, or a clone of one nobody owns when the node has disk room
//!   (the claim places it here).
//! - **Leases** are renewed at a third of their length while the job runs; a node that stops
//!   renewing loses the job to the reaper (any node's heartbeat), and its late writes are
//!   fenced off.
//! - **Draining** ([`Drain`], when the node is told to stop): no more claims; the running jobs
//!   may end for a while, and those still running then are handed back to the queue with
//!   their attempt not counted, so a deploy neither loses a job nor runs one twice.

use std::sync::Weak;
use std::time::Duration;

use actix::prelude::*;

use crate::Node;
use gitvista_store::Store;
use gitvista_store::jobs::Claimed;

use gitvista_store::jobs::listen_for_jobs;

/// Asks the runner to look for work now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Stops claiming and waits up to `within` for the running jobs to end; hands back those still
/// running then. Answers how many were handed back.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct Drain {
    /// How long the running jobs may take to end.
    pub within: Duration,
}

/// Claims and runs jobs for this node.
#[derive(Debug)]
pub struct JobRunner<N: Node> {
    hosted: Weak<N>,
    store: Store,
    node: String,
    /// Jobs at once (the node's git slots).
    slots: usize,
    /// Jobs running now (a drain waits for it to reach 0).
    running: tokio::sync::watch::Sender<usize>,
    claiming: bool,
    /// A claim came in while one was being made: claim again after it.
    again: bool,
    lease: Duration,
    poll: Duration,
    /// The node is stopping: nothing more is claimed.
    draining: bool,
}

impl<N: Node> JobRunner<N> {
    /// A runner for `hosted`'s node, running `slots` jobs at once under leases of `lease`,
    /// polling every `poll`.
    pub fn new(
        hosted: Weak<N>,
        store: Store,
        node: String,
        slots: usize,
        lease: Duration,
        poll: Duration,
    ) -> Self {
        JobRunner {
            hosted,
            store,
            node,
            slots: slots.max(1),
            running: tokio::sync::watch::channel(0).0,
            claiming: false,
            again: false,
            lease,
            poll,
            draining: false,
        }
    }

    fn claim(&mut self, ctx: &mut Context<Self>) {
        if self.claiming {
            self.again = true;
            return;
        }
        if *self.running.borrow() >= self.slots || self.draining {
            return;
        }
        let Some(hosted) = self.hosted.upgrade() else {
            ctx.stop();
            return;
        };
        self.claiming = true;
        let place = hosted.has_room_to_clone();
        let (store, node, lease) = (self.store.clone(), self.node.clone(), self.lease);
        let claim = async move {
            tokio::task::spawn_blocking(move || {
                store.claim_job(&node, lease.as_millis() as i64, place)
            })
            .await
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(claim).map(|result, act, ctx| {
                act.claiming = false;
                match result {
                    Ok(Ok(Some(claimed))) => {
                        act.run(claimed, ctx);
                        act.claim(ctx);
                    }
                    Ok(Ok(None)) => {
                        if std::mem::take(&mut act.again) {
                            act.claim(ctx);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not claim a job"),
                    Err(e) => tracing::warn!(error = %e, "could not claim a job"),
                }
            }),
        );
    }

    fn run(&mut self, claimed: Claimed, ctx: &mut Context<Self>) {
        let Some(hosted) = self.hosted.upgrade() else {
            return;
        };
        self.running.send_modify(|n| *n += 1);
        metrics::gauge!("gitvista_jobs_running").increment(1.0);
        let (store, node, lease) = (self.store.clone(), self.node.clone(), self.lease);
        let job_id = claimed.job.id.clone();
        let work = async move {
            let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
            // The lease is renewed while the job runs.
            let renew = {
                let (store, node, id) = (store.clone(), node.clone(), job_id.clone());
                actix::spawn(async move {
                    let every = lease / 3;
                    loop {
                        tokio::select! {
                            _ = &mut stopped => return,
                            () = tokio::time::sleep(every) => {}
                        }
                        let (store, node, job) = (store.clone(), node.clone(), id.clone());
                        let held = tokio::task::spawn_blocking(move || {
                            store.renew_lease(&job, &node, lease.as_millis() as i64)
                        })
                        .await;
                        if let Ok(Ok(false)) = held {
                            tracing::warn!(job = %id, "lost the lease of a running job; its writes are fenced off");
                            return;
                        }
                    }
                })
            };
            let outcome = hosted.run_job(&claimed).await;
            let _ = stop.send(());
            let _ = renew.await;
            let (id, kind) = (claimed.job.id.clone(), claimed.job.kind.clone());
            let _ = tokio::task::spawn_blocking(move || match outcome {
                Ok(()) => store.finish_job(&id, &node).map(|_| ()),
                Err(why) => store.fail_job(&id, &node, &why, 30_000).map(
                    |fate| tracing::warn!(job = %id, kind, error = %why, ?fate, "a job failed"),
                ),
            })
            .await;
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(|(), act, ctx| {
                act.running.send_modify(|n| *n -= 1);
                metrics::gauge!("gitvista_jobs_running").decrement(1.0);
                act.claim(ctx);
            }),
        );
    }
}

impl<N: Node> Actor for JobRunner<N> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.claim(ctx);
        ctx.run_interval(self.poll, |act, ctx| act.claim(ctx));
    }
}

impl<N: Node> Handler<Wake> for JobRunner<N> {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.claim(ctx);
    }
}

impl<N: Node> Handler<Drain> for JobRunner<N> {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, drain: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        let mut running = self.running.subscribe();
        let (store, node) = (self.store.clone(), self.node.clone());
        Box::pin(async move {
            let ended = tokio::time::timeout(drain.within, running.wait_for(|n| *n == 0)).await;
            if matches!(ended, Ok(Ok(_))) {
                return 0;
            }
            let back = tokio::task::spawn_blocking(move || store.hand_back_jobs(&node)).await;
            match back {
                Ok(Ok(n)) => {
                    tracing::info!(jobs = n, "stopping: handed running jobs back to the queue");
                    n
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "stopping: could not hand running jobs back; their leases will run out");
                    0
                }
                Err(_) => 0,
            }
        })
    }
}

/// Listens on PostgreSQL for queued jobs and wakes `runner` (a thread of its own running
/// [`listen_for_jobs`]), holding node `node`'s presence on the same connection. Ends when the
/// runner stops.
pub fn listen<N: Node>(
    database_url: String,
    runner: Addr<JobRunner<N>>,
    node: String,
    presence: std::sync::Arc<crate::presence::Presence>,
) {
    let spawned = std::thread::Builder::new()
        .name("gitvista-listen".into())
        .spawn(move || {
            let held = |held: bool| presence.set(held);
            listen_for_jobs(
                &database_url,
                || runner.connected(),
                || runner.do_send(Wake),
                Some(gitvista_store::jobs::PresenceHook {
                    node: &node,
                    held: &held,
                }),
            );
            presence.set(false);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the job listener; polling only");
    }
}
