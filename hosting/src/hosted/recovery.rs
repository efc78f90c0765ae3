//! After a restart: the clones this node owns are served from disk or cloned again, those it does
//! not own deleted, and the hook clock remembers which repositories' hooks delivered lately.
//! While it runs: clones whose directory is gone are cloned again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gitvista_actors::RepoId;

use crate::hosted::Hosted;
use crate::hosted::clones::{clone_payload, queue_clone};

impl Hosted {
    /// After a restart: serve the ready clones this node owns from disk, clone again those it
    /// owns whose clone is missing or was interrupted, and delete clones it does not own (a
    /// delete that raced a clone, a crash, or repositories that moved while it was away). The
    /// single node first adopts every repository nobody owns (rows from before placement).
    pub(crate) fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        use gitvista_cluster::settings::Role;
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
            queue_clone(&self.store, &repo.id, None, &clone_payload(None))?;
        }
        Ok(())
    }

    /// Every [`crate::config::HostedConfig::lost_clone_check`], looks for clones this node
    /// serves whose directory is gone while it runs (a lost or wiped `repos/`) and clones them
    /// anew, most recently used first: each session is stopped and forgotten, the repository
    /// shows `cloning` to its viewers, and the clone queue brings it back.
    pub(crate) fn start_lost_clone_check(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = self.config.lost_clone_check;
        actix::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(h) = weak.upgrade() else {
                    return;
                };
                let store = h.store.clone();
                // Most recently used first (the store's order).
                let Ok(Ok(ready)) =
                    tokio::task::spawn_blocking(move || store.repos_in(&["ready"])).await
                else {
                    continue;
                };
                for repo in ready {
                    let Some(id) = RepoId::parse(&repo.id) else {
                        continue;
                    };
                    let Some(fence) = h.fences.get(&repo.id) else {
                        continue;
                    };
                    if h.clone_config.repo_dir(&id).join("HEAD").is_file() {
                        continue;
                    }
                    tracing::warn!(repo = %repo.id, "the clone's directory is gone: cloning it anew");
                    metrics::counter!("gitvista_clones_lost_total").increment(1);
                    // Not served until the clone is back (it registers the repository again):
                    // until then requests answer the `cloning` state, as for a first clone.
                    h.supervisor
                        .do_send(gitvista_actors::supervisor::Forget(id.clone()));
                    let store = h.store.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        queue_clone(&store, &repo.id, Some(&fence), &clone_payload(None))
                    })
                    .await;
                }
            }
        });
    }

    /// After a restart: remembers which repositories' hooks delivered within the hook window
    /// (their sessions keep polling as a safety net only), and fetches once every repository
    /// used within the fetch window or heard from by a hook, since forges do not redeliver
    /// what they sent while the server was down. The fetches run in the background, as many
    /// at a time as the queue runs.
    pub(crate) fn wake_hooks(self: &Arc<Self>) -> anyhow::Result<()> {
        let now = gitvista_store::now();
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
            // Only what this node serves: another worker fetches its own.
            .filter(|r| self.fences.get(&r.id).is_some())
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
}
