//! Kill to served: how long a repository is unavailable after `kill -9` of the worker that owns
//! it, read through a web node, over repeated kills.
//!
//! `cargo bench --bench failover` starts, on a PostgreSQL database of its own (127.0.0.1:5432)
//! and Redis (6379), one web node and two workers (the release `gitvista serve` with
//! `GITVISTA_ROLE`), serves a repository from `git daemon` on loopback, pastes it through the
//! web node and waits until it is served. Then, `GITVISTA_BENCH_KILLS` times (default 10): the
//! nodes run for `GITVISTA_BENCH_SETTLE_SECS` (default 8, past the presence grace) and a random
//! part of a second more, the owner is
//! killed with SIGKILL, and the time until the web node answers a graph window of the
//! repository again is recorded; a new worker then takes the dead one's place. It prints every
//! kill and the p50, p99 and maximum. The repository is `bench-data/forge.git`'s size when
//! `GITVISTA_BENCH_REPO` names it; by default the small `merges` fixture, so the figure is the
//! failure detection and the re-placement, not the clone. `GITVISTA_BENCH_KEEP_LOGS=DIR` keeps
//! every node's log as it was after each kill. Everything binds 127.0.0.1 and every wait is
//! bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
use common::{Result, benchmarking, ms, paste, serve_command, server_url};

const PG_ADMIN: &str = "postgres://root@127.0.0.1:5432/postgres";
const SECRET: &str = "failover-bench-cluster-secret-0123456789abcdef";

/// One node process (killed when dropped).
struct NodeProcess {
    child: Child,
    base: String,
    data: PathBuf,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(role: &str, db: &str, data: &Path) -> Result<NodeProcess> {
    std::fs::create_dir_all(data)?;
    let internal = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut child = serve_command(data)
        .env("GITVISTA_ROLE", role)
        .env("DATABASE_URL", db)
        .env("GITVISTA_REDIS_URL", "redis://127.0.0.1:6379")
        .env("GITVISTA_CLUSTER_SECRET", SECRET)
        .env("GITVISTA_INTERNAL_ADDR", internal.to_string())
        .env("GITVISTA_FETCH_INTERVAL", "3600")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data.with_extension("log"))?)
        .spawn()?;
    let base = server_url(&mut child)?;
    Ok(NodeProcess {
        child,
        base,
        data: data.to_path_buf(),
    })
}

fn node_id(node: &NodeProcess) -> Option<String> {
    std::fs::read_to_string(node.data.join("node-id"))
        .ok()
        .map(|s| s.trim().to_string())
}

async fn served(client: &reqwest::Client, web: &str, id: &str) -> bool {
    match client
        .get(format!("{web}/api/repos/{id}/graph?offset=0&limit=10"))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .is_ok_and(|w| w["rows"].as_array().is_some_and(|rows| !rows.is_empty())),
        _ => false,
    }
}

/// Copies every node's log to `GITVISTA_BENCH_KEEP_LOGS/kill-N`, when it is set.
fn keep_logs(tmp: &Path, kill: usize) -> Result<()> {
    let Ok(keep) = std::env::var("GITVISTA_BENCH_KEEP_LOGS") else {
        return Ok(());
    };
    let dest = Path::new(&keep).join(format!("kill-{kill}"));
    std::fs::create_dir_all(&dest)?;
    for entry in std::fs::read_dir(tmp)?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            std::fs::copy(entry.path(), dest.join(entry.file_name()))?;
        }
    }
    Ok(())
}

async fn run(kills: usize, settle: Duration) -> Result<Vec<Duration>> {
    use diesel::{Connection, RunQueryDsl};
    let tmp = tempfile::tempdir()?;
    let name = format!("gitvista_bench_failover_{}", std::process::id());
    let mut admin = diesel::PgConnection::establish(PG_ADMIN)?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin)?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
    let db = format!("postgres://root@127.0.0.1:5432/{name}");
    let result = async {
        let store = gitvista_store::Store::open(&db, 2)?;
        let serve = tmp.path().join("serve");
        let source = match std::env::var("GITVISTA_BENCH_REPO") {
            Ok(repo) => {
                std::fs::create_dir_all(&serve)?;
                gitvista_testkit::bare_clone(Path::new(&repo), &serve.join("repo.git"))
            }
            Err(_) => {
                let merges = gitvista_testkit::fixture("merges", tmp.path()).join("repo");
                gitvista_testkit::bare_clone(&merges, &serve.join("repo.git"))
            }
        };
        let daemon = gitvista_testkit::start_git_daemon(&serve)?;
        let url = format!(
            "git://127.0.0.1:{}/{}",
            daemon.port,
            source
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("repo.git")
        );
        let web = start_node("web", &db, &tmp.path().join("web"))?;
        let mut workers = vec![
            start_node("worker", &db, &tmp.path().join("worker-0"))?,
            start_node("worker", &db, &tmp.path().join("worker-1"))?,
        ];
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let id = paste(&client, &web.base, &url).await?;
        let limit = Instant::now() + Duration::from_secs(600);
        while !served(&client, &web.base, &id).await {
            if Instant::now() > limit {
                return Err("the repository was never served".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut times = Vec::new();
        // A kill at a random point of the survivors' one-second presence checks: a whole number
        // of seconds after the last change would always land just after one.
        let mut jitter = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
        for k in 0..kills {
            jitter ^= jitter << 13;
            jitter ^= jitter >> 7;
            jitter ^= jitter << 17;
            tokio::time::sleep(settle + Duration::from_millis(jitter % 1000)).await;
            let owner = store.repo(&id)?.and_then(|r| r.owner).ok_or("no owner")?;
            let at = workers
                .iter()
                .position(|w| node_id(w).as_deref() == Some(owner.as_str()))
                .ok_or("the owner is not one of the workers")?;
            let mut dead = workers.remove(at);
            let killed = Instant::now();
            dead.child.kill()?;
            let _ = dead.child.wait();
            let limit = killed + Duration::from_secs(120);
            while !served(&client, &web.base, &id).await {
                if Instant::now() > limit {
                    keep_logs(tmp.path(), k + 1)?;
                    return Err(format!("kill {}: not served again within 120 s", k + 1).into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let took = killed.elapsed();
            eprintln!("kill {}: served again {} after the kill", k + 1, ms(took));
            keep_logs(tmp.path(), k + 1)?;
            times.push(took);
            drop(dead);
            workers.push(start_node(
                "worker",
                &db,
                &tmp.path().join(format!("worker-{}", k + 2)),
            )?);
        }
        drop(web);
        drop(workers);
        Ok(times)
    }
    .await;
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin);
    result
}

fn main() -> Result<()> {
    if !benchmarking() {
        return Ok(());
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let kills = env("GITVISTA_BENCH_KILLS", 10).clamp(1, 100) as usize;
    let settle = Duration::from_secs(env("GITVISTA_BENCH_SETTLE_SECS", 8).clamp(1, 600));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut times = rt.block_on(run(kills, settle))?;
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "| kills | kill to served p50 | p99 | max |\n| --- | --- | --- | --- |\n| {} | {} | {} | {} |",
        times.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
    );
    Ok(())
}
