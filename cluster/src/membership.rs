//! This node's heartbeat: [`Membership`] keeps it registered and alive in the `nodes` table,
//! reaps expired job leases, re-places the repositories of dead owners and lets go of those
//! that moved elsewhere.

use std::time::Duration;

use actix::prelude::*;
use gitvista_store::StoreError;

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
}

impl<N: Node> Membership<N> {
    /// Membership of `hosted`'s node, beating every `every`.
    pub fn new(hosted: std::sync::Weak<N>, every: Duration) -> Self {
        Membership {
            hosted,
            every,
            beating: Default::default(),
        }
    }

    /// One beat, off the actor thread.
    fn beat(&self, ctx: &mut Context<Self>) {
        use std::sync::atomic::Ordering;
        let Some(h) = self.hosted.upgrade() else {
            ctx.stop();
            return;
        };
        if self.beating.swap(true, Ordering::AcqRel) {
            return;
        }
        let beating = std::sync::Arc::clone(&self.beating);
        actix::spawn(async move {
            beat(&h).await;
            beating.store(false, Ordering::Release);
        });
    }
}

/// What one heartbeat does.
async fn beat<N: Node>(h: &std::sync::Arc<N>) {
    let NodeReport {
        id,
        role,
        internal_addr: addr,
        free_bytes: free,
        sessions: n_sessions,
        viewers: n_viewers,
    } = h.report().await;
    let store = h.store().clone();
    let runs_git = role.runs_git();
    let role = role.as_str();
    let result = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        if !store.report_node(&id, free, n_sessions, n_viewers)? {
            store.register_node(&id, role, addr.as_deref())?;
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
        metrics::counter!("gitvista_repos_replaced_total").increment(moved.len() as u64);
        h.moving(&moved).await;
        h.wake_jobs();
    }
    if let Some(owned) = owned {
        let owned: std::collections::HashMap<String, i64> = owned.into_iter().collect();
        for (repo, epoch) in h.fences().all() {
            if owned.get(&repo) != Some(&epoch) {
                // Another node owns it now (this one was presumed dead): its clone here is
                // stale, and nothing this node writes about it goes through any more.
                tracing::warn!(%repo, "this node no longer owns the repository; dropping its clone");
                h.let_go(&repo).await;
            }
        }
    }
}

impl<N: Node> Actor for Membership<N> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(ctx);
        ctx.run_interval(self.every, |act, ctx| act.beat(ctx));
    }
}
