//! Pages. The web UI is built in its own issue; until then `/r/:id` is a minimal page.

use actix_web::{HttpResponse, get, web};

/// Local mode serves one repository: `/` goes straight to it.
#[get("/")]
pub async fn index() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/r/local"))
        .finish()
}

/// The graph page.
#[get("/r/{id}")]
pub async fn graph_page(id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>GitVista</title></head>\
             <body><h1>GitVista</h1><p>Repository <code>{safe}</code>: the graph is served at \
             <a href=\"/api/repos/{safe}/graph\">/api/repos/{safe}/graph</a>.</p></body></html>"
        ))
}
