//! Accounts over HTTP: `GET /auth/forges` (which forges one may sign in with),
//! `GET /auth/{forge}/login`, `GET /auth/{forge}/connect` (link another forge to the signed-in
//! account), `GET /auth/{forge}/callback`, `POST /auth/logout`, `GET /api/user`,
//! `DELETE /api/user/connections/{forge}`, `GET /api/user/repos` (the repository picker), the
//! admin's user routes. Who a request is from and whether they may see what it names is decided
//! before any of these, in [`super::admission`]. With sign-in off every one of these routes
//! answers 404; so do a forge's routes when that forge is not configured.

use std::sync::Arc;

use actix_web::{
    HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, delete, get, patch, post, web,
};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use gitvista_accounts::accounts::{Accounts, LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECS, Viewer};
use gitvista_accounts::provider::{Provider, Wanted};
use gitvista_errors::ApiError;
use gitvista_store::accounts::User;

/// The accounts of a hosted server with sign-in on; 404 otherwise.
pub fn accounts(state: &AppState) -> Result<Arc<Accounts>, ApiError> {
    state
        .hosted
        .as_ref()
        .and_then(|h| h.accounts.clone())
        .ok_or(ApiError::NoRoute)
}

/// The signed-in user of a request (set by [`super::admission::admit`]).
pub fn viewer(req: &HttpRequest) -> Option<Viewer> {
    req.extensions().get::<Viewer>().cloned()
}

pub(crate) fn sign_in_required() -> ApiError {
    ApiError::status(401, "sign in to see this", "sign_in_required")
}

use gitvista_errors::blocking;

/// Where the sign-in cookie is sent: the callbacks of every forge.
const LOGIN_PATH: &str = "/auth";

/// Forge `kind` of a configured server; 404 otherwise.
/// Cookie `name` with the attributes every accounts cookie has: HttpOnly, SameSite=Lax (sent
/// on the redirect back from the forge and on links from elsewhere, never on another site's
/// POST), Secure over https; `max_age` 0 deletes it.
pub fn accounts_cookie(
    accounts: &Accounts,
    name: &'static str,
    value: String,
    max_age: i64,
    path: &'static str,
) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(name, value)
        .path(path)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(accounts.secure())
        .finish()
}

fn provider(accounts: &Accounts, kind: &str) -> Result<Arc<dyn Provider>, ApiError> {
    accounts.provider(kind).cloned().ok_or(ApiError::NoRoute)
}

/// The forges one may sign in with: `{"forges": [{"kind": "github", "name": "GitHub"}]}`.
#[get("/auth/forges")]
pub async fn forges(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let list: Vec<serde_json::Value> = accounts
        .providers()
        .iter()
        .map(|p| json!({"kind": p.kind(), "name": p.name()}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "forges": list })))
}

/// Query of the sign-in start.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to return afterwards (a path on this server).
    back: Option<String>,
    /// `1`: also ask for private repositories (an OAuth App's `repo` scope on GitHub).
    private: Option<String>,
    /// `1`: also ask for what registering webhooks needs (GitLab's `api` scope).
    hooks: Option<String>,
}

impl LoginQuery {
    fn wanted(&self) -> Wanted {
        let yes = |v: &Option<String>| matches!(v.as_deref(), Some("1" | "true"));
        Wanted {
            private: yes(&self.private),
            hooks: yes(&self.hooks),
        }
    }
}

/// A redirect to a forge's authorize page, with the sealed state in a short-lived cookie.
fn to_forge(accounts: &Accounts, url: String, sealed: String) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", url))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(accounts_cookie(
            accounts,
            LOGIN_COOKIE,
            sealed,
            600,
            LOGIN_PATH,
        ))
        .finish()
}

/// Starts signing in with a forge: a redirect to its authorize page, with the state and PKCE
/// verifier in a short-lived signed cookie.
#[get("/auth/{forge}/login")]
pub async fn login(
    state: web::Data<AppState>,
    forge: web::Path<String>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let p = provider(&accounts, &forge)?;
    let (url, sealed) = accounts.begin(
        p.as_ref(),
        query.back.as_deref().unwrap_or("/"),
        query.wanted(),
        None,
    )?;
    Ok(to_forge(&accounts, url, sealed))
}

/// Starts connecting another forge account to the signed-in user (their session stays); 401
/// without one.
#[get("/auth/{forge}/connect")]
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
    forge: web::Path<String>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let p = provider(&accounts, &forge)?;
    let v = viewer(&req).ok_or_else(sign_in_required)?;
    let (url, sealed) = accounts.begin(
        p.as_ref(),
        query.back.as_deref().unwrap_or("/dashboard"),
        query.wanted(),
        Some(&v.user.id),
    )?;
    Ok(to_forge(&accounts, url, sealed))
}

/// Query a forge sends back.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// A forge's redirect back: checks the state, trades the code, and either starts a session or
/// links the account to the signed-in user, then returns to the page the user came from. Any
/// failure leaves nobody signed in and nothing linked.
#[get("/auth/{forge}/callback")]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    forge: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let p = provider(&accounts, &forge)?;
    let clear = accounts_cookie(&accounts, LOGIN_COOKIE, String::new(), 0, LOGIN_PATH);
    if query.error.is_some() {
        // The user said no on the forge.
        return Ok(HttpResponse::Found()
            .insert_header(("Location", format!("/?signin=cancelled&forge={}", p.kind())))
            .cookie(clear)
            .finish());
    }
    let cookie = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    let result = accounts
        .finish(
            p.as_ref(),
            query.code.as_deref().unwrap_or(""),
            query.state.as_deref().unwrap_or(""),
            cookie.as_deref(),
            viewer(&req).as_ref(),
        )
        .await;
    match result {
        Ok(done) => {
            let mut resp = HttpResponse::Found();
            resp.insert_header(("Location", done.back))
                .insert_header(("Cache-Control", "no-store"))
                .cookie(clear);
            if let Some(token) = done.session {
                resp.cookie(accounts_cookie(
                    &accounts,
                    SESSION_COOKIE,
                    token,
                    SESSION_SECS,
                    "/",
                ));
            }
            Ok(resp.finish())
        }
        Err(e) => {
            let mut resp = e.error_response();
            let _ = resp.add_cookie(&clear);
            Ok(resp)
        }
    }
}

/// Disconnects the signed-in user's account on a forge: its tokens are deleted and the
/// private repositories it let them read leave their list. 409 for the only account they have.
#[delete("/api/user/connections/{forge}")]
pub async fn disconnect(
    req: HttpRequest,
    state: web::Data<AppState>,
    forge: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = viewer(&req).ok_or_else(sign_in_required)?;
    let p = provider(&accounts, &forge)?;
    // Refused before anything is removed when it is the last account or not linked.
    accounts.may_unlink(&v.user, p.as_ref()).await?;
    if let Some(h) = &state.hosted {
        gitvista_hosting::hosted::hook_registration::unregister_by(h, &v.user, p.as_ref()).await;
    }
    accounts.unlink(&v.user, p.as_ref()).await?;
    let (store, uid) = (accounts.store.clone(), v.user.id.clone());
    let user = blocking(move || store.user(&uid))
        .await?
        .ok_or_else(|| ApiError::NotFound("the user is gone".into()))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(user_json(&accounts, &user).await?))
}

/// Query of the sign-out.
#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    /// `1`: end every session of the user ("sign out everywhere").
    everywhere: Option<String>,
}

/// Signs out: the session (or every session of the user) ends now, and the cookie is cleared.
#[post("/auth/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LogoutQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    if let Some(v) = viewer(&req) {
        if matches!(query.everywhere.as_deref(), Some("1" | "true")) {
            accounts.sign_out_everywhere(&v.user.id).await?;
        } else {
            accounts.sign_out(&v.session_id).await?;
        }
        tracing::info!(user = %v.user.id, "signed out");
    }
    Ok(HttpResponse::NoContent()
        .cookie(accounts_cookie(
            &accounts,
            SESSION_COOKIE,
            String::new(),
            0,
            "/",
        ))
        .finish())
}

/// The user as the pages show them.
async fn user_json(accounts: &Accounts, user: &User) -> Result<serde_json::Value, ApiError> {
    let (store, uid) = (accounts.store.clone(), user.id.clone());
    let (used, frozen) = blocking(move || {
        let rows = store.tracked_with_frozen(&uid)?;
        let frozen = rows.iter().filter(|(_, f)| *f).count();
        Ok((rows.len(), frozen))
    })
    .await?;
    let connections = accounts.connections(&user.id).await?;
    let plan = accounts.plan_of(user).await?;
    let linked: Vec<serde_json::Value> = connections
        .iter()
        .map(|c| {
            json!({
                "forge": c.provider,
                "name": accounts.provider(&c.provider).map(|p| p.name()),
                "login": c.login,
                "tokenKind": c.token_kind,
                "hooks": accounts
                    .provider(&c.provider)
                    .is_some_and(|p| p.registers_hooks(&c.token_kind, &c.scopes)),
                "linkedAt": c.created_at,
            })
        })
        .collect();
    let kinds: Vec<&str> = accounts.providers().iter().map(|p| p.kind()).collect();
    Ok(json!({
        "id": user.id,
        "login": user.login,
        "name": user.display_name,
        "avatarUrl": user.avatar_url,
        "plan": plan.plan,
        "usage": {"repos": used, "limit": accounts.plans.limit(plan.plan), "frozen": frozen},
        "billing": plan,
        "billingEnabled": accounts.billing,
        // The first connection's (the forge they signed up with).
        "tokenKind": connections.first().map(|c| c.token_kind.clone()),
        "connections": linked,
        "forges": kinds,
        "createdAt": user.created_at,
    }))
}

/// The signed-in user: login, name, avatar, plan and usage; 401 `sign_in_required` otherwise.
#[get("/api/user")]
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = viewer(&req).ok_or_else(sign_in_required)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(user_json(&accounts, &v.user).await?))
}

/// What the signed-in user tracks (state, size, commits, visibility), most recently viewed
/// first: the dashboard's list.
#[get("/api/user/tracked")]
pub async fn tracked_repos(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = viewer(&req).ok_or_else(sign_in_required)?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let (store, uid) = (accounts.store.clone(), v.user.id.clone());
    let (repos, registered) = blocking(move || {
        let repos = store.tracked_with_frozen(&uid)?;
        let ids: Vec<String> = repos.iter().map(|(r, _)| r.id.clone()).collect();
        let registered: std::collections::HashSet<String> =
            store.registered_among(&ids)?.into_iter().collect();
        Ok((repos, registered))
    })
    .await?;
    let list: Vec<serde_json::Value> = repos
        .iter()
        .map(|(r, frozen)| {
            let mut j = gitvista_hosting::hosted::status::repo_json(r);
            j["updates"] = updates_json(&h, &accounts, r, registered.contains(&r.id));
            // Over the plan: kept, not refreshed for this user until they keep it.
            j["frozen"] = json!(frozen);
            j
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "repos": list })))
}

/// How a tracked repository stays fresh: "live by webhook" (its hook delivered within the hook
/// window) or "polled every N"; and for a repository on a host without a known forge, the URL
/// and secret of its generic hook, to set up on that host.
fn updates_json(
    h: &Arc<gitvista_hosting::hosted::Hosted>,
    accounts: &Accounts,
    repo: &gitvista_store::Repo,
    registered: bool,
) -> serde_json::Value {
    let id = gitvista_actors::RepoId::parse(&repo.id);
    let since = id.as_ref().and_then(|i| h.hooks.clock.since(i));
    let live = since.is_some_and(|s| s < h.config.hook_window);
    let forge_known = accounts.forge_of(&repo.canonical_url).is_some()
        || crate::forge::forge_of(&repo.canonical_url).is_some();
    let generic = match h.hooks.generic_secret(&repo.id) {
        Some(secret) if !forge_known => json!({
            "url": format!("{}/webhooks/generic/{}", accounts.auth.public_url, repo.id),
            "secret": secret.expose(),
        }),
        _ => serde_json::Value::Null,
    };
    json!({
        "mode": if live { "webhook" } else { "polled" },
        "everySecs": if live { h.config.hooked_every.as_secs() } else { h.config.fetch_with_viewers.as_secs() },
        "hookSecsAgo": since.map(|s| s.as_secs()),
        "registered": registered,
        "generic": generic,
    })
}

/// Query of the repository picker.
#[derive(Debug, Deserialize)]
pub struct PickerQuery {
    /// Which forge's repositories (default: the first the user connected).
    forge: Option<String>,
    /// The forge's page (1-based).
    page: Option<u32>,
    /// Keep only repositories whose path contains this (case-insensitive).
    q: Option<String>,
}

/// Repositories the picker shows per page.
const PICKER_PAGE: u8 = 50;

/// "Your repositories": a page of the user's repositories on one of their forges (what their
/// token can read: with a GitHub App, what the installations share with it), each with the
/// GitVista id it would have and whether the user tracks it.
#[get("/api/user/repos")]
pub async fn picker(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PickerQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let v = viewer(&req).ok_or_else(sign_in_required)?;
    let kind = match &query.forge {
        Some(k) => k.clone(),
        None => accounts
            .connections(&v.user.id)
            .await?
            .into_iter()
            .map(|c| c.provider)
            .find(|k| accounts.provider(k).is_some())
            .ok_or_else(|| {
                ApiError::status(403, "connect a forge account first", "forge_not_connected")
            })?,
    };
    let p = accounts.provider(&kind).cloned().ok_or_else(|| {
        ApiError::bad_request(format!("no forge {kind:?} is configured"), "unknown_forge")
    })?;
    let token = accounts
        .token(&v.user, p.as_ref())
        .await
        .map_err(|e| gitvista_accounts::accounts::token_failed(&v.user, &e))?;
    let page = query.page.unwrap_or(1).clamp(1, 1000);
    let (repos, more) = p.user_repos(&token, page, PICKER_PAGE).await.map_err(|_| {
        ApiError::status(
            502,
            format!(
                "{} could not list your repositories; try again in a minute",
                p.name()
            ),
            gitvista_accounts::provider::unavailable_code(p.kind()),
        )
    })?;
    drop(token);
    let (store, uid) = (accounts.store.clone(), v.user.id.clone());
    let tracked = blocking(move || store.tracked(&uid)).await?;
    let needle = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let items: Vec<serde_json::Value> = repos
        .iter()
        .filter(|r| needle.is_empty() || r.full_name.to_lowercase().contains(&needle))
        .map(|r| {
            let id = h.policy.parse(&r.clone_url).ok().map(|u| u.id());
            json!({
                "fullName": r.full_name,
                "private": r.private,
                "url": r.clone_url,
                "description": r.description,
                "pushedAt": r.pushed_at,
                "id": id,
                "tracked": id.as_ref().is_some_and(|id| tracked.iter().any(|t| &t.id == id)),
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"repos": items, "page": page, "more": more, "forge": p.kind()})))
}

/// Every user with their plan and usage (admins).
#[get("/api/admin/users")]
pub async fn admin_users(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::admin::authorize(&req, &state).await?;
    let accounts = accounts(&state)?;
    let store = accounts.store.clone();
    let users = blocking(move || store.users()).await?;
    let mut out = Vec::with_capacity(users.len());
    for u in &users {
        out.push(user_json(&accounts, u).await?);
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"users": out})))
}

/// Body of `PATCH /api/admin/users/{id}`.
#[derive(Debug, Deserialize)]
pub struct UserPatch {
    plan: String,
}

/// Sets a user's plan (admins).
#[patch("/api/admin/users/{id}")]
pub async fn admin_set_plan(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    super::admin::authorize(&req, &state).await?;
    let accounts = accounts(&state)?;
    let plan = body.into_inner().plan;
    if !matches!(plan.as_str(), "free" | "paid") {
        return Err(ApiError::bad_request(
            "plan must be \"free\" or \"paid\"",
            "invalid_plan",
        ));
    }
    let (store, uid, p) = (accounts.store.clone(), id.to_string(), plan.clone());
    if !blocking(move || store.set_plan(&uid, &p)).await? {
        return Err(ApiError::NotFound(format!(
            "no user with id {:?}",
            id.as_str()
        )));
    }
    accounts.forget_user(&id);
    gitvista_accounts::audit::audit(
        &accounts.store,
        "admin".into(),
        None,
        "plan.changed",
        Some(format!("user:{}", id.as_str())),
        Some(format!("set to {plan}")),
    )
    .await;
    if let Some(h) = &state.hosted {
        h.enforce_quota(&id, None).await?;
    }
    let (store, uid) = (accounts.store.clone(), id.to_string());
    let user = blocking(move || store.user(&uid))
        .await?
        .ok_or_else(|| ApiError::NotFound("the user is gone".into()))?;
    Ok(HttpResponse::Ok().json(user_json(&accounts, &user).await?))
}

/// Ends every session of a user now (admins).
#[post("/api/admin/users/{id}/sign-out")]
pub async fn admin_sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::admin::authorize(&req, &state).await?;
    let accounts = accounts(&state)?;
    let ended = accounts.sign_out_everywhere(&id).await?;
    Ok(HttpResponse::Ok().json(json!({"ended": ended})))
}
