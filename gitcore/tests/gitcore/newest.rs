//! The newest commits of a history (a first screen shown before the whole load) against
//! `git rev-list --date-order` and against the whole graph.

use std::collections::HashSet;

use gitcore::graph::{CommitGraph, NewestCommits, NewestOptions};
use gitcore::oid::ObjectId;
use gitcore::repo::Repository;

use crate::common::{all_repos, fixture, git_lines};

fn whole(path: &std::path::Path) -> CommitGraph {
    let repo = Repository::discover(path).expect("opens");
    CommitGraph::load(&repo).expect("loads")
}

fn newest(path: &std::path::Path, rows: usize, below_head: usize, max: usize) -> NewestCommits {
    let repo = Repository::discover(path).expect("opens");
    CommitGraph::load_newest(
        &repo,
        NewestOptions {
            rows,
            below_head,
            max_rows: max,
        },
    )
    .expect("reads the newest commits")
}

/// Each row as `id parent parent...`, top row first.
fn rows_with_parents(g: &CommitGraph) -> Vec<String> {
    (0..g.len())
        .map(|r| {
            let c = g.at_row(r).expect("row");
            std::iter::once(g.oid(c).to_hex())
                .chain(g.parents(c).iter().map(|&p| g.oid(p).to_hex()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Every tip of the whole graph (refs, stash entries, worktree HEADs, HEAD) as an argument.
fn tip_args(g: &CommitGraph) -> Vec<String> {
    let mut tips: Vec<String> = g
        .refs()
        .iter()
        .map(|r| g.oid(r.commit).to_hex())
        .chain(g.head_commit().map(|h| g.oid(h).to_hex()))
        .collect();
    tips.sort();
    tips.dedup();
    tips
}

#[test]
fn the_newest_commits_are_the_first_rows_of_git_rev_list_date_order_with_their_parents() {
    // Histories whose commit dates are unique and never go back in time.
    for name in ["linear", "merges", "forge", "bots"] {
        let path = fixture(name).join("repo");
        let all = whole(&path);
        let mut args = vec![
            "--no-replace-objects",
            "rev-list",
            "--date-order",
            "--parents",
        ];
        let tips = tip_args(&all);
        args.extend(tips.iter().map(String::as_str));
        let theirs = git_lines(&path, &args);
        assert_eq!(
            theirs.len(),
            all.len(),
            "{name}: git lists the same history"
        );
        for k in [1, 2, 3, 7, 20, 100, theirs.len(), theirs.len() + 5] {
            let n = newest(&path, k, 0, k);
            let taken = k.min(theirs.len());
            assert_eq!(n.graph.len(), taken, "{name}: {k} rows asked");
            assert_eq!(n.complete, k >= theirs.len(), "{name}: {k} rows asked");
            // git's first rows, each with the parents that are among them.
            let first: HashSet<&str> = theirs[..taken]
                .iter()
                .map(|l| l.split(' ').next().expect("id"))
                .collect();
            let expected: Vec<String> = theirs[..taken]
                .iter()
                .map(|l| {
                    let mut ids = l.split(' ');
                    std::iter::once(ids.next().expect("id"))
                        .chain(ids.filter(|p| first.contains(p)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            assert_eq!(rows_with_parents(&n.graph), expected, "{name}: {k} rows");
        }
    }
}

#[test]
fn the_newest_commits_of_every_fixture_are_part_of_the_whole_graph_and_all_of_it_when_complete() {
    for (name, path) in all_repos() {
        let all = whole(&path);
        for k in [1, 10, 60, usize::MAX] {
            let n = newest(&path, k, 0, k);
            let g = &n.graph;
            assert_eq!(n.complete, g.len() == all.len(), "{name}: {k}");
            assert!(g.has_metadata(), "{name}: authors and subjects are read");
            let taken: HashSet<ObjectId> = (0..g.len() as u32).map(|i| g.oid(i)).collect();
            for i in 0..g.len() as u32 {
                let id = g.oid(i);
                let w = all.find(&id).expect("a commit of the whole graph");
                let parents: Vec<ObjectId> = g.parents(i).iter().map(|&p| g.oid(p)).collect();
                let whole_parents: Vec<ObjectId> = all
                    .parents(w)
                    .iter()
                    .map(|&p| all.oid(p))
                    .filter(|p| taken.contains(p))
                    .collect();
                assert_eq!(parents, whole_parents, "{name}: parents of {id}");
                assert_eq!(g.author(i), all.author(w), "{name}: {id}");
                assert_eq!(g.author_time(i), all.author_time(w), "{name}: {id}");
                assert_eq!(g.commit_time(i), all.commit_time(w), "{name}: {id}");
                assert_eq!(g.summary(i), all.summary(w), "{name}: {id}");
            }
            for r in all.refs() {
                if taken.contains(&all.oid(r.commit)) {
                    let placed = g
                        .refs()
                        .iter()
                        .find(|p| p.name == r.name)
                        .unwrap_or_else(|| panic!("{name}: {} placed", r.name));
                    assert_eq!(g.oid(placed.commit), all.oid(r.commit), "{name}");
                    assert_eq!(placed.target, r.target, "{name}: {}", r.name);
                    assert_eq!(placed.kind, r.kind, "{name}: {}", r.name);
                }
            }
            assert_eq!(g.head(), all.head(), "{name}");
            let head_taken = all.head_commit().filter(|&h| taken.contains(&all.oid(h)));
            assert_eq!(
                g.head_commit().map(|h| g.oid(h)),
                head_taken.map(|h| all.oid(h)),
                "{name}: HEAD's commit"
            );
            // Commits whose parents were not all taken are where the history goes on.
            for i in 0..g.len() as u32 {
                let id = g.oid(i);
                let w = all.find(&id).expect("in the whole graph");
                let cut = all.parents(w).iter().any(|&p| !taken.contains(&all.oid(p)));
                assert_eq!(
                    g.is_shallow(&id),
                    cut || all.is_shallow(&id),
                    "{name}: {id} cut"
                );
            }
            if n.complete {
                // The whole history: the same rows in the same order as the whole load.
                assert_eq!(rows_with_parents(g), rows_with_parents(&all), "{name}");
                assert_eq!(g.refs().len(), all.refs().len(), "{name}");
            }
        }
    }
}

#[test]
fn a_first_screen_waits_for_heads_commit_and_a_screen_below_it_up_to_its_cap() {
    // 250 pull requests, each newer than main's tip: HEAD (main) is the 251st newest commit.
    let path = fixture("forge").join("repo");
    let all = whole(&path);
    let head = all.head_commit().expect("HEAD has a commit");
    let n = newest(&path, 10, 20, 5000);
    let g = &n.graph;
    let h = g.head_commit().expect("HEAD's commit taken");
    assert_eq!(g.oid(h), all.oid(head));
    assert_eq!(
        g.len() - 1 - g.row_of(h),
        20,
        "a screen of rows below HEAD, no more"
    );
    assert!(!n.complete);

    // Capped before HEAD came: the newest commits anyway, HEAD still named.
    let n = newest(&path, 10, 20, 100);
    assert_eq!(n.graph.len(), 100);
    assert_eq!(n.graph.head_commit(), None);
    assert_eq!(n.graph.head(), all.head());

    // Enough rows asked: HEAD and its screen come within them.
    let n = newest(&path, 400, 20, 5000);
    assert_eq!(n.graph.len(), 400);
    assert!(n.graph.head_commit().is_some());
}
