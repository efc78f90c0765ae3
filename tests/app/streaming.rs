//! A new repository shown from its remote while it is cloned: through a slow link to a real
//! `git daemon`, the page's routes answer from the history in memory (rows, commits; files
//! 202 until the clone), viewers see it grow, and the clone that follows changes nothing.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::helpers::{git, git_daemon, hosted_config, spawn_hosted_with};
use crate::hosted::{get, post, wait_state};

/// Polls `id`'s status until `pred` holds (bounded).
async fn status_until(base: &str, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let (_, s) = get(&format!("{base}/api/repos/{id}/status")).await;
        if pred(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id}: the status never matched");
}

/// A long history of `n` commits (`long_history`) served by `git daemon` behind a slow link:
/// each connection waits 2 s (the clone, which follows the stream, lands that much later) and
/// the answer comes 16 KiB every 20 ms (the stream arrives in pieces). Answers the source, its
/// commits, the URL to paste, and the daemon (stopped when dropped).
fn slow_long_remote(
    tmp: &std::path::Path,
    n: u32,
) -> (std::path::PathBuf, u64, String, crate::helpers::GitDaemon) {
    let serve = tmp.join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    let src = gitvista_testkit::long_history(&serve, n);
    let total = git(&src, &["rev-list", "--branches", "--tags", "--count"])
        .parse()
        .expect("count");
    let d = git_daemon(&serve);
    let slow = gitvista_testkit::throttled_proxy(
        d.port,
        Duration::from_secs(2),
        Some((16 << 10, Duration::from_millis(20))),
    );
    (src, total, format!("git://127.0.0.1:{slow}/long.git"), d)
}

/// `id`'s summary once its session reads the clone instead of the streamed history (bounded).
async fn cloned_summary(base: &str, id: &str) -> Value {
    for _ in 0..200 {
        let (_, s) = get(&format!("{base}/api/repos/{id}/repository")).await;
        if s["streaming"] == false {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Value::Null
}

#[actix_rt::test]
async fn a_new_repository_is_shown_from_its_remote_while_it_is_cloned() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src, total, url, _daemon) = slow_long_remote(tmp.path(), 6000);
    let total = total as usize;
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        hydrate: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, created) = post(&base, &url).await;
    let id = created["id"].as_str().expect("id").to_string();
    // A page that came before the first rows (every connection waits 2 s) watches the clone's
    // progress; once the rows are served it is told to connect again, as a viewer, for the
    // growth that follows, and the progress socket ends.
    let (mut early, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    let resync = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(msg)) = early.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert_ne!(v["type"], "delta", "a progress socket: {v}");
                if v["type"] == "resync" {
                    return v;
                }
            }
        }
        panic!("the progress socket ended without a resync");
    })
    .await
    .expect("a resync within 60 s");
    assert_eq!(resync["reason"], "served", "{resync}");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match early.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None => return,
                Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the progress socket closes after its resync");

    // Rows before the clone: the status says so while it is still cloning.
    let first = status_until(&base, &id, |s| s["rows"].as_u64().is_some_and(|r| r > 0)).await;
    assert_eq!(first["state"], "cloning", "{first}");
    assert!(
        first["progress"]
            .as_str()
            .is_some_and(|p| p.contains("reading history")),
        "{first}"
    );
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    let (status, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["streaming"], true, "{summary}");
    assert_eq!(summary["contents"], "commits");
    let shown_first = summary["rows"].as_u64().expect("rows") as usize;
    assert!(
        shown_first < total,
        "the first rows come before the whole history ({shown_first})"
    );
    // A search needs the whole history: asked now, it is answered once the clone is read, and
    // finds the root commit, which has not streamed in yet.
    let root = git(&src, &["rev-list", "--max-parents=0", "HEAD"]);
    let search = actix_rt::spawn({
        let url = format!("{base}/api/repos/{id}/search?q=hash:{}", &root[..12]);
        async move { get(&url).await }
    });

    // A commit reads from memory; its files wait for the clone (202, never 500).
    let head = git(&src, &["rev-parse", "HEAD"]);
    let (status, c) = get(&format!("{base}/api/repos/{id}/commit/{head}")).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["hash"], head.as_str());
    assert_eq!(
        c["message"].as_str().map(str::trim_end),
        Some(git(&src, &["log", "-1", "--format=%B", &head]).trim_end())
    );
    let (status, diff) = get(&format!("{base}/api/repos/{id}/commit/diff/{head}")).await;
    assert_eq!(status, 202, "{diff}");
    assert_eq!(diff["code"], "hydrating");

    // The whole history arrives while the clone still waits; the graph then is the clone's.
    status_until(&base, &id, |s| {
        s["rows"].as_u64() == Some(total as u64) && s["state"] == "cloning"
    })
    .await;
    let (_, streamed) = get(&format!("{base}/api/repos/{id}/graph?limit=10000")).await;
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["historyIncomplete"], false, "{summary}");
    let streamed_version = summary["version"].clone();

    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
    let after = cloned_summary(&base, &id).await;
    assert_eq!(after["streaming"], false, "the session reads the clone");
    assert_eq!(after["rows"].as_u64(), Some(total as u64));
    assert_eq!(
        after["version"], streamed_version,
        "the clone changed nothing viewers see"
    );
    let (_, cloned) = get(&format!("{base}/api/repos/{id}/graph?limit=10000")).await;
    assert_eq!(
        streamed["rows"], cloned["rows"],
        "the same rows, from memory and from disk"
    );
    // Files now come on demand from the clone.
    let (status, diff) = get(&format!("{base}/api/repos/{id}/commit/diff/{head}")).await;
    assert_eq!(status, 200, "{diff}");
    // The search asked while the history streamed, answered from the whole of it.
    let (status, found) = search.await.expect("the search ran");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1, "the root commit is found: {found}");
    assert_eq!(
        found["rows"][0].as_u64(),
        after["rows"].as_u64().map(|r| r - 1),
        "at the bottom"
    );

    // The viewer saw the history grow (older commits below: a rewrite, not news on top).
    let mut ws = ws;
    let mut grew = 0;
    let mut states = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(300), ws.next()).await
    {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "delta" || v["type"] == "resync" {
                assert!(v["type"] == "resync" || v["rewritten"] == true, "{v}");
                grew += 1;
            }
            if v["type"] == "status" {
                states.push(v["state"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    assert!(grew >= 1, "viewers were told the history grew");
    // The viewer's status chip says "cloning" until the clone is read, never "up to date".
    assert_eq!(
        states.first().map(String::as_str),
        Some("cloning"),
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("ready"),
        "{states:?}"
    );
    let _ = tmp;
}

#[actix_rt::test]
async fn without_stream_first_the_graph_waits_for_the_clone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    gitvista_testkit::long_history(&serve, 500);
    let d = git_daemon(&serve);
    let slow = gitvista_testkit::delayed_proxy(d.port, Duration::from_secs(1));
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        stream_first: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, created) = post(&base, &format!("git://127.0.0.1:{slow}/long.git")).await;
    let id = created["id"].as_str().expect("id").to_string();
    let s = wait_state(&base, &id, &["cloning"]).await;
    assert!(s["rows"].is_null(), "{s}");
    let (status, _) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(status, 503, "nothing to show before the clone");
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["streaming"], false);
    assert_eq!(summary["rows"], 500);
}

#[actix_rt::test]
async fn a_history_streams_over_smart_http_v2_before_its_clone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    let src = gitvista_testkit::long_history(&serve, 3000);
    let http = gitvista_testkit::git_http(&serve);
    // Every connection waits a second: the clone, which follows the stream, lands that much
    // after the rows are shown.
    let slow = gitvista_testkit::delayed_proxy(http.port, Duration::from_secs(1));
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        hydrate: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, created) = post(&base, &format!("http://127.0.0.1:{slow}/long.git")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let shown = status_until(&base, &id, |s| {
        s["rows"].as_u64().is_some_and(|r| r > 0) || s["state"] == "ready" || s["state"] == "error"
    })
    .await;
    assert_eq!(shown["state"], "cloning", "rows before the clone: {shown}");
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["streaming"], true, "{summary}");
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
    let total: u64 = git(&src, &["rev-list", "--branches", "--tags", "--count"])
        .parse()
        .expect("count");
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["rows"].as_u64(), Some(total), "{summary}");
}

#[actix_rt::test]
async fn a_stream_over_its_memory_cap_shows_what_came_and_the_clone_brings_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The stream may hold 256 KiB of commits, a fraction of this history's.
    let (_src, total, url, _daemon) = slow_long_remote(tmp.path(), 4000);
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        hydrate: false,
        stream_max_bytes: 256 << 10,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, created) = post(&base, &url).await;
    let id = created["id"].as_str().expect("id").to_string();
    let shown = status_until(&base, &id, |s| {
        s["rows"].as_u64().is_some_and(|r| r > 0) || s["state"] == "ready" || s["state"] == "error"
    })
    .await;
    assert_eq!(shown["state"], "cloning", "{shown}");
    // What came before the cap stays shown, cut, until the clone.
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["streaming"], true, "{summary}");
    let partial = summary["rows"].as_u64().expect("rows");
    assert!(
        partial < total,
        "the cap stopped the stream ({partial} of {total})"
    );
    assert_eq!(summary["historyIncomplete"], true, "{summary}");
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
    let after = cloned_summary(&base, &id).await;
    assert_eq!(after["rows"].as_u64(), Some(total), "{after}");
    assert_eq!(after["historyIncomplete"], false, "{after}");
}
