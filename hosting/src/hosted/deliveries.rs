//! A webhook delivery handled. One pipeline for every forge's receiver: the secret its hook signs with (a registered hook's
//! own, else the receiver's), the signature checked before anything is parsed, the event and
//! delivery id read from the forge's headers, the body parsed into an action, planned, recorded
//! once and carried out. What differs between forges is [`Receiver`]'s few answers; the web layer
//! reads the body and the headers and hands them here.

use std::sync::Arc;

use gitvista_actors::RepoId;
use gitvista_errors::{ApiError, blocking};
use gitvista_store::webhooks::Delivery;
use serde_json::json;

use crate::hosted::Hosted;
use crate::webhooks::events;
use crate::webhooks::verify::{HookSecret, SignatureError};
use crate::webhooks::{Receiver, Webhooks, body_digest, count, malformed, refused};
use plan::{Plan, carry_out, plan, plan_fetch, receiver_hosts};

mod plan;

/// What a receiver answers its sender: 202 (`accepted`) for work taken on, 200 for a ping or a
/// duplicate, with a JSON body saying which.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Work was taken on (202), rather than nothing to do (200).
    pub accepted: bool,
    /// `{"outcome", "delivery", "repo"}`.
    pub body: serde_json::Value,
}

/// A short printable header value (event names, delivery ids), if present and sane.
fn short(value: Option<Vec<u8>>, max: usize) -> Option<String> {
    let value = value?;
    let v = std::str::from_utf8(&value).ok()?.trim();
    (!v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .then(|| v.to_string())
}

/// Handles a delivery to `receiver`: `repo` is the `?repo=` of a hook this server registered,
/// `header` reads the request's headers (lower-case names), `body` is the whole body. A receiver
/// whose secret is not configured answers 404, like a route that does not exist.
pub async fn receive(
    hosted: &Arc<Hosted>,
    receiver: Receiver,
    repo: Option<&str>,
    header: &dyn Fn(&str) -> Option<Vec<u8>>,
    body: &[u8],
) -> Result<Receipt, ApiError> {
    let hooks = &hosted.hooks;
    let provider = receiver.provider();
    let base = receiver.secret(&hooks.settings).ok_or(ApiError::NoRoute)?;
    let (bound, secret) = bound_secret(provider, repo, base, |id| hooks.repo_secret(provider, id))?;
    receiver
        .verify(&secret, header, body)
        .map_err(|e| refused(provider, e))?;
    let event =
        short(header(receiver.event_header()), 64).ok_or_else(|| malformed(provider, "other"))?;
    let delivery = receiver
        .delivery_headers()
        .iter()
        .find_map(|h| short(header(h), 128));
    let github_web = hosted
        .accounts
        .as_ref()
        .and_then(|a| a.auth.forge("github"))
        .map_or("https://github.com", |f| f.web_url.as_str());
    let action = receiver
        .parse(github_web, &event, body)
        .map_err(|()| malformed(provider, &event))?;
    let plan = plan(hosted, action, bound, &receiver_hosts(hosted, provider)).await?;
    deliver(hosted, hooks, provider, &event, delivery, body, plan).await
}

/// Handles a delivery to repository `id`'s generic hook (any other forge, signed like GitHub
/// with `X-Hub-Signature-256` or like Gitea and Forgejo with `X-Gitea-Signature`, under that
/// repository's secret). Off (404) without sign-in.
pub async fn receive_generic(
    hosted: &Arc<Hosted>,
    id: &str,
    header: &dyn Fn(&str) -> Option<Vec<u8>>,
    body: &[u8],
) -> Result<Receipt, ApiError> {
    let hooks = &hosted.hooks;
    if hooks.generic.is_none() {
        return Err(ApiError::NoRoute);
    }
    let id = RepoId::parse(id).ok_or_else(|| refused("generic", SignatureError::Mismatch))?;
    let secret = hooks.generic_secret(id.as_str()).ok_or(ApiError::NoRoute)?;
    let verified = match (header("x-hub-signature-256"), header("x-gitea-signature")) {
        (Some(h), _) => secret.verify_github(Some(&h), body),
        (None, Some(h)) => secret.verify_gitea(Some(&h), body),
        (None, None) => Err(SignatureError::Missing),
    };
    verified.map_err(|e| refused("generic", e))?;
    events::generic(body).map_err(|_| malformed("generic", "generic"))?;
    let plan = plan_fetch(hosted, id).await?;
    deliver(hosted, hooks, "generic", "generic", None, body, plan).await
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
) -> Result<Receipt, ApiError> {
    let outcome = plan.outcome();
    let digest = body_digest(body);
    let delivery_id = delivery_id.unwrap_or_else(|| digest[..32].to_string());
    let record = Delivery {
        provider: provider.to_string(),
        delivery_id: delivery_id.clone(),
        event: event.to_string(),
        repo_id: plan.repo().map(|r| r.as_str().to_string()),
        outcome: outcome.to_string(),
        received_at: gitvista_store::now(),
    };
    let store = hosted.store.clone();
    let fresh = blocking(move || store.record_delivery(&record, &digest)).await?;
    if !fresh {
        count(provider, event, "duplicate");
        return Ok(Receipt {
            accepted: false,
            body: json!({"outcome": "duplicate", "delivery": delivery_id}),
        });
    }
    count(provider, event, outcome);
    let repo = plan.repo().map(|r| r.as_str().to_string());
    carry_out(hosted, hooks, plan).await?;
    let body = json!({"outcome": outcome, "delivery": delivery_id, "repo": repo});
    Ok(Receipt {
        accepted: outcome != "ping",
        body,
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
