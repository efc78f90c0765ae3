//! `/healthz` (liveness) and `/readyz` (readiness).

use actix_web::{HttpResponse, get, http::header, web};

use super::AppState;

/// Liveness: the server answers.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: whether this node can serve now (hosted mode: the database reachable and migrated,
/// Redis on cluster nodes, free disk and git on nodes that run git; see
/// `gitvista_hosting::hosted::readiness`). 200 `{"status": "ready", "checks": {...}}`, else 503
/// with the failing checks named and each check's one-word outcome; 503 `stopping` once the
/// server has begun to stop. Local mode has nothing to wait for: it is ready when it answers.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // Stopping: load balancers should send nobody new here.
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::RETRY_AFTER, "1"))
            .json(serde_json::json!({
                "error": "this node is stopping",
                "code": "stopping",
                "checks": {},
            }));
    }
    let Some(hosted) = &state.hosted else {
        return HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "checks": {} }));
    };
    let readiness = hosted.readiness().await;
    let checks: serde_json::Map<String, serde_json::Value> = readiness
        .checks
        .iter()
        .map(|c| (c.name.to_string(), c.outcome.into()))
        .collect();
    if readiness.ready() {
        return HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "status": "ready", "checks": checks }));
    }
    HttpResponse::ServiceUnavailable()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::RETRY_AFTER, "5"))
        .json(serde_json::json!({
            "error": format!("this node cannot serve now: {}", readiness.failing().join(", ")),
            "code": "not_ready",
            "checks": checks,
        }))
}
