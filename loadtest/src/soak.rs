//! `--soak MINUTES`: the run's load held for that long, sampled once a minute. Each minute
//! records the server's resident memory, open files and threads (from its `/metrics`), the p99
//! of the graph windows and of the fan-out in that minute, and, with the harness's own fleet
//! (unless `--soak-no-pastes`), pastes one new repository (generated then, served by the fleet's `git daemon`) and counts how
//! many of the pasted ones the server has ready. The summary is what a leak would show: memory
//! growth per minute after warm-up (a least-squares slope), and open files and threads at the
//! end against the first minute.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::fleet::Fleet;
use super::stats::{Percentiles, metric, round};
use super::target::scrape;

/// Minutes at the start a soak's growth figure leaves out (caches and pools filling).
pub const WARM_UP_MINUTES: usize = 5;

/// Latencies (ms) recorded since the last sample, by whoever measures them.
#[derive(Debug, Default)]
pub struct Recent(Mutex<Vec<f64>>);

impl Recent {
    /// Records one latency.
    pub fn push(&self, ms: f64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(ms);
    }

    /// The latencies recorded since the last call.
    fn take(&self) -> Vec<f64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One minute of a soak.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakMinute {
    /// 1 for the first minute.
    pub minute: usize,
    /// The server's resident memory (bytes).
    pub rss_bytes: u64,
    /// Its open file descriptors.
    pub open_files: u64,
    /// Its threads.
    pub threads: u64,
    /// Graph windows answered in the minute.
    pub windows: Percentiles,
    /// Fan-out (server stamp to viewer) of the deltas received in the minute.
    pub fanout: Percentiles,
    /// Repositories pasted so far, and how many of them are ready.
    pub pasted: usize,
    pub pasted_ready: usize,
}

/// What a soak found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    /// Every minute, in order.
    pub minutes: Vec<SoakMinute>,
    /// Resident memory growth per minute after [`WARM_UP_MINUTES`] (bytes; least squares).
    pub rss_growth_per_minute_bytes: f64,
    /// Open files and threads in the first minute and the last.
    pub open_files: (u64, u64),
    pub threads: (u64, u64),
}

/// Samples the server at `base` every `minute` for `minutes`, pasting one repository a minute
/// into `fleet` when there is one.
pub(super) async fn sample(
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    fleet: Option<PastingFleet>,
    (minutes, minute): (usize, Duration),
    windows: Arc<Recent>,
    fanout: Arc<Recent>,
) -> SoakReport {
    let mut out = Vec::with_capacity(minutes);
    let mut pasted: Vec<String> = Vec::new();
    let start = tokio::time::Instant::now();
    for m in 1..=minutes {
        if let Some(fleet) = &fleet {
            match fleet.paste(&client, &base, m).await {
                Ok(id) => pasted.push(id),
                Err(e) => eprintln!("loadtest: soak minute {m}: the paste failed: {e:#}"),
            }
        }
        tokio::time::sleep_until(start + minute * m as u32).await;
        let text = scrape(&client, &base, token.as_deref())
            .await
            .unwrap_or_default();
        let gauge = |name| metric(&text, name).unwrap_or(0.0) as u64;
        let mut ready = 0;
        for id in &pasted {
            let status = client
                .get(format!("{base}/api/repos/{id}/status"))
                .send()
                .await;
            if let Ok(r) = status
                && let Ok(v) = r.json::<serde_json::Value>().await
                && v["state"] == "ready"
            {
                ready += 1;
            }
        }
        let sample = SoakMinute {
            minute: m,
            rss_bytes: gauge("gitvista_process_resident_bytes"),
            open_files: gauge("gitvista_process_open_fds"),
            threads: gauge("gitvista_process_threads"),
            windows: Percentiles::of(windows.take()),
            fanout: Percentiles::of(fanout.take()),
            pasted: pasted.len(),
            pasted_ready: ready,
        };
        eprintln!(
            "loadtest: soak minute {m}: rss {:.1} MiB, {} files, {} threads, windows p99 {} ms, fan-out p99 {} ms, {}/{} pasted ready",
            sample.rss_bytes as f64 / 1048576.0,
            sample.open_files,
            sample.threads,
            sample.windows.p99,
            sample.fanout.p99,
            sample.pasted_ready,
            sample.pasted
        );
        out.push(sample);
    }
    summarize(out)
}

/// The report of `minutes`.
pub fn summarize(minutes: Vec<SoakMinute>) -> SoakReport {
    let after: Vec<(f64, f64)> = minutes
        .iter()
        .filter(|m| m.minute > WARM_UP_MINUTES)
        .map(|m| (m.minute as f64, m.rss_bytes as f64))
        .collect();
    let first_last =
        |f: fn(&SoakMinute) -> u64| (minutes.first().map_or(0, f), minutes.last().map_or(0, f));
    SoakReport {
        rss_growth_per_minute_bytes: round(slope(&after)),
        open_files: first_last(|m| m.open_files),
        threads: first_last(|m| m.threads),
        minutes,
    }
}

/// The least-squares slope of `points` (0 with fewer than two).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

/// Where a soak's pastes come from: the fleet's `git daemon`, in a directory it serves.
#[derive(Debug, Clone)]
pub(super) struct PastingFleet {
    sources: std::path::PathBuf,
    url_base: String,
}

impl PastingFleet {
    /// Pastes into `fleet`'s server.
    pub(super) fn of(fleet: &Fleet) -> Option<PastingFleet> {
        let first = fleet.sources.first()?;
        let url = fleet.urls.first()?;
        let name = first.file_name()?.to_string_lossy().to_string();
        Some(PastingFleet {
            sources: first.parent()?.to_path_buf(),
            url_base: url.strip_suffix(&name)?.to_string(),
        })
    }

    /// Generates repository number `n` (100 commits) and pastes its URL; answers its id.
    async fn paste(
        &self,
        client: &reqwest::Client,
        base: &str,
        n: usize,
    ) -> anyhow::Result<String> {
        let name = format!("pasted-{n:04}.git");
        let dest = self.sources.join(&name);
        tokio::task::spawn_blocking(move || super::fleet::generate(&dest, 100, 10_000 + n))
            .await??;
        let resp = client
            .post(format!("{base}/api/repos"))
            .json(&json!({ "url": format!("{}{name}", self.url_base) }))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        body["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("POST /api/repos: {status} {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(m: usize, rss: u64) -> SoakMinute {
        SoakMinute {
            minute: m,
            rss_bytes: rss,
            open_files: 10 + m as u64,
            threads: 7,
            windows: Percentiles::default(),
            fanout: Percentiles::default(),
            pasted: m,
            pasted_ready: m,
        }
    }

    #[test]
    fn growth_is_the_slope_after_warm_up() {
        // Fast growth while warming up, then 1,000 bytes a minute.
        let minutes: Vec<SoakMinute> = (1..=30)
            .map(|m| {
                let rss = if m <= WARM_UP_MINUTES {
                    m as u64 * 1_000_000
                } else {
                    5_000_000 + m as u64 * 1_000
                };
                minute(m, rss)
            })
            .collect();
        let r = summarize(minutes);
        assert_eq!(r.rss_growth_per_minute_bytes, 1000.0);
        assert_eq!(r.open_files, (11, 40));
        assert_eq!(r.threads, (7, 7));
        assert_eq!(
            summarize(vec![minute(1, 5)]).rss_growth_per_minute_bytes,
            0.0
        );
    }
}
