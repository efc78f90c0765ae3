//! Objects an [`Odb`](super::Odb) holds in memory rather than reads from disk: a history
//! streamed from a remote before any clone exists. [`HeldObjects`] is what such a holder
//! answers; a plain map ([`MemoryObjects`]) is one, and a caller may bring a more compact one
//! (gitwire keeps a streamed history compressed, for histories of millions of commits).

use std::collections::HashMap;
use std::sync::Arc;

use super::ObjectKind;
use crate::oid::ObjectId;

/// Objects held in memory by id: their kind and inflated content.
pub type MemoryObjects = HashMap<ObjectId, (ObjectKind, Arc<[u8]>)>;

/// Objects in memory, looked up by id. Implementations are immutable to their readers (a
/// holder that still grows answers for what it held when it was handed out).
pub trait HeldObjects: Send + Sync + std::fmt::Debug {
    /// The object `id`: its kind and content.
    fn get(&self, id: &ObjectId) -> Option<(ObjectKind, Arc<[u8]>)>;

    /// Whether object `id` is held.
    fn contains(&self, id: &ObjectId) -> bool;

    /// How many objects are held.
    fn count(&self) -> usize;

    /// Bytes of memory the holder uses, its tables included.
    fn heap_bytes(&self) -> usize;

    /// Held ids whose hex form starts with `prefix` (lowercase hex digits), at most `limit`.
    fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Vec<ObjectId>;
}

impl HeldObjects for MemoryObjects {
    fn get(&self, id: &ObjectId) -> Option<(ObjectKind, Arc<[u8]>)> {
        HashMap::get(self, id).map(|(k, d)| (*k, Arc::clone(d)))
    }

    fn contains(&self, id: &ObjectId) -> bool {
        self.contains_key(id)
    }

    fn count(&self) -> usize {
        self.len()
    }

    fn heap_bytes(&self) -> usize {
        self.values().map(|(_, d)| d.len() + 16).sum::<usize>()
            + self.capacity() * (std::mem::size_of::<(ObjectId, (ObjectKind, Arc<[u8]>))>() + 1)
    }

    fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Vec<ObjectId> {
        self.keys()
            .filter(|id| id.starts_with_hex(prefix))
            .take(limit)
            .copied()
            .collect()
    }
}
