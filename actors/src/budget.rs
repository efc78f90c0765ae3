//! What sessions may hold: at most [`Budget::max_sessions`] running at once and
//! [`Budget::memory_bytes`] of graphs, layouts and caches between them. When a new session would
//! go past either, the [`crate::Supervisor`] stops the least recently used sessions that have no
//! viewers; when every session has viewers, the new one is refused ([`crate::supervisor::SupervisorError::Busy`])
//! rather than letting the process be killed for memory.
//!
//! Each session publishes its [`Footprint`] (atomics the supervisor reads without a message
//! round trip), and loads are limited to a few at a time ([`load_permit`]): a thousand requests
//! for a thousand repositories cannot start a thousand loads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::cache::SessionCaches;

/// Limits on the sessions of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Sessions running at once.
    pub max_sessions: usize,
    /// Bytes of graphs, layouts and answer caches over all sessions.
    pub memory_bytes: u64,
}

impl Budget {
    /// No limits (local mode serves one repository).
    pub const UNLIMITED: Budget = Budget {
        max_sessions: usize::MAX,
        memory_bytes: u64::MAX,
    };
}

impl Default for Budget {
    fn default() -> Self {
        Budget::UNLIMITED
    }
}

/// What one session holds, published for the supervisor.
#[derive(Debug)]
pub struct Footprint {
    /// Heap of the snapshot's graph, layout and kept views (set after each load and reload).
    heap: AtomicU64,
    /// The session's answer caches (their size is read live).
    caches: OnceLock<Arc<SessionCaches>>,
    /// Viewers connected.
    viewers: AtomicUsize,
    /// When it was last used, in milliseconds since [`epoch`].
    last_use_ms: AtomicU64,
    /// Its first load has not finished.
    loading: AtomicBool,
}

/// The instant `last_use_ms` counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Default for Footprint {
    fn default() -> Self {
        let f = Footprint {
            heap: AtomicU64::new(0),
            caches: OnceLock::new(),
            viewers: AtomicUsize::new(0),
            last_use_ms: AtomicU64::new(0),
            loading: AtomicBool::new(true),
        };
        f.touch();
        f
    }
}

impl Footprint {
    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.heap.load(Ordering::Relaxed)
            + self.caches.get().map_or(0, |c| {
                c.diffs.bytes() + c.blame.bytes() + c.searches.bytes()
            })
    }

    /// Records the snapshot's heap (after a load or reload).
    pub fn set_heap(&self, bytes: usize) {
        self.heap.store(bytes as u64, Ordering::Relaxed);
        self.loading.store(false, Ordering::Relaxed);
    }

    /// The caches whose size counts.
    pub fn set_caches(&self, caches: Arc<SessionCaches>) {
        let _ = self.caches.set(caches);
    }

    /// Records the number of viewers.
    pub fn set_viewers(&self, n: usize) {
        self.viewers.store(n, Ordering::Relaxed);
    }

    /// Viewers connected.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Marks it used now.
    pub fn touch(&self) {
        let ms = epoch().elapsed().as_millis() as u64;
        self.last_use_ms.store(ms, Ordering::Relaxed);
    }

    /// When it was last used (comparable between sessions).
    pub fn last_use(&self) -> u64 {
        self.last_use_ms.load(Ordering::Relaxed)
    }

    /// Its first load is still running.
    pub fn loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }
}

/// A permit to load a repository; loads beyond the number of cores wait for one.
pub async fn load_permit() -> Option<tokio::sync::OwnedSemaphorePermit> {
    static LOADS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    let sem = LOADS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Arc::new(tokio::sync::Semaphore::new(cores.max(2)))
    });
    Arc::clone(sem).acquire_owned().await.ok()
}
