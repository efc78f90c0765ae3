//! [`OdbReader`]: reading objects out of an [`Odb`], loose or packed (delta chains resolved
//! through the delta-base cache), with one inflater and scratch buffers per thread.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::inflate::Inflater;

/// A reader over an [`Odb`] with its own inflater, scratch buffers and delta-base cache. Cheap to
/// create; keep one per thread.
#[derive(Debug)]
pub struct OdbReader<'a> {
    pub(super) odb: &'a Odb,
    pub(super) inflater: Inflater,
    pub(super) cache: DeltaCache,
    pub(super) scratch: Vec<u8>,
    pub(super) delta: Vec<u8>,
    /// Kinds of pack entries seen by [`OdbReader::packed_kind`], so a scan over a whole pack
    /// walks each delta chain once rather than once per link.
    pub(super) kinds: KindMemo,
}

/// A direct-mapped memo of (pack, entry offset) -> object kind, allocated on first use.
#[derive(Debug, Default)]
pub(super) struct KindMemo {
    slots: Vec<(u64, u32, Option<ObjectKind>)>,
}

impl KindMemo {
    const SLOTS: usize = 1 << 15;

    fn slot(offset: u64) -> usize {
        // Entries are a few bytes to kilobytes apart: mix the offset so neighbours spread out.
        (offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 49) as usize % Self::SLOTS
    }

    fn get(&self, pack: u32, offset: u64) -> Option<ObjectKind> {
        let &(o, p, k) = self.slots.get(Self::slot(offset))?;
        if o == offset && p == pack { k } else { None }
    }

    fn put(&mut self, pack: u32, offset: u64, kind: ObjectKind) {
        if self.slots.is_empty() {
            self.slots = vec![(0, 0, None); Self::SLOTS];
        }
        self.slots[Self::slot(offset)] = (offset, pack, Some(kind));
    }
}

impl<'a> OdbReader<'a> {
    /// The database this reader reads.
    pub fn odb(&self) -> &'a Odb {
        self.odb
    }

    /// Reads object `id` into `out` (replacing its contents) and returns its kind.
    pub fn read_into(&mut self, id: &ObjectId, out: &mut Vec<u8>) -> Result<ObjectKind, OdbError> {
        match self.odb.locate(id) {
            Some(Location::Packed { pack, offset }) => self
                .read_packed(pack, offset, out)
                .map_err(|e| self.annotate_size(e, id)),
            Some(Location::Loose { dir }) => self.read_loose(dir as usize, id, out),
            Some(Location::Memory) => {
                let (kind, data) = self.memory_object(id)?;
                out.clear();
                out.extend_from_slice(&data);
                Ok(kind)
            }
            // As in git: the empty tree is there whether or not a pack holds it.
            None if *id == self.odb.hash().empty_tree() => {
                out.clear();
                Ok(ObjectKind::Tree)
            }
            None => Err(OdbError::Missing(*id)),
        }
    }

    fn memory_object(&self, id: &ObjectId) -> Result<(ObjectKind, Arc<[u8]>), OdbError> {
        self.odb
            .memory
            .as_ref()
            .and_then(|m| m.get(id))
            .ok_or(OdbError::Missing(*id))
    }

    /// Reads object `id`, requiring it to be of kind `kind`.
    pub fn read_kind(
        &mut self,
        id: &ObjectId,
        kind: ObjectKind,
        out: &mut Vec<u8>,
    ) -> Result<(), OdbError> {
        let actual = self.read_into(id, out)?;
        if actual != kind {
            return Err(OdbError::WrongKind {
                id: *id,
                expected: kind,
                actual,
            });
        }
        Ok(())
    }

    /// Reads object `id` into a new buffer.
    pub fn read(&mut self, id: &ObjectId) -> Result<(ObjectKind, Vec<u8>), OdbError> {
        let mut out = Vec::new();
        let kind = self.read_into(id, &mut out)?;
        Ok((kind, out))
    }

    fn annotate_size(&self, e: OdbError, id: &ObjectId) -> OdbError {
        match e {
            OdbError::TooLarge { size, limit, .. } => OdbError::TooLarge {
                id: *id,
                size,
                limit,
            },
            other => other,
        }
    }

    /// The kind and size of object `id`, inflating as little as possible.
    pub fn read_header(&mut self, id: &ObjectId) -> Result<(ObjectKind, u64), OdbError> {
        match self.odb.locate(id) {
            Some(Location::Packed { pack, offset }) => {
                let slot = &self.odb.packs[pack as usize];
                let header = slot.pack.entry_header(offset)?;
                match header.kind {
                    EntryKind::Base(kind) => Ok((kind, header.size)),
                    _ => {
                        let kind = self.packed_kind(pack, offset)?;
                        let data = slot.pack.data_from(header.data_offset);
                        let mut buf = std::mem::take(&mut self.scratch);
                        self.inflater
                            .inflate_prefix(data, 32, &mut buf)
                            .map_err(|e| {
                                OdbError::inflate(slot.pack.path(), Some(header.data_offset), e)
                            })?;
                        let size = delta::result_size(&buf)
                            .map_err(|e| slot.pack.corrupt(offset, e.to_string()))?;
                        self.scratch = buf;
                        Ok((kind, size))
                    }
                }
            }
            Some(Location::Loose { dir }) => {
                let path = Odb::loose_path(&self.odb.dirs[dir as usize], id);
                let raw = fs::read(&path).map_err(|e| OdbError::io(&path, e))?;
                let mut buf = Vec::new();
                self.inflater
                    .inflate_prefix(&raw, 64, &mut buf)
                    .map_err(|e| OdbError::inflate(&path, None, e))?;
                let (kind, size, _) = parse_loose_header(&buf, &path)?;
                Ok((kind, size))
            }
            Some(Location::Memory) => {
                let (kind, data) = self.memory_object(id)?;
                Ok((kind, data.len() as u64))
            }
            None if *id == self.odb.hash().empty_tree() => Ok((ObjectKind::Tree, 0)),
            None => Err(OdbError::Missing(*id)),
        }
    }

    /// The object kind of the pack entry at `offset`, following delta bases by their headers only.
    /// Kinds found are remembered (per reader), so reading a pack front to back costs about one
    /// header per entry however deep its delta chains are.
    pub fn packed_kind(&mut self, pack: u32, offset: u64) -> Result<ObjectKind, OdbError> {
        let slot = self
            .odb
            .packs
            .get(pack as usize)
            .ok_or(OdbError::Missing(ObjectId::NULL))?;
        let mut chain: [u64; 64] = [0; 64];
        let mut links = 0;
        let mut cur = offset;
        let mut depth = 0;
        let kind = loop {
            if let Some(kind) = self.kinds.get(pack, cur) {
                break kind;
            }
            if depth > self.odb.options.max_delta_depth {
                return Err(slot.pack.corrupt(
                    cur,
                    format!(
                        "delta chain is deeper than {} (or loops)",
                        self.odb.options.max_delta_depth
                    ),
                ));
            }
            depth += 1;
            if links < chain.len() {
                chain[links] = cur;
                links += 1;
            }
            match slot.pack.entry_header(cur)?.kind {
                EntryKind::Base(kind) => break kind,
                EntryKind::OfsDelta(base) => cur = base,
                EntryKind::RefDelta(id) => {
                    cur = self.odb.find_in_pack(pack, &id).ok_or_else(|| {
                        slot.pack
                            .corrupt(cur, format!("REF_DELTA base {id} is not in this pack"))
                    })?;
                }
            }
        };
        for &o in &chain[..links] {
            self.kinds.put(pack, o, kind);
        }
        Ok(kind)
    }

    /// Reads the start of the pack entry at `offset` when it is stored whole: a little at a time
    /// until `done` accepts it (see [`Inflater::inflate_until`]), at most `limit` bytes. A delta is
    /// read whole. Returns the kind and whether `out` holds all of the object. Loading the graph
    /// needs only a commit's headers and subject, not its body.
    pub fn read_packed_until(
        &mut self,
        pack: u32,
        offset: u64,
        limit: usize,
        out: &mut Vec<u8>,
        done: impl Fn(&[u8]) -> bool,
    ) -> Result<(ObjectKind, bool), OdbError> {
        let slot = self
            .odb
            .packs
            .get(pack as usize)
            .ok_or(OdbError::Missing(ObjectId::NULL))?;
        let h = slot.pack.entry_header(offset)?;
        match h.kind {
            EntryKind::Base(kind) => {
                let limit = limit.min(usize::try_from(h.size).unwrap_or(usize::MAX));
                let complete = self
                    .inflater
                    .inflate_until(
                        slot.pack.data_from(h.data_offset),
                        limit,
                        // Headers and a subject are about 350 bytes; bigger steps after that
                        // keep zlib on its fast path (it needs 258 bytes of room).
                        (384, 512),
                        out,
                        done,
                    )
                    .map_err(|e| OdbError::inflate(slot.pack.path(), Some(offset), e))?;
                Ok((kind, complete || out.len() as u64 == h.size))
            }
            _ => Ok((self.read_packed(pack, offset, out)?, true)),
        }
    }

    /// Reads the pack entry at `offset` of pack number `pack`, resolving its delta chain.
    pub fn read_packed(
        &mut self,
        pack: u32,
        offset: u64,
        out: &mut Vec<u8>,
    ) -> Result<ObjectKind, OdbError> {
        let odb = self.odb;
        let slot = odb
            .packs
            .get(pack as usize)
            .ok_or(OdbError::Missing(ObjectId::NULL))?;
        let p = &slot.pack;
        let max = odb.options.max_object_size;
        // Walk back to a base (or a cached intermediate), remembering the deltas on the way.
        let mut chain: Vec<(u64, u64, u64)> = Vec::new(); // (entry offset, data offset, delta size)
        let mut ref_seen: Vec<u64> = Vec::new();
        let mut cur = offset;
        let base_kind;
        loop {
            if let Some((kind, data)) = self.cache.get(pack, cur) {
                base_kind = kind;
                out.clear();
                out.extend_from_slice(data);
                break;
            }
            let h = p.entry_header(cur)?;
            match h.kind {
                EntryKind::Base(kind) => {
                    if h.size > max {
                        return Err(OdbError::TooLarge {
                            id: ObjectId::NULL,
                            size: h.size,
                            limit: max,
                        });
                    }
                    self.inflater
                        .inflate_exact(p.data_from(h.data_offset), h.size as usize, out)
                        .map_err(|e| OdbError::inflate(p.path(), Some(cur), e))?;
                    base_kind = kind;
                    if !chain.is_empty() {
                        self.cache.put(pack, cur, kind, out);
                    }
                    break;
                }
                EntryKind::OfsDelta(base) => {
                    chain.push((cur, h.data_offset, h.size));
                    cur = base;
                }
                EntryKind::RefDelta(id) => {
                    chain.push((cur, h.data_offset, h.size));
                    let base = odb.find_in_pack(pack, &id).ok_or_else(|| {
                        p.corrupt(cur, format!("REF_DELTA base {id} is not in this pack"))
                    })?;
                    if ref_seen.contains(&base) {
                        return Err(p.corrupt(cur, "REF_DELTA chain loops back on itself"));
                    }
                    ref_seen.push(base);
                    cur = base;
                }
            }
            if chain.len() > odb.options.max_delta_depth {
                return Err(p.corrupt(
                    offset,
                    format!("delta chain is deeper than {}", odb.options.max_delta_depth),
                ));
            }
        }
        let mut result = std::mem::take(&mut self.scratch);
        let mut delta_buf = std::mem::take(&mut self.delta);
        let outcome = (|| {
            for (i, &(entry, data_offset, size)) in chain.iter().enumerate().rev() {
                if size > max.saturating_mul(2).saturating_add(1024) {
                    return Err(p.corrupt(entry, format!("delta of {size} bytes is too large")));
                }
                self.inflater
                    .inflate_exact(p.data_from(data_offset), size as usize, &mut delta_buf)
                    .map_err(|e| OdbError::inflate(p.path(), Some(entry), e))?;
                delta::apply(out, &delta_buf, &mut result, max).map_err(|e| match e {
                    delta::DeltaError::TooLarge(size) => OdbError::TooLarge {
                        id: ObjectId::NULL,
                        size,
                        limit: max,
                    },
                    e => p.corrupt(entry, e.to_string()),
                })?;
                std::mem::swap(out, &mut result);
                // Intermediate results are bases of the next delta; cache them for siblings.
                if i > 0 {
                    self.cache.put(pack, entry, base_kind, out);
                }
            }
            Ok(())
        })();
        self.scratch = result;
        self.delta = delta_buf;
        outcome?;
        Ok(base_kind)
    }

    fn read_loose(
        &mut self,
        dir: usize,
        id: &ObjectId,
        out: &mut Vec<u8>,
    ) -> Result<ObjectKind, OdbError> {
        let path = Odb::loose_path(&self.odb.dirs[dir], id);
        let raw = fs::read(&path).map_err(|e| OdbError::io(&path, e))?;
        self.inflater
            .inflate_prefix(&raw, 64, out)
            .map_err(|e| OdbError::inflate(&path, None, e))?;
        let (kind, size, header_len) = parse_loose_header(out, &path)?;
        let max = self.odb.options.max_object_size;
        if size > max {
            return Err(OdbError::TooLarge {
                id: *id,
                size,
                limit: max,
            });
        }
        self.inflater
            .inflate_exact(&raw, header_len + size as usize, out)
            .map_err(|e| OdbError::inflate(&path, None, e))?;
        out.drain(..header_len);
        Ok(kind)
    }
}

/// Parses `"<kind> <size>\0"`; returns the kind, the size and the header length.
pub(super) fn parse_loose_header(
    buf: &[u8],
    path: &Path,
) -> Result<(ObjectKind, u64, usize), OdbError> {
    let corrupt = |reason: &str| OdbError::Corrupt {
        path: path.to_path_buf(),
        offset: None,
        reason: reason.to_string(),
    };
    let nul = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| corrupt("loose object header has no NUL"))?;
    let header = &buf[..nul];
    let space = header
        .iter()
        .position(|&b| b == b' ')
        .ok_or_else(|| corrupt("loose object header has no size"))?;
    let kind = ObjectKind::from_bytes(&header[..space])
        .ok_or_else(|| corrupt("loose object has an unknown type"))?;
    let size_text = &header[space + 1..];
    if size_text.is_empty() || size_text.len() > 19 || !size_text.iter().all(u8::is_ascii_digit) {
        return Err(corrupt("loose object size is not a number"));
    }
    let size = size_text
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Ok((kind, size, nul + 1))
}
