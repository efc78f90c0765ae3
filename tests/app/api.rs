//! The HTTP API of a real server on a free loopback port, over fixture repositories.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{self, fixture, git};

/// Starts the application for `repo`; returns its base URL.
pub(crate) async fn spawn_app(repo: &Path) -> String {
    format!("http://127.0.0.1:{}", helpers::spawn_app(repo).await)
}

/// GET as a well-behaved client: a 429 (the per-client work budget, which a slow machine can
/// exhaust with a cold highlighter; its own tests are in attacks.rs) is retried after its
/// Retry-After, up to three times.
pub(crate) async fn get(url: &str) -> (u16, Value) {
    for _ in 0..3 {
        let resp = reqwest::get(url).await.expect("request");
        let status = resp.status().as_u16();
        if status == 429 {
            actix_rt::time::sleep(helpers::retry_after(&resp)).await;
            continue;
        }
        return (status, resp.json().await.unwrap_or(Value::Null));
    }
    let resp = reqwest::get(url).await.expect("request");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn healthz_repository_and_graph_window_have_the_documented_shape() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;

    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    let (status, summary) = get(&format!("{base}/api/repos/local/repository")).await;
    assert_eq!(status, 200);
    let commits = summary["commits"].as_u64().expect("commits");
    let expected = Command::new("git")
        .args(["--no-replace-objects", "rev-list", "--all", "--count"])
        .current_dir(&repo)
        .output()
        .expect("git");
    assert_eq!(
        commits.to_string(),
        String::from_utf8_lossy(&expected.stdout).trim()
    );
    assert_eq!(summary["head"]["branch"], "refs/heads/main");
    let pull_listed = |summary: &Value| {
        summary["refs"]
            .as_array()
            .expect("refs")
            .iter()
            .any(|r| r["name"] == "refs/pull/1/head" && r["kind"] == "pull")
    };
    assert!(!pull_listed(&summary), "the default view hides pull refs");
    let (_, with_pulls) = get(&format!("{base}/api/repos/local/repository?show=pull")).await;
    assert!(pull_listed(&with_pulls));

    let (status, w) = get(&format!("{base}/api/repos/local/graph?offset=2&limit=5")).await;
    assert_eq!(status, 200);
    let rows = w["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["row"], 2);
    // The default view leaves out what only pull requests and notes reach.
    let default_view = [
        "--no-replace-objects",
        "rev-list",
        "--exclude=refs/pull/*",
        "--exclude=refs/notes/*",
        "--all",
    ];
    let shown: u64 = git(&repo, &[&default_view[..], &["--count"]].concat())
        .parse()
        .expect("count");
    assert!(shown < commits);
    assert_eq!(w["total"].as_u64(), Some(shown));
    let (_, all) = get(&format!(
        "{base}/api/repos/local/graph?limit=1&show=pull,notes,remoteHead"
    ))
    .await;
    assert_eq!(all["total"].as_u64(), Some(commits));
    for r in rows {
        assert_eq!(r["hash"].as_str().map(str::len), Some(40));
        assert!(r["summary"].is_string() && r["author"].is_string() && r["time"].is_i64());
        assert!(r["color"].as_u64().expect("color") < w["colors"].as_u64().expect("colors"));
        for e in r["edges"].as_array().expect("edges") {
            assert!(e["parentRow"].as_u64().expect("row") > r["row"].as_u64().expect("row"));
            assert!(e["color"].is_u64());
        }
    }
    assert!(
        !w["through"].as_array().expect("through").is_empty(),
        "edges pass into row 2"
    );
    let (_, top) = get(&format!("{base}/api/repos/local/graph?limit=1")).await;
    let newest = git(
        &repo,
        &[&default_view[..], &["--date-order", "-n1"]].concat(),
    );
    assert_eq!(top["rows"][0]["hash"], newest);
}

#[actix_rt::test]
async fn errors_are_json_with_codes_and_security_headers_are_set() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    for (path, status, code) in [
        ("/api/repos/nope/repository", 404, "unknown_repo"),
        ("/api/repos/..%2F..%2Fetc/repository", 404, "unknown_repo"),
        ("/api/repos/local/graph?limit=0", 400, "invalid_limit"),
        ("/api/repos/local/graph?limit=100000", 400, "invalid_limit"),
        ("/api/repos/local/graph?offset=-1", 400, "invalid_query"),
        ("/api/repos/local/graph?offset=abc", 400, "invalid_query"),
        ("/no/such/route", 404, "not_found"),
    ] {
        let (got, body) = get(&format!("{base}{path}")).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(body["code"], code, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}"
        );
    }
    let resp = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("request");
    let h = resp.headers();
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self'; img-src 'self' https://avatars.githubusercontent.com"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client
        .get(format!("{base}/"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 302);
    assert_eq!(resp.headers()["location"], "/r/local");
    let (_, past_end) = get(&format!(
        "{base}/api/repos/local/graph?offset=100000&limit=10"
    ))
    .await;
    assert_eq!(past_end["rows"].as_array().map(Vec::len), Some(0));
}

#[actix_rt::test]
async fn a_directory_that_is_not_a_repository_is_a_503_not_a_crash() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = spawn_app(tmp.path()).await;
    let (status, body) = get(&format!("{base}/api/repos/local/repository")).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "repo_unavailable");
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn commit_diff_tree_and_blob_routes_match_git_and_are_cached_forever() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("diffs", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let head = git(&repo, &["rev-parse", "HEAD"]);

    let (status, c) = get(&format!("{base}/api/repos/local/commit/{head}")).await;
    assert_eq!(status, 200);
    assert_eq!(c["hash"], head.as_str());
    assert_eq!(
        c["message"],
        format!("{}\n", git(&repo, &["log", "-1", "--format=%B"]).trim_end())
    );
    assert_eq!(
        c["parents"][0],
        git(&repo, &["rev-parse", "HEAD~1"]).as_str()
    );
    assert_eq!(
        c["author"]["email"],
        git(&repo, &["log", "-1", "--format=%ae"]).as_str()
    );
    assert_eq!(c["row"], 0);

    // "many kinds of change": every status against git diff-tree.
    let many = git(&repo, &["log", "--format=%H", "--grep=many kinds"]);
    let (_, d) = get(&format!("{base}/api/repos/local/commit/diff/{many}")).await;
    let ours: std::collections::BTreeSet<String> = d["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["status"].as_str().expect("status"),
                f["path"].as_str().expect("path")
            )
        })
        .collect();
    let theirs: std::collections::BTreeSet<String> = git(
        &repo,
        &[
            "diff-tree",
            "-r",
            "-M100%",
            "--name-status",
            "--no-commit-id",
            &many,
        ],
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        format!("{} {}", &f[0][..1], f[f.len() - 1].trim_matches('"'))
    })
    .filter(|l| !l.contains('\\'))
    .collect();
    for line in &theirs {
        assert!(ours.contains(line), "{line} missing from {ours:?}");
    }
    let story = d["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "src/story.txt")
        .expect("story");
    assert_eq!(
        (story["additions"].as_u64(), story["deletions"].as_u64()),
        (Some(2), Some(2))
    );

    let (_, t) = get(&format!("{base}/api/repos/local/tree/{head}")).await;
    let names: Vec<String> = t["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_string())
        .collect();
    let ls: Vec<String> = git(
        &repo,
        &[
            "-c",
            "core.quotePath=false",
            "ls-tree",
            "--name-only",
            &head,
        ],
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert_eq!(names.len(), ls.len());
    let blob = git(&repo, &["rev-parse", "HEAD:src/story.txt"]);
    let (_, b) = get(&format!("{base}/api/repos/local/blob/{blob}")).await;
    assert_eq!(
        b["content"],
        format!("{}\n", git(&repo, &["cat-file", "blob", &blob]))
    );
    assert_eq!(
        (b["binary"].as_bool(), b["truncated"].as_bool()),
        (Some(false), Some(false))
    );
    let bin = git(&repo, &["rev-parse", "HEAD:blob.bin"]);
    let (_, b) = get(&format!("{base}/api/repos/local/blob/{bin}")).await;
    assert_eq!(b["binary"], true);

    // Hash-addressed answers: strong ETag, immutable, and 304 on revalidation.
    let client = reqwest::Client::new();
    let url = format!("{base}/api/repos/local/commit/diff/{head}");
    let resp = client.get(&url).send().await.expect("request");
    let etag = resp.headers()["etag"].to_str().expect("ascii").to_string();
    assert_eq!(etag, format!("\"diff.m-{head}\""));
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("immutable")
    );
    let first = resp.bytes().await.expect("body");
    let again = client
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status().as_u16(), 304);
    // Served again from the session's diff cache: the same bytes.
    let cached = client.get(&url).send().await.expect("request");
    assert_eq!(cached.bytes().await.expect("body"), first);

    // The commit route names children and refs, which move: its ETag carries the snapshot
    // version and browsers revalidate it.
    let url = format!("{base}/api/repos/local/commit/{head}");
    let resp = client.get(&url).send().await.expect("request");
    let commit_etag = resp.headers()["etag"].to_str().expect("ascii").to_string();
    assert_eq!(commit_etag, format!("\"commit-{head}-v1\""));
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let again = client
        .get(&url)
        .header("If-None-Match", &commit_etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status().as_u16(), 304);

    for (path, status, code) in [
        (
            "/api/repos/local/commit/xyz".to_string(),
            400,
            "invalid_hash",
        ),
        (
            format!("/api/repos/local/commit/{}", "1".repeat(40)),
            404,
            "object_not_found",
        ),
        (
            format!("/api/repos/local/commit/{blob}"),
            404,
            "object_not_found",
        ),
        (
            format!("/api/repos/local/blob/{head}"),
            404,
            "object_not_found",
        ),
        (
            "/api/repos/local/tree/..%2F..".to_string(),
            400,
            "invalid_hash",
        ),
    ] {
        let (got, body) = get(&format!("{base}{path}")).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path}");
    }
}

#[actix_rt::test]
async fn file_diff_and_blame_routes_match_git() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("diffs", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let commit = git(&repo, &["log", "--format=%H", "--grep=story edit 3"]);
    let (status, d) = get(&format!(
        "{base}/api/repos/local/commit/diff/{commit}/file?path=src/story.txt&context=2"
    ))
    .await;
    assert_eq!(status, 200, "{d}");
    let ours: Vec<String> = d["hunks"]
        .as_array()
        .expect("hunks")
        .iter()
        .flat_map(|h| {
            std::iter::once(h["header"].as_str().expect("header").to_string()).chain(
                h["lines"].as_array().expect("lines").iter().map(|l| {
                    let sign = match l["kind"].as_str().expect("kind") {
                        "added" => '+',
                        "removed" => '-',
                        _ => ' ',
                    };
                    format!("{sign}{}", l["text"].as_str().expect("text"))
                }),
            )
        })
        .collect();
    let theirs: Vec<String> = git(
        &repo,
        &[
            "diff",
            "--histogram",
            "-U2",
            &format!("{commit}~1"),
            &commit,
            "--",
            "src/story.txt",
        ],
    )
    .lines()
    .skip_while(|l| !l.starts_with("@@"))
    .map(|l| {
        if l.starts_with("@@") {
            format!("{} @@", l.split(" @@").next().expect("header"))
        } else {
            l.to_string()
        }
    })
    .collect();
    assert_eq!(ours, theirs);

    let head = git(&repo, &["rev-parse", "HEAD"]);
    let (status, b) = get(&format!(
        "{base}/api/repos/local/tree/blame/{head}?path=src/story.txt"
    ))
    .await;
    assert_eq!(status, 200, "{b}");
    // Each commit named comes with its author, time and subject, as git log has them.
    for (hash, about) in b["commits"].as_object().expect("commits") {
        let theirs = git(&repo, &["log", "-1", "--format=%an%x00%at%x00%s", hash]);
        let theirs: Vec<&str> = theirs.trim_end().split('\0').collect();
        assert_eq!(about["author"], theirs[0], "{hash}");
        assert_eq!(about["time"].to_string(), theirs[1], "{hash}");
        assert_eq!(about["summary"], theirs[2], "{hash}");
    }
    let ours: Vec<(String, u64)> = crate::blame::lines(&b);
    // Every parent, as plain `git blame`.
    let theirs = crate::blame::git_blame(&repo, &[&head, "--", "src/story.txt"]);
    assert_eq!(ours, theirs);
    assert_eq!(
        b["lines"][0]["text"],
        git(&repo, &["show", "HEAD:src/story.txt"])
            .lines()
            .next()
            .expect("line")
    );

    // Blame of what is not a commit: a blob, a tree, an annotated tag's own object.
    let blob = git(&repo, &["rev-parse", "HEAD:src/story.txt"]);
    let tree = git(&repo, &["rev-parse", "HEAD^{tree}"]);
    git(&repo, &["tag", "-a", "-m", "annotated", "blame-tag"]);
    let tag = git(&repo, &["rev-parse", "blame-tag"]);
    for hash in [&blob, &tree, &tag] {
        let (got, body) = get(&format!(
            "{base}/api/repos/local/tree/blame/{hash}?path=src/story.txt"
        ))
        .await;
        assert_eq!(
            (got, body["code"].as_str()),
            (400, Some("not_a_commit")),
            "regression: blame of {hash} answered 503 repo_unavailable: {body}"
        );
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("needs a commit"))
        );
    }

    for (path, status, code) in [
        (
            format!("/api/repos/local/tree/blame/{head}?path=../etc/passwd"),
            400,
            "invalid_path",
        ),
        (
            format!("/api/repos/local/tree/blame/{head}?path=/abs"),
            400,
            "invalid_path",
        ),
        (
            format!("/api/repos/local/tree/blame/{head}?path=no/such/file"),
            404,
            "object_not_found",
        ),
        (
            format!("/api/repos/local/tree/blame/{head}"),
            400,
            "invalid_query",
        ),
        (
            format!("/api/repos/local/tree/blame/{head}?path=src/story.txt&firstParent=2"),
            400,
            "invalid_flag",
        ),
        (
            format!("/api/repos/local/commit/diff/{head}/file?path=src/story.txt"),
            404,
            "object_not_found",
        ),
        (
            format!("/api/repos/local/commit/diff/{head}/file?path=a/../b"),
            400,
            "invalid_path",
        ),
    ] {
        let (got, body) = get(&format!("{base}{path}")).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path}");
    }
}

#[actix_rt::test]
async fn responses_are_compressed_with_the_encoding_the_client_accepts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let url = format!("{base}/api/repos/local/graph?limit=500");
    let client = reqwest::Client::new();
    let plain = client.get(&url).send().await.expect("request");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.expect("body");
    for (accept, chosen) in [
        ("br", "br"),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, deflate, br", "br"),
    ] {
        let resp = client
            .get(&url)
            .header("Accept-Encoding", accept)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.headers()["content-encoding"], chosen, "{accept}");
        assert_eq!(resp.headers()["vary"], "accept-encoding");
        let body = resp.bytes().await.expect("body");
        assert!(
            body.len() * 2 < plain.len(),
            "{accept}: {} of {} bytes",
            body.len(),
            plain.len()
        );
        let mut decoded = Vec::new();
        match chosen {
            "zstd" => decoded = zstd::stream::decode_all(&body[..]).expect("zstd"),
            "br" => brotli::BrotliDecompress(&mut &body[..], &mut decoded).expect("br"),
            _ => {
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut decoded,
                )
                .expect("gzip");
            }
        }
        assert_eq!(decoded, plain, "{accept}: decodes to the plain body");
    }
}

#[actix_rt::test]
async fn search_answers_rows_of_the_commits_git_selects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("search", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let (_, window) = get(&format!("{base}/api/repos/local/graph?limit=2000")).await;
    let row_of = |hash: &str| {
        window["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["hash"] == hash)
            .and_then(|r| r["row"].as_u64())
            .expect("row")
    };
    let rows_of = |args: &[&str]| {
        let mut rows: Vec<u64> = git(&repo, args).lines().map(row_of).collect();
        rows.sort_unstable();
        rows
    };
    for (q, args) in [
        (
            "author:grace -merge:only",
            vec!["rev-list", "--all", "-i", "--author=grace", "--no-merges"],
        ),
        ("path:docs", vec!["rev-list", "--all", "--", "docs"]),
        (
            "fullpath:docs",
            vec!["rev-list", "--all", "--full-history", "--", "docs"],
        ),
        (
            "message:\"issue #42\"",
            vec!["rev-list", "--all", "--grep=issue #42"],
        ),
    ] {
        let url =
            reqwest::Url::parse_with_params(&format!("{base}/api/repos/local/search"), [("q", q)])
                .expect("url");
        let (status, body) = get(url.as_str()).await;
        assert_eq!(status, 200, "{q}: {body}");
        let got: Vec<u64> = body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let expected = rows_of(&args);
        assert!(!expected.is_empty(), "{q}");
        assert_eq!(got, expected, "{q}");
        assert_eq!(body["total"].as_u64(), Some(expected.len() as u64));
        assert_eq!(body["truncated"], false);
    }
    let (_, capped) = get(&format!("{base}/api/repos/local/search?q=engine&limit=1")).await;
    assert_eq!(capped["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(capped["truncated"], true);
    for (path, code) in [
        (
            "/api/repos/local/search?q=merge:sometimes",
            "invalid_search",
        ),
        ("/api/repos/local/search?q=%22open", "invalid_search"),
        ("/api/repos/local/search?q=after:someday", "invalid_search"),
        ("/api/repos/local/search", "invalid_query"),
        ("/api/repos/local/search?q=x&limit=0", "invalid_limit"),
    ] {
        let (status, body) = get(&format!("{base}{path}")).await;
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{path}");
    }
}

#[actix_rt::test]
async fn working_tree_routes_match_git_status_and_git_diff() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("worktree", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let (status, body) = get(&format!("{base}/api/repos/local/working-tree/status")).await;
    assert_eq!(status, 200, "{body}");
    let ours: std::collections::BTreeSet<String> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            format!(
                "{}{} {}",
                e["index"].as_str().expect("x"),
                e["worktree"].as_str().expect("y"),
                e["path"].as_str().expect("path")
            )
        })
        .collect();
    let theirs: std::collections::BTreeSet<String> = git(
        &repo,
        &[
            "status",
            "--porcelain=v1",
            "--no-renames",
            "--untracked-files=normal",
        ],
    )
    .lines()
    .map(|l| l.trim_matches('"').replace("\"", ""))
    .collect();
    assert_eq!(ours, theirs);
    assert!(body["staged"].as_u64() > Some(0) && body["untracked"].as_u64() > Some(0));

    // numstat: additions, deletions, path.
    let numstat = |args: &[&str]| -> (u64, u64) {
        let out = git(&repo, args);
        let mut f = out.split_whitespace();
        (
            f.next().and_then(|x| x.parse().ok()).expect("additions"),
            f.next().and_then(|x| x.parse().ok()).expect("deletions"),
        )
    };
    for (route, path, args) in [
        (
            "working-tree/diff",
            "a.txt",
            vec!["diff", "--numstat", "--", "a.txt"],
        ),
        (
            "working-tree/diff",
            "dir/b.txt",
            vec!["diff", "--numstat", "--", "dir/b.txt"],
        ),
        (
            "index/diff",
            "dir/b.txt",
            vec!["diff", "--cached", "--numstat", "--", "dir/b.txt"],
        ),
        (
            "index/diff",
            "new.txt",
            vec!["diff", "--cached", "--numstat", "--", "new.txt"],
        ),
        (
            "index/diff",
            "staged-gone.txt",
            vec!["diff", "--cached", "--numstat", "--", "staged-gone.txt"],
        ),
    ] {
        let (status, d) = get(&format!("{base}/api/repos/local/{route}?path={path}")).await;
        assert_eq!(status, 200, "{route} {path}: {d}");
        assert_eq!(
            (
                d["additions"].as_u64().expect("a"),
                d["deletions"].as_u64().expect("d")
            ),
            numstat(&args),
            "{route} {path}"
        );
        assert!(!d["hunks"].as_array().expect("hunks").is_empty());
    }
    let (_, untracked) = get(&format!(
        "{base}/api/repos/local/working-tree/diff?path=untracked.txt"
    ))
    .await;
    assert_eq!(
        (
            untracked["status"].as_str(),
            untracked["additions"].as_u64()
        ),
        (Some("A"), Some(1))
    );
    let (_, gone) = get(&format!(
        "{base}/api/repos/local/working-tree/diff?path=gone.txt"
    ))
    .await;
    assert_eq!(
        (gone["status"].as_str(), gone["deletions"].as_u64()),
        (Some("D"), Some(1))
    );

    for (path, status, code) in [
        (
            "/api/repos/local/working-tree/diff?path=.git/config",
            400,
            "invalid_path",
        ),
        (
            "/api/repos/local/working-tree/diff?path=../x",
            400,
            "invalid_path",
        ),
        (
            "/api/repos/local/working-tree/diff?path=nothing-here",
            404,
            "object_not_found",
        ),
        (
            "/api/repos/local/index/diff?path=untracked.txt",
            404,
            "object_not_found",
        ),
        ("/api/repos/local/index/diff", 400, "invalid_query"),
    ] {
        let (got, body) = get(&format!("{base}{path}")).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path}");
    }

    // A bare repository has no work tree.
    let bare = gitvista_testkit::bare_clone(&repo, &tmp.path().join("bare.git"));
    let base = spawn_app(&bare).await;
    let (got, body) = get(&format!("{base}/api/repos/local/working-tree/status")).await;
    assert_eq!((got, body["code"].as_str()), (404, Some("no_work_tree")));
}

#[actix_rt::test]
async fn the_page_and_its_files_are_served_and_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{base}/r/local"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("/static/app.js") && html.contains("<canvas id=\"graph\""));
    for (file, kind) in [
        ("app.js", "javascript"),
        ("graph.js", "javascript"),
        ("style.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let resp = client
            .get(format!("{base}/static/{file}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(resp.status(), 200, "{file}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .contains(kind),
            "{file}"
        );
        let etag = resp.headers()["etag"].clone();
        let again = client
            .get(format!("{base}/static/{file}"))
            .header("If-None-Match", etag)
            .send()
            .await
            .expect("asset");
        assert_eq!(again.status(), 304, "{file}");
    }
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/..%2FCargo.toml",
        "/static/nope.js",
        "/static/",
    ] {
        let (status, body) = get(&format!("{base}{path}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

#[actix_rt::test]
async fn views_filter_the_rows_every_route_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let count = |args: &[&str]| -> u64 {
        let mut all = vec!["--no-replace-objects", "rev-list", "--count"];
        all.extend_from_slice(args);
        git(&repo, &all).parse().expect("count")
    };
    // The default view hides pull requests and notes (and `refs/remotes/*/HEAD`, which adds no
    // commit); `show=` brings them back.
    let standard = ["--exclude=refs/pull/*", "--exclude=refs/notes/*", "--all"];
    for (view, expected) in [
        (
            "noMerges=1",
            Some(count(&[&standard[..], &["--no-merges"]].concat())),
        ),
        (
            "firstParent=1",
            Some(count(&[&standard[..], &["--first-parent"]].concat())),
        ),
        (
            "noMerges=1&show=pull,notes",
            Some(count(&["--all", "--no-merges"])),
        ),
        (
            "show=notes",
            Some(count(&["--exclude=refs/pull/*", "--all"])),
        ),
        ("hide=pull,notes,other,remote&hideGlob=cross*,o?", None),
    ] {
        let (status, w) = get(&format!("{base}/api/repos/local/graph?limit=2000&{view}")).await;
        assert_eq!(status, 200, "{view}: {w}");
        if let Some(expected) = expected {
            assert_eq!(w["total"].as_u64(), Some(expected), "{view}");
        }
        let (_, summary) = get(&format!("{base}/api/repos/local/repository?{view}")).await;
        assert_eq!(summary["rows"], w["total"], "{view}");
        // Rows agree across routes: the commit route and search name the same rows.
        let first = &w["rows"][3];
        let hash = first["hash"].as_str().expect("hash");
        let (_, c) = get(&format!("{base}/api/repos/local/commit/{hash}?{view}")).await;
        assert_eq!(c["row"], first["row"], "{view}");
        let (_, s) = get(&format!(
            "{base}/api/repos/local/search?q=hash:{hash}&{view}"
        ))
        .await;
        assert_eq!(s["rows"][0], first["row"], "{view}");
    }
    // Hiding remotes, pull refs, notes and the replace ref leaves out what only they reach.
    let (_, w) = get(&format!(
        "{base}/api/repos/local/graph?limit=2000&hide=pull,notes,other"
    ))
    .await;
    let hashes: Vec<&str> = w["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["hash"].as_str())
        .collect();
    let pull = git(&repo, &["rev-parse", "refs/pull/1/head"]);
    assert!(
        !hashes.contains(&pull.as_str()),
        "the pull request commit is hidden"
    );

    // Regression: a hidden kind lost its commits but kept its badges on commits still shown
    // (origin/feature stayed on `feature`'s row).
    let names = |refs: &Value| -> Vec<String> {
        refs.as_array()
            .expect("refs")
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    };
    let feature = git(&repo, &["rev-parse", "feature"]);
    for (view, hidden, kept) in [
        (
            "hide=remote",
            "refs/remotes/origin/feature",
            "refs/heads/feature",
        ),
        (
            "hideGlob=feature",
            "refs/heads/feature",
            "refs/remotes/origin/feature",
        ),
    ] {
        let (_, w) = get(&format!("{base}/api/repos/local/graph?limit=2000&{view}")).await;
        let row = w["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["hash"] == feature.as_str())
            .unwrap_or_else(|| panic!("{view}: feature's commit is still shown"));
        let on_row = names(&row["refs"]);
        assert!(
            !on_row.contains(&hidden.to_string()) && on_row.contains(&kept.to_string()),
            "{view}: {on_row:?}"
        );
        let (_, c) = get(&format!("{base}/api/repos/local/commit/{feature}?{view}")).await;
        assert_eq!(names(&c["refs"]), on_row, "{view}: the commit route agrees");
        let (_, summary) = get(&format!("{base}/api/repos/local/repository?{view}")).await;
        let listed = names(&summary["refs"]);
        assert!(
            !listed.contains(&hidden.to_string()) && listed.contains(&kept.to_string()),
            "{view}: {listed:?}"
        );
    }
    for (path, code) in [
        ("/api/repos/local/graph?hide=bogus", "invalid_view"),
        ("/api/repos/local/graph?show=bogus", "invalid_view"),
        ("/api/repos/local/graph?noMerges=maybe", "invalid_view"),
        ("/api/repos/local/graph?since=2w", "invalid_view"),
        ("/api/repos/local/graph?since=after:1d", "invalid_view"),
        ("/api/repos/local/graph?contains=zzzz", "invalid_view"),
        ("/api/repos/local/graph?contains=0000000", "invalid_view"),
        (
            "/api/repos/local/search?q=x&contains=0000000",
            "invalid_view",
        ),
        ("/api/repos/local/repository?since=forever", "invalid_view"),
    ] {
        let (status, body) = get(&format!("{base}{path}")).await;
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{path}");
    }
}

#[actix_rt::test]
async fn diffs_and_files_come_with_syntax_highlighting() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    std::fs::write(repo.join("lib.rs"), "fn one() -> u32 {\n    1\n}\n").expect("write");
    git(&repo, &["add", "lib.rs"]);
    git(&repo, &["commit", "-q", "-m", "rust one"]);
    std::fs::write(
        repo.join("lib.rs"),
        "fn one() -> u32 {\n    1 // one\n}\n\nfn two() -> &'static str {\n    \"two\"\n}\n",
    )
    .expect("write");
    git(&repo, &["commit", "-q", "-am", "rust two"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let base = spawn_app(&repo).await;
    let (status, d) = get(&format!(
        "{base}/api/repos/local/commit/diff/{head}/file?path=lib.rs"
    ))
    .await;
    assert_eq!(status, 200, "{d}");
    let lines: Vec<&Value> = d["hunks"]
        .as_array()
        .expect("hunks")
        .iter()
        .flat_map(|h| h["lines"].as_array().expect("lines"))
        .collect();
    let class_of = |needle: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l["text"].as_str().is_some_and(|t| t.contains(needle)))
            .unwrap_or_else(|| panic!("a line with {needle}"));
        let text: Vec<u16> = line["text"]
            .as_str()
            .expect("text")
            .encode_utf16()
            .collect();
        line["spans"]
            .as_array()
            .expect("spans")
            .iter()
            .filter(|s| {
                let (a, b) = (
                    s[0].as_u64().expect("a") as usize,
                    s[1].as_u64().expect("b") as usize,
                );
                String::from_utf16_lossy(&text[a..b]).contains(needle)
            })
            .map(|s| s[2].as_str().expect("class").to_string())
            .collect()
    };
    assert_eq!(class_of("\"two\""), vec!["str"]);
    assert_eq!(class_of("// one"), vec!["com"]);
    let blob = git(&repo, &["rev-parse", "HEAD:lib.rs"]);
    let (status, b) = get(&format!("{base}/api/repos/local/blob/{blob}?path=lib.rs")).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["spans"].as_array().map(Vec::len), Some(7));
    let (_, plain) = get(&format!("{base}/api/repos/local/blob/{blob}")).await;
    assert!(plain["spans"].is_null(), "no path, no grammar");
}

#[actix_rt::test]
async fn with_a_commit_graph_rows_and_searches_are_git_s_from_the_first_request() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("search", tmp.path()).join("repo");
    git(&repo, &["commit-graph", "write", "--reachable"]);
    let base = spawn_app(&repo).await;
    // The first request may find only the topology read: an author search waits for the rest.
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/repos/local/search"),
        [("q", "author:grace")],
    )
    .expect("url");
    let (status, found) = get(url.as_str()).await;
    assert_eq!(status, 200, "{found}");
    let expected = git(&repo, &["rev-list", "--all", "-i", "--author=grace"]);
    assert_eq!(
        found["total"].as_u64(),
        Some(expected.lines().count() as u64)
    );
    let (_, window) = get(&format!("{base}/api/repos/local/graph?limit=2000")).await;
    let log: std::collections::BTreeMap<String, String> = git(
        &repo,
        &[
            "log",
            "--all",
            "--exclude=refs/pull/*",
            "--format=%H %an <%ae> %at %s",
        ],
    )
    .lines()
    .map(|l| (l[..40].to_string(), l[41..].to_string()))
    .collect();
    let rows: std::collections::BTreeMap<String, String> = window["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let line = format!(
                "{} <{}> {} {}",
                r["author"].as_str().expect("author"),
                r["authorEmail"].as_str().expect("email"),
                r["time"],
                r["summary"].as_str().expect("summary")
            );
            (r["hash"].as_str().expect("hash").to_string(), line)
        })
        .collect();
    assert_eq!(rows, log);
    let (_, summary) = get(&format!("{base}/api/repos/local/repository")).await;
    assert_eq!(summary["commitGraphHint"], Value::Null, "the file is there");
}

#[actix_rt::test]
async fn without_a_commit_graph_the_repository_says_what_one_would_save() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("search", tmp.path()).join("repo");
    let port = helpers::spawn_mode(gitvista::config::Mode::Local {
        repo_path: repo.clone(),
        commit_graph_hint_after: std::time::Duration::ZERO,
        first_screen: Default::default(),
    })
    .await;
    let (status, summary) = get(&format!(
        "http://127.0.0.1:{port}/api/repos/local/repository"
    ))
    .await;
    assert_eq!(status, 200);
    let hint = &summary["commitGraphHint"];
    assert_eq!(
        hint["command"],
        "git commit-graph write --reachable --changed-paths"
    );
    assert!(hint["speedup"].as_f64().expect("speedup") >= 1.0, "{hint}");
    let (first, expected) = (
        hint["firstViewMs"].as_u64().expect("ms"),
        hint["expectedMs"].as_u64().expect("ms"),
    );
    assert!(expected <= first, "{hint}");
    let message = hint["message"].as_str().expect("message");
    assert!(message.contains(&format!("loading {} commits", summary["commits"])));
    // The default threshold (200 ms) keeps a small repository quiet.
    let base = spawn_app(&repo).await;
    let (_, summary) = get(&format!("{base}/api/repos/local/repository")).await;
    assert_eq!(summary["commitGraphHint"], Value::Null);
}

#[actix_rt::test]
async fn renamed_and_edited_files_are_listed_and_diffed_as_git_diff_m_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("renames", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let commit = git(&repo, &["rev-list", "-1", "--grep=Move src/doc/", "HEAD"]);
    let commit = commit.trim();
    // git's numstat with renames: "adds\tdels\t\0old\0new\0" or "adds\tdels\tpath\0".
    let numstat = git(
        &repo,
        &[
            "diff-tree",
            "-r",
            "-M",
            "--numstat",
            "-z",
            "--no-commit-id",
            commit,
        ],
    );
    let mut expected = std::collections::BTreeMap::new();
    let mut items = numstat.split('\0').filter(|s| !s.is_empty());
    while let Some(head) = items.next() {
        let mut f = head.splitn(3, '\t');
        let (adds, dels, path) = (f.next(), f.next(), f.next().unwrap_or_default());
        let path = if path.is_empty() {
            items.next();
            items.next().expect("new path").to_string()
        } else {
            path.to_string()
        };
        let n = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok());
        expected.insert(path, (n(adds), n(dels)));
    }
    let status = git(
        &repo,
        &[
            "diff-tree",
            "-r",
            "-M",
            "--name-status",
            "--no-commit-id",
            commit,
        ],
    );
    let (_, d) = get(&format!("{base}/api/repos/local/commit/diff/{commit}")).await;
    let files = d["files"].as_array().expect("files");
    let ours: Vec<String> = files
        .iter()
        .map(|f| {
            let status = match f["similarity"].as_u64() {
                Some(s) => format!("R{s:03}"),
                None => f["status"].as_str().expect("status").to_string(),
            };
            match f["status"].as_str() {
                Some("R") => format!(
                    "{status}\t{}\t{}",
                    f["oldPath"].as_str().expect("old"),
                    f["newPath"].as_str().expect("new")
                ),
                _ => format!("{status}\t{}", f["path"].as_str().expect("path")),
            }
        })
        .collect();
    assert_eq!(ours, status.lines().collect::<Vec<_>>());
    for f in files {
        let path = f["path"].as_str().expect("path");
        let (adds, dels) = expected[path];
        assert_eq!(
            (f["additions"].as_u64(), f["deletions"].as_u64()),
            (adds, dels),
            "{path}"
        );
    }
    // The renamed and edited file diffs against its old path: two lines changed, not 41 added.
    let url = format!("{base}/api/repos/local/commit/diff/{commit}/file?path=doc/setup.md");
    let (status, file) = get(&url).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["status"], "R");
    assert_eq!(file["oldPath"], "src/doc/setup.md");
    assert_eq!(file["similarity"], 94);
    assert_eq!(
        (file["additions"].as_u64(), file["deletions"].as_u64()),
        (Some(2), Some(2))
    );
}

#[actix_rt::test]
async fn commits_are_found_by_unique_abbreviations_and_say_whether_they_are_in_the_view() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let tree = git(&repo, &["rev-parse", "HEAD^{tree}"]);
    let pull_only = git(
        &repo,
        &["commit-tree", tree.trim(), "-p", "HEAD", "-m", "pull only"],
    );
    let pull_only = pull_only.trim();
    git(&repo, &["update-ref", "refs/pull/1/head", pull_only]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "git@gitlab.com:group/sub/project.git",
        ],
    );
    let base = spawn_app(&repo).await;
    let (_, summary) = get(&format!("{base}/api/repos/local/repository")).await;
    assert_eq!(summary["name"], "repo", "the work tree's directory");
    assert_eq!(
        summary["forge"],
        serde_json::json!({"kind": "gitlab", "url": "https://gitlab.com/group/sub/project"}),
        "the origin remote's forge"
    );
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let head = head.trim();
    for len in [4, 7, 12, 39] {
        let (status, c) = get(&format!("{base}/api/repos/local/commit/{}", &head[..len])).await;
        assert_eq!(status, 200, "{len}: {c}");
        assert_eq!(c["hash"], head);
        assert_eq!(c["reachable"], true);
        assert_eq!(c["row"], 0);
    }
    // Only a hidden ref reaches it: in the graph, not in the default view; shown with show=pull.
    let (_, c) = get(&format!("{base}/api/repos/local/commit/{pull_only}")).await;
    assert_eq!(
        (c["reachable"].clone(), c["row"].clone()),
        (Value::Bool(true), Value::Null)
    );
    let (_, c) = get(&format!(
        "{base}/api/repos/local/commit/{pull_only}?show=pull"
    ))
    .await;
    assert_eq!(c["row"], 0);
    // The shortest prefix shared by two commits is ambiguous: git's own answer, `rev-parse`
    // refusing it, is the oracle.
    let all = git(&repo, &["rev-list", "--all"]);
    let ids: Vec<&str> = all.lines().collect();
    let shared = (4..40)
        .rev()
        .find_map(|n| {
            ids.iter().enumerate().find_map(|(i, a)| {
                ids[i + 1..]
                    .iter()
                    .find(|b| b[..n] == a[..n])
                    .map(|_| a[..n].to_string())
            })
        })
        .filter(|p| p.len() >= 4);
    if let Some(prefix) = shared {
        let (status, e) = get(&format!("{base}/api/repos/local/commit/{prefix}")).await;
        assert_eq!(
            (status, e["code"].as_str()),
            (400, Some("ambiguous_hash")),
            "{prefix}"
        );
    }
    for (bad, status, code) in [
        ("abc", 400, Some("invalid_hash")),
        ("xyz12", 400, Some("invalid_hash")),
        ("ffffffffffff", 404, None),
    ] {
        let (s, e) = get(&format!("{base}/api/repos/local/commit/{bad}")).await;
        assert_eq!(s, status, "{bad}: {e}");
        if let Some(code) = code {
            assert_eq!(e["code"], code);
        }
    }
}

#[actix_rt::test]
async fn only_one_ref_is_its_history_and_bad_names_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    for name in ["refs/heads/feature", "refs/tags/v1"] {
        let (status, w) = get(&format!("{base}/api/repos/local/graph?limit=1&only={name}")).await;
        assert_eq!(status, 200, "{w}");
        let expected = git(
            &repo,
            &["--no-replace-objects", "rev-list", "--count", name],
        );
        assert_eq!(w["total"].to_string(), expected.trim(), "{name}");
    }
    for bad in ["feature", "refs/heads/../x", ""] {
        let (status, e) = get(&format!("{base}/api/repos/local/graph?only={bad}")).await;
        if bad.is_empty() {
            assert_eq!(status, 200, "an empty only= is no filter");
        } else {
            assert_eq!(
                (status, e["code"].as_str()),
                (400, Some("invalid_view")),
                "{bad}"
            );
        }
    }
}

#[actix_rt::test]
async fn show_only_matches_keeps_the_hits_drawn_to_their_nearest_matching_ancestors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("search", tmp.path()).join("repo");
    // With a commit-graph the first view has no authors yet: an author match waits for them.
    git(&repo, &["commit-graph", "write", "--reachable"]);
    let base = spawn_app(&repo).await;
    let in_view = |args: &[&str]| {
        let mut all = vec![
            "--no-replace-objects",
            "rev-list",
            "--exclude=refs/pull/*",
            "--exclude=refs/notes/*",
            "--all",
        ];
        all.extend_from_slice(args);
        git(&repo, &all)
            .lines()
            .map(String::from)
            .collect::<std::collections::BTreeSet<_>>()
    };
    for (q, args) in [
        ("author:grace", &["-i", "--author=grace"][..]),
        ("engine", &["-i", "--grep=engine"][..]),
    ] {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/repos/local/graph?limit=500"),
            [("match", q)],
        )
        .expect("url");
        let (status, w) = get(url.as_str()).await;
        assert_eq!(status, 200, "{w}");
        let hits = in_view(args);
        let rows = w["rows"].as_array().expect("rows");
        let shown: std::collections::BTreeSet<String> = rows
            .iter()
            .map(|r| r["hash"].as_str().expect("hash").to_string())
            .collect();
        assert_eq!(shown, hits, "{q}: the rows are git's hits");
        assert_eq!(w["total"].as_u64(), Some(hits.len() as u64));
        // Every edge leads to a hit that is an ancestor; `root` is git's (no parents at all).
        for r in rows {
            let hash = r["hash"].as_str().expect("hash");
            let parents = git(&repo, &["rev-list", "--parents", "-1", hash]);
            assert_eq!(
                r["root"].as_bool(),
                Some(parents.split_whitespace().count() == 1),
                "{q}: root of {hash}"
            );
            for e in r["edges"].as_array().expect("edges") {
                let parent = e["parent"].as_str().expect("parent");
                let at = e["parentRow"].as_u64().expect("row") as usize;
                assert_eq!(rows[at]["hash"].as_str(), Some(parent), "{q}: its row");
                assert!(hits.contains(parent), "{q}: edge to a hit");
                let ok = std::process::Command::new("git")
                    .current_dir(&repo)
                    .args(["merge-base", "--is-ancestor", parent])
                    .arg(r["hash"].as_str().expect("hash"))
                    .status()
                    .expect("git")
                    .success();
                assert!(ok, "{q}: {parent} is an ancestor");
            }
        }
        // Searching within the view finds every row; a commit outside it has no row.
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/repos/local/search"),
            [("q", q), ("match", q)],
        )
        .expect("url");
        let (_, found) = get(url.as_str()).await;
        assert_eq!(found["total"].as_u64(), Some(hits.len() as u64), "{q}");
        let other = in_view(&[])
            .into_iter()
            .find(|c| !hits.contains(c))
            .expect("a non-hit");
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/repos/local/commit/{other}"),
            [("match", q)],
        )
        .expect("url");
        let (status, c) = get(url.as_str()).await;
        assert_eq!((status, &c["row"]), (200, &Value::Null), "{q}");
    }
    let long = "x".repeat(1001);
    for bad in ["after:notadate", long.as_str()] {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/repos/local/graph"),
            [("match", bad)],
        )
        .expect("url");
        let (status, e) = get(url.as_str()).await;
        assert_eq!((status, e["code"].as_str()), (400, Some("invalid_search")));
    }
}
