//! The commits of a load by node number: what the bulk source gave, what the walk read on
//! demand, parents resolved to node numbers.

use super::*;
use crate::graph::commit_graph_file::CommitGraphFile;
use crate::odb::{OdbError, OdbReader};
use crate::oid::{ObjectId, OidMap};
use std::cmp::Reverse;
use std::collections::HashMap;

/// Marks a parent slot whose commit is not (yet) a node.
pub(super) const UNRESOLVED: u32 = u32::MAX;

/// Where a node's metadata comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Meta {
    /// Decoded: batch number and position.
    Decoded(u32, u32),
    /// Only topology is known (commit-graph); filled in later.
    Pending,
}

/// The walk's view of commits: numbered nodes with times and parent node numbers.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    pub(super) oids: Vec<ObjectId>,
    pub(super) times: Vec<i64>,
    pub(super) meta: Vec<Meta>,
    /// CSR of parent node numbers (`UNRESOLVED` where the parent is not a node yet).
    pub(super) parent_end: Vec<u32>,
    pub(super) parents: Vec<u32>,
    /// Ids behind `UNRESOLVED` slots, by slot position in `parents`.
    pub(super) unresolved: HashMap<u32, ObjectId>,
    /// Id -> node for the bulk nodes (sorted by id), then a map for nodes added one by one.
    pub(super) sorted: Vec<(ObjectId, u32)>,
    pub(super) added: HashMap<ObjectId, Option<u32>>,
}

impl Nodes {
    pub(super) fn len(&self) -> usize {
        self.oids.len()
    }

    pub(super) fn parent_range(&self, n: u32) -> std::ops::Range<usize> {
        let s = if n == 0 {
            0
        } else {
            self.parent_end[n as usize - 1]
        };
        s as usize..self.parent_end[n as usize] as usize
    }

    pub(super) fn lookup(&self, id: &ObjectId) -> Option<Option<u32>> {
        if let Ok(p) = self.sorted.binary_search_by(|e| e.0.cmp(id)) {
            return Some(Some(self.sorted[p].1));
        }
        self.added.get(id).copied()
    }

    /// Nodes from decoded batches, parents resolved in parallel.
    pub(super) fn from_batches(batches: &[Batch]) -> Nodes {
        let mut nodes = Nodes::default();
        for (b, batch) in batches.iter().enumerate() {
            for (i, d) in batch.commits.iter().enumerate() {
                nodes.sorted.push((d.oid, nodes.oids.len() as u32));
                nodes.oids.push(d.oid);
                nodes.times.push(d.commit_time);
                nodes.meta.push(Meta::Decoded(b as u32, i as u32));
            }
        }
        nodes.sorted.par_sort_unstable_by_key(|e| e.0);
        // The same commit in two packs: keep one node.
        nodes.sorted.dedup_by_key(|e| e.0);
        // One hash probe per parent instead of a binary search with a cache miss per level.
        let mut map: OidMap<u32> = OidMap::default();
        map.reserve(nodes.sorted.len());
        map.extend(nodes.sorted.iter().copied());
        let resolve = |id: &ObjectId| map.get(id).copied().unwrap_or(UNRESOLVED);
        let per_batch: Vec<Vec<u32>> = batches
            .par_iter()
            .map(|b| b.parents.iter().map(resolve).collect())
            .collect();
        for (batch, resolved) in batches.iter().zip(per_batch) {
            for d in &batch.commits {
                let start = nodes.parents.len() as u32;
                for k in 0..d.parents_len {
                    let slot = (d.parents_start + k) as usize;
                    if resolved[slot] == UNRESOLVED {
                        nodes.unresolved.insert(start + k, batch.parents[slot]);
                    }
                    nodes.parents.push(resolved[slot]);
                }
                nodes.parent_end.push(nodes.parents.len() as u32);
            }
        }
        nodes
    }

    /// Nodes from a commit-graph file: node number = position in the file.
    pub(super) fn from_commit_graph(cg: &CommitGraphFile) -> Result<Nodes, OdbError> {
        const UNIT: u32 = 16 * 1024;
        let n = cg.len();
        // Per unit of positions: ids, times, flattened parents and their ends (unit-local).
        type Unit = (Vec<ObjectId>, Vec<i64>, Vec<u32>, Vec<u32>);
        let units: Vec<Unit> = (0..n.div_ceil(UNIT))
            .into_par_iter()
            .map(|u| {
                let range = u * UNIT..((u + 1) * UNIT).min(n);
                let len = range.len();
                let mut unit: Unit = (
                    Vec::with_capacity(len),
                    Vec::with_capacity(len),
                    Vec::with_capacity(len + len / 8),
                    Vec::with_capacity(len),
                );
                for pos in range {
                    unit.0.push(cg.oid(pos).unwrap_or(cg.hash().null()));
                    unit.1.push(cg.commit_time(pos).unwrap_or(0));
                    cg.parents(pos, &mut unit.2)?;
                    unit.3.push(unit.2.len() as u32);
                }
                Ok(unit)
            })
            .collect::<Result<_, OdbError>>()?;
        // Flatten the units (position = id order).
        let mut oids_p: Vec<ObjectId> = Vec::with_capacity(n as usize);
        let mut times_p: Vec<i64> = Vec::with_capacity(n as usize);
        let mut parents_p: Vec<u32> = Vec::new();
        let mut end_p: Vec<u32> = Vec::with_capacity(n as usize);
        for (oids, times, parents, ends) in units {
            let base = parents_p.len() as u32;
            oids_p.extend(oids);
            times_p.extend(times);
            parents_p.extend(parents);
            end_p.extend(ends.into_iter().map(|e| e + base));
        }
        // Number nodes newest first rather than in id order: the walk, the ordering and the
        // assembly then read memory almost sequentially instead of missing the cache on every
        // commit (the difference is 3x at a million commits).
        let mut keys: Vec<(Reverse<i64>, u32)> = times_p
            .iter()
            .enumerate()
            .map(|(pos, &t)| (Reverse(t), pos as u32))
            .collect();
        keys.par_sort_unstable();
        let perm: Vec<u32> = keys.into_iter().map(|(_, pos)| pos).collect();
        let mut node_of = vec![0u32; n as usize];
        for (k, &pos) in perm.iter().enumerate() {
            node_of[pos as usize] = k as u32;
        }
        let range_p = |pos: usize| {
            let s = if pos == 0 { 0 } else { end_p[pos - 1] };
            s as usize..end_p[pos] as usize
        };
        let mut nodes = Nodes {
            oids: perm.par_iter().map(|&p| oids_p[p as usize]).collect(),
            times: perm.par_iter().map(|&p| times_p[p as usize]).collect(),
            meta: vec![Meta::Pending; n as usize],
            sorted: oids_p
                .iter()
                .zip(&node_of)
                .map(|(&id, &k)| (id, k))
                .collect(),
            ..Nodes::default()
        };
        let lists: Vec<Vec<u32>> = perm
            .par_chunks(UNIT as usize)
            .map(|chunk| {
                let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 8);
                for &p in chunk {
                    out.extend(
                        parents_p[range_p(p as usize)]
                            .iter()
                            .map(|&q| node_of[q as usize]),
                    );
                    out.push(u32::MAX - 1);
                }
                out
            })
            .collect();
        nodes.parents.reserve(parents_p.len());
        nodes.parent_end.reserve(n as usize);
        for list in lists {
            for v in list {
                if v == u32::MAX - 1 {
                    nodes.parent_end.push(nodes.parents.len() as u32);
                } else {
                    nodes.parents.push(v);
                }
            }
        }
        // Positions are in id order already; a hostile file may not be, so sort to be safe.
        if !nodes.sorted.windows(2).all(|w| w[0].0 < w[1].0) {
            nodes.sorted.par_sort_unstable_by_key(|e| e.0);
        }
        Ok(nodes)
    }
}

/// Reads commits the bulk source did not have.
pub(super) struct OnDemand<'r> {
    pub(super) reader: OdbReader<'r>,
    pub(super) buf: Vec<u8>,
    pub(super) batch: Batch,
    pub(super) batch_number: u32,
    /// Time spent reading commits one by one (loose objects, commits the bulk source lacked).
    pub(super) spent: std::time::Duration,
}

impl OnDemand<'_> {
    /// The node for `id`, reading and adding it if needed. `child` is the commit that names it as
    /// a parent (for shallow boundaries and messages).
    pub(super) fn node(
        &mut self,
        nodes: &mut Nodes,
        id: &ObjectId,
        child: Option<&ObjectId>,
        shallow: &[ObjectId],
        problems: &mut Vec<String>,
    ) -> Option<u32> {
        if let Some(found) = nodes.lookup(id) {
            return found;
        }
        let started = std::time::Instant::now();
        let result = self
            .batch
            .read_commit(
                &mut self.reader,
                &mut self.buf,
                id,
                child,
                shallow,
                problems,
            )
            .map(|i| {
                let d = self.batch.commits[i as usize];
                let n = nodes.len() as u32;
                nodes.oids.push(*id);
                nodes.times.push(d.commit_time);
                nodes.meta.push(Meta::Decoded(self.batch_number, i));
                let start = nodes.parents.len() as u32;
                for (k, p) in self.batch.parents_of(&d).iter().enumerate() {
                    let resolved = nodes.lookup(p).flatten().unwrap_or(UNRESOLVED);
                    if resolved == UNRESOLVED {
                        nodes.unresolved.insert(start + k as u32, *p);
                    }
                    nodes.parents.push(resolved);
                }
                nodes.parent_end.push(nodes.parents.len() as u32);
                n
            });
        nodes.added.insert(*id, result);
        self.spent += started.elapsed();
        result
    }
}
