//! Requests answered in another region, behind Fly's proxy. A web node with
//! `GITVISTA_FLY_REPLAY=1` does not carry a request across regions itself: it answers
//! `fly-replay: region=<code>` and Fly's proxy delivers the original request there.
//!
//! - A read or WebSocket of a repository owned in another region that has a web node goes to
//!   that region ([`super::forward::place`] asks [`to_region`] for the answer).
//! - With `GITVISTA_PRIMARY_REGION` and this node elsewhere, a request that changes state
//!   (POST, PUT, PATCH, DELETE, and a forge's sign-in callback) goes to the primary region
//!   before anything reads it ([`write_to_primary`], the first step of
//!   [`super::admission::admit`]).
//! - A request Fly replayed already (it carries `fly-replay-src`) is never replayed again: it
//!   is answered here, a read by forwarding it to its owner as without regions.
//! - Fly cannot replay a body over 1 MB: such a request is answered here (this node writes to
//!   the same database; only the round trips are longer).
//! - The region a repository is first asked for is the one Fly's proxy names in `Fly-Region`
//!   ([`asked_region`]).

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, header};
use actix_web::{HttpResponse, ResponseError as _};

use super::AppState;
use gitvista_cluster::regions::region_code;
use gitvista_cluster::settings::Role;
use gitvista_errors::ApiError;

/// The answer header that asks Fly's proxy to deliver the request elsewhere.
pub const REPLAY: &str = "fly-replay";

/// The request header Fly's proxy adds to a replayed request.
pub const REPLAY_SOURCE: &str = "fly-replay-src";

/// The request header in which Fly's proxy names the region that accepted the connection.
pub const FLY_REGION: &str = "fly-region";

/// Largest body Fly's proxy replays.
const MAX_REPLAYED_BODY: u64 = 1_000_000;

/// Whether Fly's proxy delivered `req` here by replaying it.
pub fn replayed(req: &actix_web::HttpRequest) -> bool {
    req.headers().contains_key(REPLAY_SOURCE)
}

/// The region `req` was asked from: the `Fly-Region` its proxy names, when this node runs in a
/// named region and the header is a region code.
pub fn asked_region(req: &actix_web::HttpRequest, state: &AppState) -> Option<String> {
    let h = state.hosted.as_ref()?;
    h.config.cluster.regions.region()?;
    let named = req.headers().get(FLY_REGION)?.to_str().ok()?;
    region_code(named, FLY_REGION).ok()
}

/// The answer that sends the request to `region`: status 421 with `fly-replay`, which Fly's
/// proxy acts on; a client that reaches the node without the proxy reads why.
pub fn to_region(region: &str) -> HttpResponse {
    metrics::counter!("gitvista_fly_replays_total", "to" => region.to_string()).increment(1);
    let mut resp = ApiError::status(
        421,
        format!("this request is answered in region {region}: Fly's proxy delivers it there"),
        "replayed",
    )
    .error_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("region={region}")) {
        resp.headers_mut()
            .insert(header::HeaderName::from_static(REPLAY), v);
    }
    resp
}

/// Whether `req` changes state: a write method, or a forge's sign-in callback (which makes the
/// user and their session).
fn changes_state(req: &ServiceRequest) -> bool {
    match *req.method() {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => true,
        Method::GET => req.match_pattern().as_deref() == Some("/auth/{forge}/callback"),
        _ => false,
    }
}

/// Whether Fly's proxy can replay `req`'s body: its length is known and at most 1 MB.
fn body_replayable(req: &ServiceRequest) -> bool {
    if req.headers().contains_key(header::TRANSFER_ENCODING) {
        return false;
    }
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map_or(Some(0), |v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n <= MAX_REPLAYED_BODY)
}

/// The answer that replays `req` to the primary region, when it changes state and this web
/// node runs elsewhere (see the module's overview); `None` to answer it here.
pub fn write_to_primary(req: &ServiceRequest, state: &AppState) -> Option<HttpResponse> {
    let h = state.hosted.as_ref()?;
    let regions = &h.config.cluster.regions;
    if h.role != Role::Web || !regions.replays_writes() {
        return None;
    }
    if replayed(req.request()) || !changes_state(req) || !body_replayable(req) {
        return None;
    }
    regions.primary.as_deref().map(to_region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bodies_fly_cannot_replay_are_answered_here() {
        let with = |len: Option<&str>, chunked: bool| {
            let mut r = TestRequest::post().uri("/webhooks/github");
            if let Some(len) = len {
                r = r.insert_header((header::CONTENT_LENGTH, len));
            }
            if chunked {
                r = r.insert_header((header::TRANSFER_ENCODING, "chunked"));
            }
            body_replayable(&r.to_srv_request())
        };
        assert!(with(None, false));
        assert!(with(Some("1000000"), false));
        assert!(!with(Some("1000001"), false));
        assert!(!with(Some("junk"), false));
        assert!(!with(None, true));
    }

    #[test]
    fn the_replay_answer_names_the_region_and_says_why() {
        let resp = to_region("iad");
        assert_eq!(resp.status().as_u16(), 421);
        assert_eq!(
            resp.headers().get(REPLAY).and_then(|v| v.to_str().ok()),
            Some("region=iad")
        );
    }
}
