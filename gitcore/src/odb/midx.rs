//! The multi-pack-index (`objects/pack/multi-pack-index`): one sorted id table over many packs.

use std::path::{Path, PathBuf};

use super::OdbError;
use crate::mmap::Mapped;
use crate::oid::{OID_LEN, ObjectId};

/// A validated multi-pack-index.
#[derive(Debug)]
pub struct MultiPackIndex {
    path: PathBuf,
    data: Mapped,
    /// Names of the packs' `.idx` files, in pack-int-id order.
    pack_names: Vec<String>,
    count: usize,
    fanout: usize,
    oids: usize,
    offsets: usize,
    large: Option<(usize, usize)>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

impl MultiPackIndex {
    /// Opens and validates the file: signature, versions, chunk table bounds, chunk sizes.
    pub fn open(path: &Path) -> Result<Self, OdbError> {
        let data = Mapped::open(path).map_err(|e| OdbError::io(path, e))?;
        let corrupt = |offset: usize, reason: String| OdbError::Corrupt {
            path: path.to_path_buf(),
            offset: Some(offset as u64),
            reason,
        };
        let b = data.bytes();
        if b.len() < 12 + OID_LEN || &b[..4] != b"MIDX" {
            return Err(corrupt(0, "missing MIDX signature".into()));
        }
        if b[4] != 1 && b[4] != 2 {
            return Err(corrupt(4, format!("unsupported version {}", b[4])));
        }
        if b[5] != 1 {
            return Err(corrupt(5, format!("unsupported hash version {}", b[5])));
        }
        let chunks = usize::from(b[6]);
        if b[7] != 0 {
            return Err(corrupt(
                7,
                "incremental multi-pack-index chains are not supported".into(),
            ));
        }
        let packs = be32(b, 8) as usize;
        let table_end = 12 + (chunks + 1) * 12;
        if table_end > b.len() - OID_LEN {
            return Err(corrupt(12, "chunk table is truncated".into()));
        }
        let mut found: Vec<([u8; 4], usize, usize)> = Vec::new();
        for i in 0..chunks {
            let at = 12 + i * 12;
            let id = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            let start = be64(b, at + 4);
            let end = be64(b, at + 16);
            if start > end || end > (b.len() - OID_LEN) as u64 || start < table_end as u64 {
                return Err(corrupt(at, "chunk offset out of range".into()));
            }
            found.push((id, start as usize, end as usize));
        }
        let chunk = |id: &[u8; 4]| found.iter().find(|c| &c.0 == id).map(|c| (c.1, c.2));
        let need = |id: &[u8; 4]| {
            chunk(id).ok_or_else(|| {
                corrupt(12, format!("missing {} chunk", String::from_utf8_lossy(id)))
            })
        };
        let (pn_start, pn_end) = need(b"PNAM")?;
        let (fo_start, fo_end) = need(b"OIDF")?;
        let (ol_start, ol_end) = need(b"OIDL")?;
        let (oo_start, oo_end) = need(b"OOFF")?;
        if fo_end - fo_start != 256 * 4 {
            return Err(corrupt(fo_start, "fan-out chunk has the wrong size".into()));
        }
        let mut prev = 0;
        for i in 0..256 {
            let n = be32(b, fo_start + i * 4);
            if n < prev {
                return Err(corrupt(fo_start + i * 4, "fan-out is not monotonic".into()));
            }
            prev = n;
        }
        let count = prev as usize;
        if ol_end - ol_start != count * OID_LEN || oo_end - oo_start != count * 8 {
            return Err(corrupt(
                ol_start,
                "object chunks do not fit the fan-out count".into(),
            ));
        }
        let pack_names: Vec<String> = b[pn_start..pn_end]
            .split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        if pack_names.len() != packs {
            return Err(corrupt(
                pn_start,
                format!("{} pack names for {packs} packs", pack_names.len()),
            ));
        }
        Ok(MultiPackIndex {
            path: path.to_path_buf(),
            pack_names,
            count,
            fanout: fo_start,
            oids: ol_start,
            offsets: oo_start,
            large: chunk(b"LOFF"),
            data,
        })
    }

    /// The `.idx` file names of the packs this index covers.
    pub fn pack_names(&self) -> &[String] {
        &self.pack_names
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no object is indexed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`th id in sorted order.
    pub fn oid_at(&self, i: usize) -> ObjectId {
        let at = self.oids + i * OID_LEN;
        ObjectId::from_slice(self.data.bytes().get(at..).unwrap_or_default())
            .unwrap_or(ObjectId::NULL)
    }

    /// The pack-int-id and offset of the `i`th object.
    pub fn location_at(&self, i: usize) -> Result<(u32, u64), OdbError> {
        let b = self.data.bytes();
        let at = self.offsets + i * 8;
        let pack = be32(b, at);
        let raw = be32(b, at + 4);
        let corrupt = |reason: String| OdbError::Corrupt {
            path: self.path.clone(),
            offset: Some(at as u64),
            reason,
        };
        if pack as usize >= self.pack_names.len() {
            return Err(corrupt(format!("pack-int-id {pack} is out of range")));
        }
        if raw & 0x8000_0000 == 0 {
            return Ok((pack, u64::from(raw)));
        }
        let idx = (raw & 0x7fff_ffff) as usize;
        match self.large {
            Some((s, e)) if s + idx * 8 + 8 <= e => Ok((pack, be64(b, s + idx * 8))),
            _ => Err(corrupt(format!("large offset {idx} is out of range"))),
        }
    }

    /// Position of `id`, if present.
    pub fn lookup(&self, id: &ObjectId) -> Option<usize> {
        let b = self.data.bytes();
        let first = usize::from(id.first_byte());
        let mut lo = if first == 0 {
            0
        } else {
            be32(b, self.fanout + (first - 1) * 4) as usize
        };
        let mut hi = (be32(b, self.fanout + first * 4) as usize).min(self.count);
        let target = id.as_bytes().as_slice();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.oids + mid * OID_LEN;
            match b.get(at..at + OID_LEN)?.cmp(target) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}
