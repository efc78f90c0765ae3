//! This node's presence, and the check for owners whose presence is gone.
//!
//! A node that runs git holds its presence on PostgreSQL (see `gitvista_store::presence`) on
//! the connection that listens for jobs. Every [`PRESENCE_CHECK`] such a node asks which owners'
//! presence no session holds; an owner missing at two checks in a row has lost its session,
//! which a killed process does at once, and is forgotten: its repositories are re-placed as for
//! a missed heartbeat, about a second after the kill instead of the heartbeat's lease. A node
//! paused or hung keeps its session: its lease still runs out, and fencing keeps its late
//! writes out either way.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How often a node holding its presence looks for owners whose presence is gone.
pub const PRESENCE_CHECK: Duration = Duration::from_secs(1);

/// A node judges others only once it has held its own presence this long (after the database
/// restarts, every node takes its presence again before any is judged), and a node registered
/// this recently is not judged (it takes its presence just after it registers).
pub const PRESENCE_GRACE: Duration = Duration::from_secs(5);

/// Whether this node holds its presence, and since when.
#[derive(Debug, Default)]
pub struct Presence {
    /// Milliseconds since the epoch when it was taken; 0 while not held.
    since_ms: AtomicI64,
}

impl Presence {
    /// The presence was taken (`true`) or lost (`false`).
    pub fn set(&self, held: bool) {
        let since = if held {
            gitvista_store::jobs::now_ms().max(1)
        } else {
            0
        };
        self.since_ms.store(since, Ordering::Release);
    }

    /// How long the presence has been held, if it is.
    pub fn held_for(&self) -> Option<Duration> {
        match self.since_ms.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_millis(
                (gitvista_store::jobs::now_ms() - since).max(0) as u64,
            )),
        }
    }
}
