//! The newest commits of a history, for a first screen shown before the whole graph is loaded.
//!
//! `git log | head` prints its first rows without reading the rest of the history: it walks
//! from the tips in commit-date order, reading one commit at a time. [`CommitGraph::load_newest`]
//! does the same: a priority queue of commits by committer date, seeded with the tips the whole
//! load uses (HEAD, every ref, worktree HEADs, stash entries), popping the newest until enough
//! rows are taken and HEAD's commit is among them with a screen of history below it. Only the
//! commits taken make the graph; a parent that was not taken is left out of its child's
//! parents, and the child is listed with the shallow commits (the history goes on below it, as
//! a shallow clone's does), so the graph ends where the walk stopped. The whole load follows,
//! and viewers get the rest as growth.
//!
//! Each commit's headers and subject are read, not its body. With a commit-graph file the queue
//! takes dates from it, and only the commits taken are read.
//!
//! With commit dates that never go back in time, the commits taken are the top rows of the whole
//! graph in the same order (it orders children-first, newest ready commit first). A clock skew
//! can change a few rows; the whole load's delta moves them where they belong.

use std::collections::{BinaryHeap, HashMap, HashSet};

use super::*;

/// How many commits a first screen takes.
#[derive(Debug, Clone, Copy)]
pub struct NewestOptions {
    /// Commits to take at least (a screen is about 50 rows; the rest is room to scroll).
    pub rows: usize,
    /// Commits HEAD's commit must have below it, so the page opens at HEAD with history under it
    /// (newer branches, a git/git's `seen` and `next`, come before it).
    pub below_head: usize,
    /// Commits taken at most while waiting for HEAD's commit (a HEAD detached far back in time
    /// is shown when the whole graph is in).
    pub max_rows: usize,
}

impl Default for NewestOptions {
    fn default() -> Self {
        NewestOptions {
            rows: 2000,
            below_head: 100,
            max_rows: 20_000,
        }
    }
}

/// The newest commits of a history as a graph (see the module's notes).
#[derive(Debug)]
pub struct NewestCommits {
    /// The commits taken, laid out as the whole graph lays them out, refs and HEAD placed where
    /// their commits were taken; every commit's author and subject are read.
    pub graph: CommitGraph,
    /// Whether every commit reachable from the tips was taken (the graph is the whole history).
    pub complete: bool,
}

impl CommitGraph {
    /// The newest commits of `repo` (blocking; reads about as many commits as it takes, one at a
    /// time). Refs, HEAD and problems are read as [`CommitGraph::load_topology_with`] reads them.
    pub fn load_newest(
        repo: &Repository,
        options: NewestOptions,
    ) -> Result<NewestCommits, RepoError> {
        let started = std::time::Instant::now();
        // With a commit-graph file the queue takes dates from it and a commit is read only when
        // taken; without one, every commit queued is read (its headers and subject only).
        let cg = CommitGraphFile::open(repo.odb().objects_dir(), repo.odb().hash())
            .ok()
            .flatten();
        let (snap, mut problems, mut reader, tips) = read_tips(repo, false, cg.as_ref());
        let shallow = &snap.shallow;
        let head_commit = snap
            .head
            .as_ref()
            .and_then(|h| h.target())
            .and_then(|id| repo.peel(&mut reader, id, &mut Vec::new()).ok())
            .and_then(|(id, kind)| (kind == ObjectKind::Commit).then_some(id));

        let odb = repo.odb();
        let mut buf = Vec::new();
        // Every commit queued (taken or not), so none is queued twice.
        let mut seen: HashSet<ObjectId> = HashSet::new();
        // Commits queued and not taken yet, with their bytes when they were read to be queued.
        let mut pending: HashMap<ObjectId, Option<Vec<u8>>> = HashMap::new();
        let mut queue: BinaryHeap<(i64, ObjectId)> = BinaryHeap::new();
        let mut enqueue = |id: &ObjectId,
                           child: Option<&ObjectId>,
                           reader: &mut OdbReader<'_>,
                           problems: &mut Vec<String>,
                           pending: &mut HashMap<ObjectId, Option<Vec<u8>>>,
                           queue: &mut BinaryHeap<(i64, ObjectId)>| {
            if !seen.insert(*id) {
                return;
            }
            if let Some(time) = cg
                .as_ref()
                .and_then(|cg| cg.lookup(id))
                .and_then(|pos| cg.as_ref()?.commit_time(pos))
            {
                queue.push((time, *id));
                pending.insert(*id, None);
                return;
            }
            let mut data = Vec::new();
            match read_headers(odb, reader, id, &mut data) {
                Ok(()) => match CommitRef::parse(&data) {
                    Ok(c) => {
                        queue.push((c.committer.time, *id));
                        pending.insert(*id, Some(data));
                    }
                    Err(e) => problems.push(format!("commit {id}: {e}")),
                },
                Err(e) => problems.extend(read_problem(e, child, shallow)),
            }
        };
        for t in &tips {
            enqueue(
                &t.commit,
                None,
                &mut reader,
                &mut problems,
                &mut pending,
                &mut queue,
            );
        }

        let mut batch = Batch::default();
        let mut head_taken_at: Option<usize> = None;
        while let Some((_, id)) = queue.pop() {
            let data = match pending.remove(&id) {
                Some(Some(data)) => data,
                Some(None) => match read_headers(odb, &mut reader, &id, &mut buf) {
                    Ok(()) => std::mem::take(&mut buf),
                    Err(e) => {
                        problems.push(format!("commit {id}: {e}"));
                        continue;
                    }
                },
                None => continue,
            };
            let taken = batch.commits.len() + 1;
            if let Err(e) = batch.decode(id, &data) {
                problems.push(format!("commit {id}: {e}"));
                continue;
            }
            buf = data;
            if Some(id) == head_commit {
                head_taken_at = Some(taken);
            }
            if shallow.binary_search(&id).is_err() {
                let parents: Vec<ObjectId> = batch.parents_of(&batch.commits[taken - 1]).to_vec();
                for parent in &parents {
                    enqueue(
                        parent,
                        Some(&id),
                        &mut reader,
                        &mut problems,
                        &mut pending,
                        &mut queue,
                    );
                }
            }
            let head_placed = match (head_commit, head_taken_at) {
                (None, _) => true,
                (Some(_), Some(at)) => taken >= at + options.below_head,
                (Some(_), None) => false,
            };
            if taken >= options.max_rows || (taken >= options.rows && head_placed) {
                break;
            }
        }
        let complete = queue.is_empty();
        let decoded = batch.commits.len();
        // Where the history goes on below what was taken: marked as a shallow clone's boundary
        // is (not a root; the rest is still to come).
        let taken: HashSet<ObjectId> = batch.commits.iter().map(|d| d.oid).collect();
        let mut cut: Vec<ObjectId> = snap.shallow.clone();
        cut.extend(
            batch
                .commits
                .iter()
                .filter(|d| batch.parents_of(d).iter().any(|p| !taken.contains(p)))
                .map(|d| d.oid),
        );
        cut.sort();
        cut.dedup();

        let mut batches = vec![batch];
        let mut nodes = Nodes::from_batches(&batches);
        for b in &mut batches {
            b.parents = Vec::new();
        }
        let stack: Vec<u32> = tips
            .iter()
            .filter_map(|t| nodes.lookup(&t.commit).flatten())
            .collect();
        // A parent not taken is not a node: its slot stays unresolved and the edge is left out.
        let order_nodes = walk(&mut nodes, stack, shallow, |nodes, id, _| {
            nodes.lookup(id).flatten()
        });
        let rows = topo_order(&nodes, &order_nodes);
        let mut graph = assemble(&nodes, &batches, &rows);
        graph.source = super::super::LoadSource {
            commit_graph: false,
            decoded,
            decode_time: started.elapsed(),
        };
        graph.place_tips(repo, &tips, snap.head.clone());
        graph.shallow = Arc::new(cut);
        graph.problems = problems;
        Ok(NewestCommits { graph, complete })
    }
}

/// Reads commit `id`'s headers and subject (the whole commit when it is a delta or loose): what
/// a row needs, and the committer date and parents the walk orders by.
fn read_headers(
    odb: &crate::odb::Odb,
    reader: &mut OdbReader<'_>,
    id: &ObjectId,
    out: &mut Vec<u8>,
) -> Result<(), OdbError> {
    let Some(crate::odb::Location::Packed { pack, offset }) = odb.locate(id) else {
        return reader.read_kind(id, ObjectKind::Commit, out);
    };
    let (kind, complete) =
        reader.read_packed_until(pack, offset, COMMIT_PREFIX, out, subject_complete)?;
    if kind != ObjectKind::Commit {
        return Err(OdbError::WrongKind {
            id: *id,
            expected: ObjectKind::Commit,
            actual: kind,
        });
    }
    if !complete && !subject_complete(out) {
        reader.read_packed(pack, offset, out)?;
    }
    Ok(())
}
