//! The WebSocket: summary on connect, live deltas after `git` changes, the Origin check.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{
    fixture, git, rss_kib, spawn_app, spawn_app_with, spawn_app_with_stopper, spawn_binary,
};
use gitvista::config::WsSettings;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Socket, within: Duration) -> Value {
    loop {
        let msg = tokio::time::timeout(within, ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json");
        }
    }
}

/// The next message of type `kind`, skipping others (status updates arrive at any moment).
async fn next_of(ws: &mut Socket, kind: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let v = next_json(ws, left).await;
        if v["type"] == kind {
            return v;
        }
    }
}

#[actix_rt::test]
async fn viewers_get_a_summary_then_a_delta_for_each_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = spawn_app(&repo).await;
    let url = format!("ws://127.0.0.1:{port}/api/repos/local/ws");
    let (mut a, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    let (mut b, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    for ws in [&mut a, &mut b] {
        let s = next_json(ws, Duration::from_secs(5)).await;
        assert_eq!(s["type"], "summary");
        assert_eq!(s["commits"], 30);
        assert_eq!(s["head"]["branch"], "refs/heads/main");
    }
    std::fs::write(repo.join("ws.txt"), "ws").expect("write");
    git(&repo, &["add", "ws.txt"]);
    git(&repo, &["commit", "-q", "-m", "seen over the socket"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    for ws in [&mut a, &mut b] {
        let d = next_of(ws, "delta", Duration::from_secs(2)).await;
        assert_eq!(d["added"][0], head.as_str());
        assert_eq!(d["rows"], 31);
        // The delta carries HEAD and the server's time.
        assert_eq!(d["head"]["commit"], head.as_str());
        assert_eq!(d["head"]["branch"], "refs/heads/main");
        assert!(
            d["time"].as_u64().is_some_and(|t| t > 1_700_000_000_000),
            "{d}"
        );
    }
    // A branch that advanced needs no `head` message of its own (one message per change).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, a.next()).await {
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            assert_ne!(v["type"], "head", "{v}");
        }
    }
}

#[actix_rt::test]
async fn cross_site_origins_and_unknown_repositories_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = spawn_app(&repo).await;
    let mut req = format!("ws://127.0.0.1:{port}/api/repos/local/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().expect("header"));
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    let mut same = format!("ws://127.0.0.1:{port}/api/repos/local/ws")
        .into_client_request()
        .expect("request");
    same.headers_mut().insert(
        "origin",
        format!("http://127.0.0.1:{port}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(same)
        .await
        .expect("same origin is fine");
    let err = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/nope/ws"))
        .await
        .expect_err("unknown repo");
    assert!(err.to_string().contains("404"), "{err}");
}

#[actix_rt::test]
async fn five_hundred_websocket_viewers_all_receive_the_same_delta() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = spawn_app(&repo).await;
    let url = format!("ws://127.0.0.1:{port}/api/repos/local/ws");
    let mut sockets = Vec::with_capacity(500);
    for _ in 0..500 {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connects");
        assert_eq!(
            next_json(&mut ws, Duration::from_secs(10)).await["type"],
            "summary"
        );
        sockets.push(ws);
    }
    git(&repo, &["branch", "for-everyone"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let mut first: Option<Value> = None;
    for ws in &mut sockets {
        let d = next_of(ws, "delta", Duration::from_secs(10)).await;
        assert_eq!(d["refs"][0]["name"], "refs/heads/for-everyone");
        assert_eq!(d["refs"][0]["to"], head.as_str());
        match &first {
            Some(f) => assert_eq!(&d, f),
            None => first = Some(d),
        }
    }
}

#[actix_rt::test]
async fn viewers_get_the_work_tree_status_and_head_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = spawn_app(&repo).await;
    let url = format!("ws://127.0.0.1:{port}/api/repos/local/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(5)).await["type"],
        "summary"
    );
    let clean = next_of(&mut ws, "status", Duration::from_secs(5)).await;
    assert_eq!(clean["entries"], serde_json::json!([]));

    std::fs::write(repo.join("fresh.txt"), "new").expect("write");
    let s = next_of(&mut ws, "status", Duration::from_secs(2)).await;
    assert_eq!(
        s["entries"],
        serde_json::json!([{"path": "fresh.txt", "index": "?", "worktree": "?"}])
    );
    assert_eq!(s["untracked"], 1);
    git(&repo, &["add", "fresh.txt"]);
    let s = next_of(&mut ws, "status", Duration::from_secs(2)).await;
    assert_eq!(s["entries"][0]["index"], "A");
    assert_eq!(s["staged"], 1);

    git(&repo, &["checkout", "-q", "-b", "topic"]);
    let h = next_of(&mut ws, "head", Duration::from_secs(2)).await;
    assert_eq!(h["branch"], "refs/heads/topic");
    assert_eq!(
        h["commit"],
        git(&repo, &["rev-parse", "HEAD"]).as_str(),
        "{h}"
    );
}

/// The close frame's code, skipping other messages.
async fn close_code(ws: &mut Socket, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("no close frame within {within:?}"),
        }
    }
}

/// `n` viewers of `url`, each past its summary, their subscriptions given a moment to land.
async fn summarised_viewers(
    url: &str,
    n: usize,
) -> Vec<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>>
{
    let mut viewers = Vec::new();
    for _ in 0..n {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects");
        next_of(&mut ws, "summary", Duration::from_secs(10)).await;
        viewers.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    viewers
}

#[actix_rt::test]
async fn a_graceful_stop_tells_every_viewer_going_away() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (port, stopper, server) = spawn_app_with_stopper(&repo).await;
    let url = format!("ws://127.0.0.1:{port}/api/repos/local/ws");
    let mut viewers = summarised_viewers(&url, 3).await;
    stopper.stop().await;
    for ws in &mut viewers {
        assert_eq!(close_code(ws, Duration::from_secs(5)).await, Some(1001));
    }
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("server ends")
        .expect("task")
        .expect("clean exit");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer listening"
    );
}

/// Sends SIGTERM to `child`.
fn sigterm(child: &std::process::Child) {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
}

/// Waits (at most 15 s) for `child` to exit, successfully.
async fn exits_cleanly(child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[actix_rt::test]
async fn sigterm_to_gitvista_open_closes_viewers_with_1001_and_exits_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (mut child, base) = spawn_binary(&repo);
    let base = base.replacen("http://", "ws://", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{base}/api/repos/local/ws"))
        .await
        .expect("connects");
    next_of(&mut ws, "summary", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    sigterm(&child);
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1001)
    );
    exits_cleanly(&mut child).await;
}

#[actix_rt::test]
async fn sigterm_to_gitvista_serve_tells_viewers_to_reconnect_elsewhere_and_takes_no_new_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, daemon) = crate::hosted::served(tmp.path());
    let (mut child, base) = crate::helpers::spawn_serve_binary(&tmp.path().join("data"), |_| {});
    let id =
        crate::hosted::add_ready(&base, &format!("git://127.0.0.1:{}/merges", daemon.port)).await;
    let ws_url = format!("{}/api/repos/{id}/ws", base.replacen("http://", "ws://", 1));
    let mut viewers = summarised_viewers(&ws_url, 3).await;
    sigterm(&child);
    // 1012 "service restart": a deploy or a restart, connect again (to another node).
    for ws in &mut viewers {
        assert_eq!(close_code(ws, Duration::from_secs(5)).await, Some(1012));
    }
    // From then on no socket is taken: 503 `stopping` while it closes, refused once it is gone.
    match tokio_tungstenite::connect_async(&ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503);
        }
        Err(_) => {}
        Ok(_) => panic!("a stopping server took a new viewer"),
    }
    exits_cleanly(&mut child).await;
}

/// How many viewers the server counts on the local repository.
async fn viewers(port: u16) -> u64 {
    let body: Value = reqwest::get(format!(
        "http://127.0.0.1:{port}/api/repos/local/repository"
    ))
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    body["viewers"].as_u64().expect("viewers")
}

/// Waits (bounded) until the server counts `n` viewers; false if it never does.
async fn wait_for_viewers(port: u16, n: u64, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if viewers(port).await == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A WebSocket client that completes the handshake over a socket with a tiny receive buffer and
/// then never reads: no pongs, no drained frames.
async fn stalled_viewer(port: u16) -> Socket {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connects");
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://127.0.0.1:{port}/api/repos/local/ws"),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("handshake");
    ws
}

#[actix_rt::test]
async fn a_viewer_that_never_reads_delays_no_one_and_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    // A long heartbeat timeout: the stalled viewer must be dropped for falling behind.
    let settings = WsSettings {
        client_timeout: Duration::from_secs(120),
        queue_bytes: 256 * 1024,
        ..WsSettings::default()
    };
    let (port, _stopper, _server) = spawn_app_with(&repo, settings).await;
    let (mut fast, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/local/ws"))
            .await
            .expect("connects");
    next_of(&mut fast, "summary", Duration::from_secs(5)).await;
    let _stalled = stalled_viewer(port).await;
    assert!(wait_for_viewers(port, 2, Duration::from_secs(5)).await);

    // A side history of 5500 commits; each round points a branch at it or deletes the branch,
    // so every viewer gets a ~240 KB delta (5500 commits added or removed) per ref write.
    import_side_history(&repo, 5500);
    let side = git(&repo, &["rev-parse", "refs/heads/side"]);
    git(&repo, &["update-ref", "-d", "refs/heads/side"]);
    // Whatever the import and deletion produced (one delta, two, or none if one reload saw
    // both), let it pass.
    while tokio::time::timeout(Duration::from_millis(500), fast.next())
        .await
        .is_ok()
    {}
    let mut dropped_after = None;
    for round in 0..200 {
        if round % 2 == 0 {
            git(&repo, &["update-ref", "refs/heads/side", &side]);
        } else {
            git(&repo, &["update-ref", "-d", "refs/heads/side"]);
        }
        // The reading viewer gets every round's delta promptly, stalled neighbour or not.
        let d = next_of(&mut fast, "delta", Duration::from_secs(2)).await;
        let moved = if round % 2 == 0 {
            &d["added"]
        } else {
            &d["removed"]
        };
        assert_eq!(moved.as_array().map(Vec::len), Some(5500), "round {round}");
        if viewers(port).await == 1 {
            dropped_after = Some(round);
            break;
        }
    }
    let round = dropped_after.expect("the stalled viewer is dropped within 200 rounds");
    assert!(round > 0, "it had room for at least one delta");
    // The reading viewer stays.
    assert!(wait_for_viewers(port, 1, Duration::from_secs(1)).await);
}

#[actix_rt::test]
async fn a_viewer_that_stops_answering_pings_is_dropped_after_the_timeout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let settings = WsSettings {
        heartbeat: Duration::from_millis(200),
        client_timeout: Duration::from_millis(1000),
        ..WsSettings::default()
    };
    let (port, _stopper, _server) = spawn_app_with(&repo, settings).await;
    let _silent = stalled_viewer(port).await;
    let (mut alive, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/local/ws"))
            .await
            .expect("connects");
    assert!(wait_for_viewers(port, 2, Duration::from_secs(2)).await);
    // The live viewer keeps reading (tungstenite answers pings as it reads).
    let reader = actix_rt::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, alive.next()).await {}
        alive
    });
    assert!(
        wait_for_viewers(port, 1, Duration::from_secs(3)).await,
        "the silent viewer is dropped"
    );
    let mut alive = reader.await.expect("reader");
    assert_eq!(viewers(port).await, 1, "the answering viewer stays");
    drop(alive.close(None).await);
}

#[actix_rt::test]
async fn server_memory_returns_to_its_baseline_after_viewers_leave() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let (mut child, base) = spawn_binary(&repo);
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let ws_url = format!("{}/api/repos/local/ws", base.replacen("http", "ws", 1));
    let round = |n: usize| {
        let ws_url = ws_url.clone();
        async move {
            let mut sockets = Vec::with_capacity(n);
            for _ in 0..n {
                let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
                    .await
                    .expect("connects");
                next_of(&mut ws, "summary", Duration::from_secs(10)).await;
                sockets.push(ws);
            }
            assert!(wait_for_viewers(port, n as u64, Duration::from_secs(10)).await);
            for mut ws in sockets {
                let _ = ws.close(None).await;
            }
            assert!(
                wait_for_viewers(port, 0, Duration::from_secs(10)).await,
                "every viewer is gone"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    // Two rounds set the allocator's working set; later rounds must not add to it. A leak of
    // the per-viewer state (actor, queue, socket session: several KiB each) over 1800 viewers
    // would be megabytes; allocator settling is tens of KiB per round.
    round(300).await;
    round(300).await;
    let baseline = rss_kib(child.id());
    let mut after = Vec::new();
    for _ in 0..6 {
        round(300).await;
        after.push(rss_kib(child.id()));
    }
    let _ = child.kill();
    let _ = child.wait();
    for rss in &after {
        assert!(
            *rss <= baseline + 2048,
            "RSS {rss} KiB after viewers left, baseline {baseline} KiB (all rounds: {after:?})"
        );
    }
}

/// Imports a chain of `n` empty commits on top of HEAD as `refs/heads/side` (one fast-import).
fn import_side_history(repo: &std::path::Path, n: u32) {
    let head = git(repo, &["rev-parse", "HEAD"]);
    let mut stream = String::new();
    for k in 1..=n {
        let from = if k == 1 {
            format!("from {head}\n")
        } else {
            format!("from :{}\n", k - 1)
        };
        stream.push_str(&format!(
            "commit refs/heads/side\nmark :{k}\ncommitter A <a@example.com> {} +0000\ndata 2\nc\n{from}\n",
            1_800_000_000 + u64::from(k)
        ));
    }
    gitvista_testkit::fast_import(repo, &stream);
}

#[actix_rt::test]
async fn an_event_too_large_to_send_becomes_a_resync() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = spawn_app(&repo).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/local/ws"))
            .await
            .expect("connects");
    next_of(&mut ws, "summary", Duration::from_secs(5)).await;
    // 8,000 new commits: a delta of ~350 KB, over the 256 KB an event may carry.
    import_side_history(&repo, 8000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let v = next_json(&mut ws, left).await;
        assert_ne!(v["type"], "delta", "no oversized delta is sent");
        if v["type"] == "resync" {
            assert_eq!(v["reason"], "too_large");
            break;
        }
    }
}
