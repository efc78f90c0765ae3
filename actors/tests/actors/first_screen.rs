//! A large repository's first screen: the newest commits are served while the whole history
//! loads, viewers get the rest as growth, and requests for the whole history wait for it.

use std::time::Duration;

use actix::prelude::*;
use gitvista_actors::repo_session::{GetCompleteSnapshot, GetSnapshot, Subscribe};
use gitvista_actors::snapshot::FirstScreen;
use gitvista_actors::{RepoSession, SessionConfig, ViewerEvent};
use tokio::sync::mpsc;

use crate::common::{Collector, fixture, git};

fn rows(s: &gitvista_actors::Snapshot) -> Vec<String> {
    (0..s.graph.len())
        .map(|r| s.graph.oid(s.graph.at_row(r).expect("row")).to_hex())
        .collect()
}

#[actix::test]
async fn the_newest_commits_are_served_first_and_the_whole_history_follows_as_growth() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 300 main commits under 250 newer pull requests: HEAD (main) is the 251st newest commit.
    let repo = fixture("forge", tmp.path()).join("repo");
    let theirs = git(
        &repo,
        &[
            "rev-list",
            "--date-order",
            "--branches",
            "--tags",
            "--glob=refs/pull/*",
            "HEAD",
        ],
    );
    let theirs: Vec<String> = theirs.lines().map(str::to_string).collect();
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let config = SessionConfig {
        first_screen: Some(FirstScreen {
            from_objects: 0,
            rows: 20,
        }),
        poll_interval: Duration::from_secs(3600),
        ..SessionConfig::local(&repo)
    };
    // Everything is asked before the session first runs: the requests and the viewer are taken
    // once the first screen is shown, before the whole load can end.
    let session = RepoSession::new(config).start();
    let (tx, mut events) = mpsc::unbounded_channel();
    session.do_send(Subscribe {
        id: 1,
        viewer: std::sync::Arc::new(Collector(tx).start().recipient()),
        seen: None,
    });
    let first = session.send(GetSnapshot);
    let whole = session.send(GetCompleteSnapshot);
    let first = first.await.expect("mailbox").expect("a first screen");
    assert!(first.is_partial());
    assert_eq!(first.version, 1);
    // HEAD's commit and the screen of history below it (100 rows by default) came.
    let n = first.graph.len();
    assert_eq!(
        n,
        251 + 100,
        "the pull requests, HEAD and a screen below it"
    );
    assert_eq!(
        rows(&first),
        theirs[..n],
        "git's newest rows, in git's order"
    );
    let h = first.graph.head_commit().expect("HEAD's row is there");
    assert_eq!(first.graph.oid(h).to_hex(), head);
    assert!(first.graph.shallow_count() > 0, "the history goes on below");

    let whole = whole.await.expect("mailbox").expect("the whole history");
    assert!(!whole.is_partial());
    assert_eq!(whole.version, 2, "one change: the older commits");
    assert_eq!(rows(&whole), theirs, "the whole graph is git's");
    assert_eq!(whole.graph.shallow_count(), 0);

    // The viewer was told: one delta, the older commits below (rows re-read), to version 2.
    let delta = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Some(ViewerEvent::Delta(d)) => return d,
                Some(ViewerEvent::ReloadFailed(e)) => panic!("load failed: {e}"),
                Some(_) => {}
                None => panic!("viewer gone"),
            }
        }
    })
    .await
    .expect("a delta");
    assert_eq!(delta.version, 2);
    assert_eq!(
        delta.rows,
        whole.layout.len(),
        "the rows of the default view"
    );
    assert!(delta.rewritten, "rows moved: viewers re-read their windows");
    assert!(delta.removed.is_empty(), "{:?}", delta.removed);
    let mut added = delta.added.clone();
    added.sort();
    let mut older: Vec<String> = theirs[n..].to_vec();
    older.sort();
    assert_eq!(added, older, "the older commits, and nothing else");
    // The session serves the whole history from now on.
    let now = session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("ok");
    assert!(std::sync::Arc::ptr_eq(&now, &whole) || !now.is_partial());
}

#[actix::test]
async fn a_repository_below_the_threshold_is_loaded_whole_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("forge", tmp.path()).join("repo");
    let objects: usize = git(&repo, &["count-objects", "-v"])
        .lines()
        .find_map(|l| l.strip_prefix("in-pack: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("in-pack count");
    for (from_objects, rows) in [(objects + 1, 20), (0, 100_000)] {
        // Too few objects, or the newest commits are all of them: no first screen.
        let session = RepoSession::new(SessionConfig {
            first_screen: Some(FirstScreen { from_objects, rows }),
            poll_interval: Duration::from_secs(3600),
            ..SessionConfig::local(&repo)
        })
        .start();
        let s = session
            .send(GetSnapshot)
            .await
            .expect("mailbox")
            .expect("loads");
        assert!(!s.is_partial(), "{from_objects} {rows}");
        assert_eq!(s.version, 1);
    }
}
