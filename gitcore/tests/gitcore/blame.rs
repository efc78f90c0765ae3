//! Blame against `git blame --first-parent --porcelain`.

use std::path::Path;

use gitcore::blame::{BlameError, BlameOptions, blame};
use gitcore::repo::Repository;

use crate::common::{fixture, git_lines, oid};

/// (commit, original line) per final line, from git.
fn git_blame(path: &Path, commit: &str, file: &str) -> Vec<(String, u32)> {
    git_lines(
        path,
        &[
            "blame",
            "--first-parent",
            "--root",
            "--porcelain",
            commit,
            "--",
            file,
        ],
    )
    .into_iter()
    .filter_map(|l| {
        let mut f = l.split(' ');
        let hash = f.next()?;
        if hash.len() != 40 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some((hash.to_string(), f.next()?.parse().ok()?))
    })
    .collect()
}

#[test]
fn blame_equals_git_blame_first_parent() {
    let cases = [
        ("diffs", "src/story.txt"),
        ("diffs", "docs/keep.md"),
        ("diffs", "src/deep/er/file.txt"),
        ("diffs", "docs/new-name.md"),
        ("deep_deltas", "big.txt"),
        ("merges", "a.txt"),
        // Moved with edits: followed by similarity, as git blame follows them.
        ("renames", "doc/setup.md"),
        ("renames", "doc/guide.md"),
        ("renames", "doc/book/book.toml"),
        ("renames", "doc/faq.md"),
        ("renames", "src/lib/core.c"),
        ("renames", "src/lib/io.c"),
        ("renames", "templates/two.tpl"),
        ("renames", "twins/q.txt"),
        ("renames", "bin/tool.sh"),
        ("renames", "limited/a-renamed.txt"),
    ];
    for (name, file) in cases {
        let path = fixture(name).join("repo");
        let repo = Repository::discover(&path).expect("opens");
        for commit in git_lines(&path, &["rev-list", "--first-parent", "-n", "8", "HEAD"]) {
            let ours = blame(&repo, oid(&commit), file, BlameOptions::default());
            let ours = match ours {
                Ok(b) => b,
                Err(BlameError::NotFound { .. }) => continue,
                Err(e) => panic!("{name} {file} {commit}: {e}"),
            };
            assert!(!ours.partial);
            let ours: Vec<(String, u32)> = ours
                .lines
                .iter()
                .map(|l| (l.commit.to_hex(), l.orig_line))
                .collect();
            assert_eq!(
                ours,
                git_blame(&path, &commit, file),
                "{name} {file} at {commit}"
            );
        }
    }
}

#[test]
fn blame_cap_reports_partial_and_missing_paths_are_errors() {
    let path = fixture("deep_deltas").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let head = oid(&git_lines(&path, &["rev-parse", "HEAD"])[0]);
    let capped = blame(
        &repo,
        head,
        "big.txt",
        BlameOptions {
            max_commits: 5,
            ..BlameOptions::default()
        },
    )
    .expect("blames");
    assert!(capped.partial);
    assert_eq!(capped.lines.len(), 2000);
    let err = blame(&repo, head, "no/such/file", BlameOptions::default()).expect_err("missing");
    assert!(matches!(err, BlameError::NotFound { .. }), "{err}");
    let diffs = fixture("diffs").join("repo");
    let repo = Repository::discover(&diffs).expect("opens");
    let head = oid(&git_lines(&diffs, &["rev-parse", "HEAD"])[0]);
    let bin = blame(&repo, head, "blob.bin", BlameOptions::default()).expect("blames");
    assert!(bin.binary && bin.lines.is_empty());
    let err = blame(&repo, head, "src", BlameOptions::default()).expect_err("a directory");
    assert!(matches!(err, BlameError::NotFound { .. }));
}
