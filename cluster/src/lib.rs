//! GitVista's cluster floor: this node's place among the others. A node is registered in the
//! `nodes` table when it starts, beats every [`HEARTBEAT`] (a node whose heartbeat is older than
//! [`NODE_LEASE`] is dead), and at each beat queues again the jobs whose lease ran out, whichever
//! node held them. The single node (`all`) does the same against its own database, so one code
//! path serves both.
//!
//! A node that runs git also holds a presence on PostgreSQL, which its process takes with it:
//! an owner killed is found gone within about two seconds ([`presence`]), a paused one when its
//! lease runs out.
//!
//! Modules, bottom up: [`regions`] (where a node runs, `fly-replay`, the nearest region with a
//! worker), [`settings`] (roles, addresses, the secret), [`signature`] (signed
//! node-to-node requests), [`limits`] (budgets shared through Redis), [`bus`] (viewer events
//! across nodes through Redis pub/sub), [`presence`] (this node's session, and the check for
//! owners whose session is gone), [`membership`] (the heartbeat and that check) and [`runner`]
//! (claims jobs and runs them).
//!
//! It stands on the store and the actors. What it needs of the node it runs on is the [`Node`]
//! trait, which hosting implements: the cluster never imports hosting, and knows nothing of HTTP
//! (the web layer forwards requests with [`signature`]'s headers).

use std::sync::Arc;
use std::time::Duration;

use gitvista_store::Store;
use gitvista_store::jobs::Claimed;

pub use settings::Role;

pub mod bus;
pub mod limits;
pub mod membership;
pub mod presence;
pub mod regions;
pub mod runner;
pub mod settings;
pub mod signature;

/// What the cluster asks of the node it runs on. Hosting implements it; the cluster never
/// imports hosting.
pub trait Node: std::fmt::Debug + Sized + 'static {
    /// The database every node shares.
    fn store(&self) -> &Store;
    /// The repositories this node owns.
    fn fences(&self) -> &Fences;
    /// Whether this node holds its presence on PostgreSQL (a node that runs git).
    fn presence(&self) -> &presence::Presence;
    /// What this node's heartbeat reports now.
    fn report(&self) -> impl Future<Output = NodeReport>;
    /// Whether this node may take one more repository onto its disk.
    fn has_room_to_clone(&self) -> bool;
    /// Runs a job this node claimed; `Err` says why it should be tried again.
    fn run_job(self: &Arc<Self>, claimed: &Claimed) -> impl Future<Output = Result<(), String>>;
    /// Tells the viewers of repositories whose owner died that they are moving.
    fn moving(self: &Arc<Self>, ids: &[String]) -> impl Future<Output = ()>;
    /// Asks this node's job runner to look for work now.
    fn wake_jobs(&self);
    /// Lets go of repository `id`, which another node owns now.
    fn let_go(self: &Arc<Self>, id: &str) -> impl Future<Output = ()>;
}

/// What a node's heartbeat writes to its `nodes` row.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The node's id.
    pub id: String,
    /// What it does.
    pub role: Role,
    /// Where the other nodes reach it.
    pub internal_addr: Option<String>,
    /// Free bytes on its data directory (0 on a node that runs no git).
    pub free_bytes: i64,
    /// Sessions in memory.
    pub sessions: i32,
    /// Viewers connected.
    pub viewers: i32,
    /// Its region and machine.
    pub place: gitvista_store::jobs::NodePlace,
}

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A node silent this long is dead.
pub const NODE_LEASE: Duration = Duration::from_millis(gitvista_store::jobs::NODE_LEASE_MS as u64);

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
    pub fn get(&self, id: &str) -> Option<gitvista_store::placement::Fence> {
        self.epochs()
            .get(id)
            .map(|&epoch| gitvista_store::placement::Fence {
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
