//! A rolling deploy of a 2-web/2-worker cluster (real processes, this machine's PostgreSQL and
//! Redis) while viewers watch and pushes arrive every 500 ms: every node in turn gets SIGTERM,
//! is started again on its data directory and is waited for until `/readyz` answers 200 (the
//! first worker after 4 s down, long enough for its repositories to move to the other). Every
//! viewer reconnects when its web node stops (1012), reads what it missed, and ends with every
//! commit; no job is lost (nothing left queued or running, nothing failed but jobs another
//! queued one covered) or run twice. The longest gap any viewer saw between a push and knowing
//! its commit is printed, and written as JSON to `GITVISTA_ROLLING_REPORT` when set.
//!
//! `GITVISTA_ROLLING_VIEWERS` sets the number of viewers (40 by default; the figure in
//! docs/operations.md is for 1,000).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::hosted::{get, post};
use crate::nodes::{Cluster, Node, until};
use crate::webhooks::{SECRET, commit, push, signature};

/// What the test and its viewers share (one thread: the test's runtime).
struct World {
    /// The web nodes' current base URLs (a restarted one listens on a new port).
    webs: Vec<String>,
    /// Each repository's pushed commits, with when each was pushed.
    pushed: HashMap<String, Vec<(String, Instant)>>,
    /// Set when the pushes are over.
    pushed_all: bool,
    /// Set when the test is over: viewers stop.
    over: bool,
    /// One HTTP client for every viewer (making one is costly; a thousand would starve the
    /// test's thread).
    http: reqwest::Client,
}

/// What one viewer saw.
#[derive(Default)]
struct Seen {
    /// When it first knew each commit.
    known: HashMap<String, Instant>,
    reconnects: u32,
    /// The longest time it was without a socket.
    longest_away: Duration,
    /// Close codes it was sent.
    closes: Vec<u16>,
}

/// Marks every pushed commit of `id` that `graph` (a window's text) holds as known.
fn learn_from_graph(world: &World, id: &str, graph: &str, seen: &mut Seen) {
    let now = Instant::now();
    for (hash, _) in world.pushed.get(id).into_iter().flatten() {
        if graph.contains(hash.as_str()) {
            seen.known.entry(hash.clone()).or_insert(now);
        }
    }
}

/// Reads the top of `id`'s graph through `base` and learns from it; a 503 (the repository is
/// moving, its owner restarting) is asked again after its `Retry-After`, as the page does.
async fn resync(
    world: &Rc<RefCell<World>>,
    base: &str,
    id: &str,
    client: &str,
    seen: &Rc<RefCell<Seen>>,
) {
    let url = format!("{base}/api/repos/{id}/graph?offset=0&limit=500");
    for _ in 0..30 {
        let http = world.borrow().http.clone();
        let answer = http.get(&url).header("x-test-client", client).send().await;
        let Ok(r) = answer else {
            // The web node itself is gone: the socket closes next, and the viewer reconnects.
            return;
        };
        if r.status().is_success() {
            if let Ok(text) = r.text().await {
                learn_from_graph(&world.borrow(), id, &text, &mut seen.borrow_mut());
            }
            return;
        }
        tokio::time::sleep(crate::helpers::retry_after(&r)).await;
    }
}

/// Viewer number `n` of `id` (on web node `n / 2` first): watches until the test is over,
/// reconnecting to the other web node when its socket closes. Each viewer is a client of its
/// own (named in the header the nodes trust), as the people behind them are.
async fn viewer(world: Rc<RefCell<World>>, id: String, n: usize, seen: Rc<RefCell<Seen>>) {
    let client = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
    let mut at = n / 2;
    let mut away_since: Option<Instant> = None;
    while !world.borrow().over {
        let base = world.borrow().webs[at % 2].clone();
        let url = format!("{}/api/repos/{id}/ws", base.replace("http://", "ws://"));
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = url.into_client_request().expect("a request");
        request
            .headers_mut()
            .insert("x-test-client", client.parse().expect("a header"));
        let connected = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await;
        let Ok(Ok((mut ws, _))) = connected else {
            at += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if let Some(since) = away_since.take() {
            let mut s = seen.borrow_mut();
            s.longest_away = s.longest_away.max(since.elapsed());
            s.reconnects += 1;
        }
        loop {
            let next = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            if world.borrow().over {
                return;
            }
            let msg = match next {
                Err(_) => continue,
                Ok(Some(Ok(m))) => m,
                Ok(_) => break,
            };
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    match v["type"].as_str() {
                        // What it missed while away, and what a resync asks it to read.
                        Some("summary" | "resync" | "ready") => {
                            resync(&world, &base, &id, &client, &seen).await;
                        }
                        Some("delta") => {
                            let now = Instant::now();
                            let mut s = seen.borrow_mut();
                            for c in v["added"].as_array().into_iter().flatten() {
                                if let Some(c) = c.as_str() {
                                    s.known.entry(c.to_string()).or_insert(now);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Message::Close(frame) => {
                    if let Some(f) = frame {
                        seen.borrow_mut().closes.push(f.code.into());
                    }
                    break;
                }
                _ => {}
            }
        }
        // Closed: as a page does, connect again, to the other web node first.
        away_since = Some(Instant::now());
        at += 1;
    }
}

/// Delivers a signed GitHub push of `url` to `base`; `None` when the node does not answer.
async fn try_push(http: &reqwest::Client, base: &str, url: &str, delivery: &str) -> Option<u16> {
    let body = serde_json::to_vec(&push(url)).expect("json");
    let resp = http
        .post(format!("{base}/webhooks/github"))
        .timeout(Duration::from_secs(5))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", signature(SECRET, &body))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// Stops `node` with SIGTERM (as a deploy does) and waits for its process to end.
async fn stop(node: &mut Node) -> Duration {
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(node.process.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    loop {
        if let Ok(Some(status)) = node.process.try_wait() {
            assert!(status.success(), "{status:?}\n{}", node.tail());
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "still running 45 s after SIGTERM\n{}",
            node.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_rolling_restart_of_every_node_loses_no_commit_for_any_viewer_and_no_job() {
    let viewers: usize = std::env::var("GITVISTA_ROLLING_VIEWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let cluster = Cluster::start("rolling", 2, 2).await;
    let out = std::process::Command::new("cp")
        .arg("-r")
        .arg(cluster.serve.join("merges"))
        .arg(cluster.serve.join("second"))
        .output()
        .expect("cp");
    assert!(out.status.success(), "{out:?}");
    let names = ["merges", "second"];
    let urls: Vec<String> = names.iter().map(|n| cluster.url(n)).collect();
    let Cluster {
        mut workers,
        mut webs,
        store,
        serve,
        pg,
        tmp,
        ..
    } = cluster;
    let mut ids = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let (status, created) = post(&webs[i].base, url).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    for id in &ids {
        until("ready", Duration::from_secs(60), async || {
            let (_, s) = get(&format!("{}/api/repos/{id}/status", webs[0].base)).await;
            (s["state"] == "ready").then_some(())
        })
        .await;
    }

    let world = Rc::new(RefCell::new(World {
        webs: webs.iter().map(|w| w.base.clone()).collect(),
        pushed: ids.iter().map(|id| (id.clone(), Vec::new())).collect(),
        pushed_all: false,
        over: false,
        http: reqwest::Client::new(),
    }));
    let mut seen = Vec::new();
    let mut tasks = Vec::new();
    for v in 0..viewers {
        let s = Rc::new(RefCell::new(Seen::default()));
        let id = ids[v % ids.len()].clone();
        seen.push((id.clone(), Rc::clone(&s)));
        tasks.push(actix_rt::spawn(viewer(Rc::clone(&world), id, v, s)));
        if v % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Every viewer connected before the deploy starts.
    until(
        "every viewer connected",
        Duration::from_secs(60),
        async || {
            let connected: i32 = store
                .live_nodes(15_000)
                .expect("nodes")
                .iter()
                .filter(|n| n.role == "web")
                .map(|n| n.viewers)
                .sum();
            (connected as usize >= viewers).then_some(())
        },
    )
    .await;

    // Pushes every 500 ms, alternating the repositories, each to a web node that answers.
    let pushing = {
        let (world, serve, urls, ids) =
            (Rc::clone(&world), serve.clone(), urls.clone(), ids.clone());
        actix_rt::spawn(async move {
            let mut n = 0usize;
            while !world.borrow().pushed_all {
                let r = n % 2;
                let source = serve.join(names[r]);
                let hash = commit(&source, &format!("rolling-{n}.txt"));
                world
                    .borrow_mut()
                    .pushed
                    .get_mut(&ids[r])
                    .expect("repo")
                    .push((hash, Instant::now()));
                let mut delivered = false;
                for attempt in 0..20 {
                    let base = world.borrow().webs[(n + attempt) % 2].clone();
                    let http = world.borrow().http.clone();
                    if try_push(&http, &base, &urls[r], &format!("rolling-{n}-{attempt}")).await
                        == Some(202)
                    {
                        delivered = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                assert!(delivered, "push {n} found no web node to take it");
                n += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            n
        })
    };

    // The deploy: each node in turn, SIGTERM, started again, ready.
    let mut restarts = Vec::new();
    // The owner of the first repository goes first and stays down 4 s (a machine replaced:
    // its repositories move to the other worker, cloned again); the others come straight back
    // on their disks.
    let owner = store.repo(&ids[0]).expect("repo").expect("row").owner;
    let first = workers
        .iter()
        .position(|w| Some(w.id()) == owner)
        .expect("a worker owns it");
    let epoch_before = store.repo(&ids[0]).expect("repo").expect("row").epoch;
    for (role, i, down) in [
        ("worker", first, Duration::from_secs(4)),
        ("worker", 1 - first, Duration::ZERO),
        ("web", 0, Duration::ZERO),
        ("web", 1, Duration::ZERO),
    ] {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let node = if role == "worker" {
            &mut workers[i]
        } else {
            &mut webs[i]
        };
        let took = stop(node).await;
        tokio::time::sleep(down).await;
        let name = format!("{role}-{}", i + 1);
        let started = Instant::now();
        node.restart(role, &pg.url(), tmp.path(), &name);
        let ready = format!("{}/readyz", node.base);
        until(
            &format!("{name} ready again"),
            Duration::from_secs(60),
            async || {
                let (status, _) = get(&ready).await;
                (status == 200).then_some(())
            },
        )
        .await;
        if role == "web" {
            world.borrow_mut().webs[i] = node.base.clone();
        }
        restarts.push((name, took, started.elapsed()));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.borrow_mut().pushed_all = true;
    let pushes = pushing.await.expect("pushes");

    // Every viewer ends with every commit of its repository (bounded).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let missing: usize = seen
            .iter()
            .map(|(id, s)| {
                let w = world.borrow();
                let s = s.borrow();
                w.pushed[id]
                    .iter()
                    .filter(|(h, _)| !s.known.contains_key(h))
                    .count()
            })
            .sum();
        if missing == 0 {
            break;
        }
        if Instant::now() > deadline {
            let _ = std::process::Command::new("cp")
                .arg("-r")
                .arg(tmp.path())
                .arg("/tmp/rolling-debug")
                .status();
            panic!(
                "{missing} commits never reached their viewers\n{:?}\n{:?}",
                ids.iter().map(|id| store.repo(id)).collect::<Vec<_>>(),
                store.jobs_in("failed", 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    world.borrow_mut().over = true;
    for t in tasks {
        let _ = t.await;
    }

    // The longest gap any viewer saw between a push and knowing its commit.
    let (mut longest_gap, mut longest_away, mut reconnects, mut told_1012) =
        (Duration::ZERO, Duration::ZERO, 0u32, 0usize);
    for (id, s) in &seen {
        let s = s.borrow();
        for (hash, pushed_at) in &world.borrow().pushed[id] {
            let gap = s.known[hash].saturating_duration_since(*pushed_at);
            longest_gap = longest_gap.max(gap);
        }
        longest_away = longest_away.max(s.longest_away);
        reconnects += s.reconnects;
        told_1012 += s.closes.iter().filter(|c| **c == 1012).count();
    }
    // Every viewer of a stopped web node was told to reconnect (each web node stopped once).
    assert!(
        told_1012 >= viewers,
        "{told_1012} of {viewers} viewers told 1012"
    );

    // No job lost or run twice.
    for state in ["queued", "running"] {
        let left = store.jobs_in(state, 100).expect("jobs");
        assert!(left.is_empty(), "{state}: {left:?}");
    }
    let failed = store.jobs_in("failed", 1000).expect("jobs");
    for job in &failed {
        assert_eq!(
            job.error_message.as_deref(),
            Some(gitvista::store::jobs::SUPERSEDED),
            "{job:?}"
        );
    }
    let done = store.jobs_in("done", 10_000).expect("jobs");
    for job in &done {
        assert_eq!(job.attempts, 1, "run more than once: {job:?}");
    }
    let moved = store.repo(&ids[0]).expect("repo").expect("row");
    assert!(
        moved.epoch > epoch_before,
        "the first repository moved: {moved:?}"
    );
    let report = serde_json::json!({
        "viewers": viewers,
        "pushes": pushes,
        "jobsDone": done.len(),
        "jobsSuperseded": failed.len(),
        "reconnects": reconnects,
        "longestGapMs": longest_gap.as_millis() as u64,
        "longestWithoutSocketMs": longest_away.as_millis() as u64,
        "restarts": restarts.iter().map(|(name, stop, ready)| serde_json::json!({
            "node": name,
            "stopMs": stop.as_millis() as u64,
            "readyMs": ready.as_millis() as u64,
        })).collect::<Vec<_>>(),
    });
    eprintln!("rolling deploy: {report}");
    if let Ok(path) = std::env::var("GITVISTA_ROLLING_REPORT") {
        std::fs::write(path, serde_json::to_string_pretty(&report).expect("json")).expect("report");
    }
    drop(pg);
}

#[actix_rt::test]
async fn a_worker_stopped_in_the_middle_of_a_clone_hands_it_back_and_the_other_runs_it_once() {
    let cluster = Cluster::start_with("rollclone", 2, 1, |c| {
        c.env("GITVISTA_JOB_DRAIN", "2");
    })
    .await;
    // The remote holds every connection until the gate opens: the clone runs meanwhile.
    let (proxy, gate) = gitvista_testkit::gated_proxy(cluster.daemon.port);
    gate.shut();
    let url = format!("git://127.0.0.1:{proxy}/merges");
    let (mut workers, web, store) = (cluster.workers, &cluster.webs[0], &cluster.store);
    let (status, created) = post(&web.base, &url).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let claimed = until(
        "the clone is claimed",
        Duration::from_secs(20),
        async || {
            let running = store.jobs_in("running", 10).expect("jobs");
            running
                .into_iter()
                .find(|j| j.repo_id == id && j.kind == "clone")
        },
    )
    .await;
    let at = workers
        .iter()
        .position(|w| Some(w.id()) == claimed.locked_by)
        .expect("a worker runs it");
    // SIGTERM: the clone does not end within the drain, so it is handed back, uncounted, and
    // the process exits cleanly.
    let mut stopping = workers.remove(at);
    let took = stop(&mut stopping).await;
    assert!(
        took >= Duration::from_secs(2),
        "waited for the job: {took:?}"
    );
    assert!(
        stopping.tail().contains("handed running jobs back"),
        "{}",
        stopping.tail()
    );
    // The other worker takes it (once the stopped one's repositories are re-placed), the
    // remote answers, and the clone completes on its first counted attempt.
    gate.open();
    let survivor = &workers[0];
    let done = until(
        "cloned by the other worker",
        Duration::from_secs(60),
        async || {
            store
                .job(&claimed.id)
                .expect("job")
                .filter(|j| j.state == "done")
        },
    )
    .await;
    assert_eq!(done.locked_by.as_deref(), Some(survivor.id().as_str()));
    assert_eq!(done.attempts, 1, "run once: {done:?}");
    until("ready", Duration::from_secs(30), async || {
        let (_, s) = get(&format!("{}/api/repos/{id}/status", web.base)).await;
        (s["state"] == "ready").then_some(())
    })
    .await;
}
