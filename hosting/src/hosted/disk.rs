//! Clones on disk: the reaper of clones nobody used, deleting one, the free space and the disk
//! quota kept by evicting the least recently used.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use gitvista_actors::RepoId;
use gitvista_actors::eviction::Swept;
use gitvista_actors::supervisor::Forget;

use crate::hosted::Hosted;
use crate::hosted::REAPED_KEPT;
use crate::hosted::clones::JOBS_KEPT_MS;
use gitvista_store::Repo;

/// After each eviction sweep: records that running sessions are in use, and deletes clones
/// nobody used for `clone_unused` (row kept as `evicted`; the next request clones again).
#[derive(Debug)]
pub struct CloneReaper {
    pub(crate) hosted: std::sync::Weak<Hosted>,
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
            let stale = tokio::task::spawn_blocking(
                move || -> Result<Vec<Repo>, gitvista_store::StoreError> {
                    for id in &active {
                        store.touch(id)?;
                    }
                    // Deliveries older than the forges' redelivery window cannot come again.
                    store.prune_deliveries(
                        gitvista_store::now() - gitvista_store::webhooks::DELIVERIES_KEPT_SECS,
                    )?;
                    // Ended jobs are kept a day for /admin, then forgotten.
                    store.prune_jobs(gitvista_store::jobs::now_ms() - JOBS_KEPT_MS)?;
                    let cutoff = gitvista_store::now() - unused;
                    Ok(store
                        .repos_in(&["ready"])?
                        .into_iter()
                        .filter(|r| !active.contains(&r.id))
                        .filter(|r| r.last_access_at.unwrap_or(r.created_at) <= cutoff)
                        .collect())
                },
            )
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

impl Hosted {
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
            .map(|epoch| gitvista_store::placement::Fence {
                node: self.node_id.clone(),
                epoch,
            });
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&dir);
            // Nobody owns it now: whichever worker clones it next places it.
            if let Some(fence) = fence
                && store.set_state_fenced(&rid, &fence, "evicted", None)?
            {
                store.release_repo(&rid, &fence)?;
            }
            Ok::<_, gitvista_store::StoreError>(())
        })
        .await;
        metrics::counter!("gitvista_clones_deleted_total").increment(1);
        let mut reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        reaped.push_back((key, gitvista_store::now()));
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
        let all = tokio::task::spawn_blocking(move || store.repos())
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
                    let _ = tokio::task::spawn_blocking(move || store.delete_repo(&rid)).await;
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
}
