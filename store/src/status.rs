//! What the admin status answer counts beyond the plain tallies: the job that has waited
//! longest, webhook deliveries of the last hour, and clone bytes per node.

use diesel::prelude::*;

use super::schema::{jobs, repos, webhook_deliveries};
use super::{Store, StoreError};

/// What every node reads of the cluster for its status answer and its gauges, in one go.
#[derive(Debug, Clone)]
pub struct ServiceFigures {
    /// The queued job due the longest, if any waits.
    pub oldest_waiting: Option<OldestWaiting>,
    /// The nodes alive within the lease.
    pub nodes: Vec<super::jobs::LiveNode>,
    /// Clone bytes by owner ([`Store::clone_bytes_by_owner`]).
    pub clone_bytes: Vec<(String, i64)>,
}

impl ServiceFigures {
    /// Clone bytes on `node`'s disk.
    pub fn clone_bytes_of(&self, node: &str) -> i64 {
        self.clone_bytes
            .iter()
            .find(|(owner, _)| owner == node)
            .map_or(0, |(_, b)| *b)
    }
}

/// The queued job due the longest: its kind and since when it was due (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldestWaiting {
    /// `clone`, `fetch`, ...
    pub kind: String,
    /// When it became due (its `run_at`).
    pub due_ms: i64,
}

impl Store {
    /// [`ServiceFigures`] as of `now_ms`, nodes alive within `lease_ms`.
    pub fn service_figures(
        &self,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<ServiceFigures, StoreError> {
        Ok(ServiceFigures {
            oldest_waiting: self.oldest_waiting_job(now_ms)?,
            nodes: self.live_nodes(lease_ms)?,
            clone_bytes: self.clone_bytes_by_owner()?,
        })
    }

    /// The queued job due longest ago as of `now_ms` (one waiting for a retry later is not
    /// waiting yet); `None` when nothing due waits.
    pub fn oldest_waiting_job(&self, now_ms: i64) -> Result<Option<OldestWaiting>, StoreError> {
        let mut conn = self.conn()?;
        Ok(jobs::table
            .filter(jobs::state.eq("queued"))
            .filter(jobs::run_at.le(now_ms))
            .order((jobs::run_at, jobs::id))
            .select((jobs::kind, jobs::run_at))
            .first::<(String, i64)>(&mut *conn)
            .optional()?
            .map(|(kind, due_ms)| OldestWaiting { kind, due_ms }))
    }

    /// Webhook deliveries received at or after `since` (Unix seconds), counted by provider and
    /// outcome.
    pub fn deliveries_since(&self, since: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_deliveries::table
            .filter(webhook_deliveries::received_at.ge(since))
            .group_by((webhook_deliveries::provider, webhook_deliveries::outcome))
            .select((
                webhook_deliveries::provider,
                webhook_deliveries::outcome,
                diesel::dsl::count_star(),
            ))
            .order((webhook_deliveries::provider, webhook_deliveries::outcome))
            .load(&mut *conn)?)
    }

    /// Bytes of the clones on each node's disk (ready and fetching repositories, by owner),
    /// largest first.
    pub fn clone_bytes_by_owner(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        // Summed here: SUM of a BIGINT is NUMERIC on PostgreSQL and INTEGER on SQLite.
        let rows: Vec<(Option<String>, i64)> = repos::table
            .filter(repos::state.eq_any(["ready", "fetching"]))
            .filter(repos::owner.is_not_null())
            .select((repos::owner, repos::disk_bytes))
            .load(&mut *conn)?;
        let mut by: std::collections::BTreeMap<String, i64> = Default::default();
        for (owner, bytes) in rows {
            if let Some(owner) = owner {
                *by.entry(owner).or_default() += bytes.max(0);
            }
        }
        let mut by: Vec<(String, i64)> = by.into_iter().collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(by)
    }
}
