//! The multi-pack-index (`objects/pack/multi-pack-index`): one sorted id table over many packs.

use std::path::{Path, PathBuf};

use super::OdbError;
use super::chunk::{self, be32, be64};
use crate::mmap::Mapped;
use crate::oid::{HashKind, ObjectId};

/// A validated multi-pack-index.
#[derive(Debug)]
pub struct MultiPackIndex {
    path: PathBuf,
    data: Mapped,
    /// Names of the packs' `.idx` files, in pack-int-id order.
    pack_names: Vec<String>,
    count: usize,
    /// The hash of the ids (the header's hash version).
    hash: HashKind,
    fanout: usize,
    oids: usize,
    offsets: usize,
    large: Option<(usize, usize)>,
}

impl MultiPackIndex {
    /// Opens and validates the file: signature, versions, chunk table bounds, chunk sizes. Its
    /// hash version must say `hash`, the repository's.
    pub fn open(path: &Path, hash: HashKind) -> Result<Self, OdbError> {
        let data = Mapped::open(path).map_err(|e| OdbError::io(path, e))?;
        let corrupt = |offset: usize, reason: String| OdbError::Corrupt {
            path: path.to_path_buf(),
            offset: Some(offset as u64),
            reason,
        };
        let b = data.bytes();
        let oid_len = hash.id_len();
        if b.len() < 12 + oid_len || &b[..4] != b"MIDX" {
            return Err(corrupt(0, "missing MIDX signature".into()));
        }
        if b[4] != 1 && b[4] != 2 {
            return Err(corrupt(4, format!("unsupported version {}", b[4])));
        }
        chunk::check_hash_version(b, hash).map_err(|(at, r)| corrupt(at, r))?;
        if b[7] != 0 {
            return Err(corrupt(
                7,
                "incremental multi-pack-index chains are not supported".into(),
            ));
        }
        let packs = be32(b, 8) as usize;
        let chunks = chunk::chunk_table(b, 12, usize::from(b[6]), b.len() - oid_len)
            .map_err(|(at, r)| corrupt(at, r))?;
        let need = |id: &[u8; 4]| chunk::require(&chunks, id, 12).map_err(|(at, r)| corrupt(at, r));
        let pn = need(b"PNAM")?;
        let fo = need(b"OIDF")?;
        let ol = need(b"OIDL")?;
        let oo = need(b"OOFF")?;
        if fo.len() != 256 * 4 {
            return Err(corrupt(fo.start, "fan-out chunk has the wrong size".into()));
        }
        let count = chunk::validate_fanout(b, fo.start).map_err(|(at, r)| corrupt(at, r))? as usize;
        if ol.len() != count * oid_len || oo.len() != count * 8 {
            return Err(corrupt(
                ol.start,
                "object chunks do not fit the fan-out count".into(),
            ));
        }
        let (pn_start, pn_end) = (pn.start, pn.end);
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
            hash,
            fanout: fo.start,
            oids: ol.start,
            offsets: oo.start,
            large: chunk::find(&chunks, b"LOFF").map(|r| (r.start, r.end)),
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
        let at = self.oids + i * self.hash.id_len();
        ObjectId::from_raw(self.hash, self.data.bytes().get(at..).unwrap_or_default())
            .unwrap_or(self.hash.null())
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
        chunk::fanout_search(
            self.data.bytes(),
            self.fanout,
            self.oids,
            self.hash.id_len(),
            self.count as u32,
            id,
        )
        .map(|p| p as usize)
    }
}
