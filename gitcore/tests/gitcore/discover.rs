//! Repository discovery: work trees, subdirectories, `.git` files, linked worktrees, bare.

use gitcore::discover::{DiscoverError, GitDir};

use crate::common::{fixture, git_lines};

fn canonical(p: &std::path::Path) -> std::path::PathBuf {
    std::fs::canonicalize(p).expect("exists")
}

#[test]
fn finds_work_tree_from_a_subdirectory() {
    let repo = fixture("merges").join("repo");
    let sub = repo.join("sub/dir");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let d = GitDir::discover(&sub).expect("found");
    assert_eq!(d.git_dir, canonical(&repo.join(".git")));
    assert_eq!(d.common_dir, d.git_dir);
    assert_eq!(d.work_tree, Some(canonical(&repo)));
    let inside = GitDir::discover(&repo.join(".git")).expect("found from .git");
    assert_eq!(inside.git_dir, d.git_dir);
}

#[test]
fn linked_worktree_uses_gitdir_file_and_commondir() {
    let wt = fixture("clones").join("wt");
    let d = GitDir::discover(&wt).expect("found");
    let expected_git_dir = git_lines(&wt, &["rev-parse", "--absolute-git-dir"]);
    assert_eq!(
        d.git_dir,
        canonical(std::path::Path::new(&expected_git_dir[0]))
    );
    let common = git_lines(&wt, &["rev-parse", "--git-common-dir"]);
    assert_eq!(d.common_dir, canonical(&wt.join(&common[0])));
    assert_eq!(
        d.objects_dir(),
        canonical(&fixture("clones").join("src/.git/objects"))
    );
}

#[test]
fn bare_repository_is_its_own_git_dir() {
    let bare = fixture("clones").join("bare.git");
    let d = GitDir::discover(&bare).expect("found");
    assert!(d.is_bare());
    assert_eq!(d.git_dir, canonical(&bare));
}

#[test]
fn plain_directory_is_not_a_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A lone `HEAD` file does not make a repository.
    std::fs::write(tmp.path().join("HEAD"), "ref: refs/heads/main\n").expect("write");
    let err = GitDir::discover(tmp.path()).expect_err("no repository");
    assert!(matches!(err, DiscoverError::NotARepository { .. }), "{err}");
    let gitfile = tmp.path().join("w");
    std::fs::create_dir(&gitfile).expect("mkdir");
    std::fs::write(gitfile.join(".git"), "gitdir: /nonexistent/path\n").expect("write");
    let err = GitDir::discover(&gitfile).expect_err("bad gitfile");
    assert!(matches!(err, DiscoverError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains(".git"), "{err}");
}
