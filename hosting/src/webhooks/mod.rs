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
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use gitvista_actors::freshen::Freshener;
use gitvista_actors::pace::HookClock;
use serde_json::json;

use self::verify::{HookSecret, SignatureError};
use gitvista_errors::ApiError;

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

    /// Room in the shared budget for a body of `declared` bytes (the most a delivery may be when
    /// unknown), held while it is read and handled; 413 past [`MAX_BODY`], 503 when the budget
    /// stays full for a few seconds.
    pub async fn body_permit(
        &self,
        declared: Option<usize>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        if declared.is_some_and(|n| n > MAX_BODY) {
            return Err(too_large());
        }
        let kib = (declared.unwrap_or(MAX_BODY) >> 10).max(1) as u32;
        tokio::time::timeout(BODY_WAIT, Arc::clone(&self.budget).acquire_many_owned(kib))
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(ApiError::Busy(5))
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

/// A delivery larger than [`MAX_BODY`].
pub fn too_large() -> ApiError {
    ApiError::status(
        413,
        format!("a delivery is at most {} MB", MAX_BODY >> 20),
        "payload_too_large",
    )
}

pub(crate) fn refused(provider: &'static str, why: SignatureError) -> ApiError {
    let reason = match why {
        SignatureError::Missing => "missing",
        SignatureError::Malformed => "malformed",
        SignatureError::Mismatch => "mismatch",
    };
    metrics::counter!("gitvista_webhook_signature_failures_total", "provider" => provider, "reason" => reason)
        .increment(1);
    ApiError::status(401, why.to_string(), "bad_signature")
}

pub(crate) fn malformed(provider: &'static str, event: &str) -> ApiError {
    count(provider, event, "malformed");
    ApiError::bad_request(
        "the delivery's body is not the JSON this event has",
        "bad_payload",
    )
}

pub(crate) fn count(provider: &'static str, event: &str, outcome: &'static str) {
    metrics::counter!(
        "gitvista_webhook_deliveries_total",
        "provider" => provider,
        "event" => events::label(event),
        "outcome" => outcome,
    )
    .increment(1);
}

/// The hex SHA-256 of the body: a delivery is recognised by it as well as by its id.
pub(crate) fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A forge whose hooks this server receives at `/webhooks/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// A GitHub App's hook for every installation, or a hook registered for one repository;
    /// `X-Hub-Signature-256`.
    GitHub,
    /// A project hook registered for one repository, or a system or group hook set up by hand;
    /// `X-Gitlab-Token`.
    GitLab,
    /// A repository hook registered here, or a workspace's set up by hand; `X-Hub-Signature`.
    Bitbucket,
}

impl Receiver {
    /// Its name in paths, labels and the store.
    pub fn provider(self) -> &'static str {
        match self {
            Receiver::GitHub => "github",
            Receiver::GitLab => "gitlab",
            Receiver::Bitbucket => "bitbucket",
        }
    }

    /// The receiver's own secret (`None`: the receiver is off).
    pub fn secret(self, settings: &WebhookSettings) -> Option<&HookSecret> {
        match self {
            Receiver::GitHub => settings.github.as_ref(),
            Receiver::GitLab => settings.gitlab.as_ref(),
            Receiver::Bitbucket => settings.bitbucket.as_ref(),
        }
    }

    /// Checks the delivery's signature (or token) under `secret`.
    pub(crate) fn verify(
        self,
        secret: &HookSecret,
        header: &dyn Fn(&str) -> Option<Vec<u8>>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        match self {
            Receiver::GitHub => {
                secret.verify_github(header("x-hub-signature-256").as_deref(), body)
            }
            Receiver::GitLab => secret.verify_token(header("x-gitlab-token").as_deref()),
            Receiver::Bitbucket => {
                secret.verify_bitbucket(header("x-hub-signature").as_deref(), body)
            }
        }
    }

    /// The header naming the event.
    pub(crate) fn event_header(self) -> &'static str {
        match self {
            Receiver::GitHub => "x-github-event",
            Receiver::GitLab => "x-gitlab-event",
            Receiver::Bitbucket => "x-event-key",
        }
    }

    /// The headers naming the delivery, first present wins.
    pub(crate) fn delivery_headers(self) -> &'static [&'static str] {
        match self {
            Receiver::GitHub => &["x-github-delivery"],
            Receiver::GitLab => &["x-gitlab-event-uuid", "idempotency-key"],
            Receiver::Bitbucket => &["x-request-uuid"],
        }
    }

    /// What the event asks for.
    /// What the event asks for; `github_web` is GitHub's web address (GitHub Enterprise's, or
    /// github.com), which its URLs in the body are checked against.
    pub(crate) fn parse(
        self,
        github_web: &str,
        event: &str,
        body: &[u8],
    ) -> Result<events::Action, ()> {
        match self {
            Receiver::GitHub => events::github(event, body, github_web).map_err(|_| ()),
            Receiver::GitLab => events::gitlab(event, body).map_err(|_| ()),
            Receiver::Bitbucket => events::bitbucket(event, body).map_err(|_| ()),
        }
    }
}
