//! Graph windows over HTTP, open-loop.

use std::sync::Arc;
use std::time::Duration;

use super::WINDOW;
use super::target::Watched;

/// Open-loop graph windows at `rate` per second for `duration`: request `i` is due at
/// `start + i / rate` and its latency counts from then, so a stalled server cannot hide.
pub(super) async fn http_load(
    client: reqwest::Client,
    base: String,
    repos: Vec<Watched>,
    rate: u32,
    duration: Duration,
    recent: Option<Arc<crate::soak::Recent>>,
) -> (usize, usize, Vec<f64>) {
    if rate == 0 {
        return (0, 0, Vec::new());
    }
    let total = (u128::from(rate) * duration.as_millis() / 1000) as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below.max(1)
    };
    let base = Arc::new(base);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due).await;
        let r = &repos[random(repos.len() as u64) as usize];
        let offset = random(r.rows.saturating_sub(WINDOW) + 1);
        let url = format!(
            "{base}/api/repos/{}/graph?offset={offset}&limit={WINDOW}",
            r.id
        );
        let (client, recent) = (client.clone(), recent.clone());
        set.spawn(async move {
            let ok = match client.get(url).send().await {
                Ok(resp) if resp.status().is_success() => resp.bytes().await.is_ok(),
                _ => false,
            };
            let ms = due.elapsed().as_secs_f64() * 1000.0;
            if let (true, Some(recent)) = (ok, &recent) {
                recent.push(ms);
            }
            (ok, ms)
        });
    }
    let (mut errors, mut latencies) = (0usize, Vec::with_capacity(total));
    while let Some(done) = set.join_next().await {
        match done {
            Ok((true, ms)) => latencies.push(ms),
            _ => errors += 1,
        }
    }
    (total, errors, latencies)
}
