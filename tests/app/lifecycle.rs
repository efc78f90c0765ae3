//! Local mode's work against its upstream and the repository overview, with git as the oracle:
//! `git status -sb`, `git rev-list @{u}..HEAD`, `git for-each-ref --sort=-creatordate`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{self, fixture, git};

async fn get(url: &str) -> Value {
    let resp = reqwest::get(url).await.expect("request");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.json().await.expect("json")
}

fn hashes(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|c| c["hash"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn lines(s: String) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[actix_rt::test]
async fn upstream_lifecycle_and_overview_equal_what_git_says() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("lifecycle", tmp.path()).join("repo");
    let base = format!(
        "http://127.0.0.1:{}/api/repos/local",
        helpers::spawn_app(&repo).await
    );

    // The summary carries the upstream, as `git rev-list --left-right --count @{u}...HEAD`.
    let summary = get(&format!("{base}/repository")).await;
    let up = &summary["upstream"];
    let counts = git(
        &repo,
        &["rev-list", "--left-right", "--count", "@{u}...HEAD"],
    );
    let (behind, ahead) = counts.split_once('\t').expect("two counts");
    assert_eq!(up["aheadCount"].to_string(), ahead);
    assert_eq!(up["behindCount"].to_string(), behind);
    assert_eq!(up["status"], "diverged");
    assert_eq!(up["ref"], "refs/remotes/origin/main");
    assert_eq!(up["branchName"], "origin/main");
    assert_eq!(
        up["hash"].as_str(),
        Some(git(&repo, &["rev-parse", "@{u}"]).as_str())
    );
    assert!(
        git(&repo, &["status", "-sb"]).starts_with("## main...origin/main [ahead 2, behind 3]")
    );

    // The lifecycle: what to push, what to merge, and the work tree.
    let life = get(&format!("{base}/lifecycle")).await;
    assert_eq!(life["branch"], "main");
    assert_eq!(
        hashes(&life["ahead"]),
        lines(git(&repo, &["rev-list", "@{u}..HEAD"]))
    );
    assert_eq!(
        hashes(&life["behind"]),
        lines(git(&repo, &["rev-list", "HEAD..@{u}"]))
    );
    assert_eq!(life["ahead"][0]["summary"], "local two");
    let porcelain = git(&repo, &["status", "--porcelain"]);
    for path in ["s.txt", "a.txt", "u.txt"] {
        assert!(
            porcelain.contains(path) && life["status"].to_string().contains(path),
            "{path}"
        );
    }

    // The overview.
    let o = get(&format!("{base}/overview")).await;
    assert_eq!(o["name"], "repo");
    assert_eq!(o["description"], "A tool that shows history.");
    assert_eq!(o["head"]["branch"], "refs/heads/main");
    assert_eq!(o["upstream"]["status"], "diverged");
    let count = |args: &[&str]| git(&repo, args).lines().count() as u64;
    assert_eq!(
        o["counts"]["commits"].as_u64(),
        git(&repo, &["rev-list", "--all", "--count"])
            .parse::<u64>()
            .ok()
    );
    assert_eq!(
        o["counts"]["branches"].as_u64(),
        Some(count(&["for-each-ref", "refs/heads"]))
    );
    assert_eq!(
        o["counts"]["tags"].as_u64(),
        Some(count(&["for-each-ref", "refs/tags"]))
    );
    let recent: Vec<String> = o["recentTags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        recent,
        lines(git(
            &repo,
            &[
                "for-each-ref",
                "--sort=-creatordate",
                "--count=5",
                "--format=%(refname:short)",
                "refs/tags"
            ]
        ))
    );
    let remotes = o["remotes"].to_string();
    assert!(
        remotes.contains("https://example.com/team/tool.git"),
        "{remotes}"
    );
    assert!(!o.to_string().contains("s3cret") && !o.to_string().contains("someone"));

    // Checking out a branch level with its upstream shows it at the next reload.
    git(&repo, &["stash", "-q", "-u"]);
    git(&repo, &["checkout", "-q", "level"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = get(&format!("{base}/repository")).await["upstream"].clone();
        if up["status"] == "up_to_date" {
            assert_eq!(
                (up["aheadCount"].as_u64(), up["behindCount"].as_u64()),
                (Some(0), Some(0))
            );
            break;
        }
        assert!(Instant::now() < deadline, "still {up}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}
