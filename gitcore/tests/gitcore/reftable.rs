//! reftable refs against git: stacks of several tables (newer records and deletions shadowing
//! older ones), tables of many blocks with a ref index, symbolic refs, peeled tags, a detached
//! and an unborn HEAD, a linked worktree's own stack, and the stash reflog after a drop. Damaged
//! tables are reported, never a panic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gitcore::refs::reftable::{TableError, parse_table};
use gitcore::refs::{Head, RefSnapshot};
use gitcore::repo::Repository;

use crate::common::{git, git_command, git_lines, oid};

fn snapshot(path: &Path) -> RefSnapshot {
    Repository::discover(path).expect("opens").refs()
}

/// A reftable repository in `tmp/name` with one commit on `main`.
fn reftable_repo(tmp: &Path, name: &str) -> PathBuf {
    git(
        tmp,
        &["init", "-q", "-b", "main", "--ref-format=reftable", name],
    );
    let repo = tmp.join(name);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "first"]);
    repo
}

/// git in `repo` with automatic compaction off (git's own test switch; `reftable.autoCompaction`
/// is newer than some gits), so every transaction stays a table of its own.
fn uncompacted(repo: &Path, args: &[&str]) {
    let out = git_command(repo, args)
        .env("GIT_TEST_REFTABLE_AUTOCOMPACTION", "false")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tables(repo: &Path) -> usize {
    std::fs::read_to_string(repo.join(".git/reftable/tables.list"))
        .expect("tables.list")
        .lines()
        .count()
}

/// Our refs, HEAD and stash against `for-each-ref`, `symbolic-ref`/`rev-parse` and the stash
/// reflog.
fn assert_like_git(repo: &Path) {
    let snap = snapshot(repo);
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    let ours: BTreeSet<String> = snap
        .refs
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name,
                r.target,
                r.peeled.map(|p| p.to_hex()).unwrap_or_default(),
                r.symbolic.clone().unwrap_or_default()
            )
        })
        .collect();
    let theirs: BTreeSet<String> = git_lines(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname) %(*objectname) %(symref)",
        ],
    )
    .into_iter()
    .collect();
    assert_eq!(ours, theirs);
    let symbolic = git_command(repo, &["symbolic-ref", "-q", "HEAD"])
        .output()
        .expect("git");
    let head = snap.head.expect("HEAD");
    if symbolic.status.success() {
        let name = String::from_utf8_lossy(&symbolic.stdout).trim().to_string();
        assert_eq!(head.branch(), Some(name.as_str()));
        let target = git_command(repo, &["rev-parse", "-q", "--verify", "HEAD"])
            .output()
            .expect("git");
        match head {
            Head::Branch { target: t, .. } => {
                assert_eq!(t, oid(String::from_utf8_lossy(&target.stdout).trim()))
            }
            Head::Unborn { .. } => assert!(!target.status.success()),
            Head::Detached(_) => panic!("detached"),
        }
    } else {
        assert_eq!(
            head,
            Head::Detached(oid(&git_lines(repo, &["rev-parse", "HEAD"])[0]))
        );
    }
    let stash: Vec<String> = snap
        .stash
        .iter()
        .map(|s| format!("{} {}", s.target, s.message))
        .collect();
    assert_eq!(stash, crate::common::stash_with_messages(repo));
}

#[test]
fn a_stack_of_tables_reads_as_git_reads_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = reftable_repo(tmp.path(), "stack");
    uncompacted(&repo, &["branch", "doomed"]);
    uncompacted(&repo, &["branch", "kept"]);
    uncompacted(&repo, &["tag", "-a", "-m", "annotated", "v1"]);
    uncompacted(&repo, &["tag", "light"]);
    uncompacted(&repo, &["commit", "-q", "--allow-empty", "-m", "second"]);
    uncompacted(&repo, &["branch", "-f", "kept"]);
    uncompacted(&repo, &["branch", "-D", "doomed"]);
    uncompacted(
        &repo,
        &[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/heads/kept",
        ],
    );
    // A stash of three entries, the middle one dropped.
    for i in 0..3 {
        std::fs::write(repo.join("f.txt"), format!("change {i}\n")).expect("write");
        uncompacted(&repo, &["add", "f.txt"]);
        uncompacted(&repo, &["stash", "push", "-q", "-m", &format!("entry {i}")]);
    }
    uncompacted(&repo, &["stash", "drop", "-q", "stash@{1}"]);
    assert!(tables(&repo) > 5, "one table per transaction");
    assert_like_git(&repo);
    // Compacted into one table, nothing changes.
    git(&repo, &["pack-refs"]);
    assert_eq!(tables(&repo), 1);
    assert_like_git(&repo);
    // Detached, then on a branch without commits.
    git(&repo, &["checkout", "-q", "--detach", "HEAD~1"]);
    assert_like_git(&repo);
    git(&repo, &["checkout", "-q", "--orphan", "fresh"]);
    assert_like_git(&repo);
}

#[test]
fn thousands_of_refs_span_blocks_and_an_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = reftable_repo(tmp.path(), "many");
    let head = git_lines(&repo, &["rev-parse", "HEAD"]).remove(0);
    let mut stdin = String::new();
    for i in 0..6000 {
        let kind = ["heads/feature", "tags/release", "pull"][i % 3];
        stdin.push_str(&format!("create refs/{kind}/{i:05}/head {head}\n"));
    }
    let mut child = git_command(&repo, &["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    assert!(child.wait().expect("git").success());
    git(&repo, &["pack-refs"]);
    let size = std::fs::metadata(
        repo.join(".git/reftable").join(
            std::fs::read_to_string(repo.join(".git/reftable/tables.list"))
                .expect("list")
                .trim(),
        ),
    )
    .expect("table")
    .len();
    assert!(size > 4 * 4096, "many blocks: {size} bytes");
    assert_like_git(&repo);
    assert_eq!(snapshot(&repo).refs.len(), 6001);
}

#[test]
fn a_linked_worktree_reads_its_own_head() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = reftable_repo(tmp.path(), "main");
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "second"]);
    let wt = tmp.path().join("wt");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            wt.to_str().expect("utf-8"),
            "HEAD~1",
        ],
    );
    assert_like_git(&wt);
    assert_like_git(&repo);
    let snap = snapshot(&repo);
    assert_eq!(
        snap.worktree_heads,
        vec![(
            "wt".to_string(),
            oid(&git_lines(&repo, &["rev-parse", "HEAD~1"])[0])
        )]
    );
}

#[test]
fn damaged_tables_are_errors_and_the_repository_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = reftable_repo(tmp.path(), "damaged");
    git(&repo, &["branch", "side"]);
    git(&repo, &["pack-refs"]);
    let list = std::fs::read_to_string(repo.join(".git/reftable/tables.list")).expect("list");
    let table = repo.join(".git/reftable").join(list.trim());
    let good = std::fs::read(&table).expect("table");
    assert!(parse_table(&good).is_ok());
    // Every truncation and every single flipped byte: an error or a table, never a panic; a
    // flip inside the footer is caught by its CRC.
    for n in 0..good.len() {
        let _ = parse_table(&good[..n]);
        let mut bad = good.clone();
        bad[n] ^= 0x5a;
        let parsed = parse_table(&bad);
        if n >= good.len() - 68 {
            assert!(parsed.is_err(), "a flip at {n} of the footer");
        }
    }
    assert_eq!(parse_table(b"REFT"), Err(TableError::NotATable));
    let mut v3 = good.clone();
    v3[4] = 3;
    assert_eq!(parse_table(&v3), Err(TableError::Version(3)));
    // A damaged table on disk: reported by name, HEAD not invented.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&table, &bad).expect("write");
    let snap = snapshot(&repo);
    assert!(
        snap.problems
            .iter()
            .any(|p| p.contains(list.trim()) && p.contains("footer")),
        "{:?}",
        snap.problems
    );
    assert!(snap.refs.is_empty());
}

#[test]
fn a_hostile_or_vanishing_table_list_reads_nothing_outside_the_stack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = reftable_repo(tmp.path(), "listed");
    git(&repo, &["pack-refs"]);
    let list_path = repo.join(".git/reftable/tables.list");
    let good = std::fs::read_to_string(&list_path).expect("list");
    // A name that leaves the directory is refused by name; the real table is still read.
    std::fs::write(tmp.path().join("outside.ref"), b"REFT").expect("write");
    std::fs::write(&list_path, format!("../../../outside.ref\n{good}")).expect("write");
    let snap = snapshot(&repo);
    assert!(
        snap.problems
            .iter()
            .any(|p| p.contains("bad table name") && p.contains("outside.ref")),
        "{:?}",
        snap.problems
    );
    assert_eq!(snap.refs.len(), 1, "{:?}", snap.refs);
    // A listed table that is gone (a compaction that never settles): read again a few times,
    // then said, never an endless loop.
    std::fs::write(&list_path, format!("{good}0x-gone.ref\n")).expect("write");
    let snap = snapshot(&repo);
    assert!(
        snap.problems.iter().any(|p| p.contains("kept changing")),
        "{:?}",
        snap.problems
    );
}
