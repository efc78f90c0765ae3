//! Hosted mode end to end: a real `git daemon` on loopback as the remote, the real server,
//! SQLite in the data directory.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, fixture, git, git_daemon, hosted_config, spawn_hosted, spawn_hosted_with,
};

pub(crate) async fn post(base: &str, url: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/repos"))
        .json(&json!({ "url": url }))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// GET with the admin token.
pub(crate) async fn admin_get(url: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `/metrics` of the server at `base`, read with the admin token.
pub(crate) async fn admin_metrics(base: &str) -> String {
    reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

pub(crate) async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls the status route until the state is one of `states` (bounded).
pub(crate) async fn wait_state(base: &str, id: &str, states: &[&str]) -> Value {
    for _ in 0..300 {
        let (_, s) = get(&format!("{base}/api/repos/{id}/status")).await;
        if states.iter().any(|st| s["state"] == *st) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {states:?}");
}

/// Asks for a fetch of `id` now through the admin API; answers the status (202 when started).
pub(crate) async fn admin_fetch(base: &str, id: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/admin/repos/{id}/fetch"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("fetch")
        .status()
        .as_u16()
}

/// The status of `id`'s commit route for `hash`, asked every 50 ms until it is 200 (at most
/// `tries` times): a commit just pushed is served once its fetch and reload are done.
pub(crate) async fn commit_status(base: &str, id: &str, hash: &str, tries: usize) -> u16 {
    let mut status = 0;
    for _ in 0..tries {
        (status, _) = get(&format!("{base}/api/repos/{id}/commit/{hash}")).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status
}

/// Polls repository `id`'s graph until it has `expected` rows (bounded: 10 s); answers the last
/// total seen.
pub(crate) async fn wait_total(base: &str, id: &str, expected: u64) -> u64 {
    let mut total = 0;
    for _ in 0..200 {
        let (_, w) = get(&format!("{base}/api/repos/{id}/graph?limit=1")).await;
        total = w["total"].as_u64().unwrap_or(0);
        if total == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    total
}

/// Posts `url` and waits until it is cloned and ready; returns its id.
pub(crate) async fn add_ready(base: &str, url: &str) -> String {
    let (_, created) = post(base, url).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        wait_state(base, &id, &["ready", "error"]).await["state"],
        "ready",
        "{url}"
    );
    id
}

/// `git http-backend` on loopback serving a bare clone of the `linear` fixture as `linear.git`.
pub(crate) fn served_http(tmp: &Path) -> gitvista_testkit::GitHttp {
    let root = tmp.join("http");
    let src = fixture("linear", tmp).join("repo");
    gitvista_testkit::bare_clone(&src, &root.join("linear.git"));
    gitvista_testkit::git_http(&root)
}

pub(crate) fn served(tmp: &Path) -> (std::path::PathBuf, crate::helpers::GitDaemon) {
    served_with(tmp, &[])
}

/// [`served`], the fixture built with `env` (`("GIT_DEFAULT_HASH", "sha256")`: a SHA-256 remote).
pub(crate) fn served_with(
    tmp: &Path,
    env: &[(&str, &str)],
) -> (std::path::PathBuf, crate::helpers::GitDaemon) {
    let serve = tmp.join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    let src = gitvista_testkit::fixture_with("merges", tmp, env).join("repo");
    std::fs::rename(&src, serve.join("merges")).expect("move");
    let d = git_daemon(&serve);
    (serve, d)
}

#[actix_rt::test]
async fn a_pasted_url_is_cloned_served_kept_across_restarts_and_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, stopper, server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("git://127.0.0.1:{}/merges.git", d.port);

    let (status, created) = post(&base, &url).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 16);
    assert_eq!(created["url"], format!("git://127.0.0.1:{}/merges", d.port));
    let ready = wait_state(&base, &id, &["ready", "error"]).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    let expected: u64 = git(
        &serve.join("merges"),
        &["--no-replace-objects", "rev-list", "--all", "--count"],
    )
    .parse()
    .expect("count");
    // The clone holds branches and tags (not notes, pull or replace refs): count what it has.
    let clone = data.join("repos").join(&id);
    let cloned: u64 = git(&clone, &["rev-list", "--all", "--count"])
        .parse()
        .expect("count");
    assert!(cloned > 0 && cloned <= expected);
    assert_eq!(ready["commits"].as_u64(), Some(cloned));
    let (status, w) = get(&format!("{base}/api/repos/{id}/graph?limit=500")).await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["total"].as_u64(), Some(cloned));

    // The same URL written differently is the same repository.
    let (status, again) = post(&base, &format!("git://127.0.0.1:{}/merges/", d.port)).await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
    let (_, list) = admin_get(&format!("{base}/api/admin/repos")).await;
    assert_eq!(list["repos"].as_array().map(Vec::len), Some(1));

    // A restart with the same data directory serves it from disk at once.
    stopper.stop().await;
    server.await.expect("task").expect("clean exit");
    let (port, stopper, server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, s) = get(&format!("{base}/api/repos/{id}/status")).await;
    assert_eq!(s["state"], "ready");
    let (status, w) = get(&format!("{base}/api/repos/{id}/graph?limit=5")).await;
    assert_eq!((status, w["total"].as_u64()), (200, Some(cloned)));

    // Deleting forgets the row, the clone and the session.
    let resp = reqwest::Client::new()
        .delete(format!("{base}/api/repos/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    assert!(!clone.exists());
    let (status, body) = get(&format!("{base}/api/repos/{id}/status")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_repo")));
    let (status, _) = get(&format!("{base}/api/repos/{id}/graph")).await;
    assert_eq!(status, 404);
    stopper.stop().await;
    let _ = server.await;
}

#[actix_rt::test]
async fn ten_concurrent_posts_of_one_url_create_one_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("git://127.0.0.1:{}/merges", d.port);
    let posts: Vec<_> = (0..10).map(|_| post(&base, &url)).collect();
    let mut statuses = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for p in posts {
        let (status, body) = p.await;
        statuses.push(status);
        ids.insert(body["id"].as_str().expect("id").to_string());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(ids.len(), 1);
    let id = ids.into_iter().next().expect("id");
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
}

#[actix_rt::test]
async fn refused_urls_get_400_and_start_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    for (url, code) in [
        ("", "invalid_url"),
        ("--upload-pack=touch /tmp/gitvista-pwned", "invalid_url"),
        ("/etc", "invalid_url"),
        ("file:///etc", "invalid_url"),
        ("ext::sh -c id", "invalid_url"),
        ("https://user:secret@example.com/a/b", "invalid_url"),
        ("ftp://example.com/a", "invalid_url"),
        ("http://example.com/a/b", "invalid_url"),
        ("https://10.0.0.1/a/b", "refused_url"),
        ("https://169.254.169.254/latest/meta-data", "refused_url"),
        ("https://[::ffff:10.0.0.1]/a", "refused_url"),
        ("https://[fd00:ec2::254]/a", "refused_url"),
        ("https://127.0.0.2/a", "refused_url"),
    ] {
        let (status, body) = post(&base, url).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{url}: {body}"
        );
        assert!(
            body["error"].as_str().is_some_and(|e| e.len() > 10),
            "{url}: a sentence"
        );
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/repos"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let (_, list) = admin_get(&format!("{base}/api/admin/repos")).await;
    assert_eq!(list["repos"], json!([]), "nothing was stored");
    assert!(!std::path::Path::new("/tmp/gitvista-pwned").exists());
    let repos = data.join("repos");
    assert!(std::fs::read_dir(&repos).map_or(true, |mut d| d.next().is_none()));
}

#[actix_rt::test]
async fn a_clone_that_fails_ends_in_error_with_a_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, created) =
        post(&base, &format!("git://127.0.0.1:{}/does-not-exist", d.port)).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_string();
    let s = wait_state(&base, &id, &["ready", "error"]).await;
    assert_eq!(s["state"], "error");
    assert_eq!(s["errorCode"], "not_found", "{s}");
    assert!(
        s["error"]
            .as_str()
            .is_some_and(|e| e.contains("No repository was found at this URL")),
        "{s}"
    );
    assert!(!data.join("repos").join(&id).exists());
    // Asking again retries it.
    let (status, again) = post(&base, &format!("git://127.0.0.1:{}/does-not-exist", d.port)).await;
    assert_eq!((status, again["state"].as_str()), (200, Some("cloning")));
}

#[actix_rt::test]
async fn local_mode_has_no_repository_routes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = crate::helpers::spawn_app(&repo).await;
    let (status, body) = post(&format!("http://127.0.0.1:{port}"), "https://example.com/a").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[actix_rt::test]
async fn a_push_to_the_remote_reaches_a_viewer_after_the_next_fetch() {
    use futures_util::StreamExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        fetch_with_viewers: Duration::from_millis(300),
        // Every fetch counts as slow: viewers hear `fetching`, then `ready`.
        fetch_notice: Duration::ZERO,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    // Push: a new commit on main in the source repository.
    let src = serve.join("merges");
    std::fs::write(src.join("pushed.txt"), "pushed").expect("write");
    git(&src, &["add", "pushed.txt"]);
    git(&src, &["commit", "-q", "-m", "pushed upstream"]);
    let head = git(&src, &["rev-parse", "HEAD"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut saw_fetching = false;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a delta before the deadline")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            saw_fetching |= v["type"] == "status" && v["state"] == "fetching";
            if v["type"] == "delta"
                && v["added"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c == head.as_str()))
            {
                break;
            }
        }
    }
    assert!(saw_fetching, "viewers hear that a fetch runs");
    // ... and that it ended well.
    let v = status_where(&mut ws, Duration::from_secs(10), |v| v["state"] == "ready").await;
    assert!(v["error"].is_null(), "{v}");
    // The store records the fetch with the count after it (not the one before).
    let expected: u64 = git(
        &data.join("repos").join(&id),
        &["rev-list", "--all", "--count"],
    )
    .parse()
    .expect("count");
    let mut s = Value::Null;
    for _ in 0..100 {
        s = wait_state(&base, &id, &["ready"]).await;
        if s["commits"].as_u64() == Some(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s["commits"].as_u64(), Some(expected), "{s}");
    assert!(s["lastFetchAt"].is_i64(), "{s}");
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `status` messages received within `within` (other messages skipped).
async fn statuses(ws: &mut Socket, within: Duration) -> Vec<Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "status" {
                out.push(v);
            }
        }
    }
    out
}

/// The first `status` message within `within` that `pred` accepts.
pub(crate) async fn status_where(
    ws: &mut Socket,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the status before the deadline")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "status" && pred(&v) {
                return v;
            }
        }
    }
}

#[actix_rt::test]
async fn quick_fetches_are_silent_and_viewers_hear_of_failing_fetches_and_their_recovery() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        fetch_with_viewers: Duration::from_millis(200),
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    let ws_url = format!("ws://127.0.0.1:{port}/api/repos/{id}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("connects");
    // Several fetches run in 1.5 s, each well under the 1 s notice: nothing to tell viewers.
    assert_eq!(
        statuses(&mut ws, Duration::from_millis(1500)).await,
        Vec::<Value>::new()
    );

    // The remote goes away: viewers hear the failure once, not at every retry.
    let src = serve.join("merges");
    let gone = serve.join("merges-gone");
    std::fs::rename(&src, &gone).expect("rename");
    let failed = status_where(&mut ws, Duration::from_secs(10), |v| !v["error"].is_null()).await;
    assert_eq!(failed["state"], "ready", "{failed}");
    assert!(failed["failures"].as_u64() >= Some(1), "{failed}");
    let again = statuses(&mut ws, Duration::from_millis(800)).await;
    assert!(
        again.is_empty(),
        "the same failure again is not news: {again:?}"
    );
    // A viewer arriving now is told at once.
    let (mut late, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("connects");
    let told = status_where(&mut late, Duration::from_secs(2), |_| true).await;
    assert_eq!(told["error"], failed["error"], "{told}");

    // It comes back: the next fetch clears the error for everyone.
    std::fs::rename(&gone, &src).expect("rename back");
    let recovered = status_where(&mut ws, Duration::from_secs(15), |v| v["error"].is_null()).await;
    assert_eq!(
        (recovered["state"].as_str(), recovered["failures"].as_u64()),
        (Some("ready"), Some(0)),
        "{recovered}"
    );
}

#[actix_rt::test]
async fn idle_sessions_stop_unused_clones_are_evicted_and_cloned_again_on_demand() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        evict_interval: Duration::from_millis(200),
        session_idle: Duration::from_millis(300),
        clone_unused: Duration::from_secs(2),
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    let clone = data.join("repos").join(&id);
    // Unused: the sweep stops the session, deletes the clone and keeps the row as evicted.
    let s = wait_state(&base, &id, &["evicted"]).await;
    assert_eq!(s["state"], "evicted");
    assert!(!clone.exists(), "the clone is deleted");
    // The next request for its graph starts a clone again and says so.
    let (status, body) = get(&format!("{base}/api/repos/{id}/graph")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("repo_unavailable")),
        "{body}"
    );
    let s = wait_state(&base, &id, &["ready", "error"]).await;
    assert_eq!(s["state"], "ready", "{s}");
}

#[actix_rt::test]
async fn one_client_adding_too_many_repositories_is_told_to_wait() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        posts_per_minute: 3,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..3 {
        let (status, _) = post(&base, "https://10.0.0.1/a").await;
        assert_eq!(status, 400, "refused, but within the rate");
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/repos"))
        .json(&json!({ "url": "https://10.0.0.1/a" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "rate_limited");
}

#[actix_rt::test]
async fn a_shallow_first_clone_is_served_at_once_and_deepens_to_the_whole_history() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        initial_depth: Some(2),
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    // Eventually the whole history: what a full clone of branches and tags holds.
    let expected = gitvista_testkit::full_clone_count(tmp.path(), &serve.join("merges"));
    let total = wait_total(&base, &id, expected).await;
    assert_eq!(total, expected, "the graph grew to the whole history");
    let mut s = Value::Null;
    for _ in 0..100 {
        s = wait_state(&base, &id, &["ready"]).await;
        if s["commits"].as_u64() == Some(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        s["commits"].as_u64(),
        Some(expected),
        "the store has the whole count: {s}"
    );
    assert!(!data.join("repos").join(&id).join("shallow").exists());
}

#[actix_rt::test]
async fn a_restart_after_a_crash_mid_clone_finishes_the_clone_and_leaves_no_half_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let pg = crate::store::PgDb::create("crash");
    // A crash mid-clone leaves a row in `cloning` and half a repository in tmp/.
    let url = format!("git://127.0.0.1:{}/merges", d.port);
    let remote = gitvista::remote::Policy::from_allowed_hosts("127.0.0.1")
        .parse(&url)
        .expect("url");
    let id = remote.id();
    {
        let store = gitvista::store::Store::open(&pg.url(), 1).expect("store");
        store
            .upsert_repo(&id, &remote.canonical, &url)
            .expect("row");
        store
            .set_state(&id, "cloning", None, Some("Receiving objects: 40%"))
            .expect("state");
    }
    let half = data.join("tmp").join(format!("{id}-1-0"));
    std::fs::create_dir_all(half.join("objects")).expect("half");
    std::fs::write(half.join("HEAD"), "ref: refs/heads/main\n").expect("half");

    let (port, _stopper, _server) = crate::helpers::spawn_hosted(&data, Some(pg.url())).await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
    assert!(!half.exists(), "the half repository is gone");
    let (status, w) = get(&format!("{base}/api/repos/{id}/graph?limit=1")).await;
    assert_eq!(status, 200, "{w}");
}

#[actix_rt::test]
async fn a_clone_over_the_size_cap_ends_in_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        max_repo_bytes: 2000,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, created) = post(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    let id = created["id"].as_str().expect("id").to_string();
    let s = wait_state(&base, &id, &["ready", "error"]).await;
    assert_eq!(s["state"], "error");
    assert_eq!(s["errorCode"], "too_large", "{s}");
    assert!(
        s["error"].as_str().is_some_and(|e| e.contains("2000")),
        "{s}"
    );
    assert!(!data.join("repos").join(&id).exists());
    assert!(std::fs::read_dir(data.join("tmp")).map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn gitvista_migrate_prepares_the_database_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"))
            .args(["migrate", "--data-dir"])
            .arg(tmp.path().join("data"))
            .env_remove("DATABASE_URL")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Every migration of the set, once.
    let all = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/store/migrations/sqlite"
    ))
    .expect("migrations")
    .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
    .count();
    assert!(all >= 3);
    let first = run();
    assert!(
        first.contains(&format!("({all} migrations ran now)")),
        "{first}"
    );
    assert!(run().contains("(0 migrations ran now)"));
    assert!(tmp.path().join("data/gitvista.db").is_file());
}

#[actix_rt::test]
async fn the_socket_of_a_repository_still_cloning_streams_its_progress() {
    use futures_util::StreamExt;
    // A remote that accepts and never answers: the clone hangs until its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..4 {
            match silent.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(10));
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        clone_timeout: Duration::from_secs(2),
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, created) = post(&base, &format!("git://127.0.0.1:{silent_port}/slow")).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_string();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects while cloning");
    let mut states = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert_eq!(v["type"], "status", "{v}");
                states.push(v["state"].as_str().unwrap_or("").to_string());
            }
            tokio_tungstenite::tungstenite::Message::Close(frame) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            _ => {}
        }
    }
    assert!(
        states.iter().any(|s| s == "cloning" || s == "pending"),
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("error"),
        "{states:?}"
    );
}

#[actix_rt::test]
async fn cloning_over_smart_http_works_the_same() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = served_http(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, created) = post(
        &base,
        &format!("http://127.0.0.1:{}/linear.git", server.port),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let ready = wait_state(&base, &id, &["ready", "error"]).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    // A plain repository: every commit git lists is in the graph.
    let expected: u64 = git(
        &fixture("linear", tmp.path()).join("repo"),
        &["rev-list", "--all", "--count"],
    )
    .parse()
    .expect("count");
    assert_eq!(ready["commits"].as_u64(), Some(expected));
    let (_, w) = get(&format!("{base}/api/repos/{id}/graph?limit=1")).await;
    assert_eq!(w["total"].as_u64(), Some(expected));
}
