//! A node's place in the cluster, on the single node: it registers in `nodes`, beats, comes
//! back when presumed dead, and queues again jobs whose holder stopped renewing its lease.

use std::time::{Duration, Instant};

use gitvista::store::Store;

use crate::helpers::{hosted_config, spawn_hosted_with};

#[actix_rt::test]
async fn a_node_beats_comes_back_when_forgotten_and_reaps_expired_leases() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (_port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        heartbeat: Duration::from_millis(100),
        ..hosted_config(&data)
    })
    .await;
    // The same database, as another node would see it.
    let store = Store::open(&data.join("gitvista.db").display().to_string(), 2).expect("store");
    // The server runs on this thread: waits yield to it.
    async fn wait(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let live = || store.live_nodes(1_000).expect("nodes");
    wait("the node registered", || live().len() == 1).await;
    let node = live()[0].clone();
    assert_eq!(node.role, "all");
    // Presumed dead (its row forgotten): it registers again at its next beat.
    assert!(store.heartbeat(&node.id).expect("beats"));
    assert!(store.forget_node(&node.id).expect("forgets"));
    wait("the node came back", || {
        live().iter().any(|n| n.id == node.id)
    })
    .await;
    // A clone held by a node that died mid-run is queued again, the repository is re-placed
    // (nobody owns it, its epoch grows), and this node, the live one, claims and runs it.
    let c = "00000000000000c3";
    store
        .upsert_repo(c, "http://127.0.0.1:9/c", "http://127.0.0.1:9/c")
        .expect("repo");
    store.enqueue_job(c, "clone", 0, None).expect("enqueue");
    let claimed = store
        .claim_job("a-dead-node", 1, true)
        .expect("claim")
        .expect("the job");
    assert_eq!(claimed.epoch, 1, "placed on the dead node");
    let placed = store.repo(c).expect("repo").expect("row");
    assert_eq!(placed.owner.as_deref(), Some("a-dead-node"));
    wait("the live node ran the job again", || {
        store.job(&claimed.job.id).expect("get").is_some_and(|j| {
            j.state == "done" && j.locked_by.as_deref() == Some(node.id.as_str()) && j.attempts == 2
        })
    })
    .await;
    let after = store.repo(c).expect("repo").expect("row");
    assert!(after.epoch >= 2, "re-placed under a new epoch: {after:?}");
    assert!(
        !store
            .holds(
                c,
                &gitvista::store::placement::Fence {
                    node: "a-dead-node".into(),
                    epoch: 1
                }
            )
            .expect("holds"),
        "the dead node's fence is stale"
    );
    // Nothing listens on port 9: the clone failed, and was let go.
    assert_eq!(after.state, "error", "{after:?}");
    assert_eq!(after.owner, None);
}

#[test]
fn a_clone_is_claimed_in_its_region_while_a_worker_lives_there() {
    use gitvista::store::jobs::NodePlace;
    crate::store::both("regionclaims", |open| {
        let store = open();
        let backend = store.backend();
        let at = |region: &str| NodePlace {
            region: Some(region.to_string()),
            machine_id: None,
        };
        store
            .register_node_at("ams-1", "worker", None, &at("ams"))
            .expect("registers");
        store
            .register_node_at("iad-1", "worker", None, &at("iad"))
            .expect("registers");
        store
            .register_node_at("iad-web", "web", None, &at("iad"))
            .expect("registers");
        assert_eq!(
            store.regions_with_workers(15_000).expect("regions"),
            ["ams", "iad"],
            "{backend}: a web node makes no region one with a worker"
        );
        let (a, b) = ("00000000000000a1", "00000000000000b2");
        clones_queued(&store, &[a, b]);
        // The first region chosen stays.
        assert_eq!(store.place_in_region(a, "iad").expect("placed"), "iad");
        assert_eq!(store.place_in_region(a, "ams").expect("kept"), "iad");
        assert_eq!(store.repo_region(b).expect("region"), None);
        // ams takes b (no region), never a while iad has a live worker.
        let claimed = store
            .claim_job("ams-1", 60_000, true)
            .expect("claim")
            .expect("b");
        assert_eq!(claimed.job.repo_id, b, "{backend}");
        assert!(
            store
                .claim_job("ams-1", 60_000, true)
                .expect("claim")
                .is_none(),
            "{backend}: a is iad's"
        );
        // iad's worker is gone: ams takes a rather than leave it unplaced.
        assert!(store.forget_node("iad-1").expect("forgets"));
        let claimed = store
            .claim_job("ams-1", 60_000, true)
            .expect("claim")
            .expect("a, with iad empty");
        assert_eq!(claimed.job.repo_id, a, "{backend}");
        let nodes = store.live_nodes(15_000).expect("nodes");
        assert_eq!(nodes[0].place, at("ams"), "{backend}");
    });
}

#[test]
fn a_stopping_node_hands_its_running_jobs_back_uncounted() {
    crate::store::both("handback", |open| {
        let store = open();
        let backend = store.backend();
        store
            .register_node("w1", "worker", None)
            .expect("registers");
        let (a, b) = ("00000000000000a1", "00000000000000b2");
        clones_queued(&store, &[a, b]);
        let first = store
            .claim_job("w1", 60_000, true)
            .expect("claim")
            .expect("a job");
        let second = store
            .claim_job("w1", 60_000, true)
            .expect("claim")
            .expect("another");
        assert_eq!(first.job.attempts, 1);
        // Another clone of the second repository was queued while it ran: that one covers it.
        store
            .enqueue_job(&second.job.repo_id, "clone", 1, None)
            .expect("queued beside");
        assert_eq!(
            store.hand_back_jobs("w1").expect("hands back"),
            1,
            "{backend}"
        );
        let back = store.job(&first.job.id).expect("get").expect("row");
        assert_eq!(
            (
                back.state.as_str(),
                back.attempts,
                back.locked_by.as_deref()
            ),
            ("queued", 0, None),
            "{backend}: queued again, the attempt not counted"
        );
        let covered = store.job(&second.job.id).expect("get").expect("row");
        assert_eq!(covered.state, "failed", "{backend}");
        assert_eq!(
            covered.error_message.as_deref(),
            Some(gitvista::store::jobs::SUPERSEDED)
        );
        // Whatever the stopped node writes late changes nothing.
        assert!(!store.finish_job(&first.job.id, "w1").expect("not held"));
        assert_eq!(store.hand_back_jobs("w1").expect("nothing held"), 0);
    });
}

/// Repositories `ids`, each with a clone queued.
fn clones_queued(store: &Store, ids: &[&str]) {
    for id in ids {
        store
            .upsert_repo(id, &format!("https://example.com/{id}"), "x")
            .expect("repo");
        store.enqueue_job(id, "clone", 1, None).expect("enqueue");
    }
}
