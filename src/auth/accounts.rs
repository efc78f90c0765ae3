//! Accounts at work: the GitHub sign-in (state and PKCE in a signed cookie, code exchange,
//! user, session), who a request is from (the session cookie, checked against its row through a
//! short cache and slid forward while the user is active), users' forge tokens (decrypted for
//! one call, refreshed before they expire), and whether a user may read a private repository
//! (their own token asked, at most every [`Accounts::access_recheck`]).
//!
//! Everything that blocks (the store) runs on the blocking pool; GitHub calls are async.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::github::{GitHubClient, GitHubError, GitHubRepo};
use super::jwt::{self, Claims};
use super::settings::GitHubAuth;
use crate::error::ApiError;
use crate::store::accounts::{Session, SignedIn, Tokens, User};
use crate::store::{Repo, Store, now};

/// The session cookie.
pub const SESSION_COOKIE: &str = "gitvista_session";
/// The sign-in's state cookie (state, PKCE verifier, where to go back to).
pub const LOGIN_COOKIE: &str = "gitvista_signin";
/// A session lasts this long past the user's last activity.
pub const SESSION_SECS: i64 = 3600;
/// A session is slid forward (a new cookie, a row update) at most this often.
const SLIDE_EVERY: i64 = 300;
/// How long a looked-up session is trusted without asking the store again: a sign-out on this
/// node takes effect at once, one on another node within this.
pub const SESSION_CACHE: Duration = Duration::from_secs(5);
/// A sign-in must come back from GitHub within this.
const LOGIN_SECS: i64 = 600;
/// Access tokens are refreshed when they expire within this.
const REFRESH_MARGIN: i64 = 300;
/// When GitHub cannot be asked, a user whose access was confirmed this recently keeps it.
const ACCESS_GRACE: i64 = 3600;

/// What plans allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plans {
    /// Repositories a `free` user may track (`GITVISTA_FREE_REPOS`).
    pub free: i64,
    /// Repositories a `paid` user may track (`GITVISTA_PAID_REPOS`).
    pub paid: i64,
}

impl Default for Plans {
    fn default() -> Self {
        Plans { free: 5, paid: 50 }
    }
}

impl Plans {
    /// How many repositories `plan` allows.
    pub fn limit(&self, plan: &str) -> i64 {
        if plan == "paid" { self.paid } else { self.free }
    }
}

/// The sign-in's state, sealed into [`LOGIN_COOKIE`].
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The `state` sent to GitHub.
    state: String,
    /// The PKCE verifier (its S256 challenge went to GitHub).
    verifier: String,
    /// Where to send the user afterwards (a path on this server).
    back: String,
    /// Expiry.
    exp: i64,
}

/// A signed-in request's user.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user (tokens as ciphertext).
    pub user: User,
    /// The session's id.
    pub session_id: String,
    /// A new session cookie to send (the session was slid forward).
    pub renewed: Option<String>,
}

/// Whether a user may read a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Yes.
    Granted,
    /// No (or the repository is unknown to them): answer as for an unknown id.
    Denied,
    /// Their access could not be confirmed (GitHub unreachable) and is too old to trust.
    Unconfirmed,
}

#[derive(Clone)]
struct CachedSession {
    session: Session,
    user: User,
    at: Instant,
}

/// Accounts, configured (hosted mode with `GITHUB_CLIENT_ID`).
pub struct Accounts {
    /// The settings.
    pub auth: Arc<GitHubAuth>,
    /// GitHub's web side and API.
    pub github: GitHubClient,
    /// Users, sessions, access.
    pub store: Store,
    /// What plans allow.
    pub plans: Plans,
    /// Cookies are `Secure` (the public URL is https).
    pub secure: bool,
    /// `GITVISTA_REQUIRE_LOGIN=1`: nothing is shown without signing in.
    pub require_login: bool,
    /// A viewer's access to a private repository is asked of GitHub again after this.
    pub access_recheck: Duration,
    /// `host[:port]` of GitHub's web side (repositories there can be private).
    github_host: String,
    sessions: quick_cache::sync::Cache<String, CachedSession>,
    /// States already used (a replayed callback is refused), with their expiry.
    used_states: Mutex<HashMap<String, i64>>,
    /// One refresh at a time per user.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When this process last looked at whether a public repository a user tracks went
    /// private, by (repository, user).
    visibility_looked: quick_cache::sync::Cache<(String, String), Instant>,
    /// In a cluster: tells the other nodes to forget a revoked session (`s:<id>`) or a changed
    /// user (`u:<id>`) at once, rather than after their [`SESSION_CACHE`].
    pub revocations: std::sync::OnceLock<Arc<dyn Fn(String) + Send + Sync>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("auth", &self.auth)
            .field("plans", &self.plans)
            .finish_non_exhaustive()
    }
}

/// `N` random bytes from the operating system (zeroed when dropped).
fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, ApiError> {
    let mut buf = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *buf).map_err(|e| {
        ApiError::status(
            503,
            format!("no randomness from the system: {e}"),
            "unavailable",
        )
    })?;
    Ok(buf)
}

/// `N` random bytes in base64url (ids, states, PKCE verifiers).
pub fn random_id<const N: usize>() -> Result<String, ApiError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>()?.as_slice()))
}

use crate::error::blocking;

fn github_failed(e: &GitHubError) -> ApiError {
    match e {
        GitHubError::Refused(why) => ApiError::status(
            400,
            format!("GitHub did not accept the sign-in ({why}); sign in again"),
            "sign_in_refused",
        ),
        GitHubError::Upstream(_) | GitHubError::Unreachable(_) => ApiError::status(
            502,
            "GitHub could not be reached or answered with an error; try again in a minute",
            "github_unavailable",
        ),
    }
}

/// Why a user's token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Expired and not refreshable, or refused by GitHub: the user must sign in again.
    #[error("the GitHub sign-in has expired; sign in again")]
    Expired,
    /// GitHub could not be reached to refresh it.
    #[error("GitHub could not be reached to renew the sign-in")]
    Unavailable,
    /// The stored ciphertext does not decrypt (key not configured, tampered).
    #[error("{0}")]
    Stored(String),
}

impl Accounts {
    /// Accounts over `store` with `auth`'s settings.
    pub fn new(auth: Arc<GitHubAuth>, store: Store, secure: bool) -> Result<Accounts, String> {
        let github = GitHubClient::new(&auth)?;
        let web = url::Url::parse(&auth.web_url).map_err(|e| e.to_string())?;
        let github_host = match (web.host_str(), web.port()) {
            (Some(h), Some(p)) => format!("{}:{p}", h.to_ascii_lowercase()),
            (Some(h), None) => h.to_ascii_lowercase(),
            (None, _) => return Err("GITVISTA_GITHUB_URL has no host".into()),
        };
        Ok(Accounts {
            auth,
            github,
            store,
            plans: Plans::default(),
            secure,
            require_login: false,
            access_recheck: Duration::from_secs(600),
            github_host,
            sessions: quick_cache::sync::Cache::new(10_000),
            used_states: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
            visibility_looked: quick_cache::sync::Cache::new(10_000),
            revocations: std::sync::OnceLock::new(),
        })
    }

    /// Tells the other nodes what to forget (see [`Accounts::revocations`]).
    fn tell_others(&self, what: String) {
        if let Some(tell) = self.revocations.get() {
            tell(what);
        }
    }

    /// Forgets, on this node only, what another node said was revoked: `s:<session id>` or
    /// `u:<user id>`.
    pub fn forget_revoked(&self, what: &str) {
        if let Some(sid) = what.strip_prefix("s:") {
            self.sessions.remove(sid);
        } else if let Some(uid) = what.strip_prefix("u:") {
            self.sessions.retain(|_, c| c.user.id != uid);
        }
    }

    /// Cookie `name` with the attributes every accounts cookie has: HttpOnly, SameSite=Lax
    /// (sent on the redirect back from GitHub and on links from elsewhere, never on another
    /// site's POST), Secure over https; `max_age` 0 deletes it.
    pub fn cookie(
        &self,
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
            .secure(self.secure)
            .finish()
    }

    /// Starts a sign-in: GitHub's authorize URL (state, S256 challenge, the callback; the `repo`
    /// scope only when the user asked to include private repositories, which classic OAuth Apps
    /// need and GitHub Apps ignore) and the sealed cookie that remembers state and verifier.
    pub fn begin(&self, back: &str, private: bool) -> Result<(String, String), ApiError> {
        let state = random_id::<24>()?;
        let verifier = random_id::<48>()?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let back = safe_back(back);
        let sealed = jwt::seal(
            &self.auth.jwt,
            "signin",
            &Pending {
                state: state.clone(),
                verifier,
                back,
                exp: now() + LOGIN_SECS,
            },
        );
        let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", self.auth.web_url))
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.auth.client_id)
            .append_pair("redirect_uri", &self.auth.callback_url)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "true");
        if private {
            url.query_pairs_mut().append_pair("scope", "repo");
        }
        Ok((url.to_string(), sealed))
    }

    /// Finishes a sign-in: checks `state` against the cookie (once), trades the code, asks who
    /// the user is, stores them with their tokens encrypted and starts a session. Answers the
    /// user, the session cookie's token and where to go. Nothing is stored unless every step
    /// succeeded.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        cookie: Option<&str>,
    ) -> Result<(User, String, String), ApiError> {
        let bad_state = || {
            ApiError::status(
                400,
                "this sign-in link is not the one this browser started (or it was used already); start again from the sign-in button",
                "invalid_state",
            )
        };
        let pending: Pending = cookie
            .and_then(|c| jwt::open(&self.auth.jwt, "signin", c))
            .ok_or_else(bad_state)?;
        if pending.exp <= now() {
            return Err(ApiError::status(
                400,
                "the sign-in took longer than ten minutes; start again",
                "sign_in_expired",
            ));
        }
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            pending.state.as_bytes(),
            state.as_bytes(),
        )) {
            return Err(bad_state());
        }
        {
            let mut used = self.used_states.lock().unwrap_or_else(|e| e.into_inner());
            let at = now();
            used.retain(|_, exp| *exp > at);
            if used.insert(pending.state.clone(), pending.exp).is_some() {
                return Err(bad_state());
            }
        }
        if code.is_empty() || code.len() > 512 {
            return Err(ApiError::status(
                400,
                "GitHub sent no code",
                "sign_in_refused",
            ));
        }
        let grant = self
            .github
            .exchange_code(code, &pending.verifier)
            .await
            .map_err(|e| github_failed(&e))?;
        let who = self
            .github
            .user(&grant.access_token)
            .await
            .map_err(|e| github_failed(&e))?;
        let store = self.store.clone();
        let existing = blocking(move || store.user_by_github_id(who.id)).await?;
        let user_id = match &existing {
            Some(u) => u.id.clone(),
            None => hex_id()?,
        };
        let cipher = &self.auth.cipher;
        let sealed = |t: &str| {
            cipher.encrypt(&user_id, t).map_err(|e| {
                ApiError::status(
                    503,
                    format!("the token could not be stored: {e}"),
                    "unavailable",
                )
            })
        };
        let access = sealed(&grant.access_token)?;
        let refresh = grant
            .refresh_token
            .as_ref()
            .map(|t| sealed(t))
            .transpose()?;
        let at = now();
        let kind = if grant.refresh_token.is_some() || grant.expires_in.is_some() {
            "app"
        } else {
            "oauth"
        };
        let session_id = random_id::<32>()?;
        let expires = at + SESSION_SECS;
        let (store, sid, uid) = (self.store.clone(), session_id.clone(), user_id.clone());
        let user = blocking(move || {
            let user = store.sign_in_user(
                &uid,
                &SignedIn {
                    github_id: who.id,
                    login: &who.login,
                    email: who.email.as_deref(),
                    name: who.name.as_deref(),
                    avatar_url: who.avatar_url.as_deref(),
                    access_token: &access,
                    refresh_token: refresh.as_deref(),
                    token_expires_at: grant.expires_in.map(|s| at + s),
                    refresh_expires_at: grant.refresh_expires_in.map(|s| at + s),
                    token_kind: kind,
                },
            )?;
            store.create_session(&sid, &user.id, expires)?;
            Ok(user)
        })
        .await?;
        tracing::info!(user = %user.id, login = %user.github_login, kind, "signed in");
        metrics::counter!("gitvista_sign_ins_total").increment(1);
        let token = jwt::sign(
            &self.auth.jwt,
            &Claims {
                sub: user.id.clone(),
                sid: session_id,
                exp: expires,
            },
        );
        Ok((user, token, pending.back))
    }

    /// The user of a session cookie's token, if it names a live session; slides the session
    /// forward (and answers a new token) when it was last slid over [`SLIDE_EVERY`] ago.
    pub async fn identify(&self, token: &str) -> Option<Viewer> {
        let at = now();
        let claims = jwt::verify(&self.auth.jwt, token, at).ok()?;
        let cached = self
            .sessions
            .get(&claims.sid)
            .filter(|c| c.at.elapsed() < SESSION_CACHE);
        let cached = match cached {
            Some(c) => c,
            None => {
                let (store, sid) = (self.store.clone(), claims.sid.clone());
                let found = blocking(move || {
                    let Some(session) = store.session(&sid)? else {
                        return Ok(None);
                    };
                    Ok(store.user(&session.user_id)?.map(|user| (session, user)))
                })
                .await
                .ok()??;
                let c = CachedSession {
                    session: found.0,
                    user: found.1,
                    at: Instant::now(),
                };
                self.sessions.insert(claims.sid.clone(), c.clone());
                c
            }
        };
        if !cached.session.is_live(at) || cached.session.user_id != claims.sub {
            return None;
        }
        let mut renewed = None;
        if cached.session.expires_at - at < SESSION_SECS - SLIDE_EVERY {
            let expires = at + SESSION_SECS;
            let (store, sid) = (self.store.clone(), claims.sid.clone());
            if let Ok(true) = blocking(move || store.extend_session(&sid, expires)).await {
                self.sessions.remove(&claims.sid);
                renewed = Some(jwt::sign(
                    &self.auth.jwt,
                    &Claims {
                        exp: expires,
                        ..claims.clone()
                    },
                ));
            }
        }
        Some(Viewer {
            user: cached.user,
            session_id: claims.sid,
            renewed,
        })
    }

    /// Ends one session now (sign-out).
    pub async fn sign_out(&self, session_id: &str) -> Result<(), ApiError> {
        self.sessions.remove(session_id);
        self.tell_others(format!("s:{session_id}"));
        let (store, sid) = (self.store.clone(), session_id.to_string());
        blocking(move || store.revoke_session(&sid)).await?;
        Ok(())
    }

    /// Ends every session of `user_id` now ("sign out everywhere", an admin's revoke);
    /// answers how many were live.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<usize, ApiError> {
        let (store, uid) = (self.store.clone(), user_id.to_string());
        let n = blocking(move || store.revoke_user_sessions(&uid)).await?;
        // Cached lookups of this user's sessions are dropped here, and on the other nodes of a
        // cluster at once (through Redis); without that, within SESSION_CACHE.
        self.forget_user(user_id);
        Ok(n)
    }

    /// Forgets cached lookups of `user_id` (their plan or profile changed, or they were signed
    /// out everywhere), here and on the other nodes.
    pub fn forget_user(&self, user_id: &str) {
        self.sessions.retain(|_, c| c.user.id != user_id);
        self.tell_others(format!("u:{user_id}"));
    }

    /// `user`'s GitHub access token, decrypted for one use; refreshed first (and the new pair
    /// stored) when it expires within [`REFRESH_MARGIN`].
    pub async fn token(&self, user: &User) -> Result<Zeroizing<String>, TokenError> {
        let cipher = &self.auth.cipher;
        let decrypt = |u: &User| {
            cipher
                .decrypt(&u.id, &u.access_token)
                .map_err(|e| TokenError::Stored(e.to_string()))
        };
        let fresh = |u: &User| {
            u.token_expires_at
                .is_none_or(|t| t > now() + REFRESH_MARGIN)
        };
        if fresh(user) {
            return decrypt(user);
        }
        let lock = {
            let mut map = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(map.entry(user.id.clone()).or_default())
        };
        let _held = lock.lock().await;
        // Another request (or node) may have refreshed while this one waited.
        let (store, uid) = (self.store.clone(), user.id.clone());
        let current = blocking(move || store.user(&uid))
            .await
            .map_err(|_| TokenError::Unavailable)?
            .ok_or(TokenError::Expired)?;
        if fresh(&current) {
            return decrypt(&current);
        }
        let Some(stored_refresh) = &current.refresh_token else {
            return Err(TokenError::Expired);
        };
        if current.refresh_expires_at.is_some_and(|t| t <= now()) {
            return Err(TokenError::Expired);
        }
        let refresh = cipher
            .decrypt(&current.id, stored_refresh)
            .map_err(|e| TokenError::Stored(e.to_string()))?;
        let grant = match self.github.refresh(&refresh).await {
            Ok(g) => g,
            Err(GitHubError::Refused(_)) => {
                // A used refresh token stops working: if another node refreshed first, its
                // pair is in the store now.
                let (store, uid) = (self.store.clone(), user.id.clone());
                if let Ok(Some(again)) = blocking(move || store.user(&uid)).await
                    && again.access_token != current.access_token
                    && fresh(&again)
                {
                    return decrypt(&again);
                }
                tracing::info!(user = %user.id, "GitHub refused the refresh token; the user must sign in again");
                return Err(TokenError::Expired);
            }
            Err(_) => return Err(TokenError::Unavailable),
        };
        let seal = |t: &str| {
            cipher
                .encrypt(&current.id, t)
                .map_err(|e| TokenError::Stored(e.to_string()))
        };
        let access = seal(&grant.access_token)?;
        let refresh_ct = grant.refresh_token.as_ref().map(|t| seal(t)).transpose()?;
        let at = now();
        let (store, uid, previous) = (
            self.store.clone(),
            current.id.clone(),
            current.access_token.clone(),
        );
        let expires = grant.expires_in.map(|s| at + s);
        let refresh_expires = grant
            .refresh_expires_in
            .map(|s| at + s)
            .or(current.refresh_expires_at);
        blocking(move || {
            store.replace_tokens(
                &uid,
                &previous,
                &Tokens {
                    access_token: &access,
                    refresh_token: refresh_ct.as_deref(),
                    token_expires_at: expires,
                    refresh_expires_at: refresh_expires,
                },
            )
        })
        .await
        .map_err(|_| TokenError::Unavailable)?;
        self.forget_user(&user.id);
        metrics::counter!("gitvista_token_refreshes_total").increment(1);
        tracing::info!(user = %user.id, "refreshed the GitHub token");
        Ok(grant.access_token)
    }

    /// `owner/name` of a repository on the configured GitHub (the only forge whose private
    /// repositories can be read), from its canonical URL.
    pub fn github_path(&self, canonical_url: &str) -> Option<(String, String)> {
        let url = url::Url::parse(canonical_url).ok()?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return None,
        };
        if !host.eq_ignore_ascii_case(&self.github_host) {
            return None;
        }
        let mut segs = url.path_segments()?.filter(|s| !s.is_empty());
        let owner = segs.next()?.to_string();
        let name = segs.next()?.trim_end_matches(".git").to_string();
        if segs.next().is_some() {
            return None;
        }
        Some((owner, name))
    }

    /// What GitHub says of `user`'s access to `owner/name` with their own token.
    pub async fn ask_github(
        &self,
        user: &User,
        owner: &str,
        name: &str,
    ) -> Result<Option<GitHubRepo>, ApiError> {
        let token = self.token(user).await.map_err(|e| token_failed(user, &e))?;
        match self.github.repo(&token, owner, name).await {
            Ok(r) => Ok(r),
            Err(GitHubError::Refused(_)) => Err(ApiError::status(
                401,
                "GitHub no longer accepts your sign-in; sign in again",
                "sign_in_expired",
            )),
            Err(_) => Err(ApiError::status(
                502,
                "GitHub could not be reached or answered with an error; try again in a minute",
                "github_unavailable",
            )),
        }
    }

    /// Whether `viewer` may read `repo` now. Public repositories: anyone. Private: a user who
    /// tracks it and whose token GitHub let read it within [`Accounts::access_recheck`] (asked
    /// again when older; a "no" removes their access; GitHub saying the repository went
    /// private marks it so).
    pub async fn may_read(&self, repo: &Repo, viewer: Option<&Viewer>) -> Access {
        if !repo.is_private {
            return Access::Granted;
        }
        let Some(viewer) = viewer else {
            return Access::Denied;
        };
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), viewer.user.id.clone());
        let Ok(Some(checked)) = blocking(move || store.access(&rid, &uid)).await else {
            return Access::Denied;
        };
        let at = now();
        let checked = checked.unwrap_or(0);
        if at - checked < self.access_recheck.as_secs() as i64 {
            return Access::Granted;
        }
        self.recheck(repo, &viewer.user, checked).await
    }

    /// For a public repository on GitHub that `user` tracks: asks GitHub again (with their
    /// token) when the last answer is older than the recheck interval, so a repository made
    /// private is marked private (and from then on hidden from everyone else). Run in the
    /// background of a request; at most once per interval per repository and user.
    pub async fn notice_visibility(&self, repo: &Repo, user: &User) {
        if repo.is_private || self.github_path(&repo.canonical_url).is_none() {
            return;
        }
        let key = (repo.id.clone(), user.id.clone());
        if self
            .visibility_looked
            .get(&key)
            .is_some_and(|at| at.elapsed() < self.access_recheck)
        {
            return;
        }
        self.visibility_looked.insert(key, Instant::now());
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), user.id.clone());
        let Ok(Some(checked)) = blocking(move || store.access(&rid, &uid)).await else {
            return;
        };
        let checked = checked.unwrap_or(0);
        if now() - checked >= self.access_recheck.as_secs() as i64 {
            self.recheck(repo, user, checked).await;
        }
    }

    /// Asks GitHub again whether `user` may read `repo` and records the answer.
    pub async fn recheck(&self, repo: &Repo, user: &User, checked: i64) -> Access {
        let Some((owner, name)) = self.github_path(&repo.canonical_url) else {
            return Access::Denied;
        };
        let answer = self.ask_github(user, &owner, &name).await;
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), user.id.clone());
        match answer {
            Ok(Some(found)) => {
                let private = found.private;
                let _ = blocking(move || {
                    store.grant_access(&rid, &uid, Some(now()))?;
                    store.set_private(&rid, private)
                })
                .await;
                Access::Granted
            }
            Ok(None) | Err(ApiError::Status { status: 401, .. }) => {
                tracing::info!(repo = %repo.id, user = %user.id, "GitHub no longer lets the user read the repository; access removed");
                metrics::counter!("gitvista_access_lost_total").increment(1);
                let _ = blocking(move || store.revoke_access(&rid, &uid)).await;
                Access::Denied
            }
            Err(_) if now() - checked < ACCESS_GRACE => Access::Granted,
            Err(_) => Access::Unconfirmed,
        }
    }

    /// The credential a git job on `repo_id` uses: none for a public repository; for a private
    /// one the token of the user who tracks it and was confirmed most recently, refreshed if
    /// needed (the next one when a token is dead).
    pub async fn credential(
        &self,
        repo_id: &str,
    ) -> Result<Option<gitvista_actors::clone_queue::Credential>, String> {
        let (store, rid) = (self.store.clone(), repo_id.to_string());
        let repo = blocking(move || store.repo(&rid))
            .await
            .map_err(|e| e.to_string())?;
        let Some(repo) = repo.filter(|r| r.is_private) else {
            return Ok(None);
        };
        let (store, rid) = (self.store.clone(), repo.id.clone());
        let readers = blocking(move || store.readers(&rid))
            .await
            .map_err(|e| e.to_string())?;
        for user in &readers {
            if let Ok(token) = self.token(user).await {
                return Ok(Some(gitvista_actors::clone_queue::Credential::basic(
                    "x-access-token",
                    &token,
                )));
            }
        }
        Err(format!(
            "none of the {} users who track it has a GitHub sign-in that still works",
            readers.len()
        ))
    }
}

/// What a user is told when their token cannot be used: sign in again (an expired sign-in, or
/// one stored under a key the server no longer has, which the log names for the operator), or
/// try again later (GitHub unreachable).
pub fn token_failed(user: &User, e: &TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::status(401, e.to_string(), "sign_in_expired"),
        TokenError::Unavailable => ApiError::status(502, e.to_string(), "github_unavailable"),
        TokenError::Stored(why) => {
            tracing::warn!(user = %user.id, error = %why, "a stored GitHub token cannot be decrypted");
            ApiError::status(
                401,
                "the server cannot use your stored GitHub sign-in; sign in again",
                "sign_in_expired",
            )
        }
    }
}

/// A new user id: 16 random bytes in hex.
fn hex_id() -> Result<String, ApiError> {
    Ok(random_bytes::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A path on this server to return to after signing in: `/...` but not `//...` (another host)
/// nor anything with a backslash or control character; `/` otherwise.
pub fn safe_back(back: &str) -> String {
    let ok = back.starts_with('/')
        && !back.starts_with("//")
        && back.len() <= 1024
        && !back.chars().any(|c| c == '\\' || c.is_control());
    if ok {
        back.to_string()
    } else {
        "/".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_back;

    #[test]
    fn only_paths_on_this_server_are_returned_to() {
        for ok in ["/", "/r/0123456789abcdef?commit=abc", "/dashboard"] {
            assert_eq!(safe_back(ok), ok);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_back(bad), "/", "{bad:?}");
        }
    }
}
