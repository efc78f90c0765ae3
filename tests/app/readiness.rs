//! `/readyz` of the real binary: ready when it can serve, and 503 naming what keeps it from
//! serving: free disk under the floor, a git that does not run, Redis that does not answer, a
//! database that went away.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::spawn_serve_binary;
use crate::store::PgDb;

/// The cluster secret of these nodes.
const SECRET: &str = "readiness-cluster-secret-0123456789abcdef";

async fn readyz(base: &str) -> (u16, Value) {
    let resp = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON"))
}

/// Polls `/readyz` until its status is `want` (at most 15 s); answers the body.
async fn until_status(base: &str, want: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = readyz(base).await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "still {status}: {body}");
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_rt::test]
async fn a_node_is_ready_when_it_can_serve_and_says_what_stops_it() {
    let tmp = tempfile::tempdir().expect("tempdir");

    // One node on its own SQLite file: every check it has passes.
    let (_ok, base) = spawn_serve_binary(&tmp.path().join("ok"), |_| {});
    let (status, body) = readyz(&base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "checks": {"database": "ok", "disk": "ok", "git": "ok"}})
    );

    // Free space under the floor, and a git that is not there: not ready, each named.
    let (_low, base) = spawn_serve_binary(&tmp.path().join("low"), |c| {
        c.env("GITVISTA_MIN_FREE", "1000000TiB")
            .env("GITVISTA_GIT", "/nonexistent/git");
    });
    let (status, body) = readyz(&base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["checks"]["disk"], "low");
    assert_eq!(body["checks"]["git"], "not_runnable");
    assert_eq!(body["checks"]["database"], "ok");
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("disk") && error.contains("git"), "{error}");
    // Liveness is not readiness: it still answers.
    let live = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(live.status().as_u16(), 200);
}

#[actix_rt::test]
async fn redis_that_does_not_answer_and_a_database_that_went_away_make_a_node_not_ready() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Redis on a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let pg = PgDb::create("readiness_redis");
    // Web nodes: a cluster's nodes use Redis (a single node has none to check).
    let (_node, base) = spawn_serve_binary(&tmp.path().join("no-redis"), |c| {
        c.env("DATABASE_URL", pg.url())
            .env("GITVISTA_ROLE", "web")
            .env("GITVISTA_CLUSTER_SECRET", SECRET)
            .env("GITVISTA_REDIS_URL", format!("redis://127.0.0.1:{closed}"));
    });
    let body = until_status(&base, 503).await;
    assert_eq!(body["checks"]["redis"], "unreachable", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    // A web node runs no git: no disk or git check.
    assert_eq!(
        body["checks"].as_object().map(|c| c.len()),
        Some(2),
        "{body}"
    );

    // With this machine's Redis, ready; then its database is dropped under it.
    let pg = PgDb::create("readiness_db");
    let (_node, base) = spawn_serve_binary(&tmp.path().join("db"), |c| {
        c.env("DATABASE_URL", pg.url())
            .env("GITVISTA_ROLE", "web")
            .env("GITVISTA_CLUSTER_SECRET", SECRET)
            .env("GITVISTA_REDIS_URL", "redis://127.0.0.1:6379");
    });
    let body = until_status(&base, 200).await;
    assert_eq!(body["checks"]["redis"], "ok", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    drop(pg);
    let body = until_status(&base, 503).await;
    assert_eq!(body["checks"]["database"], "unreachable", "{body}");
    assert_eq!(body["checks"]["redis"], "ok", "{body}");
    // What went wrong is in the log, not in the answer.
    assert!(!body.to_string().contains("does not exist"), "{body}");
}
