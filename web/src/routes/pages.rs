//! Pages and the web UI's files (static/, embedded in the binary; read from disk in debug builds
//! so the UI can be edited without a rebuild).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use rust_embed::RustEmbed;

use gitvista_errors::ApiError;

#[derive(RustEmbed)]
#[folder = "../static/"]
struct Assets;

/// Local mode serves one repository: `/` goes straight to it. Hosted mode shows the landing
/// page (paste a URL).
#[get("/")]
pub async fn index(
    req: HttpRequest,
    state: web::Data<super::AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.hosted.is_some() {
        return asset(&req, "landing.html");
    }
    Ok(HttpResponse::Found()
        .insert_header(("Location", "/r/local"))
        .finish())
}

/// Hosted mode's list of repositories.
#[get("/dashboard")]
pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<super::AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.hosted.is_none() {
        return Err(ApiError::NoRoute);
    }
    asset(&req, "dashboard.html")
}

/// Serves an embedded file with a strong ETag (its SHA-256); browsers revalidate, as the names
/// are not content-hashed.
fn asset(req: &HttpRequest, path: &str) -> Result<HttpResponse, ApiError> {
    let file = Assets::get(path).ok_or(ApiError::NoRoute)?;
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let fresh = super::objects::not_modified(req, &etag);
    let mut resp = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        return Ok(resp.finish());
    }
    Ok(resp
        .content_type(file.metadata.mimetype())
        .body(file.data.into_owned()))
}

/// The graph page; the script reads the repository id from the URL.
#[get("/r/{id}")]
pub async fn graph_page(
    req: HttpRequest,
    _id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    asset(&req, "index.html")
}

/// The Insights page (the analytics dashboard); its script reads the repository id from the URL.
#[get("/r/{id}/analytics")]
pub async fn analytics_page(
    req: HttpRequest,
    _id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    asset(&req, "analytics.html")
}

/// The UI's scripts, styles and images.
#[get("/static/{path:.*}")]
pub async fn static_file(
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    asset(&req, &path)
}

/// The admin page (off, 404, without `GITVISTA_ADMIN_TOKEN`; the page signs in itself).
#[get("/admin")]
pub async fn admin(
    req: HttpRequest,
    state: web::Data<super::AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.admin.is_none() {
        return Err(ApiError::NoRoute);
    }
    asset(&req, "admin.html")
}
