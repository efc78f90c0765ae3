//! Tree diffs against `git diff-tree -r -M100%`, blob diffs against `git diff --histogram`.

use std::path::Path;

use gitcore::diff::{DiffOptions, LineKind, TreeDiffOptions, diff_blobs, diff_trees};
use gitcore::object::CommitRef;
use gitcore::odb::ObjectKind;
use gitcore::repo::Repository;

use crate::common::{fixture, git, git_lines, oid};

fn tree_of(repo: &Repository, commit: &str) -> (gitcore::ObjectId, Option<gitcore::ObjectId>) {
    let mut reader = repo.odb().reader();
    let mut buf = Vec::new();
    reader
        .read_kind(&oid(commit), ObjectKind::Commit, &mut buf)
        .expect("commit");
    let c = CommitRef::parse(&buf).expect("parses");
    let parent = c.parents().next();
    let parent_tree = parent.map(|p| {
        let mut pb = Vec::new();
        reader
            .read_kind(&p, ObjectKind::Commit, &mut pb)
            .expect("parent");
        CommitRef::parse(&pb).expect("parses").tree
    });
    (c.tree, parent_tree)
}

/// `git diff-tree -r -M -z` output (with `extra` arguments) as comparable lines.
fn git_diff_tree(path: &Path, commit: &str, extra: &[&str]) -> Vec<String> {
    let parents = git_lines(
        path,
        &[
            "--no-replace-objects",
            "rev-list",
            "--parents",
            "-n1",
            commit,
        ],
    );
    let fields: Vec<&str> = parents[0].split(' ').collect();
    let out = if fields.len() > 1 {
        git(
            path,
            &[
                &["--no-replace-objects", "diff-tree", "-r", "-M", "-z"][..],
                extra,
                &[fields[1], commit],
            ]
            .concat(),
        )
    } else {
        git(
            path,
            &[
                &[
                    "--no-replace-objects",
                    "diff-tree",
                    "-r",
                    "--root",
                    "-M",
                    "-z",
                    "--no-commit-id",
                ][..],
                extra,
                &[commit],
            ]
            .concat(),
        )
    };
    let mut items = out.split(|&b| b == 0).filter(|s| !s.is_empty());
    let mut lines = Vec::new();
    while let Some(meta) = items.next() {
        let meta = String::from_utf8_lossy(meta).to_string();
        let status = meta.split(' ').nth(4).unwrap_or_default().to_string();
        let mut line = meta[1..].to_string();
        for _ in 0..if status.starts_with('R') { 2 } else { 1 } {
            line.push('\t');
            line.push_str(&String::from_utf8_lossy(items.next().expect("path")));
        }
        lines.push(line);
    }
    lines
}

/// Our changes of `commit` in the format of `git diff-tree -r -z` (status with its score).
fn our_diff_tree(repo: &Repository, commit: &str, options: TreeDiffOptions) -> Vec<String> {
    let (tree, parent_tree) = tree_of(repo, commit);
    let d = diff_trees(&mut repo.odb().reader(), parent_tree, Some(tree), options).expect("diffs");
    assert!(!d.truncated);
    let d_hash = repo.odb().hash();
    d.changes
        .iter()
        .map(|c| {
            let mode = |s: &Option<gitcore::diff::ChangeSide>| {
                s.as_ref().map_or("000000".to_string(), |s| {
                    format!("{:06o}", s.mode.as_octal())
                })
            };
            let id = |s: &Option<gitcore::diff::ChangeSide>| {
                s.as_ref().map_or(d_hash.null().to_hex(), |s| s.id.to_hex())
            };
            let status = match c.similarity {
                Some(score) => format!("{}{score:03}", c.kind.letter()),
                None => c.kind.letter().to_string(),
            };
            let mut line = format!(
                "{} {} {} {} {status}",
                mode(&c.old),
                mode(&c.new),
                id(&c.old),
                id(&c.new)
            );
            if c.kind == gitcore::diff::ChangeKind::Renamed {
                line.push('\t');
                line.push_str(&String::from_utf8_lossy(&c.old.as_ref().expect("old").path));
            }
            line.push('\t');
            line.push_str(&String::from_utf8_lossy(c.path()));
            line
        })
        .collect()
}

#[test]
fn tree_diffs_equal_diff_tree_for_every_commit() {
    for name in [
        "diffs",
        "merges",
        "encodings",
        "linear",
        "oddities",
        "renames",
    ] {
        let path = fixture(name).join("repo");
        let repo = Repository::discover(&path).expect("opens");
        for commit in git_lines(&path, &["--no-replace-objects", "rev-list", "--all"]) {
            let ours = our_diff_tree(&repo, &commit, TreeDiffOptions::default());
            // In git's order, renames at their new path, with git's similarity scores.
            assert_eq!(ours, git_diff_tree(&path, &commit, &[]), "{name} {commit}");
        }
    }
}

#[test]
fn renames_by_similarity_equal_git_s_under_other_thresholds_and_limits() {
    use gitcore::diff::{MAX_SCORE, RenameOptions};
    let path = fixture("renames").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let commits = git_lines(&path, &["rev-list", "--all"]);
    let mut renamed = 0;
    for (arg, options) in [
        (
            "-l2",
            RenameOptions {
                limit: 2,
                ..RenameOptions::default()
            },
        ),
        (
            "-M90%",
            RenameOptions {
                minimum_score: MAX_SCORE * 9 / 10,
                ..RenameOptions::default()
            },
        ),
        (
            "-M20%",
            RenameOptions {
                minimum_score: MAX_SCORE / 5,
                ..RenameOptions::default()
            },
        ),
        (
            "-M100%",
            RenameOptions {
                minimum_score: MAX_SCORE,
                ..RenameOptions::default()
            },
        ),
    ] {
        for commit in &commits {
            let ours = our_diff_tree(
                &repo,
                commit,
                TreeDiffOptions {
                    renames: Some(options),
                    ..TreeDiffOptions::default()
                },
            );
            renamed += ours.iter().filter(|l| l.contains(" R0")).count();
            assert_eq!(ours, git_diff_tree(&path, commit, &[arg]), "{arg} {commit}");
        }
    }
    assert!(renamed > 10, "the fixture has renames with edits");
    // Without rename detection: every move is a deletion and an addition.
    let last = &commits[0];
    let plain = our_diff_tree(
        &repo,
        last,
        TreeDiffOptions {
            renames: None,
            ..TreeDiffOptions::default()
        },
    );
    assert_eq!(plain, git_diff_tree(&path, last, &["--no-renames"]));
}

#[test]
fn tree_diff_stops_at_the_change_cap() {
    let path = fixture("diffs").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let (tree, _) = tree_of(&repo, &git_lines(&path, &["rev-parse", "HEAD"])[0]);
    let d = diff_trees(
        &mut repo.odb().reader(),
        None,
        Some(tree),
        TreeDiffOptions {
            max_changes: 3,
            renames: Some(gitcore::diff::RenameOptions::default()),
        },
    )
    .expect("diffs");
    assert!(d.truncated);
    assert_eq!(d.changes.len(), 3);
}

/// Our hunks rendered like git's unified diff body.
fn render(d: &gitcore::diff::BlobDiff) -> Vec<String> {
    let mut out = Vec::new();
    for h in &d.hunks {
        out.push(h.header());
        for l in &h.lines {
            let sign = match l.kind {
                LineKind::Context => ' ',
                LineKind::Added => '+',
                LineKind::Removed => '-',
            };
            out.push(format!("{sign}{}", String::from_utf8_lossy(&l.text)));
            if l.no_newline {
                out.push("\\ No newline at end of file".into());
            }
        }
    }
    out
}

#[test]
fn blob_diffs_equal_git_diff_histogram() {
    let path = fixture("diffs").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let mut compared = 0;
    for commit in git_lines(&path, &["rev-list", "--first-parent", "HEAD"]) {
        let (tree, parent_tree) = tree_of(&repo, &commit);
        let changes = diff_trees(
            &mut repo.odb().reader(),
            parent_tree,
            Some(tree),
            TreeDiffOptions::default(),
        )
        .expect("diffs")
        .changes;
        for c in changes {
            let (Some(old), Some(new)) = (&c.old, &c.new) else {
                continue;
            };
            if !old.mode.is_blob() || !new.mode.is_blob() || old.id == new.id {
                continue;
            }
            for context in [0u32, 3, 10] {
                let ours = diff_blobs(
                    &mut repo.odb().reader(),
                    Some(old.id),
                    Some(new.id),
                    DiffOptions {
                        context,
                        ..DiffOptions::default()
                    },
                )
                .expect("diffs");
                let raw = git(
                    &path,
                    &[
                        "diff",
                        "--histogram",
                        &format!("-U{context}"),
                        &old.id.to_hex(),
                        &new.id.to_hex(),
                    ],
                );
                let text = String::from_utf8_lossy(&raw);
                let theirs: Vec<String> = text
                    .lines()
                    .skip_while(|l| !l.starts_with("@@"))
                    .map(|l| {
                        if l.starts_with("@@") {
                            l.split(" @@")
                                .next()
                                .map(|h| format!("{h} @@"))
                                .unwrap_or_default()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect();
                if text.contains("Binary files") {
                    assert!(ours.binary);
                    continue;
                }
                assert_eq!(
                    render(&ours),
                    theirs,
                    "{commit} {} -U{context}",
                    String::from_utf8_lossy(c.path())
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 10, "compared {compared} diffs");
}

#[test]
fn binary_and_oversized_blobs_are_flagged_not_diffed() {
    let path = fixture("diffs").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let bin = oid(&git_lines(&path, &["rev-parse", "HEAD:blob.bin"])[0]);
    let text = oid(&git_lines(&path, &["rev-parse", "HEAD:src/story.txt"])[0]);
    let d = diff_blobs(
        &mut repo.odb().reader(),
        None,
        Some(bin),
        DiffOptions::default(),
    )
    .expect("diffs");
    assert!(d.binary && d.hunks.is_empty());
    let small = DiffOptions {
        max_blob_bytes: 10,
        ..DiffOptions::default()
    };
    let d = diff_blobs(&mut repo.odb().reader(), None, Some(text), small).expect("diffs");
    assert!(d.too_large && d.hunks.is_empty());
}
