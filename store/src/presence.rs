//! Nodes' presence on PostgreSQL: each node that owns repositories holds a session-level
//! advisory lock, `(PRESENCE_CLASS, presence_key(node))`, on a connection of its own for as long
//! as it runs. The server lets go of it when that session ends, and a killed process's session
//! ends with its socket: the others see an owner gone in a second, not after the heartbeat lease
//! (a node paused or hung keeps its session, and its lease is what runs out). SQLite, a single
//! process, has no presence.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer};

use super::schema::{nodes, repos};
use super::{AnyConnection, Store, StoreError};

/// The first key of every presence lock (`gvnp`), apart from the migrations' lock.
pub const PRESENCE_CLASS: i32 = 0x6776_6e70;

/// The second key of node `node`'s presence lock: FNV-1a of its id (two nodes sharing a key, one
/// chance in four billion, would each see the other as present).
pub fn presence_key(node: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in node.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    taken: bool,
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = BigInt)]
    key: i64,
}

/// Takes node `node`'s presence on `conn` (a connection kept for the node's life); false while
/// another session holds it (the previous process of a worker restarted on the same disk, not
/// yet gone).
pub fn take_presence(conn: &mut diesel::PgConnection, node: &str) -> QueryResult<bool> {
    let row: Taken = diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS taken")
        .bind::<Integer, _>(PRESENCE_CLASS)
        .bind::<Integer, _>(presence_key(node))
        .get_result(conn)?;
    Ok(row.taken)
}

impl Store {
    /// The nodes that own repositories, registered before `started_before_ms`, whose presence
    /// no session holds: their process is gone (or their connection to the database). Empty on
    /// SQLite.
    pub fn absent_owners(&self, started_before_ms: i64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let AnyConnection::Postgresql(pg) = &mut *conn else {
            return Ok(Vec::new());
        };
        // The nodes that own a repository, in one query (it runs every second on every worker).
        let owners = repos::table
            .filter(repos::owner.is_not_null())
            .select(repos::owner.assume_not_null());
        let judged: Vec<String> = nodes::table
            .filter(nodes::id.eq_any(owners))
            .filter(nodes::started_at.lt(started_before_ms))
            .select(nodes::id)
            .load(pg)?;
        if judged.is_empty() {
            return Ok(Vec::new());
        }
        // pg_locks shows the keys as `oid`, unsigned.
        let held: Vec<Held> = diesel::sql_query(
            "SELECT objid::int8 AS key FROM pg_locks \
             WHERE locktype = 'advisory' AND classid = ($1::int8 & 4294967295)::oid \
             AND objsubid = 2 AND granted",
        )
        .bind::<BigInt, _>(i64::from(PRESENCE_CLASS))
        .load(pg)?;
        let held: std::collections::HashSet<i64> = held.into_iter().map(|h| h.key).collect();
        Ok(judged
            .into_iter()
            .filter(|n| !held.contains(&i64::from(presence_key(n) as u32)))
            .collect())
    }
}
