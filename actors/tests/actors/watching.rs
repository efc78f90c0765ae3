//! A local session's work-tree watcher: what it runs a status for, and what it lets pass.

use std::path::Path;
use std::time::Duration;

use actix::prelude::*;
use gitvista_actors::repo_session::{Describe, GetSnapshot, Subscribe};
use gitvista_actors::{RepoSession, SessionConfig, ViewerEvent};
use tokio::sync::mpsc;

use crate::common::{Collector, fixture, git};

async fn status_runs(session: &Addr<RepoSession>) -> u64 {
    session.send(Describe).await.expect("mailbox").status_runs
}

/// Waits until the session has run no status for a second (its first runs, and the one after
/// the tree watcher is in place, are done).
async fn settled(session: &Addr<RepoSession>) -> u64 {
    let mut last = status_runs(session).await;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = status_runs(session).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("status kept running: {last} runs");
}

/// The next status whose entries name `path`.
async fn status_naming(rx: &mut mpsc::UnboundedReceiver<ViewerEvent>, path: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ViewerEvent::Status(s))) => {
                if let Some(e) = s.entries.iter().find(|e| e.path == path) {
                    return format!("{}{}", e.index, e.worktree);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the session closed"),
            Err(_) => panic!("no status naming {path}"),
        }
    }
}

fn write_many(dir: &Path, n: usize) {
    for i in 0..n {
        let sub = dir.join(format!("deps/d{}", i % 20));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("f{i}.o")), format!("object {i}")).expect("write");
    }
}

/// Regression: `gitvista open .` in a project being built ran a status for every write into the
/// ignored `target/` (about 5% of a core while cargo wrote 1,000 files).
#[actix::test]
async fn writes_where_status_does_not_look_run_no_status_and_the_rest_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    std::fs::write(repo.join(".gitignore"), "target/\n*.log\nbuild/\n").expect("write");
    std::fs::create_dir_all(repo.join("build")).expect("mkdir");
    std::fs::write(repo.join("build/kept.txt"), "tracked though ignored\n").expect("write");
    git(&repo, &["add", ".gitignore"]);
    git(&repo, &["add", "-f", "build/kept.txt"]);
    git(&repo, &["commit", "-qm", "ignore build output"]);
    std::fs::create_dir_all(repo.join("target")).expect("mkdir");
    let config = SessionConfig {
        poll_interval: Duration::from_secs(3600),
        ..SessionConfig::local(&repo)
    };
    let session = RepoSession::new(config).start();
    session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("loads");
    let (tx, mut rx) = mpsc::unbounded_channel();
    session
        .send(Subscribe {
            id: 1,
            viewer: std::sync::Arc::new(Collector(tx).start().recipient()),
            seen: None,
        })
        .await
        .expect("mailbox");
    let before = settled(&session).await;

    // A build: hundreds of files in new directories under target/, and logs at the top.
    write_many(&repo.join("target/debug"), 400);
    for i in 0..20 {
        std::fs::write(repo.join(format!("run{i}.log")), "log").expect("write");
    }
    std::fs::remove_dir_all(repo.join("target/debug/deps/d3")).expect("rm");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status_runs(&session).await,
        before,
        "writes status leaves out ran a status"
    );

    // A tracked file inside an ignored directory is status's business.
    std::fs::write(repo.join("build/kept.txt"), "changed\n").expect("write");
    assert_eq!(status_naming(&mut rx, "build/kept.txt").await, " M");
    // So is a new file anywhere else, and a change to the rules themselves.
    std::fs::write(repo.join("fresh.txt"), "new").expect("write");
    assert_eq!(status_naming(&mut rx, "fresh.txt").await, "??");
    std::fs::write(repo.join(".gitignore"), "build/\n").expect("write");
    assert_eq!(status_naming(&mut rx, "target/").await, "??");
    // With target/ no longer ignored, writes there run a status again.
    let now = settled(&session).await;
    std::fs::write(repo.join("target/debug/new.o"), "x").expect("write");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(status_runs(&session).await > now);
}

/// Every commit's author as the session shows it and as `git log --format='%aN <%aE>'` does.
async fn authors(session: &Addr<RepoSession>, repo: &Path) -> (Vec<String>, Vec<String>) {
    let snap = session
        .send(gitvista_actors::repo_session::GetCompleteSnapshot)
        .await
        .expect("mailbox")
        .expect("loads");
    let g = &snap.graph;
    let mut shown: Vec<String> = (0..g.len())
        .filter_map(|r| g.at_row(r))
        .map(|c| {
            format!(
                "{} {} <{}>",
                g.oid(c).to_hex(),
                g.author(c).name,
                g.author(c).email
            )
        })
        .collect();
    let mut git_says: Vec<String> = git(repo, &["log", "--all", "--format=%H %aN <%aE>"])
        .lines()
        .map(String::from)
        .collect();
    shown.sort();
    git_says.sort();
    (shown, git_says)
}

/// Regression: a `.mailmap` saved after the history was read but before the work tree's watch
/// was in place (a recursive watch of a large tree takes a while: here 20,000 directories)
/// was noticed by nothing, and people kept their old names until some other change.
#[actix::test]
async fn a_mailmap_saved_while_the_work_tree_watch_is_placed_renames_people() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("mailmap", tmp.path()).join("repo");
    for i in 0..20_000 {
        std::fs::create_dir_all(repo.join(format!("vendor/v{}/d{i}", i % 100))).expect("mkdir");
    }
    let session = RepoSession::new(SessionConfig {
        poll_interval: Duration::from_secs(3600),
        ..SessionConfig::local(&repo)
    })
    .start();
    // Loaded: the work tree's watch is being placed now.
    let first = session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("loads");
    let mut map = std::fs::read_to_string(repo.join(".mailmap")).expect("reads");
    map.push_str("Mallory Proper <mallory@proper.example> <shared@example.com>\n");
    std::fs::write(repo.join(".mailmap"), map).expect("writes");
    let before: Vec<&str> = first
        .graph
        .people()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(before.contains(&"Mallory") && !before.contains(&"Mallory Proper"));
    let (_, renamed) = authors(&session, &repo).await;
    assert!(renamed.iter().any(|l| l.contains("Mallory Proper")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (shown, _) = authors(&session, &repo).await;
        if shown == renamed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new name never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
