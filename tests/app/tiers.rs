//! Web and worker tiers as real processes on loopback, sharing the PostgreSQL and Redis of this
//! machine: a URL pasted on one web node is cloned by a worker and viewed through the other, a
//! push delivered to one web node reaches viewers on both, reads through a web node equal a
//! single node's, and a worker killed with its repository in hand loses it to the other.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{git, hosted_config, spawn_hosted_with};
use crate::hosted::{add_ready, get, post};
use crate::nodes::{CLUSTER_SECRET, Cluster, Node, next_of, text, until};
use crate::webhooks::{commit, delta_with, github, push};

#[actix_rt::test]
async fn two_web_and_two_worker_processes_serve_fan_out_and_survive_a_killed_owner() {
    let cluster = Cluster::start("tiers", 2, 2).await;
    let url = cluster.url("merges");
    let Cluster {
        mut workers,
        webs,
        store,
        serve,
        tmp,
        ..
    } = cluster;
    let [web_a, web_b]: [Node; 2] = webs.try_into().unwrap_or_else(|_| unreachable!());

    // A worker's internal address answers signed requests only.
    let (status, body) = get(&format!("{}/api/repos", workers[0].base)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("cluster_signature"))
    );

    // Pasted on web A, cloned by a worker, viewed through web B.
    let (status, created) = post(&web_a.base, &url).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let ready = until("ready through web B", Duration::from_secs(60), async || {
        let (_, s) = get(&format!("{}/api/repos/{id}/status", web_b.base)).await;
        (s["state"] == "ready").then_some(s)
    })
    .await;
    let row = store.repo(&id).expect("repo").expect("row");
    let owner = row.owner.clone().expect("placed");
    let owner_at = workers
        .iter()
        .position(|w| w.id() == owner)
        .unwrap_or_else(|| panic!("{owner} is one of the workers: {ready}"));
    assert_eq!(row.epoch, 1);

    // Reads through web B equal a single node's.
    let single_data = tmp.path().join("single");
    let (port, _stopper, _server) = spawn_hosted_with(hosted_config(&single_data)).await;
    let single = format!("http://127.0.0.1:{port}");
    assert_eq!(add_ready(&single, &url).await, id);
    let source = serve.join("merges");
    let head = git(&source, &["rev-parse", "HEAD"]);
    let file = git(&source, &["ls-tree", "--name-only", "HEAD"])
        .lines()
        .next()
        .expect("a file")
        .to_string();
    for path in [
        "graph?offset=0&limit=200".to_string(),
        format!("commit/{head}"),
        format!("commit/diff/{head}"),
        format!("tree/blame/{head}?path={file}"),
        "search?q=merge".to_string(),
    ] {
        let (s1, single_body) = text(&format!("{single}/api/repos/{id}/{path}")).await;
        let (s2, web_body) = text(&format!("{}/api/repos/{id}/{path}", web_b.base)).await;
        assert_eq!((s1, s2), (200, 200), "{path}: {web_body}");
        assert_eq!(single_body, web_body, "{path}");
    }

    // One request id on both nodes: the caller's, else the web node's own, logged by the web
    // node and by the owner it forwards to, and answered.
    let client = reqwest::Client::new();
    let graph = format!("{}/api/repos/{id}/graph?offset=1&limit=3", web_b.base);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut ids = Vec::new();
    for sent in [
        Some(("x-request-id", "tiers-request-42")),
        Some(("traceparent", traceparent)),
        None,
    ] {
        let mut req = client.get(&graph);
        if let Some((name, value)) = sent {
            req = req.header(name, value);
        }
        let resp = req.send().await.expect("graph");
        assert_eq!(resp.status().as_u16(), 200);
        let answered = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an X-Request-Id answered")
            .to_string();
        ids.push(answered);
    }
    assert_eq!(ids[0], "tiers-request-42");
    assert_eq!(ids[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(ids[2].len() >= 16, "a made id: {:?}", ids[2]);
    let logged = |node: &Node, id: &str| {
        std::fs::read_to_string(&node.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["span"]["request_id"] == id && l["span"]["http.route"].is_string())
    };
    for id in &ids {
        // The owner's span closes as it answers; the web node's just after.
        until(
            &format!("{id} logged on both nodes"),
            Duration::from_secs(10),
            async || (logged(&web_b, id) && logged(&workers[owner_at], id)).then_some(()),
        )
        .await;
    }

    // A signed request seen on the internal network works once, for its own path and query:
    // replayed, or moved to another query, it is refused.
    let secret = gitvista::cluster::signature::ClusterSecret::new(CLUSTER_SECRET).expect("secret");
    let path = format!("/api/repos/{id}/graph?offset=0&limit=5");
    let signature = secret.sign("GET", &path, b"");
    let signed = |path: String, signature: String| {
        let url = format!("{}{path}", workers[owner_at].base);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-gitvista-cluster", signature)
                .send()
                .await
                .expect("internal request")
                .status()
                .as_u16()
        }
    };
    let moved = format!("/api/repos/{id}/graph?offset=0&limit=200");
    assert_eq!(signed(moved, signature.clone()).await, 401, "another query");
    assert_eq!(
        signed(path.clone(), signature.clone()).await,
        200,
        "the first time"
    );
    assert_eq!(signed(path, signature).await, 401, "replayed");

    // One client's budget of new repositories is shared by both web nodes (in Redis): six a
    // minute, whichever node they go to (away from a minute's edge, where the window turns).
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        % 60;
    if second > 50 {
        tokio::time::sleep(Duration::from_secs(62 - second)).await;
    }
    let client = format!("203.0.113.{}", std::process::id() % 250);
    let mut answers = Vec::new();
    for i in 0..7 {
        let base = if i % 2 == 0 { &web_a.base } else { &web_b.base };
        let r = reqwest::Client::new()
            .post(format!("{base}/api/repos"))
            .header("X-Test-Client", &client)
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .expect("post");
        answers.push(r.status().as_u16());
    }
    assert_eq!(
        answers,
        [200, 200, 200, 200, 200, 200, 429],
        "shared across nodes"
    );

    // A push delivered to web A reaches viewers on web A and web B.
    let connect = async |base: &str| {
        let ws = base.replace("http://", "ws://");
        let (mut s, _) = tokio_tungstenite::connect_async(format!("{ws}/api/repos/{id}/ws"))
            .await
            .expect("connects");
        let summary = next_of(&mut s, "summary", Duration::from_secs(10)).await;
        assert!(
            summary["commits"].as_u64() >= ready["commits"].as_u64(),
            "{summary}"
        );
        s
    };
    let mut ws_a = connect(&web_a.base).await;
    let mut ws_b = connect(&web_b.base).await;
    // Both web nodes subscribed before the push.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed = commit(&source, "tiers-1.txt");
    let (status, answer) = github(&web_a.base, "push", "tiers-1", &push(&url)).await;
    assert_eq!((status, answer["outcome"].as_str()), (202, Some("fetch")));
    for (name, ws) in [("web A", &mut ws_a), ("web B", &mut ws_b)] {
        delta_with(ws, &pushed, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", workers[owner_at].tail()));
    }

    // The owner is killed with the repository in hand: viewers hear it is moving, the other
    // worker clones it under a new epoch, and it is viewable (and live) again.
    let mut dead = workers.remove(owner_at);
    let killed = Instant::now();
    let _ = dead.process.kill();
    let _ = dead.process.wait();
    let survivor = &workers[0];
    let moving = next_of(&mut ws_b, "status", Duration::from_secs(40)).await;
    assert_eq!(moving["state"], "moving", "{moving}");
    let moved = until(
        "re-placed on the survivor",
        Duration::from_secs(90),
        async || {
            let r = store.repo(&id).expect("repo").expect("row");
            (r.owner.as_deref() == Some(survivor.id().as_str()) && r.state == "ready").then_some(r)
        },
    )
    .await;
    assert!(moved.epoch >= 3, "a new epoch: {moved:?}");
    // Found gone by its PostgreSQL session, which ended with the process, not by its lease.
    let survivor_log = std::fs::read_to_string(&survivor.log).unwrap_or_default();
    assert!(
        survivor_log.contains("PostgreSQL session is gone"),
        "the survivor saw the owner's session end:\n{}",
        survivor.tail()
    );
    eprintln!(
        "re-placed and ready {:.1} s after the owner was killed",
        killed.elapsed().as_secs_f64()
    );
    let (s, graph) = text(&format!(
        "{}/api/repos/{id}/graph?offset=0&limit=200",
        web_b.base
    ))
    .await;
    assert_eq!(s, 200, "{graph}");
    assert!(graph.contains(&pushed), "the survivor's clone has the push");
    let pushed = commit(&source, "tiers-2.txt");
    let (status, _) = github(&web_a.base, "push", "tiers-2", &push(&url)).await;
    assert_eq!(status, 202);
    delta_with(&mut ws_b, &pushed, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("after the move: {e}\n{}", survivor.tail()));
    // Web A is killed: its viewers reconnect (the page does) to web B, which serves them.
    let mut web_a = web_a;
    let _ = web_a.process.kill();
    let _ = web_a.process.wait();
    let mut ws_b2 = connect(&web_b.base).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed = commit(&source, "tiers-3.txt");
    let (status, _) = github(&web_b.base, "push", "tiers-3", &push(&url)).await;
    assert_eq!(status, 202);
    for ws in [&mut ws_b, &mut ws_b2] {
        delta_with(ws, &pushed, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("with web A gone: {e}"));
    }
    drop(dead);
}

/// Sends `signal` to `node`'s process.
fn signal(node: &Node, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(node.process.id() as i32), signal)
        .expect("signal");
}

#[actix_rt::test]
async fn a_dropped_redis_connection_resyncs_viewers_and_a_paused_owner_cannot_take_its_repository_back()
 {
    let cluster = Cluster::start("tierfaults", 2, 1).await;
    let url = cluster.url("merges");
    let (workers, web, store, serve) = (
        &cluster.workers,
        &cluster.webs[0],
        &cluster.store,
        &cluster.serve,
    );
    let (status, created) = post(&web.base, &url).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    until("ready", Duration::from_secs(60), async || {
        let (_, s) = get(&format!("{}/api/repos/{id}/status", web.base)).await;
        (s["state"] == "ready").then_some(())
    })
    .await;
    let ws_url = format!("{}/api/repos/{id}/ws", web.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("connects");
    next_of(&mut ws, "summary", Duration::from_secs(10)).await;
    // The web node's first viewer of the repository: once Redis confirms the node's
    // subscription, the viewer reads again (a push between its summary and then reached nobody).
    let subscribed = next_of(&mut ws, "resync", Duration::from_secs(10)).await;
    assert_eq!(subscribed["reason"], "subscribed", "{subscribed}");
    let source = serve.join("merges");

    // Redis drops every subscriber in the middle of a stream of pushes: the web node
    // resubscribes by itself and its viewer is told to resync; it ends with every commit.
    let mut last = String::new();
    for i in 0..6 {
        last = commit(&source, &format!("stream-{i}.txt"));
        let (status, _) = github(&web.base, "push", &format!("stream-{i}"), &push(&url)).await;
        assert_eq!(status, 202);
        if i == 2 {
            let out = std::process::Command::new("redis-cli")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "6379",
                    "CLIENT",
                    "KILL",
                    "TYPE",
                    "pubsub",
                ])
                .output()
                .expect("redis-cli");
            assert!(out.status.success(), "{out:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resync = next_of(&mut ws, "resync", Duration::from_secs(15)).await;
    assert_eq!(resync["reason"], "reconnected", "{resync}");
    let graph = until(
        "the web node serves the last push",
        Duration::from_secs(20),
        async || {
            let (_, g) = text(&format!(
                "{}/api/repos/{id}/graph?offset=0&limit=300",
                web.base
            ))
            .await;
            g.contains(&last).then_some(g)
        },
    )
    .await;
    assert!(graph.contains(&last));
    // And live again after it.
    let after = commit(&source, "after-the-drop.txt");
    github(&web.base, "push", "after-the-drop", &push(&url)).await;
    delta_with(&mut ws, &after, Duration::from_secs(20))
        .await
        .expect("a delta after the reconnection");

    // The owner stops (SIGSTOP) past its lease: the other worker takes the repository over.
    // When it continues, its epoch is stale: it lets go of its clone and writes nothing.
    let row = store.repo(&id).expect("repo").expect("row");
    let owner = workers
        .iter()
        .position(|w| Some(w.id()) == row.owner)
        .expect("an owner");
    let (paused, survivor) = (&workers[owner], &workers[1 - owner]);
    signal(paused, nix::sys::signal::Signal::SIGSTOP);
    let moved = until("taken over", Duration::from_secs(90), async || {
        let r = store.repo(&id).expect("repo").expect("row");
        (r.owner.as_deref() == Some(survivor.id().as_str()) && r.state == "ready").then_some(r)
    })
    .await;
    assert!(moved.epoch > row.epoch, "{moved:?}");
    signal(paused, nix::sys::signal::Signal::SIGCONT);
    let clone = paused.data.join("repos").join(&id);
    until(
        "the paused worker let go of its clone",
        Duration::from_secs(30),
        async || (!clone.exists()).then_some(()),
    )
    .await;
    let now = store.repo(&id).expect("repo").expect("row");
    assert_eq!(
        (now.owner.as_deref(), now.epoch, now.state.as_str()),
        (Some(survivor.id().as_str()), moved.epoch, "ready"),
        "nothing the paused worker did went through"
    );
    assert!(
        paused.tail().contains("no longer owns the repository"),
        "{}",
        paused.tail()
    );
    // A signed read that reaches the paused worker anyway (a web node's owner map still names
    // it) is not answered from what it had: 503 `moving`, and the web node asks again. The new
    // owner answers the same request.
    let secret = gitvista::cluster::signature::ClusterSecret::new(CLUSTER_SECRET).expect("secret");
    for (node, want) in [(paused, (503, "moving")), (survivor, (200, ""))] {
        let path = format!("/api/repos/{id}/graph?offset=0&limit=5");
        let answer = reqwest::Client::new()
            .get(format!("{}{path}", node.base))
            .header("x-gitvista-cluster", secret.sign("GET", &path, b""))
            .send()
            .await
            .expect("internal request");
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.expect("json");
        assert_eq!(
            (status, body["code"].as_str().unwrap_or("")),
            want,
            "{body}"
        );
    }
    // Still live through the new owner (a fresh socket: this one was not read during the
    // pause, so the server dropped it as a stalled viewer, and the page would reconnect).
    drop(ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("connects");
    next_of(&mut ws, "summary", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = commit(&source, "after-the-pause.txt");
    github(&web.base, "push", "after-the-pause", &push(&url)).await;
    delta_with(&mut ws, &later, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", survivor.tail()));
}

/// Collects what a bus relays to a session.
struct Probe(tokio::sync::mpsc::UnboundedSender<String>);

impl actix::Actor for Probe {
    type Context = actix::Context<Self>;
}

impl actix::Handler<gitvista_actors::events::Relay> for Probe {
    type Result = ();
    fn handle(&mut self, msg: gitvista_actors::events::Relay, _: &mut actix::Context<Self>) {
        let text = match msg.event {
            gitvista_actors::ViewerEvent::Encoded(t) => String::from_utf8_lossy(&t).into_owned(),
            other => format!("{other:?}"),
        };
        let _ = self.0.send(text);
    }
}

#[actix_rt::test]
async fn the_bus_relays_in_order_resyncs_on_a_gap_and_carries_revocations() {
    use actix::Actor as _;
    use gitvista::cluster::bus::{Announce, Announcement, Bus, Revoke};
    use gitvista_actors::events::{Interest, Published};
    let redis = "redis://127.0.0.1:6379";
    // A repository id of this run only: the channel is shared by every test on this Redis.
    let id = gitvista_actors::RepoId::parse(&format!("{:016x}", std::process::id() as u64 * 7919))
        .expect("id");
    let owner_fences = std::sync::Arc::new(gitvista::cluster::Fences::new("owner"));
    owner_fences.set(id.as_str(), 4);
    let owner = Bus::new(redis, owner_fences).expect("bus").start();
    let (revoked_tx, mut revoked) = tokio::sync::mpsc::unbounded_channel();
    let web = Bus::new(
        redis,
        std::sync::Arc::new(gitvista::cluster::Fences::new("web")),
    )
    .expect("bus")
    .with_revocations(std::sync::Arc::new(move |what: &str| {
        let _ = revoked_tx.send(what.to_string());
    }))
    .start();
    let (tx, mut relayed) = tokio::sync::mpsc::unbounded_channel();
    let probe = Probe(tx).start();
    web.do_send(Interest::Watch {
        id: id.clone(),
        session: probe.recipient(),
    });
    let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("in time")
            .expect("open")
    };
    // Once Redis confirms the subscription, its viewers read again: what the owner published
    // between their summary and then reached nobody here.
    assert_eq!(
        serde_json::from_str::<Value>(&next(&mut relayed).await).expect("json"),
        serde_json::json!({"type": "resync", "reason": "subscribed"})
    );
    let event = |text: &str| Published {
        id: id.clone(),
        event: gitvista_actors::ViewerEvent::Encoded(text.to_string().into_bytes().into()),
    };
    // In order: relayed as they were sent.
    for n in 1..=3 {
        owner.do_send(event(&format!(r#"{{"type":"head","n":{n}}}"#)));
    }
    for n in 1..=3 {
        assert_eq!(
            next(&mut relayed).await,
            format!(r#"{{"type":"head","n":{n}}}"#)
        );
    }
    // A message lost on the way (sequence 5 after 3): the viewers resync instead.
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "PUBLISH",
            &gitvista::cluster::bus::channel(id.as_str()),
            r#"{"e":4,"s":5,"t":"{\"type\":\"head\",\"n\":5}"}"#,
        ])
        .output()
        .expect("redis-cli");
    assert!(out.status.success());
    let json = |t: String| serde_json::from_str::<Value>(&t).expect("json");
    assert_eq!(
        json(next(&mut relayed).await),
        serde_json::json!({"type": "resync", "reason": "gap"})
    );
    // A new owner: moving, then ready (resync), then its events from 1.
    owner.do_send(Announce(id.clone(), Announcement::Moving));
    assert!(next(&mut relayed).await.contains(r#""state":"moving""#));
    owner.do_send(Announce(id.clone(), Announcement::Ready(4)));
    assert_eq!(
        json(next(&mut relayed).await),
        serde_json::json!({"type": "resync", "reason": "moved"})
    );
    assert!(next(&mut relayed).await.contains(r#""state":"ready""#));
    owner.do_send(event(r#"{"type":"head","n":6}"#));
    assert_eq!(next(&mut relayed).await, r#"{"type":"head","n":6}"#);
    // Who may read it changed: every viewer checks again.
    owner.do_send(Announce(id.clone(), Announcement::Access));
    assert_eq!(next(&mut relayed).await, "AccessChanged");
    // A revoked session reaches the other nodes.
    owner.do_send(Revoke(format!("s:{}", id.as_str())));
    let got = tokio::time::timeout(Duration::from_secs(5), revoked.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(got, format!("s:{}", id.as_str()));
    // Unwatched: nothing more arrives.
    web.do_send(Interest::Unwatch { id: id.clone() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    owner.do_send(event(r#"{"type":"head","n":7}"#));
    let late = tokio::time::timeout(Duration::from_millis(700), relayed.recv()).await;
    assert!(!matches!(late, Ok(Some(_))), "unsubscribed: {late:?}");
}

#[actix_rt::test]
async fn a_worker_killed_in_the_middle_of_a_clone_loses_the_job_to_the_other_and_nothing_half_done_is_served()
 {
    let mut cluster = Cluster::start("tierclone", 2, 1).await;
    // Every connection to the remote waits 4 s first: the clone is running meanwhile.
    let proxy = gitvista_testkit::delayed_proxy(cluster.daemon.port, Duration::from_secs(4));
    let url = format!("git://127.0.0.1:{proxy}/merges");
    let (workers, web, store) = (&mut cluster.workers, &cluster.webs[0], &cluster.store);
    let (status, created) = post(&web.base, &url).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    // Claimed: placed on a worker, its git running.
    let claimed = until(
        "the clone is claimed",
        Duration::from_secs(20),
        async || {
            let r = store.repo(&id).expect("repo").expect("row");
            r.owner.clone().map(|o| (o, r))
        },
    )
    .await;
    let at = workers
        .iter()
        .position(|w| w.id() == claimed.0)
        .expect("a worker");
    let mut dead = workers.remove(at);
    let _ = dead.process.kill();
    let _ = dead.process.wait();
    let survivor = &workers[0];
    // Until the survivor has cloned it whole, nothing of it is served.
    let mut refused = 0;
    let ready = until(
        "cloned again by the survivor",
        Duration::from_secs(90),
        async || {
            let (s, body) = text(&format!(
                "{}/api/repos/{id}/graph?offset=0&limit=10",
                web.base
            ))
            .await;
            let r = store.repo(&id).expect("repo").expect("row");
            if r.state == "ready" && r.owner.as_deref() == Some(survivor.id().as_str()) {
                return Some(r);
            }
            // The owner serves a clone just before its row says `ready` (so a page that sees
            // `ready` finds a session): a graph is fine once the survivor's clone is in place,
            // which happens only when it is whole (it is renamed there on success).
            let whole = survivor.data.join("repos").join(&id).join("HEAD").is_file();
            assert!(
                s != 200 || whole,
                "a graph before the clone is whole: {body}"
            );
            refused += 1;
            None
        },
    )
    .await;
    assert!(refused > 0);
    assert!(
        ready.epoch >= 3,
        "placed, re-placed, placed again: {ready:?}"
    );
    let (s, graph) = text(&format!(
        "{}/api/repos/{id}/graph?offset=0&limit=300",
        web.base
    ))
    .await;
    assert_eq!(s, 200, "{graph}");
    // The clone job ran to completion once, on the survivor.
    let done: Vec<_> = store
        .jobs_in("done", 50)
        .expect("jobs")
        .into_iter()
        .filter(|j| j.repo_id == id && j.kind == "clone")
        .collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].locked_by.as_deref(), Some(survivor.id().as_str()));
    drop(dead);
}

/// Restarts this machine's PostgreSQL (every other test using it would fail meanwhile: this one
/// is run alone, by `scripts/test`, after the others).
fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .next()
        .expect("a cluster");
    let out = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .output()
        .expect("pg_ctlcluster");
    assert!(out.status.success(), "{out:?}");
}

#[actix_rt::test]
#[ignore = "restarts PostgreSQL: run alone (scripts/test does, after the rest)"]
async fn nodes_ride_out_a_postgresql_restart_without_losing_or_repeating_a_job() {
    let cluster = Cluster::start("tierpg", 2, 1).await;
    gitvista_testkit::bare_clone(&cluster.serve.join("merges"), &cluster.serve.join("second"));
    let (url, second) = (cluster.url("merges"), cluster.url("second"));
    let (workers, web, pg) = (&cluster.workers, &cluster.webs[0], &cluster.pg);
    let ready = async |id: &str| {
        until("ready", Duration::from_secs(60), async || {
            let (_, s) = get(&format!("{}/api/repos/{id}/status", web.base)).await;
            (s["state"] == "ready").then_some(())
        })
        .await
    };
    let (_, created) = post(&web.base, &url).await;
    let id = created["id"].as_str().expect("id").to_string();
    ready(&id).await;

    restart_postgres();
    let store = until("PostgreSQL is back", Duration::from_secs(30), async || {
        gitvista::store::Store::open(&pg.url(), 2).ok()
    })
    .await;
    // The nodes reconnect: all three beat again, a new repository is cloned, and a push to the
    // first reaches its viewer.
    until("three nodes beating", Duration::from_secs(30), async || {
        (store.live_nodes(3_000).expect("nodes").len() == 3).then_some(())
    })
    .await;
    let (status, created) = until("web answers again", Duration::from_secs(30), async || {
        let (s, v) = post(&web.base, &second).await;
        (s == 201).then_some((s, v))
    })
    .await;
    assert_eq!(status, 201);
    let id2 = created["id"].as_str().expect("id").to_string();
    ready(&id2).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "{}/api/repos/{id}/ws",
        web.base.replace("http://", "ws://")
    ))
    .await
    .expect("connects");
    next_of(&mut ws, "summary", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed = commit(&cluster.serve.join("merges"), "after-restart.txt");
    github(&web.base, "push", "after-restart", &push(&url)).await;
    delta_with(&mut ws, &pushed, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", workers[0].tail(), workers[1].tail()));
    // Each clone ran to completion exactly once; nothing is left queued or running.
    for repo in [&id, &id2] {
        let clones = store
            .jobs_in("done", 100)
            .expect("jobs")
            .into_iter()
            .filter(|j| &j.repo_id == repo && j.kind == "clone")
            .count();
        assert_eq!(clones, 1, "{repo}");
    }
    let waiting = store
        .count_jobs()
        .expect("counts")
        .into_iter()
        .filter(|(state, _)| state == "queued" || state == "running")
        .map(|(_, n)| n)
        .sum::<i64>();
    assert_eq!(waiting, 0);
}
