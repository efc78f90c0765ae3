//! Two regions behind a fake of Fly's proxy (testkit's `fly`), as real processes on loopback
//! sharing this machine's PostgreSQL and Redis: `ams` and `iad` each with a web node and a
//! worker, `lhr` with a web node only, `iad` the primary region. Repositories are placed in the
//! region they are first asked from (the nearest with a worker for `lhr`), reads and WebSockets
//! of a repository owned elsewhere are replayed to its region, writes to the primary, never
//! twice, and viewers in both regions see every push.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::git;
use crate::hosted::{get, served};
use crate::nodes::{Node, next_of, text, until};
use crate::store::PgDb;
use crate::webhooks::{commit, deliver, delta_with, github, push};
use gitvista_testkit::fly::{Delivery, FlyProxy, Machine};

/// A node of region `region` named `name` (its Fly machine id), with replays on and `iad` the
/// primary region.
fn node(role: &str, region: &str, name: &str, db: &str, dir: &std::path::Path) -> Node {
    node_with(role, region, name, db, dir, |_| {})
}

/// [`node`], `adjust` setting more of its environment.
pub(crate) fn node_with(
    role: &str,
    region: &str,
    name: &str,
    db: &str,
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut std::process::Command),
) -> Node {
    Node::start_with(role, db, dir, name, |c| {
        c.env("GITVISTA_REGION", region)
            .env("FLY_MACHINE_ID", name)
            .env("GITVISTA_FLY_REPLAY", "1")
            .env("GITVISTA_PRIMARY_REGION", "iad")
            // Fly's proxy names the client.
            .env("GITVISTA_TRUSTED_PROXY", "Fly-Client-IP");
        adjust(c);
    })
}

/// The machine `node` is, for the proxy.
pub(crate) fn machine(node: &Node, name: &str, region: &str) -> Machine {
    Machine {
        id: name.into(),
        region: region.into(),
        addr: node
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("an address"),
    }
}

/// Pastes `url` through `edge`; answers the new repository's id. From an address of this
/// test's own (Fly's proxy names the client by its address): limits on new repositories are
/// per client and shared through Redis with the other cluster tests.
async fn paste(edge: &str, url: &str) -> String {
    paste_with(edge, url, &[]).await
}

/// [`paste`] with `headers`.
async fn paste_with(edge: &str, url: &str, headers: &[(&str, &str)]) -> String {
    let mut req = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 42]))
        .build()
        .expect("client")
        .post(format!("{edge}/api/repos"))
        .json(&serde_json::json!({ "url": url }));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("paste");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_string()
}

/// The proxy's last delivery of `method` `path`.
pub(crate) fn last(proxy: &FlyProxy, method: &str, path: &str) -> Delivery {
    proxy
        .deliveries()
        .into_iter()
        .rev()
        .find(|d| d.method == method && d.path == path)
        .unwrap_or_else(|| panic!("no delivery of {method} {path}"))
}

#[actix_rt::test]
async fn two_regions_behind_fly_s_proxy_place_replay_and_serve_viewers_in_both() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pg = PgDb::create("regions");
    let db = pg.url();
    gitvista::store::Store::open(&db, 1).expect("migrates");
    let (serve, daemon) = served(tmp.path());
    for name in ["second", "third", "fourth", "fifth"] {
        let out = std::process::Command::new("cp")
            .arg("-r")
            .arg(serve.join("merges"))
            .arg(serve.join(name))
            .output()
            .expect("cp");
        assert!(out.status.success(), "{out:?}");
    }
    let url = |name: &str| format!("git://127.0.0.1:{}/{name}", daemon.port);

    let workers = [
        node("worker", "ams", "worker-ams", &db, tmp.path()),
        node("worker", "iad", "worker-iad", &db, tmp.path()),
    ];
    let webs = [
        node("web", "ams", "web-ams", &db, tmp.path()),
        node("web", "iad", "web-iad", &db, tmp.path()),
        node("web", "lhr", "web-lhr", &db, tmp.path()),
    ];
    let store = gitvista::store::Store::open(&db, 2).expect("store");
    until("5 nodes registered", Duration::from_secs(20), async || {
        (store.live_nodes(15_000).expect("nodes").len() == 5).then_some(())
    })
    .await;
    let nodes = store.live_nodes(15_000).expect("nodes");
    for n in &nodes {
        let region = n.place.region.as_deref().expect("a region");
        let machine = n.place.machine_id.as_deref().expect("a machine");
        assert!(machine.ends_with(region), "{n:?}");
    }
    let proxy = FlyProxy::start(
        vec![
            machine(&webs[0], "web-ams", "ams"),
            machine(&webs[1], "web-iad", "iad"),
            machine(&webs[2], "web-lhr", "lhr"),
        ],
        &["ams", "iad", "lhr"],
    );
    let (ams, iad, lhr) = (proxy.url("ams"), proxy.url("iad"), proxy.url("lhr"));
    let owner_of = |id: &str| {
        let owner = store.repo(id).expect("repo").expect("row").owner;
        workers
            .iter()
            .zip(["worker-ams", "worker-iad"])
            .find(|(w, _)| Some(w.id()) == owner)
            .map(|(_, name)| name)
    };

    // A paste through ams is a write: replayed to the primary region, iad, once, and placed
    // in ams, where it was asked from (Fly-Region travels with the replay).
    let first = paste(&ams, &url("merges")).await;
    let d = last(&proxy, "POST", "/api/repos");
    assert_eq!(
        (d.first.as_str(), d.replayed_to.as_deref(), d.status),
        ("web-ams", Some("web-iad"), 201),
        "{d:?}"
    );
    // Through lhr, which has no worker: placed in the nearest region that has one, ams.
    let second = paste(&lhr, &url("second")).await;
    // Through iad, the primary region: answered there, placed there.
    let third = paste(&iad, &url("third")).await;
    let d = last(&proxy, "POST", "/api/repos");
    assert_eq!(
        (d.first.as_str(), d.replayed_to.as_deref()),
        ("web-iad", None),
        "{d:?}"
    );
    for (id, region, owner) in [
        (&first, "ams", "worker-ams"),
        (&second, "ams", "worker-ams"),
        (&third, "iad", "worker-iad"),
    ] {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, s) = get(&format!("{iad}/api/repos/{id}/status")).await;
            if s["state"] == "ready" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} not ready: {s}\n{:?}\n{:?}\n{}\n{}",
                store.repo(id),
                store.count_jobs(),
                workers[0].tail(),
                workers[1].tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            store.repo_region(id).expect("region").as_deref(),
            Some(region)
        );
        assert_eq!(owner_of(id), Some(owner), "{id}");
    }

    // `Fly-Region` as anyone can send it straight to a node: a code in capitals names the same
    // region; what is not a region code is ignored, and the node's own region counts.
    let capitals = paste_with(&webs[1].base, &url("fourth"), &[("fly-region", "AMS")]).await;
    let junk = paste_with(&webs[1].base, &url("fifth"), &[("fly-region", "ams; ../x")]).await;
    for (id, region) in [(&capitals, "ams"), (&junk, "iad")] {
        let placed = until("placed in a region", Duration::from_secs(10), async || {
            store.repo_region(id).expect("region")
        })
        .await;
        assert_eq!(placed, region, "{id}");
    }

    // A read of a repository owned in iad, through ams: replayed to iad, and the same answer
    // as read in iad. One owned in ams, through ams: answered there.
    let path = format!("/api/repos/{third}/graph?offset=0&limit=200");
    let (s1, through_ams) = text(&format!("{ams}{path}")).await;
    let d = last(&proxy, "GET", &path);
    assert_eq!(
        (d.first.as_str(), d.replayed_to.as_deref()),
        ("web-ams", Some("web-iad"))
    );
    let (s2, in_iad) = text(&format!("{iad}{path}")).await;
    assert_eq!((s1, s2), (200, 200), "{through_ams}");
    assert_eq!(through_ams, in_iad);
    let d = last(&proxy, "GET", &path);
    assert_eq!(
        (d.first.as_str(), d.replayed_to.as_deref()),
        ("web-iad", None)
    );
    let path = format!("/api/repos/{first}/graph?offset=0&limit=200");
    let (status, _) = text(&format!("{ams}{path}")).await;
    assert_eq!(status, 200);
    assert_eq!(last(&proxy, "GET", &path).replayed_to, None);
    let (status, _) = text(&format!("{lhr}{path}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        last(&proxy, "GET", &path).replayed_to.as_deref(),
        Some("web-ams")
    );

    // A request Fly replayed already is never replayed again: answered where it arrived
    // (forwarded across regions, as without replays).
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/repos/{third}/graph?offset=0&limit=200",
            webs[0].base
        ))
        .header("fly-replay-src", "instance=web-lhr;region=lhr;t=1")
        .send()
        .await
        .expect("read");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("fly-replay").is_none());
    assert_eq!(resp.text().await.expect("body"), in_iad);

    // Viewers in both regions: of the iad repository through ams (replayed to iad) and
    // through iad, of the ams one through iad (replayed to ams).
    let ws =
        |edge: &str, id: &str| format!("{}/api/repos/{id}/ws", edge.replace("http://", "ws://"));
    let mut viewers = Vec::new();
    for (edge, id, served_by) in [
        (&ams, &third, "web-iad"),
        (&iad, &third, "web-iad"),
        (&iad, &first, "web-ams"),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws(edge, id))
            .await
            .expect("connects");
        next_of(&mut socket, "summary", Duration::from_secs(10)).await;
        let d = last(&proxy, "GET", &format!("/api/repos/{id}/ws"));
        assert_eq!(d.status, 101);
        let answered_by = d.replayed_to.clone().unwrap_or(d.first.clone());
        assert_eq!(answered_by, served_by, "{d:?}");
        viewers.push(socket);
    }
    // Let each web node's first viewer's subscription settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Pushes, delivered through lhr (writes: replayed to iad), reach every viewer.
    let third_src = serve.join("third");
    let pushed = commit(&third_src, "in-iad.txt");
    let (status, _) = github(&lhr, "push", "regions-1", &push(&url("third"))).await;
    assert_eq!(status, 202);
    assert_eq!(
        last(&proxy, "POST", "/webhooks/github")
            .replayed_to
            .as_deref(),
        Some("web-iad")
    );
    for socket in &mut viewers[..2] {
        delta_with(socket, &pushed, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", workers[1].tail()));
    }
    let first_src = serve.join("merges");
    let pushed = commit(&first_src, "in-ams.txt");
    let (status, _) = github(&ams, "push", "regions-2", &push(&url("merges"))).await;
    assert_eq!(status, 202);
    delta_with(&mut viewers[2], &pushed, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", workers[0].tail()));
    assert_eq!(git(&first_src, &["rev-parse", "HEAD"]), pushed);

    // A body Fly cannot replay (over 1 MB) is answered where it arrived, not refused.
    let big = vec![b'x'; 1_200_000];
    let (status, _) = deliver(
        &ams,
        "/webhooks/github",
        &[("X-GitHub-Event", "push".to_string())],
        &big,
    )
    .await;
    let d = last(&proxy, "POST", "/webhooks/github");
    assert_eq!(
        (
            d.first.as_str(),
            d.replayed_to.as_deref(),
            d.refused.as_deref()
        ),
        ("web-ams", None, None),
        "{d:?}"
    );
    assert_ne!(status, 502);

    // Nothing was replayed twice, and every replay went where the repository or the
    // database is.
    for d in proxy.deliveries() {
        assert!(d.refused.is_none(), "{d:?}");
    }
    drop(viewers);
    drop(webs);
    drop(workers);
    drop(pg);
}
