//! Reload and delta against repositories changed by `git` between loads.

use std::collections::BTreeSet;
use std::path::Path;

use gitcore::graph::{CommitGraph, GraphDelta, RefChange};
use gitcore::repo::Repository;

use crate::common::{fresh_fixture, git, git_command, git_lines, oid};

fn load(path: &Path) -> (Repository, CommitGraph) {
    let repo = Repository::discover(path).expect("opens");
    let graph = CommitGraph::load(&repo).expect("loads");
    (repo, graph)
}

fn reload(repo: &Repository, graph: &CommitGraph) -> (CommitGraph, GraphDelta) {
    let repo = repo.refresh().expect("refreshes");
    graph.reload(&repo).expect("reloads")
}

/// Every (commit, parents) line of a graph.
fn lines(g: &CommitGraph) -> BTreeSet<String> {
    (0..g.len() as u32)
        .map(|i| {
            std::iter::once(g.oid(i).to_hex())
                .chain(g.parents(i).iter().map(|&p| g.oid(p).to_hex()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The reloaded graph must hold what a fresh load holds, with the same refs.
fn assert_same_as_fresh(path: &Path, g: &CommitGraph) {
    let (_, fresh) = load(path);
    assert_eq!(lines(g), lines(&fresh));
    let refs = |g: &CommitGraph| -> BTreeSet<(String, String)> {
        g.refs()
            .iter()
            .map(|r| (r.name.clone(), g.oid(r.commit).to_hex()))
            .collect()
    };
    assert_eq!(refs(g), refs(&fresh));
    assert_eq!(g.head(), fresh.head());
    assert_eq!(
        g.head_commit().map(|c| g.oid(c)),
        fresh.head_commit().map(|c| fresh.oid(c))
    );
    for r in 0..g.len() {
        let c = g.at_row(r).expect("row");
        for &p in g.parents(c) {
            assert!(g.row_of(p) > r, "topological after reload");
        }
        let expected_gen = g
            .parents(c)
            .iter()
            .map(|&p| g.generation(p))
            .max()
            .map_or(1, |x| x + 1);
        assert_eq!(g.generation(c), expected_gen);
    }
}

fn commit(repo: &Path, file: &str, msg: &str) -> String {
    std::fs::write(repo.join(file), msg).expect("write");
    git(repo, &["add", file]);
    git(repo, &["commit", "-q", "-m", msg]);
    git_lines(repo, &["rev-parse", "HEAD"])[0].clone()
}

#[test]
fn new_commit_on_top_is_added_and_rows_stay() {
    let (_tmp, path) = fresh_fixture("linear");
    let path = path.join("repo");
    let (repo, before) = load(&path);
    let old_head = git_lines(&path, &["rev-parse", "HEAD"])[0].clone();
    let new = commit(&path, "new.txt", "brand new commit");
    let (after, delta) = reload(&repo, &before);
    assert_eq!(delta.added, vec![oid(&new)]);
    assert!(delta.removed.is_empty() && !delta.rewritten);
    assert_eq!(
        delta.refs,
        vec![RefChange::Moved {
            name: "refs/heads/main".into(),
            from: oid(&old_head),
            to: oid(&new)
        }]
    );
    assert!(delta.head.is_some());
    assert_eq!(after.len(), before.len() + 1);
    // Every old commit moved down exactly one row, and the new one is on top.
    for r in 0..before.len() {
        assert_eq!(
            before.oid(before.at_row(r).expect("row")),
            after.oid(after.at_row(r + 1).expect("row"))
        );
    }
    assert_eq!(after.oid(after.at_row(0).expect("row")), oid(&new));
    assert_eq!(
        after.summary(after.at_row(0).expect("row")),
        "brand new commit"
    );
    let parent = after.parents(after.at_row(0).expect("row"))[0];
    assert!(after.children(parent).any(|c| after.oid(c) == oid(&new)));
    assert_same_as_fresh(&path, &after);

    // Nothing changed: an empty delta.
    let (again, delta) = reload(&repo, &after);
    assert!(delta.is_empty(), "{delta:?}");
    assert_eq!(again.len(), after.len());
}

#[test]
fn branch_tag_and_stash_changes_are_ref_deltas() {
    let (_tmp, path) = fresh_fixture("merges");
    let path = path.join("repo");
    let (repo, g0) = load(&path);

    git(&path, &["branch", "brand-new", "main~1"]);
    let (g1, d1) = reload(&repo, &g0);
    assert!(d1.added.is_empty() && d1.removed.is_empty());
    assert_eq!(
        d1.refs,
        vec![RefChange::Created {
            name: "refs/heads/brand-new".into(),
            to: oid(&git_lines(&path, &["rev-parse", "main~1"])[0])
        }]
    );

    git(&path, &["tag", "-d", "light"]);
    let (g2, d2) = reload(&repo, &g1);
    assert!(
        matches!(&d2.refs[..], [RefChange::Deleted { name, .. }] if name == "refs/tags/light"),
        "{d2:?}"
    );
    assert!(d2.added.is_empty() && d2.removed.is_empty());

    std::fs::write(path.join("a.txt"), "stashed change\n").expect("write");
    let status = git_command(&path, &["stash", "push", "-q", "-m", "reload stash"])
        .status()
        .expect("git runs");
    assert!(status.success());
    let stash = git_lines(&path, &["rev-parse", "refs/stash"])[0].clone();
    let (g3, d3) = reload(&repo, &g2);
    assert_eq!(
        d3.added.len(),
        2,
        "the stash commit and its index commit: {d3:?}"
    );
    assert_eq!(d3.added[0], oid(&stash));
    assert!(d3.refs.contains(&RefChange::Created {
        name: "stash@{0}".into(),
        to: oid(&stash)
    }));
    assert_same_as_fresh(&path, &g3);
}

#[test]
fn amend_and_rebase_remove_and_add_commits() {
    let (_tmp, path) = fresh_fixture("linear");
    let path = path.join("repo");
    let (repo, g0) = load(&path);
    let old_head = git_lines(&path, &["rev-parse", "HEAD"])[0].clone();
    git(&path, &["commit", "-q", "--amend", "-m", "amended message"]);
    let new_head = git_lines(&path, &["rev-parse", "HEAD"])[0].clone();
    let (g1, d1) = reload(&repo, &g0);
    assert_eq!(d1.removed, vec![oid(&old_head)]);
    assert_eq!(d1.added, vec![oid(&new_head)]);
    assert!(d1.rewritten);
    assert_same_as_fresh(&path, &g1);

    // Rebase a three-commit branch onto a new main commit: three removed, four added.
    git(&path, &["checkout", "-q", "-b", "topic", "HEAD~3"]);
    let mut old_topic = Vec::new();
    for i in 0..3 {
        old_topic.push(commit(
            &path,
            &format!("topic{i}.txt"),
            &format!("topic {i}"),
        ));
    }
    git(&path, &["checkout", "-q", "main"]);
    let (g2, d2) = reload(&repo, &g1);
    assert_eq!(d2.added.len(), 3);
    commit(&path, "main-extra.txt", "main moves on");
    git(&path, &["rebase", "-q", "main", "topic"]);
    let (g3, d3) = reload(&repo, &g2);
    let removed: BTreeSet<_> = d3.removed.iter().copied().collect();
    let expected: BTreeSet<_> = old_topic.iter().map(|h| oid(h)).collect();
    assert_eq!(removed, expected);
    assert_eq!(d3.added.len(), 4);
    assert_same_as_fresh(&path, &g3);
}

#[test]
fn gc_moving_objects_into_a_pack_changes_nothing() {
    let (_tmp, path) = fresh_fixture("linear");
    let path = path.join("repo");
    let (repo, g0) = load(&path);
    git(&path, &["gc", "-q"]);
    let (g1, d1) = reload(&repo, &g0);
    assert!(d1.is_empty(), "{d1:?}");
    assert_same_as_fresh(&path, &g1);
    let new = commit(&path, "after-gc.txt", "after gc");
    let (_, d2) = reload(&repo, &g1);
    assert_eq!(d2.added, vec![oid(&new)]);
}

#[test]
fn deepening_a_shallow_clone_adds_the_older_history() {
    let (_tmp, path) = fresh_fixture("clones");
    let shallow = path.join("shallow");
    let (repo, g0) = load(&shallow);
    git(&shallow, &["fetch", "-q", "--deepen=4"]);
    let (g1, d1) = reload(&repo, &g0);
    assert!(d1.rewritten);
    assert!(!d1.added.is_empty());
    assert_same_as_fresh(&shallow, &g1);
}

#[test]
fn many_reloads_in_a_row_keep_indexes_consistent() {
    let (_tmp, path) = fresh_fixture("linear");
    let path = path.join("repo");
    let (repo, mut g) = load(&path);
    for i in 0..12 {
        let new = commit(&path, "loop.txt", &format!("loop {i}"));
        let (next, delta) = reload(&repo, &g);
        assert_eq!(delta.added, vec![oid(&new)]);
        assert_eq!(next.find(&oid(&new)), next.at_row(0));
        g = next;
    }
    assert_same_as_fresh(&path, &g);
    for i in 0..g.len() as u32 {
        assert_eq!(g.find(&g.oid(i)), Some(i));
    }
}
