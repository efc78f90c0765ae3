//! A branch against its upstream, with `git status -sb` and
//! `git rev-list --left-right @{u}...HEAD` as oracles.

use gitcore::graph::CommitGraph;
use gitcore::repo::Repository;
use gitcore::upstream::{UpstreamStatus, upstream};

use crate::common::{fresh_fixture, git, git_command, git_lines};

/// `git status -sb`'s first line: `## main...origin/main [ahead 2, behind 3]`.
fn status_line(path: &std::path::Path) -> String {
    git_lines(path, &["status", "-sb"]).remove(0)
}

#[test]
fn ahead_behind_and_the_upstream_equal_what_git_says_on_every_branch() {
    let (_tmp, root) = fresh_fixture("lifecycle");
    let path = root.join("repo");
    for branch in [
        "main",
        "level",
        "ahead",
        "diverged",
        "behind",
        "gone",
        "none",
        "local-track",
    ] {
        git(&path, &["checkout", "-q", branch]);
        let repo = Repository::discover(&path).expect("opens");
        let graph = CommitGraph::load(&repo).expect("loads");
        let up = upstream(&repo, &graph);
        let line = status_line(&path);
        let counts = git_command(&path, &["rev-list", "--left-right", "@{u}...HEAD"])
            .output()
            .expect("git runs");
        if counts.status.success() {
            // `<` lines are the upstream's own commits, `>` the branch's.
            let text = String::from_utf8_lossy(&counts.stdout).to_string();
            let side = |mark: char| -> Vec<String> {
                text.lines()
                    .filter_map(|l| l.strip_prefix(mark))
                    .map(str::to_string)
                    .collect()
            };
            let hex =
                |v: &[u32]| -> Vec<String> { v.iter().map(|&c| graph.oid(c).to_hex()).collect() };
            let (mut ahead, mut behind) = (hex(&up.ahead), hex(&up.behind));
            let (mut theirs_ahead, mut theirs_behind) = (side('>'), side('<'));
            for v in [
                &mut ahead,
                &mut behind,
                &mut theirs_ahead,
                &mut theirs_behind,
            ] {
                v.sort();
            }
            assert_eq!((ahead, behind), (theirs_ahead, theirs_behind), "{branch}");
            let short = up.branch_name.clone().expect("named");
            assert!(
                line.starts_with(&format!("## {branch}...{short}")),
                "{line}"
            );
            let expected = match (up.ahead.len(), up.behind.len()) {
                (0, 0) => String::new(),
                (a, 0) => format!(" [ahead {a}]"),
                (0, b) => format!(" [behind {b}]"),
                (a, b) => format!(" [ahead {a}, behind {b}]"),
            };
            assert_eq!(line, format!("## {branch}...{short}{expected}"));
            let status = match (up.ahead.is_empty(), up.behind.is_empty()) {
                (true, true) => UpstreamStatus::UpToDate,
                (false, true) => UpstreamStatus::Ahead,
                (true, false) => UpstreamStatus::Behind,
                (false, false) => UpstreamStatus::Diverged,
            };
            assert_eq!(up.status, status, "{branch}");
            let tip = git_lines(&path, &["rev-parse", "@{u}"]).remove(0);
            assert_eq!(up.hash.map(|h| h.to_hex()), Some(tip));
        } else {
            assert_eq!(up.status, UpstreamStatus::Unavailable, "{branch}");
            assert!(up.reason.is_some());
            match branch {
                "gone" => {
                    assert_eq!(line, "## gone...origin/doomed [gone]");
                    assert_eq!(up.branch_name.as_deref(), Some("origin/doomed"));
                    assert_eq!(up.reason.as_deref(), Some("origin/doomed is gone"));
                }
                _ => assert_eq!(line, format!("## {branch}")),
            }
        }
    }
    // Detached: nothing to compare.
    git(&path, &["checkout", "-q", "--detach", "HEAD"]);
    let repo = Repository::discover(&path).expect("opens");
    let graph = CommitGraph::load(&repo).expect("loads");
    let up = upstream(&repo, &graph);
    assert_eq!(up.status, UpstreamStatus::Unavailable);
    assert_eq!(up.reason.as_deref(), Some("HEAD is detached"));
}

#[test]
fn exclusive_sides_equal_rev_list_on_merge_heavy_histories() {
    for (name, sub) in [("merges", "repo"), ("forge", "repo"), ("blame", "repo")] {
        let path = crate::common::fixture(name).join(sub);
        let repo = Repository::discover(&path).expect("opens");
        let graph = CommitGraph::load(&repo).expect("loads");
        let tips: Vec<String> = git_lines(
            &path,
            &[
                "for-each-ref",
                "--format=%(objectname)^{commit}",
                "refs/heads",
            ],
        )
        .into_iter()
        .take(6)
        .collect();
        for a in &tips {
            for b in &tips {
                let a = git_lines(&path, &["rev-parse", a]).remove(0);
                let b = git_lines(&path, &["rev-parse", b]).remove(0);
                let (l, r) = graph.exclusive(
                    graph.find(&crate::common::oid(&a)).expect("a"),
                    graph.find(&crate::common::oid(&b)).expect("b"),
                );
                let theirs = git_lines(
                    &path,
                    &[
                        "--no-replace-objects",
                        "rev-list",
                        "--left-right",
                        &format!("{a}...{b}"),
                    ],
                );
                let mut left: Vec<String> = l
                    .iter()
                    .map(|&c| format!("<{}", graph.oid(c).to_hex()))
                    .collect();
                left.extend(r.iter().map(|&c| format!(">{}", graph.oid(c).to_hex())));
                left.sort();
                let mut theirs = theirs;
                theirs.sort();
                assert_eq!(left, theirs, "{name} {a}...{b}");
            }
        }
    }
}
