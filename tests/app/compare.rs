//! Two commits compared: the files `git diff -M A B` lists with their line counts, and the
//! commits of `git log A..B` and `git log B..A`.

use serde_json::Value;

use crate::helpers::{self, fixture, git};

async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.expect("request");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn compare_lists_what_git_diff_and_git_log_list() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("renames", tmp.path()).join("repo");
    let base = format!(
        "http://127.0.0.1:{}/api/repos/local",
        helpers::spawn_app(&repo).await
    );
    for (a, b) in [("HEAD~5", "HEAD"), ("HEAD", "HEAD~2"), ("HEAD~1", "HEAD~1")] {
        let (a, b) = (git(&repo, &["rev-parse", a]), git(&repo, &["rev-parse", b]));
        // Abbreviations work as in every hash-addressed route.
        let (status, c) = get(&format!("{base}/compare/{}...{}", &a[..10], &b[..10])).await;
        assert_eq!(status, 200, "{c}");
        let mut ours: Vec<String> = c["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                let path = f["path"].as_str().unwrap_or_default();
                match f["status"].as_str() {
                    Some("R") => format!("R {} {path}", f["oldPath"].as_str().unwrap_or_default()),
                    Some(s) => format!("{s} {path}"),
                    None => String::new(),
                }
            })
            .collect();
        ours.sort();
        let mut theirs: Vec<String> = git(&repo, &["diff", "--name-status", "-M", &a, &b])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                match f.as_slice() {
                    [s, old, new] if s.starts_with('R') => format!("R {old} {new}"),
                    [s, path] => format!("{s} {path}"),
                    _ => l.to_string(),
                }
            })
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs, "{a}...{b}");
        let hashes = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("commits")
                .iter()
                .map(|x| x["hash"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let lines = |s: String| -> Vec<String> { s.lines().map(str::to_string).collect() };
        assert_eq!(
            hashes(&c["onlyB"]),
            lines(git(&repo, &["rev-list", &format!("{a}..{b}")]))
        );
        assert_eq!(
            hashes(&c["onlyA"]),
            lines(git(&repo, &["rev-list", &format!("{b}..{a}")]))
        );
    }
    let (status, body) = get(&format!("{base}/compare/HEAD")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_compare"))
    );
    // One file's diff from A to B: the lines `git diff --numstat` counts.
    let (a, b) = (
        git(&repo, &["rev-parse", "HEAD~5"]),
        git(&repo, &["rev-parse", "HEAD"]),
    );
    let numstat = git(&repo, &["diff", "--numstat", "-M", &a, &b]);
    let (added, deleted, path) = numstat
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 3 && f[0] != "-" && !f[2].contains("=>"))
                .then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .next()
        .expect("a changed text file");
    let (status, d) = get(&format!("{base}/compare/{a}...{b}/file?path={path}")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(
        (d["additions"].to_string(), d["deletions"].to_string()),
        (added, deleted)
    );
}
