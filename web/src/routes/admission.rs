//! The request path: one middleware, [`admit`], takes every request through these steps, in
//! this order, and nothing else decides them:
//!
//! 1. **What it names**: the repository id, parsed once from the decoded path
//!    ([`super::repo_param::identify`]). Every later step and every handler (through the
//!    [`super::repo_param::RepoParam`] extractor) uses that value.
//! 2. **Who it is from and what they may see**: the session cookie, the admin token or a node of
//!    the cluster ([`super::forward::Trusted`]); then [`Decision`]: open, private (answered with
//!    private caching), hidden (the route answers exactly as for an unknown id), or refused
//!    (sign-in required, or the forge that must confirm an access cannot be asked).
//! 3. **Where it lives**, only for a request that may see it: a web node forwards repository
//!    reads to the worker that owns the repository, a worker refuses a cluster request for one
//!    it does not own any more ([`super::forward::place`]); everything else is answered here.
//! 4. **The handler**, then, on the way out, the private caching headers and the session's
//!    cookie (slid, or cleared when it names no live session).
//!
//! A request that changes state on a web node outside the primary region is replayed there
//! first, untouched ([`super::replay`]). The origin check and a worker's signature check run
//! before it, compression after it (a
//! forwarded answer, encoded by its owner, is not encoded twice): `startup.rs` states the order
//! of the layers.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse, ResponseError as _, web};

use super::AppState;
use super::account::{accounts_cookie, sign_in_required};
use super::forward::Place;
use gitvista_accounts::accounts::{Access, Accounts, SESSION_COOKIE, SESSION_SECS, Viewer};
use gitvista_actors::RepoId;
use gitvista_errors::{ApiError, blocking};

/// The request path (see the module's overview).
pub async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    // 1. What it names.
    let repo = super::repo_param::identify(&req);
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    // A request that changes state, on a web node outside the primary region: Fly's proxy
    // delivers it there, where all of this runs (`routes::replay`).
    if let Some(replay) = super::replay::write_to_primary(&req, &state) {
        return Ok(req.into_response(replay).map_into_right_body());
    }
    // The admin API says who may call it before anything reads the request (a body the route
    // would refuse must not tell a visitor that the route is there): off (404) without a
    // configured token, and only for the token or an admin session past sign-in itself.
    if let Err(refusal) = super::admin::admit_admin(&req, &state).await {
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    }
    // 2. Who it is from and what they may see.
    let visitor = Visitor::of(&req, &state).await;
    let decision = match &visitor {
        // Sign-in is off: every repository is open to everyone.
        None => Ok(Decision::Open),
        Some(v) => v.decide(&req, repo.as_ref().map(|r| &r.id)).await,
    };
    let mut res = match decision {
        Err(refusal) => {
            let resp = match &visitor {
                Some(v) => v.refusal(&req, refusal),
                None => refusal.error_response(),
            };
            req.into_response(resp).map_into_right_body()
        }
        // Answered as an unknown id would be, by the route itself, here.
        Ok(Decision::Hidden(hidden)) => super::HIDDEN
            .scope(hidden, next.call(req))
            .await?
            .map_into_left_body(),
        // 3. Where it lives; 4. the handler.
        Ok(may_see) => {
            let mut res = match super::forward::place(&state, &req, repo.as_ref()).await {
                Place::Here => next.call(req).await?.map_into_left_body(),
                Place::Answered(resp) => req.into_response(resp).map_into_right_body(),
            };
            // Kept by the browser of this user only, and asked again before every use, so no
            // shared cache and no stale copy outlives a revoked access.
            if may_see == Decision::Private {
                private_cache_headers(res.headers_mut());
            }
            res
        }
    };
    if let Some(v) = &visitor {
        v.keep_or_clear_session(&mut res);
    }
    Ok(res)
}

/// Who a request is from, on a server with sign-in on.
struct Visitor {
    accounts: Arc<Accounts>,
    /// The session cookie the request carried.
    cookie: Option<String>,
    /// The signed-in user that cookie names (recorded in the request for the handlers).
    viewer: Option<Viewer>,
    /// The admin token, or a node of the cluster forwarding a read whose reader it checked:
    /// may see every repository.
    admin: bool,
}

impl Visitor {
    /// Who `req` is from; `None` with sign-in off.
    async fn of(req: &ServiceRequest, state: &AppState) -> Option<Visitor> {
        let accounts = state.hosted.as_ref().and_then(|h| h.accounts.clone())?;
        let admin = super::admin::is_admin(req.request(), state).await
            || req.extensions().get::<super::forward::Trusted>().is_some();
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
        let viewer = match &cookie {
            Some(token) => accounts.identify(token).await,
            None => None,
        };
        if let Some(v) = &viewer {
            req.extensions_mut().insert(v.clone());
        }
        Some(Visitor {
            accounts,
            cookie,
            viewer,
            admin,
        })
    }

    /// Whether the request (whose path names `repo`) may go on, go on with its repository
    /// hidden, or is refused.
    async fn decide(
        &self,
        req: &ServiceRequest,
        repo: Option<&RepoId>,
    ) -> Result<Decision, ApiError> {
        let (accounts, viewer) = (&self.accounts, self.viewer.as_ref());
        if !self.admin
            && accounts.require_login
            && viewer.is_none()
            && !open_without_login(req.match_info().as_str())
        {
            return Err(sign_in_required());
        }
        let Some(id) = repo else {
            return Ok(Decision::Open);
        };
        let (store, rid) = (accounts.store.clone(), id.to_string());
        let Some(repo) = blocking(move || store.repo(&rid)).await? else {
            // Unknown: the route answers for itself.
            return Ok(Decision::Open);
        };
        let private = if repo.is_private {
            Decision::Private
        } else {
            Decision::Open
        };
        if self.admin {
            return Ok(private);
        }
        if let Some(v) = viewer
            && !repo.is_private
        {
            // Has it gone private? Asked in the background; the request does not wait.
            let (a, repo, user) = (Arc::clone(accounts), repo.clone(), v.user.clone());
            actix_web::rt::spawn(async move { a.notice_visibility(&repo, &user).await });
        }
        match accounts.may_read(&repo, viewer).await {
            Access::Granted => Ok(private),
            Access::Denied => Ok(Decision::Hidden(id.to_string())),
            Access::Unconfirmed(forge) => Err(ApiError::status(
                503,
                format!(
                    "{forge} could not be asked whether you may still read this repository; try again in a minute"
                ),
                gitvista_accounts::provider::unavailable_code(&forge.to_ascii_lowercase()),
            )),
        }
    }

    /// The answer to a refused request: a page for a visitor who must sign in goes through
    /// sign-in and back; everything else gets the error.
    fn refusal(&self, req: &ServiceRequest, e: ApiError) -> HttpResponse {
        let path = req.match_info().as_str();
        if !(self.accounts.require_login
            && self.viewer.is_none()
            && (path.starts_with("/r/") || path == "/dashboard"))
        {
            return e.error_response();
        }
        let back = match req.query_string() {
            "" => path.to_string(),
            q => format!("{path}?{q}"),
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("back", &back);
        // One forge: straight to it; several: the landing page asks which.
        let location = match self.accounts.providers() {
            [only] => format!("/auth/{}/login?{}", only.kind(), query.finish()),
            _ => format!("/?signin=required&{}", query.finish()),
        };
        HttpResponse::Found()
            .insert_header(("Location", location))
            .finish()
    }

    /// Gives a slid session its new cookie, and clears a cookie that names no live session.
    fn keep_or_clear_session<B>(&self, res: &mut ServiceResponse<B>) {
        let cookie = match (&self.viewer, &self.cookie) {
            (Some(v), _) => match &v.renewed {
                Some(token) => (token.clone(), SESSION_SECS),
                None => return,
            },
            (None, Some(_)) => (String::new(), 0),
            (None, None) => return,
        };
        let _ = res.response_mut().add_cookie(&accounts_cookie(
            &self.accounts,
            SESSION_COOKIE,
            cookie.0,
            cookie.1,
            "/",
        ));
    }
}

/// What may be done with a request, once who it is from is known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// It goes on (nothing private, or no repository).
    Open,
    /// It goes on, and its answer is about a private repository.
    Private,
    /// It goes on with its repository hidden: the route answers as for an unknown id.
    Hidden(String),
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
        || path == "/readyz"
        || path == "/metrics"
        || path == "/admin"
        || path.starts_with("/api/admin/")
        || path == "/api/user"
}

/// `Cache-Control: private, no-cache` (or the answer's own `no-store`) and `Vary: Cookie`.
fn private_cache_headers(headers: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{CACHE_CONTROL, HeaderValue, VARY};
    let no_store = headers
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"));
    if !no_store {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    }
    headers.append(VARY, HeaderValue::from_static("Cookie"));
}

#[cfg(test)]
mod tests {
    use super::open_without_login;

    #[test]
    fn only_sign_in_and_signed_routes_are_open_without_login() {
        assert!(open_without_login("/"));
        assert!(open_without_login("/auth/github/login"));
        assert!(!open_without_login("/api/repos/abc/graph"));
        assert!(!open_without_login("/r/abc"));
    }
}
