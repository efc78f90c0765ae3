//! Accounts at work: signing in with any configured forge (state and PKCE in a signed cookie,
//! code exchange, user, session) and linking more forges to the same account, who a request is
//! from (the session cookie, checked against its row through a short cache and slid forward
//! while the user is active), users' forge tokens (one per linked forge, decrypted for one call,
//! refreshed before they expire), and whether a user may read a private repository (their own
//! token for the repository's forge asked, at most every [`Accounts::access_recheck`]).
//!
//! Nothing here knows a forge's endpoints: each is a [`Provider`]. Everything that blocks (the
//! store) runs on the blocking pool; forge calls are async.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::jwt::{self, Claims};
use super::provider::{ForgeError, ForgeRepo, Provider, Wanted};
use super::settings::AuthSettings;
use gitvista_errors::ApiError;
use gitvista_store::accounts::{Connection, LinkRefused, Session, SignedIn, Tokens, User};
use gitvista_store::{Repo, Store, now};

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
/// A sign-in must come back from the forge within this.
const LOGIN_SECS: i64 = 600;
/// Access tokens are refreshed when they expire within this.
const REFRESH_MARGIN: i64 = 300;
/// When the forge cannot be asked, a user whose access was confirmed this recently keeps it.
const ACCESS_GRACE: i64 = 3600;

/// What plans allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plans {
    /// Repositories a `free` user may track (`GITVISTA_FREE_REPOS`).
    pub free: i64,
    /// Repositories a `paid` user may track (`GITVISTA_PAID_REPOS`).
    pub paid: i64,
    /// Private repositories a `free` user may track (`GITVISTA_FREE_PRIVATE_REPOS`).
    pub free_private: i64,
}

impl Default for Plans {
    fn default() -> Self {
        Plans {
            free: 5,
            paid: 50,
            free_private: 1,
        }
    }
}

impl Plans {
    /// How much cheaper expensive work (diffs, blame, searches) is charged to a paying user.
    pub const PAID_WORK_FACTOR: f64 = 4.0;

    /// How many of its repositories `plan` allows to be private.
    pub fn private_limit(&self, plan: &str) -> i64 {
        if plan == "paid" {
            self.paid
        } else {
            self.free_private
        }
    }

    /// How many repositories `plan` allows.
    pub fn limit(&self, plan: &str) -> i64 {
        if plan == "paid" { self.paid } else { self.free }
    }
}

/// The sign-in's state, sealed into [`LOGIN_COOKIE`].
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The forge signed in with.
    forge: String,
    /// The `state` sent to the forge.
    state: String,
    /// The PKCE verifier (its S256 challenge went to the forge).
    verifier: String,
    /// Where to send the user afterwards (a path on this server).
    back: String,
    /// Expiry.
    exp: i64,
    /// Linking this forge to the signed-in user `link` rather than signing in.
    #[serde(default)]
    link: Option<String>,
}

/// What a finished sign-in or link came to.
#[derive(Debug)]
pub struct Finished {
    /// The user.
    pub user: User,
    /// A new session's cookie token (a sign-in; a link keeps the session it has).
    pub session: Option<String>,
    /// Where to go.
    pub back: String,
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
    /// Their plan (`free` or `paid`), as of the session lookup (at most [`SESSION_CACHE`] old).
    pub plan: &'static str,
}

/// Whether a user may read a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Yes.
    Granted,
    /// No (or the repository is unknown to them): answer as for an unknown id.
    Denied,
    /// Their access could not be confirmed (the forge, named, unreachable) and is too old to
    /// trust.
    Unconfirmed(&'static str),
}

#[derive(Clone)]
struct CachedSession {
    session: Session,
    user: User,
    plan: &'static str,
    at: Instant,
}

/// Accounts, configured (hosted mode with at least one forge's OAuth client).
pub struct Accounts {
    /// The settings.
    pub auth: Arc<AuthSettings>,
    /// The forges users sign in with.
    providers: Vec<Arc<dyn Provider>>,
    /// Users, sessions, access.
    pub store: Store,
    /// What plans allow.
    pub plans: Plans,
    /// Cookies are `Secure` (the public URL is https).
    pub secure: bool,
    /// `GITVISTA_REQUIRE_LOGIN=1`: nothing is shown without signing in.
    pub require_login: bool,
    /// A viewer's access to a private repository is asked of its forge again after this.
    pub access_recheck: Duration,
    /// How long a failed payment keeps a paid plan (billing's grace period).
    pub payment_grace: Duration,
    /// Billing is on (Stripe configured): the pages offer Upgrade and Manage billing.
    pub billing: bool,
    /// `GITVISTA_STRIPE_PRICE`: the one price whose subscriptions pay for a plan (none when
    /// billing is off, so no subscription counts).
    pub paid_price: Option<String>,
    sessions: quick_cache::sync::Cache<String, CachedSession>,
    /// States already used (a replayed callback is refused), with their expiry.
    used_states: Mutex<HashMap<String, i64>>,
    /// One refresh at a time per user and forge.
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

use gitvista_errors::blocking;

/// 502 `{kind}_unavailable`: the forge could not be reached or failed.
pub fn forge_unavailable(p: &dyn Provider) -> ApiError {
    ApiError::status(
        502,
        format!(
            "{} could not be reached or answered with an error; try again in a minute",
            p.name()
        ),
        super::provider::unavailable_code(p.kind()),
    )
}

fn sign_in_failed(p: &dyn Provider, e: &ForgeError) -> ApiError {
    match e {
        ForgeError::Refused(why) => ApiError::status(
            400,
            format!(
                "{} did not accept the sign-in ({why}); sign in again",
                p.name()
            ),
            "sign_in_refused",
        ),
        ForgeError::Upstream(_) | ForgeError::Unreachable(_) => forge_unavailable(p),
    }
}

/// Why a user's token for a forge cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The user has not linked an account on this forge.
    #[error("you have not connected a {0} account; connect one from your account page")]
    NotLinked(&'static str),
    /// Expired and not refreshable, or refused by the forge: the user must sign in again.
    #[error("the {0} sign-in has expired; sign in again")]
    Expired(&'static str),
    /// The forge could not be reached to refresh it.
    #[error("{0} could not be reached to renew the sign-in")]
    Unavailable(&'static str),
    /// The stored ciphertext does not decrypt (key not configured, tampered).
    #[error("{0}")]
    Stored(String),
}

impl Accounts {
    /// Accounts over `store` with `auth`'s settings.
    pub fn new(auth: Arc<AuthSettings>, store: Store, secure: bool) -> Result<Accounts, String> {
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for f in &auth.forges {
            providers.push(match f.kind {
                "github" => Arc::new(super::github::GitHubClient::new(f)?),
                "gitlab" => Arc::new(super::gitlab::GitLab::new(f.clone())?),
                "bitbucket" => Arc::new(super::bitbucket::Bitbucket::new(f.clone())?),
                other => return Err(format!("no forge is called {other:?}")),
            });
        }
        Ok(Accounts {
            auth,
            providers,
            store,
            plans: Plans::default(),
            secure,
            require_login: false,
            access_recheck: Duration::from_secs(600),
            payment_grace: Duration::from_secs(7 * 86_400),
            paid_price: None,
            billing: false,
            sessions: quick_cache::sync::Cache::new(10_000),
            used_states: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
            visibility_looked: quick_cache::sync::Cache::new(10_000),
            revocations: std::sync::OnceLock::new(),
        })
    }

    /// Where `user`'s plan stands: their subscriptions (if any) and an admin's grant.
    pub async fn plan_of(&self, user: &User) -> Result<crate::billing::PlanState, ApiError> {
        Ok(self
            .owner_plan(&format!("user:{}", user.id), &user.plan)
            .await?
            .0)
    }

    /// Where `owner`'s plan (`user:<id>` or `team:<id>`, whose own plan is `base`) stands now,
    /// with the subscriptions it came from.
    pub async fn owner_plan(
        &self,
        owner: &str,
        base: &str,
    ) -> Result<
        (
            crate::billing::PlanState,
            Vec<gitvista_store::billing::Subscription>,
        ),
        ApiError,
    > {
        let (store, o) = (self.store.clone(), owner.to_string());
        let subs = blocking(move || store.subscriptions_of(&o)).await?;
        let state = crate::billing::plan_state(
            base,
            &subs,
            self.paid_price.as_deref(),
            now(),
            i64::try_from(self.payment_grace.as_secs()).unwrap_or(i64::MAX),
        );
        Ok((state, subs))
    }

    /// The configured forges, GitHub, GitLab, Bitbucket in that order.
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// Forge `kind`, if it is configured.
    pub fn provider(&self, kind: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.kind() == kind)
    }

    /// `user_id`'s forge accounts, first linked first (in one second: in the configured order).
    pub async fn connections(&self, user_id: &str) -> Result<Vec<Connection>, ApiError> {
        let (store, uid) = (self.store.clone(), user_id.to_string());
        let mut list = blocking(move || store.connections(&uid)).await?;
        let rank = |kind: &str| {
            self.providers
                .iter()
                .position(|p| p.kind() == kind)
                .unwrap_or(usize::MAX)
        };
        list.sort_by_key(|c| (c.created_at, rank(&c.provider)));
        Ok(list)
    }

    /// The configured forge a repository's canonical URL is on, with its path there.
    pub fn forge_of(&self, canonical_url: &str) -> Option<(&Arc<dyn Provider>, String)> {
        self.providers
            .iter()
            .find_map(|p| p.repo_path(canonical_url).map(|path| (p, path)))
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

    /// Whether its cookies are Secure (the server is reached over https).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Starts a sign-in with forge `p` (or, with `link`, linking it to that signed-in user):
    /// the forge's authorize URL (state, S256 challenge, the scopes `wanted` needs) and the
    /// sealed cookie that remembers forge, state and verifier.
    pub fn begin(
        &self,
        p: &dyn Provider,
        back: &str,
        wanted: Wanted,
        link: Option<&str>,
    ) -> Result<(String, String), ApiError> {
        let state = random_id::<24>()?;
        let verifier = random_id::<48>()?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let back = safe_back(back);
        let sealed = jwt::seal(
            &self.auth.jwt,
            "signin",
            &Pending {
                forge: p.kind().to_string(),
                state: state.clone(),
                verifier,
                back,
                exp: now() + LOGIN_SECS,
                link: link.map(str::to_string),
            },
        );
        let url = p
            .authorize_url(&state, &challenge, wanted)
            .map_err(ApiError::Unavailable)?;
        Ok((url, sealed))
    }

    /// Finishes a sign-in with forge `p`: checks `state` against the cookie (once, and for this
    /// forge), trades the code, asks who the user is, stores their forge account with its
    /// tokens encrypted and starts a session; or, for a link, adds the forge account to the
    /// signed-in `viewer` (who must be the one who started it) and keeps their session.
    /// Nothing is stored unless every step succeeded.
    pub async fn finish(
        &self,
        p: &dyn Provider,
        code: &str,
        state: &str,
        cookie: Option<&str>,
        viewer: Option<&Viewer>,
    ) -> Result<Finished, ApiError> {
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
        if pending.forge != p.kind()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                pending.state.as_bytes(),
                state.as_bytes(),
            ))
        {
            return Err(bad_state());
        }
        if let Some(uid) = &pending.link
            && viewer.is_none_or(|v| &v.user.id != uid)
        {
            return Err(ApiError::status(
                400,
                "connecting an account must finish in the session that started it; sign in and start again",
                "invalid_state",
            ));
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
                format!("{} sent no code", p.name()),
                "sign_in_refused",
            ));
        }
        let grant = p
            .exchange_code(code, &pending.verifier)
            .await
            .map_err(|e| sign_in_failed(p, &e))?;
        let who = p
            .user(&grant.access_token)
            .await
            .map_err(|e| sign_in_failed(p, &e))?;
        let user_id = match &pending.link {
            Some(uid) => uid.clone(),
            None => {
                let (store, kind, fid) = (self.store.clone(), p.kind(), who.id.clone());
                let existing = blocking(move || store.user_by_forge(kind, &fid)).await?;
                match existing {
                    Some(u) => u.id,
                    None => hex_id()?,
                }
            }
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
        let forge = p.kind();
        let scope = grant.scope.clone();
        let signed = move |access: &[u8], refresh: Option<&[u8]>| -> SignedInOwned {
            SignedInOwned {
                provider: forge,
                forge_user_id: who.id.clone(),
                login: who.login.clone(),
                email: who.email.clone(),
                name: who.name.clone(),
                avatar_url: who.avatar_url.clone(),
                access_token: access.to_vec(),
                refresh_token: refresh.map(<[u8]>::to_vec),
                token_expires_at: grant.expires_in.map(|s| at + s),
                refresh_expires_at: grant.refresh_expires_in.map(|s| at + s),
                token_kind: kind,
                scopes: scope.clone(),
            }
        };
        let owned = signed(&access, refresh.as_deref());
        if let Some(uid) = pending.link {
            let (store, u) = (self.store.clone(), uid.clone());
            let linked = blocking(move || {
                let linked = store.link_connection(&u, &owned.borrowed())?;
                Ok((linked, store.user(&u)?))
            })
            .await?;
            let user = match linked {
                (Err(LinkRefused::OtherUser), _) => {
                    return Err(ApiError::status(
                        409,
                        format!(
                            "this {} account is already connected to another GitVista account; sign in with it and disconnect it there first",
                            p.name()
                        ),
                        "forge_account_taken",
                    ));
                }
                (Ok(replaced), Some(user)) => {
                    if replaced.is_some() {
                        // Another account of this forge was linked before: what it granted goes.
                        self.drop_forge_access(&user, p).await?;
                    }
                    user
                }
                (Ok(_), None) => return Err(ApiError::NotFound("the user is gone".into())),
            };
            self.forget_user(&uid);
            tracing::info!(user = %uid, forge, kind, "connected a forge account");
            metrics::counter!("gitvista_forge_links_total", "forge" => forge).increment(1);
            return Ok(Finished {
                user,
                session: None,
                back: pending.back,
            });
        }
        let session_id = random_id::<32>()?;
        let expires = at + SESSION_SECS;
        let (store, sid, uid) = (self.store.clone(), session_id.clone(), user_id.clone());
        let user = blocking(move || {
            let user = store.sign_in_user(&uid, &owned.borrowed())?;
            store.create_session(&sid, &user.id, expires)?;
            Ok(user)
        })
        .await?;
        tracing::info!(user = %user.id, login = %user.login, forge, kind, "signed in");
        metrics::counter!("gitvista_sign_ins_total", "forge" => forge).increment(1);
        let token = jwt::sign(
            &self.auth.jwt,
            &Claims {
                sub: user.id.clone(),
                sid: session_id,
                exp: expires,
            },
        );
        Ok(Finished {
            user,
            session: Some(token),
            back: pending.back,
        })
    }

    /// The private repositories on forge `p` that `user` tracks (their access came from the
    /// connection to it).
    async fn forge_private_repos(
        &self,
        user: &User,
        p: &dyn Provider,
    ) -> Result<Vec<String>, ApiError> {
        let (store, uid) = (self.store.clone(), user.id.clone());
        let tracked = blocking(move || store.tracked(&uid)).await?;
        Ok(tracked
            .into_iter()
            .filter(|r| r.is_private && p.repo_path(&r.canonical_url).is_some())
            .map(|r| r.id)
            .collect())
    }

    /// Ends `user`'s access to the private repositories on forge `p`.
    async fn drop_forge_access(&self, user: &User, p: &dyn Provider) -> Result<(), ApiError> {
        let ids = self.forge_private_repos(user, p).await?;
        let (store, uid) = (self.store.clone(), user.id.clone());
        blocking(move || {
            for id in &ids {
                store.revoke_access(id, &uid)?;
            }
            Ok(())
        })
        .await
    }

    /// Disconnects `user`'s account on forge `p`: its tokens are deleted and the private
    /// repositories it let them read are no longer theirs. The last connection stays (it is how
    /// they sign in).
    pub async fn unlink(&self, user: &User, p: &dyn Provider) -> Result<(), ApiError> {
        self.may_unlink(user, p).await?;
        let ids = self.forge_private_repos(user, p).await?;
        let (store, uid, kind) = (self.store.clone(), user.id.clone(), p.kind());
        blocking(move || store.unlink(&uid, kind, &ids)).await?;
        self.forget_user(&user.id);
        tracing::info!(user = %user.id, forge = kind, "disconnected a forge account");
        Ok(())
    }

    /// Whether `user` may disconnect their account on `p`: 404 when none is linked, 409 when it
    /// is the only one they sign in with.
    pub async fn may_unlink(&self, user: &User, p: &dyn Provider) -> Result<(), ApiError> {
        let connections = self.connections(&user.id).await?;
        if !connections.iter().any(|c| c.provider == p.kind()) {
            return Err(ApiError::NotFound(format!(
                "no {} account is connected",
                p.name()
            )));
        }
        if connections.len() == 1 {
            return Err(ApiError::status(
                409,
                format!(
                    "{} is the only account you sign in with; connect another forge before disconnecting it",
                    p.name()
                ),
                "last_connection",
            ));
        }
        Ok(())
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
                let plan = self.plan_of(&found.1).await.map_or("free", |p| p.plan);
                let c = CachedSession {
                    session: found.0,
                    user: found.1,
                    plan,
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
            plan: cached.plan,
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

    /// `user`'s access token on forge `p`, decrypted for one use; refreshed first (and the new
    /// pair stored) when it expires within [`REFRESH_MARGIN`].
    pub async fn token(
        &self,
        user: &User,
        p: &dyn Provider,
    ) -> Result<Zeroizing<String>, TokenError> {
        let (store, uid, kind) = (self.store.clone(), user.id.clone(), p.kind());
        let connection = blocking(move || store.connection(&uid, kind))
            .await
            .map_err(|_| TokenError::Unavailable(p.name()))?
            .ok_or(TokenError::NotLinked(p.name()))?;
        self.connection_token(&connection, p).await
    }

    /// The access token of `connection` (an account on forge `p`), refreshed when it expires
    /// soon.
    pub async fn connection_token(
        &self,
        connection: &Connection,
        p: &dyn Provider,
    ) -> Result<Zeroizing<String>, TokenError> {
        let cipher = &self.auth.cipher;
        let decrypt = |c: &Connection| {
            cipher
                .decrypt(&c.user_id, &c.access_token)
                .map_err(|e| TokenError::Stored(e.to_string()))
        };
        let fresh = |c: &Connection| {
            c.token_expires_at
                .is_none_or(|t| t > now() + REFRESH_MARGIN)
        };
        if fresh(connection) {
            return decrypt(connection);
        }
        let (uid, kind) = (connection.user_id.clone(), p.kind());
        let lock = {
            let mut map = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(map.entry(format!("{uid} {kind}")).or_default())
        };
        let _held = lock.lock().await;
        // Another request (or node) may have refreshed while this one waited.
        let reread = || {
            let (store, uid) = (self.store.clone(), uid.clone());
            blocking(move || store.connection(&uid, kind))
        };
        let current = reread()
            .await
            .map_err(|_| TokenError::Unavailable(p.name()))?
            .ok_or(TokenError::NotLinked(p.name()))?;
        if fresh(&current) {
            return decrypt(&current);
        }
        let Some(stored_refresh) = &current.refresh_token else {
            return Err(TokenError::Expired(p.name()));
        };
        if current.refresh_expires_at.is_some_and(|t| t <= now()) {
            return Err(TokenError::Expired(p.name()));
        }
        let refresh = cipher
            .decrypt(&current.user_id, stored_refresh)
            .map_err(|e| TokenError::Stored(e.to_string()))?;
        let grant = match p.refresh(&refresh).await {
            Ok(g) => g,
            Err(ForgeError::Refused(_)) => {
                // A used refresh token stops working: if another node refreshed first, its
                // pair is in the store now.
                if let Ok(Some(again)) = reread().await
                    && again.access_token != current.access_token
                    && fresh(&again)
                {
                    return decrypt(&again);
                }
                tracing::info!(user = %uid, forge = kind, "the forge refused the refresh token; the user must sign in again");
                return Err(TokenError::Expired(p.name()));
            }
            Err(_) => return Err(TokenError::Unavailable(p.name())),
        };
        let seal = |t: &str| {
            cipher
                .encrypt(&current.user_id, t)
                .map_err(|e| TokenError::Stored(e.to_string()))
        };
        let access = seal(&grant.access_token)?;
        let refresh_ct = grant.refresh_token.as_ref().map(|t| seal(t)).transpose()?;
        let at = now();
        let (store, u, previous) = (
            self.store.clone(),
            uid.clone(),
            current.access_token.clone(),
        );
        let expires = grant.expires_in.map(|s| at + s);
        let refresh_expires = grant
            .refresh_expires_in
            .map(|s| at + s)
            .or(current.refresh_expires_at);
        blocking(move || {
            store.replace_tokens(
                &u,
                kind,
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
        .map_err(|_| TokenError::Unavailable(p.name()))?;
        self.forget_user(&uid);
        metrics::counter!("gitvista_token_refreshes_total", "forge" => kind).increment(1);
        tracing::info!(user = %uid, forge = kind, "refreshed a forge token");
        Ok(grant.access_token)
    }

    /// What forge `p` says of `user`'s access to the repository at `path` with their own token.
    pub async fn ask_forge(
        &self,
        user: &User,
        p: &dyn Provider,
        path: &str,
    ) -> Result<Option<ForgeRepo>, ApiError> {
        let token = self
            .token(user, p)
            .await
            .map_err(|e| token_failed(user, &e))?;
        match p.repo(&token, path).await {
            Ok(r) => Ok(r),
            Err(ForgeError::Refused(_)) => Err(ApiError::status(
                401,
                format!("{} no longer accepts your sign-in; sign in again", p.name()),
                "sign_in_expired",
            )),
            Err(_) => Err(forge_unavailable(p)),
        }
    }

    /// Whether `viewer` may read `repo` now. Public repositories: anyone. Private: a user who
    /// tracks it and whose token its forge let read it within [`Accounts::access_recheck`]
    /// (asked again when older; a "no" removes their access; the forge saying the repository
    /// went private marks it so).
    pub async fn may_read(&self, repo: &Repo, viewer: Option<&Viewer>) -> Access {
        if !repo.is_private {
            return Access::Granted;
        }
        let Some(viewer) = viewer else {
            return Access::Denied;
        };
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), viewer.user.id.clone());
        let found =
            blocking(move || Ok((store.access(&rid, &uid)?, store.team_lists(&rid, &uid)?))).await;
        let checked = match found {
            Ok((Some(checked), _)) => checked.unwrap_or(0),
            // On a list of a team of theirs: their own forge account is asked, as for anyone
            // (a team never widens what a member may read).
            Ok((None, true)) => return self.recheck_for_team(repo, &viewer.user).await,
            _ => return Access::Denied,
        };
        let at = now();
        if at - checked < self.access_recheck.as_secs() as i64 {
            return Access::Granted;
        }
        self.recheck(repo, &viewer.user, checked).await
    }

    /// For a public repository on a configured forge that `user` tracks: asks the forge again
    /// (with their token) when the last answer is older than the recheck interval, so a
    /// repository made private is marked private (and from then on hidden from everyone else).
    /// Run in the background of a request; at most once per interval per repository and user.
    pub async fn notice_visibility(&self, repo: &Repo, user: &User) {
        if repo.is_private {
            return;
        }
        // Only a user with an account on the repository's forge can ask it.
        let Some((p, _)) = self.forge_of(&repo.canonical_url) else {
            return;
        };
        let (store, uid, kind) = (self.store.clone(), user.id.clone(), p.kind());
        if !matches!(
            blocking(move || store.connection(&uid, kind)).await,
            Ok(Some(_))
        ) {
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

    /// Asks the repository's forge whether `user`, a member of a team that lists `repo`, may
    /// read it with their own account; a yes is remembered as access through the team.
    async fn recheck_for_team(&self, repo: &Repo, user: &User) -> Access {
        let Some((p, path)) = self.forge_of(&repo.canonical_url) else {
            return Access::Denied;
        };
        match self.ask_forge(user, p.as_ref(), &path).await {
            Ok(Some(found))
                if self
                    .compare(&repo.id, found.clone(), super::confirm::Learn::Yes)
                    .await
                    != super::confirm::ForgeSays::Another =>
            {
                let (store, rid, uid) = (self.store.clone(), repo.id.clone(), user.id.clone());
                let _ = blocking(move || store.grant_team_access(&rid, &uid, now())).await;
                Access::Granted
            }
            Ok(_)
            | Err(ApiError::Status {
                status: 401 | 403, ..
            }) => Access::Denied,
            Err(_) => Access::Unconfirmed(p.name()),
        }
    }

    /// Asks the repository's forge again whether `user` may read `repo` and records the answer.
    pub async fn recheck(&self, repo: &Repo, user: &User, checked: i64) -> Access {
        let Some((p, path)) = self.forge_of(&repo.canonical_url) else {
            return Access::Denied;
        };
        let mut answer = self.ask_forge(user, p.as_ref(), &path).await;
        // The URL may name another repository now (renamed away, and a new one made at its
        // old name): that one's answer says nothing about this one.
        if let Ok(Some(found)) = &answer
            && self
                .compare(&repo.id, found.clone(), super::confirm::Learn::Yes)
                .await
                == super::confirm::ForgeSays::Another
        {
            answer = Ok(None);
        }
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
            // No, the sign-in is dead, or no account on that forge is linked any more.
            Ok(None)
            | Err(ApiError::Status {
                status: 401 | 403, ..
            }) => {
                tracing::info!(repo = %repo.id, user = %user.id, forge = p.kind(), "the forge no longer lets the user read the repository; access removed");
                metrics::counter!("gitvista_access_lost_total").increment(1);
                let _ = blocking(move || store.revoke_access(&rid, &uid)).await;
                Access::Denied
            }
            Err(_) if now() - checked < ACCESS_GRACE => Access::Granted,
            Err(_) => Access::Unconfirmed(p.name()),
        }
    }

    /// The credential a git job on `repo_id` uses: none for a public repository; for a private
    /// one the token of the user who tracks it with an account on its forge and was confirmed
    /// most recently, refreshed if needed (the next one when a token is dead), presented with
    /// the forge's user name.
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
        let Some((p, _)) = self.forge_of(&repo.canonical_url) else {
            return Err("it is private and on no forge this server signs in with".into());
        };
        let (store, rid, kind) = (self.store.clone(), repo.id.clone(), p.kind());
        let readers = blocking(move || store.readers(&rid, kind))
            .await
            .map_err(|e| e.to_string())?;
        for (_, connection) in &readers {
            if let Ok(token) = self.connection_token(connection, p.as_ref()).await {
                return Ok(Some(gitvista_actors::clone_queue::Credential::basic(
                    p.git_username(),
                    &token,
                )));
            }
        }
        Err(format!(
            "none of the {} users who track it has a {} sign-in that still works",
            readers.len(),
            p.name()
        ))
    }
}

/// [`SignedIn`] with owned fields, to move onto the blocking pool.
struct SignedInOwned {
    provider: &'static str,
    forge_user_id: String,
    login: String,
    email: Option<String>,
    name: Option<String>,
    avatar_url: Option<String>,
    access_token: Vec<u8>,
    refresh_token: Option<Vec<u8>>,
    token_expires_at: Option<i64>,
    refresh_expires_at: Option<i64>,
    token_kind: &'static str,
    scopes: String,
}

impl SignedInOwned {
    fn borrowed(&self) -> SignedIn<'_> {
        SignedIn {
            provider: self.provider,
            forge_user_id: &self.forge_user_id,
            login: &self.login,
            email: self.email.as_deref(),
            name: self.name.as_deref(),
            avatar_url: self.avatar_url.as_deref(),
            access_token: &self.access_token,
            refresh_token: self.refresh_token.as_deref(),
            token_expires_at: self.token_expires_at,
            refresh_expires_at: self.refresh_expires_at,
            token_kind: self.token_kind,
            scopes: &self.scopes,
        }
    }
}

/// What a user is told when their token cannot be used: connect the forge, sign in again (an
/// expired sign-in, or one stored under a key the server no longer has, which the log names for
/// the operator), or try again later (the forge unreachable).
pub fn token_failed(user: &User, e: &TokenError) -> ApiError {
    match e {
        TokenError::NotLinked(_) => ApiError::status(403, e.to_string(), "forge_not_connected"),
        TokenError::Expired(_) => ApiError::status(401, e.to_string(), "sign_in_expired"),
        TokenError::Unavailable(name) => ApiError::status(
            502,
            e.to_string(),
            super::provider::unavailable_code(&name.to_ascii_lowercase()),
        ),
        TokenError::Stored(why) => {
            tracing::warn!(user = %user.id, error = %why, "a stored forge token cannot be decrypted");
            ApiError::status(
                401,
                "the server cannot use your stored forge sign-in; sign in again",
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
