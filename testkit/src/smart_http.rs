//! Git's smart HTTP for the fake forges: one request run through `git http-backend` (CGI) on the
//! repositories under a directory.

use actix_web::{HttpRequest, HttpResponse, web};

/// Runs `git http-backend` for one request on the repositories under `root`, at `path_info`.
pub(crate) async fn http_backend(
    root: std::path::PathBuf,
    req: &HttpRequest,
    path_info: String,
    body: web::Bytes,
) -> HttpResponse {
    let method = req.method().to_string();
    let query = req.query_string().to_string();
    let content_type = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let encoding = req
        .headers()
        .get("Content-Encoding")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let protocol = req
        .headers()
        .get("Git-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let out = web::block(move || {
        use std::io::Write as _;
        let mut cmd = std::process::Command::new("git");
        cmd.arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", method)
            .env("PATH_INFO", path_info)
            .env("QUERY_STRING", query)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if let Some(t) = content_type {
            cmd.env("CONTENT_TYPE", t);
        }
        if let Some(e) = encoding {
            cmd.env("HTTP_CONTENT_ENCODING", e);
        }
        if let Some(p) = protocol {
            cmd.env("GIT_PROTOCOL", p);
        }
        let mut child = cmd.spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&body)?;
        }
        child.wait_with_output()
    })
    .await;
    let Ok(Ok(out)) = out else {
        return HttpResponse::InternalServerError().finish();
    };
    let (head, rest) = crate::split_cgi(&out.stdout);
    let rest = rest.to_vec();
    let mut resp = HttpResponse::Ok();
    for line in String::from_utf8_lossy(head).lines() {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("status") {
                let code = v
                    .split_whitespace()
                    .next()
                    .and_then(|c| c.parse::<u16>().ok())
                    .unwrap_or(200);
                resp.status(
                    actix_web::http::StatusCode::from_u16(code)
                        .unwrap_or(actix_web::http::StatusCode::OK),
                );
            } else {
                resp.insert_header((k.trim().to_string(), v.to_string()));
            }
        }
    }
    resp.body(rest)
}
