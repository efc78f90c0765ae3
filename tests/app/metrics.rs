//! `/metrics` of the real binary (its own process, so the counters are its alone).

use std::time::Duration;

use futures_util::StreamExt;

use crate::helpers::{fixture, git, spawn_binary};

/// The value of the first sample of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.split_whitespace().next().is_some_and(|m| {
                (m == name || m.starts_with(&format!("{name}{{"))) && m.contains(labels)
            })
        })
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[actix_rt::test]
async fn metrics_appear_and_move_with_viewers_requests_and_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (mut child, base) = spawn_binary(&repo);
    reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    let before = scrape(&base).await;
    assert!(
        sample(
            &before,
            "gitvista_http_requests_total",
            "route=\"/healthz\""
        )
        .is_some_and(|v| v >= 1.0),
        "{before}"
    );
    assert!(sample(&before, "gitvista_process_resident_bytes", "").is_some_and(|v| v > 1e6));
    assert!(sample(&before, "gitvista_process_open_fds", "").is_some_and(|v| v > 3.0));

    let ws_url = format!("{}/api/repos/local/ws", base.replacen("http", "ws", 1));
    let mut viewers = Vec::new();
    for _ in 0..5 {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        viewers.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with = scrape(&base).await;
    assert_eq!(sample(&with, "gitvista_viewers", ""), Some(5.0), "{with}");
    assert_eq!(sample(&with, "gitvista_sessions", ""), Some(1.0));
    assert_eq!(
        sample(&with, "gitvista_repo_viewers", "repo=\"local\""),
        Some(5.0),
        "{with}"
    );
    assert_eq!(
        sample(&with, "gitvista_sessions_by_state", "state=\"ready\""),
        Some(1.0)
    );
    // Everything was written: nothing waits in the viewers' queues.
    assert_eq!(sample(&with, "gitvista_ws_queued_bytes", ""), Some(0.0));
    // Each viewer got a summary and the work tree's status.
    assert_eq!(
        sample(&with, "gitvista_ws_messages_sent_total", ""),
        Some(10.0)
    );

    git(&repo, &["commit", "-q", "--allow-empty", "-m", "counted"]);
    let mut reloads = 0.0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        reloads = sample(&scrape(&base).await, "gitvista_reloads_total", "").unwrap_or(0.0);
        if reloads >= 1.0 {
            break;
        }
    }
    assert!(reloads >= 1.0, "a reload was counted");
    let after = scrape(&base).await;
    assert!(sample(&after, "gitvista_events_sent_total", "").is_some_and(|v| v >= 5.0));
    assert!(
        sample(&after, "gitvista_ws_messages_sent_total", "").is_some_and(|v| v >= 15.0),
        "and a delta each: {after}"
    );

    for mut ws in viewers {
        let _ = ws.close(None).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gone = scrape(&base).await;
    assert_eq!(sample(&gone, "gitvista_viewers", ""), Some(0.0), "{gone}");
    assert_eq!(
        sample(&gone, "gitvista_repo_viewers", "repo=\"local\""),
        Some(0.0)
    );
    // Their close frames came in.
    assert!(sample(&gone, "gitvista_ws_messages_received_total", "").is_some_and(|v| v >= 5.0));
    let _ = child.kill();
    let _ = child.wait();
}
