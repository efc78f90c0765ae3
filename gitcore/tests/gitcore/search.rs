//! Searching the whole history, with `git rev-list` (and `git log` output) as the oracle.

use std::collections::BTreeSet;
use std::path::Path;

use gitcore::graph::CommitGraph;
use gitcore::repo::Repository;
use gitcore::search::{Query, search};

use crate::common::{fixture, git_lines};

fn found(path: &Path, q: &str) -> BTreeSet<String> {
    let repo = Repository::discover(path).expect("opens");
    let graph = CommitGraph::load(&repo).expect("loads");
    let query = Query::parse(q, 1_700_100_000).unwrap_or_else(|e| panic!("{q}: {e}"));
    let hits = search(repo.odb(), &graph, &query).expect("searches");
    let rows: Vec<usize> = hits.iter().map(|&c| graph.row_of(c)).collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "{q}: in row order");
    hits.iter().map(|&c| graph.oid(c).to_hex()).collect()
}

fn rev_list(path: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["--no-replace-objects", "rev-list"];
    all.extend_from_slice(args);
    git_lines(path, &all).into_iter().collect()
}

/// Commits whose `git log` line (hash, then the fields of `format`) satisfies `keep`.
fn log_filter(path: &Path, format: &str, keep: impl Fn(&[&str]) -> bool) -> BTreeSet<String> {
    git_lines(
        path,
        &[
            "--no-replace-objects",
            "log",
            "--all",
            &format!("--format=%H%x00{format}"),
        ],
    )
    .iter()
    .filter_map(|l| {
        let f: Vec<&str> = l.split('\0').collect();
        keep(&f[1..]).then(|| f[0].to_string())
    })
    .collect()
}

#[test]
fn qualifiers_match_what_git_selects() {
    let p = fixture("search").join("repo");
    let all = rev_list(&p, &["--all"]);
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "author:grace",
            rev_list(&p, &["--all", "-i", "--author=grace"]),
        ),
        (
            "author:EXAMPLE.FR",
            rev_list(&p, &["--all", "-i", "--author=example.fr"]),
        ),
        ("author:émile", rev_list(&p, &["--all", "--author=Émile"])),
        (
            "-author:ada",
            all.difference(&rev_list(&p, &["--all", "-i", "--author=ada"]))
                .cloned()
                .collect(),
        ),
        (
            "message:\"difference engine\"",
            rev_list(&p, &["--all", "-i", "--grep=difference engine"]),
        ),
        (
            "message:lexer",
            rev_list(&p, &["--all", "-i", "--grep=lexer"]),
        ),
        ("merge:only", rev_list(&p, &["--all", "--merges"])),
        ("merge:exclude", rev_list(&p, &["--all", "--no-merges"])),
        ("-merge:only", rev_list(&p, &["--all", "--no-merges"])),
        ("branch:feature/parser", rev_list(&p, &["feature/parser"])),
        ("branch:feature/*", rev_list(&p, &["feature/parser"])),
        ("branch:origin/old", rev_list(&p, &["origin/old"])),
        (
            "branch:topic -branch:main",
            rev_list(&p, &["topic", "^main"]),
        ),
        ("tag:v0.2", rev_list(&p, &["--no-walk", "v0.2^{commit}"])),
        (
            "tag:v0.*",
            rev_list(&p, &["--no-walk", "v0.1", "v0.2^{commit}"]),
        ),
        (
            "fullpath:src/core/engine.rs",
            rev_list(&p, &["--all", "--full-history", "--", "src/core/engine.rs"]),
        ),
        (
            "fullpath:docs",
            rev_list(&p, &["--all", "--full-history", "--", "docs"]),
        ),
        (
            "fullpath:docs/",
            rev_list(&p, &["--all", "--full-history", "--", "docs"]),
        ),
        (
            "fullpath:src/parse/lexer.rs",
            rev_list(&p, &["--all", "--full-history", "--", "src/parse/lexer.rs"]),
        ),
        (
            "fullpath:\"dir with space/file one.txt\"",
            rev_list(
                &p,
                &[
                    "--all",
                    "--full-history",
                    "--",
                    "dir with space/file one.txt",
                ],
            ),
        ),
        ("fullpath:nowhere/at/all", BTreeSet::new()),
        (
            "-fullpath:src",
            all.difference(&rev_list(&p, &["--all", "--full-history", "--", "src"]))
                .cloned()
                .collect(),
        ),
        (
            "author:ada merge:exclude",
            rev_list(&p, &["--all", "-i", "--author=ada", "--no-merges"]),
        ),
        (
            "fullpath:docs -merge:only author:bot",
            rev_list(
                &p,
                &[
                    "--all",
                    "-i",
                    "--author=bot",
                    "--no-merges",
                    "--full-history",
                    "--",
                    "docs",
                ],
            ),
        ),
        (
            "after:@1700000400",
            log_filter(&p, "%ct", |f| {
                f[0].parse::<i64>().expect("time") >= 1_700_000_400
            }),
        ),
        (
            "before:@1700000400",
            log_filter(&p, "%ct", |f| {
                f[0].parse::<i64>().expect("time") <= 1_700_000_400
            }),
        ),
        (
            "after:2023-11-14T22:20 before:2023-11-14T22:25",
            log_filter(&p, "%ct", |f| {
                (1_700_000_400..=1_700_000_700).contains(&f[0].parse::<i64>().expect("time"))
            }),
        ),
        ("after:2d", all.clone()),
        ("before:1d", all.clone()),
        ("after:1d", BTreeSet::new()),
        (
            "engine",
            log_filter(&p, "%s%x00%an%x00%ae", |f| {
                f.iter().any(|x| x.to_lowercase().contains("engine"))
            }),
        ),
        (
            "ENGINE -merge:only \"on feature\"",
            log_filter(&p, "%s%x00%P", |f| {
                f[0].to_lowercase().contains("engine")
                    && f[0].contains("on feature")
                    && !f[1].contains(' ')
            }),
        ),
        ("fix:", BTreeSet::new()),
        (
            "chore(bot):",
            log_filter(&p, "%s", |f| f[0].starts_with("chore(bot):")),
        ),
    ];
    for (q, expected) in cases {
        assert_eq!(found(&p, q), expected, "{q}");
    }
    // Hash prefixes, as a qualifier and as free text.
    let head = git_lines(&p, &["rev-parse", "main"])[0].clone();
    for q in [
        format!("hash:{}", &head[..7]),
        head[..8].to_string(),
        format!("hash:{}", head.to_uppercase()),
    ] {
        assert_eq!(found(&p, &q), BTreeSet::from([head.clone()]), "{q}");
    }
    assert!(found(&p, "").is_empty(), "an empty query matches nothing");
}

#[test]
fn every_fixture_answers_merge_and_path_queries_like_git() {
    for (name, path) in crate::common::all_repos() {
        // The graph holds every stash entry, `--all` only the newest: name them all.
        let stash = crate::common::stash_entries(&path);
        let with = |args: &[&str]| {
            let mut all: Vec<&str> = vec!["--all"];
            all.extend(stash.iter().map(String::as_str));
            all.extend_from_slice(args);
            rev_list(&path, &all)
        };
        assert_eq!(found(&path, "merge:only"), with(&["--merges"]), "{name}");
        // Path queries read trees: a commits-only clone has none (the server answers 202 until
        // they are fetched).
        let contents = gitcore::repo::Repository::discover(&path)
            .expect("opens")
            .contents();
        if contents == gitcore::repo::Contents::CommitsOnly {
            continue;
        }
        let newest = with(&[]).into_iter().next();
        let first_file = newest
            .map(|c| git_lines(&path, &["ls-tree", "--name-only", &c]))
            .unwrap_or_default();
        if let Some(file) = first_file.first() {
            assert_eq!(
                found(&path, &format!("fullpath:\"{file}\"")),
                with(&["--full-history", "--", file]),
                "{name}: fullpath:{file}"
            );
            // git's default history simplification, from every ref.
            assert_eq!(
                found(&path, &format!("path:\"{file}\"")),
                with(&["--", file]),
                "{name}: path:{file}"
            );
        }
    }
}

#[test]
fn changed_path_filters_match_git_and_answer_path_queries_like_git() {
    use gitcore::graph::commit_graph_file::CommitGraphFile;
    for version in ["1", "2"] {
        let (_tmp, root) = crate::common::fresh_fixture("search");
        let p = root.join("repo");
        // A path with bytes >= 0x80, which git's version-1 hash gets wrong.
        std::fs::write(p.join("naïve.txt"), "x\n").expect("write");
        crate::common::git(&p, &["add", "naïve.txt"]);
        crate::common::git(&p, &["commit", "-q", "-m", "a non-ASCII path"]);
        crate::common::git(
            &p,
            &[
                "-c",
                &format!("commitGraph.changedPathsVersion={version}"),
                "commit-graph",
                "write",
                "--reachable",
                "--changed-paths",
            ],
        );
        let cg = CommitGraphFile::open(&p.join(".git/objects"), crate::common::hash_of(&p))
            .expect("opens")
            .expect("has a commit-graph");
        assert!(cg.has_changed_paths(), "v{version}");
        // No false negatives: every path git names as changed against the first parent, and each
        // of its leading directories, may be in the filter.
        let mut ruled_out = 0;
        for line in git_lines(&p, &["rev-list", "--all", "--no-merges", "--parents"]) {
            let ids: Vec<&str> = line.split(' ').collect();
            if ids.len() != 2 {
                continue;
            }
            let pos = cg
                .lookup(&ids[0].parse().expect("oid"))
                .expect("in the file");
            let filter = cg.changed_paths(pos).expect("a filter");
            let changed = git_lines(
                &p,
                &[
                    "-c",
                    "core.quotePath=false",
                    "diff-tree",
                    "--no-commit-id",
                    "--name-only",
                    "-r",
                    ids[1],
                    ids[0],
                ],
            );
            for path in &changed {
                let parts: Vec<&str> = path.split('/').collect();
                for n in 1..=parts.len() {
                    let key = parts[..n].join("/");
                    assert_ne!(
                        filter.may_contain(key.as_bytes()),
                        Some(false),
                        "v{version}: {key} changed in {}",
                        ids[0]
                    );
                }
            }
            if filter.may_contain(b"nowhere/at/all") == Some(false) {
                ruled_out += 1;
            }
        }
        assert!(ruled_out > 0, "v{version}: the filters rule paths out");
        // Queries answered through the filters equal git's.
        for path in [
            "src/core/engine.rs",
            "docs",
            "src/parse/lexer.rs",
            "dir with space/file one.txt",
            "naïve.txt",
            "nowhere/at/all",
        ] {
            assert_eq!(
                found(&p, &format!("fullpath:\"{path}\"")),
                rev_list(&p, &["--all", "--full-history", "--", path]),
                "v{version}: fullpath:{path}"
            );
            assert_eq!(
                found(&p, &format!("path:\"{path}\"")),
                rev_list(&p, &["--all", "--", path]),
                "v{version}: path:{path}"
            );
        }
    }
}

#[test]
fn corrupt_changed_path_filters_are_ignored_not_trusted_and_never_panic() {
    let (_tmp, root) = crate::common::fresh_fixture("search");
    let p = root.join("repo");
    crate::common::git(
        &p,
        &["commit-graph", "write", "--reachable", "--changed-paths"],
    );
    let file = p.join(".git/objects/info/commit-graph");
    let original = std::fs::read(&file).expect("read");
    // The chunk table: (id, offset) pairs of 12 bytes after the 8-byte header.
    let chunk = |id: &[u8; 4]| -> usize {
        let n = original[6] as usize;
        (0..n)
            .map(|i| 8 + i * 12)
            .find(|&at| &original[at..at + 4] == id)
            .map(|at| u64::from_be_bytes(original[at + 4..at + 12].try_into().expect("8")) as usize)
            .unwrap_or_else(|| panic!("{} chunk", String::from_utf8_lossy(id)))
    };
    let (bidx, bdat) = (chunk(b"BIDX"), chunk(b"BDAT"));
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Offsets far past the data, and offsets running backwards.
    let mut past = original.clone();
    past[bidx..bidx + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    past[bidx + 8..bidx + 12].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    cases.push(("offsets past the data", past));
    let mut backwards = original.clone();
    backwards[bidx + 4..bidx + 8].copy_from_slice(&0u32.to_be_bytes());
    backwards[bidx..bidx + 4].copy_from_slice(&64u32.to_be_bytes());
    cases.push(("offsets running backwards", backwards));
    // An unknown hash version and an absurd number of hashes.
    let mut version = original.clone();
    version[bdat..bdat + 4].copy_from_slice(&9u32.to_be_bytes());
    cases.push(("unknown hash version", version));
    let mut hashes = original.clone();
    hashes[bdat + 4..bdat + 8].copy_from_slice(&0u32.to_be_bytes());
    cases.push(("zero hashes", hashes));
    // git's answers, taken while the file is intact.
    let paths = ["src/core/engine.rs", "docs", "nowhere/at/all"];
    let expected: Vec<BTreeSet<String>> = paths
        .iter()
        .map(|path| rev_list(&p, &["--all", "--full-history", "--", path]))
        .collect();
    for (what, bytes) in cases {
        // The file is still well-formed for the topology: only the filters are wrong (git
        // checks no checksum on read either).
        std::fs::write(&file, &bytes).expect("write");
        for (path, expected) in paths.iter().zip(&expected) {
            assert_eq!(
                &found(&p, &format!("fullpath:\"{path}\"")),
                expected,
                "{what}: fullpath:{path}"
            );
        }
    }
}

#[test]
fn path_follows_git_s_history_simplification_and_fullpath_the_full_history() {
    let mut differ = 0;
    for (fixture_name, sub) in [
        ("merges", "repo"),
        ("search", "repo"),
        ("forge_pack", "repo"),
        ("renames", "repo"),
        ("diffs", "repo"),
    ] {
        let p = crate::common::fixture(fixture_name).join(sub);
        let files = git_lines(&p, &["ls-tree", "-r", "--name-only", "HEAD"]);
        let dirs = git_lines(&p, &["ls-tree", "-d", "--name-only", "HEAD"]);
        let paths: Vec<&String> = files.iter().step_by(3).chain(&dirs).take(12).collect();
        for path in paths {
            let simplified = rev_list(&p, &["--all", "--", path]);
            let full = rev_list(&p, &["--all", "--full-history", "--", path]);
            differ += usize::from(simplified != full);
            assert_eq!(
                found(&p, &format!("path:\"{path}\"")),
                simplified,
                "{fixture_name}: path:{path}"
            );
            assert_eq!(
                found(&p, &format!("fullpath:\"{path}\"")),
                full,
                "{fixture_name}: fullpath:{path}"
            );
            let all = rev_list(&p, &["--all"]);
            let expected: BTreeSet<String> = all.difference(&simplified).cloned().collect();
            assert_eq!(found(&p, &format!("-path:\"{path}\"")), expected);
        }
    }
    assert!(
        differ > 0,
        "some paths' simplified history differs from the full one"
    );
}

#[test]
fn searches_that_read_authors_or_subjects_wait_for_them_on_a_topology_only_graph() {
    use gitcore::graph::LoadOptions;
    use gitcore::search::SearchError;
    let (_tmp, root) = crate::common::fresh_fixture("search");
    let p = root.join("repo");
    crate::common::git(&p, &["commit-graph", "write", "--reachable"]);
    let repo = Repository::discover(&p).expect("opens");
    let mut graph = CommitGraph::load_topology_with(&repo, LoadOptions::default()).expect("loads");
    assert!(
        !graph.has_metadata(),
        "a commit-graph gives the topology first"
    );
    for q in ["author:grace", "engine", "-author:ada"] {
        let query = Query::parse(q, 1_700_100_000).expect("parses");
        assert!(query.reads_metadata(), "{q}");
        assert!(
            matches!(
                search(repo.odb(), &graph, &query),
                Err(SearchError::MetadataPending)
            ),
            "{q}: refused until the metadata is read, not answered from empty fields"
        );
    }
    // What the topology answers (parents, commit dates) is answered at once, and equals git's.
    for (q, args) in [
        ("merge:only", &["--all", "--merges"][..]),
        ("after:@1700000600", &["--all", "--since=@1700000600"][..]),
    ] {
        let query = Query::parse(q, 1_700_100_000).expect("parses");
        assert!(!query.reads_metadata(), "{q}");
        let hits: BTreeSet<String> = search(repo.odb(), &graph, &query)
            .expect("answers")
            .iter()
            .map(|&c| graph.oid(c).to_hex())
            .collect();
        assert_eq!(hits, rev_list(&p, args), "{q}");
    }
    // Once filled, the same author search is git's.
    graph.fill_metadata(&repo);
    let query = Query::parse("author:grace", 1_700_100_000).expect("parses");
    let hits: BTreeSet<String> = search(repo.odb(), &graph, &query)
        .expect("answers")
        .iter()
        .map(|&c| graph.oid(c).to_hex())
        .collect();
    assert_eq!(hits, rev_list(&p, &["--all", "-i", "--author=grace"]));
}
