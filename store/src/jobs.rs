//! The job queue every node shares, in the `jobs` table: clone, fetch, deepen and maintenance
//! jobs, claimed by one node at a time under a short lease.
//!
//! - **Enqueue** coalesces: at most one queued and one running job per repository and kind (two
//!   partial unique indexes), so a webhook and a timer asking for the same fetch make one job.
//! - **Claim** takes the most urgent queued job that is due and whose repository has no job of
//!   its kind running. On PostgreSQL the candidate row is locked with `FOR UPDATE SKIP LOCKED`,
//!   so many claimers never wait on each other nor take the same job; on SQLite (one node) the
//!   claim runs in a transaction that takes the write lock first.
//! - **Leases**: the claimer renews its lease while the job runs; finishing or failing a job
//!   needs the lease (a node presumed dead that comes back cannot finish what another took over).
//! - **Reaping**: a running job whose lease ran out is queued again (or fails after its last
//!   attempt); failures back off exponentially.
//!
//! Times are milliseconds since the epoch.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::time::Duration;

use super::schema::{jobs, nodes, repos};
use super::{AnyConnection, Store, StoreError, inserted_once};

/// Inside a claim's transaction on connection `$c`: makes `$node` the owner of the claimed
/// job's repository when nobody owns it (a clone being placed; its epoch grows), and answers
/// the claim with the epoch `$node` owns it under. A repository another node placed meanwhile
/// rolls the claim back.
macro_rules! place_claimed {
    ($c:expr, $job:expr, $node:expr) => {{
        let job: Job = $job;
        let (owner, epoch): (Option<String>, i64) = repos::table
            .find(&job.repo_id)
            .select((repos::owner, repos::epoch))
            .first($c)?;
        match owner {
            Some(o) if o == $node => Claimed { job, epoch },
            Some(_) => return Err(diesel::result::Error::RollbackTransaction),
            None => {
                let placed = diesel::update(repos::table.find(&job.repo_id))
                    .filter(repos::owner.is_null())
                    .set((repos::owner.eq(Some($node)), repos::epoch.eq(epoch + 1)))
                    .execute($c)?;
                if placed != 1 {
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                Claimed {
                    job,
                    epoch: epoch + 1,
                }
            }
        }
    }};
}

/// Job `id` while `node` holds it (running under its lease).
macro_rules! held {
    ($id:expr, $node:expr) => {
        jobs::table
            .filter(jobs::id.eq($id))
            .filter(jobs::locked_by.eq($node))
            .filter(jobs::state.eq("running"))
    };
}

/// The PostgreSQL channel notified when a job is queued.
pub const JOBS_CHANNEL: &str = "gitvista_jobs";

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// The repository.
    pub repo_id: String,
    /// `clone`, `fetch`, `deepen`, `commit-graph`, `repack`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Higher runs first.
    pub priority: i32,
    /// Not before this (ms).
    pub run_at: i64,
    /// Claims so far (the one running included).
    pub attempts: i32,
    /// Claims allowed before it fails for good.
    pub max_attempts: i32,
    /// The node holding it, while running.
    pub locked_by: Option<String>,
    /// When the holder's lease ends (ms), while running.
    pub lease_until: Option<i64>,
    /// What the job needs beyond its kind (a clone's URL and depth, as JSON).
    pub payload: Option<String>,
    /// Why its last attempt failed.
    pub error_message: Option<String>,
}

/// A node whose heartbeat is young enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveNode {
    /// Its id.
    pub id: String,
    /// `all`, `web` or `worker`.
    pub role: String,
    /// Where other nodes reach it.
    pub internal_addr: Option<String>,
    /// How old its last heartbeat is (ms).
    pub heartbeat_age_ms: i64,
    /// Free bytes on its data directory (workers), as of its last heartbeat.
    pub free_bytes: i64,
    /// Sessions it runs.
    pub sessions: i32,
    /// Viewers it serves.
    pub viewers: i32,
    /// Its region and machine.
    pub place: NodePlace,
}

/// Where a node runs: its region (`GITVISTA_REGION`) and, on Fly, its machine id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePlace {
    /// The region's code (`ams`, `iad`, ...), when the deploy names regions.
    pub region: Option<String>,
    /// Fly's machine id (`FLY_MACHINE_ID`), when on Fly.
    pub machine_id: Option<String>,
}

/// Why a job ended without running: another of its kind, queued meanwhile, does its work.
pub const SUPERSEDED: &str = "another job of its kind was queued meanwhile";

/// A node whose heartbeat is older than this is dead (ms): every node judges by it.
pub const NODE_LEASE_MS: i64 = 15_000;

/// What [`Store::enqueue_job`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job with this id.
    New(String),
    /// One of the same repository and kind was queued already: this id.
    Coalesced(String),
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Queued again, to run at this time (ms).
    Retry(i64),
    /// Failed for good (its last attempt, or another job of its kind is queued already).
    Failed,
    /// The caller no longer held it (its lease ran out and the job went elsewhere).
    NotHeld,
}

/// The columns a claim returns, in [`Job`]'s order.
const RETURNING: &str = "id, repo_id, kind, state, priority, run_at, attempts, max_attempts, locked_by, lease_until, payload, error_message";

/// Backoff after the `attempts`-th failure: `base` doubled each time, at most an hour.
fn backoff(base_ms: i64, attempts: i32) -> i64 {
    base_ms
        .saturating_mul(1i64 << attempts.clamp(1, 20).saturating_sub(1))
        .min(3_600_000)
}

impl Store {
    /// Queues a `kind` job for `repo_id` (due now), unless one is queued already.
    pub fn enqueue_job(
        &self,
        repo_id: &str,
        kind: &str,
        priority: i32,
        payload: Option<&str>,
    ) -> Result<Enqueued, StoreError> {
        let mut conn = self.conn()?;
        // The queued job found on a conflict may be claimed before it is read: then there is
        // room for a new one, so try again.
        for _ in 0..5 {
            let mut bytes = [0u8; 12];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Connection(e.to_string()))?;
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let now = now_ms();
            let inserted = diesel::insert_into(jobs::table)
                .values((
                    jobs::id.eq(&id),
                    jobs::repo_id.eq(repo_id),
                    jobs::kind.eq(kind),
                    jobs::state.eq("queued"),
                    jobs::priority.eq(priority),
                    jobs::run_at.eq(now),
                    jobs::created_at.eq(now),
                    jobs::payload.eq(payload),
                ))
                .execute(&mut *conn);
            if inserted_once(inserted)? {
                // Wakes every listening node at once (PostgreSQL; a single SQLite node wakes
                // its runner in-process).
                if let AnyConnection::Postgresql(c) = &mut *conn {
                    diesel::sql_query(format!("NOTIFY {JOBS_CHANNEL}")).execute(c)?;
                }
                return Ok(Enqueued::New(id));
            }
            let queued: Option<String> = jobs::table
                .filter(jobs::repo_id.eq(repo_id))
                .filter(jobs::kind.eq(kind))
                .filter(jobs::state.eq("queued"))
                .select(jobs::id)
                .first(&mut *conn)
                .optional()?;
            let Some(queued) = queued else {
                continue;
            };
            // The queued one takes the higher priority of the two.
            diesel::update(jobs::table.find(&queued))
                .filter(jobs::priority.lt(priority))
                .set(jobs::priority.eq(priority))
                .execute(&mut *conn)?;
            return Ok(Enqueued::Coalesced(queued));
        }
        Err(StoreError::Connection(format!(
            "could not queue a {kind} job for {repo_id}: it kept being claimed"
        )))
    }

    /// Claims for `node`, with a lease of `lease_ms`, the most urgent due job (highest
    /// priority, then oldest) that `node` may run: a job of a repository it owns, or, with
    /// `place`, a clone of a repository nobody owns, which it then owns (the repository's
    /// epoch grows). `None` when nothing is due for it.
    pub fn claim_job(
        &self,
        node: &str,
        lease_ms: i64,
        place: bool,
    ) -> Result<Option<Claimed>, StoreError> {
        let mut conn = self.conn()?;
        let now = now_ms();
        // A clone is placed in its repository's region: claimed by a node of that region, or
        // by any node when the region has no live node that runs git (or none is named).
        let pick = |p: &dyn Fn(usize) -> String| {
            format!(
                "SELECT q.id FROM jobs q JOIN repos o ON o.id = q.repo_id \
                 WHERE q.state = 'queued' AND q.run_at <= {now} \
                 AND (o.owner = {node}{place}) \
                 AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.repo_id = q.repo_id \
                 AND r.kind = q.kind AND r.state = 'running') \
                 ORDER BY q.priority DESC, q.run_at, q.id",
                now = p(4),
                node = p(5),
                place = if place {
                    format!(
                        " OR (o.owner IS NULL AND q.kind = 'clone' AND NOT EXISTS \
                         (SELECT 1 FROM repo_regions w WHERE w.repo_id = o.id \
                         AND w.region <> COALESCE((SELECT m.region FROM nodes m WHERE m.id = {}), '') \
                         AND EXISTS (SELECT 1 FROM nodes g WHERE g.region = w.region \
                         AND g.role <> 'web' AND g.heartbeat_at >= {})))",
                        p(6),
                        p(7)
                    )
                } else {
                    String::new()
                },
            )
        };
        let set = |p: &dyn Fn(usize) -> String| {
            format!(
                "UPDATE jobs SET state = 'running', locked_by = {}, lease_until = {}, \
                 attempts = attempts + 1, started_at = {} WHERE id = ",
                p(1),
                p(2),
                p(3)
            )
        };
        // The one difference between the dialects: PostgreSQL numbers its parameters and locks
        // the picked row so concurrent claimers skip it; SQLite numbers `?` by position (the
        // same parameters, in order) and its write lock, taken first, serializes claimers.
        let (param, lock): (fn(usize) -> String, &str) = match &*conn {
            AnyConnection::Postgresql(_) => (|i| format!("${i}"), " FOR UPDATE OF q SKIP LOCKED"),
            AnyConnection::Sqlite(_) => (|_| "?".to_string(), ""),
        };
        let sql = format!(
            "{}({}{lock} LIMIT 1) RETURNING {RETURNING}",
            set(&param),
            pick(&param)
        );
        let job = crate::write_transaction::<_, diesel::result::Error>(&mut conn, |c| {
            let query = diesel::sql_query(sql)
                .bind::<Text, _>(node)
                .bind::<BigInt, _>(now + lease_ms)
                .bind::<BigInt, _>(now / 1000)
                .bind::<BigInt, _>(now)
                .bind::<Text, _>(node);
            let job = if place {
                query
                    .bind::<Text, _>(node)
                    .bind::<BigInt, _>(now - NODE_LEASE_MS)
                    .get_result::<Job>(c)
                    .optional()?
            } else {
                query.get_result::<Job>(c).optional()?
            };
            Ok(match job {
                Some(job) => Some(place_claimed!(c, job, node)),
                None => None,
            })
        });
        match job {
            Ok(claimed) => Ok(claimed),
            // Placed by another node between the pick and the placement: nothing claimed.
            Err(diesel::result::Error::RollbackTransaction) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Extends `node`'s lease on job `id` to `lease_ms` from now; false when it no longer
    /// holds it.
    pub fn renew_lease(&self, id: &str, node: &str, lease_ms: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(held!(id, node))
            .set(jobs::lease_until.eq(now_ms() + lease_ms))
            .execute(&mut *conn)?
            == 1)
    }

    /// Marks job `id` done; false when `node` no longer held it (nothing changes then).
    pub fn finish_job(&self, id: &str, node: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(held!(id, node))
            .set((
                jobs::state.eq("done"),
                jobs::finished_at.eq(Some(now_ms() / 1000)),
                jobs::lease_until.eq(None::<i64>),
                jobs::error_message.eq(None::<String>),
            ))
            .execute(&mut *conn)?
            == 1)
    }

    /// Records that job `id` failed on `node` with `error`: queued again after a backoff
    /// (`base_ms`, doubling) while attempts remain, else failed.
    pub fn fail_job(
        &self,
        id: &str,
        node: &str,
        error: &str,
        base_ms: i64,
    ) -> Result<Fate, StoreError> {
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |c| {
            let Some(job) = held!(id, node)
                .select(Job::as_select())
                .first(c)
                .optional()?
            else {
                return Ok(Fate::NotHeld);
            };
            requeue(
                c,
                &job,
                Some(error),
                now_ms() + backoff(base_ms, job.attempts),
            )
        })
    }

    /// Queues again every running job whose lease ran out (its node died or stalled), or fails
    /// it after its last attempt; answers how many were reaped.
    pub fn reap_expired_jobs(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let now = now_ms();
        crate::write_transaction(&mut conn, |c| {
            let expired: Vec<Job> = jobs::table
                .filter(jobs::state.eq("running"))
                .filter(jobs::lease_until.lt(now))
                .select(Job::as_select())
                .load(c)?;
            for job in &expired {
                requeue(c, job, Some("its node stopped renewing the lease"), now)?;
            }
            Ok(expired.len())
        })
    }

    /// Queues again every job `node` holds (it restarted: what it ran before stopped with it);
    /// answers how many were queued (a job at its last attempt fails instead).
    pub fn requeue_jobs_of(&self, node: &str) -> Result<usize, StoreError> {
        self.requeue_held(node, "its node restarted", Attempt::Counted)
    }

    /// Gives back every job `node` is running (it is stopping before they end): each is queued
    /// again as before its claim, the attempt not counted. One whose repository had another
    /// job of its kind queued meanwhile is covered by that one, and ends `failed` saying so.
    /// Answers how many were queued again.
    pub fn hand_back_jobs(&self, node: &str) -> Result<usize, StoreError> {
        self.requeue_held(node, "its node stopped before it ended", Attempt::Uncounted)
    }

    /// Queues again every job `node` is running, saying `why`; answers how many were queued.
    fn requeue_held(&self, node: &str, why: &str, attempt: Attempt) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let now = now_ms();
        crate::write_transaction(&mut conn, |c| {
            let held: Vec<Job> = jobs::table
                .filter(jobs::state.eq("running"))
                .filter(jobs::locked_by.eq(node))
                .select(Job::as_select())
                .load(c)?;
            let mut queued = 0;
            for job in &held {
                if let Fate::Retry(_) = requeue_as(c, job, Some(why), now, attempt)? {
                    queued += 1;
                }
            }
            Ok(queued)
        })
    }

    /// Deletes jobs that ended before `before_ms` (done or failed); answers how many.
    pub fn prune_jobs(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(
            jobs::table
                .filter(jobs::state.eq_any(["done", "failed"]))
                .filter(jobs::finished_at.lt(before_ms / 1000)),
        )
        .execute(&mut *conn)?)
    }

    /// The job `id`.
    pub fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn()?;
        Ok(jobs::table
            .find(id)
            .select(Job::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Jobs in `state`, most urgent (or most recent, for ended ones) first, at most `limit`.
    pub fn jobs_in(&self, state: &str, limit: i64) -> Result<Vec<Job>, StoreError> {
        let mut conn = self.conn()?;
        let q = jobs::table
            .filter(jobs::state.eq(state))
            .select(Job::as_select())
            .limit(limit);
        Ok(match state {
            "queued" | "running" => q
                .order((jobs::priority.desc(), jobs::run_at, jobs::id))
                .load(&mut *conn)?,
            _ => q
                .order((jobs::finished_at.desc(), jobs::id))
                .load(&mut *conn)?,
        })
    }

    /// Jobs by state.
    pub fn count_jobs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(jobs::table
            .group_by(jobs::state)
            .select((jobs::state, diesel::dsl::count_star()))
            .load(&mut *conn)?)
    }

    /// Records node `id` (its role and internal address) as alive now, in no named region.
    pub fn register_node(
        &self,
        id: &str,
        role: &str,
        internal_addr: Option<&str>,
    ) -> Result<(), StoreError> {
        self.register_node_at(id, role, internal_addr, &NodePlace::default())
    }

    /// Records node `id` (its role, internal address, region and machine) as alive now.
    pub fn register_node_at(
        &self,
        id: &str,
        role: &str,
        internal_addr: Option<&str>,
        place: &NodePlace,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let now = now_ms();
        crate::write_transaction(&mut conn, |c| {
            diesel::delete(nodes::table.find(id)).execute(c)?;
            diesel::insert_into(nodes::table)
                .values((
                    nodes::id.eq(id),
                    nodes::role.eq(role),
                    nodes::internal_addr.eq(internal_addr),
                    nodes::region.eq(place.region.as_deref()),
                    nodes::machine_id.eq(place.machine_id.as_deref()),
                    nodes::started_at.eq(now),
                    nodes::heartbeat_at.eq(now),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Node `id` is alive now; false when it is not registered (forgotten as dead).
    pub fn heartbeat(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(nodes::table.find(id))
            .set(nodes::heartbeat_at.eq(now_ms()))
            .execute(&mut *conn)?
            == 1)
    }

    /// Forgets node `id` (dead: its repositories go to the survivors); false when unknown.
    pub fn forget_node(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(nodes::table.find(id)).execute(&mut *conn)? == 1)
    }

    /// Nodes whose heartbeat is younger than `lease_ms`, by id.
    pub fn live_nodes(&self, lease_ms: i64) -> Result<Vec<LiveNode>, StoreError> {
        let mut conn = self.conn()?;
        let now = now_ms();
        type Row = (String, String, Option<String>, i64, i64, i32, i32);
        type Place = (Option<String>, Option<String>);
        let rows: Vec<(Row, Place)> = nodes::table
            .filter(nodes::heartbeat_at.ge(now - lease_ms))
            .order(nodes::id)
            .select((
                (
                    nodes::id,
                    nodes::role,
                    nodes::internal_addr,
                    nodes::heartbeat_at,
                    nodes::free_bytes,
                    nodes::sessions,
                    nodes::viewers,
                ),
                (nodes::region, nodes::machine_id),
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    (id, role, internal_addr, at, free_bytes, sessions, viewers),
                    (region, machine_id),
                )| {
                    LiveNode {
                        id,
                        role,
                        internal_addr,
                        heartbeat_age_ms: now - at,
                        free_bytes,
                        sessions,
                        viewers,
                        place: NodePlace { region, machine_id },
                    }
                },
            )
            .collect())
    }
}

/// A claimed job and the epoch under which its node owns the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The job (running, held by the claimer).
    pub job: Job,
    /// The repository's epoch: every write the job makes is fenced by it.
    pub epoch: i64,
}

/// Whether a job queued again used up its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// It ran (or may have): the attempt counts, and the last one fails the job.
    Counted,
    /// It was handed back before it ended: as if never claimed.
    Uncounted,
}

/// Queues `job` again at `run_at`, its attempt counted (see [`requeue_as`]).
fn requeue(
    c: &mut AnyConnection,
    job: &Job,
    error: Option<&str>,
    run_at: i64,
) -> Result<Fate, StoreError> {
    requeue_as(c, job, error, run_at, Attempt::Counted)
}

/// Queues `job` again at `run_at`, or fails it when it used its last counted attempt or
/// another job of its kind is queued already (that one covers it).
fn requeue_as(
    c: &mut AnyConnection,
    job: &Job,
    error: Option<&str>,
    run_at: i64,
    attempt: Attempt,
) -> Result<Fate, StoreError> {
    let fail = |c: &mut AnyConnection, why: Option<&str>| -> Result<Fate, StoreError> {
        diesel::update(jobs::table.find(&job.id))
            .set((
                jobs::state.eq("failed"),
                jobs::locked_by.eq(None::<String>),
                jobs::lease_until.eq(None::<i64>),
                jobs::finished_at.eq(Some(now_ms() / 1000)),
                jobs::error_message.eq(why),
            ))
            .execute(c)?;
        Ok(Fate::Failed)
    };
    let attempts = match attempt {
        Attempt::Counted if job.attempts >= job.max_attempts => return fail(c, error),
        Attempt::Counted => job.attempts,
        Attempt::Uncounted => (job.attempts - 1).max(0),
    };
    // A savepoint: a unique violation must not abort the caller's transaction (PostgreSQL).
    let requeued = c.transaction(|c| {
        diesel::update(jobs::table.find(&job.id))
            .set((
                jobs::state.eq("queued"),
                jobs::locked_by.eq(None::<String>),
                jobs::lease_until.eq(None::<i64>),
                jobs::attempts.eq(attempts),
                jobs::run_at.eq(run_at),
                jobs::error_message.eq(error),
            ))
            .execute(c)
    });
    if inserted_once(requeued)? {
        Ok(Fate::Retry(run_at))
    } else {
        fail(c, Some(SUPERSEDED))
    }
}

/// How often [`listen_for_jobs`] reads notifications.
pub const LISTEN_POLL: Duration = Duration::from_millis(100);

/// Listens on PostgreSQL for queued jobs (`LISTEN gitvista_jobs`) and calls `wake` when one is
/// announced, and once after every (re)connection for jobs queued while it was down. Blocks the
/// calling thread until `listening` answers false: libpq's notifications are read without
/// blocking every [`LISTEN_POLL`], and the connection is made again after an error. With
/// `presence`, the same connection holds the node's presence (see [`crate::presence`]), and
/// `presence.held` is told when it is taken and when it is lost.
pub fn listen_for_jobs(
    database_url: &str,
    listening: impl Fn() -> bool,
    wake: impl Fn(),
    presence: Option<PresenceHook<'_>>,
) {
    use diesel::Connection as _;
    while listening() {
        let mut conn = match diesel::PgConnection::establish(database_url) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for jobs on PostgreSQL; polling until it comes back");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        if let Err(e) = diesel::sql_query(format!("LISTEN {JOBS_CHANNEL}")).execute(&mut conn) {
            tracing::warn!(error = %e, "LISTEN failed");
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        // Jobs queued while the connection was down: look now.
        wake();
        let mut present = false;
        let mut polls = 0u32;
        'read: while listening() {
            // Taken at once, or retried every second while a session of a previous process of
            // this node still holds it.
            if let Some(p) = &presence
                && !present
                && polls.is_multiple_of(10)
            {
                match crate::presence::take_presence(&mut conn, p.node) {
                    Ok(true) => {
                        present = true;
                        (p.held)(true);
                    }
                    Ok(false) => {
                        tracing::warn!(
                            node = p.node,
                            "another session holds this node's presence; trying again"
                        );
                    }
                    Err(_) => break 'read,
                }
            }
            let mut woke = false;
            for n in conn.notifications_iter() {
                match n {
                    Ok(_) => woke = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the PostgreSQL connection that listens for jobs");
                        break 'read;
                    }
                }
            }
            if woke {
                wake();
            }
            std::thread::sleep(LISTEN_POLL);
            // A half-open connection reports nothing: ask it something now and then.
            polls += 1;
            if polls.is_multiple_of(50) && diesel::sql_query("SELECT 1").execute(&mut conn).is_err()
            {
                break 'read;
            }
        }
        if let Some(p) = &presence
            && present
        {
            (p.held)(false);
        }
    }
}

/// What [`listen_for_jobs`] needs to hold a node's presence: the node's id, and whom to tell
/// when it is taken (`true`) and lost (`false`).
pub struct PresenceHook<'a> {
    /// The node.
    pub node: &'a str,
    /// Told whether the presence is held.
    pub held: &'a dyn Fn(bool),
}

impl std::fmt::Debug for PresenceHook<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceHook")
            .field("node", &self.node)
            .finish()
    }
}
