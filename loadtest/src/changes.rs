//! The changes the harness makes: a commit in a source repository, then (as `--change-via`
//! says) an admin fetch, a signed GitHub `push` delivery, or nothing (the server's poll finds
//! it); and the flood of badly signed deliveries `--bad-webhooks-per-sec` sends beside them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::fleet::{self, Fleet};
use super::target::Watched;
use super::viewer::{Ledger, now_ms};
use super::{ChangeVia, LoadConfig};

/// One change made by the harness.
#[derive(Debug, Clone)]
pub(super) struct Change {
    /// Repository index.
    pub(super) repo: usize,
    /// When the commit existed in the remote (ms since the epoch).
    pub(super) made_ms: f64,
}

/// The changes of a run.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// In the order made; a change's index is its place here.
    pub(super) list: Vec<Change>,
    /// Ticks skipped because every repository still had a change on its way.
    pub(super) skipped: u64,
}

/// One change every `interval` for `duration`, round-robin over repositories whose previous
/// change has reached a viewer (a fetch running when a commit lands would otherwise merge two
/// changes into one delta; they are still matched, but one at a time per repository keeps the
/// latency per change clean).
pub(super) async fn make_changes(
    client: &reqwest::Client,
    fleet: &Fleet,
    repos: &[Watched],
    ledger: &Ledger,
    config: &LoadConfig,
) -> anyhow::Result<Changes> {
    let (interval, duration, drain) = (config.change_interval, config.duration, config.drain());
    let mut out = Changes::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Vec<Option<Instant>> = vec![None; repos.len()];
    let mut next = 0usize;
    let started = Instant::now();
    eprintln!(
        "loadtest: one change every {} ms for {} s",
        interval.as_millis(),
        duration.as_secs()
    );
    while started.elapsed() < duration && out.list.len() < ledger.delivered.len() {
        ticker.tick().await;
        let mut chosen = None;
        for _ in 0..repos.len() {
            let r = next;
            next = (next + 1) % repos.len();
            let free = ledger.pending[r].load(Ordering::Relaxed) == 0
                || last[r].is_some_and(|t| t.elapsed() > drain);
            if free {
                chosen = Some(r);
                break;
            }
        }
        let Some(r) = chosen else {
            out.skipped += 1;
            continue;
        };
        let n = out.list.len();
        let source = fleet.sources[r].clone();
        let (old, hash) =
            tokio::task::spawn_blocking(move || fleet::commit(&source, n as u64)).await??;
        let made_ms = now_ms();
        let Some(k) = ledger.expect(&hash, n) else {
            bail!("git printed no commit id: {hash}");
        };
        ledger.pending[r].store(k, Ordering::Relaxed);
        last[r] = Some(Instant::now());
        out.list.push(Change { repo: r, made_ms });
        match config.change_via {
            ChangeVia::Admin => {
                let resp = client
                    .post(format!(
                        "{}/api/admin/repos/{}/fetch",
                        fleet.base, repos[r].id
                    ))
                    .bearer_auth(&fleet.admin_token)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!(
                        "the admin fetch of {} answered {}",
                        repos[r].id,
                        resp.status()
                    );
                }
            }
            ChangeVia::Webhook => {
                let body = serde_json::to_vec(&serde_json::json!({
                    "ref": "refs/heads/main",
                    "before": old,
                    "after": hash,
                    "created": false,
                    "deleted": false,
                    "forced": false,
                    "repository": {
                        "full_name": format!("loadtest/r{r:04}"),
                        "clone_url": fleet.urls[r],
                        "private": false,
                    },
                    "pusher": {"name": "loadtest"},
                }))?;
                let resp = client
                    .post(format!("{}/webhooks/github", fleet.base))
                    .header("Content-Type", "application/json")
                    .header("X-GitHub-Event", "push")
                    .header("X-GitHub-Delivery", format!("loadtest-{n}-{hash}"))
                    .header(
                        "X-Hub-Signature-256",
                        format!(
                            "sha256={}",
                            gitvista_testkit::github::sign(&fleet.webhook_secret, &body)
                        ),
                    )
                    .body(body)
                    .send()
                    .await?;
                if resp.status().as_u16() != 202 {
                    bail!(
                        "the push delivery for {} answered {}: {}",
                        repos[r].id,
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    );
                }
            }
            ChangeVia::Poll => {}
        }
    }
    Ok(out)
}

/// What the flood of badly signed deliveries met.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FloodReport {
    /// Asked for per second.
    pub per_sec: u32,
    /// Sent.
    pub sent: u64,
    /// Refused with 401 (what every one of them should get).
    pub refused: u64,
    /// Anything else (another status, a failed connection).
    pub other: u64,
}

/// Sends `per_sec` deliveries a second with a wrong signature to `/webhooks/github` for
/// `duration` (an attacker who does not know the secret), at most 64 at once.
pub(super) async fn flood(
    client: reqwest::Client,
    base: String,
    per_sec: u32,
    duration: Duration,
) -> anyhow::Result<FloodReport> {
    let mut report = FloodReport {
        per_sec,
        ..FloodReport::default()
    };
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    // Ticks of 10 ms, each sending its share.
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut owed = 0f64;
    let body = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://example.com/x/y"}}"#;
    while started.elapsed() < duration {
        ticker.tick().await;
        owed += f64::from(per_sec) / 100.0;
        while owed >= 1.0 {
            owed -= 1.0;
            let Ok(permit) = std::sync::Arc::clone(&gate).try_acquire_owned() else {
                // The server is not keeping up with the flood: the harness does not pile on.
                continue;
            };
            let (client, url) = (client.clone(), format!("{base}/webhooks/github"));
            report.sent += 1;
            let n = report.sent;
            tasks.spawn(async move {
                let _permit = permit;
                let resp = client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-GitHub-Event", "push")
                    .header("X-GitHub-Delivery", format!("forged-{n}"))
                    .header(
                        "X-Hub-Signature-256",
                        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
                    )
                    .body(&body[..])
                    .send()
                    .await;
                matches!(resp, Ok(r) if r.status().as_u16() == 401)
            });
        }
        while let Some(done) = tasks.try_join_next() {
            if matches!(done, Ok(true)) {
                report.refused += 1;
            } else {
                report.other += 1;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if matches!(done, Ok(true)) {
            report.refused += 1;
        } else {
            report.other += 1;
        }
    }
    Ok(report)
}
