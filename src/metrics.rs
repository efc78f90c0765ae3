//! Prometheus metrics: one global recorder for the process, rendered at `/metrics`, plus the HTTP
//! request counters and latency histograms (by route pattern and status) and process gauges
//! (resident memory, open files) refreshed at each scrape. Actors count their own things through
//! the `metrics` facade.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

/// (resident bytes, open file descriptors) of this process, from /proc.
fn process_stats() -> (u64, u64) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (rss, fds)
}

/// `/metrics`: everything in the Prometheus text format.
#[get("/metrics")]
pub async fn render() -> HttpResponse {
    let (rss, fds) = process_stats();
    metrics::gauge!("gitvista_process_resident_bytes").set(rss as f64);
    metrics::gauge!("gitvista_process_open_fds").set(fds as f64);
    match handle() {
        Some(h) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(h.render()),
        None => HttpResponse::ServiceUnavailable().body("metrics are not recorded in this process"),
    }
}
