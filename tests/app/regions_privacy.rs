//! A private repository owned in one region, asked for through every region's edge by those
//! who may not read it (a visitor, another user): on every repository route of the route table
//! ([`gitvista::routes::repository_routes`]) the answer, and what Fly's proxy did with the
//! request (the machine it went to, whether it was replayed and where), are what an unknown id
//! gets. A refusal comes before any replay, so nobody learns that the repository exists or in
//! which region it lives; its reader's reads are replayed to that region and answered.

use std::time::{Duration, Instant};

use gitvista_testkit::fly::{Delivery, FlyProxy};
use serde_json::json;

use crate::privacy::ReaderArgs;
use crate::regions::{machine, node_with};
use crate::signin::{KEY, github_world, sign_in_with};
use crate::store::PgDb;

/// An id nobody tracks.
const UNKNOWN: &str = "0123456789abcdef";

/// What a caller can tell two requests apart by: the answer (ids written as [`UNKNOWN`]) and
/// where the proxy took the request.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    body: String,
    first: String,
    replayed_to: Option<String>,
}

/// A client of this test's own address: Fly's proxy names the client by it, and limits are
/// per client and shared through Redis with the other cluster tests.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 43]))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The proxy's delivery of `method` `path` that ended after the first `before` deliveries
/// (the proxy writes it down as the answer ends, which may be a moment after the client read it).
async fn delivered(proxy: &FlyProxy, before: usize, method: &str, path: &str) -> Delivery {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(d) = proxy
            .deliveries()
            .into_iter()
            .skip(before)
            .find(|d| d.method == method && d.path == path)
        {
            return d;
        }
        assert!(Instant::now() < deadline, "no delivery of {method} {path}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `method path` through `edge` with `cookie` (a WebSocket handshake for a `/ws` path);
/// answers what the caller saw, with `id` written as [`UNKNOWN`].
async fn ask(
    proxy: &FlyProxy,
    edge: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    id: &str,
) -> Seen {
    let before = proxy.deliveries().len();
    let method_ = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = client()
        .request(method_, format!("{edge}{path}"))
        .header("Origin", edge);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    if path.ends_with("/ws") {
        req = req
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    } else if method != "GET" {
        req = req.json(&json!({}));
    }
    let resp = req.send().await.expect("an answer");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = resp.text().await.unwrap_or_default();
    let d = delivered(proxy, before, method, path).await;
    Seen {
        status,
        content_type,
        body: body.replace(id, UNKNOWN),
        first: d.first,
        replayed_to: d.replayed_to,
    }
}

#[actix_rt::test]
async fn a_private_repository_owned_in_another_region_is_an_unknown_id_before_any_replay() {
    let mut w = github_world();
    let pg = PgDb::create("regions_privacy");
    let db = pg.url();
    gitvista::store::Store::open(&db, 1).expect("migrates");
    let tmp = tempfile::tempdir().expect("tempdir");
    // The proxy first: its `ams` edge is the address users sign in at.
    let proxy = FlyProxy::start(Vec::new(), &["ams", "iad"]);
    let (ams, iad) = (proxy.url("ams"), proxy.url("iad"));
    let start = |role: &str, region: &str, name: &str| {
        node_with(role, region, name, &db, tmp.path(), |c| {
            sign_in_with(c, &w.gh, &ams, KEY);
        })
    };
    let worker = start("worker", "ams", "worker-ams");
    let webs = [
        start("web", "ams", "web-ams"),
        start("web", "iad", "web-iad"),
    ];
    proxy.add(machine(&webs[0], "web-ams", "ams"));
    proxy.add(machine(&webs[1], "web-iad", "iad"));
    let store = gitvista::store::Store::open(&db, 2).expect("store");
    crate::nodes::until("3 nodes registered", Duration::from_secs(20), async || {
        (store.live_nodes(15_000).expect("nodes").len() == 3).then_some(())
    })
    .await;

    // Alice signs in through ams (the callback replayed to iad, the primary region) and adds
    // her private repository there: it is placed in ams.
    w.base = ams.clone();
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    let resp = client()
        .post(format!("{ams}/api/repos"))
        .header("Origin", &ams)
        .header("Cookie", &alice)
        .json(&json!({ "url": w.repo_url("secret") }))
        .send()
        .await
        .expect("paste");
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let ready = w.wait_ready(&id, Some(&alice)).await;
    assert_eq!(ready["state"], "ready", "{}", worker.tail());
    assert_eq!(
        store.repo_region(&id).expect("region").as_deref(),
        Some("ams")
    );

    let args = ReaderArgs::of(&w.root.join("alice/secret"));
    let fill = |pattern: &str, id: &str| args.fill(&pattern.replace("{id}", id));

    let routes = gitvista::routes::repository_routes();
    assert!(routes.len() >= 14, "the route table: {routes:?}");
    let mut checked = 0;
    for (method, pattern) in &routes {
        for edge in [&ams, &iad] {
            for (who, cookie) in [("a visitor", None), ("bob", Some(bob.as_str()))] {
                let theirs = ask(&proxy, edge, method, &fill(pattern, &id), cookie, &id).await;
                let unknown = ask(
                    &proxy,
                    edge,
                    method,
                    &fill(pattern, UNKNOWN),
                    cookie,
                    UNKNOWN,
                )
                .await;
                assert_eq!(
                    theirs, unknown,
                    "{method} {pattern} through {edge} by {who}: the private repository's \
                     answer or route differs from an unknown id's"
                );
                assert!(
                    matches!(theirs.status, 401 | 403 | 404 | 405),
                    "{method} {pattern} through {edge} by {who}: {theirs:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, routes.len() * 4);

    // Alice reads it through either edge: through iad the read is replayed to ams, where it
    // lives, and answered the same.
    let graph = fill("/api/repos/{id}/graph", &id);
    let here = ask(&proxy, &ams, "GET", &graph, Some(&alice), &id).await;
    let there = ask(&proxy, &iad, "GET", &graph, Some(&alice), &id).await;
    assert_eq!(here.status, 200, "{here:?}");
    assert_eq!(
        (here.first.as_str(), here.replayed_to.as_deref()),
        ("web-ams", None)
    );
    assert_eq!(
        (there.first.as_str(), there.replayed_to.as_deref()),
        ("web-iad", Some("web-ams"))
    );
    assert_eq!(here.body, there.body);
    drop(webs);
    drop(worker);
    drop(pg);
}
