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
    // A job held by a node that died mid-run is queued again by this one.
    store
        .upsert_repo(
            "00000000000000c3",
            "https://example.com/c",
            "https://example.com/c",
        )
        .expect("repo");
    store
        .enqueue_job("00000000000000c3", "clone", 0, None)
        .expect("enqueue");
    let job = store
        .claim_job("a-dead-node", 1)
        .expect("claim")
        .expect("the job");
    wait("the lease was reaped", || {
        store
            .job(&job.id)
            .expect("get")
            .is_some_and(|j| j.state == "queued")
    })
    .await;
}
