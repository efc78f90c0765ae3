//! git 3.0's defaults. Hosted mode: the server runs a git that refuses implicit bare
//! repositories (`safe.bareRepository = explicit`) and makes reftable clones, set through a
//! wrapper given as `GITVISTA_GIT`, and every job on a clone still works (a shallow clone
//! deepened, fetches, a repack and the commit-graph; a commits-only clone over smart HTTP,
//! objects fetched on demand, and its hydration), because every git it runs on a clone names
//! the clone with `--git-dir`; each of SHA-1 and SHA-256 remotes, and a signed generic hook
//! brings a push to a SHA-256 one. Local mode: a SHA-256 work
//! tree whose refs are in reftable is served and followed live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{git, hosted_config, spawn_hosted_with};
use crate::hosted::{add_ready, admin_fetch, get, served_with, wait_state, wait_total};

/// Fixture `name`'s repository made with `object_format` ids (`sha1`, `sha256`).
fn fixture_as(name: &str, tmp: &Path, object_format: &str) -> PathBuf {
    let repo = gitvista_testkit::fixture_with(name, tmp, &[("GIT_DEFAULT_HASH", object_format)])
        .join("repo");
    assert_eq!(
        git(&repo, &["rev-parse", "--show-object-format"]),
        object_format
    );
    repo
}

/// The rows a hosted repository serves, as a set of ids.
async fn served_rows(base: &str, id: &str) -> std::collections::BTreeSet<String> {
    let (status, w) = get(&format!("{base}/api/repos/{id}/graph?limit=1000")).await;
    assert_eq!(status, 200, "{w}");
    w["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["hash"].as_str().expect("hash").to_string())
        .collect()
}

/// What `git rev-list` lists in `repo` with `args`, as a set.
fn listed(repo: &Path, args: &[&str]) -> std::collections::BTreeSet<String> {
    let mut all = vec!["rev-list"];
    all.extend_from_slice(args);
    git(repo, &all).lines().map(str::to_string).collect()
}

/// A git that behaves as 3.0 will by default: bare repositories only when named, and new
/// repositories (the server's clones) keep their refs in reftable.
fn explicit_git(tmp: &Path) -> PathBuf {
    let path = tmp.join("git-explicit");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec git -c safe.bareRepository=explicit -c init.defaultRefFormat=reftable \"$@\"\n",
    )
    .expect("wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // The wrapper does refuse what git 3.0 will: an implicit bare repository.
    let bare = tmp.join("probe.git");
    git(
        tmp,
        &["init", "-q", "--bare", bare.to_str().expect("utf-8")],
    );
    let implicit = std::process::Command::new(&path)
        .args(["rev-parse", "--git-dir"])
        .current_dir(&bare)
        .output()
        .expect("runs");
    assert!(
        !implicit.status.success(),
        "the wrapper refuses an implicit bare repository"
    );
    path
}

fn packs(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects/pack")).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    })
}

/// Polls until `done` holds (bounded: 20 s).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 20 s");
}

#[actix_rt::test]
async fn with_explicit_bare_repositories_a_shallow_clone_deepens_fetches_and_is_maintained() {
    shallow_clone_deepens_fetches_and_is_maintained("sha1").await;
}

#[actix_rt::test]
async fn with_explicit_bare_repositories_a_sha256_shallow_clone_deepens_fetches_and_is_maintained()
{
    shallow_clone_deepens_fetches_and_is_maintained("sha256").await;
}

/// A remote of `object_format` ids over `git daemon`, cloned shallow by a server whose git
/// refuses implicit bare repositories: deepened, fetched ten times, repacked, its commit-graph
/// written, and every commit git lists served with its own id.
async fn shallow_clone_deepens_fetches_and_is_maintained(object_format: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = explicit_git(tmp.path());
    let (serve, d) = served_with(tmp.path(), &[("GIT_DEFAULT_HASH", object_format)]);
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        git: wrapper,
        initial_depth: Some(2),
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    let clone = data.join("repos").join(&id);
    let remote = serve.join("merges");
    assert_eq!(
        git(&remote, &["rev-parse", "--show-object-format"]),
        object_format
    );
    assert!(
        clone.join("reftable/tables.list").is_file(),
        "a reftable clone"
    );
    assert_eq!(
        git(&clone, &["rev-parse", "--show-object-format"]),
        object_format,
        "the clone keeps the remote's object format"
    );

    // Deepened to the whole history (git fetch --unshallow in the clone).
    let expected = gitvista_testkit::full_clone_count(tmp.path(), &remote);
    assert_eq!(wait_total(&base, &id, expected).await, expected);
    assert_eq!(
        served_rows(&base, &id).await,
        listed(&clone, &["--all"]),
        "every commit, by its own id"
    );
    eventually("the clone is no longer shallow", || {
        !clone.join("shallow").exists()
    })
    .await;
    // Its commit-graph (git commit-graph write in the clone).
    let chain = clone.join("objects/info/commit-graphs/commit-graph-chain");
    eventually("a commit-graph", || chain.is_file()).await;
    git(&clone, &["commit-graph", "verify"]);
    // The canonical URL recorded in the clone's config after the clone.
    assert_eq!(
        git(&clone, &["config", "remote.origin.url"]),
        format!("git://127.0.0.1:{}/merges", d.port)
    );

    // Pushes, each fetched; past the pack limit the clone is repacked.
    for i in 0..10 {
        git(
            &remote,
            &["commit", "--allow-empty", "-qm", &format!("push {i}")],
        );
        let head = git(&remote, &["rev-parse", "HEAD"]);
        assert_eq!(admin_fetch(&base, &id).await, 202);
        assert_eq!(
            crate::hosted::commit_status(&base, &id, &head, 200).await,
            200,
            "push {i} fetched and served"
        );
    }
    eventually("repacked", || {
        packs(&clone) <= gitvista_hosting::hosted::fetches::MAX_PACKS
    })
    .await;
    git(&clone, &["fsck", "--connectivity-only", "--no-dangling"]);
    let s = wait_state(&base, &id, &["ready"]).await;
    assert!(s["error"].is_null(), "no job failed: {s}");
}

#[actix_rt::test]
async fn with_explicit_bare_repositories_a_commits_only_clone_fetches_objects_and_hydrates() {
    commits_only_clone_fetches_objects_and_hydrates("sha1").await;
}

#[actix_rt::test]
async fn with_explicit_bare_repositories_a_sha256_commits_only_clone_fetches_objects_and_hydrates()
{
    commits_only_clone_fetches_objects_and_hydrates("sha256").await;
}

/// A remote of `object_format` ids over smart HTTP, cloned commits-only by a server whose git
/// refuses implicit bare repositories: a diff fetches its objects, and a second server
/// hydrates its clone.
async fn commits_only_clone_fetches_objects_and_hydrates(object_format: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = explicit_git(tmp.path());
    let serve = tmp.path().join("serve");
    let src = fixture_as("renames", tmp.path(), object_format);
    gitvista_testkit::bare_clone(&src, &serve.join("filtering.git"));
    gitvista_testkit::allow_partial_clones(&serve.join("filtering.git"));
    let http = gitvista_testkit::git_http(&serve);
    let url = format!("http://127.0.0.1:{}/filtering.git", http.port);

    // Without hydration: a diff fetches its objects into the commits-only clone.
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        git: wrapper.clone(),
        hydrate: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &url).await;
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["contents"], "commits", "{summary}");
    let head = git(&serve.join("filtering.git"), &["rev-parse", "HEAD"]);
    assert_eq!(
        served_rows(&base, &id).await,
        listed(&data.join("repos").join(&id), &["--all"])
    );
    let mut answer = (0, serde_json::Value::Null);
    for _ in 0..100 {
        answer = get(&format!("{base}/api/repos/{id}/commit/diff/{head}")).await;
        if answer.0 != 202 && answer.0 != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(
        answer.1["files"].as_array().map(Vec::len),
        Some(
            git(
                &src,
                &[
                    "diff-tree",
                    "--no-commit-id",
                    "-r",
                    "-M",
                    "--name-only",
                    "HEAD"
                ]
            )
            .lines()
            .count()
        ),
        "{}",
        answer.1
    );

    // With hydration: the clone is made whole in the background.
    let data = tmp.path().join("data-hydrated");
    let (port, _stopper2, _server2) = spawn_hosted_with(gitvista::config::HostedConfig {
        git: wrapper,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &url).await;
    let mut contents = serde_json::Value::Null;
    for _ in 0..400 {
        contents = get(&format!("{base}/api/repos/{id}/repository")).await.1["contents"].clone();
        if contents == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(contents, "complete", "hydrated");
    let s = wait_state(&base, &id, &["ready"]).await;
    assert!(s["error"].is_null(), "no job failed: {s}");
}

/// The next message of type `kind` on `ws` (bounded).
async fn next_of(ws: &mut crate::signin::Socket, kind: &str) -> serde_json::Value {
    use futures_util::StreamExt;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} within 10 s"))
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).expect("json");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[actix_rt::test]
async fn a_sha256_reftable_work_tree_is_served_and_followed_live() {
    let tmp = tempfile::tempdir().expect("tempdir");
    git(
        tmp.path(),
        &[
            "init",
            "-q",
            "-b",
            "main",
            "--object-format=sha256",
            "--ref-format=reftable",
            "repo",
        ],
    );
    let repo = tmp.path().join("repo");
    let write = |name: &str, text: &str| std::fs::write(repo.join(name), text).expect("write");
    write("story.txt", "one\ntwo\nthree\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    git(&repo, &["checkout", "-q", "-b", "topic"]);
    write("story.txt", "one\n2\nthree\n");
    git(&repo, &["commit", "-qam", "on topic"]);
    git(&repo, &["checkout", "-q", "main"]);
    write("other.txt", "x\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "on main"]);
    git(
        &repo,
        &["merge", "-q", "--no-ff", "-m", "merge topic", "topic"],
    );
    git(&repo, &["tag", "-a", "-m", "release", "v1"]);
    let port = crate::helpers::spawn_app(&repo).await;
    let base = format!("http://127.0.0.1:{port}/api/repos/local");

    // The graph: every commit git lists, HEAD on main, the tag.
    let (status, summary) = get(&format!("{base}/repository")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["head"]["branch"], "refs/heads/main", "{summary}");
    let (_, w) = get(&format!("{base}/graph?limit=100")).await;
    let ours: std::collections::BTreeSet<String> = w["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["hash"].as_str().expect("hash").to_string())
        .collect();
    let theirs: std::collections::BTreeSet<String> = git(&repo, &["rev-list", "--all"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours, theirs);
    // A commit's diff, blame, and a search by hash prefix.
    let topic = git(&repo, &["rev-parse", "topic"]);
    let (status, d) = get(&format!("{base}/commit/diff/{topic}")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["files"][0]["path"], "story.txt", "{d}");
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let (status, b) = get(&format!("{base}/tree/blame/{head}?path=story.txt")).await;
    assert_eq!(status, 200, "{b}");
    let ours: Vec<(String, u64)> = crate::blame::lines(&b);
    assert_eq!(
        ours,
        crate::blame::git_blame(&repo, &[&head, "--", "story.txt"])
    );
    assert_eq!(topic.len(), 64, "a SHA-256 id");
    for prefix in [&topic[..10], &topic[..48], &topic[..]] {
        let (status, found) = get(&format!("{base}/search?q=hash:{prefix}")).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["total"], 1, "{prefix}: {found}");
        // An abbreviation names the commit as its whole id does (40 digits abbreviate too).
        let (status, c) = get(&format!("{base}/commit/{prefix}")).await;
        assert_eq!(status, 200, "{prefix}: {c}");
        assert_eq!(c["hash"], topic.as_str(), "{c}");
    }
    let (status, bad) = get(&format!("{base}/commit/{}0", topic)).await;
    assert_eq!(status, 400, "65 digits: {bad}");

    // Live: a commit, a branch made and deleted, a stash.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/local/ws"))
            .await
            .expect("connects");
    next_of(&mut ws, "summary").await;
    write("story.txt", "one\ntwo\nthree\nfour\n");
    git(&repo, &["commit", "-qam", "live"]);
    let live = git(&repo, &["rev-parse", "HEAD"]);
    let d = next_of(&mut ws, "delta").await;
    assert_eq!(d["added"][0], live.as_str(), "{d}");
    git(&repo, &["branch", "made-live"]);
    let d = next_of(&mut ws, "delta").await;
    assert_eq!(d["refs"][0]["name"], "refs/heads/made-live", "{d}");
    git(&repo, &["branch", "-D", "made-live"]);
    let d = next_of(&mut ws, "delta").await;
    assert_eq!(d["refs"][0]["name"], "refs/heads/made-live", "{d}");
    assert_eq!(d["refs"][0]["change"], "deleted", "{d}");
    write("story.txt", "stashed\n");
    git(&repo, &["stash", "-q"]);
    let stash = git(&repo, &["rev-parse", "refs/stash"]);
    let d = next_of(&mut ws, "delta").await;
    assert!(
        d["added"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c == stash.as_str())),
        "{d}"
    );
    // Compaction rewrites the stack: nothing changes for viewers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, before) = get(&format!("{base}/repository")).await;
    git(&repo, &["pack-refs"]);
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/reftable/tables.list"))
            .expect("list")
            .lines()
            .count(),
        1
    );
    let quiet = tokio::time::timeout(Duration::from_millis(1500), next_of(&mut ws, "delta")).await;
    assert!(quiet.is_err(), "no delta for a compaction: {quiet:?}");
    let (_, after) = get(&format!("{base}/repository")).await;
    assert_eq!(
        after["version"], before["version"],
        "a compaction is no change"
    );
}

#[actix_rt::test]
async fn a_generic_hook_brings_a_push_to_a_sha256_repository() {
    // git 3.0's defaults: the remote's ids are SHA-256 (the delivery names a 64-digit one),
    // and the server's git refuses implicit bare repositories and makes reftable clones.
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = explicit_git(tmp.path());
    let (serve, d) = served_with(tmp.path(), &[("GIT_DEFAULT_HASH", "sha256")]);
    let src = serve.join("merges");
    let w = crate::webhooks::hooked_world(&[("GITVISTA_GIT", wrapper.to_str().expect("utf-8"))]);
    let alice = w.sign_in("alice").await;
    let url = format!("git://127.0.0.1:{}/merges", d.port);
    let (id, generic) = crate::webhooks::tracked_with_generic_hook(&w, &alice, &url).await;
    let secret = generic["secret"].as_str().expect("a secret").to_string();
    let head = crate::webhooks::commit(&src, "sha256.txt");
    assert_eq!(head.len(), 64, "a SHA-256 id");
    let body = serde_json::to_vec(&json!({"ref": "refs/heads/main", "after": head})).expect("json");
    let sig = format!("sha256={}", gitvista_testkit::github::sign(&secret, &body));
    let path = format!("/webhooks/generic/{id}");
    let (status, answer) =
        crate::webhooks::deliver(&w.base, &path, &[("X-Hub-Signature-256", sig)], &body).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("fetch")),
        "{answer}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, c) = w
            .get(&format!("/api/repos/{id}/commit/{head}"), Some(&alice))
            .await;
        if status == 200 {
            assert_eq!(c["hash"], head.as_str(), "{c}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fetched and served: {status} {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let clone = w.data.join("repos").join(&id);
    assert!(
        clone.join("reftable/tables.list").is_file(),
        "made by the server's git"
    );
    assert_eq!(
        git(&clone, &["rev-parse", "--show-object-format"]),
        "sha256"
    );
}
