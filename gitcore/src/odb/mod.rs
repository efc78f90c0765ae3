//! The object database: loose objects, packs (with `.idx` v1/v2 or a multi-pack-index) and
//! alternates, read through an [`OdbReader`] that owns the per-thread inflater and delta-base cache.
//!
//! [`Odb`] itself is immutable after [`Odb::open`] and `Sync`, so many readers on many threads can
//! share it. A pack or index that fails validation is set aside (see [`Odb::problems`]) and the
//! rest of the repository stays readable. Opening one (directories, alternates, packs, reuse on
//! a refresh, databases held in memory) is in `open`; finding and listing objects is here.

mod cache;
pub(crate) mod chunk;
pub mod delta;
pub mod held;
pub mod idx;
pub mod midx;
mod open;
pub mod pack;
mod reader;
pub mod stream;

pub use held::{HeldObjects, MemoryObjects};
use reader::KindMemo;
pub use reader::OdbReader;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rayon::prelude::*;

use crate::inflate::{InflateError, Inflater};
use crate::oid::{HashKind, ObjectId};
use cache::DeltaCache;
use idx::PackIndex;
use midx::MultiPackIndex;
use pack::{EntryKind, Pack};

/// The four object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A commit.
    Commit,
    /// A tree.
    Tree,
    /// A blob.
    Blob,
    /// An annotated tag.
    Tag,
}

impl ObjectKind {
    /// The name git uses in object headers.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Commit => "commit",
            ObjectKind::Tree => "tree",
            ObjectKind::Blob => "blob",
            ObjectKind::Tag => "tag",
        }
    }

    /// Parses a header name.
    pub fn from_bytes(name: &[u8]) -> Option<Self> {
        match name {
            b"commit" => Some(ObjectKind::Commit),
            b"tree" => Some(ObjectKind::Tree),
            b"blob" => Some(ObjectKind::Blob),
            b"tag" => Some(ObjectKind::Tag),
            _ => None,
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of the object database.
#[derive(Debug, thiserror::Error)]
pub enum OdbError {
    /// The object is not in the repository (in a partial clone, not fetched; gitcore never fetches).
    #[error("object {0} is missing")]
    Missing(ObjectId),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file holds data git would not have written.
    #[error("{}{}: {reason}", path.display(), offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset in the file, where there is one.
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// The object is larger than the configured limit.
    #[error("object {id} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The object.
        id: ObjectId,
        /// Its announced size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The object exists but is of another kind than the caller needs.
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// What the caller asked for.
        expected: ObjectKind,
        /// What it is.
        actual: ObjectKind,
    },
}

impl OdbError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        OdbError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn inflate(path: &Path, offset: Option<u64>, e: InflateError) -> Self {
        OdbError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: e.to_string(),
        }
    }
}

/// Limits that keep a hostile repository from exhausting memory or time.
#[derive(Debug, Clone, Copy)]
pub struct OdbOptions {
    /// Largest object (after inflation and delta application) that will be read whole.
    pub max_object_size: u64,
    /// Longest delta chain followed; git's own `pack.depth` maximum is 4095.
    pub max_delta_depth: usize,
    /// Bytes each reader may keep in its delta-base cache.
    pub delta_cache_bytes: usize,
    /// How many `objects/info/alternates` hops are followed (git uses 5).
    pub max_alternates_depth: usize,
    /// Check each pack index's trailing checksum when it is opened (git does not; a quick first
    /// screen leaves it to the whole load that follows).
    pub verify_index_checksums: bool,
}

impl Default for OdbOptions {
    fn default() -> Self {
        OdbOptions {
            max_object_size: 1 << 30,
            max_delta_depth: 4096,
            delta_cache_bytes: 32 << 20,
            max_alternates_depth: 5,
            verify_index_checksums: true,
        }
    }
}

/// One pack, and its `.idx` unless a multi-pack-index covers it.
#[derive(Debug)]
struct PackSlot {
    pack: Pack,
    index: Option<PackIndex>,
    /// Identity used to reuse the slot on refresh: path, size, modification time.
    key: (PathBuf, u64, Option<SystemTime>),
    /// Whether its index's checksum was checked.
    verified: bool,
}

/// Where an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// In pack number `pack` (see [`Odb::pack_count`]) at `offset`.
    Packed {
        /// Pack number.
        pack: u32,
        /// Entry offset.
        offset: u64,
    },
    /// A loose file in object directory number `dir`.
    Loose {
        /// Object directory number (0 is the repository's own, then alternates).
        dir: u32,
    },
    /// Held in memory (see [`Odb::held`]).
    Memory,
}

/// Which index a [`PackListing`]'s positions refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListingSource {
    /// The pack's own `.idx`.
    Own,
    /// Multi-pack-index number `n`.
    Midx(u32),
}

/// How a listing knows the pack order.
#[derive(Debug, Clone)]
enum ListingOrder {
    /// From the pack's `.rev` file, read lazily (this many entries).
    Rev(usize),
    /// (offset, index position) pairs sorted here.
    Sorted(Vec<(u64, u32)>),
}

/// The objects of one pack in offset order (see [`Odb::pack_listings`]).
#[derive(Debug, Clone)]
pub struct PackListing {
    /// Pack number.
    pub pack: u32,
    source: ListingSource,
    order: ListingOrder,
}

impl PackListing {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match &self.order {
            ListingOrder::Rev(n) => *n,
            ListingOrder::Sorted(v) => v.len(),
        }
    }

    /// Whether the pack lists no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A repository's objects.
#[derive(Debug)]
pub struct Odb {
    /// The object directories: the repository's own first, then alternates in order.
    dirs: Vec<PathBuf>,
    packs: Vec<Arc<PackSlot>>,
    /// Each multi-pack-index with its pack-int-id -> `packs` number map.
    midxs: Vec<(Arc<MultiPackIndex>, Vec<Option<u32>>)>,
    problems: Vec<String>,
    options: OdbOptions,
    /// The hash that names the objects (`extensions.objectFormat`).
    hash: HashKind,
    /// Objects held in memory (a history streamed from a remote before any clone exists),
    /// looked up before the packs.
    memory: Option<Arc<dyn HeldObjects>>,
}

impl Odb {
    /// How many objects are held in memory (0 for a database on disk).
    pub fn memory_len(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.count())
    }

    /// Bytes of the objects held in memory, with their map entries.
    pub fn memory_bytes(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.heap_bytes())
    }

    /// Problems found while opening (a pack that failed validation, a broken alternate): the
    /// objects they hold read as missing, everything else works.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The hash that names the objects.
    pub fn hash(&self) -> HashKind {
        self.hash
    }

    /// The limits in force.
    pub fn options(&self) -> &OdbOptions {
        &self.options
    }

    /// The repository's own object directory.
    pub fn objects_dir(&self) -> &Path {
        self.dirs.first().map_or(Path::new(""), |p| p.as_path())
    }

    /// Number of usable packs (across alternates).
    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    /// Objects the packs' indexes list (an object in two packs counts twice; loose objects and
    /// objects held in memory are not counted): the size of the repository, known without
    /// reading a pack.
    pub fn packed_objects(&self) -> usize {
        let own: usize = self
            .packs
            .iter()
            .filter_map(|slot| slot.index.as_ref())
            .map(|index| index.len())
            .sum();
        own + self.midxs.iter().map(|(m, _)| m.len()).sum::<usize>()
    }

    /// A new reader with its own caches.
    pub fn reader(&self) -> OdbReader<'_> {
        OdbReader {
            odb: self,
            inflater: Inflater::new(),
            cache: DeltaCache::new(self.options.delta_cache_bytes),
            scratch: Vec::new(),
            delta: Vec::new(),
            kinds: KindMemo::default(),
        }
    }

    /// Where `id` is stored, without reading it.
    pub fn locate(&self, id: &ObjectId) -> Option<Location> {
        if self.memory.as_ref().is_some_and(|m| m.contains(id)) {
            return Some(Location::Memory);
        }
        self.locate_packed(id).or_else(|| self.locate_loose(id))
    }

    fn locate_packed(&self, id: &ObjectId) -> Option<Location> {
        for (midx, map) in &self.midxs {
            if let Some(i) = midx.lookup(id)
                && let Ok((pack_int, offset)) = midx.location_at(i)
                && let Some(Some(pack)) = map.get(pack_int as usize)
            {
                return Some(Location::Packed {
                    pack: *pack,
                    offset,
                });
            }
        }
        for (n, slot) in self.packs.iter().enumerate() {
            if let Some(index) = &slot.index
                && let Some(i) = index.lookup(id)
                && let Ok(offset) = index.offset_at(i)
            {
                return Some(Location::Packed {
                    pack: n as u32,
                    offset,
                });
            }
        }
        None
    }

    fn loose_path(dir: &Path, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex();
        dir.join(&hex[..2]).join(&hex[2..])
    }

    fn locate_loose(&self, id: &ObjectId) -> Option<Location> {
        self.dirs
            .iter()
            .position(|d| Self::loose_path(d, id).is_file())
            .map(|dir| Location::Loose { dir: dir as u32 })
    }

    /// Whether the object exists (in a pack or loose; the empty tree always does).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.locate(id).is_some() || *id == self.hash.empty_tree()
    }

    /// The offset of `id` inside pack `pack`, for REF_DELTA bases (which git keeps in the same pack).
    fn find_in_pack(&self, pack: u32, id: &ObjectId) -> Option<u64> {
        let slot = self.packs.get(pack as usize)?;
        if let Some(index) = &slot.index {
            return index.lookup(id).and_then(|i| index.offset_at(i).ok());
        }
        match self.locate_packed(id) {
            Some(Location::Packed { pack: p, offset }) if p == pack => Some(offset),
            _ => None,
        }
    }

    /// Drops the pages of pack number `pack` holding bytes `from..to` from the process's resident
    /// set: a scan calls it behind itself (see [`crate::mmap::Mapped::release`]).
    pub fn release_packed(&self, pack: u32, from: u64, to: u64) {
        if let Some(slot) = self.packs.get(pack as usize) {
            slot.pack.release(from, to);
        }
    }

    /// The header of the pack entry at `offset`: its kind, or which entry it is a delta against.
    /// One header read, no chain followed.
    pub fn packed_entry_kind(&self, pack: u32, offset: u64) -> Result<EntryKind, OdbError> {
        let slot = self
            .packs
            .get(pack as usize)
            .ok_or(OdbError::Missing(ObjectId::NULL))?;
        Ok(slot.pack.entry_header(offset)?.kind)
    }

    /// Drops the pages of every pack and pack index from the process's resident set, after a scan
    /// that read them (see [`crate::mmap::Mapped::release`]): later reads map back what they need.
    pub fn release_mapped(&self) {
        for slot in &self.packs {
            slot.pack.release(0, u64::MAX);
            if let Some(index) = &slot.index {
                index.release();
            }
        }
    }

    /// The objects of each pack as (offset, index position), sorted by offset: the order to read a
    /// pack front to back. An object in several packs appears once per pack.
    pub fn pack_listings(&self) -> Vec<PackListing> {
        let mut out: Vec<PackListing> = Vec::new();
        for (n, slot) in self.packs.iter().enumerate() {
            if let Some(index) = &slot.index {
                let order = if index.has_rev() {
                    ListingOrder::Rev(index.len())
                } else {
                    let mut entries: Vec<(u64, u32)> = (0..index.len())
                        .filter_map(|i| index.offset_at(i).ok().map(|off| (off, i as u32)))
                        .collect();
                    entries.par_sort_unstable();
                    ListingOrder::Sorted(entries)
                };
                out.push(PackListing {
                    pack: n as u32,
                    source: ListingSource::Own,
                    order,
                });
            }
        }
        for (m, (midx, map)) in self.midxs.iter().enumerate() {
            let mut per_pack: Vec<Vec<(u64, u32)>> = vec![Vec::new(); map.len()];
            for i in 0..midx.len() {
                if let Ok((p, off)) = midx.location_at(i)
                    && map.get(p as usize).is_some_and(Option::is_some)
                {
                    per_pack[p as usize].push((off, i as u32));
                }
            }
            for (p, mut entries) in per_pack.into_iter().enumerate() {
                if let Some(Some(pack)) = map.get(p)
                    && !entries.is_empty()
                {
                    entries.par_sort_unstable();
                    out.push(PackListing {
                        pack: *pack,
                        source: ListingSource::Midx(m as u32),
                        order: ListingOrder::Sorted(entries),
                    });
                }
            }
        }
        out
    }

    /// Entries `range` of a listing (in pack order) as (offset, index position).
    pub fn listing_entries(
        &self,
        listing: &PackListing,
        range: std::ops::Range<usize>,
    ) -> Vec<(u64, u32)> {
        match &listing.order {
            ListingOrder::Sorted(v) => v.get(range).unwrap_or_default().to_vec(),
            ListingOrder::Rev(n) => {
                let Some(index) = self.packs[listing.pack as usize].index.as_ref() else {
                    return Vec::new();
                };
                range
                    .filter(|&k| k < *n)
                    .filter_map(|k| {
                        let pos = index.rev_position(k)?;
                        Some((index.offset_at(pos as usize).ok()?, pos))
                    })
                    .collect()
            }
        }
    }

    /// The id of entry `pos` of a listing.
    pub fn listing_oid(&self, listing: &PackListing, pos: u32) -> ObjectId {
        match listing.source {
            ListingSource::Own => self.packs[listing.pack as usize]
                .index
                .as_ref()
                .map_or(self.hash.null(), |i| i.oid_at(pos as usize)),
            ListingSource::Midx(m) => self.midxs[m as usize].0.oid_at(pos as usize),
        }
    }

    /// Ids of all loose objects in every object directory whose hex form starts with `prefix`
    /// (empty prefix: all of them).
    pub fn loose_objects(&self, prefix: &str) -> Vec<ObjectId> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            let Ok(fans) = fs::read_dir(dir) else {
                continue;
            };
            for fan in fans.filter_map(|e| e.ok()) {
                let name = fan.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                let Ok(files) = fs::read_dir(fan.path()) else {
                    continue;
                };
                for f in files.filter_map(|e| e.ok()) {
                    let rest = f.file_name();
                    let Some(rest) = rest.to_str() else { continue };
                    let hex = format!("{name}{rest}");
                    if let Some(id) = ObjectId::from_hex_of(self.hash, hex.as_bytes())
                        && id.starts_with_hex(prefix)
                    {
                        out.push(id);
                    }
                }
            }
        }
        out
    }

    /// Every object whose hex id starts with `prefix` (at least 4 digits), at most `limit`.
    pub fn resolve_prefix(&self, prefix: &str, limit: usize) -> Vec<ObjectId> {
        if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Vec::new();
        }
        let prefix = prefix.to_ascii_lowercase();
        let mut out: Vec<ObjectId> = Vec::new();
        for slot in &self.packs {
            if let Some(index) = &slot.index {
                out.extend(
                    index
                        .prefix_matches(&prefix, limit)
                        .into_iter()
                        .map(|i| index.oid_at(i)),
                );
            }
        }
        for (midx, _) in &self.midxs {
            out.extend(
                (0..midx.len())
                    .map(|i| midx.oid_at(i))
                    .filter(|id| id.starts_with_hex(&prefix))
                    .take(limit),
            );
        }
        out.extend(self.loose_objects(&prefix));
        if let Some(m) = &self.memory {
            out.extend(m.ids_with_prefix(&prefix, limit));
        }
        out.sort();
        out.dedup();
        out.truncate(limit);
        out
    }
}
