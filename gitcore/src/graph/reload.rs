//! Reloading: the graph as the repository is now, and what changed since a previous load.
//!
//! When history only grew, the new commits are read (walking back from each new tip until known
//! commits) and appended; full chunks are shared with the previous graph, so the cost is that of
//! the change. When commits disappeared (amend, rebase, a deleted branch), survivors keep their
//! data and the graph is rebuilt without decoding anything again. A changed `shallow` file
//! (deepening a shallow clone) triggers a full load.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use super::load::Batch;
use super::store::NewCommit;
use super::tips::collect_tips;
use super::{CommitGraph, CommitIdx, GraphRef, People};
use crate::oid::ObjectId;
use crate::refs::Head;
use crate::repo::{RepoError, Repository};

/// A ref (or stash entry, or worktree HEAD) that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefChange {
    /// A new ref.
    Created {
        /// Ref name as in [`GraphRef::name`].
        name: String,
        /// The commit it peels to.
        to: ObjectId,
    },
    /// A ref that now points elsewhere.
    Moved {
        /// Ref name.
        name: String,
        /// Previous commit.
        from: ObjectId,
        /// New commit.
        to: ObjectId,
    },
    /// A ref that is gone.
    Deleted {
        /// Ref name.
        name: String,
        /// The commit it pointed at.
        from: ObjectId,
    },
}

/// What changed between two loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphDelta {
    /// New commits, newest first (children before parents).
    pub added: Vec<ObjectId>,
    /// Commits no longer reachable.
    pub removed: Vec<ObjectId>,
    /// Ref changes, by name.
    pub refs: Vec<RefChange>,
    /// HEAD before and after, when it changed (branch switch, detach, new commit on HEAD).
    pub head: Option<(Option<Head>, Option<Head>)>,
    /// Whether existing commits changed rows for another reason than commits added on top (commits
    /// were removed, or the history was deepened): viewers should re-fetch rather than patch.
    pub rewritten: bool,
}

impl GraphDelta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.refs.is_empty()
            && self.head.is_none()
    }
}

/// The recent-id index is merged into the main one once it passes this share of the graph.
const RECENT_SHARE: usize = 16;

impl CommitGraph {
    /// The graph of `repo` now (pass a [`Repository::refresh`]ed repository so new packs are
    /// seen), and the delta from `self`.
    pub fn reload(&self, repo: &Repository) -> Result<(CommitGraph, GraphDelta), RepoError> {
        if self.metadata_pending {
            // New commits are appended with their metadata: the old ones need theirs first.
            let mut full = self.clone();
            full.fill_metadata(repo);
            return full.reload(repo);
        }
        let snap = repo.refs();
        if snap.shallow[..] != self.shallow[..] {
            let mut next = CommitGraph::load(repo)?;
            next.use_mailmap(Arc::clone(&self.mailmap));
            let delta = diff_graphs(self, &next);
            return Ok((next, delta));
        }
        let mut problems: Vec<String> = repo.odb().problems().to_vec();
        problems.extend(snap.problems.iter().cloned());
        let mut reader = repo.odb().reader();
        let known = self
            .refs
            .iter()
            .map(|r| (r.target, Some(self.oid(r.commit))))
            .collect();
        let tips = collect_tips(repo, &mut reader, &snap, &mut problems, known, true, None);

        // Read commits not in the graph, walking back from each tip until known commits.
        let mut batch = Batch::default();
        let mut new_pos: HashMap<ObjectId, Option<u32>> = HashMap::new();
        let mut stack: Vec<(ObjectId, Option<ObjectId>)> = tips
            .iter()
            .filter(|t| self.find(&t.commit).is_none())
            .map(|t| (t.commit, None))
            .collect();
        let mut buf = Vec::new();
        while let Some((id, child)) = stack.pop() {
            if new_pos.contains_key(&id) || self.find(&id).is_some() {
                continue;
            }
            let pos = batch.read_commit(
                &mut reader,
                &mut buf,
                &id,
                child.as_ref(),
                &self.shallow,
                &mut problems,
            );
            new_pos.insert(id, pos);
            if let Some(i) = pos {
                let d = batch.commits[i as usize];
                let ps = batch.parents
                    [d.parents_start as usize..(d.parents_start + d.parents_len) as usize]
                    .to_vec();
                for p in ps {
                    stack.push((p, Some(id)));
                }
            }
        }

        // Which old commits are no longer reachable: a commit survives if it is a tip or has a
        // surviving child. Dropped tips are checked highest index first so that children are
        // decided before their parents.
        let tip_set: HashSet<ObjectId> = tips.iter().map(|t| t.commit).collect();
        let new_children_of: HashSet<CommitIdx> =
            batch.parents.iter().filter_map(|p| self.find(p)).collect();
        let mut removed: HashSet<CommitIdx> = HashSet::new();
        let mut heap: BinaryHeap<CommitIdx> = self
            .refs
            .iter()
            .map(|r| r.commit)
            .chain(self.head_commit)
            .filter(|&c| !tip_set.contains(&self.oid(c)))
            .collect();
        while let Some(c) = heap.pop() {
            if removed.contains(&c)
                || tip_set.contains(&self.oid(c))
                || new_children_of.contains(&c)
            {
                continue;
            }
            if self.children(c).any(|ch| !removed.contains(&ch)) {
                continue;
            }
            removed.insert(c);
            heap.extend(self.parents(c).iter().copied());
        }

        // New commits in order: Kahn over the new ones only (children first, newest first).
        let new_order = order_new(&batch, &new_pos);

        let mut next = if removed.is_empty() {
            self.clone()
        } else {
            self.without(&removed)
        };
        let people = Arc::make_mut(&mut next.people);
        let person_map: Vec<u32> = batch
            .people
            .list
            .iter()
            .map(|p| people.intern(&p.name, &p.email))
            .collect();
        next.map_people();
        let mut index_of: HashMap<ObjectId, CommitIdx> = HashMap::new();
        let mut ps: Vec<u32> = Vec::new();
        let first_new = next.len as u32;
        for &i in new_order.iter().rev() {
            let d = batch.commits[i as usize];
            ps.clear();
            for p in
                &batch.parents[d.parents_start as usize..(d.parents_start + d.parents_len) as usize]
            {
                if let Some(&x) = index_of.get(p) {
                    ps.push(x);
                } else if let Some(x) = next.find(p) {
                    ps.push(x);
                }
            }
            ps.dedup();
            let idx = next.push(NewCommit {
                oid: d.oid,
                parents: &ps,
                author: person_map[d.author as usize],
                author_time: d.author_time,
                author_tz: d.author_tz,
                commit_time: d.commit_time,
                summary: batch
                    .summaries
                    .get(d.summary_start as usize..(d.summary_start + d.summary_len) as usize)
                    .unwrap_or_default(),
            });
            index_of.insert(d.oid, idx);
        }
        next.index_appended(first_new);

        let head_change = (self.head != snap.head).then(|| (self.head.clone(), snap.head.clone()));
        next.place_tips(repo, &tips, snap.head);
        let delta = GraphDelta {
            added: (first_new..next.len as u32)
                .rev()
                .map(|i| next.oid(i))
                .collect(),
            removed: {
                let mut r: Vec<CommitIdx> = removed.iter().copied().collect();
                r.sort_unstable_by(|a, b| b.cmp(a));
                r.into_iter().map(|i| self.oid(i)).collect()
            },
            refs: ref_changes(self, &next, &next.refs),
            head: head_change,
            rewritten: !removed.is_empty(),
        };
        next.problems = problems;
        Ok((next, delta))
    }

    /// Updates the id index and children for commits appended from `first_new` on.
    fn index_appended(&mut self, first_new: CommitIdx) {
        let len = self.len as u32;
        if first_new == len {
            return;
        }
        for i in first_new..len {
            let pos = self
                .by_oid_recent
                .binary_search_by(|&x| self.oid(x).cmp(&self.oid(i)))
                .unwrap_or_else(|p| p);
            self.by_oid_recent.insert(pos, i);
            for k in 0..self.parents(i).len() {
                let p = self.parents(i)[k];
                self.children_extra.entry(p).or_default().push(i);
            }
        }
        if self.by_oid_recent.len() > (self.len / RECENT_SHARE).max(4096) {
            self.rebuild_indexes();
        }
    }

    /// A copy of the graph without the commits in `removed` (which no survivor has as a parent).
    fn without(&self, removed: &HashSet<CommitIdx>) -> CommitGraph {
        let mut next = CommitGraph {
            people: Arc::new(People::clone(&self.people)),
            mailmap: Arc::clone(&self.mailmap),
            shown: Arc::clone(&self.shown),
            shallow: Arc::clone(&self.shallow),
            ..CommitGraph::default()
        };
        let mut map = vec![u32::MAX; self.len];
        let mut ps = Vec::new();
        for i in 0..self.len as u32 {
            if removed.contains(&i) {
                continue;
            }
            ps.clear();
            ps.extend(
                self.parents(i)
                    .iter()
                    .map(|&p| map[p as usize])
                    .filter(|&p| p != u32::MAX),
            );
            let (c, j) = self.chunk(i);
            let summary = self.summary(i);
            map[i as usize] = next.push(NewCommit {
                oid: c.oids.get(j),
                parents: &ps,
                author: c.author[j],
                author_time: c.author_time[j],
                author_tz: c.author_tz[j],
                commit_time: c.commit_time[j],
                summary,
            });
        }
        next.shrink();
        next.rebuild_indexes();
        next
    }
}

/// Orders the newly read commits children-first, newest first among the ready ones.
fn order_new(batch: &Batch, new_pos: &HashMap<ObjectId, Option<u32>>) -> Vec<u32> {
    let n = batch.commits.len();
    let parents_of = |i: usize| -> Vec<u32> {
        let d = &batch.commits[i];
        batch.parents[d.parents_start as usize..(d.parents_start + d.parents_len) as usize]
            .iter()
            .filter_map(|p| new_pos.get(p).copied().flatten())
            .collect()
    };
    let mut child_count = vec![0u32; n];
    for i in 0..n {
        for p in parents_of(i) {
            child_count[p as usize] += 1;
        }
    }
    let key = |i: u32| {
        let d = &batch.commits[i as usize];
        (d.commit_time, Reverse(d.oid))
    };
    let mut heap: BinaryHeap<((i64, Reverse<ObjectId>), u32)> = (0..n as u32)
        .filter(|&i| child_count[i as usize] == 0)
        .map(|i| (key(i), i))
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some((_, i)) = heap.pop() {
        out.push(i);
        for p in parents_of(i as usize) {
            child_count[p as usize] -= 1;
            if child_count[p as usize] == 0 {
                heap.push((key(p), p));
            }
        }
    }
    out
}

fn ref_changes(old: &CommitGraph, new: &CommitGraph, new_refs: &[GraphRef]) -> Vec<RefChange> {
    let before: BTreeMap<&str, ObjectId> = old
        .refs
        .iter()
        .map(|r| (r.name.as_str(), old.oid(r.commit)))
        .collect();
    let after: BTreeMap<&str, ObjectId> = new_refs
        .iter()
        .map(|r| (r.name.as_str(), new.oid(r.commit)))
        .collect();
    let mut out = Vec::new();
    for (name, &to) in &after {
        match before.get(name) {
            None => out.push(RefChange::Created {
                name: name.to_string(),
                to,
            }),
            Some(&from) if from != to => out.push(RefChange::Moved {
                name: name.to_string(),
                from,
                to,
            }),
            Some(_) => {}
        }
    }
    for (name, &from) in &before {
        if !after.contains_key(name) {
            out.push(RefChange::Deleted {
                name: name.to_string(),
                from,
            });
        }
    }
    out.sort_by(|a, b| change_name(a).cmp(change_name(b)));
    out
}

fn change_name(c: &RefChange) -> &str {
    match c {
        RefChange::Created { name, .. }
        | RefChange::Moved { name, .. }
        | RefChange::Deleted { name, .. } => name,
    }
}

impl CommitGraph {
    /// What changed from `self` to `next`, two independently built graphs (a history that
    /// grew while it streamed in, then the same history read from disk): viewers re-fetch
    /// rather than patch when rows moved (`rewritten`).
    pub fn delta_to(&self, next: &CommitGraph) -> GraphDelta {
        diff_graphs(self, next)
    }
}

/// The delta between two independently loaded graphs (used when history was deepened).
fn diff_graphs(old: &CommitGraph, new: &CommitGraph) -> GraphDelta {
    let added = (0..new.len() as u32)
        .rev()
        .map(|i| new.oid(i))
        .filter(|id| old.find(id).is_none())
        .collect();
    let removed = (0..old.len() as u32)
        .rev()
        .map(|i| old.oid(i))
        .filter(|id| new.find(id).is_none())
        .collect();
    GraphDelta {
        added,
        removed,
        refs: ref_changes(old, new, &new.refs),
        head: (old.head != new.head).then(|| (old.head.clone(), new.head.clone())),
        rewritten: true,
    }
}
