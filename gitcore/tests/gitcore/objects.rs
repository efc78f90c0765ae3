//! Every object against `git cat-file --batch-all-objects --batch`.

use std::collections::HashMap;

use gitcore::object::{CommitRef, TagRef, TreeIter};
use gitcore::odb::{ObjectKind, OdbError};
use gitcore::repo::{Contents, Repository};

use crate::common::{all_repos, fixture, git, git_lines, hash_of, oid};

/// Parses `git cat-file --batch` output into (id, kind, bytes).
fn cat_file_all(path: &std::path::Path) -> Vec<(String, String, Vec<u8>)> {
    let out = git(
        path,
        &[
            "--no-replace-objects",
            "cat-file",
            "--batch-all-objects",
            "--batch",
        ],
    );
    let mut objects = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').expect("header line");
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        let parts: Vec<&str> = header.split(' ').collect();
        let size: usize = parts[2].parse().expect("size");
        let body = rest[nl + 1..nl + 1 + size].to_vec();
        objects.push((parts[0].to_string(), parts[1].to_string(), body));
        rest = &rest[nl + 1 + size + 1..];
    }
    objects
}

#[test]
fn every_object_decodes_to_the_same_bytes_as_git() {
    for (name, path) in all_repos() {
        let repo = Repository::discover(&path).expect("opens");
        let mut reader = repo.odb().reader();
        let objects = cat_file_all(&path);
        assert!(
            !objects.is_empty() || name == "unborn/empty",
            "{name} has objects"
        );
        for (hex, kind, bytes) in &objects {
            let id = oid(hex);
            let (k, data) = reader
                .read(&id)
                .unwrap_or_else(|e| panic!("{name} {hex}: {e}"));
            assert_eq!(k.as_str(), kind, "{name} {hex} kind");
            assert!(data == *bytes, "{name} {hex}: bytes differ");
            let (hk, hsize) = reader.read_header(&id).expect("header");
            assert_eq!((hk, hsize), (k, bytes.len() as u64), "{name} {hex} header");
            match k {
                ObjectKind::Commit => {
                    CommitRef::parse(&data).unwrap_or_else(|e| panic!("{name} {hex}: {e}"));
                }
                ObjectKind::Tag => {
                    TagRef::parse(&data).unwrap_or_else(|e| panic!("{name} {hex}: {e}"));
                }
                ObjectKind::Tree => {
                    for e in TreeIter::new(&data, id.kind()) {
                        e.unwrap_or_else(|e| panic!("{name} {hex}: {e}"));
                    }
                }
                ObjectKind::Blob => {}
            }
        }
    }
}

#[test]
fn trees_list_the_entries_git_lists() {
    for fixture_name in ["merges", "oddities", "encodings"] {
        let path = fixture(fixture_name).join("repo");
        let repo = Repository::discover(&path).expect("opens");
        let mut reader = repo.odb().reader();
        let trees: Vec<String> = cat_file_all(&path)
            .into_iter()
            .filter(|(_, k, _)| k == "tree")
            .map(|(h, _, _)| h)
            .collect();
        for hex in trees {
            let (_, data) = reader.read(&oid(&hex)).expect("tree reads");
            let ours: Vec<Vec<u8>> = TreeIter::new(&data, repo.odb().hash())
                .map(|e| {
                    let e = e.expect("entry");
                    let kind = if e.mode.is_blob() {
                        "blob"
                    } else if e.mode == gitcore::object::EntryMode::Tree {
                        "tree"
                    } else {
                        "commit"
                    };
                    let mut line =
                        format!("{:06o} {kind} {}\t", e.mode.as_octal(), e.id).into_bytes();
                    line.extend_from_slice(e.name);
                    line
                })
                .collect();
            let theirs: Vec<Vec<u8>> = git(
                &path,
                &["-c", "core.quotePath=false", "ls-tree", "-z", &hex],
            )
            .split(|&b| b == 0)
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
            assert_eq!(ours, theirs, "{fixture_name} tree {hex}");
        }
    }
}

#[test]
fn partial_clone_reports_missing_blobs_as_missing() {
    let src = fixture("clones").join("src");
    let partial = fixture("clones").join("partial");
    let repo = Repository::discover(&partial).expect("opens");
    let mut reader = repo.odb().reader();
    let blobs: Vec<String> = git_lines(&src, &["cat-file", "--batch-all-objects", "--batch-check"])
        .into_iter()
        .filter(|l| l.contains(" blob "))
        .collect();
    assert!(!blobs.is_empty());
    let mut missing = 0;
    for line in blobs {
        let id = oid(line.split(' ').next().expect("an id"));
        match reader.read(&id) {
            Err(OdbError::Missing(m)) => {
                assert_eq!(m, id);
                missing += 1;
            }
            Ok((kind, _)) => assert_eq!(kind, ObjectKind::Blob),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(missing > 0, "the partial clone has missing blobs");
}

#[test]
fn a_commits_only_clone_reads_every_commit_and_reports_trees_as_missing() {
    let src = fixture("clones").join("src");
    let treeless = fixture("clones").join("treeless.git");
    let repo = Repository::discover(&treeless).expect("opens");
    assert_eq!(repo.contents(), Contents::CommitsOnly);
    assert_eq!(
        Repository::discover(&fixture("clones").join("partial"))
            .expect("opens")
            .contents(),
        Contents::NoBlobs
    );
    assert_eq!(
        Repository::discover(&src).expect("opens").contents(),
        Contents::Complete
    );
    let mut reader = repo.odb().reader();
    let mut buf = Vec::new();
    let mut trees_missing = 0;
    // Every commit git lists in the treeless clone reads; the root trees it names do not.
    for line in git_lines(&treeless, &["rev-list", "--all"]) {
        let id = oid(&line);
        reader
            .read_kind(&id, ObjectKind::Commit, &mut buf)
            .expect("commit present");
        let tree = CommitRef::parse(&buf).expect("parses").tree;
        match reader.read(&tree) {
            Err(OdbError::Missing(m)) => {
                assert_eq!(m, tree);
                trees_missing += 1;
            }
            Ok((kind, _)) => assert_eq!(kind, ObjectKind::Tree),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(trees_missing > 0, "the commits-only clone has no trees");
    // The empty tree is there, as git has it, though no pack of the clone holds it.
    let empty = repo.odb().hash().empty_tree();
    assert_eq!(
        empty.to_hex(),
        git_lines(&treeless, &["hash-object", "-t", "tree", "/dev/null"])[0]
    );
    assert!(repo.odb().contains(&empty));
    assert_eq!(
        reader.read(&empty).expect("reads"),
        (ObjectKind::Tree, Vec::new())
    );
    assert_eq!(
        reader.read_header(&empty).expect("header"),
        (ObjectKind::Tree, 0)
    );
    assert_eq!(
        git_lines(&treeless, &["cat-file", "-s", &empty.to_hex()]),
        vec!["0".to_string()]
    );
}

#[test]
fn contents_follow_the_partial_clone_filter_of_the_promisor_remote() {
    let cases: &[(&str, Contents, &str)] = &[
        ("", Contents::Complete, "no promisor remote"),
        (
            "[remote \"origin\"]\n\tpromisor = true\n\tpartialclonefilter = tree:0\n",
            Contents::CommitsOnly,
            "git clone --filter=tree:0",
        ),
        (
            "[remote \"origin\"]\n\tpromisor = true\n\tpartialCloneFilter = blob:none\n",
            Contents::NoBlobs,
            "keys are case-insensitive",
        ),
        (
            "[remote \"origin\"]\n\tpromisor = true\n\tpartialclonefilter = blob:limit=1k\n",
            Contents::NoBlobs,
            "some blobs",
        ),
        (
            "[remote \"origin\"]\n\tpromisor = false\n\tpartialclonefilter = tree:0\n",
            Contents::Complete,
            "not a promisor: the filter is a leftover",
        ),
        (
            "[extensions]\n\tpartialClone = up\n[remote \"up\"]\n\tpartialclonefilter = combine:tree:0+blob:none\n",
            Contents::CommitsOnly,
            "the older extensions.partialClone form",
        ),
        (
            "[remote \"origin\"]\n\tpromisor = true\n",
            Contents::Complete,
            "a promisor without a filter (hydrated by a full fetch)",
        ),
    ];
    for (text, expected, why) in cases {
        assert_eq!(
            Contents::of_config(&gitcore::config::parse(text)),
            *expected,
            "{why}"
        );
    }
}

#[test]
fn abbreviated_ids_resolve_like_rev_parse() {
    let path = fixture("packed").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for hex in git_lines(&path, &["rev-list", "--all", "--objects"]) {
        let full = hex.split(' ').next().expect("an id");
        let short = &full[..7];
        let found = repo.odb().resolve_prefix(short, 4);
        assert!(found.contains(&oid(full)), "{short}");
        *seen.entry(short.to_string()).or_default() += 1;
    }
    assert!(repo.odb().resolve_prefix("zz", 4).is_empty());
}

#[test]
fn idx_v1_and_64_bit_offsets_are_read() {
    use gitcore::odb::idx::PackIndex;
    let base = fixture("idx_versions");
    let idx = |name: &str| {
        let dir = base.join(name).join("objects/pack");
        let path = std::fs::read_dir(&dir)
            .expect("pack dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .expect("an idx");
        PackIndex::open(&path, hash_of(&base.join(name))).expect("valid index")
    };
    assert_eq!(idx("v1.git").version(), 1);
    let large = idx("large.git");
    assert_eq!(large.version(), 2);
    assert!(
        large.large_offsets() > 0,
        "some offsets are in the 64-bit table"
    );
    assert_eq!(idx("v2.git").large_offsets(), 0);
    for i in 0..large.len() {
        let control = idx("v2.git");
        let pos = control.lookup(&large.oid_at(i)).expect("same objects");
        assert_eq!(
            large.offset_at(i).expect("offset"),
            control.offset_at(pos).expect("offset")
        );
    }
}
