//! Nodes of a test cluster as real processes on loopback, sharing the PostgreSQL and Redis of
//! this machine: [`Node`] (one `gitvista serve --role ...` with its data and JSON log) and
//! [`Cluster`] (a database of its own, `git daemon`, workers and web nodes), with the waits the
//! cluster tests share.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;

use crate::helpers::{Binary, spawn_serve_binary};
use crate::hosted::served;
use crate::store::PgDb;
use crate::webhooks::SECRET;

/// The cluster secret of these tests.
pub(crate) const CLUSTER_SECRET: &str = "cluster-secret-for-the-tests-0123456789";

/// A free port on loopback (bound and let go).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A node of the test cluster.
pub(crate) struct Node {
    pub(crate) process: Binary,
    /// Its base URL (public for web nodes, internal for workers).
    pub(crate) base: String,
    /// Its id in the `nodes` table (workers: from their data directory).
    pub(crate) data: std::path::PathBuf,
    pub(crate) log: std::path::PathBuf,
    /// Its internal address (kept when it restarts).
    pub(crate) internal: String,
}

impl Node {
    /// Starts a `role` node on the database `db`, with its data and log under `dir`, `adjust`
    /// setting more of its environment.
    pub(crate) fn start_with(
        role: &str,
        db: &str,
        dir: &std::path::Path,
        name: &str,
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> Node {
        let internal = format!("127.0.0.1:{}", free_port());
        Node::start_at(role, db, dir, name, &internal, adjust)
    }

    /// Starts `role` node `name` again on its data directory and internal address, as a
    /// deploy does (its log is appended to).
    pub(crate) fn restart(&mut self, role: &str, db: &str, dir: &std::path::Path, name: &str) {
        let internal = self.internal.clone();
        *self = Node::start_at(role, db, dir, name, &internal, |_| {});
    }

    fn start_at(
        role: &str,
        db: &str,
        dir: &std::path::Path,
        name: &str,
        internal: &str,
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> Node {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let log = dir.join(format!("{name}.log"));
        let internal = internal.to_string();
        let (process, base) = spawn_serve_binary(&data, |c| {
            c.env("GITVISTA_ROLE", role)
                .env("DATABASE_URL", db)
                .env("GITVISTA_REDIS_URL", "redis://127.0.0.1:6379")
                .env("GITVISTA_CLUSTER_SECRET", CLUSTER_SECRET)
                .env("GITVISTA_INTERNAL_ADDR", &internal)
                .env("GITVISTA_GITHUB_WEBHOOK_SECRET", SECRET)
                .env("GITVISTA_ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN)
                // Only a delivery makes it fetch.
                .env("GITVISTA_FETCH_INTERVAL", "3600")
                // Clients are named by this header (each test its own), limits are per client.
                .env("GITVISTA_TRUSTED_PROXY", "X-Test-Client")
                .env("GITVISTA_POSTS_PER_MINUTE", "6")
                .env("RUST_LOG", "info")
                .env("GITVISTA_LOG_FORMAT", "json")
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .expect("log"),
                );
            adjust(c);
        });
        Node {
            process,
            base,
            data,
            log,
            internal,
        }
    }

    /// Its node id (a worker's, from its data directory).
    pub(crate) fn id(&self) -> String {
        std::fs::read_to_string(self.data.join("node-id"))
            .expect("node-id")
            .trim()
            .to_string()
    }

    /// The end of its log.
    pub(crate) fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// A cluster of real processes for one test: a PostgreSQL database of its own (migrated once,
/// before the nodes start), the `merges` fixture served by `git daemon`, worker and web nodes,
/// every one registered in `nodes` before the test gets them.
pub(crate) struct Cluster {
    pub(crate) workers: Vec<Node>,
    pub(crate) webs: Vec<Node>,
    /// The store the nodes share, for the test's own reads.
    pub(crate) store: gitvista::store::Store,
    /// The directory `git daemon` serves (`merges` in it).
    pub(crate) serve: std::path::PathBuf,
    pub(crate) daemon: gitvista_testkit::GitDaemon,
    pub(crate) pg: PgDb,
    /// Holds every node's data and log; removed last.
    pub(crate) tmp: tempfile::TempDir,
}

impl Cluster {
    /// `workers` workers and `webs` web nodes on database `tag`.
    pub(crate) async fn start(tag: &str, workers: usize, webs: usize) -> Cluster {
        Cluster::start_with(tag, workers, webs, |_| {}).await
    }

    /// [`Cluster::start`], with `adjust` setting more of every node's environment.
    pub(crate) async fn start_with(
        tag: &str,
        workers: usize,
        webs: usize,
        adjust: impl Fn(&mut std::process::Command),
    ) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pg = PgDb::create(tag);
        gitvista::store::Store::open(&pg.url(), 1).expect("migrates");
        let (serve, daemon) = served(tmp.path());
        let workers: Vec<Node> = (1..=workers)
            .map(|i| {
                Node::start_with(
                    "worker",
                    &pg.url(),
                    tmp.path(),
                    &format!("worker-{i}"),
                    &adjust,
                )
            })
            .collect();
        let webs: Vec<Node> = (1..=webs)
            .map(|i| Node::start_with("web", &pg.url(), tmp.path(), &format!("web-{i}"), &adjust))
            .collect();
        let store = gitvista::store::Store::open(&pg.url(), 2).expect("store");
        let all = workers.len() + webs.len();
        until(
            &format!("{all} nodes registered"),
            Duration::from_secs(20),
            async || (store.live_nodes(15_000).expect("nodes").len() == all).then_some(()),
        )
        .await;
        Cluster {
            workers,
            webs,
            store,
            serve,
            daemon,
            pg,
            tmp,
        }
    }

    /// The `git://` URL of the served repository `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.daemon.port)
    }
}

/// Waits until `cond` holds (the servers are other processes: this thread may sleep).
pub(crate) async fn until<T>(
    what: &str,
    within: Duration,
    mut cond: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next message of `ws` whose type is `kind`.
pub(crate) async fn next_of(ws: &mut crate::signin::Socket, kind: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["type"] == kind {
                    return v;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no {kind} message: {other:?}"),
        }
    }
}

/// The body of GET `url` as text.
pub(crate) async fn text(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}
