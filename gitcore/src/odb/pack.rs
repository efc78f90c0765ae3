//! Pack files (`.pack`): the header, entry headers and where each entry's data starts.

use std::path::{Path, PathBuf};

use super::{ObjectKind, OdbError};
use crate::mmap::Mapped;
use crate::oid::{HashKind, ObjectId};

const HEADER_LEN: usize = 12;

/// What a pack entry holds before deltas are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A whole object of this kind.
    Base(ObjectKind),
    /// A delta against the entry at this earlier offset of the same pack.
    OfsDelta(u64),
    /// A delta against the object with this id.
    RefDelta(ObjectId),
}

/// A parsed entry header.
#[derive(Debug, Clone, Copy)]
pub struct EntryHeader {
    /// Base object kind or delta reference.
    pub kind: EntryKind,
    /// Inflated size of the entry's data (the object, or the delta).
    pub size: u64,
    /// Offset of the zlib stream.
    pub data_offset: u64,
}

/// A memory-mapped pack file with a validated header.
#[derive(Debug)]
pub struct Pack {
    path: PathBuf,
    data: Mapped,
    count: u32,
    /// The hash of the repository's ids: the length of REF_DELTA bases and of the trailer.
    hash: HashKind,
}

impl Pack {
    /// Maps `path` and checks the `PACK` signature, version (2 or 3) and minimum size.
    /// Its ids are of `hash`.
    pub fn open(path: &Path, hash: HashKind) -> Result<Self, OdbError> {
        let data = Mapped::open(path).map_err(|e| OdbError::io(path, e))?;
        Self::validate(path, data, hash)
    }

    /// Validates a pack held in memory; `path` only names it in errors (used by fuzzing).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>, hash: HashKind) -> Result<Self, OdbError> {
        Self::validate(path, Mapped::from_vec(bytes), hash)
    }

    fn validate(path: &Path, data: Mapped, hash: HashKind) -> Result<Self, OdbError> {
        let b = data.bytes();
        let corrupt = |offset: u64, reason: &str| OdbError::Corrupt {
            path: path.to_path_buf(),
            offset: Some(offset),
            reason: reason.to_string(),
        };
        if b.len() < HEADER_LEN + hash.id_len() {
            return Err(corrupt(b.len() as u64, "pack file is truncated"));
        }
        if &b[..4] != b"PACK" {
            return Err(corrupt(0, "missing PACK signature"));
        }
        let version = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        if version != 2 && version != 3 {
            return Err(corrupt(4, &format!("unsupported pack version {version}")));
        }
        let count = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        Ok(Pack {
            path: path.to_path_buf(),
            data,
            count,
            hash,
        })
    }

    /// The file this pack was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of objects the header announces.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The pack's trailing checksum.
    pub fn checksum(&self) -> &[u8] {
        let b = self.data.bytes();
        &b[b.len() - self.hash.id_len()..]
    }

    /// Drops the pages holding bytes `from..to` from the process's resident set (see
    /// [`crate::mmap::Mapped::release`]).
    pub fn release(&self, from: u64, to: u64) {
        self.data.release(from as usize..to as usize);
    }

    /// The entry data from `offset` to the start of the trailer.
    pub fn data_from(&self, offset: u64) -> &[u8] {
        let b = self.data.bytes();
        let end = b.len() - self.hash.id_len();
        usize::try_from(offset)
            .ok()
            .and_then(|o| b.get(o..end))
            .unwrap_or_default()
    }

    pub(crate) fn corrupt(&self, offset: u64, reason: impl Into<String>) -> OdbError {
        OdbError::Corrupt {
            path: self.path.clone(),
            offset: Some(offset),
            reason: reason.into(),
        }
    }

    /// Parses the entry header at `offset`.
    pub fn entry_header(&self, offset: u64) -> Result<EntryHeader, OdbError> {
        let body_end = (self.data.bytes().len() - self.hash.id_len()) as u64;
        if offset < HEADER_LEN as u64 || offset >= body_end {
            return Err(self.corrupt(offset, "entry offset is outside the pack"));
        }
        match parse_entry_header(self.data_from(offset), offset, self.hash) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(self.corrupt(offset, "entry header is truncated")),
            Err(reason) => Err(self.corrupt(offset, reason)),
        }
    }
}

/// Parses the header of the entry at pack offset `offset` from `d`, which starts there:
/// `Ok(None)` when `d` ends inside it, `Err` with the reason when it is malformed. A REF_DELTA
/// names its base with an id of `hash`.
pub(crate) fn parse_entry_header(
    d: &[u8],
    offset: u64,
    hash: HashKind,
) -> Result<Option<EntryHeader>, String> {
    let mut pos = 0usize;
    let Some(&first) = d.first() else {
        return Ok(None);
    };
    let mut byte = first;
    pos += 1;
    let type_bits = (byte >> 4) & 7;
    let mut size = u64::from(byte & 15);
    let mut shift = 4u32;
    while byte & 0x80 != 0 {
        let Some(&b) = d.get(pos) else {
            return Ok(None);
        };
        byte = b;
        pos += 1;
        if shift > 57 {
            return Err("entry size does not fit 64 bits".into());
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    let kind = match type_bits {
        1 => EntryKind::Base(ObjectKind::Commit),
        2 => EntryKind::Base(ObjectKind::Tree),
        3 => EntryKind::Base(ObjectKind::Blob),
        4 => EntryKind::Base(ObjectKind::Tag),
        6 => {
            let Some(&b) = d.get(pos) else {
                return Ok(None);
            };
            byte = b;
            pos += 1;
            let mut back = u64::from(byte & 0x7f);
            while byte & 0x80 != 0 {
                let Some(&b) = d.get(pos) else {
                    return Ok(None);
                };
                byte = b;
                pos += 1;
                back = back
                    .checked_add(1)
                    .and_then(|b| b.checked_mul(128))
                    .map(|b| b | u64::from(byte & 0x7f))
                    .ok_or("OFS_DELTA distance overflows")?;
            }
            if back == 0 || back > offset {
                return Err(format!(
                    "OFS_DELTA base distance {back} does not point backwards into the pack"
                ));
            }
            EntryKind::OfsDelta(offset - back)
        }
        7 => {
            let Some(id) = d.get(pos..).and_then(|rest| ObjectId::from_raw(hash, rest)) else {
                return Ok(None);
            };
            pos += hash.id_len();
            EntryKind::RefDelta(id)
        }
        t => return Err(format!("invalid entry type {t}")),
    };
    Ok(Some(EntryHeader {
        kind,
        size,
        data_offset: offset + pos as u64,
    }))
}
