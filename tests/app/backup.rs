//! `gitvista backup` while the server runs and writes, and `gitvista restore` into a new data
//! directory, run as a user runs them (relative paths, from the directory they are in): the
//! copy is one consistent moment, everything written before it began is in it, tokens decrypt
//! with the same key, and the restored node serves its repository again (cloned anew).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::helpers::spawn_serve_binary;
use crate::hosted::{add_ready, served, wait_state};
use crate::webhooks::{SECRET, github, push};
use gitvista::store::Store;

/// `gitvista ARGS` in `cwd`: whether it succeeded, and what it printed.
fn gitvista(cwd: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("GITVISTA_DATA_DIR")
        .output()
        .expect("gitvista");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn signed_in(store: &Store, cipher: &gitvista::auth::cipher::TokenCipher, n: usize) {
    let user = format!("user-{n}");
    let token = cipher
        .encrypt(&user, &format!("gho_token_{n}"))
        .expect("encrypts");
    let forge_id = n.to_string();
    let login = format!("login{n}");
    let row = store
        .sign_in_user(&user, &crate::store::github_user(&forge_id, &login, &token))
        .expect("sign in");
    store
        .create_session(&format!("session-{n}"), &row.id, i64::MAX)
        .expect("session");
    store
        .create_team(&format!("team-{n}"), &format!("Team {n}"), &row.id)
        .expect("team");
}

#[actix_rt::test]
async fn a_backup_taken_during_writes_restores_into_a_new_directory_that_serves_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, daemon) = served(tmp.path());
    let live = tmp.path().join("live");
    let (server, base) = spawn_serve_binary(&live, |c| {
        c.env("GITVISTA_GITHUB_WEBHOOK_SECRET", SECRET);
    });
    let url = format!("git://127.0.0.1:{}/merges", daemon.port);
    let id = add_ready(&base, &url).await;

    // Sign-ins (users, sessions, sealed tokens, teams) written straight into the running
    // server's store, and webhook deliveries through it, while the backup runs.
    let cipher = Arc::new(gitvista::auth::cipher::TokenCipher::new(&[7; 32], &[]));
    let db = live.join("gitvista.db").display().to_string();
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cipher, written, stop, db) = (
            Arc::clone(&cipher),
            Arc::clone(&written),
            Arc::clone(&stop),
            db.clone(),
        );
        std::thread::spawn(move || {
            let store = Store::connect(&db, 1).expect("store");
            for n in 0..100_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                signed_in(&store, &cipher, n);
                written.store(n + 1, Ordering::SeqCst);
            }
        })
    };
    for n in 0..5 {
        let (status, body) = github(&base, "push", &format!("before-{n}"), &push(&url)).await;
        assert_eq!(status, 202, "{body}");
    }
    while written.load(Ordering::SeqCst) < 50 {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let before = written.load(Ordering::SeqCst);
    let (ok, said) = gitvista(
        tmp.path(),
        &["backup", "--to", "backup.db", "--data-dir", "live"],
    );
    let after = written.load(Ordering::SeqCst);
    assert!(ok, "{said}");
    assert!(said.contains("backed up"), "{said}");
    // Writes went on during the backup; stop them, then a delivery after it.
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    let (status, _) = github(&base, "push", "after-backup", &push(&url)).await;
    assert_eq!(status, 202);
    // An existing file is never overwritten.
    let (ok, said) = gitvista(
        tmp.path(),
        &["backup", "--to", "backup.db", "--data-dir", "live"],
    );
    assert!(!ok && said.contains("exists already"), "{said}");

    // Not a backup: refused, and nothing is put in place.
    std::fs::write(
        tmp.path().join("junk.db"),
        b"not a database at all, just bytes",
    )
    .expect("junk");
    let (ok, said) = gitvista(
        tmp.path(),
        &["restore", "--from", "junk.db", "--data-dir", "restored"],
    );
    assert!(!ok && said.contains("not a SQLite database"), "{said}");
    assert!(!tmp.path().join("restored/gitvista.db").exists());

    drop(server);
    let (ok, said) = gitvista(
        tmp.path(),
        &["restore", "--from", "backup.db", "--data-dir", "restored"],
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("cloned anew"),
        "the single node's id comes back: {said}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("restored/node-id")).expect("node id"),
        std::fs::read_to_string(live.join("node-id")).expect("node id")
    );

    // One consistent moment: every sign-in written before the backup began, a prefix of the
    // ones after (its user, session, token and team), and tokens still decrypt.
    let restored = Store::connect(
        &tmp.path()
            .join("restored/gitvista.db")
            .display()
            .to_string(),
        1,
    )
    .expect("restored store");
    let tokens = restored.all_tokens().expect("tokens");
    let users = tokens.len();
    assert!(
        users >= before && users <= after,
        "{before} <= {users} <= {after}"
    );
    for n in 0..users {
        let user = format!("user-{n}");
        let (_, _, access, _) = tokens
            .iter()
            .find(|(u, ..)| *u == user)
            .unwrap_or_else(|| panic!("{user} is in the copy"));
        assert_eq!(
            cipher.decrypt(&user, access).expect("decrypts").as_str(),
            format!("gho_token_{n}")
        );
        // A sign-in is three writes (user, session, team): the copy may fall between them for
        // the last one only.
        if n + 1 < users {
            assert!(
                restored
                    .session(&format!("session-{n}"))
                    .expect("session")
                    .is_some()
            );
            assert_eq!(restored.teams_of(&user).expect("teams").len(), 1, "{user}");
        }
    }
    let deliveries = restored.deliveries(None, 100).expect("deliveries");
    assert!(
        (0..5).all(|n| deliveries
            .iter()
            .any(|d| d.delivery_id == format!("before-{n}"))),
        "{deliveries:?}"
    );
    assert!(!deliveries.iter().any(|d| d.delivery_id == "after-backup"));
    assert_eq!(
        restored
            .repo(&id)
            .expect("repo")
            .expect("row")
            .canonical_url,
        url.trim_end_matches(".git").to_string()
    );
    drop(restored);

    // Started on the restored directory, the node owns its repository again and clones it.
    let (_node, base) = spawn_serve_binary(&tmp.path().join("restored"), |_| {});
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let graph = reqwest::get(format!("{base}/api/repos/{id}/graph?limit=5"))
            .await
            .expect("graph");
        if graph.status().as_u16() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not served again: {}",
            graph.text().await.unwrap_or_default()
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
    assert!(
        tmp.path().join(format!("restored/repos/{id}")).exists(),
        "cloned anew"
    );
}

#[actix_rt::test]
async fn clones_lost_under_a_running_node_are_cloned_again_and_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, daemon) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            lost_clone_check: Duration::from_millis(300),
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", daemon.port)).await;
    let graph = || async {
        reqwest::get(format!("{base}/api/repos/{id}/graph?limit=3"))
            .await
            .expect("graph")
    };
    assert_eq!(graph().await.status().as_u16(), 200);
    let dir = data.join("repos").join(&id);
    assert!(dir.join("HEAD").is_file());
    // The whole `repos/` directory is lost while the node runs.
    std::fs::remove_dir_all(data.join("repos")).expect("rm repos/");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let served = graph().await.status().as_u16() == 200;
        if served && dir.join("HEAD").is_file() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let status = reqwest::get(format!("{base}/api/repos/{id}/status"))
                .await
                .expect("status")
                .text()
                .await
                .unwrap_or_default();
            let g = graph().await;
            let code = g.status().as_u16();
            let body = g.text().await.unwrap_or_default();
            panic!(
                "not cloned again: {status}\ngraph {code}: {body}\nHEAD there: {}",
                dir.join("HEAD").is_file()
            );
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        wait_state(&base, &id, &["ready", "error"]).await["state"],
        "ready"
    );
}

#[test]
fn a_restore_under_a_writing_server_and_a_backup_of_postgresql_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let live = tmp.path().join("live");
    std::fs::create_dir_all(&live).expect("dir");
    let db = live.join("gitvista.db");
    let store = Store::open(&db.display().to_string(), 1).expect("store");
    store
        .upsert_repo("00000000000000d4", "https://example.com/o/d", "d")
        .expect("repo");
    let copy = tmp.path().join("copy.db");
    store.backup_to(&copy).expect("backup");
    // The store is still open and has written since: its WAL holds changes.
    store
        .upsert_repo("00000000000000e5", "https://example.com/o/e", "e")
        .expect("repo");
    let refused = gitvista::store::backup::restore_sqlite(&copy, &db).expect_err("refused");
    assert!(
        refused.to_string().contains("a server is running"),
        "{refused}"
    );
    assert!(
        store.repo("00000000000000e5").expect("read").is_some(),
        "untouched"
    );
    assert!(!std::path::PathBuf::from(format!("{}.restoring", db.display())).exists());
    drop(store);

    let pg = crate::store::PgDb::create("backup_refused");
    let store = Store::open(&pg.url(), 1).expect("postgres store");
    let refused = store
        .backup_to(&tmp.path().join("pg.db"))
        .expect_err("refused");
    assert!(refused.to_string().contains("pg_dump"), "{refused}");
    assert!(!tmp.path().join("pg.db").exists());
}
