//! Which worker owns each repository, and under which epoch.
//!
//! A repository is placed when a worker claims its clone job (see
//! [`Store::claim_job`](super::Store::claim_job)): the claimer becomes the owner and the epoch
//! grows. Every write an owner makes about the repository afterwards is fenced by (owner,
//! epoch): once the repository has moved (its owner was presumed dead and the survivors took it
//! over), the old owner's writes change nothing. When an owner's heartbeat is older than the
//! node lease, any node re-places its repositories: nobody owns them, the epoch grows, and those
//! that were served are cloned again by whichever worker claims them.
//!
//! A repository may name a region ([`Store::place_in_region`]): its clone is then claimed by a
//! worker of that region while one lives there, by any worker otherwise.

use diesel::prelude::*;

use super::schema::{jobs, nodes, repo_regions, repos};
use super::{Store, StoreError};
use crate::jobs::now_ms;

/// The clones pending in the shared queue, as [`Store::pending_clones`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingClones {
    /// Queued, on every node.
    pub waiting: usize,
    /// The client's, queued or running.
    pub mine: usize,
}

/// A node's claim on a repository: writes go through only while it is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The owner.
    pub node: String,
    /// The epoch it owns the repository under.
    pub epoch: i64,
}

/// Repository `$id`'s row while `$fence` is current.
macro_rules! fenced {
    ($id:expr, $fence:expr) => {
        repos::table
            .find($id)
            .filter(repos::owner.eq(&$fence.node))
            .filter(repos::epoch.eq($fence.epoch))
    };
}

/// States whose clone a new owner must make again when the old owner died.
const SERVED: [&str; 4] = ["ready", "fetching", "cloning", "pending"];

/// The payload of a clone job: who asked (per-client limits count queued jobs).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ClonePayload {
    /// The client key of whoever asked for it.
    #[serde(default)]
    pub client: Option<String>,
}

impl Store {
    /// Repositories by owner (`None`: not placed), with how many each holds.
    pub fn placement_counts(&self) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .group_by(repos::owner)
            .select((repos::owner, diesel::dsl::count_star()))
            .order(repos::owner)
            .load(&mut *conn)?)
    }

    /// Whether `fence` is current for repository `id`.
    pub fn holds(&self, id: &str, fence: &Fence) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(fenced!(id, fence).count().get_result::<i64>(&mut *conn)? == 1)
    }

    /// The repositories `node` owns, with the epochs it owns them under.
    pub fn owned_by(&self, node: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .filter(repos::owner.eq(node))
            .select((repos::id, repos::epoch))
            .order(repos::id)
            .load(&mut *conn)?)
    }

    /// Makes `node` the owner of every repository nobody owns (a single node adopting the rows
    /// it served before placement existed); answers how many it adopted.
    pub fn adopt_unowned(&self, node: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(repos::table.filter(repos::owner.is_null()))
            .set((
                repos::owner.eq(Some(node)),
                repos::epoch.eq(repos::epoch + 1),
            ))
            .execute(&mut *conn)?)
    }

    /// `fence`'s owner gives repository `id` up (its clone is gone): nobody owns it, the epoch
    /// grows, and the next clone places it again. False when the fence was stale.
    pub fn release_repo(&self, id: &str, fence: &Fence) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(fenced!(id, fence))
            .set((
                repos::owner.eq(None::<String>),
                repos::epoch.eq(repos::epoch + 1),
            ))
            .execute(&mut *conn)?
            == 1)
    }

    /// Re-places the repositories of owners whose heartbeat is older than `lease_ms` (or who are
    /// not registered at all): nobody owns them and their epoch grows; those that were served
    /// become `pending` with a clone job queued, for any worker with room. Forgets the dead
    /// nodes. Answers the ids queued for a new clone.
    pub fn replace_dead_owners(&self, lease_ms: i64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let live_after = now_ms() - lease_ms;
        let moved = crate::write_transaction(&mut conn, |c| -> Result<Vec<String>, StoreError> {
            let live: Vec<String> = nodes::table
                .filter(nodes::heartbeat_at.ge(live_after))
                .select(nodes::id)
                .load(c)?;
            let orphans: Vec<(String, String, i64)> = repos::table
                .filter(repos::owner.is_not_null())
                .filter(repos::owner.ne_all(&live))
                .select((repos::id, repos::state, repos::epoch))
                .load(c)?;
            let mut reclone = Vec::new();
            for (id, state, epoch) in orphans {
                let served = SERVED.contains(&state.as_str());
                let row = repos::table
                    .find(&id)
                    .filter(repos::epoch.eq(epoch))
                    .filter(repos::owner.ne_all(&live));
                let n = if served {
                    diesel::update(row)
                        .set((
                            repos::owner.eq(None::<String>),
                            repos::epoch.eq(epoch + 1),
                            repos::state.eq("pending"),
                            repos::progress.eq(Some("moving to another server")),
                        ))
                        .execute(c)?
                } else {
                    diesel::update(row)
                        .set((repos::owner.eq(None::<String>), repos::epoch.eq(epoch + 1)))
                        .execute(c)?
                };
                if n == 1 && served {
                    reclone.push(id);
                }
            }
            diesel::delete(nodes::table.filter(nodes::heartbeat_at.lt(live_after))).execute(c)?;
            Ok(reclone)
        })?;
        drop(conn);
        let payload = serde_json::to_string(&ClonePayload::default()).ok();
        for id in &moved {
            self.enqueue_job(id, "clone", 1, payload.as_deref())?;
        }
        Ok(moved)
    }

    /// Sets repository `id`'s state (clearing the error) while `fence` is current.
    pub fn set_state_fenced(
        &self,
        id: &str,
        fence: &Fence,
        state: &str,
        progress: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(write_repo!(state &mut *conn, fenced!(id, fence), state, None::<String>, progress))
    }

    /// Records a failure (its class `code` and the sentence users see) while `fence` is current.
    pub fn set_failure_fenced(
        &self,
        id: &str,
        fence: &Fence,
        state: &str,
        code: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(write_repo!(failure &mut *conn, fenced!(id, fence), state, code, message))
    }

    /// Records a finished clone or fetch while `fence` is current (`commits`: `None` keeps the
    /// count).
    pub fn set_fetched_fenced(
        &self,
        id: &str,
        fence: &Fence,
        commits: Option<i64>,
        disk_bytes: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(write_repo!(fetched &mut *conn, fenced!(id, fence), commits, disk_bytes))
    }

    /// The clones every node has pending, for the queue's admission rule: how many wait in
    /// all, and how many of `client`'s wait or run.
    pub fn pending_clones(&self, client: &str) -> Result<PendingClones, StoreError> {
        let mut conn = self.conn()?;
        let pending: Vec<(String, Option<String>)> = jobs::table
            .filter(jobs::kind.eq("clone"))
            .filter(jobs::state.eq_any(["queued", "running"]))
            .select((jobs::state, jobs::payload))
            .load(&mut *conn)?;
        let waiting = pending.iter().filter(|(s, _)| s == "queued").count();
        let mine = pending
            .iter()
            .filter_map(|(_, p)| p.as_deref())
            .filter_map(|p| serde_json::from_str::<ClonePayload>(p).ok())
            .filter(|p| p.client.as_deref() == Some(client))
            .count();
        Ok(PendingClones { waiting, mine })
    }

    /// Records what node `id` reports at its heartbeat: free bytes on its data directory,
    /// sessions and viewers. False when it is not registered.
    pub fn report_node(
        &self,
        id: &str,
        free_bytes: i64,
        sessions: i32,
        viewers: i32,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(nodes::table.find(id))
            .set((
                nodes::heartbeat_at.eq(now_ms()),
                nodes::free_bytes.eq(free_bytes),
                nodes::sessions.eq(sessions),
                nodes::viewers.eq(viewers),
            ))
            .execute(&mut *conn)?
            == 1)
    }

    /// Repository `id` is placed in `region` unless a region was chosen for it already (where
    /// it was first asked for); answers its region.
    pub fn place_in_region(&self, id: &str, region: &str) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(repo_regions::table)
            .values((
                repo_regions::repo_id.eq(id),
                repo_regions::region.eq(region),
            ))
            .execute(&mut *conn);
        crate::inserted_once(inserted)?;
        Ok(repo_regions::table
            .find(id)
            .select(repo_regions::region)
            .first(&mut *conn)?)
    }

    /// The region repository `id` is placed in, if one was chosen.
    pub fn repo_region(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repo_regions::table
            .find(id)
            .select(repo_regions::region)
            .first(&mut *conn)
            .optional()?)
    }

    /// The regions where a node that runs git has beaten within `lease_ms`, by name.
    pub fn regions_with_workers(&self, lease_ms: i64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let mut regions: Vec<Option<String>> = nodes::table
            .filter(nodes::heartbeat_at.ge(now_ms() - lease_ms))
            .filter(nodes::role.ne("web"))
            .filter(nodes::region.is_not_null())
            .select(nodes::region)
            .distinct()
            .load(&mut *conn)?;
        regions.sort();
        Ok(regions.into_iter().flatten().collect())
    }
}
