//! Commits-only first clones against a real `git daemon` and `git http-backend` (protocol v2)
//! on loopback: the graph from the commits at once, every route answering before the file
//! contents are here (fetched on demand, or 202 "hydrating"), then the hydration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{fixture, git, git_daemon, hosted_config, spawn_hosted_with};
use crate::hosted::{add_ready, get, status_where};

/// Two bare copies of the `renames` fixture under `tmp/serve`: `filtering.git` (partial clones
/// and wants of any object allowed, as on GitHub) and `plain.git` (neither).
fn sources(tmp: &Path) -> PathBuf {
    let serve = tmp.join("serve");
    let src = fixture("renames", tmp).join("repo");
    for name in ["filtering.git", "plain.git"] {
        gitvista_testkit::bare_clone(&src, &serve.join(name));
    }
    gitvista_testkit::allow_partial_clones(&serve.join("filtering.git"));
    serve
}

async fn contents(base: &str, id: &str) -> Value {
    get(&format!("{base}/api/repos/{id}/repository")).await.1["contents"].clone()
}

/// The answer of `route` for repository `id` (asked again while the client's share of
/// expensive work is spent: this test asks for every diff there is).
async fn answer(base: &str, id: &str, route: &str) -> (u16, Value) {
    for _ in 0..100 {
        let (status, mut v) = get(&format!("{base}/api/repos/{id}/{route}")).await;
        if status != 429 {
            unhighlight(&mut v);
            return (status, v);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{route}: still refused for work after 25 s");
}

/// `v` without syntax highlighting (cut short by its time limit when the machine is busy).
fn unhighlight(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("spans");
            m.remove("highlight");
            m.values_mut().for_each(unhighlight);
        }
        Value::Array(a) => a.iter_mut().for_each(unhighlight),
        _ => {}
    }
}

/// Every hash-addressed answer of the source's history, for one repository: each commit, its
/// changed files, each file's diff, its root tree, and one blob.
async fn every_answer(base: &str, id: &str, src: &Path) -> Vec<(String, u16, Value)> {
    let mut out = Vec::new();
    for c in git(src, &["rev-list", "--all"]).lines() {
        for route in [format!("commit/diff/{c}"), format!("tree/{c}")] {
            let (status, v) = answer(base, id, &route).await;
            out.push((route, status, v));
        }
        let (_, d) = answer(base, id, &format!("commit/diff/{c}")).await;
        for f in d["files"].as_array().into_iter().flatten().take(4) {
            let path = f["path"].as_str().expect("path");
            let route = format!(
                "commit/diff/{c}/file?path={}",
                url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
            );
            let (status, v) = answer(base, id, &route).await;
            out.push((route, status, v));
            if let Some(blob) = f["newHash"].as_str() {
                let route = format!("blob/{blob}");
                let (status, v) = answer(base, id, &route).await;
                out.push((route, status, v));
            }
        }
    }
    out
}

#[actix_rt::test]
async fn a_commits_only_clone_answers_every_route_before_and_after_its_hydration() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = sources(tmp.path());
    let d = git_daemon(&serve);
    let data = tmp.path().join("data");
    // No hydration yet: everything a request needs is fetched for it.
    let (port, stopper, server) = spawn_hosted_with(gitvista::config::HostedConfig {
        hydrate: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let partial = add_ready(&base, &format!("git://127.0.0.1:{}/filtering.git", d.port)).await;
    let whole = add_ready(&base, &format!("git://127.0.0.1:{}/plain.git", d.port)).await;
    assert_eq!(contents(&base, &partial).await, "commits");
    // A server that does not filter gets the plain clone (recorded as whole, not partial).
    assert_eq!(contents(&base, &whole).await, "complete");
    let clone = data.join("repos").join(&partial);
    let src = serve.join("filtering.git");
    assert_eq!(
        git(&clone, &["rev-list", "--all", "--parents"]),
        git(&src, &["rev-list", "--all", "--parents"]),
        "every commit and parent, as git lists them"
    );
    // The graph of the commits-only clone is the whole clone's.
    let (_, a) = answer(&base, &partial, "graph?limit=1000").await;
    let (_, b) = answer(&base, &whole, "graph?limit=1000").await;
    assert_eq!(a["rows"], b["rows"]);
    assert!(a["total"].as_u64().is_some_and(|t| t > 5), "{a}");

    let head = git(&src, &["rev-parse", "HEAD"]);
    let file = git(&src, &["ls-tree", "-r", "--name-only", "HEAD"])
        .lines()
        .next()
        .expect("a file")
        .to_string();
    let blame = format!(
        "tree/blame/{head}?path={}",
        url::form_urlencoded::byte_serialize(file.as_bytes()).collect::<String>()
    );
    // What cannot be fetched for one request waits for the hydration: 202, never 500.
    for route in [blame.as_str(), "search?q=path:doc"] {
        let (status, v) = answer(&base, &partial, route).await;
        assert_eq!(status, 202, "{route}: {v}");
        assert_eq!(v["state"], "hydrating", "{route}");
        assert!(v["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0), "{v}");
    }
    // Every hash-addressed route answers as on the whole clone, its objects fetched for it.
    let on_demand = every_answer(&base, &partial, &src).await;
    let reference = every_answer(&base, &whole, &src).await;
    assert_eq!(on_demand.len(), reference.len(), "{:?}", reference.first());
    for ((route, s1, v1), (_, s2, v2)) in on_demand.iter().zip(&reference) {
        if v1 != v2 {
            let keys: Vec<&String> = v1
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| v2.get(k.as_str()) != Some(v))
                .map(|(k, _)| k)
                .collect();
            panic!(
                "{route}: {keys:?} differ: {:?} vs {:?}",
                keys.first().map(|k| &v1[k.as_str()]),
                keys.first().map(|k| &v2[k.as_str()])
            );
        }
        assert_eq!(s1, s2, "{route}");
        assert_eq!(*s1, 200, "{route}: {v1}");
    }
    // Still partial: fetched objects are what those requests read, nothing more.
    assert_eq!(contents(&base, &partial).await, "commits");
    // Message searches read commits alone.
    let (status, v) = answer(&base, &partial, "search?q=message:Move").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, answer(&base, &whole, "search?q=message:Move").await.1);
    // An object the remote does not have is 404 (asked of the remote once).
    let (status, v) = answer(
        &base,
        &partial,
        "blob/0123456789012345678901234567890123456789",
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("object_not_found"))
    );

    // With hydration on (after a restart), the clone is made whole in the background.
    stopper.stop().await;
    let _ = server.await;
    let (port, stopper, server) = spawn_hosted_with(hosted_config(&data)).await;
    let base = format!("http://127.0.0.1:{port}");
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = contents(&base, &partial).await;
        if seen == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "complete");
    for route in [blame.as_str(), "search?q=path:doc"] {
        let (s1, v1) = answer(&base, &partial, route).await;
        let (s2, v2) = answer(&base, &whole, route).await;
        assert_eq!((s1, &v1), (200, &v2), "{route}");
        assert_eq!(s2, 200);
    }
    assert_eq!(
        every_answer(&base, &partial, &src).await,
        every_answer(&base, &whole, &src).await
    );
    // The admin page's session list says what each clone holds.
    let (_, sessions) = crate::hosted::admin_get(&format!("{base}/api/admin/sessions")).await;
    let listed = sessions.to_string();
    assert!(listed.contains("\"contents\":\"complete\""), "{listed}");
    stopper.stop().await;
    let _ = server.await;
}

#[actix_rt::test]
async fn a_commits_only_clone_over_smart_http_v2_tells_viewers_and_fetches_a_diff_for_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = sources(tmp.path());
    let http = gitvista_testkit::git_http(&serve);
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted_with(gitvista::config::HostedConfig {
        hydrate: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(
        &base,
        &format!("http://127.0.0.1:{}/filtering.git", http.port),
    )
    .await;
    assert_eq!(contents(&base, &id).await, "commits");
    // A viewer is told what the clone holds as soon as it connects.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    let status = status_where(&mut ws, Duration::from_secs(10), |_| true).await;
    assert_eq!(status["contents"], "commits", "{status}");
    // A diff over smart HTTP: its trees, then its files, fetched for it.
    let head = git(&serve.join("filtering.git"), &["rev-parse", "HEAD"]);
    let (s, d) = answer(&base, &id, &format!("commit/diff/{head}")).await;
    assert_eq!(s, 200, "{d}");
    assert!(
        d["files"]
            .as_array()
            .is_some_and(|f| !f.is_empty() && f.iter().all(|f| f["additions"].is_u64())),
        "line counts read the fetched files: {d}"
    );
    let _ = tmp;
}

#[actix_rt::test]
async fn viewers_follow_the_hydration_until_the_clone_is_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = sources(tmp.path());
    let d = git_daemon(&serve);
    // Every connection to the remote waits a second: the hydration runs long enough to watch.
    let slow = gitvista_testkit::delayed_proxy(d.port, Duration::from_secs(1));
    let data = tmp.path().join("data");
    let (port, stopper, server) = spawn_hosted_with(gitvista::config::HostedConfig {
        hydrate: false,
        ..hosted_config(&data)
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{slow}/filtering.git")).await;
    stopper.stop().await;
    let _ = server.await;
    let (port, _stopper, _server) = spawn_hosted_with(hosted_config(&data)).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
            .await
            .expect("connects");
    let first = status_where(&mut ws, Duration::from_secs(20), |_| true).await;
    assert_eq!(first["contents"], "commits", "{first}");
    let last = status_where(&mut ws, Duration::from_secs(20), |v| {
        v["contents"] == "complete"
    })
    .await;
    assert!(last["hydrating"].is_null(), "{last}");
    let (_, r) = get(&format!(
        "http://127.0.0.1:{port}/api/repos/{id}/repository"
    ))
    .await;
    assert_eq!(r["contents"], "complete");
    let _ = tmp;
}
