//! This node's place in the cluster: it is registered in the `nodes` table when it starts,
//! beats every [`HEARTBEAT`] (a node whose heartbeat is older than [`NODE_LEASE`] is dead), and
//! at each beat queues again the jobs whose lease ran out, whichever node held them. The single
//! node (`all`) does the same against its own database, so one code path serves both.

use std::time::Duration;

use actix::prelude::*;

use crate::store::Store;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A node silent this long is dead.
pub const NODE_LEASE: Duration = Duration::from_secs(15);

/// A node id unique to this process: its pid and random digits.
pub fn new_node_id() -> String {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("node-{}-{hex}", std::process::id())
}

/// Keeps this node registered and alive, and reaps expired job leases.
#[derive(Debug)]
pub struct Membership {
    store: Store,
    id: String,
    role: &'static str,
    internal_addr: Option<String>,
    every: Duration,
}

impl Membership {
    /// Membership of node `id` with `role`, beating every `every`.
    pub fn new(
        store: Store,
        id: String,
        role: &'static str,
        internal_addr: Option<String>,
        every: Duration,
    ) -> Self {
        Membership {
            store,
            id,
            role,
            internal_addr,
            every,
        }
    }

    /// One beat, off the actor thread: registers the node again if it was forgotten (it was
    /// presumed dead), and reaps expired leases.
    fn beat(&self, first: bool) {
        let (store, id, role, addr) = (
            self.store.clone(),
            self.id.clone(),
            self.role,
            self.internal_addr.clone(),
        );
        actix::spawn(async move {
            let result =
                actix_web::web::block(move || -> Result<usize, crate::store::StoreError> {
                    if first || !store.heartbeat(&id)? {
                        store.register_node(&id, role, addr.as_deref())?;
                    }
                    store.reap_expired_jobs()
                })
                .await;
            match result {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::warn!(
                        jobs = n,
                        "queued again jobs whose node stopped renewing its lease"
                    );
                    metrics::counter!("gitvista_jobs_reaped_total").increment(n as u64);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the heartbeat could not reach the database")
                }
                Err(e) => tracing::warn!(error = %e, "the heartbeat could not run"),
            }
        });
    }
}

impl Actor for Membership {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(true);
        ctx.run_interval(self.every, |act, _| act.beat(false));
    }
}
