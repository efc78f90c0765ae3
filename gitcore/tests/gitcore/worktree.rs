//! Work-tree status and the index, with `git status --porcelain` as the oracle.

use std::collections::BTreeSet;
use std::path::Path;

use gitcore::repo::Repository;
use gitcore::worktree::{Index, StatusOptions, status};

use crate::common::{fixture, fresh_fixture, git, git_command, git_lines};

/// `git status` as (XY, path) pairs.
fn git_status(path: &Path) -> BTreeSet<(String, String)> {
    let out = git(
        path,
        &[
            "status",
            "--porcelain=v1",
            "-z",
            "--no-renames",
            "--untracked-files=normal",
        ],
    );
    out.split(|&b| b == 0)
        .filter(|l| l.len() > 3)
        .map(|l| {
            let l = String::from_utf8_lossy(l);
            (l[..2].to_string(), l[3..].to_string())
        })
        .collect()
}

fn ours(path: &Path) -> BTreeSet<(String, String)> {
    let repo = Repository::discover(path).expect("opens");
    let s = status(&repo, StatusOptions::default()).expect("status");
    assert!(!s.truncated);
    s.entries
        .into_iter()
        .map(|e| (format!("{}{}", e.index, e.worktree), e.path))
        .collect()
}

#[test]
fn status_equals_git_status_in_every_state() {
    for name in ["repo", "conflict", "fresh"] {
        let path = fixture("worktree").join(name);
        let expected = git_status(&path);
        assert!(!expected.is_empty(), "{name}");
        assert_eq!(ours(&path), expected, "{name}");
    }
    for name in ["linear", "merges", "stash"] {
        let path = fixture(name).join("repo");
        assert_eq!(ours(&path), git_status(&path), "{name}");
    }
}

#[test]
fn index_versions_2_3_and_4_read_the_same_entries() {
    let (_tmp, path) = fresh_fixture("worktree");
    let path = path.join("repo");
    let listed = git_lines(&path, &["ls-files", "-s"]);
    for version in ["2", "3", "4"] {
        git(&path, &["update-index", "--index-version", version]);
        let index =
            Index::read(&path.join(".git/index"), crate::common::hash_of(&path)).expect("reads");
        // Intent-to-add entries need extended flags: git keeps such an index at version 3.
        let expected = if version == "2" { "3" } else { version };
        assert_eq!(index.version.to_string(), expected);
        let read: Vec<String> = index
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{:06o} {} {}\t{}",
                    e.mode,
                    e.id,
                    e.stage,
                    String::from_utf8_lossy(&e.path)
                )
            })
            .collect();
        assert_eq!(read, listed, "version {version}");
        assert_eq!(ours(&path), git_status(&path), "version {version}");
    }
}

#[test]
fn status_follows_edits_and_a_corrupt_index_is_a_typed_error() {
    let (_tmp, path) = fresh_fixture("worktree");
    let path = path.join("repo");
    git(&path, &["add", "-A"]);
    assert_eq!(ours(&path), git_status(&path), "after add -A");
    std::fs::write(path.join("a.txt"), "edited again\n").expect("write");
    std::fs::remove_file(path.join("dir/deep/c.txt")).expect("rm");
    assert_eq!(ours(&path), git_status(&path), "after edits");

    let index = path.join(".git/index");
    let mut data = std::fs::read(&index).expect("index");
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&index, &data).expect("write");
    let repo = Repository::discover(&path).expect("opens");
    let err = status(&repo, StatusOptions::default()).expect_err("corrupt");
    let msg = err.to_string();
    assert!(msg.contains("index") && msg.contains("checksum"), "{msg}");
}

#[test]
fn a_changed_path_is_left_out_where_git_check_ignore_says_so() {
    use gitcore::worktree::IgnoredPaths;
    let (_tmp, path) = fresh_fixture("worktree");
    let path = path.join("repo");
    // Rules at three levels and in info/exclude: globs, negations, anchored and directory-only
    // patterns.
    std::fs::write(
        path.join(".gitignore"),
        "*.log\n!keep.log\n/top-only.txt\nout/\n",
    )
    .expect("write");
    std::fs::create_dir_all(path.join("sub/deeper")).expect("mkdir");
    std::fs::write(path.join("sub/.gitignore"), "*.tmp\n!important.tmp\n").expect("write");
    std::fs::write(path.join("sub/deeper/.gitignore"), "local/\n").expect("write");
    let repo = Repository::discover(&path).expect("opens");
    let dirs = repo.dirs().clone();
    std::fs::create_dir_all(dirs.common_dir.join("info")).expect("mkdir");
    std::fs::write(dirs.common_dir.join("info/exclude"), "secret*\n").expect("write");
    // A tracked file matching the rules is never left out.
    std::fs::write(path.join("forced.log"), "tracked\n").expect("write");
    git(&path, &["add", "-f", "forced.log"]);
    let paths = [
        "a.log",
        "keep.log",
        "forced.log",
        "sub/a.log",
        "top-only.txt",
        "sub/top-only.txt",
        "out/x.o",
        "out/deep/y.o",
        "sub/out/z",
        "sub/x.tmp",
        "sub/important.tmp",
        "sub/deeper/x.tmp",
        "sub/deeper/local/f",
        "sub/deeper/f",
        "secretfile",
        "sub/secret.txt",
        "plain.txt",
        "sub/plain.c",
    ];
    for p in paths {
        let file = path.join(p);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        if !file.exists() {
            std::fs::write(&file, "x\n").expect("write");
        }
    }
    let mut rules = IgnoredPaths::load(&path, &dirs.git_dir, &dirs.common_dir, repo.odb().hash());
    let mut left_out = 0;
    for p in paths {
        let theirs = git_command(&path, &["check-ignore", "-q", p])
            .status()
            .expect("git runs")
            .success();
        left_out += usize::from(theirs);
        assert_eq!(rules.is_ignored(&path.join(p)), theirs, "{p}");
    }
    assert!(left_out >= 8, "the rules matched {left_out} paths");
    // Nothing outside the work tree, nor its .git, is left out.
    assert!(!rules.is_ignored(Path::new("/elsewhere/a.log")));
    assert!(!rules.is_ignored(&path.join(".git/index")));
}
