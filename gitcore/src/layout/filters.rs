//! What a view keeps: ref filters (pull refs, notes, globs) and subsets (a search's hits), with
//! the parent rewriting that draws kept commits to their nearest kept ancestors.

use super::*;
use crate::graph::{CommitGraph, CommitIdx, GraphRef, RefKind};
use std::sync::Arc;

/// Which refs a view shows; commits reachable only from hidden refs are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefFilter {
    /// Ref kinds to hide (e.g. [`RefKind::Pull`], [`RefKind::Notes`], [`RefKind::Stash`]).
    pub hide_kinds: Vec<RefKind>,
    /// Glob patterns over short branch/tag names or full ref names to hide (`*` matches any run of
    /// characters, e.g. `dependabot/*`).
    pub hide_globs: Vec<String>,
    /// Hide `refs/remotes/*/HEAD` (a pointer to a remote's default branch, which has its own
    /// badge already).
    pub hide_remote_heads: bool,
    /// Show only this ref (full name) and its history, as `git log <ref>` does: every other
    /// ref, and HEAD, are hidden.
    pub only: Option<String>,
    /// Show only these refs (full names, sorted) and their history: the branches containing a
    /// commit ([`branches_containing`]). HEAD is hidden too.
    pub only_set: Option<Vec<String>>,
}

/// The local and remote-tracking branches whose tips reach `commit` (`git branch -a --contains`),
/// sorted: found by walking the commit's descendants through children.
pub fn branches_containing(graph: &CommitGraph, commit: CommitIdx) -> Vec<String> {
    let mut seen = vec![false; graph.len()];
    let mut stack = vec![commit];
    while let Some(c) = stack.pop() {
        if std::mem::replace(&mut seen[c as usize], true) {
            continue;
        }
        stack.extend(graph.children(c).filter(|&ch| !seen[ch as usize]));
    }
    let mut names: Vec<String> = graph
        .refs()
        .iter()
        .filter(|r| matches!(r.kind, RefKind::Branch | RefKind::Remote) && seen[r.commit as usize])
        .filter(|r| !is_remote_head(r))
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

impl RefFilter {
    /// Whether the view shows commits reachable from `r`.
    pub fn includes(&self, r: &GraphRef) -> bool {
        if let Some(only) = &self.only {
            return r.name == *only;
        }
        if let Some(set) = &self.only_set {
            return set.binary_search(&r.name).is_ok();
        }
        if self.hide_kinds.contains(&r.kind) || (self.hide_remote_heads && is_remote_head(r)) {
            return false;
        }
        let short = r
            .name
            .strip_prefix("refs/heads/")
            .or_else(|| r.name.strip_prefix("refs/remotes/"))
            .or_else(|| r.name.strip_prefix("refs/tags/"))
            .unwrap_or(&r.name);
        !self
            .hide_globs
            .iter()
            .any(|g| glob_match(g, short) || glob_match(g, &r.name))
    }

    /// Whether nothing is hidden.
    pub fn is_empty(&self) -> bool {
        self.hide_kinds.is_empty()
            && self.hide_globs.is_empty()
            && !self.hide_remote_heads
            && self.only.is_none()
            && self.only_set.is_none()
    }

    /// What a viewer sees first: everything but the refs a forge mirror is full of and nobody
    /// opens a repository to read: pull and merge requests (`refs/pull/*`,
    /// `refs/merge-requests/*`, `refs/changes/*`), notes, and `refs/remotes/*/HEAD`.
    pub fn standard() -> RefFilter {
        RefFilter {
            hide_kinds: vec![RefKind::Notes, RefKind::Pull],
            hide_globs: Vec::new(),
            hide_remote_heads: true,
            only: None,
            only_set: None,
        }
    }
}

/// Whether `r` is a remote's HEAD pointer (`refs/remotes/origin/HEAD`).
pub fn is_remote_head(r: &GraphRef) -> bool {
    r.kind == RefKind::Remote && r.name.ends_with("/HEAD")
}

/// `*`-only glob matching (iterative, linear in practice, no backtracking blow-up).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The commits a view keeps (the hits of a search), named: views compare by name, so two subsets
/// with the same name over the same graph must be the same set (the caller names a search's
/// hits by its query, and builds them again for another graph).
#[derive(Clone)]
pub struct Subset {
    /// What the set is, e.g. the search query.
    pub name: String,
    /// Kept or not, by commit index; commits past its end are not kept.
    keep: Arc<Vec<bool>>,
}

impl Subset {
    /// The set of `commits` of a graph of `len` commits, named `name`.
    pub fn new(
        name: impl Into<String>,
        len: usize,
        commits: impl IntoIterator<Item = CommitIdx>,
    ) -> Subset {
        let mut keep = vec![false; len];
        for c in commits {
            if let Some(k) = keep.get_mut(c as usize) {
                *k = true;
            }
        }
        Subset {
            name: name.into(),
            keep: Arc::new(keep),
        }
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: CommitIdx) -> bool {
        self.keep.get(c as usize).copied().unwrap_or(false)
    }

    /// Number of commits in the set.
    pub fn count(&self) -> usize {
        self.keep.iter().filter(|&&k| k).count()
    }
}

impl PartialEq for Subset {
    fn eq(&self, other: &Subset) -> bool {
        self.name == other.name
    }
}

impl Eq for Subset {}

/// By name only: the name is what a view's cache key carries.
impl std::fmt::Debug for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Subset").field(&self.name).finish()
    }
}

/// Where a commit left out of a [`Subset`] view leads: its nearest kept ancestors, shared by
/// commits with the same answer (a chain of left-out commits shares one entry).
pub(super) struct Rewrite {
    /// Per commit: [`Rewrite::NONE`], one kept commit with [`Rewrite::ONE`] set, or an index
    /// into `lists`.
    pub(super) to: Vec<u32>,
    /// Answers of more than one commit (at most [`MAX_DRAWN_EDGES`] each).
    pub(super) lists: Vec<Vec<CommitIdx>>,
    /// Per commit: the stamp of the last [`Rewrite::reduce`] that reached it.
    reached: Vec<u32>,
    stamp: u32,
    /// Steps [`Rewrite::reduce`] may still take in this layout.
    budget: usize,
}

/// Kept commits one [`Rewrite::reduce`] may walk before it keeps what it has not ruled out
/// (the walk is pruned below the oldest candidate, so it rarely comes near), and all of them
/// together in one layout: past that, edges are drawn as found, never wrong, only busier.
const REDUCE_STEPS: usize = 4_096;
const REDUCE_STEPS_PER_LAYOUT: usize = 4_000_000;

impl Rewrite {
    const NONE: u32 = u32::MAX;
    const ONE: u32 = 1 << 31;

    /// The nearest shown ancestors of every commit not shown, through the parents `layout`
    /// follows, in parent order (depth first), each once.
    pub(super) fn new(layout: &Layout, graph: &CommitGraph, shown: &[bool]) -> Rewrite {
        let mut rw = Rewrite {
            to: vec![Rewrite::NONE; graph.len()],
            lists: Vec::new(),
            reached: vec![0; graph.len()],
            stamp: 0,
            budget: REDUCE_STEPS_PER_LAYOUT,
        };
        let mut list = Vec::new();
        for c in 0..graph.len() as u32 {
            if shown[c as usize] {
                continue;
            }
            let parents = layout.followed(graph, c);
            if let [p] = parents {
                rw.to[c as usize] = if shown[*p as usize] {
                    Rewrite::ONE | p
                } else {
                    rw.to[*p as usize]
                };
                continue;
            }
            list.clear();
            for &p in parents {
                rw.extend(&mut list, p, shown, MAX_DRAWN_EDGES);
            }
            rw.reduce(layout, graph, shown, &mut list);
            rw.to[c as usize] = match list.as_slice() {
                [] => Rewrite::NONE,
                [one] => Rewrite::ONE | one,
                _ => {
                    rw.lists.push(list.clone());
                    (rw.lists.len() - 1) as u32
                }
            };
        }
        rw
    }

    /// Appends where parent `p` leads (itself when shown) to `out`, skipping what is there, up
    /// to `cap` entries.
    pub(super) fn extend(
        &self,
        out: &mut Vec<CommitIdx>,
        p: CommitIdx,
        shown: &[bool],
        cap: usize,
    ) {
        let mut add = |c: CommitIdx| {
            if out.len() < cap && !out.contains(&c) {
                out.push(c);
            }
        };
        if shown[p as usize] {
            return add(p);
        }
        match self.to[p as usize] {
            Rewrite::NONE => {}
            t if t & Rewrite::ONE != 0 => add(t & !Rewrite::ONE),
            t => {
                for &c in &self.lists[t as usize] {
                    add(c);
                }
            }
        }
    }

    /// Drops from `list` (kept commits) each one that is an ancestor of another: its edge says
    /// nothing the other's path does not (as `git log --simplify-merges` drops such parents).
    /// Without it, a kept commit below many left-out merges draws an edge to every kept commit
    /// each merge leads to, dozens of lanes for what one line says.
    pub(super) fn reduce(
        &mut self,
        layout: &Layout,
        graph: &CommitGraph,
        shown: &[bool],
        list: &mut Vec<CommitIdx>,
    ) {
        if list.len() < 2 || self.budget == 0 {
            return;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.reached.fill(0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        // Ancestors have lower indices: nothing below the oldest candidate can lead to one.
        let floor = list.iter().copied().min().unwrap_or(0);
        let mut order = list.clone();
        order.sort_unstable_by(|a, b| b.cmp(a));
        let mut stack: Vec<CommitIdx> = Vec::new();
        let mut next = Vec::new();
        let mut budget = REDUCE_STEPS.min(self.budget);
        'walks: for &top in &order {
            if self.reached[top as usize] == stamp {
                continue; // reached from a newer candidate: an ancestor of it
            }
            stack.push(top);
            while let Some(z) = stack.pop() {
                if z != top {
                    if z < floor || self.reached[z as usize] == stamp {
                        continue;
                    }
                    self.reached[z as usize] = stamp;
                }
                budget -= 1;
                self.budget -= 1;
                if budget == 0 {
                    break 'walks;
                }
                next.clear();
                for &p in layout.followed(graph, z) {
                    self.extend(&mut next, p, shown, MAX_DRAWN_EDGES);
                }
                stack.extend(next.iter().copied().filter(|&p| p >= floor));
            }
        }
        list.retain(|&c| self.reached[c as usize] != stamp);
    }
}
