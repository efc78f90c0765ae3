//! A webhook's body is a hint: the attacks of issue 31 against the real server and the fake
//! GitHub. A correctly signed `publicized` delivery, replayed under a new delivery id or sent
//! while GitHub says the repository is private, shows nothing to anyone; a rename is followed
//! only to the same repository (by GitHub's id); and a renamed private repository's old URL,
//! taken by a new public repository, neither flips it public nor lets a stranger in.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::git;
use crate::hosted::admin_metrics;
use crate::signin::World;
use crate::webhooks::{SECRET, hooked_world, send};

/// The count of `gitvista_webhook_hints_total{hint, outcome}` now.
async fn hints(w: &World, hint: &str, outcome: &str) -> u64 {
    let text = admin_metrics(&w.base).await;
    text.lines()
        .filter(|l| l.starts_with("gitvista_webhook_hints_total{"))
        .filter(|l| l.contains(&format!("hint=\"{hint}\"")))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Waits until `hint` has ended `outcome` `n` times (the forge is asked in the background).
async fn hinted(w: &World, hint: &str, outcome: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while hints(w, hint, outcome).await < n {
        assert!(
            Instant::now() < deadline,
            "{hint} never ended {outcome} {n} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What an anonymous visitor gets from repository `id`'s graph.
async fn anonymous_graph(w: &World, id: &str) -> u16 {
    w.get(&format!("/api/repos/{id}/graph"), None).await.0
}

/// Sends `d` again under a new `X-GitHub-Delivery` (the header the signature does not cover).
fn under_new_id(mut d: gitvista_testkit::github::Delivery) -> gitvista_testkit::github::Delivery {
    for h in &mut d.headers {
        if h.0.eq_ignore_ascii_case("X-GitHub-Delivery") {
            h.1 = "00000000-0000-4000-8000-replayed0001".into();
        }
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publicized_delivery_the_forge_does_not_confirm_shows_nothing() {
    let w = hooked_world(&[]);
    w.gh.set_app_hook(&format!("{}/webhooks/github", w.base), SECRET);
    let alice = w.sign_in("alice").await;
    let id = w.track(&alice, &w.repo_url("secret")).await;
    assert_eq!(anonymous_graph(&w, &id).await, 404);

    // Captured once (an admin of the repository sees every delivery's body and signature)...
    let captured = w.gh.deliveries(
        "repository",
        "alice/secret",
        json!({"action": "publicized"}),
    );
    assert_eq!(captured.len(), 1);
    let answers = send(captured.clone()).await;
    assert_eq!(
        (answers[0].0, answers[0].1["outcome"].as_str()),
        (202, Some("visibility")),
        "{answers:?}"
    );
    // ... GitHub says the repository is private: nothing changes.
    hinted(&w, "publicized", "refused", 1).await;
    assert_eq!(anonymous_graph(&w, &id).await, 404, "still private");
    // ... and replayed under a new delivery id, it is the same body: a duplicate.
    let answers = send(vec![under_new_id(captured[0].clone())]).await;
    assert_eq!(
        (answers[0].0, answers[0].1["outcome"].as_str()),
        (200, Some("duplicate")),
        "{answers:?}"
    );
    assert_eq!(anonymous_graph(&w, &id).await, 404);
    let (_, listed) = w.get(&format!("/api/repos?ids={id}"), None).await;
    assert_eq!(listed["repos"], json!([]), "not listed either: {listed}");

    // Made public on GitHub for real: the next delivery is confirmed and everyone sees it.
    w.gh.set_private("alice/secret", false);
    let answers = send(w.gh.deliveries(
        "repository",
        "alice/secret",
        json!({"action": "publicized", "sender": {"login": "alice"}}),
    ))
    .await;
    assert_eq!(answers[0].0, 202, "{answers:?}");
    hinted(&w, "publicized", "confirmed", 1).await;
    assert_eq!(anonymous_graph(&w, &id).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_is_followed_only_when_the_new_name_is_the_same_repository() {
    let w = hooked_world(&[]);
    w.gh.set_app_hook(&format!("{}/webhooks/github", w.base), SECRET);
    let alice = w.sign_in("alice").await;
    let open = w.track(&alice, &w.repo_url("open")).await;
    let url_of = |listed: &Value| listed["repos"][0]["url"].as_str().map(str::to_string);
    let (_, before) = w.get(&format!("/api/repos?ids={open}"), Some(&alice)).await;

    // A delivery says alice/open was renamed to alice/third, another repository GitHub knows.
    let answers = send(w.gh.deliveries(
        "repository",
        "alice/third",
        json!({"action": "renamed", "changes": {"repository": {"name": {"from": "open"}}}}),
    ))
    .await;
    assert_eq!(
        (
            answers[0].0,
            answers[0].1["outcome"].as_str(),
            answers[0].1["repo"].as_str()
        ),
        (202, Some("moved"), Some(open.as_str())),
        "{answers:?}"
    );
    hinted(&w, "moved", "refused", 1).await;
    let (_, after) = w.get(&format!("/api/repos?ids={open}"), Some(&alice)).await;
    assert_eq!(url_of(&after), url_of(&before), "not followed: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_public_repository_at_a_renamed_private_ones_old_name_flips_nothing() {
    let w = hooked_world(&[]);
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    let id = w.track(&alice, &w.repo_url("secret")).await;

    // Alice renames her private repository on GitHub (no hook tells the server), and someone
    // makes a new public repository at its old name.
    let dir = w.root.join("alice");
    std::fs::rename(dir.join("secret"), dir.join("secret-old")).expect("rename on disk");
    w.gh.rename("alice/secret", "alice/secret-old");
    std::fs::create_dir_all(dir.join("secret")).expect("dir");
    git(&dir.join("secret"), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("secret").join("new.txt"), "new").expect("write");
    git(&dir.join("secret"), &["add", "new.txt"]);
    git(
        &dir.join("secret"),
        &["commit", "-q", "-m", "a new repository"],
    );
    w.gh.add_repo(
        "alice/secret",
        false,
        &["alice", "bob"],
        &format!("{}/alice/secret.git", w.gh.url()),
    );

    // Bob pastes the old URL: it names the old row, and GitHub's answer about that URL is
    // another repository: he is not let in and the row stays private.
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&bob),
            json!({"url": w.repo_url("secret")}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert_eq!(anonymous_graph(&w, &id).await, 404, "still private");
    assert_eq!(
        w.get(&format!("/api/repos/{id}/graph"), Some(&bob)).await.0,
        404,
        "Bob reads nothing of the old history"
    );
    let (_, listed) = w.get(&format!("/api/repos?ids={id}"), Some(&alice)).await;
    assert_eq!(listed["repos"][0]["private"], true, "{listed}");
}
