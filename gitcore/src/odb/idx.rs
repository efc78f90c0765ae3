//! Pack index files (`.idx`, versions 1 and 2, with 64-bit offsets).

use std::path::{Path, PathBuf};

use super::OdbError;
use super::chunk::{self, be32};
use crate::mmap::Mapped;
use crate::oid::{HashKind, ObjectId};

const V2_MAGIC: &[u8; 4] = b"\xfftOc";
const FANOUT_LEN: usize = 256 * 4;

/// A validated, memory-mapped pack index.
#[derive(Debug)]
pub struct PackIndex {
    path: PathBuf,
    data: Mapped,
    version: u8,
    count: u32,
    /// The hash of the ids, and of the two checksums of the trailer.
    hash: HashKind,
    /// Number of entries in the 64-bit offset table (version 2 only).
    large_count: usize,
    /// The pack's reverse index (`.rev`: index positions in pack order), when git wrote one and it
    /// matches this pack.
    rev: Option<Mapped>,
}

/// Maps a `.rev` file if it exists, has the right shape and names the same pack; anything else is
/// ignored (it is only an accelerator: offsets get sorted instead).
fn open_rev(path: &Path, count: u32, pack_checksum: &[u8], hash: HashKind) -> Option<Mapped> {
    let map = Mapped::open(path).ok()?;
    let b = map.bytes();
    let trailer = 2 * hash.id_len();
    let ok = b.len() == 12 + count as usize * 4 + trailer
        && b.starts_with(b"RIDX")
        && be32(b, 4) == 1
        && be32(b, 8) == u32::from(hash.file_version())
        && &b[b.len() - trailer..b.len() - hash.id_len()] == pack_checksum;
    ok.then_some(map)
}

impl PackIndex {
    /// Drops the index's pages (and its `.rev` file's) from the process's resident set; lookups
    /// fault back in the few pages they read (see [`Mapped::release`]).
    pub fn release(&self) {
        self.data.release(0..usize::MAX);
        if let Some(rev) = &self.rev {
            rev.release(0..usize::MAX);
        }
    }

    /// Opens and validates `path`, an index of ids of `hash`: magic, version, fan-out
    /// monotonicity, size and trailing checksum.
    pub fn open(path: &Path, hash: HashKind) -> Result<Self, OdbError> {
        Self::open_checking(path, hash, true)
    }

    /// [`PackIndex::open`], leaving out the trailing checksum unless `checksum` (as git does when
    /// it opens an index): hashing a forge's 40 MB index costs 25 ms, most of a first screen.
    /// The structure is still validated, and every lookup stays within the file.
    pub fn open_checking(path: &Path, hash: HashKind, checksum: bool) -> Result<Self, OdbError> {
        let data = Mapped::open(path).map_err(|e| OdbError::io(path, e))?;
        Self::validate(path, data, hash, checksum)
    }

    /// Validates an index held in memory; `path` only names it in errors (used by fuzzing).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>, hash: HashKind) -> Result<Self, OdbError> {
        Self::validate(path, Mapped::from_vec(bytes), hash, true)
    }

    fn validate(
        path: &Path,
        data: Mapped,
        hash: HashKind,
        checksum: bool,
    ) -> Result<Self, OdbError> {
        let oid_len = hash.id_len();
        let trailer = 2 * oid_len;
        let corrupt = |offset: usize, reason: String| OdbError::Corrupt {
            path: path.to_path_buf(),
            offset: Some(offset as u64),
            reason,
        };
        let bytes = data.bytes();
        let (version, fanout_at) = if bytes.starts_with(V2_MAGIC) {
            let v = be32(bytes, 4);
            if v != 2 {
                return Err(corrupt(4, format!("unsupported index version {v}")));
            }
            (2u8, 8usize)
        } else {
            (1u8, 0usize)
        };
        if bytes.len() < fanout_at + FANOUT_LEN + trailer {
            return Err(corrupt(bytes.len(), "index file is truncated".into()));
        }
        let mut prev = 0;
        for i in 0..256 {
            let n = be32(bytes, fanout_at + i * 4);
            if n < prev {
                return Err(corrupt(
                    fanout_at + i * 4,
                    "fan-out table is not monotonic".into(),
                ));
            }
            prev = n;
        }
        let count = prev;
        let n = count as usize;
        let body = fanout_at + FANOUT_LEN;
        let large_count = if version == 2 {
            let fixed = body + n * (oid_len + 8) + trailer;
            if bytes.len() < fixed || !(bytes.len() - fixed).is_multiple_of(8) {
                return Err(corrupt(
                    bytes.len(),
                    format!("index size {} does not fit {count} objects", bytes.len()),
                ));
            }
            (bytes.len() - fixed) / 8
        } else {
            if bytes.len() != body + n * (oid_len + 4) + trailer {
                return Err(corrupt(
                    bytes.len(),
                    format!("index size {} does not fit {count} objects", bytes.len()),
                ));
            }
            0
        };
        let split = bytes.len() - oid_len;
        if checksum && hash.digest(&bytes[..split]).as_bytes() != &bytes[split..] {
            return Err(corrupt(split, "index checksum mismatch".into()));
        }
        let rev = open_rev(
            &path.with_extension("rev"),
            count,
            &bytes[split - oid_len..split],
            hash,
        );
        Ok(PackIndex {
            path: path.to_path_buf(),
            data,
            version,
            count,
            hash,
            large_count,
            rev,
        })
    }

    /// The index position of the `k`th object in pack order, from the `.rev` file; `None` without
    /// one (or for a position the file does not hold).
    pub fn rev_position(&self, k: usize) -> Option<u32> {
        let b = self.rev.as_ref()?.bytes();
        let p = be32(b, 12 + k * 4);
        (p < self.count).then_some(p)
    }

    /// Whether a usable `.rev` file was found.
    pub fn has_rev(&self) -> bool {
        self.rev.is_some()
    }

    /// The index format version (1 or 2).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Number of entries in the 64-bit offset table.
    pub fn large_offsets(&self) -> usize {
        self.large_count
    }

    /// The file this index was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of objects in the pack.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the pack holds no objects.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The checksum of the pack this index describes (its copy of the pack's trailer).
    pub fn pack_checksum(&self) -> &[u8] {
        let b = self.data.bytes();
        &b[b.len() - 2 * self.hash.id_len()..b.len() - self.hash.id_len()]
    }

    /// The hash of the ids.
    pub fn hash(&self) -> HashKind {
        self.hash
    }

    fn fanout_at(&self) -> usize {
        if self.version == 2 { 8 } else { 0 }
    }

    /// The id of the `i`th object in id order; `i` must be below `len()`.
    pub fn oid_at(&self, i: usize) -> ObjectId {
        let b = self.data.bytes();
        let len = self.hash.id_len();
        let at = if self.version == 2 {
            self.fanout_at() + FANOUT_LEN + i * len
        } else {
            FANOUT_LEN + i * (len + 4) + 4
        };
        ObjectId::from_raw(self.hash, b.get(at..).unwrap_or_default()).unwrap_or(self.hash.null())
    }

    /// The pack offset of the `i`th object; an error if a 64-bit offset index is out of range.
    pub fn offset_at(&self, i: usize) -> Result<u64, OdbError> {
        let b = self.data.bytes();
        if self.version == 1 {
            return Ok(u64::from(be32(
                b,
                FANOUT_LEN + i * (self.hash.id_len() + 4),
            )));
        }
        let n = self.len();
        let at = self.fanout_at() + FANOUT_LEN + n * (self.hash.id_len() + 4) + i * 4;
        let raw = be32(b, at);
        if raw & 0x8000_0000 == 0 {
            return Ok(u64::from(raw));
        }
        let large = (raw & 0x7fff_ffff) as usize;
        if large >= self.large_count {
            return Err(OdbError::Corrupt {
                path: self.path.clone(),
                offset: Some(at as u64),
                reason: format!("64-bit offset index {large} is past the table"),
            });
        }
        let lat = self.fanout_at() + FANOUT_LEN + n * (self.hash.id_len() + 8) + large * 8;
        Ok((u64::from(be32(b, lat)) << 32) | u64::from(be32(b, lat + 4)))
    }

    /// Position of `id` in the index, by binary search inside its fan-out bucket.
    pub fn lookup(&self, id: &ObjectId) -> Option<usize> {
        let (first, stride) = if self.version == 2 {
            (self.fanout_at() + FANOUT_LEN, self.hash.id_len())
        } else {
            (FANOUT_LEN + 4, self.hash.id_len() + 4)
        };
        chunk::fanout_search(
            self.data.bytes(),
            self.fanout_at(),
            first,
            stride,
            self.count,
            id,
        )
        .map(|p| p as usize)
    }

    /// Index positions of every object whose hex id starts with `prefix` (at most `limit`).
    pub fn prefix_matches(&self, prefix: &str, limit: usize) -> Vec<usize> {
        let Some(first) = prefix.get(..2).and_then(|p| u8::from_str_radix(p, 16).ok()) else {
            return Vec::new();
        };
        let b = self.data.bytes();
        let fan = self.fanout_at();
        let lo = if first == 0 {
            0
        } else {
            be32(b, fan + (usize::from(first) - 1) * 4) as usize
        };
        let hi = be32(b, fan + usize::from(first) * 4) as usize;
        (lo..hi)
            .filter(|&i| self.oid_at(i).starts_with_hex(prefix))
            .take(limit)
            .collect()
    }
}
