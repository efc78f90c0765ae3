//! A streamed history's objects held compactly, so a history of millions of commits fits in
//! the memory a stream may use (the Linux kernel's 1.3M commits are ~1 GB as plain objects).
//!
//! Objects are kept in the order they came: their ids packed end to end, their kinds, their
//! pack offsets (for the deltas that name an earlier entry) and, in blocks of about
//! [`BLOCK_BYTES`], their contents compressed with zstd. Commits compress well together
//! (their headers repeat; ids are hex). The newest block stays open, uncompressed, until it is
//! full. Ids are found through an open-addressing table of positions.
//!
//! [`HeldStore`] is written by the stream's thread only; [`HeldStore::snapshot`] hands a reader
//! (a session serving the history meanwhile) what was held at that moment, as a
//! [`gitcore::odb::HeldObjects`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use gitcore::odb::stream::DeltaBases;
use gitcore::odb::{HeldObjects, ObjectKind};
use gitcore::oid::{HashKind, ObjectId};

/// Uncompressed bytes of objects per compressed block: large enough for zstd to find the
/// repeats between commits, small enough that reading one commit decompresses little.
pub const BLOCK_BYTES: usize = 64 << 10;

/// zstd's level for the blocks: its fast end, as the stream's thread also inflates the pack.
const LEVEL: i32 = 1;

/// The table of ids stays at most this full (in eighths).
const TABLE_LOAD_EIGHTHS: usize = 6;

const EMPTY: u32 = u32::MAX;

/// A full block of objects' bytes.
#[derive(Debug)]
struct Block {
    bytes: Box<[u8]>,
    /// Its size uncompressed.
    size: u32,
    /// Whether `bytes` are compressed (else they are the objects' bytes as they are).
    compressed: bool,
}

/// Objects held so far; see the module's notes.
#[derive(Debug)]
pub struct Held {
    hash: HashKind,
    /// Ids, `hash.id_len()` bytes each, in arrival order.
    ids: Vec<u8>,
    kinds: Vec<ObjectKind>,
    /// Pack offset of each object's entry (increasing).
    offsets: Vec<u64>,
    /// Entries that repeated an object held already: their offsets, and the object's position
    /// (a delta may name such an entry as its base).
    repeats: HashMap<u64, u32>,
    /// Where each object's bytes end within its block's uncompressed bytes.
    ends: Vec<u32>,
    /// The first object of each block, the open one last.
    block_starts: Vec<u32>,
    /// The full blocks.
    blocks: Vec<Block>,
    compressed: usize,
    /// The open block's bytes.
    open: Vec<u8>,
    /// Where a block is compressed before it is copied out.
    scratch: Vec<u8>,
    /// Positions by id (open addressing, linear probing; [`EMPTY`] is a free slot).
    table: Vec<u32>,
    /// The block read last, uncompressed (readers come one commit after the other).
    last_read: Mutex<Option<(usize, Arc<[u8]>)>>,
}

/// Grows `v` by a quarter rather than doubling, so its spare room stays small.
fn reserve_gently<T>(v: &mut Vec<T>, more: usize) {
    if v.len() + more > v.capacity() {
        v.reserve_exact((v.capacity() / 4).max(more).max(1024));
    }
}

fn slot_of(id: &[u8], mask: usize) -> usize {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id[..8]);
    (u64::from_le_bytes(first) as usize) & mask
}

impl Held {
    /// Nothing held yet; ids are of `hash`.
    pub fn new(hash: HashKind) -> Held {
        Held {
            hash,
            ids: Vec::new(),
            kinds: Vec::new(),
            offsets: Vec::new(),
            repeats: HashMap::new(),
            ends: Vec::new(),
            block_starts: vec![0],
            blocks: Vec::new(),
            compressed: 0,
            open: Vec::new(),
            scratch: Vec::new(),
            table: vec![EMPTY; 1024],
            last_read: Mutex::new(None),
        }
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Bytes of memory used, tables and spare room included.
    pub fn heap_bytes(&self) -> usize {
        self.ids.capacity()
            + self.kinds.capacity() * size_of::<ObjectKind>()
            + self.offsets.capacity() * 8
            + self.repeats.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.ends.capacity() * 4
            + self.block_starts.capacity() * 4
            + self.blocks.capacity() * size_of::<Block>()
            + self.compressed
            + self.open.capacity()
            + self.scratch.capacity()
            + self.table.capacity() * 4
            + BLOCK_BYTES
    }

    fn id_at(&self, i: usize) -> &[u8] {
        let n = self.hash.id_len();
        &self.ids[i * n..(i + 1) * n]
    }

    /// The object id at position `i`.
    pub fn object_id(&self, i: usize) -> ObjectId {
        ObjectId::from_raw(self.hash, self.id_at(i)).expect("ids are held at their length")
    }

    /// The object's kind at position `i`.
    pub fn kind(&self, i: usize) -> ObjectKind {
        self.kinds[i]
    }

    /// The position of object `id`, if held.
    pub fn position(&self, id: &ObjectId) -> Option<usize> {
        let key = id.as_bytes();
        let mask = self.table.len() - 1;
        let mut slot = slot_of(key, mask);
        loop {
            match self.table[slot] {
                EMPTY => return None,
                p if self.id_at(p as usize) == key => return Some(p as usize),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    fn insert_slot(table: &mut [u32], id: &[u8], position: u32) {
        let mask = table.len() - 1;
        let mut slot = slot_of(id, mask);
        while table[slot] != EMPTY {
            slot = (slot + 1) & mask;
        }
        table[slot] = position;
    }

    /// Holds an object that came at pack offset `offset` (offsets increase). An object held
    /// already (git does not send one twice, but a pack may hold it twice) is not held again;
    /// only its entry's offset is.
    pub fn push(&mut self, id: &ObjectId, kind: ObjectKind, data: &[u8], offset: u64) {
        if let Some(p) = self.position(id) {
            self.repeats.insert(offset, p as u32);
            return;
        }
        let position = self.len() as u32;
        if (self.len() + 1) * 8 > self.table.len() * TABLE_LOAD_EIGHTHS {
            let mut table = vec![EMPTY; self.table.len() * 2];
            for p in 0..self.len() {
                Self::insert_slot(&mut table, self.id_at(p), p as u32);
            }
            self.table = table;
        }
        Self::insert_slot(&mut self.table, id.as_bytes(), position);
        reserve_gently(&mut self.ids, self.hash.id_len());
        self.ids.extend_from_slice(id.as_bytes());
        reserve_gently(&mut self.kinds, 1);
        self.kinds.push(kind);
        reserve_gently(&mut self.offsets, 1);
        self.offsets.push(offset);
        self.open.extend_from_slice(data);
        reserve_gently(&mut self.ends, 1);
        self.ends.push(self.open.len() as u32);
        if self.open.len() >= BLOCK_BYTES {
            self.seal();
        }
    }

    /// Compresses the open block and opens the next.
    fn seal(&mut self) {
        // Compressed into a scratch buffer and copied out at its size: a buffer of the bound
        // shrunk in place would leave a hole the next block does not fit in, every block.
        self.scratch
            .resize(zstd::zstd_safe::compress_bound(self.open.len()), 0);
        let block = match zstd::bulk::compress_to_buffer(&self.open, &mut self.scratch, LEVEL) {
            Ok(n) => Block {
                bytes: Box::from(&self.scratch[..n]),
                size: self.open.len() as u32,
                compressed: true,
            },
            // zstd fails only without memory: the bytes are kept as they are then.
            Err(_) => Block {
                bytes: Box::from(&self.open[..]),
                size: self.open.len() as u32,
                compressed: false,
            },
        };
        self.compressed += block.bytes.len();
        reserve_gently(&mut self.blocks, 1);
        self.blocks.push(block);
        self.block_starts.push(self.len() as u32);
        self.open.clear();
        if self.open.capacity() > 2 * BLOCK_BYTES {
            // A large object passed through: do not keep its room.
            self.open = Vec::with_capacity(BLOCK_BYTES + BLOCK_BYTES / 4);
            self.scratch = Vec::new();
        }
    }

    /// The block holding position `i`, and where its bytes lie in the block.
    fn place(&self, i: usize) -> (usize, std::ops::Range<usize>) {
        let block = self.block_starts.partition_point(|&s| s as usize <= i) - 1;
        let start = if i == self.block_starts[block] as usize {
            0
        } else {
            self.ends[i - 1] as usize
        };
        (block, start..self.ends[i] as usize)
    }

    /// The uncompressed bytes of full block `block`.
    fn unpack(&self, block: usize) -> Arc<[u8]> {
        let mut last = self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((b, bytes)) = last.as_ref()
            && *b == block
        {
            return Arc::clone(bytes);
        }
        let b = &self.blocks[block];
        let bytes: Arc<[u8]> = if b.compressed {
            zstd::bulk::decompress(&b.bytes, b.size as usize)
                .unwrap_or_default()
                .into()
        } else {
            Arc::from(&b.bytes[..])
        };
        *last = Some((block, Arc::clone(&bytes)));
        bytes
    }

    /// The object at position `i`: its kind and content.
    pub fn object(&self, i: usize) -> (ObjectKind, Arc<[u8]>) {
        let (block, range) = self.place(i);
        let data: Arc<[u8]> = if block == self.blocks.len() {
            Arc::from(&self.open[range])
        } else {
            Arc::from(&self.unpack(block)[range])
        };
        (self.kinds[i], data)
    }

    /// Calls `each` with every object among the first `count`, in the order they came, one
    /// block uncompressed at a time.
    pub fn for_each(&self, count: usize, mut each: impl FnMut(usize, ObjectKind, &[u8])) {
        let count = count.min(self.len());
        let mut buf = Vec::new();
        let mut decompressor = zstd::bulk::Decompressor::new().ok();
        for (block, &first) in self.block_starts.iter().enumerate() {
            let first = first as usize;
            if first >= count {
                break;
            }
            let bytes: &[u8] = if block == self.blocks.len() {
                &self.open
            } else {
                let b = &self.blocks[block];
                if b.compressed {
                    buf.clear();
                    buf.reserve(b.size as usize);
                    if decompressor
                        .as_mut()
                        .is_none_or(|d| d.decompress_to_buffer(&b.bytes[..], &mut buf).is_err())
                    {
                        buf.clear();
                    }
                    &buf
                } else {
                    &b.bytes
                }
            };
            let end = self
                .block_starts
                .get(block + 1)
                .map_or(count, |&s| (s as usize).min(count));
            let mut start = 0;
            for i in first..end {
                let stop = self.ends[i] as usize;
                each(i, self.kinds[i], bytes.get(start..stop).unwrap_or_default());
                start = stop;
            }
        }
    }

    /// Held ids among the first `count` whose hex form starts with `prefix`, at most `limit`.
    pub fn ids_with_prefix(&self, count: usize, prefix: &str, limit: usize) -> Vec<ObjectId> {
        (0..count.min(self.len()))
            .map(|i| self.object_id(i))
            .filter(|id| id.starts_with_hex(prefix))
            .take(limit)
            .collect()
    }
}

impl DeltaBases for Held {
    fn at_offset(&self, offset: u64) -> Option<(ObjectKind, Arc<[u8]>)> {
        let i = match self.offsets.binary_search(&offset) {
            Ok(i) => i,
            Err(_) => *self.repeats.get(&offset)? as usize,
        };
        Some(self.object(i))
    }

    fn by_id(&self, id: &ObjectId) -> Option<(ObjectKind, Arc<[u8]>)> {
        self.position(id).map(|i| self.object(i))
    }
}

/// A [`Held`] shared between the stream's thread, which adds to it, and its readers.
#[derive(Debug, Clone)]
pub struct HeldStore(Arc<RwLock<Held>>);

impl HeldStore {
    /// An empty store for ids of `hash`.
    pub fn new(hash: HashKind) -> HeldStore {
        HeldStore(Arc::new(RwLock::new(Held::new(hash))))
    }

    /// Reads the store.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes to the store (the stream's thread).
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is held now, for a reader: objects added later stay out of its sight.
    pub fn snapshot(&self) -> HeldSnapshot {
        HeldSnapshot {
            store: self.clone(),
            visible: self.read().len(),
        }
    }
}

/// The objects a [`HeldStore`] held when the snapshot was taken.
#[derive(Debug, Clone)]
pub struct HeldSnapshot {
    store: HeldStore,
    visible: usize,
}

impl HeldObjects for HeldSnapshot {
    fn get(&self, id: &ObjectId) -> Option<(ObjectKind, Arc<[u8]>)> {
        let held = self.store.read();
        let i = held.position(id).filter(|&i| i < self.visible)?;
        Some(held.object(i))
    }

    fn contains(&self, id: &ObjectId) -> bool {
        self.store
            .read()
            .position(id)
            .is_some_and(|i| i < self.visible)
    }

    fn count(&self) -> usize {
        self.visible
    }

    fn heap_bytes(&self) -> usize {
        self.store.read().heap_bytes()
    }

    fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Vec<ObjectId> {
        self.store
            .read()
            .ids_with_prefix(self.visible, prefix, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitcore::odb::stream::hash_object;

    fn object(i: usize) -> (ObjectId, ObjectKind, Vec<u8>) {
        // Commit-like text, with a few objects far larger than a block.
        let mut data = format!(
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> {i} +0000\n\nmessage {i}\n"
        )
        .into_bytes();
        if i % 997 == 3 {
            data.extend(std::iter::repeat_n(b'x', BLOCK_BYTES * 2 + i));
        }
        let kind = if i % 50 == 7 {
            ObjectKind::Tag
        } else {
            ObjectKind::Commit
        };
        (hash_object(HashKind::Sha1, kind, &data), kind, data)
    }

    #[test]
    fn objects_held_in_blocks_read_back_as_they_came() {
        let store = HeldStore::new(HashKind::Sha1);
        let objects: Vec<_> = (0..20_000).map(object).collect();
        let mut early = None;
        for (i, (id, kind, data)) in objects.iter().enumerate() {
            store.write().push(id, *kind, data, 12 + 100 * i as u64);
            if i == 9_999 {
                early = Some(store.snapshot());
            }
        }
        let held = store.read();
        assert_eq!(held.len(), objects.len());
        assert!(held.blocks.len() > 10, "{} blocks", held.blocks.len());
        // By id, by position, by pack offset: every one, sealed blocks and the open one.
        for (i, (id, kind, data)) in objects.iter().enumerate() {
            assert_eq!(held.position(id), Some(i));
            assert_eq!(held.object(i), (*kind, Arc::from(&data[..])));
            assert_eq!(
                held.at_offset(12 + 100 * i as u64),
                Some((*kind, Arc::from(&data[..])))
            );
        }
        assert_eq!(held.at_offset(13), None);
        let mut seen = 0;
        held.for_each(held.len(), |i, kind, data| {
            assert_eq!((kind, data), (objects[i].1, &objects[i].2[..]));
            assert_eq!(i, seen);
            seen += 1;
        });
        assert_eq!(seen, objects.len());
        // Compact: these small objects (about 100 bytes each) cost far less than as a map.
        let small: usize = objects.iter().map(|o| o.2.len().min(200)).sum();
        assert!(
            held.heap_bytes() < small,
            "{} of {small}",
            held.heap_bytes()
        );
        drop(held);
        // A snapshot sees what was held when it was taken, not what came after.
        let early = early.expect("taken");
        assert_eq!(early.count(), 10_000);
        assert!(early.get(&objects[9_999].0).is_some());
        assert!(early.get(&objects[10_000].0).is_none());
        assert!(!early.contains(&objects[15_000].0));
        let prefix = &objects[12_345].0.to_hex()[..7];
        assert!(early.ids_with_prefix(prefix, 10).is_empty());
        let late = store.snapshot();
        assert_eq!(late.ids_with_prefix(prefix, 10), vec![objects[12_345].0]);
    }

    #[test]
    fn an_object_held_twice_is_held_once() {
        let mut held = Held::new(HashKind::Sha1);
        let (id, kind, data) = object(1);
        held.push(&id, kind, &data, 12);
        held.push(&id, kind, &data, 40);
        assert_eq!(held.len(), 1);
        assert_eq!(held.by_id(&id), Some((kind, Arc::from(&data[..]))));
        // A delta may name either entry as its base.
        assert_eq!(held.at_offset(12), held.at_offset(40));
        assert!(held.at_offset(40).is_some());
    }
}
