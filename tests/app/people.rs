//! People as the repository's mailmap names them, everywhere the page shows them: rows, commit
//! details, blame and `author:` searches, with `git log --format=%aN` and `git blame` as oracles,
//! and a saved mailmap change shown without a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{self, fixture, git};

async fn get(url: &str) -> Value {
    let resp = reqwest::get(url).await.expect("request");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.json().await.expect("json")
}

/// Every row's (hash, author name, author email).
async fn rows(base: &str) -> BTreeMap<String, (String, String)> {
    let w = get(&format!("{base}/api/repos/local/graph?offset=0&limit=1000")).await;
    w["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("hash"), (s("author"), s("authorEmail")))
        })
        .collect()
}

/// What `git log` shows: hash -> (%aN, %aE).
fn git_authors(repo: &Path) -> BTreeMap<String, (String, String)> {
    git(repo, &["log", "--all", "--format=%H%x00%aN%x00%aE"])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\0').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

#[actix_rt::test]
async fn rows_details_blame_and_searches_show_people_as_the_mailmap_names_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("mailmap", tmp.path()).join("repo");
    let base = format!("http://127.0.0.1:{}", helpers::spawn_app(&repo).await);

    let shown = rows(&base).await;
    assert_eq!(shown, git_authors(&repo));
    assert!(shown.values().any(|(n, _)| n == "René Scharfe"));

    // Details: the mapped committer, and what the commit records.
    let applied = git(
        &repo,
        &["log", "-1", "--format=%H", "--grep=applied by rene"],
    );
    let c = get(&format!("{base}/api/repos/local/commit/{applied}")).await;
    assert_eq!(c["committer"]["name"], "René Scharfe");
    assert_eq!(c["committer"]["email"], "rene@example.org");
    assert_eq!(c["committer"]["recorded"]["name"], "Rene Scharfe");
    assert_eq!(c["committer"]["recorded"]["email"], "RENE@OLD.EXAMPLE");
    assert_eq!(c["author"]["name"], "Unmapped");
    assert!(c["author"]["recorded"].is_null());

    // Blame: each line's author as `git blame` names it (git blame reads the mailmap too).
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let b = get(&format!(
        "{base}/api/repos/local/tree/blame/{head}?path=c.txt"
    ))
    .await;
    let porcelain = git(&repo, &["blame", "--porcelain", &head, "--", "c.txt"]);
    let mut theirs = BTreeMap::new();
    let mut current = String::new();
    for l in porcelain.lines() {
        let first = l.split(' ').next().unwrap_or_default();
        if first.len() == 40 && first.bytes().all(|b| b.is_ascii_hexdigit()) {
            current = first.to_string();
        } else if let Some(name) = l.strip_prefix("author ") {
            theirs.insert(current.clone(), name.to_string());
        }
    }
    let ours: BTreeMap<String, String> = b["commits"]
        .as_object()
        .expect("commits")
        .iter()
        .map(|(h, c)| {
            (
                h.clone(),
                c["author"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(ours, theirs);
    assert!(ours.values().any(|n| n == "Mallory"));

    // author: searches match mapped names, as `git log --author` does.
    let row_of: BTreeMap<String, u64> =
        get(&format!("{base}/api/repos/local/graph?offset=0&limit=1000")).await["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .enumerate()
            .map(|(i, r)| (r["hash"].as_str().unwrap_or_default().to_string(), i as u64))
            .collect();
    for (q, pattern) in [
        ("author:johnny", "johnny"),
        ("author:old.example", "old.example"),
    ] {
        let s = get(&format!("{base}/api/repos/local/search?q={q}")).await;
        let mut ours: Vec<u64> = s["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        ours.sort_unstable();
        let mut theirs: Vec<u64> = git(
            &repo,
            &[
                "log",
                "--all",
                "-i",
                &format!("--author={pattern}"),
                "--format=%H",
            ],
        )
        .lines()
        .map(|h| row_of[h])
        .collect();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{q}");
    }
}

#[actix_rt::test]
async fn a_saved_mailmap_renames_people_without_a_commit_or_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("mailmap", tmp.path()).join("repo");
    let base = format!("http://127.0.0.1:{}", helpers::spawn_app(&repo).await);
    assert!(rows(&base).await.values().any(|(n, _)| n == "Mallory"));

    let mut map = std::fs::read_to_string(repo.join(".mailmap")).expect("reads");
    map.push_str("Mallory Proper <mallory@proper.example> <shared@example.com>\n");
    // Saved, not committed: git log reads the work tree's file, and so does the page.
    std::fs::write(repo.join(".mailmap"), map).expect("writes");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = rows(&base).await;
        if shown.values().any(|(n, _)| n == "Mallory Proper") {
            assert_eq!(shown, git_authors(&repo));
            break;
        }
        assert!(Instant::now() < deadline, "the new name never showed");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}
