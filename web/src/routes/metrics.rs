//! `/metrics`: the process's recorder rendered in the Prometheus text format, with the gauges
//! read at each scrape (sessions, repositories by state, bytes queued for viewers).

use actix_web::{HttpResponse, get, web};
use gitvista_actors::supervisor::Inspect;

use super::AppState;
use crate::metrics::{handle, process_stats, queued_bytes};

/// Gauges read at each scrape: sessions by state and viewers by repository (from the
/// Supervisor), repositories by state (hosted mode's store), bytes waiting in viewers' queues.
async fn scrape_gauges(state: &AppState) {
    if let Ok(sessions) = state.supervisor.send(Inspect).await {
        let (mut loading, mut ready, mut failed) = (0, 0, 0);
        for (id, info) in &sessions {
            match (info.loaded, &info.error) {
                (true, _) => ready += 1,
                (false, Some(_)) => failed += 1,
                (false, None) => loading += 1,
            }
            metrics::gauge!("gitvista_repo_viewers", "repo" => id.as_str().to_string())
                .set(info.viewers as f64);
        }
        // Repositories whose session stopped keep their series at 0 rather than vanish.
        let live: std::collections::BTreeSet<String> = sessions
            .iter()
            .map(|(id, _)| id.as_str().to_string())
            .collect();
        let mut seen = SEEN_REPOS.lock().unwrap_or_else(|e| e.into_inner());
        for gone in seen.difference(&live) {
            metrics::gauge!("gitvista_repo_viewers", "repo" => gone.clone()).set(0.0);
        }
        *seen = live;
        for (label, n) in [("loading", loading), ("ready", ready), ("failed", failed)] {
            metrics::gauge!("gitvista_sessions_by_state", "state" => label).set(f64::from(n));
        }
    }
    if let Some(h) = &state.hosted {
        let store = h.store.clone();
        if let Ok(Ok(counts)) = actix_web::web::block(move || store.count_by_state()).await {
            for s in [
                "pending", "cloning", "ready", "fetching", "error", "evicted",
            ] {
                let n = counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                metrics::gauge!("gitvista_repos", "state" => s).set(n as f64);
            }
        }
    }
    let (total, largest) = queued_bytes();
    metrics::gauge!("gitvista_ws_queued_bytes").set(total as f64);
    metrics::gauge!("gitvista_ws_queued_bytes_max").set(largest as f64);
}

/// Repositories given a `gitvista_repo_viewers` series so far.
static SEEN_REPOS: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// `/metrics`: everything in the Prometheus text format. With `GITVISTA_ADMIN_TOKEN` set it needs
/// the token like the admin API (Prometheus: `authorization: {credentials: TOKEN}`), since the
/// per-repository series say what is being watched; without one it is open.
#[get("/metrics")]
pub async fn render(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, gitvista_errors::ApiError> {
    super::admin::authorize_if_configured(&req, &state).await?;
    let (rss, fds) = process_stats();
    metrics::gauge!("gitvista_process_resident_bytes").set(rss as f64);
    metrics::gauge!("gitvista_process_open_fds").set(fds as f64);
    scrape_gauges(&state).await;
    Ok(match handle() {
        Some(h) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(h.render()),
        None => HttpResponse::ServiceUnavailable().body("metrics are not recorded in this process"),
    })
}
