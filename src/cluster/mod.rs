//! This node's place in the cluster: it is registered in the `nodes` table when it starts,
//! beats every [`HEARTBEAT`] (a node whose heartbeat is older than [`NODE_LEASE`] is dead), and
//! at each beat queues again the jobs whose lease ran out, whichever node held them. The single
//! node (`all`) does the same against its own database, so one code path serves both.

use std::time::Duration;

use actix::prelude::*;

use crate::store::StoreError;

pub mod bus;
pub mod forward;
pub mod limits;
pub mod runner;
pub mod settings;
pub mod signature;

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

/// The id of the node whose clones live in `data_dir`, kept in its `node-id` file (made on
/// first start): a worker that restarts on the same disk is the same owner, so its clones stay
/// its own.
pub fn data_node_id(data_dir: &std::path::Path) -> std::io::Result<String> {
    let file = data_dir.join("node-id");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let id = text.trim();
        if !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Ok(id.to_string());
        }
    }
    let id = new_node_id();
    std::fs::write(&file, format!("{id}\n"))?;
    Ok(id)
}

/// The repositories this node owns, with the epochs it owns them under: every write about one
/// is fenced by its epoch.
#[derive(Debug, Default)]
pub struct Fences {
    node: String,
    epochs: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl Fences {
    /// Fences of node `node`.
    pub fn new(node: &str) -> Self {
        Fences {
            node: node.to_string(),
            epochs: Default::default(),
        }
    }

    fn epochs(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.epochs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fence of repository `id`, if this node owns it.
    pub fn get(&self, id: &str) -> Option<crate::store::placement::Fence> {
        self.epochs()
            .get(id)
            .map(|&epoch| crate::store::placement::Fence {
                node: self.node.clone(),
                epoch,
            })
    }

    /// This node owns `id` under `epoch`.
    pub fn set(&self, id: &str, epoch: i64) {
        self.epochs().insert(id.to_string(), epoch);
    }

    /// This node no longer owns `id`.
    pub fn remove(&self, id: &str) -> Option<i64> {
        self.epochs().remove(id)
    }

    /// Every repository this node owns, with its epoch.
    pub fn all(&self) -> Vec<(String, i64)> {
        self.epochs().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Keeps this node registered and alive (with what it reports: free disk, sessions, viewers),
/// reaps expired job leases, re-places the repositories of dead owners, and, on a node that
/// owns repositories, lets go of those that moved elsewhere (it was presumed dead).
#[derive(Debug)]
pub struct Membership {
    hosted: std::sync::Weak<crate::hosted::Hosted>,
    every: Duration,
    /// A beat is running: the next tick is skipped rather than piled up (a slow database).
    beating: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Membership {
    /// Membership of `hosted`'s node, beating every `every`.
    pub fn new(hosted: std::sync::Weak<crate::hosted::Hosted>, every: Duration) -> Self {
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
async fn beat(h: &std::sync::Arc<crate::hosted::Hosted>) {
    let sessions = h
        .supervisor
        .send(gitvista_actors::supervisor::Inspect)
        .await
        .unwrap_or_default();
    let viewers: usize = sessions.iter().map(|(_, i)| i.viewers).sum();
    let free = if h.role.runs_git() {
        h.free_bytes().min(i64::MAX as u64) as i64
    } else {
        0
    };
    let (store, id, role) = (h.store.clone(), h.node_id.clone(), h.role.as_str());
    let addr = h.config.cluster.internal_addr.map(|a| a.to_string());
    let (n_sessions, n_viewers) = (sessions.len() as i32, viewers as i32);
    let runs_git = h.role.runs_git();
    let result = actix_web::web::block(move || -> Result<_, StoreError> {
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
        for (repo, epoch) in h.fences.all() {
            if owned.get(&repo) != Some(&epoch) {
                // Another node owns it now (this one was presumed dead): its clone here is
                // stale, and nothing this node writes about it goes through any more.
                tracing::warn!(%repo, "this node no longer owns the repository; dropping its clone");
                h.let_go(&repo).await;
            }
        }
    }
}

impl Actor for Membership {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(ctx);
        ctx.run_interval(self.every, |act, ctx| act.beat(ctx));
    }
}
