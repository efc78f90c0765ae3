//! The tips of the walk: HEAD, every ref, other worktrees' HEADs and every stash entry, peeled to
//! commits.

use std::collections::HashMap;

use super::RefKind;
use super::commit_graph_file::CommitGraphFile;
use crate::odb::{ObjectKind, OdbReader};
use crate::oid::ObjectId;
use crate::refs::{Head, RefSnapshot};
use crate::repo::Repository;

/// A tip of the walk: a ref (or HEAD, a stash entry, a worktree HEAD) and the commit it peels to.
#[derive(Debug, Clone)]
pub(crate) struct Tip {
    pub(crate) name: String,
    pub(crate) kind: RefKind,
    pub(crate) target: ObjectId,
    pub(crate) commit: ObjectId,
}

/// Peels every ref of `snap` to a commit. Refs to trees or blobs name no commit and are skipped;
/// refs to missing objects are reported. `known` holds what earlier loads peeled (objects never
/// change, so a target peels to the same commit for ever): a reload of a mirror with thousands of
/// refs then reads only the objects of the refs that moved. With `release`, the pages read are
/// let go of now and then (a whole load, which reads the packs next); a first screen keeps them,
/// since it reads the same commits right after. A target the commit-graph file `listed` lists is
/// a commit, and is not read at all (a forge mirror's thousands of pull refs).
pub(crate) fn collect_tips(
    repo: &Repository,
    reader: &mut OdbReader<'_>,
    snap: &RefSnapshot,
    problems: &mut Vec<String>,
    known: HashMap<ObjectId, Option<ObjectId>>,
    release: bool,
    listed: Option<&CommitGraphFile>,
) -> Vec<Tip> {
    let mut tips = Vec::new();
    let mut buf = Vec::new();
    let mut peel_cache = known;
    let mut peeled = 0usize;
    let mut peel =
        |name: &str, target: ObjectId, known: Option<ObjectId>, problems: &mut Vec<String>| {
            if let Some(cg) = listed {
                let commit = known.unwrap_or(target);
                if cg.lookup(&commit).is_some() {
                    return Some(commit);
                }
            }
            if let Some(p) = known {
                // packed-refs records the fully peeled object; it still has to be a commit we have.
                if let Some(c) = peel_cache.get(&p) {
                    return *c;
                }
            }
            if let Some(c) = peel_cache.get(&target) {
                return *c;
            }
            // Thousands of tips (a forge mirror's pull refs) are read from all over the packs:
            // let go of the pages behind them now and then, as the load's scan does.
            peeled += 1;
            if release && peeled.is_multiple_of(256) {
                repo.odb().release_mapped();
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

/// What a load starts from: the refs as they are now, the object database's and the refs'
/// problems, a reader, and the tips peeled (see [`collect_tips`] for `release` and `listed`).
pub(crate) fn read_tips<'r>(
    repo: &'r Repository,
    release: bool,
    listed: Option<&CommitGraphFile>,
) -> (RefSnapshot, Vec<String>, OdbReader<'r>, Vec<Tip>) {
    let snap = repo.refs();
    let mut problems: Vec<String> = repo.odb().problems().to_vec();
    problems.extend(snap.problems.iter().cloned());
    let mut reader = repo.odb().reader();
    let tips = collect_tips(
        repo,
        &mut reader,
        &snap,
        &mut problems,
        HashMap::new(),
        release,
        listed,
    );
    (snap, problems, reader, tips)
}

impl super::CommitGraph {
    /// Places the tips on the graph (refs sorted by commit, then name) and sets HEAD.
    pub(crate) fn place_tips(&mut self, repo: &Repository, tips: &[Tip], head: Option<Head>) {
        let mut refs: Vec<super::GraphRef> = tips
            .iter()
            .filter_map(|t| {
                self.find(&t.commit).map(|commit| super::GraphRef {
                    name: t.name.clone(),
                    kind: t.kind,
                    target: t.target,
                    commit,
                })
            })
            .collect();
        refs.sort_by(|a, b| a.commit.cmp(&b.commit).then_with(|| a.name.cmp(&b.name)));
        self.refs = std::sync::Arc::new(refs);
        self.head_commit = head.as_ref().and_then(|h| h.target()).and_then(|id| {
            let (peeled, _) = repo
                .peel(&mut repo.odb().reader(), id, &mut Vec::new())
                .ok()?;
            self.find(&peeled)
        });
        self.head = head;
    }
}
