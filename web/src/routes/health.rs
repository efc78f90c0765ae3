//! `/healthz`.

use actix_web::{HttpResponse, get};

/// Liveness: the server answers.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
