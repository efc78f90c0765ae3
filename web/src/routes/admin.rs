//! The admin API (`/api/admin/...`): sessions and their state, and actions (fetch now, evict).
//! Off (404) without `GITVISTA_ADMIN_TOKEN`; otherwise every call needs the token, as
//! `Authorization: Bearer TOKEN`, or the session cookie `POST /api/admin/login` sets (random,
//! server-side, ended by `POST /api/admin/logout`: see [`gitvista_accounts::admin`]). Wrong tokens,
//! by either way, share one limit per client: five, then one a minute.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, get, post, web};
use gitvista_actors::RepoId;
use gitvista_actors::supervisor::{GetSession, Inspect, StopSession};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use gitvista_accounts::admin::ADMIN_SESSION;
use gitvista_errors::ApiError;

const COOKIE: &str = "gitvista_admin";

/// For routes open when no token is configured (`/metrics`): Ok then, else as [`authorize`].
pub(crate) async fn authorize_if_configured(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(), ApiError> {
    if state.admin.is_none() {
        return Ok(());
    }
    authorize(req, state).await
}

/// Whether `req` carries the admin token or a live admin session (false when the admin API is
/// off), without counting a failure: for deciding what a request may see.
pub(crate) async fn is_admin(req: &HttpRequest, state: &AppState) -> bool {
    let Some(admin) = &state.admin else {
        return false;
    };
    if let Some(token) = bearer(req) {
        return admin.is_token(token);
    }
    match req.cookie(COOKIE) {
        Some(c) => admin.is_session(c.value()).await,
        None => false,
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Marks a request [`admit_admin`] authorized, so the route's own [`authorize`] does not ask
/// again.
#[derive(Debug, Clone, Copy)]
struct AdminAdmitted;

/// The request path's gate for `/api/admin/...` (see `routes::admission`): 404 for every admin
/// route when the admin API is off, and [`authorize`] for all but signing in and out.
pub(crate) async fn admit_admin(
    req: &actix_web::dev::ServiceRequest,
    state: &AppState,
) -> Result<(), ApiError> {
    let path = req.path();
    if !path.starts_with("/api/admin/") {
        return Ok(());
    }
    if state.admin.is_none() {
        return Err(ApiError::NoRoute);
    }
    if matches!(path, "/api/admin/login" | "/api/admin/logout") {
        return Ok(());
    }
    // A method the path does not take is answered 405 with `Allow` by the default service,
    // as on every other path.
    let takes = super::methods::allowed(path)
        .is_some_and(|allow| allow.split(", ").any(|m| m == req.method().as_str()));
    if !takes {
        return Ok(());
    }
    authorize(req.request(), state).await?;
    req.extensions_mut().insert(AdminAdmitted);
    Ok(())
}

/// 404 when the admin API is off, 401 without the token or a session, 429 after five wrong
/// tokens from this client (the login's own limit: a wrong bearer token is a guess too), else
/// Ok.
pub(crate) async fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::NoRoute);
    };
    if req.extensions().get::<AdminAdmitted>().is_some() {
        return Ok(());
    }
    if let Some(token) = bearer(req) {
        let client = state.clients.key(req);
        // Refused before the token is compared, so a guess past the limit learns nothing.
        if let Some(c) = client {
            state
                .clients
                .admin_logins
                .has(c, 1.0)
                .map_err(ApiError::TooManyAttempts)?;
        }
        if admin.is_token(token) {
            return Ok(());
        }
        if let Some(c) = client {
            state.clients.admin_logins.spend(c, 1.0);
        }
        return Err(ApiError::Unauthorized);
    }
    match req.cookie(COOKIE) {
        Some(c) if admin.is_session(c.value()).await => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Body of the login form.
#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
}

/// Checks the token and opens a session in the admin cookie (HttpOnly, SameSite=Strict, 12
/// hours; Secure when users reach the server over https). Five attempts a minute per client,
/// shared with wrong bearer tokens: a wrong guess costs a token like a right one, so guessing
/// is as slow as the bucket.
#[post("/api/admin/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::NoRoute);
    };
    if let Some(client) = state.clients.key(&req) {
        state
            .clients
            .admin_logins
            .take(client)
            .map_err(ApiError::TooManyAttempts)?;
    }
    if !admin.is_token(&body.token) {
        return Err(ApiError::Unauthorized);
    }
    let session = admin.open().await?;
    let cookie = Cookie::build(COOKIE, session)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(&req, &state))
        .max_age(actix_web::cookie::time::Duration::seconds(
            ADMIN_SESSION.as_secs() as i64,
        ))
        .finish();
    Ok(HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .cookie(cookie)
        .finish())
}

/// Whether cookies must be `Secure`: the request came over TLS, or users reach the server at an
/// https public URL (behind a proxy that terminates TLS).
fn secure(req: &HttpRequest, state: &AppState) -> bool {
    state.public_https || req.connection_info().scheme() == "https"
}

/// Signs out: the session the cookie names ends on the server (the cookie stops working even
/// where it was copied) and the cookie is cleared.
#[post("/api/admin/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::NoRoute);
    };
    if let Some(c) = req.cookie(COOKIE) {
        admin.close(c.value()).await?;
    }
    let mut cookie = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(&req, &state))
        .finish();
    cookie.make_removal();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

/// Every running session: viewers, idleness, version, commits, fetch state, cache and heap sizes.
#[get("/api/admin/sessions")]
pub async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    let (described, viewers) = described_sessions(&state).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "sessions": described, "viewers": viewers })))
}

/// Every running session described (its id added), and the viewers over all of them.
pub(crate) async fn described_sessions(
    state: &AppState,
) -> Result<(Vec<serde_json::Value>, u64), ApiError> {
    let list = state
        .supervisor
        .send(Inspect)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let described: Vec<serde_json::Value> = list
        .into_iter()
        .map(|(id, info)| {
            let mut v = serde_json::to_value(info).unwrap_or_default();
            v["id"] = json!(id.as_str());
            v
        })
        .collect();
    let viewers = described.iter().filter_map(|s| s["viewers"].as_u64()).sum();
    Ok((described, viewers))
}

/// The actor tree: the Supervisor and every RepoSession (with its repository's URL and state in
/// hosted mode), the CloneQueue's running and queued jobs, and the EvictionActor's last sweep.
#[get("/api/admin/actors")]
pub async fn actors(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    let unavailable = |e: actix::MailboxError| ApiError::Unavailable(e.to_string());
    let (mut list_json, viewers) = described_sessions(&state).await?;
    let (mut queue, mut eviction) = (serde_json::Value::Null, serde_json::Value::Null);
    let mut webhooks = serde_json::Value::Null;
    let mut cluster = serde_json::Value::Null;
    if let Some(h) = &state.hosted {
        let store = h.store.clone();
        // The running sessions' rows only: the admin page polls this every 2 s.
        let ids: Vec<String> = list_json
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        let repos = web::block(move || store.repos_with_ids(&ids))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let by_id: std::collections::HashMap<&str, &gitvista_store::Repo> =
            repos.iter().map(|r| (r.id.as_str(), r)).collect();
        for s in &mut list_json {
            if let Some(r) = s["id"].as_str().and_then(|id| by_id.get(id)) {
                s["url"] = json!(r.display_url);
                s["state"] = json!(r.state);
                s["diskBytes"] = json!(r.disk_bytes);
            }
            if let Some(id) = s["id"].as_str().and_then(RepoId::parse) {
                s["hookSecsAgo"] = json!(h.hooks.clock.since(&id).map(|d| d.as_secs()));
            }
        }
        webhooks = webhooks_json(h).await?;
        cluster = cluster_json(h).await?;
        let jobs = h
            .queue
            .send(gitvista_actors::clone_queue::ListJobs)
            .await
            .map_err(unavailable)?;
        let stats = h
            .queue
            .send(gitvista_actors::clone_queue::GetStats)
            .await
            .map_err(unavailable)?;
        queue = json!({
            "concurrency": h.config.clone_concurrency,
            "started": stats.started,
            "fetches": stats.fetches,
            "joined": stats.joined,
            "jobs": jobs,
        });
        if let Some(e) = h.eviction.get() {
            let info = e
                .send(gitvista_actors::eviction::GetEviction)
                .await
                .map_err(unavailable)?;
            let now = gitvista_store::now();
            let reaped: Vec<serde_json::Value> = h
                .reaped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .rev()
                .map(|(id, at)| json!({ "id": id, "secsAgo": now - at }))
                .collect();
            eviction = serde_json::to_value(info).unwrap_or_default();
            eviction["clonesDeleted"] = json!(reaped);
            eviction["cloneUnusedSecs"] = json!(h.config.clone_unused.as_secs());
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "mode": if state.hosted.is_some() { "hosted" } else { "local" },
            "supervisor": { "sessions": list_json.len(), "viewers": viewers },
            "sessions": list_json,
            "cloneQueue": queue,
            "eviction": eviction,
            "webhooks": webhooks,
            "cluster": cluster,
        })))
}

/// The live nodes (this one marked, with what each reported at its last heartbeat), where the
/// repositories are placed, and the shared job queue: counts by state, the running jobs with
/// their holder and lease, and the latest failures.
async fn cluster_json(
    h: &std::sync::Arc<gitvista_hosting::hosted::Hosted>,
) -> Result<serde_json::Value, ApiError> {
    let store = h.store.clone();
    let lease = gitvista_cluster::NODE_LEASE.as_millis() as i64;
    let (nodes, jobs, running, failed, placement) = gitvista_errors::blocking(move || {
        Ok((
            store.live_nodes(lease)?,
            store.count_jobs()?,
            store.jobs_in("running", 50)?,
            store.jobs_in("failed", 20)?,
            store.placement_counts()?,
        ))
    })
    .await?;
    let now = gitvista_store::jobs::now_ms();
    let nodes: Vec<serde_json::Value> = nodes.iter().map(|n| node_json(n, h)).collect();
    let job = |j: &gitvista_store::jobs::Job| {
        json!({
            "id": j.id,
            "repo": j.repo_id,
            "kind": j.kind,
            "node": j.locked_by,
            "attempts": j.attempts,
            "maxAttempts": j.max_attempts,
            "leaseLeftMs": j.lease_until.map(|l| l - now),
            "error": j.error_message,
        })
    };
    let counts: serde_json::Map<String, serde_json::Value> = jobs
        .into_iter()
        .map(|(state, n)| (state, json!(n)))
        .collect();
    let placement: Vec<serde_json::Value> = placement
        .into_iter()
        .map(|(owner, n)| json!({"owner": owner, "repos": n}))
        .collect();
    Ok(json!({
        "node": h.node_id,
        "role": h.role.as_str(),
        "leaseMs": lease,
        "nodes": nodes,
        "placement": placement,
        "jobs": counts,
        "running": running.iter().map(job).collect::<Vec<_>>(),
        "failed": failed.iter().map(job).collect::<Vec<_>>(),
    }))
}

/// A live node as the admin answers show it, with what it reported at its last heartbeat
/// (`self`: the node answering).
pub(crate) fn node_json(
    n: &gitvista_store::jobs::LiveNode,
    h: &gitvista_hosting::hosted::Hosted,
) -> serde_json::Value {
    json!({
        "id": n.id,
        "role": n.role,
        "internalAddr": n.internal_addr,
        "region": n.place.region,
        "machineId": n.place.machine_id,
        "heartbeatAgeMs": n.heartbeat_age_ms,
        "freeBytes": n.free_bytes,
        "sessions": n.sessions,
        "viewers": n.viewers,
        "self": n.id == h.node_id,
    })
}

/// Deliveries shown on the admin page.
const DELIVERIES_SHOWN: i64 = 50;

/// The receivers (on or off), what the on-demand fetcher did, the hooks registered, and the
/// latest deliveries with their outcome.
async fn webhooks_json(
    h: &std::sync::Arc<gitvista_hosting::hosted::Hosted>,
) -> Result<serde_json::Value, ApiError> {
    let store = h.store.clone();
    let (deliveries, registrations, last) = gitvista_errors::blocking(move || {
        Ok((
            store.deliveries(None, DELIVERIES_SHOWN)?,
            store.registration_count()?,
            store.last_delivery_by_provider()?,
        ))
    })
    .await?;
    let stats = h
        .hooks
        .freshener
        .send(gitvista_actors::freshen::GetFreshenStats)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let now = gitvista_store::now();
    let deliveries: Vec<serde_json::Value> = deliveries
        .into_iter()
        .map(|d| {
            json!({
                "provider": d.provider,
                "event": d.event,
                "repo": d.repo_id,
                "outcome": d.outcome,
                "secsAgo": now - d.received_at,
            })
        })
        .collect();
    let last: serde_json::Map<String, serde_json::Value> = last
        .into_iter()
        .map(|(provider, at)| (provider, json!(now - at)))
        .collect();
    Ok(json!({
        "receivers": h.hooks.receivers(),
        "lastDeliverySecsAgo": last,
        "hookedFetchSecs": h.config.hooked_every.as_secs(),
        "registrations": registrations,
        "fetches": {
            "toSessions": stats.to_sessions,
            "background": stats.background,
            "coalesced": stats.coalesced,
        },
        "deliveries": deliveries,
    }))
}

fn repo_id(id: &str) -> Result<RepoId, ApiError> {
    RepoId::parse(id).ok_or_else(|| ApiError::UnknownRepo(id.to_string()))
}

/// Fetches a hosted repository now.
#[post("/api/admin/repos/{id}/fetch")]
pub async fn fetch(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    // A web node holds no clone: the fetch goes to the owner through the shared job table.
    if let Some(h) = state.hosted.as_ref().filter(|_| state.forwarder.is_some()) {
        let rid = repo_id(&id)?;
        let (store, key) = (h.store.clone(), id.to_string());
        if gitvista_errors::blocking(move || store.repo(&key))
            .await?
            .is_none()
        {
            return Err(ApiError::UnknownRepo(id.to_string()));
        }
        h.queue_job(&rid, "fetch", 5).await?;
        return Ok(HttpResponse::Accepted().json(json!({ "id": id.as_str(), "fetch": "queued" })));
    }
    let session = state
        .supervisor
        .send(GetSession(repo_id(&id)?))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|_| ApiError::UnknownRepo(id.to_string()))?;
    session.do_send(gitvista_actors::repo_session::FetchNow);
    Ok(HttpResponse::Accepted().json(json!({ "id": id.as_str(), "fetch": "started" })))
}

/// Stops a repository's session now (its memory is freed; the next request loads it again).
#[post("/api/admin/repos/{id}/evict")]
pub async fn evict(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    let stopped = state
        .supervisor
        .send(StopSession(repo_id(&id)?))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if !stopped {
        return Err(ApiError::UnknownRepo(id.to_string()));
    }
    metrics::counter!("gitvista_sessions_evicted_total").increment(1);
    Ok(HttpResponse::Ok().json(json!({ "id": id.as_str(), "evicted": true })))
}
