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

mod access;
pub mod confirm;
mod sessions;
mod signin;
mod tokens;

pub use signin::safe_back;
pub use tokens::token_failed;

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
}
