//! The commit graph against `git rev-list`.

use std::collections::{BTreeSet, HashMap};

use gitcore::graph::{CommitGraph, RefKind};
use gitcore::refs::Head;
use gitcore::repo::Repository;

use crate::common::{all_repos, fixture, git_lines, oid};

fn load(path: &std::path::Path) -> CommitGraph {
    let repo = Repository::discover(path).expect("opens");
    CommitGraph::load(&repo).expect("loads")
}

/// The commits `git rev-list --all` prints (HEAD, every ref; only the newest stash entry).
fn rev_list_set(graph: &CommitGraph) -> BTreeSet<String> {
    let mut seen = vec![false; graph.len()];
    let mut stack: Vec<u32> = graph
        .refs()
        .iter()
        .filter(|r| r.kind != RefKind::Stash || r.name == "stash@{0}")
        .map(|r| r.commit)
        .chain(graph.head_commit())
        .collect();
    while let Some(c) = stack.pop() {
        if !std::mem::replace(&mut seen[c as usize], true) {
            stack.extend(graph.parents(c));
        }
    }
    (0..graph.len() as u32)
        .filter(|&i| seen[i as usize])
        .map(|i| {
            let mut line = graph.oid(i).to_hex();
            for &p in graph.parents(i) {
                line.push(' ');
                line.push_str(&graph.oid(p).to_hex());
            }
            line
        })
        .collect()
}

#[test]
fn commits_and_parents_equal_rev_list_all_parents_in_every_fixture() {
    for (name, path) in all_repos() {
        let graph = load(&path);
        let ours = rev_list_set(&graph);
        let theirs: BTreeSet<String> = git_lines(
            &path,
            &["--no-replace-objects", "rev-list", "--all", "--parents"],
        )
        .into_iter()
        .collect();
        assert_eq!(ours, theirs, "commit set and parents differ in {name}");
    }
}

#[test]
fn whole_graph_includes_every_stash_entry_and_equals_rev_list_with_them() {
    let path = fixture("stash").join("repo");
    let graph = load(&path);
    let stash = git_lines(&path, &["log", "-g", "--format=%H", "refs/stash"]);
    assert_eq!(stash.len(), 4, "four stash entries");
    let mut args = vec!["rev-list", "--parents", "--all"];
    args.extend(stash.iter().map(String::as_str));
    let theirs: BTreeSet<String> = git_lines(&path, &args).into_iter().collect();
    let ours: BTreeSet<String> = (0..graph.len() as u32)
        .map(|i| {
            std::iter::once(graph.oid(i).to_hex())
                .chain(graph.parents(i).iter().map(|&p| graph.oid(p).to_hex()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(ours, theirs);
    for (n, hex) in stash.iter().enumerate() {
        let r = graph
            .refs()
            .iter()
            .find(|r| r.name == format!("stash@{{{n}}}"))
            .expect("stash entry placed");
        assert_eq!(graph.oid(r.commit), oid(hex), "stash@{{{n}}}");
        assert_eq!(r.kind, RefKind::Stash);
    }
}

#[test]
fn rows_are_topological_with_newest_first_among_ready_commits() {
    for (name, path) in all_repos() {
        let graph = load(&path);
        for row in 0..graph.len() {
            let c = graph.at_row(row).expect("row exists");
            assert_eq!(graph.row_of(c), row);
            for &p in graph.parents(c) {
                assert!(
                    graph.row_of(p) > row,
                    "{name}: parent above child at row {row}"
                );
            }
        }
    }
    // On a linear history with increasing dates the order is exactly git log's.
    let path = fixture("linear").join("repo");
    let graph = load(&path);
    let ours: Vec<String> = (0..graph.len())
        .map(|r| graph.oid(graph.at_row(r).expect("row")).to_hex())
        .collect();
    assert_eq!(
        ours,
        git_lines(&path, &["rev-list", "--all", "--date-order"])
    );
}

#[test]
fn metadata_matches_git_log() {
    for fixture_name in ["merges", "encodings", "oddities", "stash"] {
        let path = fixture(fixture_name).join("repo");
        let graph = load(&path);
        let lines = git_lines(
            &path,
            &[
                "--no-replace-objects",
                "log",
                "--all",
                "--format=%H%x09%an%x09%ae%x09%at%x09%ct%x09%s",
            ],
        );
        for line in lines {
            let f: Vec<&str> = line.splitn(6, '\t').collect();
            let i = graph.find(&oid(f[0])).expect("commit in graph");
            let author = graph.author(i);
            assert_eq!(author.name, f[1], "{fixture_name} {}", f[0]);
            assert_eq!(author.email, f[2]);
            assert_eq!(graph.author_time(i).to_string(), f[3]);
            assert_eq!(graph.commit_time(i).to_string(), f[4]);
            let expected_summary = f.get(5).copied().unwrap_or("");
            if expected_summary.len() < 4096 {
                assert_eq!(
                    graph.summary(i),
                    expected_summary,
                    "{fixture_name} {}",
                    f[0]
                );
            }
        }
    }
}

#[test]
fn odd_time_zone_is_kept() {
    let path = fixture("oddities").join("repo");
    let graph = load(&path);
    let odd = graph
        .find(&oid(&git_lines(&path, &["rev-parse", "odd"])[0]))
        .expect("odd commit");
    assert_eq!(graph.author_tz(odd), 518 * 60);
    assert_eq!(graph.summary(odd), "no final newline");
}

#[test]
fn children_generations_first_parent_and_refs_answer_consistently() {
    let path = fixture("merges").join("repo");
    let graph = load(&path);
    let mut children: HashMap<u32, BTreeSet<u32>> = HashMap::new();
    for i in 0..graph.len() as u32 {
        for &p in graph.parents(i) {
            children.entry(p).or_default().insert(i);
        }
        let expected_gen = graph
            .parents(i)
            .iter()
            .map(|&p| graph.generation(p))
            .max()
            .map_or(1, |g| g + 1);
        assert_eq!(graph.generation(i), expected_gen);
    }
    for i in 0..graph.len() as u32 {
        let ours: BTreeSet<u32> = graph.children(i).collect();
        assert_eq!(ours, children.get(&i).cloned().unwrap_or_default());
    }
    let head = graph.head_commit().expect("HEAD");
    let chain: Vec<String> = graph
        .first_parent_chain(head)
        .map(|c| graph.oid(c).to_hex())
        .collect();
    assert_eq!(
        chain,
        git_lines(&path, &["rev-list", "--first-parent", "HEAD"])
    );
    let v1 = graph
        .refs()
        .iter()
        .find(|r| r.name == "refs/tags/v1-outer2")
        .expect("tag of a tag placed");
    assert_eq!(
        graph.oid(v1.commit),
        oid(&git_lines(&path, &["rev-parse", "v1-outer2^{commit}"])[0])
    );
    assert!(
        graph
            .refs_at(v1.commit)
            .iter()
            .any(|r| r.name == "refs/tags/v1")
    );
    assert!(
        graph
            .refs()
            .iter()
            .any(|r| r.name == "refs/pull/1/head" && r.kind == RefKind::Pull)
    );
    assert!(
        graph
            .refs()
            .iter()
            .any(|r| r.name == "refs/notes/commits" && r.kind == RefKind::Notes)
    );
    assert!(
        !graph.refs().iter().any(|r| r.name == "refs/tags/tree-tag"),
        "a tag of a tree names no commit"
    );
    let roots = (0..graph.len() as u32)
        .filter(|&i| graph.parents(i).is_empty())
        .count();
    assert_eq!(
        roots,
        git_lines(&path, &["rev-list", "--all", "--max-parents=0"]).len()
    );
}

#[test]
fn shallow_commits_are_roots_without_problems() {
    let path = fixture("clones").join("shallow");
    let graph = load(&path);
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
    for line in std::fs::read_to_string(path.join(".git/shallow"))
        .expect("shallow file")
        .lines()
    {
        let i = graph.find(&oid(line)).expect("shallow commit loaded");
        assert!(graph.parents(i).is_empty());
        assert!(graph.is_shallow(&oid(line)));
    }
}

#[test]
fn head_states() {
    let detached = load(&fixture("detached").join("repo"));
    assert!(matches!(detached.head(), Some(Head::Detached(_))));
    assert_eq!(detached.head_commit(), detached.at_row(0));
    let unborn = load(&fixture("unborn").join("repo"));
    assert_eq!(
        unborn.head(),
        Some(&Head::Unborn {
            name: "refs/heads/fresh".into()
        })
    );
    assert_eq!(unborn.head_commit(), None);
    assert_eq!(unborn.len(), 1);
    let empty = load(&fixture("unborn").join("empty"));
    assert!(empty.is_empty());
    assert!(empty.problems().is_empty());
}

#[test]
fn clean_fixtures_load_without_problems() {
    for (name, path) in all_repos() {
        let graph = load(&path);
        assert!(
            graph.problems().is_empty(),
            "{name}: {:?}",
            graph.problems()
        );
    }
}

fn assert_same_graph(name: &str, a: &CommitGraph, b: &CommitGraph) {
    assert_eq!(a.len(), b.len(), "{name}");
    for r in 0..a.len() {
        let (x, y) = (a.at_row(r).expect("row"), b.at_row(r).expect("row"));
        assert_eq!(a.oid(x), b.oid(y), "{name} row {r}");
        assert_eq!(a.summary(x), b.summary(y), "{name} row {r}");
        assert_eq!(a.author(x), b.author(y), "{name} row {r}");
        assert_eq!(a.author_time(x), b.author_time(y), "{name} row {r}");
        assert_eq!(a.commit_time(x), b.commit_time(y), "{name} row {r}");
        let pa: Vec<_> = a.parents(x).iter().map(|&p| a.oid(p)).collect();
        let pb: Vec<_> = b.parents(y).iter().map(|&p| b.oid(p)).collect();
        assert_eq!(pa, pb, "{name} row {r}");
    }
}

#[test]
fn every_load_strategy_gives_the_same_graph() {
    use gitcore::graph::LoadOptions;
    for (name, path) in all_repos() {
        let repo = Repository::discover(&path).expect("opens");
        let reference = CommitGraph::load_with(
            &repo,
            LoadOptions {
                use_commit_graph: false,
                scan_packs: false,
            },
        )
        .expect("loads");
        for options in [
            LoadOptions::default(),
            LoadOptions {
                use_commit_graph: false,
                scan_packs: true,
            },
        ] {
            let g = CommitGraph::load_with(&repo, options).expect("loads");
            assert!(g.has_metadata());
            assert_same_graph(&name, &reference, &g);
        }
    }
}

#[test]
fn commit_graph_gives_topology_first_and_stays_correct_when_stale() {
    use gitcore::graph::LoadOptions;
    for sub in ["full", "repo"] {
        // `full` has a complete commit-graph; `repo` a split chain plus commits made after it.
        let path = fixture("commit_graph").join(sub);
        let repo = Repository::discover(&path).expect("opens");
        let mut topo =
            CommitGraph::load_topology_with(&repo, LoadOptions::default()).expect("loads");
        assert!(
            !topo.has_metadata(),
            "{sub}: topology came from the commit-graph"
        );
        let expected: BTreeSet<String> = git_lines(&path, &["rev-list", "--all", "--parents"])
            .into_iter()
            .collect();
        assert_eq!(rev_list_set(&topo), expected, "{sub}");
        topo.fill_metadata(&repo);
        assert!(topo.has_metadata());
        let decoded = CommitGraph::load_with(
            &repo,
            LoadOptions {
                use_commit_graph: false,
                scan_packs: true,
            },
        )
        .expect("loads");
        assert_same_graph(sub, &decoded, &topo);
    }
    assert!(
        fixture("commit_graph")
            .join("repo/.git/objects/info/commit-graphs/commit-graph-chain")
            .exists()
    );
}

#[test]
fn corrupt_commit_graph_is_reported_and_ignored() {
    let (_tmp, path) = crate::common::fresh_fixture("commit_graph");
    let path = path.join("full");
    let file = path.join(".git/objects/info/commit-graph");
    let mut bytes = std::fs::read(&file).expect("commit-graph");
    // Point the chunk table's first offset past the end of the file.
    bytes[8 + 4..8 + 12].copy_from_slice(&u64::MAX.to_be_bytes());
    std::fs::write(&file, &bytes).expect("write");
    let graph = load(&path);
    assert!(
        graph.problems().iter().any(|p| p.contains("commit-graph")),
        "{:?}",
        graph.problems()
    );
    let expected: BTreeSet<String> = git_lines(&path, &["rev-list", "--all", "--parents"])
        .into_iter()
        .collect();
    assert_eq!(rev_list_set(&graph), expected);
}

#[test]
fn memory_per_commit_is_compact() {
    let graph = load(&fixture("deep_deltas").join("repo"));
    let per_commit = (graph.heap_bytes() - graph.summary_bytes()) / graph.len();
    // Small graphs pay for one chunk's spare capacity; the bound is checked at scale in benches.
    assert!(graph.len() > 300);
    assert!(per_commit < 400, "{per_commit} bytes per commit");
}

#[test]
fn abbreviated_commit_ids_find_every_match() {
    let path = fixture("forge").join("repo");
    let graph = load(&path);
    let all: Vec<String> = git_lines(&path, &["rev-list", "--all"]);
    for hex in all.iter().take(40) {
        for len in [1, 2, 4, 7, 40, hex.len()] {
            let prefix = &hex[..len];
            let expected: BTreeSet<&str> = all
                .iter()
                .map(String::as_str)
                .filter(|h| h.starts_with(prefix))
                .collect();
            let found: BTreeSet<String> = graph
                .find_prefix(&prefix.to_uppercase(), usize::MAX)
                .into_iter()
                .map(|i| graph.oid(i).to_hex())
                .collect();
            let found: BTreeSet<&str> = found.iter().map(String::as_str).collect();
            assert_eq!(found, expected, "prefix {prefix}");
        }
    }
    assert!(graph.find_prefix("zz", 5).is_empty());
    assert_eq!(graph.find_prefix("", 3).len(), 3);
}

#[test]
fn rows_shown_before_the_metadata_is_read_equal_the_filled_graph() {
    use gitcore::graph::LoadOptions;
    let decoding = LoadOptions {
        use_commit_graph: false,
        scan_packs: true,
    };
    for (fixture_name, sub) in [
        ("encodings", "repo"),
        ("forge_pack", "repo"),
        ("merges", "repo"),
        ("commit_graph", "repo"),
    ] {
        let name = format!("{fixture_name}/{sub}");
        let (_tmp, root) = crate::common::fresh_fixture(fixture_name);
        let path = root.join(sub);
        if fixture_name != "commit_graph" {
            crate::common::git(&path, &["commit-graph", "write", "--reachable"]);
        }
        let repo = Repository::discover(&path).expect("opens");
        let topo = CommitGraph::load_topology_with(&repo, LoadOptions::default()).expect("loads");
        assert!(
            !topo.has_metadata(),
            "{name}: topology from the commit-graph"
        );
        let source = topo.load_source();
        // The commit_graph fixture's split chain lacks the commits made after it.
        let after_it = if fixture_name == "commit_graph" { 3 } else { 0 };
        assert!(source.commit_graph, "{name}");
        assert_eq!(source.decoded, after_it, "{name}: {source:?}");
        let full = CommitGraph::load_with(&repo, decoding).expect("loads");
        let source = full.load_source();
        assert!(!source.commit_graph, "{name}");
        assert!(source.decoded >= full.len() / 2, "{name}: {source:?}");

        let all: Vec<_> = (0..topo.len()).filter_map(|r| topo.at_row(r)).collect();
        let early = topo.summaries(&repo, &all);
        let mut filled = topo.clone();
        filled.fill_metadata(&repo);
        assert_eq!(early, filled.summaries(&repo, &all), "{name}");
        for (row, s) in early.iter().enumerate() {
            let c = full.at_row(row).expect("row");
            assert_eq!(s.author, *full.author(c), "{name} row {row}");
            assert_eq!(s.author_time, full.author_time(c), "{name} row {row}");
            assert_eq!(s.summary, full.summary(c), "{name} row {row}");
        }

        // A reload of the topology-only graph appends the new commit after reading the old
        // ones' metadata: the same graph as reloading the filled one.
        let id = crate::common::git_lines(
            &path,
            &[
                "commit-tree",
                "HEAD^{tree}",
                "-p",
                "HEAD",
                "-m",
                "after the commit-graph",
            ],
        );
        crate::common::git(&path, &["update-ref", "HEAD", &id[0]]);
        let repo = repo.refresh().expect("refreshes");
        let (from_topo, delta) = topo.reload(&repo).expect("reloads");
        let (from_full, _) = full.reload(&repo).expect("reloads");
        assert_eq!(delta.added.len(), 1, "{name}");
        assert!(from_topo.has_metadata(), "{name}");
        assert_same_graph(&name, &from_full, &from_topo);
    }
}
