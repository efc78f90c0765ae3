//! The WebSocket: summary on connect, live deltas after `git` changes, the Origin check.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{fixture, git, spawn_app, spawn_app_with_stopper};

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

#[actix_rt::test]
async fn a_graceful_stop_tells_every_viewer_going_away() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (port, stopper, server) = spawn_app_with_stopper(&repo).await;
    let url = format!("ws://127.0.0.1:{port}/api/repos/local/ws");
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connects");
        next_of(&mut ws, "summary", Duration::from_secs(5)).await;
        viewers.push(ws);
    }
    // Let the subscriptions land before stopping.
    tokio::time::sleep(Duration::from_millis(100)).await;
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

#[actix_rt::test]
async fn sigterm_to_gitvista_open_closes_viewers_with_1001_and_exits_cleanly() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .args(["open", "--no-browser", "--port", "0"])
        .arg(&repo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = std::io::BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .replacen("http://", "ws://", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{base}/api/repos/local/ws"))
        .await
        .expect("connects");
    next_of(&mut ws, "summary", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1001)
    );
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
