//! The analytics route: figures equal to git's on a small history (computed inline), a long one
//! computed in the background (202 with progress, then the figures), and a new commit counted
//! without reading the history again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{self, fixture, git};

async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.expect("request");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// The answer once the history's changes are read (202s polled, bounded).
async fn ready(url: &str) -> (Value, u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waits = 0;
    loop {
        let (status, body) = get(url).await;
        match status {
            200 => return (body, waits),
            202 => {
                assert_eq!(body["state"], "computing");
                assert!(body["done"].as_u64() <= body["total"].as_u64(), "{body}");
                waits += 1;
            }
            other => panic!("{url}: {other} {body}"),
        }
        assert!(Instant::now() < deadline, "still computing: {body}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

fn shortlog(repo: &std::path::Path) -> BTreeMap<String, u64> {
    git(repo, &["shortlog", "-sne", "--no-merges", "--all"])
        .lines()
        .map(|l| {
            let (n, who) = l.trim().split_once('\t').expect("count and name");
            (who.to_string(), n.parse().expect("count"))
        })
        .collect()
}

fn authors(body: &Value) -> BTreeMap<String, u64> {
    body["authors"]["authors"]
        .as_array()
        .expect("authors")
        .iter()
        .map(|a| {
            (
                format!(
                    "{} <{}>",
                    a["name"].as_str().unwrap_or_default(),
                    a["email"].as_str().unwrap_or_default()
                ),
                a["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn the_dashboard_equals_git_and_a_new_commit_is_counted_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("mailmap", tmp.path()).join("repo");
    let base = format!(
        "http://127.0.0.1:{}/api/repos/local",
        helpers::spawn_app(&repo).await
    );
    let (body, waits) = ready(&format!("{base}/analytics?period=all")).await;
    assert_eq!(waits, 0, "a small history is read inline");
    let no_merges = git(&repo, &["rev-list", "--all", "--no-merges", "--count"]);
    assert_eq!(body["velocity"]["totalCommits"].to_string(), no_merges);
    assert_eq!(authors(&body), shortlog(&repo));
    let merges = git(&repo, &["rev-list", "--all", "--merges", "--count"]);
    assert_eq!(body["merges"]["mergeCount"].to_string(), merges);
    assert_eq!(body["heatmap"]["grid"].as_array().map(Vec::len), Some(7));
    assert!(body["hotspots"].as_array().is_some_and(|h| !h.is_empty()));
    assert_eq!(body["deltas"].as_array().map(Vec::len), Some(6));

    // A commit: counted at the next answer.
    std::fs::write(repo.join("new.txt"), "one\ntwo\n").expect("writes");
    git(&repo, &["add", "new.txt"]);
    git(&repo, &["commit", "-q", "-m", "one more"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (after, _) = ready(&format!("{base}/analytics?period=all")).await;
        if after["velocity"]["totalCommits"] != body["velocity"]["totalCommits"] {
            assert_eq!(
                after["velocity"]["totalCommits"].to_string(),
                git(&repo, &["rev-list", "--all", "--no-merges", "--count"])
            );
            assert_eq!(authors(&after), shortlog(&repo));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new commit was never counted"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }

    // Bad windows are refused.
    for q in [
        "period=2w",
        "start=2024-01-01",
        "start=2024-02-01&end=2024-01-01",
        "start=x&end=y",
    ] {
        let (status, b) = get(&format!("{base}/analytics?{q}")).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (400, Some("invalid_window")),
            "{q}"
        );
    }
}

#[actix_rt::test]
async fn a_long_history_is_read_in_the_background_with_progress() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = gitvista_testkit::long_history(tmp.path(), 3_000);
    let base = format!(
        "http://127.0.0.1:{}/api/repos/local",
        helpers::spawn_app(&bare).await
    );
    let start = 1_700_000_000 + 60;
    let (body, waits) = ready(&format!(
        "{base}/analytics?start={start}&end={}",
        start + 3_000 * 60
    ))
    .await;
    assert!(waits > 0, "3,000 commits are read in the background");
    assert_eq!(
        body["velocity"]["totalCommits"].to_string(),
        git(&bare, &["rev-list", "--all", "--no-merges", "--count"])
    );
    // Fifty files, each changed by one commit in fifty: the units are `src/fN.txt`.
    assert_eq!(body["hotspots"].as_array().map(Vec::len), Some(20));
}
