//! The admin API: off without a token, 401 without it, working with it (bearer or cookie);
//! sessions are random server-side rows that end at logout, and wrong bearer tokens count as
//! guesses.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, fixture, spawn_app};

#[actix_rt::test]
async fn admin_api_needs_the_token_and_describes_sessions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let port = spawn_app(&repo).await; // the helper configures ADMIN_TOKEN
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    // Load the session and connect a viewer.
    reqwest::get(format!("{base}/api/repos/local/repository"))
        .await
        .expect("repository");
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/local/ws"))
            .await
            .expect("ws");
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;

    for (auth, status) in [
        (None, 401),
        (Some("Bearer wrong"), 401),
        (Some("Basic test-admin-token-0123456789abcdef"), 401),
        (Some("Bearer test-admin-token-0123456789abcdef"), 200),
    ] {
        let mut req = client.get(format!("{base}/api/admin/sessions"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), status, "{auth:?}");
        let body: Value = resp.json().await.expect("json");
        if status == 200 {
            let s = &body["sessions"][0];
            assert_eq!(s["id"], "local");
            assert_eq!(s["loaded"], true);
            assert_eq!(s["commits"], 30);
            assert_eq!(s["viewers"], 1);
            assert!(s["heapBytes"].as_u64().is_some_and(|b| b > 0));
        } else {
            assert_eq!(body["code"], "unauthorized");
        }
    }

    // The page is served (it signs in by itself).
    let page = reqwest::get(format!("{base}/admin")).await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("/static/admin.js")
    );

    // The login form sets an HttpOnly cookie that works instead of the header.
    let bad = client
        .post(format!("{base}/api/admin/login"))
        .json(&json!({"token": "nope"}))
        .send()
        .await
        .expect("login");
    assert_eq!(bad.status().as_u16(), 401);
    let ok = client
        .post(format!("{base}/api/admin/login"))
        .json(&json!({"token": "test-admin-token-0123456789abcdef"}))
        .send()
        .await
        .expect("login");
    assert_eq!(ok.status().as_u16(), 204);
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("test-admin-token-0123456789abcdef"),
        "the cookie never carries the token"
    );
    let pair = cookie.split(';').next().expect("pair").to_string();
    let resp = client
        .get(format!("{base}/api/admin/sessions"))
        .header("Cookie", &pair)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);

    // Evicting stops the session; the next request loads it again.
    let resp = client
        .post(format!("{base}/api/admin/repos/local/evict"))
        .header("Cookie", &pair)
        .send()
        .await
        .expect("evict");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = client
        .get(format!("{base}/api/admin/sessions"))
        .header("Cookie", &pair)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["sessions"], json!([]));
    let (status, _) = (
        reqwest::get(format!("{base}/api/repos/local/repository"))
            .await
            .expect("repository")
            .status()
            .as_u16(),
        (),
    );
    assert_eq!(status, 200, "loaded again on demand");
}

#[actix_rt::test]
async fn admin_api_is_off_without_a_configured_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (mut child, base) = crate::helpers::spawn_binary(&repo);
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/admin/sessions"))
        .header("Authorization", "Bearer anything")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 404);
    let page = reqwest::get(format!("{base}/admin")).await.expect("page");
    assert_eq!(page.status().as_u16(), 404, "the page is off too");
    // Signing in and out are off too: a feature without its secret is not half on.
    for path in ["/api/admin/login", "/api/admin/logout"] {
        let resp = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .json(&json!({ "token": "anything" }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[actix_rt::test]
async fn the_actor_tree_shows_sessions_with_their_remote_the_clone_queue_and_the_last_sweep() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    std::fs::rename(
        fixture("merges", tmp.path()).join("repo"),
        serve.join("merges"),
    )
    .expect("move");
    let daemon = crate::helpers::git_daemon(&serve);
    let data = tmp.path().join("data");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            evict_interval: Duration::from_millis(200),
            webhooks: gitvista::webhooks::WebhookSettings {
                github: Some(
                    gitvista::webhooks::verify::HookSecret::new("GITHUB", crate::webhooks::SECRET)
                        .expect("secret"),
                ),
                ..Default::default()
            },
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let url = format!("git://127.0.0.1:{}/merges", daemon.port);
    let created: Value = client
        .post(format!("{base}/api/repos"))
        .json(&json!({ "url": url }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    // An admin route's JSON, with the token.
    let admin_json = |client: reqwest::Client, base: String, route: &'static str| async move {
        let resp = client
            .get(format!("{base}/api/admin/{route}"))
            .bearer_auth("test-admin-token-0123456789abcdef")
            .send()
            .await
            .expect(route);
        assert_eq!(resp.status().as_u16(), 200, "{route}");
        resp.json::<Value>().await.expect("json")
    };
    let tree = |client: reqwest::Client, base: String| admin_json(client, base, "actors");
    // Until the clone is served, its commit-graph written and a sweep has run since the session
    // started (a session that loads fast can be served before any sweep has seen it).
    let mut t = Value::Null;
    for _ in 0..100 {
        t = tree(client.clone(), base.clone()).await;
        let served = t["sessions"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["id"] == id.as_str() && s["loaded"] == true)
        });
        let idle = t["cloneQueue"]["jobs"] == json!([]) && t["cloneQueue"]["started"] == 3;
        let swept = t["eviction"]["sweeps"].as_u64() >= Some(1)
            && t["eviction"]["lastActive"].as_u64() >= Some(1);
        if served && idle && swept {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(t["mode"], "hosted", "{t:#}");
    let s = t["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("the session in {t:#}"));
    assert_eq!(s["url"], url.as_str());
    assert_eq!(s["state"], "ready");
    assert!(s["diskBytes"].as_i64() > Some(0), "{s}");
    assert_eq!(t["supervisor"]["sessions"], 1);
    // The commits-only clone the remote refused (it does not filter), the clone and its
    // commit-graph were the queue's git processes; nothing runs now.
    assert_eq!(t["cloneQueue"]["started"], 3, "{t:#}");
    assert_eq!(t["cloneQueue"]["jobs"], json!([]));
    assert_eq!(t["cloneQueue"]["concurrency"], 2);
    let ev = &t["eviction"];
    assert!(ev["lastSweepSecsAgo"].is_u64(), "{ev}");
    assert_eq!(ev["intervalSecs"], 0, "200 ms rounds down");
    assert_eq!(ev["lastActive"], 1, "the session was in use: {ev}");
    assert!(ev["clonesDeleted"].is_array());
    // With a token configured, /metrics needs it too.
    let refused = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics");
    assert_eq!(refused.status().as_u16(), 401);
    let metrics = crate::hosted::admin_metrics(&base).await;
    for line in [
        "gitvista_repos{state=\"ready\"} 1",
        "gitvista_repos{state=\"error\"} 0",
        "gitvista_sessions_by_state{state=\"ready\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // A fetch through the admin API shows up as the last fetch, and the next is scheduled.
    let resp = client
        .post(format!("{base}/api/admin/repos/{id}/fetch"))
        .bearer_auth("test-admin-token-0123456789abcdef")
        .send()
        .await
        .expect("fetch");
    assert_eq!(resp.status().as_u16(), 202);
    for _ in 0..100 {
        t = tree(client.clone(), base.clone()).await;
        if t["sessions"][0]["lastFetchSecsAgo"].is_u64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = &t["sessions"][0];
    assert!(s["lastFetchSecsAgo"].is_u64(), "{s}");
    assert!(s["lastFetchError"].is_null(), "{s}");
    assert!(s["nextFetchInSecs"].is_u64(), "{s}");
    assert_eq!(
        t["cloneQueue"]["started"], 4,
        "the refused commits-only clone, the clone, commit-graph, fetch: {t:#}"
    );
    // The node registered itself and beats.
    let cluster = &t["cluster"];
    let me = cluster["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["self"] == true))
        .unwrap_or_else(|| panic!("this node is listed: {cluster}"));
    assert_eq!(me["id"], cluster["node"]);
    assert_eq!(me["role"], "all");
    assert!(
        me["heartbeatAgeMs"].as_i64().is_some_and(|a| a < 15_000),
        "{me}"
    );

    // Without the token: refused.
    let resp = client
        .get(format!("{base}/api/admin/actors"))
        .send()
        .await
        .expect("actors");
    assert_eq!(resp.status().as_u16(), 401);

    // The status answer: one delivery in the last hour, the clone's bytes on this node's disk,
    // the finished jobs, nothing waiting.
    let (delivered, body) = crate::webhooks::github(
        &base,
        "push",
        "status-delivery-1",
        &crate::webhooks::push(&url),
    )
    .await;
    assert_eq!(delivered, 202, "{body}");
    let status_of = |client: reqwest::Client, base: String| admin_json(client, base, "status");
    // The delivery queued a fetch: until it ran.
    let mut st = Value::Null;
    for _ in 0..100 {
        st = status_of(client.clone(), base.clone()).await;
        if st["jobs"]["byState"]["queued"].is_null() && st["jobs"]["byState"]["running"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(st["mode"], "hosted", "{st:#}");
    assert_eq!(st["repositories"], json!({"ready": 1}), "{st:#}");
    let disk_bytes = s["diskBytes"].as_i64().expect("the row's bytes");
    let me = &st["thisNode"];
    assert_eq!(me["id"], cluster["node"]);
    assert_eq!(
        (me["sessions"].as_u64(), me["role"].as_str()),
        (Some(1), Some("all"))
    );
    assert!(
        me["disk"]["cloneBytes"].as_i64() >= Some(disk_bytes),
        "{me}"
    );
    assert!(me["disk"]["freeBytes"].as_u64() > Some(0), "{me}");
    assert_eq!(me["disk"]["minFreeBytes"], 512u64 << 20);
    let nodes = st["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{st:#}");
    assert_eq!(nodes[0]["self"], true);
    assert_eq!(nodes[0]["cloneBytes"], me["disk"]["cloneBytes"]);
    assert_eq!(st["webhooks"]["deliveries"], 1, "{st:#}");
    assert_eq!(st["webhooks"]["byProvider"], json!({"github": 1}), "{st:#}");
    assert_eq!(
        st["jobs"]["byState"],
        json!({"done": 2}),
        "the clone and the hook's fetch: {st:#}"
    );
    assert_eq!(st["jobs"]["oldestWaiting"], Value::Null, "{st:#}");
    let resp = client
        .get(format!("{base}/api/admin/status"))
        .send()
        .await
        .expect("status");
    assert_eq!(resp.status().as_u16(), 401);
}

#[actix_rt::test]
async fn admin_sessions_are_random_rows_that_end_at_logout_and_wrong_bearer_tokens_are_limited() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _stopper, _server) = crate::helpers::spawn_hosted(tmp.path(), None).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let login = || async {
        let resp = client
            .post(format!("{base}/api/admin/login"))
            .json(&json!({ "token": ADMIN_TOKEN }))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status().as_u16(), 204);
        resp.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_string()
    };
    let status_with = |cookie: String| {
        let client = client.clone();
        let url = format!("{base}/api/admin/repos");
        async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    let (a, b) = (login().await, login().await);
    assert_ne!(a, b, "each sign-in is a session of its own");
    // The old cookie was the token's hash: it opens nothing now.
    let digest: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(format!("gitvista-admin:{ADMIN_TOKEN}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(status_with(format!("gitvista_admin={digest}")).await, 401);
    assert_eq!(status_with(a.clone()).await, 200);
    assert_eq!(status_with(b.clone()).await, 200);
    // The store holds the sessions' hashes, never the cookies.
    let value = |pair: &str| pair.split_once('=').expect("pair").1.to_string();
    for file in ["gitvista.db", "gitvista.db-wal"] {
        let bytes = std::fs::read(tmp.path().join(file)).unwrap_or_default();
        for v in [value(&a), value(&b)] {
            assert!(
                !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                "{file} holds a session cookie"
            );
        }
    }
    // Signing out ends that session on the server: the copied cookie stops working.
    let resp = client
        .post(format!("{base}/api/admin/logout"))
        .header("Cookie", &a)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(status_with(a).await, 401, "signed out");
    assert_eq!(status_with(b).await, 200, "the other session stays");

    // Wrong bearer tokens are guesses like wrong logins: five, then 429 even for the right one
    // (on a server of its own, whose budget the logins above did not spend).
    let other = tempfile::tempdir().expect("tempdir");
    let (port, _stopper, _server) = crate::helpers::spawn_hosted(other.path(), None).await;
    let base = format!("http://127.0.0.1:{port}");
    let bearer = |token: &'static str| {
        client
            .get(format!("{base}/api/admin/repos"))
            .bearer_auth(token)
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            bearer("a-wrong-guess")
                .await
                .expect("guess")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401; 5]);
    let limited = bearer(ADMIN_TOKEN).await.expect("right");
    assert_eq!(limited.status().as_u16(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let resp = client
        .post(format!("{base}/api/admin/login"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 429, "the login shares the limit");
}

#[test]
fn the_status_counts_read_the_oldest_due_job_the_last_hour_s_deliveries_and_bytes_per_node() {
    crate::store::both("status_counts", |open| {
        let store = open();
        let backend = store.backend();
        for (id, url) in [
            ("00000000000000a1", "a"),
            ("00000000000000b2", "b"),
            ("00000000000000c3", "c"),
        ] {
            store
                .upsert_repo(id, &format!("https://example.com/o/{url}"), url)
                .expect("repo");
        }
        // Nothing waits; then a clone, and a fetch due a little later.
        let now = gitvista::store::jobs::now_ms();
        assert_eq!(
            store.oldest_waiting_job(now).expect("oldest"),
            None,
            "{backend}"
        );
        store
            .enqueue_job("00000000000000a1", "clone", 1, None)
            .expect("clone");
        std::thread::sleep(std::time::Duration::from_millis(5));
        store
            .enqueue_job("00000000000000b2", "fetch", 1, None)
            .expect("fetch");
        let later = gitvista::store::jobs::now_ms() + 1;
        let oldest = store
            .oldest_waiting_job(later)
            .expect("oldest")
            .expect("a job waits");
        assert_eq!(oldest.kind, "clone", "{backend}");
        assert!(
            oldest.due_ms >= now && oldest.due_ms < later,
            "{backend}: {oldest:?}"
        );
        // As of before either was due, none waits.
        assert_eq!(
            store.oldest_waiting_job(now - 1_000).expect("oldest"),
            None,
            "{backend}"
        );

        // Deliveries: two in the last hour, one older.
        let t = gitvista::store::now();
        for (n, (provider, outcome, at)) in [
            ("github", "fetch", t - 10),
            ("github", "ignored", t - 20),
            ("gitlab", "fetch", t - 7_200),
        ]
        .into_iter()
        .enumerate()
        {
            let d = gitvista::store::webhooks::Delivery {
                provider: provider.into(),
                delivery_id: format!("d{n}"),
                event: "push".into(),
                repo_id: None,
                outcome: outcome.into(),
                received_at: at,
            };
            assert!(
                store
                    .record_delivery(&d, &format!("digest{n}"))
                    .expect("record")
            );
        }
        assert_eq!(
            store.deliveries_since(t - 3_600).expect("since"),
            vec![
                ("github".to_string(), "fetch".to_string(), 1),
                ("github".to_string(), "ignored".to_string(), 1)
            ],
            "{backend}"
        );

        // Bytes per node: node-1 owns a (ready, 300) and b (fetching, 200); c is owned by
        // node-2 but failed, so its clone is not counted.
        assert_eq!(store.adopt_unowned("node-1").expect("adopt"), 3);
        store
            .set_fetched("00000000000000a1", Some(1), 300)
            .expect("a");
        store
            .set_state("00000000000000a1", "ready", None, None)
            .expect("a");
        store
            .set_fetched("00000000000000b2", Some(1), 200)
            .expect("b");
        store
            .set_state("00000000000000b2", "fetching", None, None)
            .expect("b");
        store
            .set_fetched("00000000000000c3", Some(1), 900)
            .expect("c");
        store
            .set_state("00000000000000c3", "error", Some("gone"), None)
            .expect("c");
        assert_eq!(
            store.clone_bytes_by_owner().expect("bytes"),
            vec![("node-1".to_string(), 500)],
            "{backend}"
        );
    });
}

#[actix_rt::test]
async fn every_admin_route_refuses_without_the_token_and_is_off_without_one() {
    let routes = gitvista::routes::admin_routes();
    assert!(
        routes.contains(&("GET", "/api/admin/status")),
        "the route table: {routes:?}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let on = format!("http://127.0.0.1:{}", spawn_app(&repo).await);
    let (mut off_child, off) = crate::helpers::spawn_binary(&repo);
    let client = reqwest::Client::new();
    for (method, pattern) in &routes {
        let path = pattern.replace("{id}", "0123456789abcdef");
        let send = |base: &str, auth: Option<&str>| {
            let mut req = client
                .request(method.parse().expect("method"), format!("{base}{path}"))
                .header("Sec-Fetch-Site", "same-origin");
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send()
        };
        // Off without a configured token: every route, signing in included.
        let status = send(&off, Some("Bearer anything"))
            .await
            .expect("off")
            .status();
        assert_eq!(
            status.as_u16(),
            404,
            "{method} {pattern} with the admin API off"
        );
        if pattern.ends_with("/login") || pattern.ends_with("/logout") {
            continue;
        }
        let status = send(&on, None).await.expect("on").status();
        assert_eq!(status.as_u16(), 401, "{method} {pattern} without the token");
        // A wrong token is a guess: refused, and past five from this client, limited.
        let status = send(&on, Some("Bearer wrong-token"))
            .await
            .expect("on")
            .status();
        assert!(
            matches!(status.as_u16(), 401 | 429),
            "{method} {pattern} with a wrong token: {status}"
        );
    }
    let _ = off_child.kill();
    let _ = off_child.wait();
}
