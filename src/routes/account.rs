//! Accounts over HTTP: `GET /auth/github/login`, `GET /auth/github/callback`,
//! `POST /auth/logout`, `GET /api/user`, `GET /api/user/repos` (the repository picker), the
//! admin's user routes, and the [`gate`] every request passes: who it is from (the session
//! cookie) and whether they may see the repository it names. With sign-in off every one of these
//! routes answers 404 and the gate lets everything through.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{
    HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, get, patch, post, web,
};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::accounts::{Access, Accounts, LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECS, Viewer};
use crate::error::ApiError;
use crate::store::accounts::User;

/// The accounts of a hosted server with sign-in on; 404 otherwise.
pub fn accounts(state: &AppState) -> Result<Arc<Accounts>, ApiError> {
    state
        .hosted
        .as_ref()
        .and_then(|h| h.accounts.clone())
        .ok_or(ApiError::NoRoute)
}

/// The signed-in user of a request (set by [`gate`]).
pub fn viewer(req: &HttpRequest) -> Option<Viewer> {
    req.extensions().get::<Viewer>().cloned()
}

fn sign_in_required() -> ApiError {
    ApiError::status(401, "sign in to see this", "sign_in_required")
}

use crate::error::blocking;

/// The repository id a path names: `/api/repos/{id}` and everything under it.
fn repo_id_in(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/repos/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then_some(id)
}

/// Paths open to visitors not signed in when `GITVISTA_REQUIRE_LOGIN=1`: the landing page and
/// its files, sign-in itself, the webhook receivers (signed by the forge), health and the
/// admin's own (token-guarded) routes.
fn open_without_login(path: &str) -> bool {
    path == "/"
        || path == "/favicon.ico"
        || path.starts_with("/static/")
        || path.starts_with("/auth/")
        || path.starts_with("/webhooks/")
        || path == "/healthz"
        || path == "/metrics"
        || path == "/admin"
        || path.starts_with("/api/admin/")
        || path == "/api/user"
}

/// Who the request is from, and whether they may see what it names. A private repository's
/// routes answer a visitor who may not read it exactly as an unknown id's do (404, same body);
/// a slid session gets its new cookie; a cookie that names no live session is cleared.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let accounts = state
        .as_ref()
        .and_then(|s| s.hosted.as_ref())
        .and_then(|h| h.accounts.clone());
    let (Some(accounts), Some(state)) = (accounts, state) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    // The admin token sees every repository, and so does a node of the cluster (a web node
    // forwarding a read decided who may see it).
    let admin = (state.admin.is_some() && super::admin::authorize(req.request(), &state).is_ok())
        || req
            .extensions()
            .get::<crate::cluster::forward::Trusted>()
            .is_some();
    let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
    let viewer = match &cookie {
        Some(token) => accounts.identify(token).await,
        None => None,
    };
    if let Some(v) = &viewer {
        req.extensions_mut().insert(v.clone());
    }
    let path = req.path().to_string();
    let refusal = if admin {
        Ok(None)
    } else {
        check(&accounts, &path, viewer.as_ref()).await
    };
    let mut res = match refusal {
        Ok(None) => next.call(req).await?.map_into_left_body(),
        // Answered as an unknown id would be, by the route itself.
        Ok(Some(hidden)) => super::HIDDEN
            .scope(hidden, next.call(req))
            .await?
            .map_into_left_body(),
        Err(e) => {
            let resp = if accounts.require_login
                && viewer.is_none()
                && (path.starts_with("/r/") || path == "/dashboard")
            {
                // A page: through sign-in and back.
                let back = match req.query_string() {
                    "" => path.clone(),
                    q => format!("{path}?{q}"),
                };
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                query.append_pair("back", &back);
                HttpResponse::Found()
                    .insert_header(("Location", format!("/auth/github/login?{}", query.finish())))
                    .finish()
            } else {
                e.error_response()
            };
            req.into_response(resp).map_into_right_body()
        }
    };
    let renewed = viewer.as_ref().and_then(|v| v.renewed.clone());
    if let Some(token) = renewed {
        let _ = res.response_mut().add_cookie(&accounts.cookie(
            SESSION_COOKIE,
            token,
            SESSION_SECS,
            "/",
        ));
    } else if cookie.is_some() && viewer.is_none() {
        let _ =
            res.response_mut()
                .add_cookie(&accounts.cookie(SESSION_COOKIE, String::new(), 0, "/"));
    }
    Ok(res)
}

/// Whether the request may go on (`Ok(None)`), go on with its repository hidden
/// (`Ok(Some(id))`: the route answers as for an unknown id), or is refused.
async fn check(
    accounts: &Arc<Accounts>,
    path: &str,
    viewer: Option<&Viewer>,
) -> Result<Option<String>, ApiError> {
    if accounts.require_login && viewer.is_none() && !open_without_login(path) {
        return Err(sign_in_required());
    }
    let Some(id) = repo_id_in(path) else {
        return Ok(None);
    };
    let (store, rid) = (accounts.store.clone(), id.to_string());
    let Some(repo) = blocking(move || store.repo(&rid)).await? else {
        // Unknown: the route answers for itself.
        return Ok(None);
    };
    if let Some(v) = viewer
        && !repo.is_private
    {
        // Has it gone private? Asked in the background; the request does not wait.
        let (a, repo, user) = (Arc::clone(accounts), repo.clone(), v.user.clone());
        actix_web::rt::spawn(async move { a.notice_visibility(&repo, &user).await });
    }
    match accounts.may_read(&repo, viewer).await {
        Access::Granted => Ok(None),
        Access::Denied => Ok(Some(id.to_string())),
        Access::Unconfirmed => Err(ApiError::status(
            503,
            "GitHub could not be asked whether you may still read this repository; try again in a minute",
            "github_unavailable",
        )),
    }
}

/// Query of the sign-in start.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to return afterwards (a path on this server).
    back: Option<String>,
    /// `1`: also ask for private repositories (an OAuth App's `repo` scope).
    private: Option<String>,
}

/// Starts signing in with GitHub: a redirect to GitHub's authorize page, with the state and
/// PKCE verifier in a short-lived signed cookie.
#[get("/auth/github/login")]
pub async fn login(
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let private = matches!(query.private.as_deref(), Some("1" | "true"));
    let (url, sealed) = accounts.begin(query.back.as_deref().unwrap_or("/"), private)?;
    Ok(HttpResponse::Found()
        .insert_header(("Location", url))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(accounts.cookie(LOGIN_COOKIE, sealed, 600, "/auth/github"))
        .finish())
}

/// Query GitHub sends back.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// GitHub's redirect back: checks the state, trades the code, starts a session and returns to
/// the page the user came from. Any failure leaves nobody signed in.
#[get("/auth/github/callback")]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let clear = accounts.cookie(LOGIN_COOKIE, String::new(), 0, "/auth/github");
    if query.error.is_some() {
        // The user said no on GitHub.
        return Ok(HttpResponse::Found()
            .insert_header(("Location", "/?signin=cancelled"))
            .cookie(clear)
            .finish());
    }
    let cookie = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    let result = accounts
        .finish(
            query.code.as_deref().unwrap_or(""),
            query.state.as_deref().unwrap_or(""),
            cookie.as_deref(),
        )
        .await;
    match result {
        Ok((_, token, back)) => Ok(HttpResponse::Found()
            .insert_header(("Location", back))
            .insert_header(("Cache-Control", "no-store"))
            .cookie(clear)
            .cookie(accounts.cookie(SESSION_COOKIE, token, SESSION_SECS, "/"))
            .finish()),
        Err(e) => {
            let mut resp = e.error_response();
            let _ = resp.add_cookie(&clear);
            Ok(resp)
        }
    }
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
        .cookie(accounts.cookie(SESSION_COOKIE, String::new(), 0, "/"))
        .finish())
}

/// The user as the pages show them.
async fn user_json(accounts: &Accounts, user: &User) -> Result<serde_json::Value, ApiError> {
    let (store, uid) = (accounts.store.clone(), user.id.clone());
    let used = blocking(move || store.tracked_count(&uid)).await?;
    Ok(json!({
        "id": user.id,
        "login": user.github_login,
        "name": user.display_name,
        "avatarUrl": user.avatar_url,
        "plan": user.plan,
        "usage": {"repos": used, "limit": accounts.plans.limit(&user.plan)},
        "tokenKind": user.token_kind,
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
        let repos = store.tracked(&uid)?;
        let ids: Vec<String> = repos.iter().map(|r| r.id.clone()).collect();
        let registered: std::collections::HashSet<String> =
            store.registered_among(&ids)?.into_iter().collect();
        Ok((repos, registered))
    })
    .await?;
    let list: Vec<serde_json::Value> = repos
        .iter()
        .map(|r| {
            let mut j = super::hosted::repo_json(r);
            j["updates"] = updates_json(&h, &accounts, r, registered.contains(&r.id));
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
    h: &Arc<crate::hosted::Hosted>,
    accounts: &Accounts,
    repo: &crate::store::Repo,
    registered: bool,
) -> serde_json::Value {
    let id = gitvista_actors::RepoId::parse(&repo.id);
    let since = id.as_ref().and_then(|i| h.hooks.clock.since(i));
    let live = since.is_some_and(|s| s < h.config.hook_window);
    let forge_known = accounts.github_path(&repo.canonical_url).is_some()
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
    /// GitHub's page (1-based).
    page: Option<u32>,
    /// Keep only repositories whose `owner/name` contains this (case-insensitive).
    q: Option<String>,
}

/// Repositories the picker shows per page.
const PICKER_PAGE: u8 = 50;

/// "Your repositories": a page of the user's GitHub repositories (what their token can read:
/// with a GitHub App, what the installations share with it), each with the GitVista id it
/// would have and whether the user tracks it.
#[get("/api/user/repos")]
pub async fn picker(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PickerQuery>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let v = viewer(&req).ok_or_else(sign_in_required)?;
    let token = accounts
        .token(&v.user)
        .await
        .map_err(|e| crate::auth::accounts::token_failed(&v.user, &e))?;
    let page = query.page.unwrap_or(1).clamp(1, 1000);
    let (repos, more) = accounts
        .github
        .user_repos(&token, page, PICKER_PAGE)
        .await
        .map_err(|_| {
            ApiError::status(
                502,
                "GitHub could not list your repositories; try again in a minute",
                "github_unavailable",
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
        .json(json!({"repos": items, "page": page, "more": more})))
}

/// Every user with their plan and usage (admins).
#[get("/api/admin/users")]
pub async fn admin_users(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::admin::authorize(&req, &state)?;
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
    super::admin::authorize(&req, &state)?;
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
    super::admin::authorize(&req, &state)?;
    let accounts = accounts(&state)?;
    let ended = accounts.sign_out_everywhere(&id).await?;
    Ok(HttpResponse::Ok().json(json!({"ended": ended})))
}

#[cfg(test)]
mod tests {
    use super::{open_without_login, repo_id_in};

    #[test]
    fn the_gate_finds_the_repository_a_path_names() {
        assert_eq!(
            repo_id_in("/api/repos/0123456789abcdef"),
            Some("0123456789abcdef")
        );
        assert_eq!(
            repo_id_in("/api/repos/0123456789abcdef/graph"),
            Some("0123456789abcdef")
        );
        assert_eq!(repo_id_in("/api/repos/x/ws"), Some("x"));
        assert_eq!(repo_id_in("/api/repos"), None);
        assert_eq!(repo_id_in("/api/repos/"), None);
        assert_eq!(repo_id_in("/api/admin/repos"), None);
        assert!(open_without_login("/"));
        assert!(open_without_login("/auth/github/login"));
        assert!(!open_without_login("/api/repos/abc/graph"));
        assert!(!open_without_login("/r/abc"));
    }
}
