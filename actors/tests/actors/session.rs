//! RepoSession and Supervisor: loading, live deltas from the watcher and the poll fallback,
//! many viewers, restarts.

use std::path::Path;
use std::time::Duration;

use actix::prelude::*;
use gitvista_actors::events::RefChangeEvent;
use gitvista_actors::repo_session::{GetSnapshot, Subscribe, ViewerCount};
use gitvista_actors::supervisor::{
    GetSession, Register, RunningSessions, StopSession, SupervisorError,
};
use gitvista_actors::{DeltaEvent, RepoId, SessionConfig, Supervisor, ViewerEvent};
use tokio::sync::mpsc;

use crate::common::{Collector, fixture, git};

/// The next delta, skipping status and head events.
async fn next_delta(rx: &mut mpsc::UnboundedReceiver<ViewerEvent>, within: Duration) -> DeltaEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ViewerEvent::Delta(d))) => return (*d).clone(),
            Ok(Some(ViewerEvent::ReloadFailed(e))) => panic!("reload failed: {e}"),
            Ok(Some(ViewerEvent::Closing)) => panic!("the session closed its viewers"),
            Ok(Some(
                ViewerEvent::Status(_)
                | ViewerEvent::Head(_)
                | ViewerEvent::Remote(_)
                | ViewerEvent::AccessChanged
                | ViewerEvent::Encoded(_)
                | ViewerEvent::Behind(_),
            )) => {}
            Ok(None) => panic!("viewer channel closed"),
            Err(_) => panic!("no delta within {within:?}"),
        }
    }
}

async fn start(path: &Path, config: SessionConfig) -> Addr<gitvista_actors::RepoSession> {
    let sup = Supervisor::new().start();
    let id = RepoId::parse("local").expect("valid id");
    sup.send(Register {
        id: id.clone(),
        config: SessionConfig {
            path: path.to_path_buf(),
            ..config
        },
    })
    .await
    .expect("mailbox");
    sup.send(GetSession(id))
        .await
        .expect("mailbox")
        .expect("known repo")
}

async fn subscribe(
    session: &Addr<gitvista_actors::RepoSession>,
    id: u64,
) -> mpsc::UnboundedReceiver<ViewerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    let viewer = Collector(tx).start();
    session
        .send(Subscribe {
            id,
            viewer: std::sync::Arc::new(viewer.recipient()),
            seen: None,
        })
        .await
        .expect("mailbox");
    rx
}

/// The session's snapshot (after its first load).
async fn snapshot(
    session: &Addr<gitvista_actors::RepoSession>,
) -> std::sync::Arc<gitvista_actors::Snapshot> {
    session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("loads")
}

/// The session's snapshot with every commit's metadata read.
async fn complete_snapshot(
    session: &Addr<gitvista_actors::RepoSession>,
) -> std::sync::Arc<gitvista_actors::Snapshot> {
    session
        .send(gitvista_actors::repo_session::GetCompleteSnapshot)
        .await
        .expect("mailbox")
        .expect("loads")
}

fn watch_only(path: &Path) -> SessionConfig {
    SessionConfig {
        poll_interval: Duration::from_secs(3600),
        ..SessionConfig::local(path)
    }
}

#[actix::test]
async fn snapshot_matches_git_and_commits_arrive_as_deltas_within_two_seconds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let session = start(&repo, watch_only(&repo)).await;
    let snap = snapshot(&session).await;
    let count: usize = git(
        &repo,
        &["--no-replace-objects", "rev-list", "--all", "--count"],
    )
    .parse()
    .expect("count");
    assert_eq!(snap.graph.len(), count);
    // The session's layout is the default view: without what only pull requests and notes reach.
    let shown: usize = git(
        &repo,
        &[
            "--no-replace-objects",
            "rev-list",
            "--exclude=refs/pull/*",
            "--exclude=refs/notes/*",
            "--all",
            "--count",
        ],
    )
    .parse()
    .expect("count");
    assert_eq!(snap.layout.len(), shown);
    let mut rx = subscribe(&session, 1).await;

    std::fs::write(repo.join("live.txt"), "live").expect("write");
    git(&repo, &["add", "live.txt"]);
    git(&repo, &["commit", "-q", "-m", "live commit"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let d = next_delta(&mut rx, Duration::from_secs(2)).await;
    assert_eq!(d.added, vec![head.clone()]);
    assert!(d.refs.iter().any(|r| matches!(r, RefChangeEvent::Moved { name, to, .. } if name == "refs/heads/main" && *to == head)));
    assert_eq!(
        d.head.as_ref().and_then(|h| h.commit.clone()),
        Some(head.clone())
    );
    let snap = session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("loaded");
    assert_eq!(snap.graph.len(), count + 1);
    assert_eq!(snap.layout.len(), shown + 1);

    git(&repo, &["commit", "-q", "--amend", "-m", "amended"]);
    let d = next_delta(&mut rx, Duration::from_secs(2)).await;
    assert_eq!(d.removed, vec![head]);
    assert_eq!(d.added, vec![git(&repo, &["rev-parse", "HEAD"])]);
    assert!(d.rewritten);
    let head = git(&repo, &["rev-parse", "HEAD"]);

    git(&repo, &["branch", "brand-new"]);
    let d = next_delta(&mut rx, Duration::from_secs(2)).await;
    assert_eq!(
        d.refs,
        vec![RefChangeEvent::Created {
            name: "refs/heads/brand-new".into(),
            to: head.clone()
        }]
    );

    git(&repo, &["tag", "-d", "light"]);
    let d = next_delta(&mut rx, Duration::from_secs(2)).await;
    assert!(
        matches!(&d.refs[..], [RefChangeEvent::Deleted { name, .. }] if name == "refs/tags/light"),
        "{d:?}"
    );

    std::fs::write(repo.join("a.txt"), "stash me").expect("write");
    git(&repo, &["stash", "push", "-q"]);
    let d = next_delta(&mut rx, Duration::from_secs(2)).await;
    assert!(
        d.refs
            .iter()
            .any(|r| matches!(r, RefChangeEvent::Created { name, .. } if name == "stash@{0}")),
        "{d:?}"
    );

    // A rebase: the branch's commit is replaced by a new one on top of main.
    git(&repo, &["checkout", "-q", "-b", "topic", "HEAD~1"]);
    std::fs::write(repo.join("topic.txt"), "topic").expect("write");
    git(&repo, &["add", "topic.txt"]);
    git(&repo, &["commit", "-q", "-m", "on topic"]);
    let before = git(&repo, &["rev-parse", "HEAD"]);
    let d = next_delta(&mut rx, Duration::from_secs(2)).await;
    assert_eq!(d.added, vec![before.clone()]);
    git(&repo, &["rebase", "-q", "main"]);
    let after = git(&repo, &["rev-parse", "HEAD"]);
    // A rebase passes through a detached HEAD: gather deltas until the branch has moved.
    let (mut added, mut removed, mut moved) = (Vec::new(), Vec::new(), false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !moved {
        let d = next_delta(&mut rx, deadline - tokio::time::Instant::now()).await;
        added.extend(d.added.clone());
        removed.extend(d.removed.clone());
        moved = d.refs.iter().any(|r| matches!(r, RefChangeEvent::Moved { name, to, .. } if name == "refs/heads/topic" && *to == after));
    }
    added.retain(|c| !removed.contains(c));
    assert_eq!((removed, added), (vec![before], vec![after]));
}

/// The next event past the work tree's status, which every new viewer gets.
async fn next_event(rx: &mut mpsc::UnboundedReceiver<ViewerEvent>) -> ViewerEvent {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(ViewerEvent::Status(_))) => {}
            Ok(Some(e)) => return e,
            other => panic!("no event: {other:?}"),
        }
    }
}

/// A socket reads the snapshot for its opening summary, then subscribes: a commit in between
/// was broadcast before the viewer was there, so the session tells it to read again (the page
/// held a stale history until the next change: a CI failure of the streamed first visit).
#[actix::test]
async fn a_viewer_subscribing_after_a_change_it_was_not_told_of_is_told_to_read_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let session = start(&repo, watch_only(&repo)).await;
    let told = snapshot(&session).await.version;
    let mut watching = subscribe(&session, 1).await;
    git(&repo, &["commit", "--allow-empty", "-qm", "between"]);
    let d = next_delta(&mut watching, Duration::from_secs(5)).await;
    assert_eq!(d.version, told + 1);
    let late = |seen| {
        let (tx, rx) = mpsc::unbounded_channel();
        let viewer = Collector(tx).start();
        let session = session.clone();
        async move {
            session
                .send(Subscribe {
                    id: 2 + seen,
                    viewer: std::sync::Arc::new(viewer.recipient()),
                    seen: Some(seen),
                })
                .await
                .expect("mailbox");
            rx
        }
    };
    // Told of the version before the commit: behind, with the version it should read.
    let mut behind = late(told).await;
    let first = next_event(&mut behind).await;
    assert!(
        matches!(first, ViewerEvent::Behind(v) if v == told + 1),
        "{first:?}"
    );
    // Told of the current version: nothing to read again; the next commit is its first event.
    let mut current = late(told + 1).await;
    git(&repo, &["commit", "--allow-empty", "-qm", "after"]);
    match next_event(&mut current).await {
        ViewerEvent::Delta(d) => assert_eq!(d.version, told + 2),
        other => panic!("expected the next delta, got {other:?}"),
    }
}

#[actix::test]
async fn polling_finds_changes_when_no_watcher_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let config = SessionConfig {
        watch: false,
        poll_interval: Duration::from_millis(200),
        ..SessionConfig::local(&repo)
    };
    let session = start(&repo, config).await;
    snapshot(&session).await;
    let mut rx = subscribe(&session, 7).await;
    std::fs::write(repo.join("p.txt"), "poll").expect("write");
    git(&repo, &["add", "p.txt"]);
    git(&repo, &["commit", "-q", "-m", "found by polling"]);
    let d = next_delta(&mut rx, Duration::from_secs(3)).await;
    assert_eq!(d.added, vec![git(&repo, &["rev-parse", "HEAD"])]);
}

#[actix::test]
async fn five_hundred_viewers_receive_the_same_delta() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let session = start(&repo, watch_only(&repo)).await;
    snapshot(&session).await;
    let mut receivers = Vec::new();
    for id in 0..500 {
        receivers.push(subscribe(&session, id).await);
    }
    assert_eq!(session.send(ViewerCount).await.expect("mailbox"), 500);
    git(&repo, &["branch", "fan-out"]);
    let first = next_delta(&mut receivers[0], Duration::from_secs(2)).await;
    for rx in &mut receivers[1..] {
        assert_eq!(
            next_delta(rx, Duration::from_secs(2)).await.json(),
            first.json()
        );
    }
}

#[actix::test]
async fn supervisor_restarts_stopped_sessions_and_refuses_unknown_ids() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let sup = Supervisor::new().start();
    let id = RepoId::parse("local").expect("valid");
    sup.send(Register {
        id: id.clone(),
        config: watch_only(&repo),
    })
    .await
    .expect("mailbox");
    let first = sup
        .send(GetSession(id.clone()))
        .await
        .expect("mailbox")
        .expect("known");
    snapshot(&first).await;
    assert_eq!(
        sup.send(RunningSessions).await.expect("mailbox"),
        vec![id.clone()]
    );
    assert!(sup.send(StopSession(id.clone())).await.expect("mailbox"));
    for _ in 0..50 {
        if !first.connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!first.connected(), "the stopped session's actor ended");
    let second = sup
        .send(GetSession(id.clone()))
        .await
        .expect("mailbox")
        .expect("restarts");
    assert!(second.connected());
    second
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("loads again");
    let unknown = RepoId::parse("nope").expect("valid");
    let err = sup
        .send(GetSession(unknown.clone()))
        .await
        .expect("mailbox")
        .expect_err("unknown");
    assert_eq!(err, SupervisorError::UnknownRepo(unknown));
    assert!(RepoId::parse("../etc").is_none());
    assert!(RepoId::parse("").is_none());
}

#[actix::test]
async fn a_path_that_is_not_a_repository_is_a_load_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let session = start(tmp.path(), watch_only(tmp.path())).await;
    let err = session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect_err("not a repo");
    assert!(
        err.to_string().contains("not inside a git repository"),
        "{err}"
    );
}

#[actix::test]
async fn the_memory_budget_stops_idle_sessions_and_refuses_when_all_are_watched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    // One byte: any loaded session fills it, so each new one must push the last one out.
    let sup = Supervisor::with_budget(gitvista_actors::budget::Budget {
        max_sessions: 100,
        memory_bytes: 1,
    })
    .start();
    let ids: Vec<RepoId> = ["a", "b", "c"]
        .iter()
        .map(|s| RepoId::parse(s).expect("valid"))
        .collect();
    for id in &ids {
        sup.send(Register {
            id: id.clone(),
            config: watch_only(&repo),
        })
        .await
        .expect("mailbox");
    }
    for id in &ids {
        let s = sup
            .send(GetSession(id.clone()))
            .await
            .expect("mailbox")
            .expect("room is made");
        snapshot(&s).await;
        assert_eq!(
            sup.send(RunningSessions).await.expect("mailbox"),
            vec![id.clone()],
            "the older idle session was stopped for {id}"
        );
    }
    // The running one gets a viewer: nothing may be stopped for a new one now.
    let watched = sup
        .send(GetSession(ids[2].clone()))
        .await
        .expect("mailbox")
        .expect("running");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let viewer = Collector(tx).start();
    watched
        .send(Subscribe {
            id: 1,
            viewer: std::sync::Arc::new(viewer.recipient()),
            seen: None,
        })
        .await
        .expect("mailbox");
    let err = sup
        .send(GetSession(ids[0].clone()))
        .await
        .expect("mailbox")
        .expect_err("every session is watched");
    assert!(
        matches!(err, SupervisorError::Busy { sessions: 1 }),
        "{err}"
    );
    assert!(watched.connected(), "the watched session keeps running");
}

/// Regression: the watcher reacted to the server's own reads ("opened" events on `.git/HEAD`),
/// each starting a reload that read `HEAD` again: an idle local session reloaded ~30 times a
/// second, and the 3-second poll ran full reloads even with the watcher working.
#[actix::test]
async fn an_idle_session_does_not_reload_and_one_commit_is_one_reload() {
    use gitvista_actors::repo_session::Describe;
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    // The defaults of `gitvista open`: watcher, work-tree status, 3-second poll interval.
    let session = start(&repo, SessionConfig::local(&repo)).await;
    let snap = snapshot(&session).await;
    let mut rx = subscribe(&session, 1).await;
    // What a page visit makes the server read: refs, commits, trees and the work tree.
    let _ = snap.repo.refs();
    let _ = gitcore::worktree::status(&snap.repo, Default::default());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let info = session.send(Describe).await.expect("mailbox");
    let idle = info.reloads;
    assert!(idle <= 1, "{idle} reloads in 8 idle seconds");
    assert!(
        info.reload_checks <= 2,
        "{} checks in 8 idle seconds: the server's own reads must not wake it",
        info.reload_checks
    );
    git(&repo, &["commit", "--allow-empty", "-qm", "one more"]);
    next_delta(&mut rx, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = session.send(Describe).await.expect("mailbox").reloads;
    assert_eq!(after, idle + 1, "one commit, one reload");
}

#[actix::test]
async fn with_a_commit_graph_the_first_snapshot_is_its_topology_and_the_metadata_follows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    git(&repo, &["commit-graph", "write", "--reachable"]);
    let config = SessionConfig {
        commit_graph_hint_after: Some(Duration::ZERO),
        ..watch_only(&repo)
    };
    let session = start(&repo, config).await;
    let first = snapshot(&session).await;
    assert!(first.graph.load_source().commit_graph);
    assert!(first.commit_graph_hint.is_none(), "the file is there");
    let complete = complete_snapshot(&session).await;
    assert!(complete.graph.has_metadata());
    assert_eq!(complete.version, first.version, "rows shown do not change");
    assert_eq!(complete.layout.len(), first.layout.len());
    // Authors and subjects as git prints them.
    let expected: std::collections::BTreeMap<String, String> = git(
        &repo,
        &[
            "--no-replace-objects",
            "log",
            "--all",
            "--format=%H %an <%ae> %at %s",
        ],
    )
    .lines()
    .map(|l| (l[..40].to_string(), l[41..].to_string()))
    .collect();
    let g = &complete.graph;
    let shown: std::collections::BTreeMap<String, String> = (0..g.len())
        .filter_map(|r| g.at_row(r))
        .map(|c| {
            let a = g.author(c);
            let line = format!(
                "{} <{}> {} {}",
                a.name,
                a.email,
                g.author_time(c),
                g.summary(c)
            );
            (g.oid(c).to_hex(), line)
        })
        .collect();
    assert_eq!(shown, expected);
    // The session serves the complete snapshot from now on, and reloads from it.
    let now = snapshot(&session).await;
    assert!(now.graph.has_metadata());
    let mut rx = subscribe(&session, 1).await;
    git(
        &repo,
        &["commit", "--allow-empty", "-qm", "after the commit-graph"],
    );
    let d = next_delta(&mut rx, Duration::from_secs(5)).await;
    assert_eq!(d.added.len(), 1);
    let after = snapshot(&session).await;
    let c = after.graph.head_commit().expect("HEAD");
    assert_eq!(after.graph.summary(c), "after the commit-graph");
    assert!(after.graph.has_metadata());
}

#[actix::test]
async fn without_a_commit_graph_the_session_measures_what_one_would_save() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let hinted = |after| SessionConfig {
        commit_graph_hint_after: after,
        ..watch_only(&repo)
    };
    let snap = snapshot(&start(&repo, hinted(Some(Duration::ZERO))).await).await;
    assert!(snap.graph.has_metadata(), "decoded from the packs");
    let hint = snap.commit_graph_hint.clone().expect("a hint");
    assert_eq!(hint.commits, snap.graph.len());
    assert!(hint.decoding > Duration::ZERO && hint.decoding <= hint.first_view);
    assert_eq!(hint.estimate(), hint.first_view - hint.decoding);
    assert!(hint.speedup() >= 1.0);
    assert!(
        hint.message()
            .contains("git commit-graph write --reachable --changed-paths")
    );
    // Hosted sessions (None) and a first view under the threshold say nothing.
    for after in [None, Some(Duration::from_secs(3600))] {
        let quiet = snapshot(&start(&repo, hinted(after)).await).await;
        assert!(quiet.commit_graph_hint.is_none(), "{after:?}");
    }
    // Writing the file makes the hint go at the next reload.
    let session = start(&repo, hinted(Some(Duration::ZERO))).await;
    let mut rx = subscribe(&session, 1).await;
    assert!(snapshot(&session).await.commit_graph_hint.is_some());
    git(&repo, &["commit-graph", "write", "--reachable"]);
    git(&repo, &["commit", "--allow-empty", "-qm", "one more"]);
    next_delta(&mut rx, Duration::from_secs(5)).await;
    let after = snapshot(&session).await;
    assert!(after.commit_graph_hint.is_none());
}

/// Collects what a session hands the cluster: published events and interest changes.
struct ClusterProbe(mpsc::UnboundedSender<String>);

impl Actor for ClusterProbe {
    type Context = Context<Self>;
}

impl Handler<gitvista_actors::events::Published> for ClusterProbe {
    type Result = ();
    fn handle(&mut self, msg: gitvista_actors::events::Published, _: &mut Context<Self>) {
        let what = match &msg.event {
            ViewerEvent::Delta(d) => format!("delta {}", d.added.len()),
            other => format!("{other:?}"),
        };
        let _ = self.0.send(format!("{} {what}", msg.id.as_str()));
    }
}

impl Handler<gitvista_actors::events::Interest> for ClusterProbe {
    type Result = ();
    fn handle(&mut self, msg: gitvista_actors::events::Interest, _: &mut Context<Self>) {
        let _ = self.0.send(match msg {
            gitvista_actors::events::Interest::Watch { id, session } => {
                // Events relayed to the session reach its viewers.
                session.do_send(gitvista_actors::events::Relay::event(ViewerEvent::Encoded(
                    bytes::Bytes::from_static(br#"{"type":"resync","reason":"probe"}"#),
                )));
                format!("watch {}", id.as_str())
            }
            gitvista_actors::events::Interest::Unwatch { id } => format!("unwatch {}", id.as_str()),
        });
    }
}

#[actix::test]
async fn an_owning_session_publishes_what_its_viewers_get() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (tx, mut published) = mpsc::unbounded_channel();
    let probe = ClusterProbe(tx).start();
    let id = RepoId::parse("00000000000000ab").expect("id");
    let session = start(
        &repo,
        SessionConfig {
            cluster: Some(gitvista_actors::events::ClusterLink::Owner {
                id: id.clone(),
                publish: probe.recipient(),
            }),
            ..watch_only(&repo)
        },
    )
    .await;
    snapshot(&session).await;
    // Published even without a viewer here: the viewers are on other nodes.
    git(&repo, &["branch", "published"]);
    let got = tokio::time::timeout(Duration::from_secs(3), published.recv())
        .await
        .expect("published in time")
        .expect("open");
    assert_eq!(got, "00000000000000ab delta 0");
}

#[actix::test]
async fn a_remote_session_has_no_snapshot_relays_events_and_says_when_it_is_watched() {
    let (tx, mut told) = mpsc::unbounded_channel();
    let probe = ClusterProbe(tx).start();
    let id = RepoId::parse("00000000000000cd").expect("id");
    let sup = Supervisor::new().start();
    sup.send(Register {
        id: id.clone(),
        config: SessionConfig::remote(id.clone(), probe.recipient()),
    })
    .await
    .expect("mailbox");
    let session = sup
        .send(GetSession(id))
        .await
        .expect("mailbox")
        .expect("known");
    assert!(matches!(
        session.send(GetSnapshot).await.expect("mailbox"),
        Err(gitvista_actors::SessionError::Remote)
    ));
    let mut a = subscribe(&session, 1).await;
    let _b = subscribe(&session, 2).await;
    let recv = async |rx: &mut mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("in time")
            .expect("open")
    };
    // Once for the first viewer, not for the second.
    assert_eq!(recv(&mut told).await, "watch 00000000000000cd");
    match tokio::time::timeout(Duration::from_secs(2), a.recv()).await {
        Ok(Some(ViewerEvent::Encoded(t))) => {
            assert!(String::from_utf8_lossy(&t).contains("probe"))
        }
        other => panic!("the relayed event: {other:?}"),
    }
    // A delta relayed at version 7: a viewer whose summary (read from the owner) named 6 is
    // told to read again; one that read 7 is not.
    session.do_send(gitvista_actors::events::Relay {
        event: ViewerEvent::Encoded(bytes::Bytes::from_static(br#"{"type":"delta"}"#)),
        version: Some(7),
    });
    let late = async |seen: u64| {
        let (tx, mut rx) = mpsc::unbounded_channel();
        session
            .send(Subscribe {
                id: 10 + seen,
                viewer: std::sync::Arc::new(Collector(tx).start().recipient()),
                seen: Some(seen),
            })
            .await
            .expect("mailbox");
        let first = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        session
            .send(gitvista_actors::repo_session::Unsubscribe { id: 10 + seen })
            .await
            .expect("mailbox");
        first
    };
    assert!(matches!(late(6).await, Ok(Some(ViewerEvent::Behind(7)))));
    assert!(late(7).await.is_err(), "nothing to read again");
    session
        .send(gitvista_actors::repo_session::Unsubscribe { id: 1 })
        .await
        .expect("mailbox");
    session
        .send(gitvista_actors::repo_session::Unsubscribe { id: 2 })
        .await
        .expect("mailbox");
    assert_eq!(recv(&mut told).await, "unwatch 00000000000000cd");
    assert!(told.try_recv().is_err(), "once");
}
