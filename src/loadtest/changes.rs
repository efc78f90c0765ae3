//! The changes the harness makes: a commit in a source repository, then an admin fetch.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::DRAIN;
use super::fleet::{self, Fleet};
use super::target::Watched;
use super::viewer::{Ledger, now_ms};

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
    interval: Duration,
    duration: Duration,
) -> anyhow::Result<Changes> {
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
                || last[r].is_some_and(|t| t.elapsed() > DRAIN);
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
        let hash = tokio::task::spawn_blocking(move || fleet::commit(&source, n as u64)).await??;
        let made_ms = now_ms();
        let Some(k) = ledger.expect(&hash, n) else {
            bail!("git printed no commit id: {hash}");
        };
        ledger.pending[r].store(k, Ordering::Relaxed);
        last[r] = Some(Instant::now());
        out.list.push(Change { repo: r, made_ms });
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
    Ok(out)
}
