//! Prometheus metrics: one global recorder for the process (rendered at `/metrics` by
//! `routes::metrics`), the HTTP request counters and latency histograms (by route pattern and
//! status), process figures (resident memory, open files) and the registry of bytes queued for
//! viewers. Actors count their own things through the `metrics` facade. Nothing here knows the
//! routes.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder (installed on first use; `None` if another recorder was installed).
pub fn handle() -> Option<&'static PrometheusHandle> {
    install(None)
}

/// The process's recorder, installed on first use with every series labelled `node` (a node of
/// a cluster: each node's `/metrics` says whose figures they are).
pub fn install(node: Option<&str>) -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            match node {
                Some(id) => builder.add_global_label("node", id),
                None => builder,
            }
            .install_recorder()
            .ok()
            // Series an alert watches exist from the start (a counter never moved is 0, not
            // absent: `rate()` over an absent series says nothing).
            .inspect(|_| metrics::counter!("gitvista_sessions_refused_total").absolute(0))
        })
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

/// (resident bytes, open file descriptors, threads) of this process, from /proc.
pub fn process_stats() -> (u64, u64, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count() as u64);
    (resident_bytes(), fds, threads)
}

/// Every live viewer's count of bytes queued and not yet written, for `/metrics`.
static QUEUES: std::sync::Mutex<Vec<std::sync::Weak<AtomicUsize>>> =
    std::sync::Mutex::new(Vec::new());

/// Adds a viewer's queue counter to [`QUEUES`]. Gone viewers are forgotten here too, whenever
/// the list is full, so it stays within twice the live viewers even if nobody scrapes.
pub fn register_queue(queued: &Arc<AtomicUsize>) {
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    if queues.len() == queues.capacity() {
        queues.retain(|q| q.strong_count() > 0);
    }
    queues.push(Arc::downgrade(queued));
}

/// (total, largest) bytes waiting in viewers' queues now; forgets viewers that are gone.
pub fn queued_bytes() -> (usize, usize) {
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    queues.retain(|q| q.strong_count() > 0);
    queues
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .map(|q| q.load(Ordering::Relaxed))
        .fold((0, 0), |(sum, max), n| (sum + n, max.max(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_registry_forgets_gone_viewers_without_a_scrape() {
        // Regression: gone viewers were only forgotten by /metrics, so a server nobody scraped
        // kept an entry (and its counter's allocation) for every connection ever made.
        let live: Vec<Arc<AtomicUsize>> = (0..10).map(|_| Arc::new(AtomicUsize::new(1))).collect();
        for q in &live {
            register_queue(q);
        }
        for _ in 0..100_000 {
            register_queue(&Arc::new(AtomicUsize::new(0)));
        }
        let len = QUEUES.lock().map(|q| q.len()).unwrap_or(usize::MAX);
        // Other tests in this process may hold a few viewers too.
        assert!(len < 1_000, "{len} entries for 10 live viewers");
        let (total, largest) = queued_bytes();
        assert!(total >= 10 && largest >= 1, "{total} {largest}");
    }
}
