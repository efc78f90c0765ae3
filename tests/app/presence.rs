//! Nodes' presence on the PostgreSQL server of this machine: an owner whose session ends is
//! absent at once (a killed process's session ends with its socket), one holding its session is
//! not, nor is one registered too recently to be judged; SQLite has no presence.

use diesel::Connection;
use gitvista::store::Store;
use gitvista_store::presence::take_presence;

use crate::store::PgDb;

/// Registers `node` and makes it the owner of repository `repo` (its clone job claimed there).
fn owner(store: &Store, node: &str, repo: &str) {
    store.register_node(node, "worker", None).expect("register");
    let url = format!("https://example.com/{repo}");
    store.upsert_repo(repo, &url, &url).expect("repo");
    store.enqueue_job(repo, "clone", 1, None).expect("enqueue");
    let claimed = store
        .claim_job(node, 30_000, true)
        .expect("claims")
        .expect("a job");
    assert_eq!(claimed.job.repo_id, repo);
    let row = store.repo(repo).expect("repo").expect("row");
    assert_eq!(row.owner.as_deref(), Some(node));
}

fn absent(store: &Store, started_before: i64) -> Vec<String> {
    let mut nodes = store.absent_owners(started_before).expect("asks");
    nodes.sort();
    nodes
}

#[test]
fn an_owner_whose_session_ends_is_absent_and_one_holding_it_or_too_new_is_not() {
    let pg = PgDb::create("presence");
    let store = Store::open(&pg.url(), 4).expect("postgres store");
    owner(&store, "node-a", "aaaa");
    owner(&store, "node-b", "bbbb");
    store
        .register_node("node-c", "worker", None)
        .expect("register");
    let judged = gitvista_store::jobs::now_ms() + 60_000;

    // node-a holds its presence on a session of its own; node-b never took one; node-c owns
    // nothing and is never judged.
    let mut a = diesel::PgConnection::establish(&pg.url()).expect("connects");
    assert!(take_presence(&mut a, "node-a").expect("asks"));
    let mut second = diesel::PgConnection::establish(&pg.url()).expect("connects");
    assert!(
        !take_presence(&mut second, "node-a").expect("asks"),
        "one session holds a node's presence"
    );
    assert_eq!(absent(&store, judged), ["node-b"]);
    // Nodes registered after the point asked about are not judged yet.
    assert!(absent(&store, 0).is_empty());

    // node-a's session ends (its process is gone): absent, and its presence can be taken again
    // (a restarted process of the same node).
    drop(a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while absent(&store, judged) != ["node-a", "node-b"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the server let go of the session's lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(take_presence(&mut second, "node-a").expect("asks"));
    assert_eq!(absent(&store, judged), ["node-b"]);
}

#[test]
fn sqlite_has_no_presence_and_no_owner_is_ever_absent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("gitvista.db").display().to_string(), 2)
        .expect("sqlite store");
    owner(&store, "node-a", "aaaa");
    assert!(absent(&store, i64::MAX).is_empty());
}
