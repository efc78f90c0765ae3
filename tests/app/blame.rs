//! The blame route in its three modes against `git blame --porcelain`: every parent looking
//! through the revisions `.git-blame-ignore-revs` lists (the default, as GitHub shows it), every
//! parent with nothing ignored, and first parents only.

use serde_json::Value;

use crate::helpers::{self, fixture, git};

/// (commit, original line) per line of git's porcelain blame (`--root`, then `args`).
pub(crate) fn git_blame(repo: &std::path::Path, args: &[&str]) -> Vec<(String, u64)> {
    let mut all = vec!["blame", "--root", "--porcelain"];
    all.extend_from_slice(args);
    git(repo, &all)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let h = f.next()?;
            // A line that opens an entry starts with a whole id: 40 or 64 hex digits.
            if !matches!(h.len(), 40 | 64) || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            Some((h.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

/// (commit, original line) per line of a blame answer.
pub(crate) fn lines(b: &Value) -> Vec<(String, u64)> {
    b["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["commit"].as_str().unwrap_or_default().to_string(),
                l["origLine"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

async fn get(url: &str) -> Value {
    let resp = reqwest::get(url).await.expect("request");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.json().await.expect("json")
}

#[actix_rt::test]
async fn blame_looks_through_listed_revisions_by_default_and_follows_every_parent_or_first_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("blame", tmp.path()).join("repo");
    let base = format!("http://127.0.0.1:{}", helpers::spawn_app(&repo).await);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let url = |q: &str| format!("{base}/api/repos/local/tree/blame/{head}?path=src/core.rs{q}");

    let b = get(&url("")).await;
    assert_eq!(
        lines(&b),
        git_blame(
            &repo,
            &[
                "--ignore-revs-file",
                ".git-blame-ignore-revs",
                &head,
                "--",
                "src/core.rs"
            ]
        )
    );
    assert_eq!(b["ignoreRevs"]["source"], ".git-blame-ignore-revs");
    assert_eq!(b["ignoreRevs"]["count"], 1);
    assert_eq!(b["ignoreRevs"]["applied"], true);
    // The lines the reformat touched are marked as looked through, as git marks them `?`.
    let marked = b["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["ignored"] == true)
        .count();
    let human = git(
        &repo,
        &[
            "-c",
            "blame.markIgnoredLines=true",
            "blame",
            "--root",
            "--ignore-revs-file",
            ".git-blame-ignore-revs",
            "-s",
            &head,
            "--",
            "src/core.rs",
        ],
    );
    assert_eq!(marked, human.lines().filter(|l| l.starts_with('?')).count());
    assert!(marked > 0);

    let plain = get(&url("&ignoreRevs=0")).await;
    assert_eq!(
        lines(&plain),
        git_blame(&repo, &[&head, "--", "src/core.rs"])
    );
    assert_eq!(plain["ignoreRevs"]["applied"], false);
    assert_ne!(lines(&plain), lines(&b));

    let first = get(&url("&ignoreRevs=0&firstParent=1")).await;
    assert_eq!(first["firstParent"], true);
    assert_eq!(
        lines(&first),
        git_blame(&repo, &["--first-parent", &head, "--", "src/core.rs"])
    );
    // On this history, first parents credit the bot's merges with what the pull requests wrote.
    let bors: Vec<String> = git(&repo, &["log", "--format=%H", "--author=bors"])
        .lines()
        .map(str::to_string)
        .collect();
    let by_bors = |v: &Value| lines(v).iter().filter(|(c, _)| bors.contains(c)).count();
    assert!(
        by_bors(&first) > by_bors(&plain),
        "{} vs {}",
        by_bors(&first),
        by_bors(&plain)
    );
}
