//! `gitvista log` against `git rev-list` and `git log` on fixture repositories.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::helpers::{fixture, git};

fn run(bin_args: &[&str], dir: &Path) -> (String, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .args(bin_args)
        .current_dir(dir)
        .output()
        .expect("gitvista runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn parents_format_prints_exactly_rev_list_all_parents() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, sub) in [
        ("merges", "repo"),
        ("stash", "repo"),
        ("clones", "shallow"),
        ("clones", "wt"),
    ] {
        let repo = fixture(name, tmp.path()).join(sub);
        let (out, err, ok) = run(&["log", "--format", "parents", "."], &repo);
        assert!(ok, "{err}");
        let ours: Vec<&str> = out.lines().collect();
        let theirs = git(
            &repo,
            &["--no-replace-objects", "rev-list", "--all", "--parents"],
        );
        let ours_set: BTreeSet<&str> = ours.iter().copied().collect();
        let theirs_set: BTreeSet<&str> = theirs.lines().collect();
        assert_eq!(ours.len(), ours_set.len(), "{name}: no duplicates");
        assert_eq!(ours_set, theirs_set, "{name}/{sub}");
        // Children before parents.
        let pos: std::collections::HashMap<&str, usize> = ours
            .iter()
            .enumerate()
            .map(|(i, l)| (&l[..40], i))
            .collect();
        for (i, line) in ours.iter().enumerate() {
            for p in line.split(' ').skip(1) {
                assert!(pos[p] > i, "{name}: parent {p} printed before its child");
            }
        }
    }
}

#[test]
fn json_format_matches_git_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("encodings", tmp.path()).join("repo");
    let (out, err, ok) = run(
        &["log", "--format", "json", &repo.to_string_lossy()],
        tmp.path(),
    );
    assert!(ok, "{err}");
    let expected = git(
        &repo,
        &["log", "--all", "--format=%H%x09%P%x09%an%x09%at%x09%s"],
    );
    let mut n = 0;
    for (line, want) in out.lines().zip(expected.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let f: Vec<&str> = want.splitn(5, '\t').collect();
        assert_eq!(v["hash"], f[0]);
        let parents: Vec<String> = v["parents"]
            .as_array()
            .expect("array")
            .iter()
            .map(|p| p.as_str().expect("str").to_string())
            .collect();
        assert_eq!(parents.join(" "), f[1]);
        assert_eq!(v["author"], f[2]);
        assert_eq!(v["authorTime"].to_string(), f[3]);
        assert_eq!(v["summary"], f[4]);
        n += 1;
    }
    assert_eq!(n, expected.lines().count());
}

#[test]
fn not_a_repository_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, err, ok) = run(&["log", "."], tmp.path());
    assert!(!ok);
    assert!(out.is_empty());
    assert!(err.contains("not inside a git repository"), "{err}");
}
