//! GitVista started the way the docs tell a user to, not the way tests usually do: from a
//! working directory of its own with the defaults (a relative data directory), several nodes at
//! the same instant on one new or older database, and `gitvista open` on `.` or on a path that
//! holds no repository.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::{Connection as _, RunQueryDsl as _};
use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, Binary, Starting, git, start_command};
use crate::hosted::{admin_get, get, post, served, wait_state};
use crate::store::PgDb;

/// The variables a test's own environment might carry that would change the defaults.
const SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "GITVISTA_DATA_DIR",
    "GITVISTA_ALLOWED_HOSTS",
    "GITVISTA_PORT",
    "GITVISTA_ROLE",
    "GITVISTA_REDIS_URL",
    "GITVISTA_CLUSTER_SECRET",
    "GITVISTA_INTERNAL_ADDR",
];

/// `gitvista serve` started in `cwd` with `args` after `serve --port 0` (a free port instead of
/// 8080, so tests may run together) and `env`, its log (at info) in `log`.
fn serve_in(cwd: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Starting {
    let log = std::fs::File::create(log).expect("log file");
    start_command(
        |c| {
            c.current_dir(cwd).args(["serve", "--port", "0"]).args(args);
            for name in SETTINGS {
                c.env_remove(name);
            }
        },
        |c| {
            c.envs(env.iter().copied())
                .env("RUST_LOG", "info")
                .stderr(log);
        },
    )
}

/// Follows the hosted quick start in a fresh working directory: `GITVISTA_ALLOWED_HOSTS=127.0.0.1
/// gitvista serve [ARGS]`, a `git://` URL of a loopback `git daemon` pasted through the API, the
/// repository `ready` and its graph window read. The daemon does not serve partial clones (git's
/// default), so the first, filtered clone falls back to a full one: that must be neither a
/// warning nor a failed job. Answers the data directory the server made.
async fn quick_start(args: &[&str], expected_data_dir: &str) -> PathBuf {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, daemon) = served(tmp.path());
    let cwd = tmp.path().join("work");
    std::fs::create_dir_all(&cwd).expect("cwd");
    let log = tmp.path().join("server.log");
    let (_server, base) = serve_in(
        &cwd,
        args,
        &[
            ("GITVISTA_ALLOWED_HOSTS", "127.0.0.1"),
            ("GITVISTA_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
        &log,
    )
    .serving();
    let url = format!("git://127.0.0.1:{}/merges.git", daemon.port);
    let (status, created) = post(&base, &url).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let state = wait_state(&base, &id, &["ready", "error"]).await;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(state["state"], "ready", "{state}\n{}", log_text());

    // The graph window has exactly the commits git lists.
    let (status, window) = get(&format!("{base}/api/repos/{id}/graph?offset=0&limit=500")).await;
    assert_eq!(status, 200, "{window}");
    let mut shown: Vec<String> = window["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["hash"].as_str().expect("hash").to_string())
        .collect();
    let source = serve.join("merges");
    // A clone copies branches and tags (the fixture also has notes and a pull ref), and the
    // objects as stored (no replace refs).
    let mut listed: Vec<String> = git(
        &source,
        &["--no-replace-objects", "rev-list", "--branches", "--tags"],
    )
    .lines()
    .map(str::to_string)
    .collect();
    shown.sort();
    listed.sort();
    assert!(!listed.is_empty());
    assert_eq!(shown, listed, "the graph window against git's list");

    // Everything is where the docs say, relative to the working directory, and nowhere else.
    let data = cwd.join(expected_data_dir);
    let clone = data.join("repos").join(&id);
    assert!(
        clone.join("HEAD").is_file(),
        "{} holds the clone",
        clone.display()
    );
    assert_eq!(
        git(&clone, &["config", "--file", "config", "remote.origin.url"]).trim(),
        format!("git://127.0.0.1:{}/merges", daemon.port),
        "the clone remembers its canonical URL"
    );
    assert!(data.join("gitvista.db").is_file());
    let mut made: Vec<String> = std::fs::read_dir(&cwd)
        .expect("cwd")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(
        made,
        [expected_data_dir],
        "only the data directory in the working directory"
    );
    assert!(
        !data.join(expected_data_dir).exists(),
        "no data directory nested inside the data directory"
    );
    let leftovers: Vec<_> = std::fs::read_dir(data.join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "no work in progress left: {leftovers:?}"
    );

    // The fallback happened, and it is neither a warning nor a failure anywhere.
    let metrics = crate::hosted::admin_metrics(&base).await;
    assert!(
        metrics.contains(r#"gitvista_git_job_fallbacks_total{kind="clone",reason="no_filter"} 1"#),
        "the filtered clone fell back once:\n{metrics}"
    );
    assert!(
        !metrics.contains("gitvista_git_job_failures_total"),
        "no failed git job:\n{metrics}"
    );
    // The history streamed before the clone needs the same filter: skipped, not failed.
    assert!(
        metrics.contains(r#"gitvista_stream_skipped_total{reason="not_offered"} 1"#),
        "the stream was skipped:\n{metrics}"
    );
    assert!(
        !metrics.contains("gitvista_stream_failures_total"),
        "no failed stream:\n{metrics}"
    );
    let (status, actors) = admin_get(&format!("{base}/api/admin/actors")).await;
    assert_eq!(status, 200, "{actors}");
    assert_eq!(
        actors["cluster"]["failed"],
        serde_json::json!([]),
        "{actors}"
    );
    let (_, repos) = admin_get(&format!("{base}/api/admin/repos")).await;
    let row = repos["repos"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == id.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(row["errorDetail"], Value::Null, "{repos}");
    let text = log_text();
    let loud: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        // About the clone (the heartbeat and the job runner have warnings of their own for a
        // machine too loaded to keep their pace, which are not this test's business).
        .filter(|l| l.contains("git_job") || l.contains("clone") || l.contains(id.as_str()))
        .collect();
    assert!(loud.is_empty(), "warnings in the log:\n{}", loud.join("\n"));
    assert!(
        text.contains("another shape follows"),
        "the fallback is an info line:\n{text}"
    );
    data
}

#[actix_rt::test]
async fn serve_without_a_data_dir_clones_into_gitvista_data_in_the_working_directory() {
    quick_start(&[], "gitvista-data").await;
}

#[actix_rt::test]
async fn serve_with_a_relative_data_dir_clones_into_it() {
    quick_start(&["--data-dir", "data"], "data").await;
}

/// How many migrations each backend has (the directories under `store/migrations/<backend>`).
fn migrations(backend: &str) -> usize {
    std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("store/migrations")
            .join(backend),
    )
    .expect("migrations")
    .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
    .count()
}

/// How many migrations a node's log says it ran (`database migrations ran ran=N`).
fn ran_in(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("database migrations ran"))
        .filter_map(|l| {
            l.split("ran=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

/// Starts three web nodes and two workers of one cluster at the same instant on the database
/// `db`, in `cwd` with relative data directories; answers each once it serves, with its log.
fn five_nodes_at_once(cwd: &Path, db: &str) -> Vec<(Binary, String, PathBuf)> {
    let secret = "cluster-secret-for-the-first-run-tests-0123456789";
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    };
    let starting: Vec<(Starting, PathBuf)> = (0..5)
        .map(|n| {
            let (role, internal) = if n < 3 {
                ("web", String::new())
            } else {
                ("worker", format!("127.0.0.1:{}", free_port()))
            };
            let log = cwd.join(format!("node{n}.log"));
            let data = format!("node{n}");
            let mut env = vec![
                ("DATABASE_URL", db),
                ("GITVISTA_REDIS_URL", "redis://127.0.0.1:6379"),
                ("GITVISTA_CLUSTER_SECRET", secret),
                ("GITVISTA_ALLOWED_HOSTS", "127.0.0.1"),
            ];
            if !internal.is_empty() {
                env.push(("GITVISTA_INTERNAL_ADDR", &internal));
            }
            let node = serve_in(cwd, &["--role", role, "--data-dir", &data], &env, &log);
            (node, log)
        })
        .collect();
    starting
        .into_iter()
        .map(|(node, log)| {
            let text = || std::fs::read_to_string(&log).unwrap_or_default();
            let (process, base) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.serving()))
                    .unwrap_or_else(|_| panic!("a node did not come up:\n{}", text()));
            (process, base, log)
        })
        .collect()
}

/// Every node answers `/healthz`, the database has every migration, and the nodes' logs
/// together ran the `expected` pending ones exactly once.
async fn all_healthy_each_migration_once(
    nodes: &[(Binary, String, PathBuf)],
    db: &str,
    expected: usize,
) {
    for (_, base, log) in nodes {
        let (status, _) = get(&format!("{base}/healthz")).await;
        assert_eq!(
            status,
            200,
            "{base}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    let ran: usize = nodes.iter().map(|(_, _, log)| ran_in(log)).sum();
    assert_eq!(
        ran, expected,
        "the pending migrations ran once over all nodes"
    );
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel::PgConnection::establish(db).expect("connect");
    let applied: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .load(&mut conn)
            .expect("applied");
    assert_eq!(applied[0].n as usize, migrations("postgres"));
}

/// One five-node cluster at a time: PostgreSQL's 100 connections are shared with the other
/// tests running meanwhile.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[actix_rt::test]
async fn five_nodes_starting_together_on_a_new_postgresql_database_all_come_up() {
    let _one = ONE_CLUSTER.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let pg = PgDb::create("five_new");
    let nodes = five_nodes_at_once(tmp.path(), &pg.url());
    all_healthy_each_migration_once(&nodes, &pg.url(), migrations("postgres")).await;
}

#[actix_rt::test]
async fn five_nodes_starting_together_on_an_older_postgresql_database_run_the_new_migration_once() {
    let _one = ONE_CLUSTER.lock().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let pg = PgDb::create("five_upgrade");
    let all = migrations("postgres");
    // The database as the release before the newest migration left it.
    let older = gitvista::store::Store::connect(&pg.url(), 1).expect("connect");
    assert_eq!(older.migrate_first(all - 1).expect("older schema"), all - 1);
    drop(older);
    let nodes = five_nodes_at_once(tmp.path(), &pg.url());
    all_healthy_each_migration_once(&nodes, &pg.url(), 1).await;
}

/// `gitvista migrate` five times at once in `cwd` (relative data directory `data`): every one
/// succeeds; answers the sum of the migrations they say they ran.
fn five_migrates_at_once(cwd: &Path) -> usize {
    let children: Vec<_> = (0..5)
        .map(|_| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_gitvista"));
            c.current_dir(cwd).args(["migrate", "--data-dir", "data"]);
            for name in SETTINGS {
                c.env_remove(name);
            }
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("migrate")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("migrate");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // "... is up to date (N migrations ran now)"
            stdout
                .split('(')
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no count in {stdout:?}"))
        })
        .sum()
}

#[test]
fn five_migrations_at_once_on_one_sqlite_file_run_each_migration_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let all = migrations("sqlite");
    assert_eq!(five_migrates_at_once(tmp.path()), all, "a new database");
    assert_eq!(five_migrates_at_once(tmp.path()), 0, "an up-to-date one");
    // An older one: the newest migration's tables gone as if never made, its row with them.
    let other = tempfile::tempdir().expect("tempdir");
    let db = other.path().join("data").join("gitvista.db");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("dir");
    let older = gitvista::store::Store::connect(&db.display().to_string(), 1).expect("connect");
    assert_eq!(older.migrate_first(all - 1).expect("older schema"), all - 1);
    drop(older);
    assert_eq!(five_migrates_at_once(other.path()), 1, "an older one");
}

/// Runs `gitvista open --no-browser --port 0 PATH` in `cwd` until it exits (at most 20 s);
/// answers whether it succeeded and what it printed on each stream.
fn open_until_exit(cwd: &Path, path: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .current_dir(cwd)
        .args(["open", "--no-browser", "--port", "0", path])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("open");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "gitvista open {path} is still running: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn open_on_a_missing_path_or_outside_any_repository_says_so_and_exits_non_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("plain");
    std::fs::create_dir_all(&outside).expect("dir");
    let missing = tmp.path().join("nonexistent").join("x");
    for (path, says, why) in [
        (
            missing.display().to_string(),
            format!(
                "gitvista: cannot open a repository at {0}: {0}: No such file or directory",
                missing.display()
            ),
            "a path that does not exist",
        ),
        (
            outside.display().to_string(),
            format!(
                "gitvista: cannot open a repository at {0}: {0} is not inside a git repository",
                outside.display()
            ),
            "a directory outside any repository",
        ),
        (
            ".".to_string(),
            format!(
                "gitvista: cannot open a repository at .: {} is not inside a git repository",
                outside.canonicalize().expect("canonical").display()
            ),
            "the default path in a directory outside any repository",
        ),
    ] {
        let (ok, stdout, stderr) = open_until_exit(&outside, &path);
        assert!(!ok, "{why}: exits non-zero");
        assert!(stderr.starts_with(&says), "{why}: {stderr:?} says {says:?}");
        assert!(
            !stdout.contains("serving"),
            "{why}: nothing served: {stdout}"
        );
    }
}

#[actix_rt::test]
async fn open_dot_in_a_subdirectory_of_a_work_tree_serves_that_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = crate::helpers::fixture("merges", tmp.path()).join("repo");
    let sub = repo.join("docs-from-the-test");
    std::fs::create_dir_all(&sub).expect("subdirectory");
    let (_server, base) = start_command(
        |c| {
            c.current_dir(&sub)
                .args(["open", "--no-browser", "--port", "0", "."]);
        },
        |_| {},
    )
    .serving();
    let (status, summary) = get(&format!("{base}/api/repos/local/repository")).await;
    assert_eq!(status, 200, "{summary}");
    let head = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(
        summary["head"]["commit"].as_str(),
        Some(head.trim()),
        "{summary}"
    );
    // The name the page shows before the history is read: the work tree's, not the directory
    // `open` was started in, and the summary's own.
    let (status, early) = get(&format!("{base}/api/repos/local/status")).await;
    assert_eq!(status, 200, "{early}");
    assert_eq!(early["mode"], "local");
    assert_eq!(early["name"], "repo");
    assert_eq!(early["name"], summary["name"]);
}
