//! `/metrics`: the process's recorder rendered in the Prometheus text format, with the gauges
//! read at each scrape (sessions, repositories by state, bytes queued for viewers, and in hosted
//! mode readiness, disk, the job queue's longest wait and the cluster's live nodes).

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
        service_gauges(h).await;
    }
    let (total, largest) = queued_bytes();
    metrics::gauge!("gitvista_ws_queued_bytes").set(total as f64);
    metrics::gauge!("gitvista_ws_queued_bytes_max").set(largest as f64);
}

/// What the alert rules (`deploy/prometheus/alerts.yml`) watch beyond counters: each readiness
/// check (`gitvista_ready{check}`, 1 or 0), this node's disk (free bytes and their floor, clone
/// bytes and their quota) where git runs, the shared queue's longest wait, and the cluster's
/// live nodes with their heartbeats' age, as the store says.
async fn service_gauges(h: &std::sync::Arc<gitvista_hosting::hosted::Hosted>) {
    for check in h.readiness().await.checks {
        metrics::gauge!("gitvista_ready", "check" => check.name).set(if check.outcome == "ok" {
            1.0
        } else {
            0.0
        });
    }
    if h.role.runs_git() {
        metrics::gauge!("gitvista_disk_free_bytes").set(h.free_bytes() as f64);
        metrics::gauge!("gitvista_disk_min_free_bytes").set(h.config.min_free as f64);
        metrics::gauge!("gitvista_disk_quota_bytes").set(h.config.disk_quota as f64);
    }
    let store = h.store.clone();
    let now_ms = gitvista_store::jobs::now_ms();
    let lease = gitvista_cluster::NODE_LEASE.as_millis() as i64;
    let Ok(Ok(figures)) = actix_web::web::block(move || store.service_figures(now_ms, lease)).await
    else {
        return;
    };
    let waited = figures
        .oldest_waiting
        .as_ref()
        .map_or(0, |o| (now_ms - o.due_ms).max(0));
    metrics::gauge!("gitvista_jobs_oldest_waiting_seconds").set(waited as f64 / 1000.0);
    if h.role.runs_git() {
        metrics::gauge!("gitvista_disk_clone_bytes").set(figures.clone_bytes_of(&h.node_id) as f64);
    }
    let nodes = &figures.nodes;
    for role in ["all", "web", "worker"] {
        let n = nodes.iter().filter(|n| n.role == role).count();
        metrics::gauge!("gitvista_cluster_live_nodes", "role" => role).set(n as f64);
    }
    let max_age = nodes.iter().map(|n| n.heartbeat_age_ms).max().unwrap_or(0);
    metrics::gauge!("gitvista_cluster_heartbeat_age_max_seconds").set(max_age as f64 / 1000.0);
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
    let (rss, fds, threads) = process_stats();
    metrics::gauge!("gitvista_process_resident_bytes").set(rss as f64);
    metrics::gauge!("gitvista_process_open_fds").set(fds as f64);
    metrics::gauge!("gitvista_process_threads").set(threads as f64);
    scrape_gauges(&state).await;
    Ok(match handle() {
        Some(h) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(h.render()),
        None => HttpResponse::ServiceUnavailable().body("metrics are not recorded in this process"),
    })
}
