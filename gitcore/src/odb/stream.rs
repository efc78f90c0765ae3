//! [`PackStream`]: a pack read as it arrives (from a fetch), object by object, without an index
//! and without the whole pack in memory: the header, then each entry inflated and, for deltas,
//! resolved against an object read earlier, then the trailing checksum.
//!
//! Every object read is kept as a possible delta base (a delta may name any earlier entry),
//! or, by a reader [keeping none](PackStream::keeping_none), left to the caller, who holds
//! them its own way and answers for them through [`DeltaBases`].
//!
//! What a hostile server can try is bounded: an entry's inflated size is checked against what
//! its header announced and against [`StreamLimits::max_object`]; the objects kept as delta
//! bases are bounded by [`StreamLimits::max_kept`]; the object count the header announces must
//! be what arrives, and the checksum must match; bytes after the trailer are an error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::pack::{EntryKind, parse_entry_header};
use super::{ObjectKind, OdbError, delta};
use crate::inflate::{InflateError, Inflater};
use crate::oid::{HashKind, IdHasher, ObjectId};

/// What keeping one object costs beyond its bytes, in bytes: its entries in the two maps
/// (offset to object, id to offset, with the tables' spare room) and the `Arc`'s header,
/// rounded up. A pack of millions of one-byte objects costs this much per object, not a byte.
pub const KEPT_OBJECT_COST: u64 = 160;

/// Bounds on what one streamed pack may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest object (inflated), deltas and results included.
    pub max_object: u64,
    /// Bytes of objects kept for later deltas (every object is kept: a delta may name any
    /// earlier entry), each counted with [`KEPT_OBJECT_COST`].
    pub max_kept: u64,
    /// Objects the header may announce.
    pub max_count: u32,
}

impl StreamLimits {
    /// The limits for a pack held in `max_kept` bytes. Every object costs at least
    /// [`KEPT_OBJECT_COST`], so at most `max_kept / KEPT_OBJECT_COST` objects are ever held:
    /// a pack of millions of tiny objects stops there (what came before stays readable), and
    /// a header announcing more than [`StreamLimits::default`]'s count is refused at once.
    pub fn for_memory(max_kept: u64) -> StreamLimits {
        StreamLimits {
            max_kept,
            ..StreamLimits::default()
        }
    }
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_object: 64 << 20,
            max_kept: 2 << 30,
            max_count: 50_000_000,
        }
    }
}

/// One object of the pack, deltas resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedObject {
    /// Its id (the hash of its kind, size and content).
    pub id: ObjectId,
    /// Its kind.
    pub kind: ObjectKind,
    /// Its content.
    pub data: Arc<[u8]>,
    /// The offset of its entry in the pack.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Entries,
    Trailer,
    Done,
}

/// Where a pack's delta bases are found when the [`PackStream`] keeps none itself
/// ([`PackStream::keeping_none`]): the caller holds every object it was given, its own way.
pub trait DeltaBases {
    /// The object of the entry at pack offset `offset`, given out earlier.
    fn at_offset(&self, offset: u64) -> Option<(ObjectKind, Arc<[u8]>)>;
    /// The object `id`, given out earlier.
    fn by_id(&self, id: &ObjectId) -> Option<(ObjectKind, Arc<[u8]>)>;
}

/// A pack read incrementally: [`PackStream::push`] what arrives and take objects with
/// [`PackStream::next_object`] until it answers `None`; when the input ends, call
/// [`PackStream::end_of_input`], take the last objects, then [`PackStream::finish`].
#[derive(Debug)]
pub struct PackStream {
    limits: StreamLimits,
    /// Bytes received; those from `pos` on are not consumed yet, and `buf[pos]` is at pack
    /// offset `base` (consumed bytes are dropped when more arrive, not entry by entry).
    buf: Vec<u8>,
    pos: usize,
    base: u64,
    stage: Stage,
    /// Entries the header announced, and those read.
    count: u32,
    read: u32,
    /// The hash of the ids and of the trailer.
    hash: HashKind,
    /// The hash of every byte before the trailer, as consumed.
    hasher: IdHasher,
    inflater: Inflater,
    /// Objects read so far by entry offset (delta bases), and offsets by id.
    kept: HashMap<u64, (ObjectKind, Arc<[u8]>)>,
    by_id: HashMap<ObjectId, u64>,
    kept_bytes: u64,
    /// Whether objects are kept here as delta bases (else the caller holds them).
    keeps: bool,
    /// Buffered bytes a retry of the current entry waits for (an entry that did not fit in
    /// what had arrived is tried again once twice as much is here).
    retry_at: usize,
    /// No more bytes will come: every entry is tried with what is here.
    ended: bool,
}

/// Where errors of a streamed pack point.
fn stream_path() -> PathBuf {
    PathBuf::from("<fetched pack>")
}

fn corrupt(offset: u64, reason: impl Into<String>) -> OdbError {
    OdbError::Corrupt {
        path: stream_path(),
        offset: Some(offset),
        reason: reason.into(),
    }
}

impl PackStream {
    /// A reader at the start of a pack whose ids are of `hash`.
    pub fn new(limits: StreamLimits, hash: HashKind) -> Self {
        PackStream {
            limits,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            stage: Stage::Header,
            count: 0,
            read: 0,
            hash,
            hasher: hash.hasher(),
            inflater: Inflater::new(),
            kept: HashMap::new(),
            by_id: HashMap::new(),
            kept_bytes: 0,
            keeps: true,
            retry_at: 0,
            ended: false,
        }
    }

    /// A reader that keeps no object: deltas are resolved against what the caller holds,
    /// through [`PackStream::next_object_with`] (and [`StreamLimits::max_kept`] is the
    /// caller's to enforce).
    pub fn keeping_none(limits: StreamLimits, hash: HashKind) -> Self {
        PackStream {
            keeps: false,
            ..PackStream::new(limits, hash)
        }
    }

    /// Appends bytes received.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Says that no more bytes will come (the last entry is then read from what is here).
    pub fn end_of_input(&mut self) {
        self.ended = true;
    }

    /// Objects the header announced (0 until it is read).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Objects read so far.
    pub fn objects_read(&self) -> u32 {
        self.read
    }

    /// The object a kept entry holds, by id (after it was streamed).
    pub fn object(&self, id: &ObjectId) -> Option<(ObjectKind, Arc<[u8]>)> {
        self.by_id
            .get(id)
            .and_then(|o| self.kept.get(o))
            .map(|(k, d)| (*k, Arc::clone(d)))
    }

    fn consume(&mut self, n: usize) {
        self.hasher.update(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.base += n as u64;
    }

    /// The next object, `Ok(None)` when more bytes are needed (or the pack has ended).
    pub fn next_object(&mut self) -> Result<Option<StreamedObject>, OdbError> {
        self.next_from(None)
    }

    /// [`PackStream::next_object`] for a reader [keeping none](PackStream::keeping_none):
    /// delta bases come from `bases`.
    pub fn next_object_with(
        &mut self,
        bases: &dyn DeltaBases,
    ) -> Result<Option<StreamedObject>, OdbError> {
        self.next_from(Some(bases))
    }

    fn next_from(
        &mut self,
        bases: Option<&dyn DeltaBases>,
    ) -> Result<Option<StreamedObject>, OdbError> {
        loop {
            match self.stage {
                Stage::Header => {
                    let rest = &self.buf[self.pos..];
                    if rest.len() < 12 {
                        return Ok(None);
                    }
                    if &rest[..4] != b"PACK" {
                        return Err(corrupt(0, "not a pack (no PACK signature)"));
                    }
                    let version = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
                    if version != 2 && version != 3 {
                        return Err(corrupt(4, format!("pack version {version} is not 2 or 3")));
                    }
                    let count = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
                    if count > self.limits.max_count {
                        return Err(corrupt(
                            8,
                            format!(
                                "the pack announces {count} objects, over the limit of {}",
                                self.limits.max_count
                            ),
                        ));
                    }
                    self.count = count;
                    self.consume(12);
                    self.stage = if count == 0 {
                        Stage::Trailer
                    } else {
                        Stage::Entries
                    };
                }
                Stage::Entries => {
                    if !self.ended && self.buf.len() - self.pos < self.retry_at {
                        return Ok(None);
                    }
                    return match self.entry(bases)? {
                        Some(o) => {
                            self.retry_at = 0;
                            self.read += 1;
                            if self.read == self.count {
                                self.stage = Stage::Trailer;
                            }
                            Ok(Some(o))
                        }
                        None => {
                            // Try again once twice as much is here: a large entry arriving in
                            // small pieces is inflated a logarithmic number of times.
                            self.retry_at = ((self.buf.len() - self.pos) * 2).max(64);
                            Ok(None)
                        }
                    };
                }
                Stage::Trailer => {
                    let len = self.hash.id_len();
                    let rest = &self.buf[self.pos..];
                    if rest.len() < len {
                        return Ok(None);
                    }
                    let digest = std::mem::replace(&mut self.hasher, self.hash.hasher()).finish();
                    if digest.as_bytes() != &rest[..len] {
                        return Err(corrupt(
                            self.base,
                            "the pack's checksum does not match its content",
                        ));
                    }
                    self.pos += len;
                    self.base += len as u64;
                    self.stage = Stage::Done;
                }
                Stage::Done => {
                    if self.pos < self.buf.len() {
                        return Err(corrupt(self.base, "data after the end of the pack"));
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Reads the entry at the start of the buffer, if it is all here.
    fn entry(
        &mut self,
        bases: Option<&dyn DeltaBases>,
    ) -> Result<Option<StreamedObject>, OdbError> {
        let offset = self.base;
        let Some(header) = parse_entry_header(&self.buf[self.pos..], offset, self.hash)
            .map_err(|r| corrupt(offset, r))?
        else {
            return Ok(None);
        };
        if header.size > self.limits.max_object {
            return Err(corrupt(
                offset,
                format!(
                    "entry of {} bytes is over the limit of {}",
                    header.size, self.limits.max_object
                ),
            ));
        }
        let start = (header.data_offset - offset) as usize;
        let mut raw = Vec::new();
        let used = match self.inflater.inflate_exact(
            &self.buf[self.pos + start..],
            header.size as usize,
            &mut raw,
        ) {
            Ok(n) => n,
            Err(InflateError::Truncated) => return Ok(None),
            Err(e) => return Err(corrupt(offset, format!("entry data: {e}"))),
        };
        let (kind, data) = match header.kind {
            EntryKind::Base(kind) => (kind, raw),
            EntryKind::OfsDelta(base_offset) => {
                let base = match bases {
                    Some(b) => b.at_offset(base_offset),
                    None => self.kept.get(&base_offset).cloned(),
                };
                let (kind, base) =
                    base.ok_or_else(|| corrupt(offset, "delta base is not an earlier entry"))?;
                (kind, self.apply(offset, &base, &raw)?)
            }
            EntryKind::RefDelta(id) => {
                let base = match bases {
                    Some(b) => b.by_id(&id),
                    None => self.object(&id),
                };
                let (kind, base) = base.ok_or_else(|| {
                    corrupt(offset, format!("delta base {id} is not in the pack"))
                })?;
                (kind, self.apply(offset, &base, &raw)?)
            }
        };
        self.consume(start + used);
        let id = hash_object(self.hash, kind, &data);
        let data: Arc<[u8]> = data.into();
        if !self.keeps {
            return Ok(Some(StreamedObject {
                id,
                kind,
                data,
                offset,
            }));
        }
        self.kept_bytes += data.len() as u64 + KEPT_OBJECT_COST;
        if self.kept_bytes > self.limits.max_kept {
            return Err(corrupt(
                offset,
                format!(
                    "the pack's objects pass the limit of {} bytes",
                    self.limits.max_kept
                ),
            ));
        }
        self.kept.insert(offset, (kind, Arc::clone(&data)));
        self.by_id.insert(id, offset);
        Ok(Some(StreamedObject {
            id,
            kind,
            data,
            offset,
        }))
    }

    fn apply(&self, offset: u64, base: &[u8], patch: &[u8]) -> Result<Vec<u8>, OdbError> {
        let mut out = Vec::new();
        delta::apply(base, patch, &mut out, self.limits.max_object)
            .map_err(|e| corrupt(offset, format!("delta: {e}")))?;
        Ok(out)
    }

    /// Checks that the stream ended where the pack does: every announced object and the
    /// checksum read, nothing after.
    pub fn finish(&self) -> Result<(), OdbError> {
        match self.stage {
            Stage::Done if self.pos == self.buf.len() => Ok(()),
            Stage::Done => Err(corrupt(self.base, "data after the end of the pack")),
            _ => Err(corrupt(
                self.base,
                format!(
                    "the pack ended after {} of the {} objects it announced",
                    self.read, self.count
                ),
            )),
        }
    }
}

/// The id git gives an object of `kind` with `data` in a repository of `hash`.
pub fn hash_object(hash: HashKind, kind: ObjectKind, data: &[u8]) -> ObjectId {
    let mut h = hash.hasher();
    h.update(format!("{} {}\0", kind.as_str(), data.len()).as_bytes());
    h.update(data);
    h.finish()
}
