//! Prometheus metrics: one global recorder for the process, rendered at `/metrics`, plus the HTTP
//! request counters and latency histograms (by route pattern and status) and process gauges
//! (resident memory, open files) refreshed at each scrape. Actors count their own things through
//! the `metrics` facade.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, get, web};
use gitvista_actors::supervisor::Inspect;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::routes::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder (installed on first use; `None` if another recorder was installed).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Counts every request by route pattern and status, and times it.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    metrics::counter!("gitvista_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("gitvista_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}

/// This process's resident memory in bytes, from /proc (0 where there is none).
pub fn resident_bytes() -> u64 {
    resident_bytes_of("self")
}

/// Resident memory in bytes of process `pid` (a number, or `self`), from /proc (0 if unknown).
pub fn resident_bytes_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// (resident bytes, open file descriptors) of this process, from /proc.
fn process_stats() -> (u64, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (resident_bytes(), fds)
}

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
    let (total, largest) = crate::ws::queued_bytes();
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
) -> Result<HttpResponse, crate::error::ApiError> {
    crate::routes::admin::authorize_if_configured(&req, &state)?;
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
