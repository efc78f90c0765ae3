//! Reading `objects/info/commit-graph` and split commit-graph chains
//! (`objects/info/commit-graphs/commit-graph-chain`): ids, parents and commit times without
//! inflating a single commit.
//!
//! The file is only a cache: every position and size is validated on open and every parent
//! position on use, and a load that meets a problem falls back to decoding commits.

use std::fs;
use std::path::{Path, PathBuf};

use crate::mmap::Mapped;
use crate::odb::OdbError;
use crate::odb::chunk::{self, be32};
use crate::oid::{HashKind, ObjectId};

const NO_PARENT: u32 = 0x7000_0000;
const EXTRA_EDGES: u32 = 0x8000_0000;

/// One validated graph file of a chain.
#[derive(Debug)]
struct Layer {
    path: PathBuf,
    data: Mapped,
    count: u32,
    /// The hash of the ids (the header's hash version).
    hash: HashKind,
    fanout: usize,
    oids: usize,
    cdat: usize,
    edges: Option<(usize, usize)>,
    /// Changed-path Bloom filters (`BIDX` + `BDAT`), when written with `--changed-paths`.
    bloom: Option<BloomChunks>,
}

/// Where a layer's changed-path filters are and how they were made.
#[derive(Debug, Clone, Copy)]
struct BloomChunks {
    /// Start of `BIDX`: one big-endian end offset per commit into the filter data.
    index: usize,
    /// Start and end of the filter data (`BDAT` after its 12-byte header).
    data: (usize, usize),
    /// Murmur3 variant: 1 (git's original, wrong for bytes >= 0x80) or 2.
    version: u32,
    hashes: u32,
}

impl Layer {
    fn open(path: &Path, hash: HashKind) -> Result<Layer, OdbError> {
        let data = Mapped::open(path).map_err(|e| OdbError::io(path, e))?;
        let corrupt = |offset: usize, reason: String| OdbError::Corrupt {
            path: path.to_path_buf(),
            offset: Some(offset as u64),
            reason,
        };
        let b = data.bytes();
        let oid_len = hash.id_len();
        if b.len() < 8 + 12 + oid_len || &b[..4] != b"CGPH" {
            return Err(corrupt(0, "missing CGPH signature".into()));
        }
        if b[4] != 1 {
            return Err(corrupt(4, format!("unsupported version {}", b[4])));
        }
        chunk::check_hash_version(b, hash).map_err(|(at, r)| corrupt(at, r))?;
        let chunks = chunk::chunk_table(b, 8, usize::from(b[6]), b.len() - oid_len)
            .map_err(|(at, r)| corrupt(at, r))?;
        let fo = chunk::require(&chunks, b"OIDF", 8).map_err(|(at, r)| corrupt(at, r))?;
        let ol = chunk::require(&chunks, b"OIDL", 8).map_err(|(at, r)| corrupt(at, r))?;
        let cd = chunk::require(&chunks, b"CDAT", 8).map_err(|(at, r)| corrupt(at, r))?;
        if fo.len() != 1024 {
            return Err(corrupt(fo.start, "fan-out chunk has the wrong size".into()));
        }
        let count = chunk::validate_fanout(b, fo.start).map_err(|(at, r)| corrupt(at, r))?;
        if ol.len() != count as usize * oid_len || cd.len() != count as usize * (oid_len + 16) {
            return Err(corrupt(
                ol.start,
                "commit chunks do not fit the fan-out count".into(),
            ));
        }
        // Filters are an optimisation: ones that do not fit are ignored, not an error.
        let bloom = match (chunk::find(&chunks, b"BIDX"), chunk::find(&chunks, b"BDAT")) {
            (Some(ix), Some(bd)) if ix.len() == count as usize * 4 && bd.len() >= 12 => {
                let version = be32(b, bd.start);
                let hashes = be32(b, bd.start + 4);
                // Every end offset at or after the one before, the last within the data: a
                // filter sliced from a neighbour's bytes would rule out commits wrongly.
                let data_len = (bd.end - bd.start - 12) as u64;
                let mut prev = 0u64;
                let ordered = (0..count as usize).all(|i| {
                    let end = u64::from(be32(b, ix.start + i * 4));
                    let ok = end >= prev && end <= data_len;
                    prev = end;
                    ok
                });
                (ordered && (version == 1 || version == 2) && (1..=32).contains(&hashes)).then_some(
                    BloomChunks {
                        index: ix.start,
                        data: (bd.start + 12, bd.end),
                        version,
                        hashes,
                    },
                )
            }
            _ => None,
        };
        Ok(Layer {
            path: path.to_path_buf(),
            count,
            hash,
            fanout: fo.start,
            oids: ol.start,
            cdat: cd.start,
            edges: chunk::find(&chunks, b"EDGE").map(|r| (r.start, r.end)),
            bloom,
            data,
        })
    }

    /// Bytes per commit of `CDAT`: the root tree's id, two parent positions, generation and time.
    fn cdat_width(&self) -> usize {
        self.hash.id_len() + 16
    }

    fn lookup(&self, id: &ObjectId) -> Option<u32> {
        chunk::fanout_search(
            self.data.bytes(),
            self.fanout,
            self.oids,
            self.hash.id_len(),
            self.count,
            id,
        )
    }
}

/// A commit-graph (one file, or a chain of layers with the base first).
#[derive(Debug)]
pub struct CommitGraphFile {
    layers: Vec<Layer>,
    /// Global position of each layer's first commit.
    starts: Vec<u32>,
    total: u32,
}

impl CommitGraphFile {
    /// Whether the object directory `objects` has a commit-graph file or chain (two `stat`s; the
    /// file is not checked).
    pub fn exists(objects: &Path) -> bool {
        let info = objects.join("info");
        info.join("commit-graphs/commit-graph-chain").is_file()
            || info.join("commit-graph").is_file()
    }

    /// Opens the commit-graph of the object directory `objects`, if there is one. A chain takes
    /// precedence over a single file, as in git. Its ids must be of `hash`, the repository's.
    pub fn open(objects: &Path, hash: HashKind) -> Result<Option<CommitGraphFile>, OdbError> {
        let info = objects.join("info");
        let chain = info.join("commit-graphs").join("commit-graph-chain");
        let mut paths = Vec::new();
        match fs::read_to_string(&chain) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.is_empty()) {
                    if line.len() != hash.hex_len() || !line.bytes().all(|c| c.is_ascii_hexdigit())
                    {
                        return Err(OdbError::Corrupt {
                            path: chain.clone(),
                            offset: None,
                            reason: format!("invalid layer name {line:?}"),
                        });
                    }
                    paths.push(
                        info.join("commit-graphs")
                            .join(format!("graph-{line}.graph")),
                    );
                }
            }
            Err(_) => {
                let single = info.join("commit-graph");
                if single.is_file() {
                    paths.push(single);
                }
            }
        }
        if paths.is_empty() {
            return Ok(None);
        }
        let mut layers = Vec::new();
        let mut starts = Vec::new();
        let mut total: u32 = 0;
        for p in paths {
            let layer = Layer::open(&p, hash)?;
            starts.push(total);
            total = total
                .checked_add(layer.count)
                .ok_or_else(|| OdbError::Corrupt {
                    path: p.clone(),
                    offset: None,
                    reason: "too many commits".into(),
                })?;
            layers.push(layer);
        }
        Ok(Some(CommitGraphFile {
            layers,
            starts,
            total,
        }))
    }

    /// The hash of its ids (the repository's, checked on open).
    pub fn hash(&self) -> HashKind {
        self.layers.first().map_or(HashKind::Sha1, |l| l.hash)
    }

    /// Whether some layer carries changed-path filters.
    pub fn has_changed_paths(&self) -> bool {
        self.layers.iter().any(|l| l.bloom.is_some())
    }

    /// Number of commits across all layers.
    pub fn len(&self) -> u32 {
        self.total
    }

    /// Whether the graph lists no commit.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn layer_of(&self, pos: u32) -> Option<(&Layer, usize)> {
        let l = self.starts.partition_point(|&s| s <= pos).checked_sub(1)?;
        let layer = &self.layers[l];
        let local = pos - self.starts[l];
        (local < layer.count).then_some((layer, local as usize))
    }

    /// Global position of `id`.
    pub fn lookup(&self, id: &ObjectId) -> Option<u32> {
        self.layers
            .iter()
            .zip(&self.starts)
            .find_map(|(l, &s)| l.lookup(id).map(|p| p + s))
    }

    /// The id at global position `pos`.
    pub fn oid(&self, pos: u32) -> Option<ObjectId> {
        let (layer, local) = self.layer_of(pos)?;
        let at = layer.oids + local * layer.hash.id_len();
        ObjectId::from_raw(layer.hash, layer.data.bytes().get(at..)?)
    }

    /// The committer time of the commit at `pos`.
    pub fn commit_time(&self, pos: u32) -> Option<i64> {
        let (layer, local) = self.layer_of(pos)?;
        let b = layer.data.bytes();
        let at = layer.cdat + local * layer.cdat_width() + layer.hash.id_len() + 8;
        let high = u64::from(be32(b, at) & 3);
        Some(((high << 32) | u64::from(be32(b, at + 4))) as i64)
    }

    /// The changed-path filter of the commit at `pos` (paths changed against its first parent),
    /// when the commit-graph has one for it.
    pub fn changed_paths(&self, pos: u32) -> Option<ChangedPaths<'_>> {
        let (layer, local) = self.layer_of(pos)?;
        let bloom = layer.bloom?;
        let b = layer.data.bytes();
        let end = be32(b, bloom.index + local * 4) as usize;
        let start = match local {
            0 => 0,
            _ => be32(b, bloom.index + (local - 1) * 4) as usize,
        };
        let bits = b.get(bloom.data.0 + start..bloom.data.0 + end)?;
        (bloom.data.0 + end <= bloom.data.1 && !bits.is_empty()).then_some(ChangedPaths {
            bits,
            version: bloom.version,
            hashes: bloom.hashes,
        })
    }

    /// Appends the parents' global positions of the commit at `pos` to `out`. Positions are
    /// checked against the number of commits; a bad one is an error naming the layer file.
    pub fn parents(&self, pos: u32, out: &mut Vec<u32>) -> Result<(), OdbError> {
        let (layer, local) = self
            .layer_of(pos)
            .ok_or(OdbError::Missing(ObjectId::NULL))?;
        let b = layer.data.bytes();
        let at = layer.cdat + local * layer.cdat_width() + layer.hash.id_len();
        let corrupt = |reason: String| OdbError::Corrupt {
            path: layer.path.clone(),
            offset: Some(at as u64),
            reason,
        };
        let check = |p: u32| {
            if p < self.total {
                Ok(p)
            } else {
                Err(corrupt(format!("parent position {p} is out of range")))
            }
        };
        let p1 = be32(b, at);
        let p2 = be32(b, at + 4);
        if p1 == NO_PARENT {
            return Ok(());
        }
        out.push(check(p1)?);
        if p2 == NO_PARENT {
            return Ok(());
        }
        if p2 & EXTRA_EDGES == 0 {
            out.push(check(p2)?);
            return Ok(());
        }
        let (start, end) = layer
            .edges
            .ok_or_else(|| corrupt("octopus merge without an EDGE chunk".into()))?;
        let mut i = (p2 & !EXTRA_EDGES) as usize;
        loop {
            let e_at = start + i * 4;
            if e_at + 4 > end {
                return Err(corrupt("extra edge list runs past its chunk".into()));
            }
            let e = be32(b, e_at);
            out.push(check(e & !EXTRA_EDGES)?);
            if e & EXTRA_EDGES != 0 {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// One commit's changed-path Bloom filter, as git writes it (`Documentation/gitformat-commit-graph`
/// and bloom.c): every path changed against the first parent and each of its leading directories
/// is a key, hashed with murmur3 under two seeds into `hashes` bit positions.
#[derive(Debug, Clone, Copy)]
pub struct ChangedPaths<'a> {
    bits: &'a [u8],
    version: u32,
    hashes: u32,
}

impl ChangedPaths<'_> {
    /// Whether `path` (a full path such as `src/lib.rs`, or a directory such as `src`) may have
    /// changed: `Some(false)` when the filter rules it out, `Some(true)` when it may have, `None`
    /// when this filter cannot tell (git's version-1 hash is wrong for bytes >= 0x80).
    pub fn may_contain(&self, path: &[u8]) -> Option<bool> {
        if self.version == 1 && path.iter().any(|&c| c >= 0x80) {
            return None;
        }
        let h0 = murmur3(0x293a_e76f, path);
        let h1 = murmur3(0x7e64_6e2c, path);
        let bits = self.bits.len() as u64 * 8;
        Some((0..self.hashes).all(|i| {
            let at = u64::from(h0.wrapping_add(i.wrapping_mul(h1))) % bits;
            self.bits[(at / 8) as usize] & (1 << (at % 8)) != 0
        }))
    }
}

/// MurmurHash3 x86_32, git's `murmur3_seeded_v2` (bytes read unsigned).
fn murmur3(seed: u32, data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &b) in tail.iter().enumerate() {
            k ^= u32::from(b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::murmur3;

    #[test]
    fn murmur3_matches_gits_test_vectors() {
        // t/helper/test-bloom.c and t0095-bloom.sh: `test-tool bloom get_murmur3 ""` -> 0x00000000,
        // "Hello world!" -> 0x627b0c2c, and the seeded vector from t0095's "with seed".
        assert_eq!(murmur3(0, b""), 0);
        assert_eq!(murmur3(0, b"Hello world!"), 0x627b_0c2c);
        assert_eq!(
            murmur3(0, b"The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
    }
}
