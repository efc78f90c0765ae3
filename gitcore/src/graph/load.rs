//! Loading the whole graph.
//!
//! 1. A bulk source gives most commits at once: the commit-graph file (ids, parents, times, no
//!    inflation at all) or, without one, a parallel scan that decodes every commit in the packs.
//!    Parents are resolved to node numbers in parallel.
//! 2. A walk from the tips marks what is reachable; commits the bulk source lacks (loose ones, or
//!    newer than a stale commit-graph) are read one by one as the walk reaches them.
//! 3. Kahn's algorithm orders the reachable commits children-first, newest ready commit first.
//! 4. Commits are appended parents-first; with the commit-graph source the author and subject are
//!    filled in afterwards ([`CommitGraph::fill_metadata`]), so the topology is ready first.
//!
//! Before all that, a first screen can come from the newest commits alone
//! ([`CommitGraph::load_newest`], in `newest`): a date-ordered walk from the tips, as `git log`
//! prints its first rows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rayon::prelude::*;

use super::RefKind;
use crate::refs::Head;

use super::commit_graph_file::CommitGraphFile;
use super::store::{CHUNK, Chunk, NewCommit};
use super::tips::read_tips;
use super::{CommitGraph, Csr, People};
use crate::object::CommitRef;
use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::ObjectId;
use crate::repo::{RepoError, Repository};

mod newest;
mod nodes;
mod scan;

pub use newest::{NewestCommits, NewestOptions};

use nodes::*;
use scan::*;

/// How a load is done.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Read the topology from `objects/info/commit-graph` (or a chain) when there is one.
    pub use_commit_graph: bool,
    /// Without a usable commit-graph: decode every commit found in the packs in parallel before
    /// walking (fast for whole histories). When false, commits are read one by one as the walk
    /// reaches them.
    pub scan_packs: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            use_commit_graph: true,
            scan_packs: true,
        }
    }
}

/// A commit decoded but not yet placed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decoded {
    pub(crate) oid: ObjectId,
    pub(crate) parents_start: u32,
    pub(crate) parents_len: u32,
    /// Person index local to the batch.
    pub(crate) author: u32,
    pub(crate) author_time: i64,
    pub(crate) author_tz: i16,
    pub(crate) commit_time: i64,
    pub(crate) summary_start: u32,
    pub(crate) summary_len: u32,
}

/// Commits decoded by one worker.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) commits: Vec<Decoded>,
    pub(crate) parents: Vec<ObjectId>,
    pub(crate) people: People,
    pub(crate) summaries: String,
}

impl Batch {
    /// Parses `data` as commit `oid` and appends it.
    pub(crate) fn decode(
        &mut self,
        oid: ObjectId,
        data: &[u8],
    ) -> Result<u32, crate::object::ParseError> {
        let c = CommitRef::parse(data)?;
        let parents_start = self.parents.len() as u32;
        self.parents.extend(c.parents());
        let author = self
            .people
            .intern_raw(c.author.name, c.author.email, c.encoding);
        let summary = c.summary();
        let summary = super::store::clip(&summary);
        let summary_start = self.summaries.len() as u32;
        self.summaries.push_str(summary);
        self.commits.push(Decoded {
            oid,
            parents_start,
            parents_len: self.parents.len() as u32 - parents_start,
            author,
            author_time: c.author.time,
            author_tz: c.author.tz_minutes.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            commit_time: c.committer.time,
            summary_start,
            summary_len: summary.len() as u32,
        });
        Ok(self.commits.len() as u32 - 1)
    }

    /// Reads commit `id` and decodes it into the batch, returning its position. `child` is the
    /// commit naming it as a parent: a parent missing beyond a shallow boundary is expected;
    /// any other failure is added to `problems` (naming the commit) and gives `None`.
    pub(crate) fn read_commit(
        &mut self,
        reader: &mut OdbReader<'_>,
        buf: &mut Vec<u8>,
        id: &ObjectId,
        child: Option<&ObjectId>,
        shallow: &[ObjectId],
        problems: &mut Vec<String>,
    ) -> Option<u32> {
        match reader.read_kind(id, ObjectKind::Commit, buf) {
            Ok(()) => match self.decode(*id, buf) {
                Ok(i) => Some(i),
                Err(e) => {
                    problems.push(format!("commit {id}: {e}"));
                    None
                }
            },
            Err(e) => {
                problems.extend(read_problem(e, child, shallow));
                None
            }
        }
    }

    /// One batch holding `batches` in order, with one list of people: a segment's units each
    /// interned the same authors, and a million commits made a thousand copies of them.
    pub(crate) fn merge(batches: Vec<Batch>) -> Batch {
        let mut out = Batch::default();
        out.commits
            .reserve_exact(batches.iter().map(|b| b.commits.len()).sum());
        out.parents
            .reserve_exact(batches.iter().map(|b| b.parents.len()).sum());
        out.summaries
            .reserve_exact(batches.iter().map(|b| b.summaries.len()).sum());
        for b in batches {
            let people: Vec<u32> = b
                .people
                .list
                .iter()
                .map(|p| out.people.intern(&p.name, &p.email))
                .collect();
            let parents_base = out.parents.len() as u32;
            let summaries_base = out.summaries.len() as u32;
            out.parents.extend_from_slice(&b.parents);
            out.summaries.push_str(&b.summaries);
            out.commits.extend(b.commits.iter().map(|d| Decoded {
                parents_start: d.parents_start + parents_base,
                summary_start: d.summary_start + summaries_base,
                author: people.get(d.author as usize).copied().unwrap_or(0),
                ..*d
            }));
        }
        out.seal();
        out
    }

    /// Frees what only decoding needed and the spare capacity: batches wait, all of them, until
    /// the graph is assembled.
    pub(crate) fn seal(&mut self) {
        self.commits.shrink_to_fit();
        self.parents.shrink_to_fit();
        self.summaries.shrink_to_fit();
        self.people.seal();
    }

    pub(crate) fn parents_of(&self, d: &Decoded) -> &[ObjectId] {
        &self.parents[d.parents_start as usize..(d.parents_start + d.parents_len) as usize]
    }

    pub(crate) fn summary_of(&self, d: &Decoded) -> &str {
        self.summaries
            .get(d.summary_start as usize..(d.summary_start + d.summary_len) as usize)
            .unwrap_or_default()
    }
}

/// What a failed read of a commit means: nothing when it is a parent missing beyond a shallow
/// boundary (expected there), else the problem to report, naming the child that needed it.
pub(crate) fn read_problem(
    e: OdbError,
    child: Option<&ObjectId>,
    shallow: &[ObjectId],
) -> Option<String> {
    match (e, child) {
        (OdbError::Missing(_), Some(c)) if shallow.binary_search(c).is_ok() => None,
        (e, Some(c)) => Some(format!("parent of {c}: {e}")),
        (e, None) => Some(e.to_string()),
    }
}

impl CommitGraph {
    /// Loads the whole graph, metadata included, with default options.
    pub fn load(repo: &Repository) -> Result<CommitGraph, RepoError> {
        Self::load_with(repo, LoadOptions::default())
    }

    /// Loads the whole graph, metadata included.
    pub fn load_with(repo: &Repository, options: LoadOptions) -> Result<CommitGraph, RepoError> {
        let mut graph = Self::load_topology_with(repo, options)?;
        graph.fill_metadata(repo);
        Ok(graph)
    }

    /// Loads the topology: with a commit-graph file, authors, author times and subjects are left
    /// empty until [`CommitGraph::fill_metadata`] runs (see [`CommitGraph::has_metadata`]).
    pub fn load_topology_with(
        repo: &Repository,
        options: LoadOptions,
    ) -> Result<CommitGraph, RepoError> {
        let mut problems = Vec::new();
        let cg = if options.use_commit_graph {
            match CommitGraphFile::open(repo.odb().objects_dir(), repo.odb().hash()) {
                Ok(cg) => cg,
                Err(e) => {
                    problems.push(format!("commit-graph ignored: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let (snap, tip_problems, reader, tips) = read_tips(repo, true, cg.as_ref());
        problems.splice(0..0, tip_problems);
        let mut batches = Vec::new();
        let mut source = super::LoadSource::default();
        let mut nodes = match cg.as_ref().map(Nodes::from_commit_graph) {
            Some(Ok(nodes)) => {
                source.commit_graph = true;
                nodes
            }
            other => {
                if let Some(Err(e)) = other {
                    problems.push(format!("commit-graph ignored: {e}"));
                }
                if options.scan_packs {
                    let started = std::time::Instant::now();
                    let (b, p) = scan_packs(repo);
                    source.decode_time = started.elapsed();
                    source.decoded = b.iter().map(|b| b.commits.len()).sum();
                    problems.extend(p);
                    batches = b;
                }
                let nodes = Nodes::from_batches(&batches);
                // Parents are node numbers now (the unresolved ones kept by id in the nodes).
                for b in &mut batches {
                    b.parents = Vec::new();
                }
                nodes
            }
        };
        let mut on_demand = OnDemand {
            reader,
            buf: Vec::new(),
            batch: Batch::default(),
            batch_number: batches.len() as u32,
            spent: std::time::Duration::ZERO,
        };
        let shallow = &snap.shallow;

        // Walk from the tips, resolving parents the bulk source lacked.
        let mut tip_nodes = Vec::with_capacity(tips.len());
        for t in &tips {
            tip_nodes.push(on_demand.node(&mut nodes, &t.commit, None, shallow, &mut problems));
        }
        let order_nodes = walk(
            &mut nodes,
            tip_nodes.iter().flatten().copied().collect(),
            shallow,
            |nodes, id, child| on_demand.node(nodes, id, Some(child), shallow, &mut problems),
        );
        source.decoded += on_demand.batch.commits.len();
        source.decode_time += on_demand.spent;
        batches.push(on_demand.batch);
        let rows = topo_order(&nodes, &order_nodes);
        let mut graph = assemble(&nodes, &batches, &rows);
        graph.metadata_pending = nodes.meta.iter().any(|m| matches!(m, Meta::Pending));
        graph.source = source;

        graph.place_tips(repo, &tips, snap.head.clone());
        graph.shallow = Arc::new(snap.shallow.clone());
        graph.problems = problems;
        Ok(graph)
    }

    /// Rebuilds the id index and the children table from scratch.
    pub(crate) fn rebuild_indexes(&mut self) {
        let mut by_oid: Vec<u32> = (0..self.len as u32).collect();
        by_oid.par_sort_unstable_by_key(|&i| self.oid(i));
        self.by_oid = Arc::new(by_oid);
        self.by_oid_recent.clear();
        self.rebuild_children();
    }

    pub(crate) fn rebuild_children(&mut self) {
        let mut start = vec![0u32; self.len + 1];
        for i in 0..self.len as u32 {
            for &p in self.parents(i) {
                start[p as usize + 1] += 1;
            }
        }
        for i in 0..self.len {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; start[self.len] as usize];
        for i in 0..self.len as u32 {
            for &p in self.parents(i) {
                items[fill[p as usize] as usize] = i;
                fill[p as usize] += 1;
            }
        }
        self.children = Arc::new(Csr { start, items });
        self.children_extra.clear();
    }
}

/// Orders the reached nodes children-first, taking the newest ready commit (by committer date,
/// then id) next: Kahn's algorithm with that priority. Nodes are first ranked by (date, id) with a
/// parallel sort; when that ranking is already topological (no clock skew) it is the answer,
/// otherwise Kahn runs on ranks, whose arrays are laid out in nearly the order they are visited.
/// The nodes reachable from `stack` (the tips' nodes), each once, in the order first reached;
/// `resolve` finds (or adds) the node of a parent id the nodes do not resolve yet. A shallow
/// commit is a root, whatever parents are present (as git treats it).
fn walk(
    nodes: &mut Nodes,
    mut stack: Vec<u32>,
    shallow: &[ObjectId],
    mut resolve: impl FnMut(&mut Nodes, &ObjectId, &ObjectId) -> Option<u32>,
) -> Vec<u32> {
    let mut reachable = vec![false; nodes.len()];
    let mut order_nodes: Vec<u32> = Vec::new();
    while let Some(n) = stack.pop() {
        if reachable.len() <= n as usize {
            reachable.resize(nodes.len(), false);
        }
        if std::mem::replace(&mut reachable[n as usize], true) {
            continue;
        }
        order_nodes.push(n);
        if shallow.binary_search(&nodes.oids[n as usize]).is_ok() {
            let range = nodes.parent_range(n);
            nodes.parents[range].fill(UNRESOLVED);
            continue;
        }
        for slot in nodes.parent_range(n) {
            let mut p = nodes.parents[slot];
            if p == UNRESOLVED
                && let Some(id) = nodes.unresolved.remove(&(slot as u32))
            {
                let child = nodes.oids[n as usize];
                p = resolve(nodes, &id, &child).unwrap_or(UNRESOLVED);
                nodes.parents[slot] = p;
            }
            if p != UNRESOLVED {
                stack.push(p);
            }
        }
    }
    order_nodes
}

fn topo_order(nodes: &Nodes, reached: &[u32]) -> Vec<u32> {
    let n = reached.len();
    // Sort compact (newest first, node) keys; only runs of equal dates look at ids.
    let mut keys: Vec<(Reverse<i64>, u32)> = reached
        .iter()
        .map(|&x| (Reverse(nodes.times[x as usize]), x))
        .collect();
    keys.par_sort_unstable();
    let mut start = 0;
    while start < keys.len() {
        let mut end = start + 1;
        while end < keys.len() && keys[end].0 == keys[start].0 {
            end += 1;
        }
        if end - start > 1 {
            keys[start..end].sort_unstable_by_key(|&(_, x)| nodes.oids[x as usize]);
        }
        start = end;
    }
    let order: Vec<u32> = keys.into_iter().map(|(_, x)| x).collect();
    let mut rank = vec![u32::MAX; nodes.len()];
    for (r, &x) in order.iter().enumerate() {
        rank[x as usize] = r as u32;
    }
    let mut parent_end: Vec<u32> = Vec::with_capacity(n);
    let mut parents: Vec<u32> = Vec::with_capacity(n + n / 8);
    let mut topological = true;
    for (r, &x) in order.iter().enumerate() {
        for slot in nodes.parent_range(x) {
            let p = nodes.parents[slot];
            if p != UNRESOLVED && rank[p as usize] != u32::MAX {
                let pr = rank[p as usize];
                topological &= pr as usize > r;
                parents.push(pr);
            }
        }
        parent_end.push(parents.len() as u32);
    }
    if topological {
        return order;
    }
    let mut child_count = vec![0u32; n];
    for &p in &parents {
        child_count[p as usize] += 1;
    }
    let mut heap: BinaryHeap<Reverse<u32>> = (0..n as u32)
        .filter(|&r| child_count[r as usize] == 0)
        .map(Reverse)
        .collect();
    let mut rows = Vec::with_capacity(n);
    while let Some(Reverse(r)) = heap.pop() {
        rows.push(order[r as usize]);
        let start = if r == 0 {
            0
        } else {
            parent_end[r as usize - 1]
        };
        for &p in &parents[start as usize..parent_end[r as usize] as usize] {
            let c = &mut child_count[p as usize];
            *c -= 1;
            if *c == 0 {
                heap.push(Reverse(p));
            }
        }
    }
    rows
}

/// Appends the nodes parents-first (the reverse of `rows`) and builds the indexes.
fn assemble(nodes: &Nodes, batches: &[Batch], rows: &[u32]) -> CommitGraph {
    let n = rows.len();
    let mut people = People::default();
    let person_maps: Vec<Vec<u32>> = batches
        .iter()
        .map(|b| {
            b.people
                .list
                .iter()
                .map(|p| people.intern(&p.name, &p.email))
                .collect()
        })
        .collect();
    let nobody = if nodes.meta.iter().any(|m| matches!(m, Meta::Pending)) {
        people.intern("", "")
    } else {
        0
    };
    // rows are children-first; commit index i is row n - 1 - i.
    let mut index_of = vec![u32::MAX; nodes.len()];
    for (row, &x) in rows.iter().enumerate() {
        index_of[x as usize] = (n - 1 - row) as u32;
    }
    // Chunks are independent once every node has its index: build them on all cores (the
    // gathers from node order into commit order are what costs), then number generations.
    let chunks: Vec<Chunk> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let range = c * CHUNK..((c + 1) * CHUNK).min(n);
            let mut chunk = Chunk::with_capacity(range.len());
            let mut ps: Vec<u32> = Vec::new();
            for i in range {
                let x = rows[n - 1 - i];
                ps.clear();
                for slot in nodes.parent_range(x) {
                    let p = nodes.parents[slot];
                    // git lists a parent named twice only once.
                    if p != UNRESOLVED && !ps.contains(&index_of[p as usize]) {
                        ps.push(index_of[p as usize]);
                    }
                }
                let oid = nodes.oids[x as usize];
                let commit = match nodes.meta[x as usize] {
                    Meta::Decoded(b, k) => {
                        let batch = &batches[b as usize];
                        let d = &batch.commits[k as usize];
                        NewCommit {
                            oid,
                            parents: &ps,
                            author: person_maps[b as usize][d.author as usize],
                            author_time: d.author_time,
                            author_tz: d.author_tz,
                            commit_time: d.commit_time,
                            summary: batch.summary_of(d),
                        }
                    }
                    Meta::Pending => NewCommit {
                        oid,
                        parents: &ps,
                        author: nobody,
                        author_time: nodes.times[x as usize],
                        author_tz: 0,
                        commit_time: nodes.times[x as usize],
                        summary: "",
                    },
                };
                chunk.push_commit(&commit, 0);
            }
            chunk
        })
        .collect();
    let mut graph = CommitGraph {
        chunks: chunks.into_iter().map(Arc::new).collect(),
        len: n,
        ..CommitGraph::default()
    };
    graph.number_generations();
    graph.shrink();
    graph.people = Arc::new(people);
    // The node index is sorted by id already: map it to commit indices instead of sorting again.
    let by_oid: Vec<u32> = nodes
        .sorted
        .iter()
        .map(|&(_, n)| index_of[n as usize])
        .chain(
            nodes
                .added
                .values()
                .flatten()
                .map(|&n| index_of[n as usize]),
        )
        .filter(|&i| i != u32::MAX)
        .collect();
    let mut by_oid = by_oid;
    if !nodes.added.is_empty() {
        by_oid.par_sort_unstable_by_key(|&i| graph.oid(i));
    }
    graph.by_oid = Arc::new(by_oid);
    graph.rebuild_children();
    graph
}

/// A ref as a remote lists it (`ls-refs`), for a graph of fetched commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRef {
    /// Its full name (`refs/heads/main`).
    pub name: String,
    /// The object it names.
    pub target: ObjectId,
    /// For an annotated tag, the object it peels to.
    pub peeled: Option<ObjectId>,
}

/// The parents a commit object names (its `parent` header lines), read without decoding the
/// rest.
pub fn commit_parents(data: &[u8]) -> impl Iterator<Item = ObjectId> + '_ {
    data.split(|&b| b == b'\n')
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix(b"parent "))
        .filter_map(ObjectId::from_hex)
}

/// A graph of fetched commits made one object at a time: [`CommitGraph::from_objects`] for a
/// caller whose objects are not all in memory at once (a history held compressed hands them
/// out a block at a time).
#[derive(Debug, Default)]
pub struct FetchedGraph {
    batch: Batch,
    problems: Vec<String>,
}

impl FetchedGraph {
    /// A graph for about `commits` commits (its tables sized once rather than doubled: at a
    /// million commits the spare room of doubling is a hundred megabytes).
    pub fn with_capacity(commits: usize) -> FetchedGraph {
        let mut g = FetchedGraph::default();
        g.batch.commits.reserve_exact(commits);
        g.batch.parents.reserve_exact(commits + commits / 8);
        g
    }

    /// Takes one fetched object (commits count; the rest is skipped).
    pub fn add(&mut self, id: ObjectId, kind: ObjectKind, data: &[u8]) {
        if kind == ObjectKind::Commit
            && let Err(e) = self.batch.decode(id, data)
        {
            self.problems.push(format!("commit {id}: {e}"));
        }
    }

    /// The graph of the objects taken, as [`CommitGraph::from_objects`] makes it.
    pub fn finish(
        self,
        refs: &[ListedRef],
        head: Option<Head>,
        mut shallow: Vec<ObjectId>,
    ) -> CommitGraph {
        let mut problems = self.problems;
        let mut batches = vec![self.batch];
        let mut nodes = Nodes::from_batches(&batches);
        for b in &mut batches {
            b.parents = Vec::new();
        }
        shallow.sort();
        shallow.dedup();
        let node_of = |nodes: &Nodes, id: &ObjectId| nodes.lookup(id).flatten();
        let tips: Vec<super::tips::Tip> = refs
            .iter()
            .filter_map(|r| {
                let commit = r.peeled.unwrap_or(r.target);
                node_of(&nodes, &commit)?;
                Some(super::tips::Tip {
                    name: r.name.clone(),
                    kind: RefKind::of(&r.name),
                    target: r.target,
                    commit,
                })
            })
            .collect();
        let mut stack: Vec<u32> = tips
            .iter()
            .filter_map(|t| node_of(&nodes, &t.commit))
            .collect();
        if let Some(Head::Detached(id)) = &head
            && let Some(n) = node_of(&nodes, id)
        {
            stack.push(n);
        }
        let order_nodes = walk(&mut nodes, stack, &shallow, |nodes, id, child| {
            let found = nodes.lookup(id).flatten();
            if found.is_none() {
                problems.push(format!("parent {id} of {child} did not come"));
            }
            found
        });
        let rows = topo_order(&nodes, &order_nodes);
        let mut graph = assemble(&nodes, &batches, &rows);
        graph.source = super::LoadSource {
            decoded: batches.iter().map(|b| b.commits.len()).sum(),
            ..super::LoadSource::default()
        };
        let mut placed: Vec<super::GraphRef> = tips
            .iter()
            .filter_map(|t| {
                graph.find(&t.commit).map(|commit| super::GraphRef {
                    name: t.name.clone(),
                    kind: t.kind,
                    target: t.target,
                    commit,
                })
            })
            .collect();
        placed.sort_by(|a, b| a.commit.cmp(&b.commit).then_with(|| a.name.cmp(&b.name)));
        graph.refs = Arc::new(placed);
        graph.head_commit = match &head {
            Some(Head::Branch { name, .. }) => refs
                .iter()
                .find(|r| &r.name == name)
                .and_then(|r| graph.find(&r.peeled.unwrap_or(r.target))),
            Some(Head::Detached(id)) => graph.find(id),
            _ => None,
        };
        graph.head = head;
        graph.shallow = Arc::new(shallow);
        graph.problems = problems;
        graph
    }
}

impl CommitGraph {
    /// The graph of fetched commits: `objects` are what a fetch brought (commits among them;
    /// the rest is skipped), `refs` what the remote listed, `head` its HEAD, and `shallow` the
    /// commits a deepened fetch cut (roots here; their parents did not come). Refs whose commit
    /// did not come (a ref naming a tree, a tag past the cut) are left out; a commit that does
    /// not parse is a problem, not an error. The same graph as loading a clone of those objects
    /// and refs from disk.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = (ObjectId, ObjectKind, &'a [u8])>,
        refs: &[ListedRef],
        head: Option<Head>,
        shallow: Vec<ObjectId>,
    ) -> CommitGraph {
        let mut fetched = FetchedGraph::default();
        for (id, kind, data) in objects {
            fetched.add(id, kind, data);
        }
        fetched.finish(refs, head, shallow)
    }
}
