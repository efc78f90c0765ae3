//! Webhook receivers: a push on a forge reaches every viewer in seconds instead of at the next
//! poll.
//!
//! - `POST /webhooks/github` (`GITVISTA_GITHUB_WEBHOOK_SECRET`): a GitHub App's hook for every
//!   installation, and the per-repository hooks this server registers for OAuth App setups
//!   (`?repo=ID`, signed with a secret derived from the webhook secret and the id).
//! - `POST /webhooks/gitlab` (`GITVISTA_GITLAB_WEBHOOK_SECRET`): project hooks this server
//!   registers (`?repo=ID`, whose token is a secret derived from the webhook secret and the
//!   id), and system or group hooks set up by hand with the secret itself.
//! - `POST /webhooks/bitbucket` (`GITVISTA_BITBUCKET_WEBHOOK_SECRET`): repository hooks this
//!   server registers (`?repo=ID`, a secret derived from the webhook secret and the id) or a
//!   workspace's hook set up by hand with the secret itself, signed `X-Hub-Signature: sha256=`.
//! - `POST /webhooks/generic/{id}` (on with sign-in): any host that signs like GitHub or like
//!   Gitea/Forgejo, with a per-repository secret derived from `GITVISTA_JWT_SECRET`, shown to
//!   the repository's trackers on their dashboard.
//!
//! A receiver whose secret is not configured answers 404, like a route that does not exist.
//! Each delivery is read with a size cap (25 MB, GitHub's own) out of a shared byte budget,
//! verified before its JSON is parsed, recorded once per delivery id and once per body digest
//! (a redelivery, or a captured delivery replayed under a new id, does nothing), and answered
//! at once: fetches go to the [`Freshener`], which coalesces them per repository, and access
//! checks run in the background.
//!
//! A per-repository hook (`?repo=ID`, its own secret) is about that repository only, whatever
//! its body names. A hook signed with a receiver's own secret (an app's, or one made by hand)
//! may name repositories on that forge's host only. And a body is a hint, never a fact: a
//! repository is made public, or followed to a new URL, only when its forge confirms it
//! ([`hints`]).

pub mod events;
pub mod hints;
pub mod register;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt as _;
use gitvista_actors::RepoId;
use gitvista_actors::freshen::{Freshener, HookClock};
use gitvista_actors::repo_session::AccessChanged;
use gitvista_actors::supervisor::{GetSession, Running};
use serde_json::json;

use self::events::Action;
use self::verify::{HookSecret, SignatureError};
use crate::error::{ApiError, blocking};
use crate::hosted::Hosted;
use crate::routes::AppState;
use crate::store::webhooks::Delivery;

/// The webhook secrets, read at start-up (a receiver without one is off).
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    /// `GITVISTA_GITHUB_WEBHOOK_SECRET`.
    pub github: Option<HookSecret>,
    /// `GITVISTA_GITLAB_WEBHOOK_SECRET`.
    pub gitlab: Option<HookSecret>,
    /// `GITVISTA_BITBUCKET_WEBHOOK_SECRET`.
    pub bitbucket: Option<HookSecret>,
}

impl WebhookSettings {
    /// Reads the secrets through `get` (the environment in production); a secret that is set
    /// but too short stops the server with a sentence naming it.
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let read = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| HookSecret::new(name, &v))
                .transpose()
        };
        Ok(WebhookSettings {
            github: read("GITVISTA_GITHUB_WEBHOOK_SECRET")?,
            gitlab: read("GITVISTA_GITLAB_WEBHOOK_SECRET")?,
            bitbucket: read("GITVISTA_BITBUCKET_WEBHOOK_SECRET")?,
        })
    }
}

/// Largest delivery read (GitHub does not send larger ones).
pub const MAX_BODY: usize = 25 << 20;

/// Bytes of deliveries being read at once, over all of them: a flood of large bodies waits
/// (then gets 503) instead of filling memory.
const BODY_BUDGET_KIB: usize = 64 << 10;

/// How long a delivery waits for room in the budget.
const BODY_WAIT: Duration = Duration::from_secs(5);

/// The receivers' shared parts.
#[derive(Debug)]
pub struct Webhooks {
    /// The secrets.
    pub settings: WebhookSettings,
    /// The key generic hooks' secrets derive from (with sign-in on).
    pub generic: Option<HookSecret>,
    /// When each repository's hook last delivered.
    pub clock: Arc<HookClock>,
    /// Fetches on demand.
    pub freshener: Addr<Freshener>,
    /// Room for bodies being read, in KiB.
    budget: Arc<tokio::sync::Semaphore>,
}

impl Webhooks {
    /// The receivers' parts.
    pub fn new(
        settings: WebhookSettings,
        generic: Option<HookSecret>,
        clock: Arc<HookClock>,
        freshener: Addr<Freshener>,
    ) -> Self {
        Webhooks {
            settings,
            generic,
            clock,
            freshener,
            budget: Arc::new(tokio::sync::Semaphore::new(BODY_BUDGET_KIB)),
        }
    }

    /// The secret of the hook registered on forge `kind` for repository `id`, derived from
    /// that receiver's secret (`None` when it is off, or for a forge without one). GitLab sends
    /// a hook's token back as is, so each repository's is its own: a project's maintainers, who
    /// can read it, learn nothing about any other.
    pub fn repo_secret(&self, kind: &str, id: &str) -> Option<HookSecret> {
        let base = match kind {
            "github" => self.settings.github.as_ref(),
            "gitlab" => self.settings.gitlab.as_ref(),
            "bitbucket" => self.settings.bitbucket.as_ref(),
            _ => None,
        }?;
        Some(base.derive(&format!("gitvista {kind} hook {id}")))
    }

    /// Where forge `kind`'s hook for repository `id` delivers (under `public_url`) and what
    /// it is signed with; `None` when that forge's receiver is off (no secret) or this server
    /// does not register hooks there.
    pub fn registration_target(
        &self,
        kind: &str,
        public_url: &str,
        id: &str,
    ) -> Option<(String, HookSecret)> {
        self.repo_secret(kind, id)
            .map(|s| (format!("{public_url}/webhooks/{kind}?repo={id}"), s))
    }

    /// The secret of repository `id`'s generic hook (with sign-in on).
    pub fn generic_secret(&self, id: &str) -> Option<HookSecret> {
        self.generic
            .as_ref()
            .map(|s| s.derive(&format!("gitvista generic hook {id}")))
    }

    /// Which receivers are on, for the admin page.
    pub fn receivers(&self) -> serde_json::Value {
        json!({
            "github": self.settings.github.is_some(),
            "gitlab": self.settings.gitlab.is_some(),
            "bitbucket": self.settings.bitbucket.is_some(),
            "generic": self.generic.is_some(),
        })
    }
}

fn hosted(state: &AppState) -> Result<&Arc<Hosted>, ApiError> {
    state.hosted.as_ref().ok_or(ApiError::NoRoute)
}

/// A header as bytes, if present.
fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a [u8]> {
    req.headers().get(name).map(|v| v.as_bytes())
}

/// A short printable header (event names, delivery ids), if present and sane.
fn short_header(req: &HttpRequest, name: &str, max: usize) -> Option<String> {
    let v = req.headers().get(name)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .then(|| v.to_string())
}

/// Reads the body within [`MAX_BODY`], holding its size in the shared budget while it is read
/// and handled (the permit is dropped with the handler).
async fn read_body(
    hooks: &Webhooks,
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<(web::Bytes, tokio::sync::OwnedSemaphorePermit), ApiError> {
    let too_large = || {
        ApiError::status(
            413,
            format!("a delivery is at most {} MB", MAX_BODY >> 20),
            "payload_too_large",
        )
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    // Without a length (chunked) the most a delivery may be is held.
    let kib = (declared.unwrap_or(MAX_BODY) >> 10).max(1) as u32;
    let permit = tokio::time::timeout(BODY_WAIT, Arc::clone(&hooks.budget).acquire_many_owned(kib))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ApiError::Busy(5))?;
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(MAX_BODY));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("reading the body: {e}"), "bad_body"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), permit))
}

fn refused(provider: &'static str, why: SignatureError) -> ApiError {
    let reason = match why {
        SignatureError::Missing => "missing",
        SignatureError::Malformed => "malformed",
        SignatureError::Mismatch => "mismatch",
    };
    metrics::counter!("gitvista_webhook_signature_failures_total", "provider" => provider, "reason" => reason)
        .increment(1);
    ApiError::status(401, why.to_string(), "bad_signature")
}

fn malformed(provider: &'static str, event: &str) -> ApiError {
    count(provider, event, "malformed");
    ApiError::bad_request(
        "the delivery's body is not the JSON this event has",
        "bad_payload",
    )
}

fn count(provider: &'static str, event: &str, outcome: &'static str) {
    metrics::counter!(
        "gitvista_webhook_deliveries_total",
        "provider" => provider,
        "event" => events::label(event),
        "outcome" => outcome,
    )
    .increment(1);
}

/// The hex SHA-256 of the body: a delivery is recognised by it as well as by its id.
fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a receiver's own secret may name repositories: on its forge's host when that forge
/// is configured for sign-in, else on any host but the configured forges'. (A GitLab hook
/// naming a GitHub repository is not GitLab speaking.)
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Only(String),
    AnyBut(Vec<String>),
}

impl Hosts {
    fn allows(&self, url: &str) -> bool {
        let host = hints::host_of(url);
        match self {
            Hosts::Only(h) => host.as_deref() == Some(h.as_str()),
            Hosts::AnyBut(others) => host.is_some_and(|h| !others.contains(&h)),
        }
    }
}

fn receiver_hosts(hosted: &Hosted, provider: &str) -> Hosts {
    let Some(a) = &hosted.accounts else {
        return Hosts::AnyBut(Vec::new());
    };
    let host = |kind: &str| a.auth.forge(kind).and_then(|f| hints::host_of(&f.web_url));
    match host(provider) {
        Some(h) => Hosts::Only(h),
        None => Hosts::AnyBut(
            ["github", "gitlab", "bitbucket"]
                .iter()
                .filter_map(|k| host(k))
                .collect(),
        ),
    }
}

/// The repository one of `urls` names, if this server tracks it (by id, or by its current URL
/// after a rename). URLs that would not be accepted if pasted, or that are not on `host`, are
/// skipped.
async fn find_repo(
    hosted: &Arc<Hosted>,
    urls: &[String],
    hosts: &Hosts,
) -> Result<Option<RepoId>, ApiError> {
    let mut candidates = Vec::new();
    for u in urls {
        if let Ok(r) = crate::remote::RemoteUrl::parse(u, &hosted.policy)
            && hosts.allows(&r.canonical)
        {
            candidates.push((r.id(), r.canonical));
        }
    }
    if candidates.is_empty() {
        return Ok(None);
    }
    let store = hosted.store.clone();
    let found = blocking(move || {
        for (id, canonical) in &candidates {
            if let Some(r) = store.repo(id)? {
                return Ok(Some(r.id));
            }
            if let Some(r) = store.repo_by_url(canonical)? {
                return Ok(Some(r.id));
            }
        }
        Ok(None)
    })
    .await?;
    Ok(found.as_deref().and_then(RepoId::parse))
}

/// What a delivery will do, decided before it is recorded (so a replay does nothing).
#[derive(Debug)]
enum Plan {
    Ping(Option<RepoId>),
    Fetch(RepoId),
    /// Tracked, but not served now (cloning, evicted, failed): nothing to fetch.
    NotServed(RepoId),
    /// Frozen over its users' plans: not fetched.
    Frozen(RepoId),
    /// Nobody paying keeps it (billing on): its next poll, at the free plan's pace, fetches it.
    Polled(RepoId),
    Moved(RepoId, String),
    Visibility(RepoId, bool),
    Recheck(Vec<RepoId>),
    Untracked,
    Ignored,
}

impl Plan {
    fn outcome(&self) -> &'static str {
        match self {
            Plan::Ping(_) => "ping",
            Plan::Fetch(_) => "fetch",
            Plan::NotServed(_) => "not_served",
            Plan::Frozen(_) => "frozen",
            Plan::Polled(_) => "polled",
            Plan::Moved(..) => "moved",
            Plan::Visibility(..) => "visibility",
            Plan::Recheck(_) => "access",
            Plan::Untracked => "untracked",
            Plan::Ignored => "ignored",
        }
    }

    fn repo(&self) -> Option<&RepoId> {
        match self {
            Plan::Ping(r) => r.as_ref(),
            Plan::Fetch(r)
            | Plan::NotServed(r)
            | Plan::Frozen(r)
            | Plan::Polled(r)
            | Plan::Moved(r, _)
            | Plan::Visibility(r, _) => Some(r),
            Plan::Recheck(rs) if rs.len() == 1 => rs.first(),
            _ => None,
        }
    }
}

/// Whether repository `id` has a clone to fetch into.
async fn plan_fetch(hosted: &Arc<Hosted>, id: RepoId) -> Result<Plan, ApiError> {
    let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
    let (row, frozen) = blocking(move || Ok((store.repo(&rid)?, store.is_frozen(&rid)?))).await?;
    Ok(match row.map(|r| r.state) {
        Some(_) if frozen => Plan::Frozen(id),
        Some(s)
            if (s == "ready" || s == "fetching")
                && hosted.stripe.is_some()
                && !hosted.paid.contains(&id) =>
        {
            Plan::Polled(id)
        }
        Some(s) if s == "ready" || s == "fetching" => Plan::Fetch(id),
        Some(_) => Plan::NotServed(id),
        None => Plan::Untracked,
    })
}

/// Turns what the delivery asks for into what it will do. `bound`: the repository the hook
/// belongs to (a per-repository hook), which wins over what the body names; without one, the
/// body may name repositories on `hosts` only.
async fn plan(
    hosted: &Arc<Hosted>,
    action: Action,
    bound: Option<RepoId>,
    hosts: &Hosts,
) -> Result<Plan, ApiError> {
    let find = |urls: Vec<String>| {
        let bound = bound.clone();
        async move {
            match bound {
                Some(id) => {
                    let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
                    Ok(blocking(move || store.repo(&rid)).await?.map(|_| id))
                }
                None => find_repo(hosted, &urls, hosts).await,
            }
        }
    };
    Ok(match action {
        Action::Ping { urls } => Plan::Ping(if urls.is_empty() && bound.is_none() {
            None
        } else {
            find(urls).await?
        }),
        Action::Fetch { urls } => match find(urls).await? {
            Some(id) => plan_fetch(hosted, id).await?,
            None => Plan::Untracked,
        },
        Action::Moved { old_urls, new_urls } => {
            let Some(new) = new_urls
                .iter()
                .find_map(|u| crate::remote::RemoteUrl::parse(u, &hosted.policy).ok())
            else {
                return Ok(Plan::Ignored);
            };
            let mut urls = old_urls;
            urls.extend(new_urls);
            match find(urls).await? {
                Some(id) => Plan::Moved(id, new.canonical),
                None => Plan::Untracked,
            }
        }
        Action::Visibility { urls, private } => match find(urls).await? {
            Some(id) => Plan::Visibility(id, private),
            None => Plan::Untracked,
        },
        // A repository's own hook speaks for that repository only (asking again who may read
        // it is harmless).
        Action::Recheck { .. } if bound.is_some() => {
            Plan::Recheck(bound.clone().into_iter().collect())
        }
        Action::Recheck { repos } => {
            let mut found = Vec::new();
            for urls in repos {
                if let Some(id) = find_repo(hosted, &urls, hosts).await? {
                    found.push(id);
                }
            }
            if found.is_empty() {
                Plan::Untracked
            } else {
                Plan::Recheck(found)
            }
        }
        Action::Ignored => Plan::Ignored,
    })
}

/// Fetches asked for by hooks go ahead of maintenance, after clones.
pub(crate) const FETCH_PRIORITY: i32 = 5;

/// Tells the running session of `id`, if any, that who may read it changed.
pub(crate) async fn access_changed(hosted: &Arc<Hosted>, id: &RepoId) {
    // Viewers on every web node check their access again.
    if let Some(bus) = &hosted.bus {
        bus.do_send(crate::cluster::bus::Announce(
            id.clone(),
            crate::cluster::bus::Announcement::Access,
        ));
    }
    if let Ok(true) = hosted.supervisor.send(Running(id.clone())).await
        && let Ok(Ok(session)) = hosted.supervisor.send(GetSession(id.clone())).await
    {
        session.do_send(AccessChanged);
    }
}

/// Does what was planned (after the delivery was recorded as new). Nothing here waits for a
/// fetch or for GitHub.
async fn carry_out(hosted: &Arc<Hosted>, hooks: &Webhooks, plan: Plan) -> Result<(), ApiError> {
    if let Some(id) = plan.repo() {
        hooks.clock.heard(id);
    }
    match plan {
        // Through the shared job table: the repository's owner runs it (this node, on a
        // single node), and pushes coalesce there.
        Plan::Fetch(id) => hosted.queue_job(&id, "fetch", FETCH_PRIORITY).await?,
        Plan::Moved(id, url) => hints::moved(hosted, id, url).await?,
        Plan::Visibility(id, private) => hints::visibility(hosted, id, private).await?,
        Plan::Recheck(ids) => {
            for id in ids {
                let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
                blocking(move || store.expire_access(&rid)).await?;
                access_changed(hosted, &id).await;
            }
        }
        Plan::Ping(_)
        | Plan::NotServed(_)
        | Plan::Frozen(_)
        | Plan::Polled(_)
        | Plan::Untracked
        | Plan::Ignored => {}
    }
    Ok(())
}

/// Records the delivery and, when it is new, does what it asks; answers the sender. A sender
/// that gives no delivery id (`None`) has the first 32 hex digits of the body's digest as one.
async fn deliver(
    hosted: &Arc<Hosted>,
    hooks: &Webhooks,
    provider: &'static str,
    event: &str,
    delivery_id: Option<String>,
    body: &[u8],
    plan: Plan,
) -> Result<HttpResponse, ApiError> {
    let outcome = plan.outcome();
    let digest = body_digest(body);
    let delivery_id = delivery_id.unwrap_or_else(|| digest[..32].to_string());
    let record = Delivery {
        provider: provider.to_string(),
        delivery_id: delivery_id.clone(),
        event: event.to_string(),
        repo_id: plan.repo().map(|r| r.as_str().to_string()),
        outcome: outcome.to_string(),
        received_at: crate::store::now(),
    };
    let store = hosted.store.clone();
    let fresh = blocking(move || store.record_delivery(&record, &digest)).await?;
    if !fresh {
        count(provider, event, "duplicate");
        return Ok(HttpResponse::Ok().json(json!({
            "outcome": "duplicate",
            "delivery": delivery_id,
        })));
    }
    count(provider, event, outcome);
    let repo = plan.repo().map(|r| r.as_str().to_string());
    carry_out(hosted, hooks, plan).await?;
    let body = json!({"outcome": outcome, "delivery": delivery_id, "repo": repo});
    Ok(match outcome {
        "ping" => HttpResponse::Ok().json(body),
        _ => HttpResponse::Accepted().json(body),
    })
}

/// The repository a registered hook names (`?repo=ID`) and the secret it signs with: that
/// repository's own (`derive`), else the receiver's `base` (an app's or a hand-made hook). No
/// lookup happens before the signature is verified.
fn bound_secret(
    provider: &'static str,
    repo: Option<&str>,
    base: &HookSecret,
    derive: impl Fn(&str) -> Option<HookSecret>,
) -> Result<(Option<RepoId>, HookSecret), ApiError> {
    let Some(id) = repo else {
        return Ok((None, base.clone()));
    };
    let id = RepoId::parse(id).ok_or_else(|| refused(provider, SignatureError::Mismatch))?;
    let secret = derive(id.as_str()).unwrap_or_else(|| base.clone());
    Ok((Some(id), secret))
}

/// Query of the forges' receivers: `repo` names the repository of a hook this server
/// registered.
#[derive(Debug, serde::Deserialize)]
pub struct HookQuery {
    repo: Option<String>,
}

/// GitHub's deliveries: a GitHub App's hook, or a hook registered for one repository.
#[post("/webhooks/github")]
pub async fn github_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    let hooks = &hosted.hooks;
    let Some(app_secret) = &hooks.settings.github else {
        return Err(ApiError::NoRoute);
    };
    let (body, _permit) = read_body(hooks, &req, payload).await?;
    let (bound, secret) = bound_secret("github", query.repo.as_deref(), app_secret, |id| {
        hooks.repo_secret("github", id)
    })?;
    secret
        .verify_github(header(&req, "x-hub-signature-256"), &body)
        .map_err(|e| refused("github", e))?;
    let event =
        short_header(&req, "x-github-event", 64).ok_or_else(|| malformed("github", "other"))?;
    let delivery = short_header(&req, "x-github-delivery", 128);
    let web_url = hosted
        .accounts
        .as_ref()
        .and_then(|a| a.auth.forge("github"))
        .map_or("https://github.com", |f| f.web_url.as_str());
    let action = events::github(&event, &body, web_url).map_err(|_| malformed("github", &event))?;
    let plan = plan(hosted, action, bound, &receiver_hosts(hosted, "github")).await?;
    deliver(hosted, hooks, "github", &event, delivery, &body, plan).await
}

/// GitLab's deliveries: a project hook this server registered (`?repo=ID`, whose token is that
/// repository's own) or a system or group hook set up by hand with the receiver's secret.
#[post("/webhooks/gitlab")]
pub async fn gitlab_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    let hooks = &hosted.hooks;
    let Some(base) = &hooks.settings.gitlab else {
        return Err(ApiError::NoRoute);
    };
    let (body, _permit) = read_body(hooks, &req, payload).await?;
    let (bound, secret) = bound_secret("gitlab", query.repo.as_deref(), base, |id| {
        hooks.repo_secret("gitlab", id)
    })?;
    secret
        .verify_token(header(&req, "x-gitlab-token"))
        .map_err(|e| refused("gitlab", e))?;
    let event =
        short_header(&req, "x-gitlab-event", 64).ok_or_else(|| malformed("gitlab", "other"))?;
    let delivery = short_header(&req, "x-gitlab-event-uuid", 128)
        .or_else(|| short_header(&req, "idempotency-key", 128));
    let action = events::gitlab(&event, &body).map_err(|_| malformed("gitlab", &event))?;
    let plan = plan(hosted, action, bound, &receiver_hosts(hosted, "gitlab")).await?;
    deliver(hosted, hooks, "gitlab", &event, delivery, &body, plan).await
}

/// Bitbucket Cloud's deliveries: a repository hook this server registered (`?repo=ID`, signed
/// with that repository's own secret) or a hook set up by hand with the receiver's secret.
#[post("/webhooks/bitbucket")]
pub async fn bitbucket_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    let hooks = &hosted.hooks;
    let Some(base) = &hooks.settings.bitbucket else {
        return Err(ApiError::NoRoute);
    };
    let (body, _permit) = read_body(hooks, &req, payload).await?;
    let (bound, secret) = bound_secret("bitbucket", query.repo.as_deref(), base, |id| {
        hooks.repo_secret("bitbucket", id)
    })?;
    secret
        .verify_bitbucket(header(&req, "x-hub-signature"), &body)
        .map_err(|e| refused("bitbucket", e))?;
    let event =
        short_header(&req, "x-event-key", 64).ok_or_else(|| malformed("bitbucket", "other"))?;
    let delivery = short_header(&req, "x-request-uuid", 128);
    let action = events::bitbucket(&event, &body).map_err(|_| malformed("bitbucket", &event))?;
    let plan = plan(hosted, action, bound, &receiver_hosts(hosted, "bitbucket")).await?;
    deliver(hosted, hooks, "bitbucket", &event, delivery, &body, plan).await
}

/// Any other forge's push hook for repository `id`, signed like GitHub
/// (`X-Hub-Signature-256`) or like Gitea and Forgejo (`X-Gitea-Signature`).
#[post("/webhooks/generic/{id}")]
pub async fn generic_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    let hooks = &hosted.hooks;
    if hooks.generic.is_none() {
        return Err(ApiError::NoRoute);
    }
    let (body, _permit) = read_body(hooks, &req, payload).await?;
    let id = RepoId::parse(&path).ok_or_else(|| refused("generic", SignatureError::Mismatch))?;
    let secret = hooks.generic_secret(id.as_str()).ok_or(ApiError::NoRoute)?;
    let verified = match (
        header(&req, "x-hub-signature-256"),
        header(&req, "x-gitea-signature"),
    ) {
        (Some(h), _) => secret.verify_github(Some(h), &body),
        (None, Some(h)) => secret.verify_gitea(Some(h), &body),
        (None, None) => Err(SignatureError::Missing),
    };
    verified.map_err(|e| refused("generic", e))?;
    events::generic(&body).map_err(|_| malformed("generic", "generic"))?;
    let plan = plan_fetch(hosted, id).await?;
    deliver(hosted, hooks, "generic", "generic", None, &body, plan).await
}
