//! The span each HTTP request is logged under (tracing-actix-web's fields), with what is
//! secret in a path or a query redacted: a team invitation's token (`/api/teams/join/{token}`,
//! `?join=`), an OAuth callback's `code` and `state`, any `token` or `secret` parameter. Logs
//! leave the machine (to an aggregator, an operator's terminal); a link that works for anyone
//! who has it must not travel with them.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage as _};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// What stands in for a redacted value.
const REDACTED: &str = "[redacted]";

/// Path parameters whose values are secrets (by their name in the route pattern).
const SECRET_SEGMENTS: [&str; 1] = ["{token}"];

/// Query parameters whose values are secrets.
const SECRET_KEYS: [&str; 6] = ["code", "state", "token", "join", "secret", "access_token"];

/// `path?query` with the secret parts of `pattern`'s path and of the query replaced.
pub fn redacted_target(path: &str, query: &str, pattern: Option<&str>) -> String {
    let path = match pattern {
        Some(pattern) if SECRET_SEGMENTS.iter().any(|s| pattern.contains(s)) => {
            let names: Vec<&str> = pattern.split('/').collect();
            path.split('/')
                .enumerate()
                .map(|(i, seg)| match names.get(i) {
                    Some(name) if SECRET_SEGMENTS.contains(name) => REDACTED,
                    _ => seg,
                })
                .collect::<Vec<_>>()
                .join("/")
        }
        _ => path.to_string(),
    };
    if query.is_empty() {
        return path;
    }
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                format!("{k}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// tracing-actix-web's root span, with [`redacted_target`] as `http.target`.
pub struct RedactingRootSpan;

impl RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern();
        let target = redacted_target(request.path(), request.query_string(), route.as_deref());
        // The caller's id when it sent a usable one (another node of the cluster, a proxy),
        // else the logger's; kept for the response and for requests made on its behalf.
        let request_id = super::request_id::from_caller(request.headers()).unwrap_or_else(|| {
            request
                .extensions()
                .get::<tracing_actix_web::RequestId>()
                .map(|id| id.to_string())
                .unwrap_or_default()
        });
        request
            .extensions_mut()
            .insert(super::request_id::RequestIdValue(request_id.clone()));
        let route = route.unwrap_or_else(|| "default".into());
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %target,
            http.client_ip = %request.connection_info().realip_remote_addr().unwrap_or(""),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{} {route}", request.method()),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_target;

    #[test]
    fn invitation_tokens_and_oauth_codes_never_reach_a_log() {
        assert_eq!(
            redacted_target(
                "/api/teams/join/eyJhbGciOi.secret",
                "",
                Some("/api/teams/join/{token}")
            ),
            "/api/teams/join/[redacted]"
        );
        assert_eq!(
            redacted_target(
                "/auth/github/callback",
                "code=abc&state=def&x=1",
                Some("/auth/{kind}/callback")
            ),
            "/auth/github/callback?code=[redacted]&state=[redacted]&x=1"
        );
        assert_eq!(
            redacted_target("/dashboard", "join=tok", Some("/dashboard")),
            "/dashboard?join=[redacted]"
        );
        assert_eq!(
            redacted_target(
                "/api/repos/0123456789abcdef/graph",
                "offset=0&limit=50",
                None
            ),
            "/api/repos/0123456789abcdef/graph?offset=0&limit=50"
        );
    }
}
