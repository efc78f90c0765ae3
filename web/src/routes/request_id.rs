//! One id per request, the same on every node it passes through.
//!
//! The id is the caller's when it sends a usable one (`X-Request-Id`, else the trace id of a W3C
//! `traceparent`, as a proxy or a tracing client sets them), else the one tracing-actix-web made.
//! It is logged as the request span's `request_id`, answered in `X-Request-Id`, and sent on every
//! request this node makes to another for it (a web node's read forwarded to the repository's
//! owner, the summary it asks for), so the owner logs the same id. Whatever a caller sends is
//! hostile: only short ids of letters, digits, `-`, `_` and `.` are taken, so nothing can forge a
//! log line or grow one.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};

/// The header the id travels in, both ways.
pub const HEADER: &str = "x-request-id";

/// Longest id taken from a caller.
const MAX_LEN: usize = 64;

/// The id chosen for a request, kept in its extensions by the root span.
#[derive(Debug, Clone)]
pub struct RequestIdValue(pub String);

tokio::task_local! {
    /// The id of the request being handled, for requests made on its behalf.
    static CURRENT: String;
}

/// The id of the request this task is handling, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Whether `id` is short and made only of letters, digits, `-`, `_` and `.`.
fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if it is one: not all
/// zeros, lowercase hex, version `ff` refused as the recommendation says.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        // Version 00 has exactly four fields; later versions may add more.
        && (version != "00" || parts.next().is_none());
    ok.then_some(trace)
}

/// The id a caller sent, when usable: `X-Request-Id`, else `traceparent`'s trace id.
pub fn from_caller(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(id) = header(HEADER).map(str::trim).filter(|id| usable(id)) {
        return Some(id.to_string());
    }
    header("traceparent").and_then(trace_id).map(str::to_string)
}

/// Runs the request with its id known to the task (see [`current`]) and answers the id in
/// `X-Request-Id`. Sits just inside the logger, whose root span chose the id.
pub async fn carry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .extensions()
        .get::<RequestIdValue>()
        .map(|v| v.0.clone())
        .unwrap_or_default();
    let mut res = CURRENT.scope(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id)
        && !id.is_empty()
    {
        res.headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn a_caller_s_id_is_taken_only_when_it_is_short_and_plain() {
        assert_eq!(
            from_caller(&headers(&[("x-request-id", "abc-123_x.y")])),
            Some("abc-123_x.y".into())
        );
        for bad in ["", "a b", "a\"}{", &"x".repeat(65), "é"] {
            assert_eq!(
                from_caller(&headers(&[("x-request-id", bad)])),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_traceparent_gives_its_trace_id_when_it_is_well_formed() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            from_caller(&headers(&[("traceparent", good)])),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into())
        );
        // X-Request-Id wins when both are sent.
        assert_eq!(
            from_caller(&headers(&[("traceparent", good), ("x-request-id", "mine")])),
            Some("mine".into())
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(
                from_caller(&headers(&[("traceparent", bad)])),
                None,
                "{bad}"
            );
        }
    }
}
