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
use crate::oid::{OID_LEN, ObjectId};

const NO_PARENT: u32 = 0x7000_0000;
const EXTRA_EDGES: u32 = 0x8000_0000;
const CDAT_WIDTH: usize = OID_LEN + 16;

/// One validated graph file of a chain.
#[derive(Debug)]
struct Layer {
    path: PathBuf,
    data: Mapped,
    count: u32,
    fanout: usize,
    oids: usize,
    cdat: usize,
    edges: Option<(usize, usize)>,
}

impl Layer {
    fn open(path: &Path) -> Result<Layer, OdbError> {
        let data = Mapped::open(path).map_err(|e| OdbError::io(path, e))?;
        let corrupt = |offset: usize, reason: String| OdbError::Corrupt {
            path: path.to_path_buf(),
            offset: Some(offset as u64),
            reason,
        };
        let b = data.bytes();
        if b.len() < 8 + 12 + OID_LEN || &b[..4] != b"CGPH" {
            return Err(corrupt(0, "missing CGPH signature".into()));
        }
        if b[4] != 1 {
            return Err(corrupt(4, format!("unsupported version {}", b[4])));
        }
        if b[5] != 1 {
            return Err(corrupt(5, format!("unsupported hash version {}", b[5])));
        }
        let chunks = chunk::chunk_table(b, 8, usize::from(b[6]), b.len() - OID_LEN)
            .map_err(|(at, r)| corrupt(at, r))?;
        let fo = chunk::require(&chunks, b"OIDF", 8).map_err(|(at, r)| corrupt(at, r))?;
        let ol = chunk::require(&chunks, b"OIDL", 8).map_err(|(at, r)| corrupt(at, r))?;
        let cd = chunk::require(&chunks, b"CDAT", 8).map_err(|(at, r)| corrupt(at, r))?;
        if fo.len() != 1024 {
            return Err(corrupt(fo.start, "fan-out chunk has the wrong size".into()));
        }
        let count = chunk::validate_fanout(b, fo.start).map_err(|(at, r)| corrupt(at, r))?;
        if ol.len() != count as usize * OID_LEN || cd.len() != count as usize * CDAT_WIDTH {
            return Err(corrupt(
                ol.start,
                "commit chunks do not fit the fan-out count".into(),
            ));
        }
        Ok(Layer {
            path: path.to_path_buf(),
            count,
            fanout: fo.start,
            oids: ol.start,
            cdat: cd.start,
            edges: chunk::find(&chunks, b"EDGE").map(|r| (r.start, r.end)),
            data,
        })
    }

    fn lookup(&self, id: &ObjectId) -> Option<u32> {
        chunk::fanout_search(
            self.data.bytes(),
            self.fanout,
            self.oids,
            OID_LEN,
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
    /// Opens the commit-graph of the object directory `objects`, if there is one. A chain takes
    /// precedence over a single file, as in git.
    pub fn open(objects: &Path) -> Result<Option<CommitGraphFile>, OdbError> {
        let info = objects.join("info");
        let chain = info.join("commit-graphs").join("commit-graph-chain");
        let mut paths = Vec::new();
        match fs::read_to_string(&chain) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.is_empty()) {
                    if line.len() != 40 || !line.bytes().all(|c| c.is_ascii_hexdigit()) {
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
            let layer = Layer::open(&p)?;
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
        let at = layer.oids + local * OID_LEN;
        ObjectId::from_slice(layer.data.bytes().get(at..)?)
    }

    /// The committer time of the commit at `pos`.
    pub fn commit_time(&self, pos: u32) -> Option<i64> {
        let (layer, local) = self.layer_of(pos)?;
        let b = layer.data.bytes();
        let at = layer.cdat + local * CDAT_WIDTH + OID_LEN + 8;
        let high = u64::from(be32(b, at) & 3);
        Some(((high << 32) | u64::from(be32(b, at + 4))) as i64)
    }

    /// Appends the parents' global positions of the commit at `pos` to `out`. Positions are
    /// checked against the number of commits; a bad one is an error naming the layer file.
    pub fn parents(&self, pos: u32, out: &mut Vec<u32>) -> Result<(), OdbError> {
        let (layer, local) = self
            .layer_of(pos)
            .ok_or(OdbError::Missing(ObjectId::NULL))?;
        let b = layer.data.bytes();
        let at = layer.cdat + local * CDAT_WIDTH + OID_LEN;
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
