//! The metadata store against a real SQLite file and the PostgreSQL server on 127.0.0.1:5432.

use std::sync::Arc;

use diesel::{Connection, RunQueryDsl};
use gitvista::store::Store;
use gitvista_actors::clone_queue::QueueFull;

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

/// A GitHub sign-in of `login` (forge id `forge_user_id`) with the sealed `access_token`, and
/// nothing else GitHub may send.
pub(crate) fn github_user<'a>(
    forge_user_id: &'a str,
    login: &'a str,
    access_token: &'a [u8],
) -> gitvista::store::accounts::SignedIn<'a> {
    gitvista::store::accounts::SignedIn {
        provider: "github",
        forge_user_id,
        login,
        email: None,
        name: None,
        avatar_url: None,
        access_token,
        refresh_token: None,
        token_expires_at: None,
        refresh_expires_at: None,
        token_kind: "oauth",
        scopes: "",
    }
}

/// Runs `check` against a SQLite file and a PostgreSQL database, with a way to reopen.
pub(crate) fn both(tag: &str, check: impl Fn(&dyn Fn() -> Store)) {
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
        assert!(
            store
                .set_fetched(&repo.id, Some(42), 1000)
                .expect("fetched")
        );
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

#[test]
fn twenty_trackings_at_once_stay_within_the_limits_on_both_backends() {
    use gitvista::store::accounts::Tracked;
    both("limits", |open| {
        let store = Arc::new(open());
        let user = store
            .sign_in_user(
                "user-limits",
                &crate::store::github_user("77", "limits", b"ciphertext"),
            )
            .expect("user");
        for i in 0..20 {
            let id = format!("{i:016x}");
            store
                .upsert_repo_as(
                    &id,
                    &format!("https://example.com/r{i}"),
                    "x",
                    Some(i % 2 == 0),
                )
                .expect("repo");
        }
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (store, uid) = (Arc::clone(&store), user.id.clone());
                std::thread::spawn(move || {
                    let private = (i % 2 == 0).then_some(2);
                    store
                        .track_within(&format!("{i:016x}"), &uid, None, 5, private)
                        .expect("tracks")
                })
            })
            .collect();
        let outcomes: Vec<Tracked> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let added = outcomes.iter().filter(|o| **o == Tracked::Added).count();
        assert_eq!(added, 5, "{}: {outcomes:?}", store.backend());
        let tracked = store.tracked(&user.id).expect("tracked");
        assert_eq!(tracked.len(), 5, "{}", store.backend());
        assert!(
            tracked.iter().filter(|r| r.is_private).count() <= 2,
            "{}",
            store.backend()
        );
    });
}

#[test]
fn a_database_from_before_accounts_migrates_with_its_repositories_intact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sqlite_url = tmp.path().join("gitvista.db").display().to_string();
    let pg = PgDb::create("upgrade");
    for url in [sqlite_url, pg.url()] {
        let store = Store::connect(&url, 2).expect("connects");
        let backend = store.backend();
        // The schema as the release before accounts left it: the first two migrations.
        assert_eq!(store.migrate_first(2).expect("old schema"), 2, "{backend}");
        // Written as that release wrote it (today's row has columns the old table lacks).
        let insert = "INSERT INTO repos (id, canonical_url, display_url, state, error_message, \
             error_code, created_at) VALUES ('00000000000000aa', 'https://example.com/o/r', \
             'example.com/o/r', 'error', 'no such repository', 'not_found', 1)";
        if backend == "postgres" {
            let mut c = diesel::PgConnection::establish(&url).expect("pg");
            diesel::sql_query(insert).execute(&mut c).expect("insert");
        } else {
            let mut c = diesel::SqliteConnection::establish(&url).expect("sqlite");
            diesel::sql_query(insert).execute(&mut c).expect("insert");
        }
        // What readiness reads: this release's migrations the database has not run.
        assert_eq!(store.pending_migrations().expect("pending"), 9, "{backend}");
        assert_eq!(
            store.migrate().expect("upgrade"),
            9,
            "{backend}: accounts, webhooks, the job queue, placement, forges, billing, teams, forge facts and regions to run"
        );
        assert_eq!(store.pending_migrations().expect("pending"), 0, "{backend}");
        let after = store.repo("00000000000000aa").expect("get").expect("kept");
        assert_eq!(
            (after.owner.as_deref(), after.epoch),
            (None, 0),
            "{backend}: not placed"
        );
        let repo = after.clone();
        assert_eq!(after.canonical_url, "https://example.com/o/r", "{backend}");
        assert_eq!(after.error_code.as_deref(), Some("not_found"), "{backend}");
        // The new tables work.
        let cipher = gitvista::auth::cipher::TokenCipher::new(&[3; 32], &[]);
        let token = cipher.encrypt("u1", "gho_abc").expect("encrypts");
        let user = store
            .sign_in_user(
                "u1",
                &gitvista::store::accounts::SignedIn {
                    name: Some("Octo Cat"),
                    ..crate::store::github_user("42", "octo", &token)
                },
            )
            .expect("user");
        assert_eq!(user.plan, "free", "{backend}");
        store
            .create_session("s1", &user.id, i64::MAX)
            .expect("session");
        assert!(store.session("s1").expect("get").expect("row").is_live(0));
        assert!(
            store
                .add_registration(&repo.id, "github", "1", Some(&user.id))
                .expect("registers"),
            "{backend}"
        );
        assert_eq!(
            store
                .repo_by_url("https://example.com/o/r")
                .expect("by url")
                .map(|r| r.id),
            Some(repo.id.clone())
        );
        assert_eq!(store.migrate().expect("again"), 0, "{backend}");
    }
}

#[test]
fn users_keep_ciphertext_only_and_sessions_end_at_once_on_both_backends() {
    use gitvista::auth::cipher::TokenCipher;
    use gitvista::store::accounts::SignedIn;
    both("accounts", |open| {
        let store = open();
        let backend = store.backend();
        let cipher = TokenCipher::new(&[5; 32], &[]);
        let sign_in = |login: &str, token: &str| {
            let access = cipher.encrypt("user-a", token).expect("encrypts");
            let refresh = cipher.encrypt("user-a", "ghr_refresh").expect("encrypts");
            store
                .sign_in_user(
                    "user-a",
                    &SignedIn {
                        provider: "github",
                        forge_user_id: "7",
                        login,
                        email: Some("a@example.com"),
                        name: None,
                        avatar_url: Some("https://avatars.example.com/7"),
                        access_token: &access,
                        refresh_token: Some(&refresh),
                        token_expires_at: Some(1_000),
                        refresh_expires_at: Some(2_000),
                        token_kind: "app",
                        scopes: "",
                    },
                )
                .expect("signs in")
        };
        let first = sign_in("alice", "ghu_first");
        // A second sign-in (renamed on GitHub, new token) updates the one row.
        let second = sign_in("alice2", "ghu_second");
        assert_eq!(first.id, second.id, "{backend}");
        assert_eq!(
            second.login, "alice2",
            "{backend}: a rename on the forge follows"
        );
        let stored = store
            .connection("user-a", "github")
            .expect("get")
            .expect("row");
        assert!(
            !stored.access_token.windows(10).any(|w| w == b"ghu_second"),
            "{backend}: ciphertext only"
        );
        assert_eq!(
            cipher
                .decrypt("user-a", &stored.access_token)
                .expect("decrypts")
                .as_str(),
            "ghu_second"
        );
        assert_eq!(
            cipher
                .decrypt("user-a", stored.refresh_token.as_deref().expect("refresh"))
                .expect("decrypts")
                .as_str(),
            "ghr_refresh"
        );

        let far = gitvista::store::now() + 3600;
        for id in ["s1", "s2", "s3"] {
            store.create_session(id, "user-a", far).expect("session");
        }
        assert!(store.extend_session("s1", far + 60).expect("slides"));
        assert_eq!(
            store.session("s1").expect("get").expect("row").expires_at,
            far + 60
        );
        assert!(store.revoke_session("s1").expect("sign out"));
        assert!(!store.revoke_session("s1").expect("twice"), "{backend}");
        assert!(
            !store
                .extend_session("s1", far + 120)
                .expect("no sliding a revoked one")
        );
        let s1 = store.session("s1").expect("get").expect("row");
        assert!(!s1.is_live(0), "{backend}");
        assert!(store.session("s2").expect("get").expect("row").is_live(0));
        assert_eq!(store.revoke_user_sessions("user-a").expect("everywhere"), 2);
        for id in ["s2", "s3"] {
            assert!(
                !store.session(id).expect("get").expect("row").is_live(0),
                "{backend} {id}"
            );
        }
        assert!(store.session("nope").expect("get").is_none());
        // Expired without a revoke: not live after its end.
        store.create_session("s4", "user-a", 500).expect("session");
        let s4 = store.session("s4").expect("get").expect("row");
        assert!(s4.is_live(499) && !s4.is_live(500), "{backend}");

        // A refresh replaces the pair only if nobody else did first.
        let old = store
            .connection("user-a", "github")
            .expect("get")
            .expect("row")
            .access_token;
        let next = cipher.encrypt("user-a", "ghu_third").expect("encrypts");
        let tokens = gitvista::store::accounts::Tokens {
            access_token: &next,
            refresh_token: None,
            token_expires_at: Some(3_000),
            refresh_expires_at: None,
        };
        assert!(
            store
                .replace_tokens("user-a", "github", &old, &tokens)
                .expect("replaces"),
            "{backend}"
        );
        assert!(
            !store
                .replace_tokens("user-a", "github", &old, &tokens)
                .expect("lost race"),
            "{backend}"
        );
        assert_eq!(
            store
                .connection("user-a", "github")
                .expect("get")
                .map(|c| c.token_expires_at),
            Some(Some(3_000))
        );
        assert_eq!(
            store
                .user_by_forge("github", "7")
                .expect("get")
                .map(|u| u.id),
            Some("user-a".to_string())
        );
        assert!(store.set_plan("user-a", "paid").expect("plan"));
        assert!(
            !store.set_plan("nobody", "paid").expect("plan"),
            "{backend}"
        );

        // Tracking: a private repository, its readers most recently confirmed first, usage.
        let (repo, created) = store
            .upsert_repo_as(
                "p1",
                "https://github.com/a/p",
                "https://github.com/a/p",
                Some(true),
            )
            .expect("upsert");
        assert!(created && repo.is_private, "{backend}");
        let (again, created) = store
            .upsert_repo_as(
                "p1",
                "https://github.com/a/p",
                "https://github.com/a/p",
                Some(false),
            )
            .expect("upsert");
        assert!(
            !created && !again.is_private,
            "{backend}: GitHub's answer is kept"
        );
        assert!(store.set_private("p1", true).expect("private"));
        let other = cipher.encrypt("user-b", "ghu_b").expect("encrypts");
        store
            .sign_in_user("user-b", &crate::store::github_user("8", "bob", &other))
            .expect("bob");
        assert!(
            store
                .grant_access("p1", "user-a", Some(100))
                .expect("grant")
        );
        assert!(
            store
                .grant_access("p1", "user-b", Some(200))
                .expect("grant")
        );
        assert!(
            !store
                .grant_access("p1", "user-a", Some(300))
                .expect("again"),
            "{backend}"
        );
        let readers: Vec<String> = store
            .readers("p1", "github")
            .expect("readers")
            .into_iter()
            .map(|(u, _)| u.id)
            .collect();
        assert_eq!(
            readers,
            ["user-a", "user-b"],
            "{backend}: most recently confirmed first"
        );
        assert_eq!(
            store.access("p1", "user-a").expect("access"),
            Some(Some(300))
        );
        assert_eq!(store.access("p1", "nobody").expect("access"), None);
        assert_eq!(store.tracked_count("user-a").expect("count"), 1);
        assert_eq!(store.tracked("user-a").expect("tracked")[0].id, "p1");
        assert!(store.revoke_access("p1", "user-a").expect("revoke"));
        assert!(
            !store.revoke_access("p1", "user-a").expect("twice"),
            "{backend}"
        );
        assert!(store.is_tracked("p1").expect("tracked"));
        // A confirmation is recorded for who still has access, and never tracks again for
        // who stopped (a recheck racing the user's own untrack).
        assert!(store.confirm_access("p1", "user-b", 400).expect("confirm"));
        assert_eq!(
            store.access("p1", "user-b").expect("access"),
            Some(Some(400))
        );
        assert!(
            !store.confirm_access("p1", "user-a", 400).expect("confirm"),
            "{backend}"
        );
        assert_eq!(store.access("p1", "user-a").expect("access"), None);
        assert!(store.revoke_access("p1", "user-b").expect("revoke"));
        assert!(!store.is_tracked("p1").expect("tracked"), "{backend}");
        assert_eq!(store.users().expect("users").len(), 2);
        assert_eq!(store.all_tokens().expect("tokens").len(), 2);
    });
}

#[test]
fn webhook_deliveries_are_recorded_once_and_hooks_registered_once_on_both_backends() {
    use gitvista::store::webhooks::Delivery;
    both("webhooks", |open| {
        let store = open();
        let backend = store.backend();
        let now = gitvista::store::now();
        let (repo, _) = store
            .upsert_repo(
                "00000000000000aa",
                "https://example.com/o/r",
                "https://example.com/o/r",
            )
            .expect("repo");
        let delivery = |id: &str, repo: Option<&str>, at: i64| Delivery {
            provider: "github".into(),
            delivery_id: id.into(),
            event: "push".into(),
            repo_id: repo.map(String::from),
            outcome: "fetch".into(),
            received_at: at,
        };
        assert!(
            store
                .record_delivery(&delivery("d1", Some(&repo.id), now - 10), "digest-1")
                .expect("first")
        );
        assert!(
            !store
                .record_delivery(&delivery("d1", Some(&repo.id), now), "digest-2")
                .expect("again"),
            "{backend}: a replay is not recorded"
        );
        assert!(
            !store
                .record_delivery(&delivery("d1-replayed", Some(&repo.id), now), "digest-1")
                .expect("the same body"),
            "{backend}: the same body under a new delivery id is a replay"
        );
        // The same id (and body) from another provider is another delivery.
        let mut gitlab = delivery("d1", None, now);
        gitlab.provider = "gitlab".into();
        assert!(store.record_delivery(&gitlab, "digest-1").expect("gitlab"));
        assert!(
            store
                .record_delivery(
                    &delivery("old", Some(&repo.id), now - 40 * 86_400),
                    "digest-3"
                )
                .expect("old")
        );
        let latest = store.deliveries(None, 10).expect("list");
        assert_eq!(latest.len(), 3, "{backend}");
        assert_eq!(latest[0].provider, "gitlab", "{backend}: newest first");
        assert_eq!(store.deliveries(Some(&repo.id), 10).expect("mine").len(), 2);
        assert_eq!(
            store.hooked_since(now - 86_400).expect("hooked"),
            vec![(repo.id.clone(), now - 10)],
            "{backend}"
        );
        assert_eq!(store.prune_deliveries(now - 30 * 86_400).expect("prune"), 1);
        assert_eq!(store.deliveries(None, 10).expect("list").len(), 2);

        // Renamed: found by its new URL, under its old id; a URL another row has is refused.
        let (other, _) = store
            .upsert_repo(
                "00000000000000bb",
                "https://example.com/o/b",
                "https://example.com/o/b",
            )
            .expect("other");
        assert!(
            store
                .set_canonical_url(&repo.id, "https://example.com/o/renamed")
                .expect("moves")
        );
        assert_eq!(
            store
                .repo_by_url("https://example.com/o/renamed")
                .expect("find")
                .map(|r| r.id),
            Some(repo.id.clone())
        );
        assert!(
            !store
                .set_canonical_url(&repo.id, &other.canonical_url)
                .expect("refused")
        );

        assert!(
            store
                .add_registration(&repo.id, "github", "42", None)
                .expect("adds")
        );
        assert!(
            !store
                .add_registration(&repo.id, "github", "43", None)
                .expect("once")
        );
        assert_eq!(
            store
                .registration_by_hook("github", "42")
                .expect("by hook")
                .map(|r| r.repo_id),
            Some(repo.id.clone())
        );
        assert_eq!(store.registrations().expect("all").len(), 1);
        assert_eq!(store.registration_count().expect("count"), 1);
        assert_eq!(
            store
                .registered_among(&[repo.id.clone(), other.id.clone()])
                .expect("among"),
            vec![repo.id.clone()],
            "{backend}"
        );
        // Deleting the repository forgets its registration.
        assert!(store.delete_repo(&repo.id).expect("deletes"));
        assert!(
            store
                .registration(&repo.id, "github")
                .expect("gone")
                .is_none(),
            "{backend}"
        );
    });
}

#[test]
fn jobs_coalesce_run_under_leases_retry_and_are_reaped_on_both_backends() {
    use gitvista::store::jobs::{Enqueued, Fate};
    use gitvista::store::placement::Fence;
    both("jobs", |open| {
        let store = open();
        let backend = store.backend();
        let (a, b) = ("00000000000000a1", "00000000000000b2");
        store
            .upsert_repo(a, "https://example.com/a", "https://example.com/a")
            .expect("repo");
        // n1 owns a (a single node adopting its rows).
        assert_eq!(store.adopt_unowned("n1").expect("adopts"), 1);
        // Its clone is gone (evicted): when n1 dies nobody needs to clone it again.
        store.set_state(a, "evicted", None, None).expect("state");
        store
            .upsert_repo(b, "https://example.com/b", "https://example.com/b")
            .expect("repo");
        // A webhook and a timer asking for the same fetch make one job.
        let Enqueued::New(first) = store.enqueue_job(a, "fetch", 0, None).expect("enqueue") else {
            panic!("{backend}: a new job");
        };
        assert_eq!(
            store.enqueue_job(a, "fetch", 5, None).expect("again"),
            Enqueued::Coalesced(first.clone()),
            "{backend}"
        );
        // Only the owner runs a repository's jobs.
        assert!(
            store
                .claim_job("n2", 60_000, true)
                .expect("claim")
                .is_none(),
            "{backend}: n2 does not own a"
        );
        let claimed = store
            .claim_job("n1", 60_000, false)
            .expect("claim")
            .expect("a job");
        let job = &claimed.job;
        assert_eq!(
            (job.id.as_str(), job.priority, job.attempts, claimed.epoch),
            (first.as_str(), 5, 1, 1)
        );
        assert_eq!(job.locked_by.as_deref(), Some("n1"));
        // While it runs another may be queued, but nobody runs it beside the first.
        let Enqueued::New(second) = store.enqueue_job(a, "fetch", 0, None).expect("enqueue") else {
            panic!("{backend}: queued beside the running one");
        };
        assert!(
            store
                .claim_job("n1", 60_000, true)
                .expect("claim")
                .is_none(),
            "{backend}"
        );
        // Only the holder finishes it.
        assert!(!store.finish_job(&first, "n2").expect("not held"));
        assert!(store.renew_lease(&first, "n1", 60_000).expect("renews"));
        assert!(store.finish_job(&first, "n1").expect("finishes"));
        assert_eq!(store.job(&first).expect("get").expect("row").state, "done");
        // A failure backs off: queued again, not due yet.
        let job = store
            .claim_job("n1", 60_000, false)
            .expect("claim")
            .expect("the second")
            .job;
        assert_eq!(job.id, second);
        let Fate::Retry(at) = store
            .fail_job(&second, "n1", "unreachable", 60_000)
            .expect("fails")
        else {
            panic!("{backend}: retried");
        };
        assert!(
            at > gitvista::store::jobs::now_ms() + 50_000,
            "{backend}: a minute's backoff"
        );
        assert!(
            store
                .claim_job("n1", 60_000, true)
                .expect("claim")
                .is_none(),
            "{backend}: not due"
        );
        assert_eq!(
            store.fail_job(&second, "n2", "again", 0).expect("fate"),
            Fate::NotHeld
        );

        // A clone of a repository nobody owns is claimed only by a node with room, which then
        // owns it under a new epoch.
        store
            .enqueue_job(b, "clone", 10, Some(r#"{"client":"c1"}"#))
            .expect("enqueue");
        assert!(
            store.claim_job("n1", 1, false).expect("claim").is_none(),
            "{backend}: no room, no placement"
        );
        let placed = store
            .claim_job("n1", 1, true)
            .expect("claim")
            .expect("the clone");
        assert_eq!(placed.job.payload.as_deref(), Some(r#"{"client":"c1"}"#));
        assert_eq!(placed.epoch, 1);
        let old = Fence {
            node: "n1".into(),
            epoch: 1,
        };
        assert!(store.holds(b, &old).expect("holds"));
        assert_eq!(store.owned_by("n1").expect("owned").len(), 2);
        // n1 stops renewing and its heartbeat stops (it never registered here): the lease is
        // reaped, the repository re-placed, and the live n2 takes it over.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(store.reap_expired_jobs().expect("reaps"), 1, "{backend}");
        store
            .register_node("n2", "worker", None)
            .expect("registers");
        let moved = store.replace_dead_owners(15_000).expect("re-places");
        assert_eq!(moved, vec![b.to_string()], "{backend}: the served one");
        let row = store.repo(b).expect("repo").expect("row");
        assert_eq!(
            (row.owner.as_deref(), row.epoch, row.state.as_str()),
            (None, 2, "pending")
        );
        assert_eq!(
            store.repo(a).expect("repo").expect("row").owner,
            None,
            "{backend}: a too"
        );
        let again = store
            .claim_job("n2", 60_000, true)
            .expect("claim")
            .expect("reclaimed");
        assert_eq!(
            (again.job.id.as_str(), again.job.attempts, again.epoch),
            (placed.job.id.as_str(), 2, 3)
        );
        // The old owner is fenced off: its job, its writes.
        assert!(
            !store.finish_job(&placed.job.id, "n1").expect("fenced"),
            "{backend}: the stale holder is refused"
        );
        assert!(!store.holds(b, &old).expect("holds"));
        assert!(
            !store
                .set_state_fenced(b, &old, "ready", None)
                .expect("fenced")
        );
        assert!(
            !store
                .set_fetched_fenced(b, &old, Some(9), 1)
                .expect("fenced")
        );
        let new = Fence {
            node: "n2".into(),
            epoch: 3,
        };
        assert!(
            store
                .set_state_fenced(b, &new, "ready", None)
                .expect("current")
        );
        assert_eq!(store.repo(b).expect("repo").expect("row").state, "ready");
        // Per-client and total admission count the queued and running clones.
        let (c1, c2) = (
            store.pending_clones("c1").expect("count"),
            store.pending_clones("c2").expect("count"),
        );
        assert_eq!(c1.mine, 1, "{backend}");
        assert_eq!(c2.mine, 0, "{backend}");
        assert_eq!(c1.waiting, c2.waiting, "{backend}");
        assert_eq!(
            QueueFull::admit(c1.waiting, c1.mine, 1, 10),
            Err(QueueFull::Client(1)),
            "{backend}"
        );
        assert_eq!(QueueFull::admit(c2.waiting, c2.mine, 1, 10), Ok(()));
        // Failing every attempt ends it.
        let job = again.job;
        let mut fate = store.fail_job(&job.id, "n2", "boom", 0).expect("fails");
        while let Fate::Retry(_) = fate {
            let j = store
                .claim_job("n2", 60_000, true)
                .expect("claim")
                .expect("due at once")
                .job;
            fate = store.fail_job(&j.id, "n2", "boom", 0).expect("fails");
        }
        assert_eq!(fate, Fate::Failed);
        let last = store.job(&job.id).expect("get").expect("row");
        assert_eq!(
            (
                last.state.as_str(),
                last.attempts,
                last.error_message.as_deref()
            ),
            ("failed", 5, Some("boom"))
        );
        assert_eq!(
            store.pending_clones("c1").expect("count").mine,
            0,
            "{backend}: c1's ended"
        );
        // Ended jobs are pruned after their time.
        assert_eq!(store.prune_jobs(0).expect("prunes"), 0);
        assert!(
            store
                .prune_jobs(gitvista::store::jobs::now_ms() + 2_000)
                .expect("prunes")
                >= 2
        );

        // Nodes: alive while their heartbeat is young.
        store
            .register_node("w1", "worker", Some("127.0.0.1:9001"))
            .expect("registers");
        store.register_node("web1", "web", None).expect("registers");
        assert!(store.heartbeat("w1").expect("beats"));
        assert!(!store.heartbeat("ghost").expect("unknown"));
        let live = store.live_nodes(15_000).expect("live");
        assert_eq!(
            live.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["n2", "w1", "web1"]
        );
        assert!(store.live_nodes(-1).expect("none").is_empty(), "{backend}");
    });
}

#[test]
fn twenty_claimers_complete_a_thousand_jobs_exactly_once_on_postgresql() {
    let pg = PgDb::create("claimers");
    let store = Store::open(&pg.url(), 24).expect("postgres store");
    for i in 0..1000 {
        let id = format!("{i:016x}");
        let url = format!("https://example.com/r{i}");
        store.upsert_repo(&id, &url, &url).expect("repo");
        store
            .enqueue_job(&id, "clone", i % 3, None)
            .expect("enqueue");
    }
    let done = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..20)
        .map(|w| {
            let (store, done) = (store.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let node = format!("worker-{w}");
                // Each claim places an unowned repository on the claimer.
                while let Some(claimed) = store.claim_job(&node, 30_000, true).expect("claims") {
                    let job = claimed.job;
                    assert_eq!(claimed.epoch, 1, "placed once");
                    assert!(
                        store.finish_job(&job.id, &node).expect("finishes"),
                        "{node} held {}",
                        job.id
                    );
                    done.lock()
                        .expect("lock")
                        .push((job.id, job.repo_id, node.clone()));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a claimer");
    }
    let runs = done.lock().expect("lock").clone();
    // Every repository is owned by the claimer that ran its clone.
    for (_, repo, node) in runs.iter().step_by(37) {
        let row = store.repo(repo).expect("repo").expect("row");
        assert_eq!(row.owner.as_deref(), Some(node.as_str()));
        assert_eq!(row.epoch, 1);
    }
    let mut ids: Vec<String> = runs.into_iter().map(|r| r.0).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (1000, 1000), "every job once, none twice");
    assert_eq!(
        store.count_jobs().expect("counts"),
        vec![("done".to_string(), 1000)]
    );
}

#[test]
fn github_accounts_move_to_connections_keeping_sessions_access_and_hooks() {
    use gitvista::auth::cipher::TokenCipher;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sqlite_url = tmp.path().join("gitvista.db").display().to_string();
    let pg = PgDb::create("forges_upgrade");
    let cipher = TokenCipher::new(&[9; 32], &[]);
    let access = cipher.encrypt("u-old", "ghu_old").expect("encrypts");
    let hex: String = access.iter().map(|b| format!("{b:02x}")).collect();
    for url in [sqlite_url, pg.url()] {
        let store = Store::connect(&url, 2).expect("connects");
        let backend = store.backend();
        // The schema as the release before forges left it: every migration but the last.
        assert_eq!(store.migrate_first(6).expect("old schema"), 6, "{backend}");
        let blob = if backend == "postgres" {
            format!("decode('{hex}', 'hex')")
        } else {
            format!("X'{hex}'")
        };
        let statements = [
            format!(
                "INSERT INTO users (id, github_id, github_login, email, access_token, plan, \
                 created_at, updated_at, token_kind) VALUES ('u-old', 77, 'octo', \
                 'o@example.com', {blob}, 'paid', 1, 2, 'oauth')"
            ),
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at) \
             VALUES ('s-old', 'u-old', 1, 9999999999, 1)"
                .to_string(),
            "INSERT INTO repos (id, canonical_url, display_url, is_private, state, created_at) \
             VALUES ('00000000000000bb', 'https://github.com/octo/p', 'github.com/octo/p', \
             TRUE, 'ready', 1)"
                .to_string(),
            "INSERT INTO repo_access (repo_id, user_id, role, granted_at, checked_at) \
             VALUES ('00000000000000bb', 'u-old', 'viewer', 1, 5)"
                .to_string(),
            "INSERT INTO webhook_registrations (repo_id, provider, hook_id, user_id, created_at) \
             VALUES ('00000000000000bb', 'github', 5, 'u-old', 1)"
                .to_string(),
        ];
        for sql in &statements {
            let done = if backend == "postgres" {
                let mut c = diesel::PgConnection::establish(&url).expect("pg");
                diesel::sql_query(sql).execute(&mut c)
            } else {
                let mut c = diesel::SqliteConnection::establish(&url).expect("sqlite");
                diesel::sql_query(sql).execute(&mut c)
            };
            done.unwrap_or_else(|e| panic!("{backend}: {sql}: {e}"));
        }
        assert_eq!(
            store.migrate().expect("upgrade"),
            5,
            "{backend}: forges, billing, teams, forge facts and regions"
        );
        let user = store.user("u-old").expect("get").expect("kept");
        assert_eq!(
            (
                user.login.as_str(),
                user.plan.as_str(),
                user.email.as_deref()
            ),
            ("octo", "paid", Some("o@example.com")),
            "{backend}"
        );
        let c = store
            .connection("u-old", "github")
            .expect("get")
            .expect("moved");
        assert_eq!(
            (
                c.forge_user_id.as_str(),
                c.login.as_str(),
                c.token_kind.as_str()
            ),
            ("77", "octo", "oauth"),
            "{backend}"
        );
        assert_eq!(
            cipher
                .decrypt("u-old", &c.access_token)
                .expect("decrypts")
                .as_str(),
            "ghu_old",
            "{backend}: the same ciphertext"
        );
        assert!(
            store
                .session("s-old")
                .expect("get")
                .expect("kept")
                .is_live(0),
            "{backend}: rebuilding users removed no session"
        );
        assert_eq!(
            store.access("00000000000000bb", "u-old").expect("access"),
            Some(Some(5)),
            "{backend}"
        );
        assert_eq!(
            store
                .registration("00000000000000bb", "github")
                .expect("get")
                .map(|r| r.hook_id),
            Some("5".to_string()),
            "{backend}"
        );
        assert_eq!(
            store
                .user_by_forge("github", "77")
                .expect("get")
                .map(|u| u.id),
            Some("u-old".to_string())
        );
        // Deleting the user still takes their connections and sessions with it.
        let check = |sql: &str| -> i64 {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let rows: Vec<N> = if backend == "postgres" {
                let mut c = diesel::PgConnection::establish(&url).expect("pg");
                diesel::sql_query(sql).load(&mut c).expect("count")
            } else {
                let mut c = diesel::SqliteConnection::establish(&url).expect("sqlite");
                diesel::sql_query("PRAGMA foreign_keys = ON")
                    .execute(&mut c)
                    .expect("fks");
                diesel::sql_query("DELETE FROM users WHERE id = 'u-old'")
                    .execute(&mut c)
                    .expect("delete");
                diesel::sql_query(sql).load(&mut c).expect("count")
            };
            rows.first().map_or(0, |r| r.n)
        };
        if backend == "postgres" {
            let mut c = diesel::PgConnection::establish(&url).expect("pg");
            diesel::sql_query("DELETE FROM users WHERE id = 'u-old'")
                .execute(&mut c)
                .expect("delete");
        }
        assert_eq!(
            check("SELECT COUNT(*) AS n FROM oauth_connections"),
            0,
            "{backend}: the foreign key survived the rebuild"
        );
        assert_eq!(check("SELECT COUNT(*) AS n FROM sessions"), 0, "{backend}");
    }
}

#[test]
fn forge_accounts_link_to_one_user_once_and_unlinking_ends_what_they_granted() {
    use gitvista::store::accounts::{LinkRefused, SignedIn};
    both("links", |open| {
        let store = open();
        let backend = store.backend();
        let who = |provider, id, login| SignedIn {
            provider,
            forge_user_id: id,
            login,
            email: None,
            name: None,
            avatar_url: None,
            access_token: b"ciphertext",
            refresh_token: None,
            token_expires_at: Some(10),
            refresh_expires_at: None,
            token_kind: "app",
            scopes: "read_user read_api read_repository",
        };
        let alice = store
            .sign_in_user("user-a", &who("github", "1", "alice"))
            .expect("alice");
        let bob = store
            .sign_in_user("user-b", &who("gitlab", "2", "bob"))
            .expect("bob");
        assert_eq!(bob.login, "bob", "{backend}: a GitLab-only user");
        // Alice links her GitLab account; signing in with it finds her.
        assert_eq!(
            store
                .link_connection(&alice.id, &who("gitlab", "3", "alice-gl"))
                .expect("links"),
            Ok(None)
        );
        let again = store
            .sign_in_user("user-new", &who("gitlab", "3", "alice-gl"))
            .expect("signs in");
        assert_eq!(again.id, alice.id, "{backend}");
        assert_eq!(again.login, "alice", "{backend}: her login stays GitHub's");
        // Bob's GitLab account is his.
        assert_eq!(
            store
                .link_connection(&alice.id, &who("gitlab", "2", "bob"))
                .expect("refused"),
            Err(LinkRefused::OtherUser),
            "{backend}"
        );
        let kinds: Vec<String> = store
            .connections(&alice.id)
            .expect("list")
            .into_iter()
            .map(|c| c.provider)
            .collect();
        assert_eq!(kinds, ["github", "gitlab"], "{backend}");
        assert!(
            store
                .connection(&alice.id, "gitlab")
                .expect("get")
                .expect("row")
                .has_scope("read_api")
        );
        // Unlinking GitLab ends access to its private repository and keeps the rest.
        for (id, url) in [
            ("00000000000000c1", "https://gitlab.com/a/private"),
            ("00000000000000c2", "https://github.com/a/public"),
        ] {
            store
                .upsert_repo_as(id, url, url, Some(true))
                .expect("repo");
            store.grant_access(id, &alice.id, Some(1)).expect("grant");
        }
        assert!(
            store
                .unlink(&alice.id, "gitlab", &["00000000000000c1".to_string()])
                .expect("unlinks")
        );
        assert!(
            store
                .connection(&alice.id, "gitlab")
                .expect("get")
                .is_none()
        );
        assert_eq!(
            store.access("00000000000000c1", &alice.id).expect("a"),
            None
        );
        assert!(
            store
                .access("00000000000000c2", &alice.id)
                .expect("a")
                .is_some(),
            "{backend}"
        );
        assert!(
            !store.unlink(&alice.id, "gitlab", &[]).expect("twice"),
            "{backend}"
        );
    });
}
