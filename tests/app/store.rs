//! The metadata store against a real SQLite file and the PostgreSQL server on 127.0.0.1:5432.

use std::sync::Arc;

use diesel::{Connection, RunQueryDsl};
use gitvista::store::Store;

/// A fresh PostgreSQL database for one test; dropped with the guard.
pub struct PgDb {
    name: String,
}

impl PgDb {
    /// Creates `gitvista_test_<tag>_<pid>` (dropping a leftover of that name first).
    pub fn create(tag: &str) -> PgDb {
        let name = format!("gitvista_test_{tag}_{}", std::process::id());
        let mut admin = diesel::PgConnection::establish("postgres://root@127.0.0.1:5432/postgres")
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test starts it)");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .expect("drop");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create");
        PgDb { name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) =
            diesel::PgConnection::establish("postgres://root@127.0.0.1:5432/postgres")
        {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Runs `check` against a SQLite file and a PostgreSQL database, with a way to reopen.
fn both(tag: &str, check: impl Fn(&dyn Fn() -> Store)) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("gitvista.db");
    let sqlite_url = file.display().to_string();
    check(&|| Store::open(&sqlite_url, 4).expect("sqlite store"));
    let pg = PgDb::create(tag);
    let pg_url = pg.url();
    check(&|| Store::open(&pg_url, 4).expect("postgres store"));
}

#[test]
fn repositories_persist_and_change_state_on_both_backends() {
    both("state", |open| {
        let store = open();
        let backend = store.backend();
        assert_eq!(
            store.migrate().expect("migrate"),
            0,
            "{backend}: already migrated"
        );
        let (repo, created) = store
            .upsert_repo(
                "0123456789abcdef",
                "https://example.com/a/b",
                "https://example.com/a/b.git",
            )
            .expect("insert");
        assert!(created, "{backend}");
        assert_eq!(repo.state, "pending");
        let (again, created) = store
            .upsert_repo("0123456789abcdef", "https://example.com/a/b", "other")
            .expect("again");
        assert!(!created, "{backend}");
        assert_eq!(again.display_url, "https://example.com/a/b.git");

        assert!(
            store
                .set_state(&repo.id, "cloning", None, Some("Receiving objects: 50%"))
                .expect("state")
        );
        assert_eq!(
            store
                .repo(&repo.id)
                .expect("get")
                .expect("row")
                .progress
                .as_deref(),
            Some("Receiving objects: 50%")
        );
        assert!(
            store
                .set_state(&repo.id, "ready", None, None)
                .expect("state")
        );
        assert!(store.set_fetched(&repo.id, 42, 1000).expect("fetched"));
        store
            .upsert_repo(
                "fedcba9876543210",
                "https://example.com/c",
                "https://example.com/c",
            )
            .expect("second");
        assert!(
            store
                .set_state("fedcba9876543210", "error", Some("boom"), None)
                .expect("state")
        );
        assert!(
            !store
                .set_state("0000000000000000", "ready", None, None)
                .expect("state"),
            "no such row"
        );

        // A restart sees the same rows.
        drop(store);
        let store = open();
        let r = store.repo("0123456789abcdef").expect("get").expect("row");
        assert_eq!(
            (r.state.as_str(), r.commit_count, r.disk_bytes),
            ("ready", 42, 1000),
            "{backend}"
        );
        assert!(r.last_fetch_at.is_some());
        let errors = store.repos_in(&["error"]).expect("in");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].error_message.as_deref(), Some("boom"));
        assert_eq!(store.repos().expect("list").len(), 2);
        let some = store
            .repos_with_ids(&["fedcba9876543210".into(), "0000000000000000".into()])
            .expect("by ids");
        assert_eq!(
            some.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["fedcba9876543210"],
            "{backend}"
        );
        assert!(store.touch("fedcba9876543210").expect("touch"));
        assert!(store.delete_repo("fedcba9876543210").expect("delete"));
        assert!(!store.delete_repo("fedcba9876543210").expect("delete again"));
        assert_eq!(store.repos().expect("list").len(), 1, "{backend}");
    });
}

#[test]
fn concurrent_inserts_of_one_repository_create_it_once() {
    both("race", |open| {
        let store = Arc::new(open());
        let threads: Vec<_> = (0..10)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    store
                        .upsert_repo(
                            "aaaaaaaaaaaaaaaa",
                            "https://example.com/x",
                            "https://example.com/x",
                        )
                        .expect("upsert")
                        .1
                })
            })
            .collect();
        let created = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .filter(|c| *c)
            .count();
        assert_eq!(created, 1, "{}", store.backend());
    });
}
