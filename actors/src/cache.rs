//! The response caches a repository session owns: finished commit diffs, file diffs and blames,
//! bounded in bytes, and the analytics' per-commit changes.
//!
//! Their keys name immutable things (a commit hash, a path, options), so an entry stays valid
//! across reloads: the caches move from one snapshot to the next. Values are the serialized JSON
//! answers, shared without copying.

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Default budget of the diff cache (commit and file diffs).
pub const DEFAULT_DIFF_BYTES: u64 = 64 << 20;
/// Default budget of the blame cache.
pub const DEFAULT_BLAME_BYTES: u64 = 32 << 20;
/// Budget of the search result cache.
pub const SEARCH_BYTES: u64 = 16 << 20;
/// Answers larger than this fraction of a cache's budget are not kept (one huge diff must not
/// flush everything else).
const MAX_SHARE: u64 = 8;

#[derive(Debug, Clone, Copy)]
struct ByteWeighter;

impl Weighter<String, Bytes> for ByteWeighter {
    fn weight(&self, key: &String, val: &Bytes) -> u64 {
        (key.len() + val.len()) as u64 + 64
    }
}

/// A concurrent cache (S3-FIFO: recency and frequency) of serialized answers, bounded in bytes.
pub struct ByteCache {
    inner: Cache<String, Bytes, ByteWeighter>,
    budget: u64,
}

impl std::fmt::Debug for ByteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteCache")
            .field("entries", &self.inner.len())
            .field("bytes", &self.inner.weight())
            .field("budget", &self.budget)
            .finish()
    }
}

impl ByteCache {
    /// A cache holding at most `budget` bytes (keys, values and a small per-entry overhead).
    pub fn new(budget: u64) -> ByteCache {
        // The estimate only sizes the hash table; the weight bound is what limits memory.
        let estimated_items = (budget / 4096).clamp(16, 1 << 16) as usize;
        ByteCache {
            inner: Cache::with_weighter(estimated_items, budget.max(1), ByteWeighter),
            budget,
        }
    }

    /// The answer stored under `key`.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.inner.get(key)
    }

    /// Stores `value` unless it is too large to be worth keeping.
    pub fn insert(&self, key: String, value: Bytes) {
        if (value.len() as u64) <= self.budget / MAX_SHARE {
            self.inner.insert(key, value);
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.inner.weight()
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// The analytics' per-commit changes of a session, computed on first use (in the background for
/// a long history) and extended with only the new commits after a reload. Keyed by commit id,
/// so valid across reloads.
#[derive(Debug, Default)]
pub struct HistoryCache {
    /// The changes known.
    pub stats: std::sync::Mutex<gitcore::analytics::HistoryStats>,
    /// Set while a background computation runs.
    pub computing: std::sync::atomic::AtomicBool,
    /// Commits computed and to compute by the background computation, for its progress.
    pub done: std::sync::atomic::AtomicU64,
    /// See `done`.
    pub total: std::sync::atomic::AtomicU64,
}

/// The caches of one repository session.
#[derive(Debug)]
pub struct SessionCaches {
    /// Commit diffs and file diffs.
    pub diffs: ByteCache,
    /// Blames.
    pub blame: ByteCache,
    /// Search results (keyed with the snapshot version: they name rows, which move).
    pub searches: ByteCache,
    /// The analytics' per-commit changes.
    pub history: std::sync::Arc<HistoryCache>,
}

impl SessionCaches {
    /// Caches with the given budgets in bytes.
    pub fn new(diff_bytes: u64, blame_bytes: u64) -> SessionCaches {
        SessionCaches {
            diffs: ByteCache::new(diff_bytes),
            blame: ByteCache::new(blame_bytes),
            searches: ByteCache::new(SEARCH_BYTES),
            history: std::sync::Arc::default(),
        }
    }
}

impl Default for SessionCaches {
    fn default() -> SessionCaches {
        SessionCaches::new(DEFAULT_DIFF_BYTES, DEFAULT_BLAME_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_byte_budget_and_keeps_recent_entries() {
        let cache = ByteCache::new(64 * 1024);
        let value = Bytes::from(vec![b'x'; 1000]);
        for i in 0..1000 {
            cache.insert(format!("k{i}"), value.clone());
            assert!(cache.bytes() <= 64 * 1024, "over budget at {i}");
        }
        assert!(cache.len() < 1000 && !cache.is_empty());
        assert_eq!(cache.get("k999").as_deref(), Some(&value[..]));
        assert!(cache.len() * 1000 <= 64 * 1024);
    }

    #[test]
    fn an_answer_in_use_survives_a_scan_of_one_off_answers() {
        let cache = ByteCache::new(64 * 1024);
        let value = Bytes::from(vec![b'x'; 1000]);
        cache.insert("hot".into(), value.clone());
        for i in 0..1000 {
            assert!(cache.get("hot").is_some(), "evicted after {i} others");
            cache.insert(format!("k{i}"), value.clone());
        }
    }

    #[test]
    fn an_answer_larger_than_its_share_is_not_kept() {
        let cache = ByteCache::new(8 * 1024);
        cache.insert("big".into(), Bytes::from(vec![0; 2048]));
        assert!(cache.get("big").is_none());
        cache.insert("small".into(), Bytes::from(vec![0; 512]));
        assert!(cache.get("small").is_some());
    }
}
