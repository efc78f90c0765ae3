//! Webhooks end to end: signed deliveries to the real server make it fetch at once (a push
//! reaches a viewer without any poll), and bad, replayed, bursty or unknown ones start nothing
//! more than they should. Remotes are real (`git daemon`, the fake GitHub's smart HTTP); the
//! fake GitHub registers hooks and prepares deliveries as GitHub sends them.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use gitvista::webhooks::WebhookSettings;
use gitvista::webhooks::verify::HookSecret;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, git, hosted_config, spawn_hosted_with};
use crate::hosted::{add_ready, admin_get, served};

/// The GitHub webhook secret of these tests.
pub(crate) const SECRET: &str = "webhook-secret-for-the-tests-0123";
/// The GitLab one.
const GITLAB_SECRET: &str = "gitlab-token-for-the-tests-456789";

fn settings() -> WebhookSettings {
    WebhookSettings {
        github: Some(HookSecret::new("GITHUB", SECRET).expect("secret")),
        gitlab: Some(HookSecret::new("GITLAB", GITLAB_SECRET).expect("secret")),
        bitbucket: None,
    }
}

/// A GitHub-style delivery: `event`, body, delivery id, and the signature header's value (or
/// none); answers the status and JSON.
pub(crate) async fn deliver(
    base: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let resp = r.send().await.expect("delivery");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", gitvista_testkit::github::sign(secret, body))
}

/// A signed GitHub delivery of `event` with `body`.
pub(crate) async fn github(base: &str, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    deliver(
        base,
        "/webhooks/github",
        &[
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
            ("X-Hub-Signature-256", signature(SECRET, &bytes)),
        ],
        &bytes,
    )
    .await
}

/// A push payload naming the repository at `url` as GitHub would (`clone_url`). Each is a
/// push of its own (its `after` differs), as GitHub's are: the same body twice is a replay.
pub(crate) fn push(url: &str) -> Value {
    static PUSHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = PUSHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": format!("{n:040x}"),
        "repository": {"full_name": "t/merges", "clone_url": url, "private": false},
    })
}

/// `/api/admin/actors`.
async fn actors(base: &str) -> Value {
    admin_get(&format!("{base}/api/admin/actors")).await.1
}

/// Fetches the server's queue ran so far, once nothing is queued or running.
async fn settled_fetches(base: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    // Settled: nothing queued or running in the shared job table nor in the clone queue, three
    // polls in a row (a job hands its fetch to the session, which queues it a moment later).
    let mut quiet = 0;
    loop {
        let a = actors(base).await;
        let jobs = &a["cluster"]["jobs"];
        let idle = a["cloneQueue"]["jobs"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && jobs["queued"].as_u64().unwrap_or(0) == 0
            && jobs["running"].as_u64().unwrap_or(0) == 0;
        quiet = if idle { quiet + 1 } else { 0 };
        if quiet >= 3 {
            return a["cloneQueue"]["fetches"].as_u64().expect("fetches");
        }
        assert!(Instant::now() < deadline, "the queue never settled: {a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Commits a file in `src` and answers the new head.
pub(crate) fn commit(src: &std::path::Path, name: &str) -> String {
    std::fs::write(src.join(name), name).expect("write");
    git(src, &["add", name]);
    git(src, &["commit", "-q", "-m", name]);
    git(src, &["rev-parse", "HEAD"])
}

/// A hosted server with the receivers of `webhooks` on, tracking the `merges` fixture that
/// `git daemon` serves; `config` adjusts the settings (polling is at an hour unless it says
/// otherwise, so only a delivery makes it fetch).
struct Hooked {
    base: String,
    port: u16,
    /// The remote's URL.
    url: String,
    /// The repository's id.
    id: String,
    /// The repository the daemon serves (commit here to push).
    source: std::path::PathBuf,
    /// The server's clone of it.
    clone: std::path::PathBuf,
    daemon: crate::helpers::GitDaemon,
    /// The gate of the proxy in front of the daemon that `url` names (open unless a test
    /// shuts it to hold fetches at the remote).
    gate: gitvista_testkit::Gate,
    _stopper: gitvista::startup::Stopper,
    _tmp: tempfile::TempDir,
}

async fn hooked(
    webhooks: WebhookSettings,
    config: impl FnOnce(gitvista::config::HostedConfig) -> gitvista::config::HostedConfig,
) -> Hooked {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, stopper, _server) = spawn_hosted_with(config(gitvista::config::HostedConfig {
        fetch_with_viewers: Duration::from_secs(3600),
        webhooks,
        ..hosted_config(&data)
    }))
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (proxy, gate) = gitvista_testkit::gated_proxy(d.port);
    let url = format!("git://127.0.0.1:{proxy}/merges");
    let id = add_ready(&base, &url).await;
    Hooked {
        base,
        port,
        url,
        clone: data.join("repos").join(&id),
        id,
        source: serve.join("merges"),
        daemon: d,
        gate,
        _stopper: stopper,
        _tmp: tmp,
    }
}

/// Waits for a delta on `ws` that adds `head`.
pub(crate) async fn delta_with(
    ws: &mut crate::signin::Socket,
    head: &str,
    within: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            other => return Err(format!("no delta with {head}: {other:?}")),
        };
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "delta"
                && v["added"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c == head))
            {
                return Ok(());
            }
        }
    }
}

#[actix_rt::test]
async fn a_signed_push_reaches_a_viewer_at_once_and_bad_or_replayed_deliveries_start_nothing() {
    let h = hooked(settings(), |c| c).await;
    let (base, port, url, id) = (&h.base, h.port, &h.url, &h.id);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    let fetched = settled_fetches(base).await;
    let head = commit(&h.source, "pushed.txt");
    let body = serde_json::to_vec(&push(url)).expect("json");

    // Bad signatures: 401 and nothing recorded or started.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let good = signature(SECRET, &body);
    let sha1 = "sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0".to_string();
    for (sig, sent) in [
        (Some(good.clone()), &tampered),
        (None, &body),
        (Some(sha1), &body),
        (Some("sha256=nothex".to_string()), &body),
        (Some(good.trim_start_matches("sha256=").to_string()), &body),
        (Some(signature("another-secret-entirely-000", &body)), &body),
    ] {
        let mut headers = vec![
            ("X-GitHub-Event", "push".to_string()),
            ("X-GitHub-Delivery", "bad-1".to_string()),
        ];
        if let Some(s) = sig.clone() {
            headers.push(("X-Hub-Signature-256", s));
        }
        let (status, answer) = deliver(base, "/webhooks/github", &headers, sent).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("bad_signature")),
            "{sig:?}: {answer}"
        );
    }
    // Signed, but not JSON: 400.
    let junk = b"{not json";
    let (status, answer) = deliver(
        base,
        "/webhooks/github",
        &[
            ("X-GitHub-Event", "push".to_string()),
            ("X-GitHub-Delivery", "junk-1".to_string()),
            ("X-Hub-Signature-256", signature(SECRET, junk)),
        ],
        junk,
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("bad_payload"))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(settled_fetches(base).await, fetched, "nothing was fetched");
    assert!(
        actors(base).await["webhooks"]["deliveries"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "nothing was recorded"
    );

    // The real thing: accepted at once, and the viewer gets the commit without any poll.
    let (status, answer) = github(base, "push", "delivery-1", &push(url)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("fetch")),
        "{answer}"
    );
    assert_eq!(answer["repo"], id.as_str());
    delta_with(&mut ws, &head, Duration::from_secs(10))
        .await
        .expect("the push reached the viewer");
    // GitHub redelivers it (or someone replays it): 200, nothing more happens.
    let (status, answer) = github(base, "push", "delivery-1", &push(url)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(settled_fetches(base).await, fetched + 1, "one fetch in all");

    // A repository nobody tracks: 202, nothing started. A ping: 200.
    let other = push(&format!("git://127.0.0.1:{}/elsewhere", h.daemon.port));
    let (status, answer) = github(base, "push", "delivery-2", &other).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("untracked"))
    );
    let (status, answer) = github(
        base,
        "ping",
        "delivery-3",
        &json!({"zen": "Keep it simple.", "hook_id": 1}),
    )
    .await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("ping")));
    let star = json!({"action": "created", "repository": push(url)["repository"].clone()});
    let (status, answer) = github(base, "star", "delivery-4", &star).await;
    assert_eq!((status, answer["outcome"].as_str()), (202, Some("ignored")));
    assert_eq!(settled_fetches(base).await, fetched + 1);

    // The admin page lists what came and what it did; the viewer's session shows its hook.
    let a = actors(base).await;
    let hooks = &a["webhooks"];
    assert!(hooks["lastDeliverySecsAgo"]["github"].is_i64(), "{hooks}");
    assert!(hooks["lastDeliverySecsAgo"]["gitlab"].is_null());
    assert_eq!(
        hooks["receivers"],
        json!({"github": true, "gitlab": true, "bitbucket": false, "generic": false})
    );
    let outcomes: Vec<(&str, &str)> = hooks["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["event"].as_str().unwrap_or(""),
                d["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for want in [
        ("push", "fetch"),
        ("push", "untracked"),
        ("ping", "ping"),
        ("star", "ignored"),
    ] {
        assert!(outcomes.contains(&want), "{want:?} in {outcomes:?}");
    }
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    let session = a["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id.as_str()))
        .expect("the session");
    assert!(session["hookSecsAgo"].is_u64(), "{session}");
    // And /metrics counts them, bad signatures apart.
    let metrics = crate::hosted::admin_metrics(base).await;
    for needle in [
        "gitvista_webhook_signature_failures_total{provider=\"github\",reason=\"mismatch\"}",
        "gitvista_webhook_signature_failures_total{provider=\"github\",reason=\"missing\"}",
        "gitvista_webhook_signature_failures_total{provider=\"github\",reason=\"malformed\"}",
        "gitvista_webhook_deliveries_total{provider=\"github\",event=\"push\",outcome=\"fetch\"}",
        "gitvista_webhook_deliveries_total{provider=\"github\",event=\"push\",outcome=\"duplicate\"}",
        "gitvista_webhook_deliveries_total{provider=\"github\",event=\"push\",outcome=\"malformed\"}",
    ] {
        assert!(metrics.contains(needle), "{needle}");
    }
}

#[actix_rt::test]
async fn fifty_pushes_in_a_burst_fetch_at_most_twice_with_or_without_a_session() {
    let h = hooked(settings(), |c| c).await;
    let (base, url, id) = (&h.base, &h.url, &h.id);
    for round in 0..2 {
        if round == 1 {
            // No session: the fetches run in the background, into the clone on disk.
            let status = reqwest::Client::new()
                .post(format!("{base}/api/admin/repos/{id}/evict"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("evict")
                .status();
            assert_eq!(status.as_u16(), 200);
        }
        let before = settled_fetches(base).await;
        let head = commit(&h.source, &format!("burst-{round}.txt"));
        // The remote answers nobody until every delivery is answered: the first fetch is held
        // at the remote for the whole burst, however fast or slow this machine is.
        h.gate.shut();
        let sends = (0..50).map(|i| {
            let (base, url) = (base.clone(), url.clone());
            // Fifty pushes: fifty bodies (a body seen before is a replay).
            let mut body = push(&url);
            body["after"] = json!(format!("{:040x}", round * 1000 + i + 1));
            async move { github(&base, "push", &format!("burst-{round}-{i}"), &body).await }
        });
        let answers = futures_util::future::join_all(sends).await;
        h.gate.open();
        for (status, answer) in &answers {
            assert_eq!(
                (*status, answer["outcome"].as_str()),
                (202, Some("fetch")),
                "{answer}"
            );
        }
        // Coalescing: one fetch runs (held at the remote) and the other 49 deliveries make one
        // more wait behind it.
        let ran = settled_fetches(base).await - before;
        assert!(
            (1..=2).contains(&ran),
            "round {round}: {ran} fetches for 50 deliveries"
        );
        assert_eq!(
            git(&h.clone, &["rev-parse", "refs/heads/main"]),
            head,
            "round {round}: the clone holds the push"
        );
    }
    let fetches = &actors(base).await["webhooks"]["fetches"];
    assert!(fetches["toSessions"].as_u64() >= Some(1), "{fetches}");
    assert!(fetches["background"].as_u64() >= Some(1), "{fetches}");
}

#[actix_rt::test]
async fn gitlab_tokens_are_checked_and_receivers_without_a_secret_do_not_exist() {
    let only_gitlab = WebhookSettings {
        github: None,
        gitlab: Some(HookSecret::new("GITLAB", GITLAB_SECRET).expect("secret")),
        bitbucket: None,
    };
    let h = hooked(only_gitlab, |c| c).await;
    let (base, url, id) = (&h.base, &h.url, &h.id);
    let before = settled_fetches(base).await;
    let head = commit(&h.source, "gitlab.txt");
    let body = serde_json::to_vec(&json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "project": {"git_http_url": url, "web_url": url, "path_with_namespace": "t/merges"},
    }))
    .expect("json");
    let send = |token: Option<&str>, uuid: &str| {
        let mut headers = vec![
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("X-Gitlab-Event-UUID", uuid.to_string()),
        ];
        if let Some(t) = token {
            headers.push(("X-Gitlab-Token", t.to_string()));
        }
        let (base, body) = (base.clone(), body.clone());
        async move { deliver(&base, "/webhooks/gitlab", &headers, &body).await }
    };
    for token in [None, Some("wrong"), Some(&GITLAB_SECRET[1..])] {
        let (status, answer) = send(token, "u-0").await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("bad_signature")),
            "{token:?}"
        );
    }
    let (status, answer) = send(Some(GITLAB_SECRET), "u-1").await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("fetch")),
        "{answer}"
    );
    let (status, answer) = send(Some(GITLAB_SECRET), "u-1").await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while git(&h.clone, &["rev-parse", "refs/heads/main"]) != head {
        assert!(Instant::now() < deadline, "the push was fetched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settled_fetches(base).await, before + 1);
    // No GitHub or Bitbucket secret, no sign-in: those receivers are routes that do not exist.
    for path in [
        "/webhooks/github",
        "/webhooks/bitbucket",
        &format!("/webhooks/generic/{id}"),
    ] {
        let bytes = serde_json::to_vec(&push(url)).expect("json");
        let (status, answer) = deliver(
            base,
            path,
            &[
                ("X-GitHub-Event", "push".to_string()),
                ("X-Hub-Signature-256", signature(SECRET, &bytes)),
            ],
            &bytes,
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    // A body over 25 MB is refused before it is read.
    let (status, answer) = deliver(
        base,
        "/webhooks/gitlab",
        &[
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("X-Gitlab-Token", GITLAB_SECRET.to_string()),
        ],
        &vec![b' '; (25 << 20) + 1],
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("payload_too_large"))
    );
}

#[actix_rt::test]
async fn a_hooked_repository_is_polled_only_as_a_safety_net_until_its_hook_goes_quiet() {
    let h = hooked(settings(), |c| gitvista::config::HostedConfig {
        fetch_with_viewers: Duration::from_millis(250),
        hooked_every: Duration::from_secs(3600),
        hook_window: Duration::from_secs(3),
        ..c
    })
    .await;
    let (base, port, url, id) = (&h.base, h.port, &h.url, &h.id);
    let (_ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    let fetches = || async {
        actors(base).await["cloneQueue"]["fetches"]
            .as_u64()
            .expect("n")
    };
    // Polled every 250 ms while watched.
    let a = fetches().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let polled = fetches().await - a;
    assert!(polled >= 3, "polled {polled} times in 1.5 s");
    // The hook answers a ping: from the next timer on, the safety net's interval (an hour).
    let ping =
        json!({"zen": "Design for failure.", "hook_id": 7, "repository": {"clone_url": url}});
    let (status, _) = github(base, "ping", "ping-1", &ping).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = fetches().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fetches().await - b, 0, "no polling while the hook is live");
    // Quiet for longer than the window: back to the adaptive poll within one interval.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = fetches().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let polled = fetches().await - c;
    assert!(polled >= 3, "polled again {polled} times in 1.5 s");
}

#[actix_rt::test]
async fn after_a_restart_recently_used_repositories_are_fetched_and_hooks_remembered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let config = || gitvista::config::HostedConfig {
        fetch_with_viewers: Duration::from_secs(3600),
        webhooks: settings(),
        ..hosted_config(&data)
    };
    let url = format!("git://127.0.0.1:{}/merges", d.port);
    let id = {
        let (port, stopper, server) = spawn_hosted_with(config()).await;
        let base = format!("http://127.0.0.1:{port}");
        let id = add_ready(&base, &url).await;
        let (status, _) = github(
            &base,
            "ping",
            "before-restart",
            &json!({"repository": {"clone_url": url}}),
        )
        .await;
        assert_eq!(status, 200);
        settled_fetches(&base).await;
        stopper.stop().await;
        let _ = server.await;
        id
    };
    // Pushed while the server was down: nobody will redeliver it.
    let head = commit(&serve.join("merges"), "while-down.txt");
    let (port, _stopper, _server) = spawn_hosted_with(config()).await;
    let base = format!("http://127.0.0.1:{port}");
    let clone = data.join("repos").join(&id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while git(&clone, &["rev-parse", "refs/heads/main"]) != head {
        assert!(
            Instant::now() < deadline,
            "fetched once on start, without a viewer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The hook's last delivery survived the restart (its session polls as a safety net only).
    let (status, _) = crate::hosted::get(&format!("{base}/api/repos/{id}/graph?limit=1")).await;
    assert_eq!(status, 200);
    let a = actors(&base).await;
    let session = a["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id.as_str()))
        .cloned()
        .expect("the session");
    assert!(session["hookSecsAgo"].is_u64(), "{session}");
    assert_eq!(
        a["webhooks"]["deliveries"][0]["outcome"], "ping",
        "{}",
        a["webhooks"]
    );
}

/// Sends what the fake GitHub prepared, as GitHub would; answers each status and body.
pub(crate) async fn send(deliveries: Vec<gitvista_testkit::github::Delivery>) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    for d in deliveries {
        let mut r = reqwest::Client::new().post(&d.url).body(d.body);
        for (k, v) in &d.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        let resp = r.send().await.expect("delivery");
        let status = resp.status().as_u16();
        out.push((status, resp.json().await.unwrap_or(Value::Null)));
    }
    out
}

/// The sign-in world (alice, bob, the fake GitHub) with the GitHub receiver on.
pub(crate) fn hooked_world(extra: &[(&str, &str)]) -> crate::signin::World {
    let mut env = vec![("GITVISTA_GITHUB_WEBHOOK_SECRET", SECRET)];
    env.extend_from_slice(extra);
    crate::signin::world(&env)
}

#[actix_rt::test]
async fn a_repository_made_private_closes_at_once_the_viewers_who_may_not_read_it() {
    use crate::signin::{socket, until_closed};
    let w = hooked_world(&[]);
    w.gh.set_app_hook(&format!("{}/webhooks/github", w.base), SECRET);
    let alice = w.sign_in("alice").await;
    let id = w.track(&alice, &w.repo_url("third")).await;
    // A visitor and alice watch it (access is rechecked only every 10 minutes on its own).
    let mut visitor = socket(&w, &id, "").await;
    let mut owner = socket(&w, &id, &alice).await;
    w.gh.set_private("alice/third", true);
    let answers =
        send(w.gh.deliveries("repository", "alice/third", json!({"action": "privatized"}))).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].0, answers[0].1["outcome"].as_str()),
        (202, Some("visibility"))
    );
    let (texts, code) = until_closed(&mut visitor, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1008), "the visitor is closed at once: {texts:?}");
    let (status, _) = w.get(&format!("/api/repos/{id}/repository"), None).await;
    assert_eq!(status, 404, "hidden from visitors");
    // Alice may still read it: her socket stays.
    let (texts, code) = until_closed(&mut owner, Duration::from_secs(2)).await;
    assert_eq!(code, None, "{texts:?}");
    let (status, _) = w
        .get(&format!("/api/repos/{id}/repository"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    // Made public again: visible to all.
    w.gh.set_private("alice/third", false);
    send(w.gh.deliveries("repository", "alice/third", json!({"action": "publicized"}))).await;
    // Shown once the forge confirms it (asked in the background).
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.get(&format!("/api/repos/{id}/repository"), None).await.0 != 200 {
        assert!(Instant::now() < deadline, "never shown again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_repository_removed_from_the_installation_closes_its_viewers_and_a_rename_is_followed() {
    use crate::signin::{socket, until_closed};
    let w = hooked_world(&[]);
    w.gh.set_app_hook(&format!("{}/webhooks/github", w.base), SECRET);
    let alice = w.sign_in("alice").await;
    let id = w.track(&alice, &w.repo_url("secret")).await;
    let mut s = socket(&w, &id, &alice).await;
    // The installation no longer shares the repository: her token cannot read it any more.
    w.gh.revoke("alice/secret", "alice");
    let answers = send(w.gh.deliveries(
        "installation_repositories",
        "alice/secret",
        json!({
            "action": "removed",
            "repositories_added": [],
            "repositories_removed": [{"full_name": "alice/secret", "private": true}],
        }),
    ))
    .await;
    assert_eq!(
        (answers[0].0, answers[0].1["outcome"].as_str()),
        (202, Some("access")),
        "{answers:?}"
    );
    let (texts, code) = until_closed(&mut s, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1008), "{texts:?}");
    assert_eq!(
        texts.last().map(|m| m["code"].clone()),
        Some(json!("access_lost")),
        "{texts:?}"
    );

    // A public repository renamed on GitHub keeps its id and is found under its new name.
    let open_id = w.track(&alice, &w.repo_url("open")).await;
    std::fs::rename(
        w.root.join("alice").join("open"),
        w.root.join("alice").join("renamed"),
    )
    .expect("rename on disk");
    w.gh.rename("alice/open", "alice/renamed");
    let answers = send(w.gh.deliveries(
        "repository",
        "alice/renamed",
        json!({"action": "renamed", "changes": {"repository": {"name": {"from": "open"}}}}),
    ))
    .await;
    assert_eq!(
        (answers[0].0, answers[0].1["outcome"].as_str()),
        (202, Some("moved")),
        "{answers:?}"
    );
    assert_eq!(answers[0].1["repo"], open_id.as_str());
    // The forge is asked before the new URL is followed (in the background).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, listed) = w
            .get(&format!("/api/repos?ids={open_id}"), Some(&alice))
            .await;
        if listed["repos"][0]["url"]
            .as_str()
            .is_some_and(|u| u.contains("/alice/renamed"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never followed: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, again) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("renamed")}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["id"],
        open_id.as_str(),
        "the new URL finds the same repository"
    );
    // And its clone fetches from the new place: a push there arrives.
    let src = w.root.join("alice").join("renamed");
    let head = commit(&src, "after-rename.txt");
    let answers =
        send(w.gh.deliveries("push", "alice/renamed", json!({"ref": "refs/heads/main"}))).await;
    assert_eq!(answers[0].1["outcome"], "fetch", "{answers:?}");
    let clone = w.data.join("repos").join(&open_id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while git(&clone, &["rev-parse", "refs/heads/main"]) != head {
        assert!(Instant::now() < deadline, "fetched from the new URL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn an_oauth_app_registers_a_hook_where_the_user_is_admin_and_removes_it_when_untracked() {
    let w = hooked_world(&[]);
    w.gh.set_oauth_app(true);
    w.gh.set_admins("alice/open", &["alice"]);
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    // bob tracks a repository he only reads: no hook, it is polled.
    let (status, created) = w
        .post("/api/repos", Some(&bob), json!({"url": w.repo_url("open")}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    w.wait_ready(&id, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        w.gh.hooks("alice/open").is_empty(),
        "bob may not administer it"
    );
    let (_, tracked) = w.get("/api/user/tracked", Some(&bob)).await;
    assert_eq!(
        tracked["repos"][0]["updates"]["mode"], "polled",
        "{tracked}"
    );
    assert_eq!(tracked["repos"][0]["updates"]["registered"], false);
    // alice administers it: tracking it registers a hook on it, once.
    for _ in 0..2 {
        let (status, _) = w
            .post(
                "/api/repos",
                Some(&alice),
                json!({"url": w.repo_url("open")}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.gh.hooks("alice/open").is_empty() {
        assert!(Instant::now() < deadline, "a hook was registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hooks = w.gh.hooks("alice/open");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(
        hooks[0].url,
        format!("{}/webhooks/github?repo={id}", w.base)
    );
    assert!(hooks[0].events.contains(&"push".to_string()));
    assert_ne!(hooks[0].secret, SECRET, "a secret of its own");
    assert!(!w.log_text().contains(&hooks[0].secret), "never logged");
    // Its deliveries are signed with that secret and accepted; signed with the app's secret
    // for this repository's URL they are not.
    let src = w.root.join("alice").join("open");
    let head = commit(&src, "hooked.txt");
    let answers =
        send(w.gh.deliveries("push", "alice/open", json!({"ref": "refs/heads/main"}))).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].0, answers[0].1["outcome"].as_str()),
        (202, Some("fetch")),
        "{answers:?}"
    );
    let clone = w.data.join("repos").join(&id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while git(&clone, &["rev-parse", "refs/heads/main"]) != head {
        assert!(Instant::now() < deadline, "fetched on the hook's word");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut forged = w.gh.deliveries("push", "alice/open", json!({}));
    let app_signed = signature(SECRET, &forged[0].body);
    for (k, v) in &mut forged[0].headers {
        if k == "X-Hub-Signature-256" {
            v.clone_from(&app_signed);
        }
    }
    assert_eq!(
        send(forged).await[0].0,
        401,
        "the app secret does not sign a repository's hook"
    );
    // The dashboard says it is live by webhook.
    let (_, tracked) = w.get("/api/user/tracked", Some(&alice)).await;
    let mine = &tracked["repos"][0]["updates"];
    assert_eq!(mine["mode"], "webhook", "{tracked}");
    assert_eq!(mine["registered"], true);
    // bob stops tracking: alice still does, the hook stays. Then alice stops: it goes.
    let untrack = |cookie: String| {
        let url = format!("{}/api/repos/{id}", w.base);
        let origin = w.base.clone();
        async move {
            reqwest::Client::new()
                .delete(url)
                .header("Cookie", cookie)
                .header("Origin", origin)
                .send()
                .await
                .expect("delete")
                .status()
                .as_u16()
        }
    };
    assert_eq!(untrack(bob.clone()).await, 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.gh.hooks("alice/open").len(), 1);
    assert_eq!(untrack(alice.clone()).await, 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !w.gh.hooks("alice/open").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the hook was removed; the server said:\n{}",
            {
                let log = w.log_text();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("hook") || l.contains("DELETE") || l.contains("WARN"))
                    .collect();
                format!(
                    "{} lines; {}",
                    log.lines().count(),
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice tracks the repository at `url` (a pasted URL, so it takes generic hooks) and waits for
/// it: its id, and the generic hook's `url` and `secret` as her tracked list shows them.
pub(crate) async fn tracked_with_generic_hook(
    w: &crate::signin::World,
    alice: &str,
    url: &str,
) -> (String, Value) {
    let (status, created) = w.post("/api/repos", Some(alice), json!({"url": url})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    w.wait_ready(&id, None).await;
    let (_, tracked) = w.get("/api/user/tracked", Some(alice)).await;
    (id, tracked["repos"][0]["updates"]["generic"].clone())
}

#[actix_rt::test]
async fn a_generic_hook_accepts_either_signature_style_with_its_own_secret() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    // Sign-in on (generic hooks' secrets are shown to trackers); the remote is a git daemon.
    let w = hooked_world(&[]);
    let alice = w.sign_in("alice").await;
    let url = format!("git://127.0.0.1:{}/merges", d.port);
    let (id, generic) = tracked_with_generic_hook(&w, &alice, &url).await;
    assert_eq!(
        generic["url"],
        format!("{}/webhooks/generic/{id}", w.base),
        "{generic}"
    );
    let secret = generic["secret"].as_str().expect("a secret").to_string();
    let src = serve.join("merges");
    let clone = w.data.join("repos").join(&id);
    for (round, style) in ["X-Hub-Signature-256", "X-Gitea-Signature"]
        .into_iter()
        .enumerate()
    {
        let head = commit(&src, &format!("generic-{round}.txt"));
        let body =
            serde_json::to_vec(&json!({"ref": "refs/heads/main", "after": head})).expect("json");
        let sig = gitvista_testkit::github::sign(&secret, &body);
        let value = if style == "X-Gitea-Signature" {
            sig.clone()
        } else {
            format!("sha256={sig}")
        };
        let path = format!("/webhooks/generic/{id}");
        // The wrong secret, another repository's id, no signature: 401.
        let wrong = gitvista_testkit::github::sign("not-the-secret-of-this-hook", &body);
        let (status, _) = deliver(&w.base, &path, &[(style, wrong)], &body).await;
        assert_eq!(status, 401, "{style}");
        let (status, _) = deliver(
            &w.base,
            "/webhooks/generic/0123456789abcdef",
            &[(style, value.clone())],
            &body,
        )
        .await;
        assert_eq!(status, 401, "{style}: the secret is per repository");
        let (status, _) = deliver(&w.base, &path, &[], &body).await;
        assert_eq!(status, 401);
        let (status, answer) = deliver(&w.base, &path, &[(style, value.clone())], &body).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (202, Some("fetch")),
            "{style}: {answer}"
        );
        // The same body again is the same delivery.
        let (status, answer) = deliver(&w.base, &path, &[(style, value)], &body).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (200, Some("duplicate"))
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while git(&clone, &["rev-parse", "refs/heads/main"]) != head {
            assert!(Instant::now() < deadline, "{style}: fetched");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The secret never reached the log.
    assert!(!w.log_text().contains(&secret));
}
