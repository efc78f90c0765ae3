//! Loading the whole graph: decode every commit in the packs on all cores, walk from the tips,
//! order topologically, append parents-first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::store::NewCommit;
use super::{CommitGraph, Csr, GraphRef, People, RefKind};
use crate::object::CommitRef;
use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::ObjectId;
use crate::refs::{Head, RefSnapshot};
use crate::repo::{RepoError, Repository};

/// How a load is done.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Decode every commit found in the packs in parallel before walking (fast for whole
    /// histories); when false, commits are read one by one as the walk reaches them.
    pub scan_packs: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { scan_packs: true }
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
        let name = crate::object::decode_text(c.author.name, c.encoding);
        let email = crate::object::decode_text(c.author.email, c.encoding);
        let author = self.people.intern(&name, &email);
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

    fn parents_of(&self, d: &Decoded) -> &[ObjectId] {
        &self.parents[d.parents_start as usize..(d.parents_start + d.parents_len) as usize]
    }

    fn summary_of(&self, d: &Decoded) -> &str {
        self.summaries
            .get(d.summary_start as usize..(d.summary_start + d.summary_len) as usize)
            .unwrap_or_default()
    }
}

/// Entries per parallel work unit of the pack scan.
const SCAN_UNIT: usize = 1024;

/// Decodes every commit stored in the packs, in parallel.
fn scan_packs(repo: &Repository) -> (Vec<Batch>, Vec<String>) {
    let odb = repo.odb();
    let mut objects = odb.packed_objects();
    // Offset order turns random reads into a forward sweep through each pack.
    objects.par_sort_unstable_by_key(|&(pack, _, offset)| (pack, offset));
    let results: Vec<(Batch, Vec<String>)> = objects
        .par_chunks(SCAN_UNIT)
        .map_init(
            || (odb.reader(), Vec::new()),
            |(reader, buf), unit| {
                let mut batch = Batch::default();
                let mut problems = Vec::new();
                for &(pack, oid, offset) in unit {
                    match reader.packed_kind(pack, offset) {
                        Ok(ObjectKind::Commit) => {}
                        Ok(_) => continue,
                        Err(e) => {
                            problems.push(e.to_string());
                            continue;
                        }
                    }
                    match reader.read_packed(pack, offset, buf) {
                        Ok(_) => {
                            // A malformed commit is reported when the walk reaches it.
                            let _ = batch.decode(oid, buf);
                        }
                        Err(e) => problems.push(e.to_string()),
                    }
                }
                (batch, problems)
            },
        )
        .collect();
    let mut batches = Vec::with_capacity(results.len());
    let mut problems = Vec::new();
    for (b, p) in results {
        if !b.commits.is_empty() {
            batches.push(b);
        }
        problems.extend(p);
    }
    (batches, problems)
}

/// A tip of the walk: a ref (or HEAD, a stash entry, a worktree HEAD) and the commit it peels to.
#[derive(Debug, Clone)]
pub(crate) struct Tip {
    pub(crate) name: String,
    pub(crate) kind: RefKind,
    pub(crate) target: ObjectId,
    pub(crate) commit: ObjectId,
}

/// Peels every ref of `snap` to a commit. Refs to trees or blobs name no commit and are skipped;
/// refs to missing objects are reported.
pub(crate) fn collect_tips(
    repo: &Repository,
    reader: &mut OdbReader<'_>,
    snap: &RefSnapshot,
    problems: &mut Vec<String>,
) -> Vec<Tip> {
    let mut tips = Vec::new();
    let mut buf = Vec::new();
    let mut peel_cache: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
    let mut peel =
        |name: &str, target: ObjectId, known: Option<ObjectId>, problems: &mut Vec<String>| {
            if let Some(p) = known {
                // packed-refs records the fully peeled object; it still has to be a commit we have.
                if let Some(c) = peel_cache.get(&p) {
                    return *c;
                }
            }
            if let Some(c) = peel_cache.get(&target) {
                return *c;
            }
            let result = match repo.peel(reader, known.unwrap_or(target), &mut buf) {
                Ok((id, ObjectKind::Commit)) => Some(id),
                Ok(_) => None,
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    None
                }
            };
            peel_cache.insert(target, result);
            result
        };
    if let Some(Head::Detached(id)) = &snap.head
        && let Some(c) = peel("HEAD", *id, None, problems)
    {
        tips.push(Tip {
            name: "HEAD".into(),
            kind: RefKind::Other,
            target: *id,
            commit: c,
        });
    }
    for r in &snap.refs {
        if r.name == "refs/stash" {
            continue; // Listed below with every reflog entry.
        }
        if let Some(c) = peel(&r.name, r.target, r.peeled, problems) {
            tips.push(Tip {
                name: r.name.clone(),
                kind: RefKind::of(&r.name),
                target: r.target,
                commit: c,
            });
        }
    }
    for (name, id) in &snap.worktree_heads {
        if let Some(c) = peel(name, *id, None, problems) {
            tips.push(Tip {
                name: format!("worktree:{name}"),
                kind: RefKind::Other,
                target: *id,
                commit: c,
            });
        }
    }
    let stash_ref = snap.get("refs/stash").map(|r| r.target);
    let mut stash_seen_top = false;
    for (i, e) in snap.stash.iter().enumerate() {
        stash_seen_top |= Some(e.target) == stash_ref;
        if let Some(c) = peel(&format!("stash@{{{i}}}"), e.target, None, problems) {
            tips.push(Tip {
                name: format!("stash@{{{i}}}"),
                kind: RefKind::Stash,
                target: e.target,
                commit: c,
            });
        }
    }
    // refs/stash without a reflog (or out of step with it) is still a tip.
    if let (Some(t), false) = (stash_ref, stash_seen_top)
        && let Some(c) = peel("refs/stash", t, None, problems)
    {
        tips.push(Tip {
            name: "refs/stash".into(),
            kind: RefKind::Stash,
            target: t,
            commit: c,
        });
    }
    tips
}

/// Where a decoded commit lives: batch number and position in it.
type NodeRef = (u32, u32);

impl CommitGraph {
    /// Loads the whole graph with default options.
    pub fn load(repo: &Repository) -> Result<CommitGraph, RepoError> {
        Self::load_with(repo, LoadOptions::default())
    }

    /// Loads the whole graph.
    pub fn load_with(repo: &Repository, options: LoadOptions) -> Result<CommitGraph, RepoError> {
        let snap = repo.refs();
        let mut problems: Vec<String> = repo.odb().problems().to_vec();
        problems.extend(snap.problems.iter().cloned());
        let mut reader = repo.odb().reader();
        let tips = collect_tips(repo, &mut reader, &snap, &mut problems);

        let (mut batches, scan_problems) = if options.scan_packs {
            scan_packs(repo)
        } else {
            (Vec::new(), Vec::new())
        };
        problems.extend(scan_problems);

        // Id -> decoded commit, for everything the scan found.
        let mut index: Vec<(ObjectId, NodeRef)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| {
                batch
                    .commits
                    .iter()
                    .enumerate()
                    .map(move |(i, d)| (d.oid, (b as u32, i as u32)))
            })
            .collect();
        index.par_sort_unstable_by_key(|e| e.0);
        index.dedup_by_key(|e| e.0);

        // Commits the scan did not see (loose, in alternates' loose dirs) are read on demand.
        let extra_batch = batches.len() as u32;
        batches.push(Batch::default());
        let mut extra: HashMap<ObjectId, Option<NodeRef>> = HashMap::new();
        let shallow = &snap.shallow;
        let mut buf = Vec::new();
        let mut find = |id: &ObjectId,
                        batches: &mut Vec<Batch>,
                        problems: &mut Vec<String>,
                        child: Option<&ObjectId>|
         -> Option<NodeRef> {
            if let Ok(p) = index.binary_search_by(|e| e.0.cmp(id)) {
                return Some(index[p].1);
            }
            if let Some(r) = extra.get(id) {
                return *r;
            }
            let found = match reader.read_kind(id, ObjectKind::Commit, &mut buf) {
                Ok(()) => {
                    let batch = &mut batches[extra_batch as usize];
                    match batch.decode(*id, &buf) {
                        Ok(i) => Some((extra_batch, i)),
                        Err(e) => {
                            problems.push(format!("commit {id}: {e}"));
                            None
                        }
                    }
                }
                Err(OdbError::Missing(_))
                    if child.is_some_and(|c| shallow.binary_search(c).is_ok()) =>
                {
                    None
                }
                Err(e) => {
                    match child {
                        Some(c) => problems.push(format!("parent of {c}: {e}")),
                        None => problems.push(e.to_string()),
                    }
                    None
                }
            };
            extra.insert(*id, found);
            found
        };

        // Walk from the tips. `order` lists reachable nodes; `parents` their resolved parents.
        let mut node_pos: HashMap<NodeRef, u32> = HashMap::with_capacity(index.len());
        let mut nodes: Vec<NodeRef> = Vec::with_capacity(index.len());
        let mut parent_end: Vec<u32> = Vec::with_capacity(index.len());
        let mut parent_nodes: Vec<u32> = Vec::with_capacity(index.len() + index.len() / 8);
        // Resolved lazily: a node's parents are filled in when it is popped.
        let mut stack: Vec<u32> = Vec::new();
        let mut pending_parents: Vec<Vec<u32>> = Vec::new();
        let mut tip_nodes: Vec<Option<u32>> = Vec::with_capacity(tips.len());
        for tip in &tips {
            let node = find(&tip.commit, &mut batches, &mut problems, None).map(|r| {
                *node_pos.entry(r).or_insert_with(|| {
                    nodes.push(r);
                    stack.push(nodes.len() as u32 - 1);
                    nodes.len() as u32 - 1
                })
            });
            tip_nodes.push(node);
        }
        pending_parents.resize(nodes.len(), Vec::new());
        let mut resolved = vec![false; nodes.len()];
        while let Some(n) = stack.pop() {
            if resolved[n as usize] {
                continue;
            }
            resolved[n as usize] = true;
            let (b, i) = nodes[n as usize];
            let d = batches[b as usize].commits[i as usize];
            let parent_ids: Vec<ObjectId> = batches[b as usize].parents_of(&d).to_vec();
            let mut ps = Vec::with_capacity(parent_ids.len());
            for pid in &parent_ids {
                if let Some(r) = find(pid, &mut batches, &mut problems, Some(&d.oid)) {
                    let pn = *node_pos.entry(r).or_insert_with(|| {
                        nodes.push(r);
                        nodes.len() as u32 - 1
                    });
                    if pn as usize >= resolved.len() {
                        resolved.resize(nodes.len(), false);
                        pending_parents.resize(nodes.len(), Vec::new());
                    }
                    // git lists a parent named twice only once.
                    if !ps.contains(&pn) {
                        ps.push(pn);
                    }
                    if !resolved[pn as usize] {
                        stack.push(pn);
                    }
                }
            }
            pending_parents[n as usize] = ps;
        }
        drop(node_pos);
        for ps in &pending_parents {
            parent_nodes.extend_from_slice(ps);
            parent_end.push(parent_nodes.len() as u32);
        }
        drop(pending_parents);
        let n = nodes.len();
        let parents_of = |x: usize| {
            let s = if x == 0 { 0 } else { parent_end[x - 1] } as usize;
            &parent_nodes[s..parent_end[x] as usize]
        };

        // Kahn's algorithm: a commit is ready once all its children are placed; the newest ready
        // commit (by committer date) goes next.
        let mut child_count = vec![0u32; n];
        for &p in &parent_nodes {
            child_count[p as usize] += 1;
        }
        let key = |x: u32| {
            let (b, i) = nodes[x as usize];
            let d = &batches[b as usize].commits[i as usize];
            (d.commit_time, d.oid)
        };
        let mut heap: BinaryHeap<((i64, Reverse<ObjectId>), u32)> = (0..n as u32)
            .filter(|&x| child_count[x as usize] == 0)
            .map(|x| {
                let (t, o) = key(x);
                ((t, Reverse(o)), x)
            })
            .collect();
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        while let Some((_, x)) = heap.pop() {
            rows.push(x);
            for &p in parents_of(x as usize) {
                let c = &mut child_count[p as usize];
                *c -= 1;
                if *c == 0 {
                    let (t, o) = key(p);
                    heap.push(((t, Reverse(o)), p));
                }
            }
        }
        debug_assert_eq!(rows.len(), n, "a commit graph cannot have cycles");

        // Append parents first: commit index of node x.
        let mut graph = CommitGraph::default();
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
        let mut index_of = vec![u32::MAX; n];
        let mut ps: Vec<u32> = Vec::new();
        for &x in rows.iter().rev() {
            let (b, i) = nodes[x as usize];
            let batch = &batches[b as usize];
            let d = &batch.commits[i as usize];
            ps.clear();
            ps.extend(parents_of(x as usize).iter().map(|&p| index_of[p as usize]));
            let idx = graph.push(NewCommit {
                oid: d.oid,
                parents: &ps,
                author: person_maps[b as usize][d.author as usize],
                author_time: d.author_time,
                author_tz: d.author_tz,
                commit_time: d.commit_time,
                summary: batch.summary_of(d),
            });
            index_of[x as usize] = idx;
        }
        graph.shrink();
        graph.people = Arc::new(people);
        graph.rebuild_indexes();

        let mut refs: Vec<GraphRef> = tips
            .iter()
            .zip(&tip_nodes)
            .filter_map(|(t, node)| {
                node.map(|nd| GraphRef {
                    name: t.name.clone(),
                    kind: t.kind,
                    target: t.target,
                    commit: index_of[nd as usize],
                })
            })
            .collect();
        refs.sort_by(|a, b| a.commit.cmp(&b.commit).then_with(|| a.name.cmp(&b.name)));
        graph.refs = Arc::new(refs);
        graph.head_commit = snap.head.as_ref().and_then(|h| h.target()).and_then(|id| {
            let (peeled, _) = repo
                .peel(&mut repo.odb().reader(), id, &mut Vec::new())
                .ok()?;
            graph.find(&peeled)
        });
        graph.head = snap.head.clone();
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
