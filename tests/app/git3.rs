//! Hosted mode under git 3.0's defaults: the server runs a git that refuses implicit bare
//! repositories (`safe.bareRepository = explicit`, set through a wrapper given as
//! `GITVISTA_GIT`), and every job on a clone still works (a shallow clone deepened, fetches,
//! a repack and the commit-graph; a commits-only clone over smart HTTP, objects fetched on
//! demand, and its hydration), because every git it runs on a clone names the clone with
//! `--git-dir`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{git, hosted_config, spawn_hosted_with};
use crate::hosted::{add_ready, admin_fetch, get, served, wait_state, wait_total};

/// A git that behaves as 3.0 will by default: bare repositories only when named.
fn explicit_git(tmp: &Path) -> PathBuf {
    let path = tmp.join("git-explicit");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec git -c safe.bareRepository=explicit \"$@\"\n",
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = explicit_git(tmp.path());
    let (serve, d) = served(tmp.path());
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

    // Deepened to the whole history (git fetch --unshallow in the clone).
    let expected = gitvista_testkit::full_clone_count(tmp.path(), &remote);
    assert_eq!(wait_total(&base, &id, expected).await, expected);
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
        let mut status = 0;
        for _ in 0..200 {
            (status, _) = get(&format!("{base}/api/repos/{id}/commit/{head}")).await;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, 200, "push {i} fetched and served");
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = explicit_git(tmp.path());
    let serve = tmp.path().join("serve");
    let src = crate::helpers::fixture("renames", tmp.path()).join("repo");
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
