//! Lane layout: invariants on every fixture, stability under new commits, windows against a
//! brute-force oracle, the lane cap and ref filters.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use gitcore::graph::{CommitGraph, RefKind};
use gitcore::layout::{Layout, LayoutOptions, OVERFLOW, RefFilter};
use gitcore::repo::Repository;

use crate::common::{all_repos, fixture, fresh_fixture, git, git_lines, oid};

fn load(path: &Path) -> CommitGraph {
    CommitGraph::load(&Repository::discover(path).expect("opens")).expect("loads")
}

/// Every drawn cell (lane, row) is used once: commits by themselves, edges by the rows strictly
/// between child and parent in their track.
fn assert_no_overlap(name: &str, layout: &Layout) {
    let all = layout.window(0, layout.len());
    let mut cells: HashMap<(u16, usize), String> = HashMap::new();
    for r in &all.rows {
        if r.lane != OVERFLOW {
            let prev = cells.insert((r.lane, r.row), format!("commit at row {}", r.row));
            assert!(
                prev.is_none(),
                "{name}: commit cell ({}, {}) reused: {prev:?}",
                r.lane,
                r.row
            );
        }
    }
    for r in &all.rows {
        for e in &r.edges {
            if e.track == OVERFLOW {
                continue;
            }
            // A first-parent edge in the child's lane also covers the child's own cell.
            for row in r.row + 1..e.parent_row {
                let what = format!("edge {} -> {}", r.row, e.parent_row);
                if let Some(prev) = cells.insert((e.track, row), what.clone()) {
                    panic!(
                        "{name}: cell ({}, {row}) used by {prev} and {what}",
                        e.track
                    );
                }
            }
        }
    }
}

#[test]
fn every_fixture_has_a_consistent_layout_with_main_in_lane_zero() {
    for (name, path) in all_repos() {
        let graph = load(&path);
        let layout = Layout::build(&graph, LayoutOptions::default());
        // Every commit but a stash's index and untracked-files commits, which are part of the
        // stash's one row: git's `--all` without the stash, plus each entry and its first
        // parent's history.
        let stash: Vec<String> = crate::common::stash_entries(&path);
        let mut args: Vec<String> = [
            "--no-replace-objects",
            "rev-list",
            "--exclude=refs/stash",
            "--all",
        ]
        .map(String::from)
        .to_vec();
        args.extend(stash.iter().map(|w| format!("{w}^1")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rows = git_lines(&path, &args).len() + stash.len();
        assert_eq!(layout.len(), rows, "{name}");
        assert_no_overlap(&name, &layout);
        let mut last = None;
        for row in 0..layout.len() {
            let c = layout.commit_at(row).expect("row");
            assert_eq!(layout.row_of(c), Some(row));
            assert!(
                last < Some(graph.row_of(c)),
                "{name}: same order as the graph"
            );
            last = Some(graph.row_of(c));
        }
        // A stash entry is one row with one edge, to the commit it was made on.
        for w in &stash {
            let c = graph.find(&oid(w)).expect("stash in the graph");
            let row = layout.row_of(c).expect("stash row");
            let r = &layout.window(row, 1).rows[0];
            assert_eq!(r.edges.len(), 1, "{name}: stash {w}");
        }
        if let Some(head) = graph.head_commit()
            && matches!(graph.head(), Some(gitcore::refs::Head::Branch { .. }))
        {
            for c in graph.first_parent_chain(head) {
                assert_eq!(layout.lane_of(c), Some(0), "{name}: main chain in lane 0");
            }
        }
        // Nothing but the main chain uses lane 0.
        let main: BTreeSet<u32> = graph
            .head_commit()
            .filter(|_| matches!(graph.head(), Some(gitcore::refs::Head::Branch { .. })))
            .map(|h| graph.first_parent_chain(h).collect())
            .unwrap_or_default();
        for row in layout.window(0, layout.len()).rows {
            if row.lane == 0 && !main.is_empty() {
                assert!(
                    main.contains(&row.commit),
                    "{name}: lane 0 is the main chain only"
                );
            }
            for e in row.edges.iter().skip(1) {
                assert_ne!(e.track, 0, "{name}: merge edges never run in lane 0");
            }
            // Colours: 0 is the main chain's alone; a chain continuing in its parent's lane keeps
            // the parent's colour; edges take the child's (first parent) or parent's (merge).
            assert!(row.color < gitcore::layout::COLORS);
            if !main.is_empty() {
                assert_eq!(
                    row.color == 0,
                    main.contains(&row.commit),
                    "{name}: colour 0"
                );
            }
            if let Some(first) = row.edges.first() {
                assert_eq!(first.color, row.color, "{name}: first-parent edge colour");
                if first.parent_lane == row.lane && first.parent_row == row.row + 1 {
                    assert_eq!(layout.color_of(first.parent), Some(row.color), "{name}");
                }
            }
            for e in row.edges.iter().skip(1) {
                assert_eq!(
                    layout.color_of(e.parent),
                    Some(e.color),
                    "{name}: merge edge"
                );
            }
        }
    }
}

#[test]
fn straight_branches_continue_their_first_parent_lane() {
    let path = fixture("merges").join("repo");
    let graph = load(&path);
    let layout = Layout::build(&graph, LayoutOptions::default());
    let feature = graph
        .find(&oid(&git_lines(&path, &["rev-parse", "feature"])[0]))
        .expect("feature");
    let feature1 = graph.parents(feature)[0];
    assert_eq!(layout.lane_of(feature), layout.lane_of(feature1));
    assert_ne!(layout.lane_of(feature), Some(0));
    assert_eq!(layout.color_of(feature), layout.color_of(feature1));
    assert_ne!(layout.color_of(feature), Some(0));
}

#[test]
fn windows_list_exactly_the_edges_crossing_their_top() {
    for fixture_name in ["merges", "deep_deltas", "stash"] {
        let path = fixture(fixture_name).join("repo");
        let graph = load(&path);
        let layout = Layout::build(&graph, LayoutOptions::default());
        let all = layout.window(0, layout.len()).rows;
        for start in 0..layout.len() {
            for limit in [1, 3, 17] {
                let w = layout.window(start, limit);
                assert_eq!(w.rows.len(), limit.min(layout.len() - start));
                assert_eq!(w.rows[..], all[start..start + w.rows.len()]);
                let expected: BTreeSet<(usize, usize, u16)> = all[..start]
                    .iter()
                    .flat_map(|r| {
                        r.edges
                            .iter()
                            .filter(|e| e.parent_row >= start && e.track != OVERFLOW)
                            .map(move |e| (r.row, e.parent_row, e.track))
                    })
                    .collect();
                let got: BTreeSet<(usize, usize, u16)> = w
                    .through
                    .iter()
                    .filter(|t| t.edge.track != OVERFLOW)
                    .map(|t| (t.child_row, t.edge.parent_row, t.edge.track))
                    .collect();
                assert_eq!(got, expected, "{fixture_name}: window at {start}+{limit}");
            }
        }
    }
}

#[test]
fn lane_cap_overflows_instead_of_growing() {
    let graph = load(&fixture("merges").join("repo"));
    let options = LayoutOptions {
        max_lanes: 3,
        ..LayoutOptions::default()
    };
    let layout = Layout::build(&graph, options);
    assert!(layout.width() <= 3);
    let rows = layout.window(0, layout.len()).rows;
    assert!(
        rows.iter().any(|r| r.lane == OVERFLOW),
        "merges needs more than 3 lanes"
    );
    assert_no_overlap("capped", &layout);
}

#[test]
fn filters_hide_commits_only_reachable_from_hidden_refs() {
    let path = fixture("merges").join("repo");
    let graph = load(&path);
    let options = LayoutOptions {
        filter: RefFilter {
            hide_kinds: vec![RefKind::Pull, RefKind::Notes],
            hide_globs: vec!["o*".into(), "lonely".into()],
            ..RefFilter::default()
        },
        ..LayoutOptions::default()
    };
    let layout = Layout::build(&graph, options);
    let pr = graph
        .find(&oid(
            &git_lines(&path, &["rev-parse", "refs/pull/1/head"])[0]
        ))
        .expect("pr");
    assert_eq!(layout.row_of(pr), None, "pull-only commit hidden");
    let lonely = graph
        .find(&oid(&git_lines(&path, &["rev-parse", "lonely"])[0]))
        .expect("lonely");
    assert_eq!(layout.row_of(lonely), None, "glob-hidden branch hidden");
    // o1..o3 are merged into main, so they stay visible through main.
    let o1 = graph
        .find(&oid(&git_lines(&path, &["rev-parse", "o1"])[0]))
        .expect("o1");
    assert!(layout.row_of(o1).is_some());
    let expected: BTreeSet<String> = git_lines(
        &path,
        &[
            "--no-replace-objects",
            "rev-list",
            "--exclude=refs/heads/o*",
            "--exclude=refs/remotes/o*",
            "--exclude=refs/tags/o*",
            "--exclude=refs/heads/lonely",
            "--exclude=refs/pull/*",
            "--exclude=refs/notes/*",
            "--all",
        ],
    )
    .into_iter()
    .collect();
    let shown: BTreeSet<String> = (0..layout.len())
        .map(|r| graph.oid(layout.commit_at(r).expect("row")).to_hex())
        .collect();
    assert_eq!(shown, expected);
    assert_no_overlap("filtered", &layout);
    let fp = Layout::build(
        &graph,
        LayoutOptions {
            first_parent_only: true,
            ..LayoutOptions::default()
        },
    );
    assert!(
        fp.window(0, fp.len())
            .rows
            .iter()
            .all(|r| r.edges.len() <= 1)
    );
    assert_no_overlap("first-parent", &fp);
}

#[test]
fn commits_added_on_top_keep_every_existing_lane() {
    let (_tmp, path) = fresh_fixture("merges");
    let path = path.join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let g0 = CommitGraph::load(&repo).expect("loads");
    let l0 = Layout::build(&g0, LayoutOptions::default());
    // New commits: on main, on a side branch, a merge of an old branch tip, a new branch.
    std::fs::write(path.join("new.txt"), "1").expect("write");
    git(&path, &["add", "new.txt"]);
    git(&path, &["commit", "-q", "-m", "on main"]);
    git(&path, &["checkout", "-q", "feature"]);
    std::fs::write(path.join("f3.txt"), "1").expect("write");
    git(&path, &["add", "f3.txt"]);
    git(&path, &["commit", "-q", "-m", "feature 3"]);
    git(&path, &["checkout", "-q", "main"]);
    git(
        &path,
        &[
            "merge",
            "-q",
            "--no-ff",
            "cross1",
            "-m",
            "merge cross1 again",
        ],
    );
    git(&path, &["checkout", "-q", "-b", "brand-new", "main~3"]);
    std::fs::write(path.join("b.txt"), "1").expect("write");
    git(&path, &["add", "b.txt"]);
    git(&path, &["commit", "-q", "-m", "brand new branch"]);
    git(&path, &["checkout", "-q", "main"]);
    let repo = repo.refresh().expect("refresh");
    let (g1, delta) = g0.reload(&repo).expect("reloads");
    assert!(!delta.rewritten);
    assert_eq!(delta.added.len(), 4);
    let l1 = l0.extend(&g1).expect("extends");
    for c in 0..g0.len() as u32 {
        assert_eq!(l0.lane_of(c), l1.lane_of(c), "commit {c} kept its lane");
        assert_eq!(l0.color_of(c), l1.color_of(c), "commit {c} kept its colour");
    }
    assert_eq!(l1.len(), g1.len());
    assert_no_overlap("extended", &l1);
    let head = g1.head_commit().expect("head");
    assert_eq!(l1.lane_of(head), Some(0), "new main commits go to lane 0");
    assert_eq!(l1.commit_at(0), g1.at_row(0));
}

#[test]
fn forge_mirror_pull_refs_stay_within_the_lane_cap() {
    let path = fixture("forge").join("repo");
    let graph = load(&path);
    assert_eq!(graph.len(), git_lines(&path, &["rev-list", "--all"]).len());
    let cap = 32;
    let layout = Layout::build(
        &graph,
        LayoutOptions {
            max_lanes: cap,
            ..LayoutOptions::default()
        },
    );
    assert!(layout.width() <= cap);
    assert_no_overlap("forge", &layout);
    // Every window is bounded by its rows and the lane cap, however many pull requests are open.
    for start in (0..layout.len()).step_by(7) {
        let w = layout.window(start, 50);
        assert!(
            w.through.len() <= usize::from(cap) + 1,
            "{} edges into row {start}",
            w.through.len()
        );
    }
    let hidden = Layout::build(
        &graph,
        LayoutOptions {
            filter: RefFilter {
                hide_kinds: vec![RefKind::Pull],
                ..RefFilter::default()
            },
            ..LayoutOptions::default()
        },
    );
    assert_eq!(hidden.len(), git_lines(&path, &["rev-list", "main"]).len());
    assert_eq!(
        hidden.width(),
        1,
        "without pull refs the history is one line"
    );
}

#[test]
fn hiding_merges_draws_children_to_the_first_non_merge_below() {
    for fixture_name in ["merges", "search"] {
        let path = fixture(fixture_name).join("repo");
        let graph = load(&path);
        let layout = Layout::build(
            &graph,
            LayoutOptions {
                hide_merges: true,
                ..LayoutOptions::default()
            },
        );
        let no_merges = git_lines(
            &path,
            &["--no-replace-objects", "rev-list", "--all", "--no-merges"],
        );
        assert_eq!(layout.len(), no_merges.len(), "{fixture_name}");
        assert_no_overlap(fixture_name, &layout);
        let rows = layout.window(0, layout.len()).rows;
        let shown: BTreeSet<String> = rows.iter().map(|r| graph.oid(r.commit).to_hex()).collect();
        assert_eq!(shown, no_merges.iter().cloned().collect(), "{fixture_name}");
        for r in &rows {
            let mut expected: Vec<String> = Vec::new();
            for p in graph.parents(r.commit) {
                let mut p = *p;
                while graph.parents(p).len() >= 2 {
                    p = graph.parents(p)[0];
                }
                let hex = graph.oid(p).to_hex();
                if !expected.contains(&hex) {
                    expected.push(hex);
                }
            }
            let drawn: Vec<String> = r
                .edges
                .iter()
                .map(|e| graph.oid(e.parent).to_hex())
                .collect();
            assert_eq!(
                drawn,
                expected,
                "{fixture_name}: edges of {}",
                graph.oid(r.commit)
            );
            // git agrees that each such parent is an ancestor reached through merges only.
            for p in &drawn {
                let ok = crate::common::git_command(
                    &path,
                    &[
                        "--no-replace-objects",
                        "merge-base",
                        "--is-ancestor",
                        p,
                        &graph.oid(r.commit).to_hex(),
                    ],
                )
                .status()
                .expect("git")
                .success();
                assert!(ok, "{fixture_name}: {p} is an ancestor");
            }
        }
    }
}

#[test]
fn a_merge_of_a_hundred_thousand_parents_draws_a_bounded_row() {
    // Regression: the window de-duplicated passing edges with a scan per edge, so a window
    // below this merge did ~10^10 comparisons. Now each row draws at most MAX_DRAWN_EDGES edges
    // and says how many more parents it has.
    use gitcore::layout::MAX_DRAWN_EDGES;
    let path = fixture("many_parents").join("repo");
    let g = load(&path);
    let merge_hex = String::from_utf8(git(&path, &["rev-parse", "HEAD~1"])).expect("utf-8");
    let merge = g.find(&oid(merge_hex.trim())).expect("merge loaded");
    let parents_git = git_lines(&path, &["log", "-1", "--format=%P", "HEAD~1"])
        .first()
        .map(|l| l.split(' ').count())
        .expect("parents");
    assert_eq!(
        g.parents(merge).len(),
        parents_git,
        "every parent is read, as git reads it"
    );
    let layout = Layout::build(&g, LayoutOptions::default());
    let row = layout.row_of(merge).expect("shown");
    let w = layout.window(row, 3);
    let merge_row = &w.rows[0];
    assert_eq!(merge_row.edges.len(), MAX_DRAWN_EDGES);
    assert_eq!(merge_row.more_parents, parents_git - MAX_DRAWN_EDGES);
    assert_eq!(
        merge_row.edges[0].parent,
        g.parents(merge)[0],
        "the first parent comes first"
    );
    let drawn: Vec<_> = merge_row.edges.iter().map(|e| e.parent).collect();
    assert_eq!(
        drawn,
        g.parents(merge)[..MAX_DRAWN_EDGES],
        "in parent order"
    );
    // Windows below it: what passes through is bounded by the drawn edges, each once.
    for start in [row + 1, row + 2, layout.len() / 2, layout.len() - 5] {
        let w = layout.window(start, 100);
        assert!(
            w.through.len() <= MAX_DRAWN_EDGES + 64,
            "{} passing edges",
            w.through.len()
        );
        let unique: BTreeSet<(usize, usize, u16)> = w
            .through
            .iter()
            .map(|t| (t.child_row, t.edge.parent_row, t.edge.track))
            .collect();
        assert_eq!(unique.len(), w.through.len(), "no edge twice");
    }
}

#[test]
fn the_standard_view_hides_forge_refs_notes_and_remote_heads_like_git_log_exclude() {
    let (_tmp, path) = fresh_fixture("merges");
    let path = path.join("repo");
    // A Gerrit change and a GitLab merge request, each on a commit nothing else reaches, and a
    // remote with its HEAD pointer.
    for (n, r) in ["refs/changes/01/1/1", "refs/merge-requests/7/head"]
        .iter()
        .enumerate()
    {
        let tree = git_lines(&path, &["rev-parse", "HEAD^{tree}"]).remove(0);
        let c = git_lines(
            &path,
            &[
                "commit-tree",
                &tree,
                "-p",
                "HEAD",
                "-m",
                &format!("change {n}"),
            ],
        )
        .remove(0);
        git(&path, &["update-ref", r, &c]);
    }
    git(&path, &["update-ref", "refs/remotes/origin/main", "HEAD~1"]);
    git(
        &path,
        &[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/remotes/origin/main",
        ],
    );
    let graph = load(&path);
    let layout = Layout::build(&graph, LayoutOptions::standard());
    let expected: BTreeSet<String> = git_lines(
        &path,
        &[
            "--no-replace-objects",
            "rev-list",
            "--exclude=refs/pull/*",
            "--exclude=refs/merge-requests/*",
            "--exclude=refs/changes/*",
            "--exclude=refs/notes/*",
            "--all",
        ],
    )
    .into_iter()
    .collect();
    let shown: BTreeSet<String> = (0..layout.len())
        .filter_map(|row| layout.commit_at(row))
        .map(|i| graph.oid(i).to_string())
        .collect();
    assert_eq!(shown, expected);
    let everything = git_lines(&path, &["--no-replace-objects", "rev-list", "--all"]).len();
    assert!(
        expected.len() < everything,
        "the fixture has commits only hidden refs reach"
    );
    let filter = &layout.options().filter;
    let named = |name: &str| {
        graph
            .refs()
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} is placed"))
    };
    assert!(!filter.includes(named("refs/remotes/origin/HEAD")));
    assert!(filter.includes(named("refs/remotes/origin/main")));
    assert_eq!(named("refs/changes/01/1/1").kind, RefKind::Pull);
    // The neutral default shows everything, as `git log --all`.
    let all = Layout::build(&graph, LayoutOptions::default());
    assert_eq!(all.len(), everything);
}

#[test]
fn only_one_ref_shows_what_git_log_of_that_ref_shows_with_it_in_the_main_lane() {
    let path = fixture("merges").join("repo");
    let graph = load(&path);
    for name in [
        "refs/heads/feature",
        "refs/heads/cross1",
        "refs/tags/v1",
        "refs/heads/main",
    ] {
        let layout = Layout::build(
            &graph,
            LayoutOptions {
                filter: RefFilter {
                    only: Some(name.to_string()),
                    ..RefFilter::default()
                },
                main_ref: Some(name.to_string()),
                ..LayoutOptions::default()
            },
        );
        let expected = git_lines(&path, &["--no-replace-objects", "rev-list", name]);
        let rows: Vec<String> = (0..layout.len())
            .map(|r| graph.oid(layout.commit_at(r).expect("row")).to_hex())
            .collect();
        let mut sorted = rows.clone();
        sorted.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(sorted, want, "{name}");
        // Its first parents take lane 0.
        let tip = graph.find(&oid(&expected[0])).expect("tip");
        if graph
            .refs_at(tip)
            .iter()
            .any(|r| r.name == name && r.kind == RefKind::Branch)
        {
            for c in graph.first_parent_chain(tip) {
                assert_eq!(layout.lane_of(c), Some(0), "{name}");
            }
        }
        assert_no_overlap(name, &layout);
    }
}

#[test]
fn a_subset_view_draws_each_kept_commit_to_its_nearest_kept_ancestors() {
    use gitcore::layout::Subset;
    for (fixture_name, patterns) in [
        (
            "merges",
            &["root", "leg o1|cross|root one", "a$|b$", "2", "merge"][..],
        ),
        ("search", &["engine", "docs|lexer", "Merge"][..]),
        ("bots", &["fix:", "chore", "fix:|chore", "part 1"][..]),
    ] {
        let path = fixture(fixture_name).join("repo");
        let graph = load(&path);
        // git's topology, read back from git: each commit's parents in order.
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        for line in git_lines(
            &path,
            &["--no-replace-objects", "rev-list", "--all", "--parents"],
        ) {
            let mut ids = line.split(' ').map(String::from);
            let c = ids.next().expect("commit");
            parents.insert(c, ids.collect());
        }
        for pattern in patterns {
            let hits: BTreeSet<String> = git_lines(
                &path,
                &[
                    "--no-replace-objects",
                    "rev-list",
                    "--all",
                    "-E",
                    &format!("--grep={pattern}"),
                ],
            )
            .into_iter()
            .collect();
            let subset = Subset::new(
                *pattern,
                graph.len(),
                hits.iter().map(|h| graph.find(&oid(h)).expect("known")),
            );
            assert_eq!(subset.count(), hits.len(), "{pattern}");
            let layout = Layout::build(
                &graph,
                LayoutOptions {
                    subset: Some(subset),
                    ..LayoutOptions::default()
                },
            );
            let name = format!("{fixture_name} {pattern:?}");
            assert_eq!(layout.len(), hits.len(), "{name}: one row per hit");
            assert_no_overlap(&name, &layout);
            // Oracle: depth first from each parent in order, through commits that are not hits,
            // the first hits reached, each once; then without those that are ancestors of
            // another (in git's topology): their edges say nothing new.
            let ancestors = |c: &str| {
                let mut seen = BTreeSet::new();
                let mut stack: Vec<&String> = parents[c].iter().collect();
                while let Some(p) = stack.pop() {
                    if seen.insert(p.clone()) {
                        stack.extend(parents[p].iter());
                    }
                }
                seen
            };
            let nearest = |c: &str| {
                let mut out: Vec<String> = Vec::new();
                let mut seen = BTreeSet::new();
                let mut stack: Vec<String> = parents[c].iter().rev().cloned().collect();
                while let Some(p) = stack.pop() {
                    if !seen.insert(p.clone()) {
                        continue;
                    }
                    if hits.contains(&p) {
                        if !out.contains(&p) {
                            out.push(p);
                        }
                    } else {
                        stack.extend(parents[&p].iter().rev().cloned());
                    }
                }
                let below: Vec<BTreeSet<String>> = out.iter().map(|y| ancestors(y)).collect();
                let all = out.clone();
                out.retain(|x| !below.iter().zip(&all).any(|(b, y)| y != x && b.contains(x)));
                out
            };
            for r in layout.window(0, layout.len()).rows {
                let hex = graph.oid(r.commit).to_hex();
                assert!(hits.contains(&hex), "{name}: {hex} is a hit");
                let drawn: Vec<String> = r
                    .edges
                    .iter()
                    .map(|e| graph.oid(e.parent).to_hex())
                    .collect();
                assert_eq!(drawn, nearest(&hex), "{name}: edges of {hex}");
            }
            // The main branch's hits are its lane.
            let main = graph
                .refs()
                .iter()
                .find(|r| r.name == "refs/heads/main")
                .expect("main");
            for c in graph.first_parent_chain(main.commit) {
                if hits.contains(&graph.oid(c).to_hex()) {
                    assert_eq!(layout.lane_of(c), Some(0), "{name}: {}", graph.oid(c));
                }
            }
        }
    }
}
