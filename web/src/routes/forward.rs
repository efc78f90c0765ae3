//! Repository reads on a web node: forwarded to the worker that owns the repository, over
//! keep-alive HTTP on its internal address, each request signed with the cluster secret, the
//! answer streamed back with the owner's status, ETag and caching headers. Answers named by hash
//! (immutable) are kept in a byte-bounded cache, so a popular commit is asked of the owner once.
//!
//! On the worker, [`internal_only`] refuses every request that is not signed (its listener is the
//! internal address only), and marks the signed ones as trusted: the web node already decided
//! who may see what.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};

use super::AppState;
use super::repo_param::RequestRepo;
use gitvista_cluster::settings::{CLUSTER_HEADER, ClusterSecret};
use gitvista_errors::ApiError;

/// Bytes of immutable answers a web node keeps.
pub const CACHE_BYTES: u64 = 64 << 20;

/// Largest answer kept in the cache (bigger ones are streamed through).
const CACHE_ONE_MAX: u64 = 1 << 20;

/// How long the owner map is trusted before the database is asked again.
const OWNERS_FRESH: Duration = Duration::from_secs(2);

/// How long a request waits for a repository changing owner before answering `moving`.
const MOVE_WAIT: Duration = Duration::from_secs(3);

/// Headers passed to the owner.
const REQUEST_HEADERS: [HeaderName; 4] = [
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
];

/// Headers passed back from the owner.
const RESPONSE_HEADERS: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::ETAG,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::VARY,
    header::LAST_MODIFIED,
    header::CONTENT_DISPOSITION,
];

/// A request the owner signed off as coming from a node of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Trusted;

/// A cached answer.
#[derive(Debug, Clone)]
struct Cached {
    status: u16,
    headers: Vec<(HeaderName, String)>,
    body: web::Bytes,
}

/// Weighs cached answers by their bytes.
#[derive(Debug, Clone)]
struct ByBytes;

impl quick_cache::Weighter<String, Cached> for ByBytes {
    fn weight(&self, key: &String, v: &Cached) -> u64 {
        (key.len() + v.body.len() + 64) as u64
    }
}

/// The live nodes, as recently read.
#[derive(Debug, Default)]
struct Owners {
    read_at: Option<Instant>,
    /// Live nodes' internal addresses and regions by id.
    nodes: std::collections::HashMap<String, (String, Option<String>)>,
    /// Regions with a live web node (where Fly's proxy can replay a request to).
    web_regions: std::collections::HashSet<String>,
}

/// Forwards repository reads to their owners.
#[derive(Debug)]
pub struct Forwarder {
    client: reqwest::Client,
    secret: ClusterSecret,
    cache: quick_cache::sync::Cache<String, Cached, ByBytes>,
    owners: std::sync::Mutex<Owners>,
    /// Each placed repository's owner as read at that instant: a window request costs no
    /// database query while it is fresh.
    placed: quick_cache::sync::Cache<String, (Option<String>, Instant)>,
}

/// Where a request for a repository goes.
enum Route {
    /// To the owner at this address, in this region.
    Owner(String, Option<String>),
    /// Nobody serves it: answer here (from the row: pending, cloning, error, evicted).
    Local,
    /// Its owner is dead and it has not been re-placed yet.
    Moving,
}

impl Forwarder {
    /// A forwarder signing with `secret`.
    pub fn new(secret: ClusterSecret) -> Forwarder {
        let client = reqwest::Client::builder()
            // Small requests and answers back to back: Nagle's algorithm would hold them for
            // the peer's delayed ACK (40 ms).
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        Forwarder {
            client,
            secret,
            cache: quick_cache::sync::Cache::with_weighter(100_000, CACHE_BYTES, ByBytes),
            owners: Default::default(),
            placed: quick_cache::sync::Cache::new(100_000),
        }
    }

    /// Where repository `id`'s reads go now.
    async fn route(
        &self,
        h: &Arc<gitvista_hosting::hosted::Hosted>,
        id: &str,
    ) -> Result<Route, ApiError> {
        let stale = {
            let o = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            o.read_at.is_none_or(|t| t.elapsed() > OWNERS_FRESH)
        };
        let known = self
            .placed
            .get(id)
            .filter(|(_, at)| at.elapsed() < OWNERS_FRESH)
            .map(|(owner, _)| owner);
        let (store, rid) = (h.store.clone(), id.to_string());
        let lease = gitvista_cluster::NODE_LEASE.as_millis() as i64;
        let read = known.is_none();
        let (owner, nodes) = gitvista_errors::blocking(move || {
            let owner = match known {
                Some(owner) => owner,
                None => store.repo(&rid)?.and_then(|r| r.owner),
            };
            let nodes = if stale {
                Some(store.live_nodes(lease)?)
            } else {
                None
            };
            Ok((owner, nodes))
        })
        .await?;
        // Only a placed repository's owner is kept: one not placed yet is about to be.
        if read && owner.is_some() {
            self.placed
                .insert(id.to_string(), (owner.clone(), Instant::now()));
        }
        let mut o = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(nodes) = nodes {
            o.web_regions = nodes
                .iter()
                .filter(|n| n.role == "web")
                .filter_map(|n| n.place.region.clone())
                .collect();
            o.nodes = nodes
                .into_iter()
                .filter_map(|n| n.internal_addr.map(|a| (n.id, (a, n.place.region))))
                .collect();
            o.read_at = Some(Instant::now());
        }
        Ok(match owner {
            None => Route::Local,
            Some(owner) => match o.nodes.get(&owner) {
                Some((addr, region)) => Route::Owner(addr.clone(), region.clone()),
                None => Route::Moving,
            },
        })
    }

    /// The region a request of `h`'s web node goes to rather than be forwarded to an owner in
    /// `owner_region`: the owner's, when this node answers `fly-replay`, the request was not
    /// replayed already, and the owner's region is another with a live web node.
    fn replay_region(
        &self,
        h: &gitvista_hosting::hosted::Hosted,
        owner_region: Option<&str>,
        req: &ServiceRequest,
    ) -> Option<String> {
        let regions = &h.config.cluster.regions;
        let there = owner_region?;
        if !regions.fly_replay
            || regions.region() == Some(there)
            || super::replay::replayed(req.request())
        {
            return None;
        }
        let o = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        o.web_regions.contains(there).then(|| there.to_string())
    }

    /// Forgets what is known of repository `id`'s owner (it did not answer, or moved).
    fn forget(&self, id: &str) {
        self.placed.remove(id);
        let mut o = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        o.read_at = None;
    }

    /// Sends `req` to the owner at `addr` and streams its answer back.
    async fn forward(&self, addr: &str, req: &ServiceRequest) -> Result<HttpResponse, ApiError> {
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
        let encoding = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let key = format!("{addr}{path}\n{encoding}");
        let conditional = req.headers().contains_key(header::IF_NONE_MATCH);
        if !conditional && let Some(hit) = self.cache.get(&key) {
            metrics::counter!("gitvista_forward_cache_hits_total").increment(1);
            let mut resp = HttpResponse::build(
                actix_web::http::StatusCode::from_u16(hit.status)
                    .unwrap_or(actix_web::http::StatusCode::OK),
            );
            for (k, v) in &hit.headers {
                resp.insert_header((k.clone(), v.as_str()));
            }
            return Ok(resp.body(hit.body));
        }
        let started = Instant::now();
        let mut out = self
            .client
            .get(format!("http://{addr}{path}"))
            .header(CLUSTER_HEADER, self.secret.sign("GET", &path, b""));
        if let Some(id) = super::request_id::current() {
            out = out.header(super::request_id::HEADER, id);
        }
        for name in &REQUEST_HEADERS {
            if let Some(v) = req.headers().get(name) {
                out = out.header(name.as_str(), v.as_bytes());
            }
        }
        let answer = out.send().await.map_err(|e| {
            metrics::counter!("gitvista_forward_errors_total").increment(1);
            tracing::warn!(owner = addr, error = %e, "the owner of a repository did not answer");
            ApiError::Moving(2)
        })?;
        metrics::histogram!("gitvista_forward_seconds").record(started.elapsed().as_secs_f64());
        let status = answer.status().as_u16();

        let mut headers = Vec::new();
        for name in &RESPONSE_HEADERS {
            if let Some(v) = answer
                .headers()
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
            {
                headers.push((name.clone(), v.to_string()));
            }
        }
        let mut resp = HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
        );
        for (k, v) in &headers {
            resp.insert_header((k.clone(), v.as_str()));
        }
        if status == 503 {
            // The worker does not own it (any more): look the owner up again.
            let body = answer.bytes().await.map_err(|_| ApiError::Moving(2))?;
            if serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|v| v["code"] == "moving")
            {
                return Err(ApiError::Moving(2));
            }
            return Ok(resp.body(body));
        }
        let immutable = status == 200
            && headers
                .iter()
                .any(|(k, v)| *k == header::CACHE_CONTROL && v.contains("immutable"));
        let small = answer.content_length().is_some_and(|n| n <= CACHE_ONE_MAX);
        // A small answer goes back in one piece (one write, as the owner sent it); only big
        // ones are streamed through.
        if small {
            let body = answer.bytes().await.map_err(|_| ApiError::Moving(2))?;
            if immutable {
                self.cache.insert(
                    key,
                    Cached {
                        status,
                        headers,
                        body: body.clone(),
                    },
                );
            }
            return Ok(resp.body(body));
        }
        use futures_util::TryStreamExt as _;
        let stream = answer
            .bytes_stream()
            .map_err(|e| actix_web::error::ErrorBadGateway(e.to_string()));
        Ok(resp.streaming(stream))
    }
}

/// The repository routes a web node forwards: reads under `/api/repos/{id}/` other than the
/// WebSocket. Answers the id the request names.
fn forwarded_repo(req: &ServiceRequest, named: &RequestRepo) -> Option<String> {
    if named.route == WS_ROUTE {
        return None;
    }
    if !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) {
        return None;
    }
    let first = named
        .route
        .strip_prefix("/api/repos/{id}/")?
        .split('/')
        .next()
        .unwrap_or("");
    matches!(
        first,
        "repository"
            | "overview"
            | "analytics"
            | "graph"
            | "commit"
            | "compare"
            | "tree"
            | "blob"
            | "search"
            | "status"
    )
    .then(|| named.id.as_str().to_string())
}

/// A repository's WebSocket: served by any web node (events come through the bus), but by one
/// in the owner's region when the request can be replayed there.
const WS_ROUTE: &str = "/api/repos/{id}/ws";

/// Where a request that may see its repository is answered.
pub enum Place {
    /// Here, by the handler.
    Here,
    /// Already: by the owner (forwarded), or refused because the repository is moving.
    Answered(HttpResponse),
}

/// Where the request `req` (naming `repo`, which its sender may see) is answered: the third
/// step of the request path ([`super::admission`]).
/// - On a web node, a repository read goes to the owner. A request for a repository being moved
///   waits briefly for its new owner, then answers 503 `moving`. A repository nobody serves is
///   answered here, from its row.
/// - On a web node answering `fly-replay`, a read or WebSocket of a repository owned in another
///   region with a web node is replayed there ([`super::replay`]).
/// - On a worker, a read from the cluster for a repository it does not own (any more) is not
///   answered from a stale clone: 503 `moving`, and the web node looks the owner up again.
pub async fn place(state: &AppState, req: &ServiceRequest, repo: Option<&RequestRepo>) -> Place {
    let Some(h) = state.hosted.clone() else {
        return Place::Here;
    };
    if let (Some(fwd), Some(named)) = (&state.forwarder, repo)
        && named.route == WS_ROUTE
    {
        // Whether the owner is in another region: a WebSocket is never forwarded.
        if h.config.cluster.regions.fly_replay
            && let Ok(Route::Owner(_, region)) = fwd.route(&h, named.id.as_str()).await
            && let Some(there) = fwd.replay_region(&h, region.as_deref(), req)
        {
            return Place::Answered(super::replay::to_region(&there));
        }
        return Place::Here;
    }
    let Some(id) = repo.and_then(|r| forwarded_repo(req, r)) else {
        return Place::Here;
    };
    if req.extensions().get::<Trusted>().is_some() {
        return match h.fences.get(&id) {
            Some(_) => Place::Here,
            None => Place::Answered(ApiError::Moving(1).error_response()),
        };
    }
    let Some(fwd) = state.forwarder.clone() else {
        return Place::Here;
    };
    let deadline = Instant::now() + MOVE_WAIT;
    let answer = loop {
        match fwd.route(&h, &id).await {
            Err(e) => break Err(e),
            Ok(Route::Local) => return Place::Here,
            Ok(Route::Owner(_, region))
                if let Some(there) = fwd.replay_region(&h, region.as_deref(), req) =>
            {
                break Ok(super::replay::to_region(&there));
            }
            Ok(Route::Owner(addr, _)) => match fwd.forward(&addr, req).await {
                Err(ApiError::Moving(_)) if Instant::now() < deadline => fwd.forget(&id),
                other => break other,
            },
            Ok(Route::Moving) if Instant::now() < deadline => fwd.forget(&id),
            Ok(Route::Moving) => break Err(ApiError::Moving(5)),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    Place::Answered(answer.unwrap_or_else(|e| e.error_response()))
}

/// A worker's middleware: every request but `/healthz`, `/readyz` and `/metrics` must be signed with the cluster secret
/// (401 otherwise); signed ones are marked [`Trusted`]: the web node already decided who may
/// see what, and [`place`] checks that this worker still owns the repository.
pub async fn internal_only(
    secret: ClusterSecret,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    // Health and readiness checks, and metrics (which need the admin token anyway) for the
    // scraper.
    if matches!(req.path(), "/healthz" | "/readyz" | "/metrics") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let signed = req
        .headers()
        .get(CLUSTER_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| secret.verify(v, req.method().as_str(), &path, b""));
    if !signed {
        metrics::counter!("gitvista_cluster_unsigned_total").increment(1);
        let resp = ApiError::status(
            401,
            "this is a worker's internal address: requests must come from a node of the cluster",
            "cluster_signature",
        )
        .error_response();
        return Ok(req.into_response(resp).map_into_right_body());
    }
    req.extensions_mut().insert(Trusted);
    Ok(next.call(req).await?.map_into_left_body())
}

impl Forwarder {
    /// Asks the owner of repository `id` for its summary (the WebSocket's first message) over the
    /// internal address: `None` when nobody serves it now.
    pub async fn owner_summary(
        &self,
        h: &Arc<gitvista_hosting::hosted::Hosted>,
        id: &str,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let Route::Owner(addr, _) = self.route(h, id).await? else {
            return Ok(None);
        };
        let path = format!("/api/repos/{id}/repository");
        let mut out = self
            .client
            .get(format!("http://{addr}{path}"))
            .header(CLUSTER_HEADER, self.secret.sign("GET", &path, b""));
        if let Some(id) = super::request_id::current() {
            out = out.header(super::request_id::HEADER, id);
        }
        let answer = out.send().await.map_err(|_| ApiError::Moving(2))?;
        if !answer.status().is_success() {
            return Ok(None);
        }
        let v: serde_json::Value = answer.json().await.map_err(|_| ApiError::Moving(2))?;
        Ok(Some(serde_json::json!({
            "type": "summary",
            "version": v["version"],
            "commits": v["commits"],
            "rows": v["rows"],
            "width": v["width"],
            "head": v["head"],
        })))
    }
}
