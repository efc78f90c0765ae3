//! The shipped alert rules and dashboard name only metrics the server exports: every
//! `gitvista_*` name in `deploy/prometheus/alerts.yml` and in `deploy/grafana/gitvista.json` is
//! found in a real server's `/metrics` after a smoke run (a clone, a failed clone, a viewer told
//! of a pushed commit, a forged webhook delivery). promtool checks and unit-tests the rules
//! themselves (`./scripts/test`).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::spawn_serve_binary;
use crate::hosted::{add_ready, post, served, wait_state};
use crate::webhooks::{SECRET, commit, delta_with, github, push};

/// The `gitvista_*` names in `text`, as written (`_count`, `_sum` included).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("gitvista_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[actix_rt::test]
async fn every_metric_the_alerts_and_the_dashboard_name_is_one_the_server_exports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, daemon) = served(tmp.path());
    let (_server, base) = spawn_serve_binary(&tmp.path().join("data"), |c| {
        c.env("GITVISTA_GITHUB_WEBHOOK_SECRET", SECRET);
    });
    // A clone, and one that fails.
    let url = format!("git://127.0.0.1:{}/merges", daemon.port);
    let id = add_ready(&base, &url).await;
    let (status, created) = post(&base, &format!("git://127.0.0.1:{}/missing", daemon.port)).await;
    assert!(status == 201 || status == 202, "{status} {created}");
    let missing = created["id"].as_str().expect("id");
    assert_eq!(
        wait_state(&base, missing, &["ready", "error"]).await["state"],
        "error"
    );
    // A viewer, told of a pushed commit.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "{}/api/repos/{id}/ws",
        base.replacen("http", "ws", 1)
    ))
    .await
    .expect("ws");
    let head = commit(&serve.join("merges"), "alerts.txt");
    let (status, body) = github(&base, "push", "alerts-1", &push(&url)).await;
    assert_eq!(status, 202, "{body}");
    delta_with(&mut ws, &head, Duration::from_secs(20))
        .await
        .expect("the viewer hears of the commit");
    // A forged delivery.
    let forged = reqwest::Client::new()
        .post(format!("{base}/webhooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "forged-1")
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body("{}")
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status().as_u16(), 401);

    let exported = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let exported: BTreeSet<String> = exported
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/gitvista.json",
    ] {
        let named = metric_names(&read(file));
        assert!(named.len() >= 10, "{file}: {named:?}");
        let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics the server does not export: {missing:?}\nexported: {exported:?}"
        );
    }
}

#[test]
fn a_misspelt_metric_is_caught() {
    let exported: BTreeSet<String> = ["gitvista_ready".to_string()].into();
    let named = metric_names("expr: gitvista_redy{check=\"redis\"} == 0 and gitvista_ready");
    assert_eq!(
        named
            .iter()
            .filter(|n| !exported.contains(*n))
            .collect::<Vec<_>>(),
        vec!["gitvista_redy"]
    );
}
