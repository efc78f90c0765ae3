//! Refs against `git for-each-ref`, `git show-ref`, `git symbolic-ref` and the stash reflog.

use std::collections::BTreeSet;

use gitcore::refs::{Head, RefSnapshot};
use gitcore::repo::Repository;

use crate::common::{all_repos, fixture, git_command, git_lines, oid};

fn snapshot(path: &std::path::Path) -> RefSnapshot {
    Repository::discover(path).expect("opens").refs()
}

#[test]
fn refs_equal_for_each_ref_and_show_ref() {
    for (name, path) in all_repos() {
        let snap = snapshot(&path);
        assert!(snap.problems.is_empty(), "{name}: {:?}", snap.problems);
        let ours: BTreeSet<String> = snap
            .refs
            .iter()
            .map(|r| format!("{} {}", r.target, r.name))
            .collect();
        let theirs: BTreeSet<String> = git_lines(
            &path,
            &["for-each-ref", "--format=%(objectname) %(refname)"],
        )
        .into_iter()
        .collect();
        assert_eq!(ours, theirs, "for-each-ref differs in {name}");
        // show-ref lists the same refs (it exits 1 when there are none).
        let out = git_command(&path, &["show-ref"])
            .output()
            .expect("git runs");
        let show: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(ours, show, "show-ref differs in {name}");
    }
}

#[test]
fn head_equals_git() {
    for (name, path) in all_repos() {
        let snap = snapshot(&path);
        let sym = git_command(&path, &["symbolic-ref", "-q", "HEAD"])
            .output()
            .expect("git runs");
        let verify = git_command(&path, &["rev-parse", "-q", "--verify", "HEAD"])
            .output()
            .expect("git runs");
        let head_id = String::from_utf8_lossy(&verify.stdout).trim().to_string();
        let expected = if sym.status.success() {
            let branch = String::from_utf8_lossy(&sym.stdout).trim().to_string();
            if verify.status.success() {
                Head::Branch {
                    name: branch,
                    target: oid(&head_id),
                }
            } else {
                Head::Unborn { name: branch }
            }
        } else {
            Head::Detached(oid(&head_id))
        };
        assert_eq!(snap.head, Some(expected), "HEAD differs in {name}");
    }
}

#[test]
fn peeled_lines_symbolic_refs_and_worktree_heads() {
    let packed = snapshot(&fixture("packed").join("repo"));
    let tag = packed.get("refs/tags/v-packed").expect("packed tag");
    let path = fixture("packed").join("repo");
    assert_eq!(
        tag.peeled,
        Some(oid(&git_lines(&path, &["rev-parse", "v-packed^{}"])[0]))
    );
    // The loose `side` overrides its packed-refs line.
    assert_eq!(
        packed.get("refs/heads/side").expect("side").target,
        oid(&git_lines(&path, &["rev-parse", "side"])[0])
    );

    let merges = snapshot(&fixture("merges").join("repo"));
    let origin_head = merges.get("refs/remotes/origin/HEAD").expect("origin/HEAD");
    assert_eq!(
        origin_head.symbolic.as_deref(),
        Some("refs/remotes/origin/main")
    );

    let src = fixture("clones").join("src");
    let snap = snapshot(&src);
    let names: Vec<&str> = snap
        .worktree_heads
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["wt", "wt-detached"]);
    let wt_head = oid(&git_lines(&fixture("clones").join("wt"), &["rev-parse", "HEAD"])[0]);
    assert_eq!(snap.worktree_heads[0].1, wt_head);
}

#[test]
fn stash_reflog_lists_every_entry_newest_first() {
    let path = fixture("stash").join("repo");
    let snap = snapshot(&path);
    let expected: Vec<String> = git_lines(&path, &["stash", "list", "--format=%H %gs"]);
    let ours: Vec<String> = snap
        .stash
        .iter()
        .map(|e| format!("{} {}", e.target, e.message))
        .collect();
    assert_eq!(ours, expected);
}

#[test]
fn shallow_file_is_read() {
    let path = fixture("clones").join("shallow");
    let snap = snapshot(&path);
    let expected: BTreeSet<_> = std::fs::read_to_string(path.join(".git/shallow"))
        .expect("shallow")
        .lines()
        .map(oid)
        .collect();
    assert_eq!(
        snap.shallow.iter().copied().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(!expected.is_empty());
}
