//! This node's heartbeat: [`Membership`] keeps it registered and alive in the `nodes` table,
//! reaps expired job leases, re-places the repositories of dead owners and lets go of those
//! that moved elsewhere; on a node holding its presence, it also re-places the repositories of
//! owners whose presence is gone (see [`crate::presence`]).

use std::time::Duration;

use actix::prelude::*;
use gitvista_store::StoreError;

use crate::presence::{PRESENCE_CHECK, PRESENCE_GRACE};
use crate::{NODE_LEASE, Node, NodeReport};

/// Keeps this node registered and alive (with what it reports: free disk, sessions, viewers),
/// reaps expired job leases, re-places the repositories of dead owners, and, on a node that
/// owns repositories, lets go of those that moved elsewhere (it was presumed dead).
#[derive(Debug)]
pub struct Membership<N: Node> {
    hosted: std::sync::Weak<N>,
    every: Duration,
    /// A beat is running: the next tick is skipped rather than piled up (a slow database).
    beating: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A presence check is running (skipped as beats are).
    checking: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Owners whose presence was missing at the last check: gone if it still is at the next.
    suspects: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl<N: Node> Membership<N> {
    /// Membership of `hosted`'s node, beating every `every`.
    pub fn new(hosted: std::sync::Weak<N>, every: Duration) -> Self {
        Membership {
            hosted,
            every,
            beating: Default::default(),
            checking: Default::default(),
            suspects: Default::default(),
        }
    }

    /// One presence check, off the actor thread, once this node has held its own presence for
    /// [`PRESENCE_GRACE`].
    fn check_presence(&self, ctx: &mut Context<Self>) {
        let Some(h) = self.hosted.upgrade() else {
            ctx.stop();
            return;
        };
        if h.presence().held_for().is_none_or(|d| d < PRESENCE_GRACE) {
            return;
        }
        let suspects = std::sync::Arc::clone(&self.suspects);
        unless_running(&self.checking, async move {
            check_presence(&h, suspects).await;
        });
    }

    /// One beat, off the actor thread.
    fn beat(&self, ctx: &mut Context<Self>) {
        let Some(h) = self.hosted.upgrade() else {
            ctx.stop();
            return;
        };
        unless_running(&self.beating, async move {
            beat(&h).await;
        });
    }
}

/// Runs `work` on the actor system unless the last run that `running` guards has not ended (a
/// slow database must not pile up beats or checks behind it).
fn unless_running(
    running: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    work: impl std::future::Future<Output = ()> + 'static,
) {
    use std::sync::atomic::Ordering;
    if running.swap(true, Ordering::AcqRel) {
        return;
    }
    let running = std::sync::Arc::clone(running);
    actix::spawn(async move {
        work.await;
        running.store(false, Ordering::Release);
    });
}

/// What one heartbeat does.
async fn beat<N: Node>(h: &std::sync::Arc<N>) {
    // What this node owned before the database is asked what it owns: a repository it claims
    // meanwhile (a re-placement's clone job) is in the answer or not, but never judged by it.
    let fenced_before = h.fences().all();
    let NodeReport {
        id,
        role,
        internal_addr: addr,
        free_bytes: free,
        sessions: n_sessions,
        viewers: n_viewers,
        place,
    } = h.report().await;
    let store = h.store().clone();
    let runs_git = role.runs_git();
    let role = role.as_str();
    let result = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        if !store.report_node(&id, free, n_sessions, n_viewers)? {
            store.register_node_at(&id, role, addr.as_deref(), &place)?;
            store.report_node(&id, free, n_sessions, n_viewers)?;
        }
        let reaped = store.reap_expired_jobs()?;
        let moved = store.replace_dead_owners(NODE_LEASE.as_millis() as i64)?;
        let owned = if runs_git {
            Some(store.owned_by(&id)?)
        } else {
            None
        };
        Ok((reaped, moved, owned))
    })
    .await;
    let (reaped, moved, owned) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the heartbeat could not reach the database");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the heartbeat could not run");
            return;
        }
    };
    if reaped > 0 {
        tracing::warn!(
            jobs = reaped,
            "queued again jobs whose node stopped renewing its lease"
        );
        metrics::counter!("gitvista_jobs_reaped_total").increment(reaped as u64);
    }
    if !moved.is_empty() {
        tracing::warn!(
            repos = moved.len(),
            "re-placing the repositories of a worker that stopped beating"
        );
        re_placed(h, &moved).await;
    }
    if let Some(owned) = owned {
        let owned: std::collections::HashMap<String, i64> = owned.into_iter().collect();
        for (repo, epoch) in fenced_before {
            let still = h.fences().get(&repo).map(|f| f.epoch) == Some(epoch);
            if still && owned.get(&repo) != Some(&epoch) {
                // Another node owns it now (this one was presumed dead): its clone here is
                // stale, and nothing this node writes about it goes through any more.
                tracing::warn!(%repo, "this node no longer owns the repository; dropping its clone");
                h.let_go(&repo).await;
            }
        }
    }
}

/// Viewers of `moved` are told, and the job runner looks for their clones.
async fn re_placed<N: Node>(h: &std::sync::Arc<N>, moved: &[String]) {
    metrics::counter!("gitvista_repos_replaced_total").increment(moved.len() as u64);
    h.moving(moved).await;
    h.wake_jobs();
}

/// What one presence check does: owners whose presence is missing now and was at the last
/// check are forgotten, and their repositories re-placed.
async fn check_presence<N: Node>(
    h: &std::sync::Arc<N>,
    suspects: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
) {
    let store = h.store().clone();
    let result = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let started_before = gitvista_store::jobs::now_ms() - PRESENCE_GRACE.as_millis() as i64;
        let absent: std::collections::HashSet<String> =
            store.absent_owners(started_before)?.into_iter().collect();
        let gone: Vec<String> = {
            let mut suspects = suspects.lock().unwrap_or_else(|e| e.into_inner());
            let gone = absent.intersection(&suspects).cloned().collect();
            *suspects = absent;
            gone
        };
        if gone.is_empty() {
            return Ok((gone, Vec::new()));
        }
        for node in &gone {
            store.forget_node(node)?;
        }
        let moved = store.replace_dead_owners(NODE_LEASE.as_millis() as i64)?;
        Ok((gone, moved))
    })
    .await;
    let (gone, moved) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the presence check could not reach the database");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the presence check could not run");
            return;
        }
    };
    if gone.is_empty() {
        return;
    }
    tracing::warn!(
        nodes = ?gone,
        repos = moved.len(),
        "an owner's PostgreSQL session is gone (its process ended): re-placing its repositories"
    );
    metrics::counter!("gitvista_owners_gone_total").increment(gone.len() as u64);
    if !moved.is_empty() {
        re_placed(h, &moved).await;
    }
}

impl<N: Node> Actor for Membership<N> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(ctx);
        ctx.run_interval(self.every, |act, ctx| act.beat(ctx));
        // Presence exists on PostgreSQL only: a single node on SQLite has no timer for it.
        if self
            .hosted
            .upgrade()
            .is_some_and(|h| h.store().backend() == "postgres")
        {
            ctx.run_interval(PRESENCE_CHECK, |act, ctx| act.check_presence(ctx));
        }
    }
}
