//! Billing over HTTP (on with `GITVISTA_STRIPE_SECRET_KEY`; 404 otherwise):
//! `POST /api/billing/checkout` (Upgrade: a Stripe Checkout Session's URL),
//! `POST /api/billing/portal` (Manage billing: the customer portal's URL),
//! `POST /webhooks/stripe` (Stripe's events, signed), and
//! `POST /api/user/tracked/{id}/keep` (choose a repository to keep refreshing over the plan).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt as _;
use serde_json::json;

use super::AppState;
use super::account::{accounts, viewer};
use gitvista_accounts::billing::stripe::{self, Stripe, StripeError};
use gitvista_errors::{ApiError, blocking};
use gitvista_hosting::hosted::Hosted;
use gitvista_store::billing::Handled;

/// Largest event body read (Stripe's events are a few kilobytes).
const MAX_EVENT: usize = 512 << 10;

fn billing(state: &AppState) -> Result<(Arc<Hosted>, Stripe), ApiError> {
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let stripe = h.stripe.clone().ok_or(ApiError::NoRoute)?;
    Ok((h, stripe))
}

fn stripe_failed(e: &StripeError) -> ApiError {
    tracing::warn!(error = %e, "a Stripe call failed");
    ApiError::status(
        502,
        "Stripe could not be reached or refused the request; try again in a minute",
        "billing_unavailable",
    )
}

/// The public URL pages go back to.
fn public_url(state: &AppState) -> Result<String, ApiError> {
    Ok(accounts(state)?.auth.public_url.clone())
}

/// "Upgrade": a Checkout Session for the paid plan; answers `{"url": ...}` to send the browser
/// to. 409 when a subscription already pays for the plan.
#[post("/api/billing/checkout")]
pub async fn checkout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, stripe) = billing(&state)?;
    let accounts = accounts(&state)?;
    let v =
        viewer(&req).ok_or_else(|| ApiError::status(401, "sign in first", "sign_in_required"))?;
    let plan = accounts.plan_of(&v.user).await?;
    if plan.subscribed {
        return Err(ApiError::status(
            409,
            "your subscription already pays for the paid plan; manage it from Manage billing",
            "already_subscribed",
        ));
    }
    let base = public_url(&state)?;
    let url = stripe
        .checkout(
            &format!("user:{}", v.user.id),
            plan.customer.as_deref(),
            1,
            &format!("{base}/dashboard?billing=success"),
            &format!("{base}/dashboard?billing=cancelled"),
        )
        .await
        .map_err(|e| stripe_failed(&e))?;
    tracing::info!(user = %v.user.id, "started a Stripe Checkout");
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "url": url })))
}

/// "Manage billing": a customer portal session; answers `{"url": ...}`. 404
/// `no_billing_account` for a user who never subscribed.
#[post("/api/billing/portal")]
pub async fn portal(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, stripe) = billing(&state)?;
    let accounts = accounts(&state)?;
    let v =
        viewer(&req).ok_or_else(|| ApiError::status(401, "sign in first", "sign_in_required"))?;
    let plan = accounts.plan_of(&v.user).await?;
    let Some(customer) = plan.customer else {
        return Err(ApiError::status(
            404,
            "you have no billing account yet; upgrade first",
            "no_billing_account",
        ));
    };
    let url = stripe
        .portal(&customer, &format!("{}/dashboard", public_url(&state)?))
        .await
        .map_err(|e| stripe_failed(&e))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "url": url })))
}

/// Stripe's events: the signature is checked on the raw body before anything is parsed, each
/// event is handled once, and the owner's plan is applied to what they track.
#[post("/webhooks/stripe")]
pub async fn stripe_hook(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (h, stripe) = billing(&state)?;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_request("the body could not be read", "bad_body"))?;
        if body.len() + chunk.len() > MAX_EVENT {
            return Err(ApiError::status(
                413,
                "an event body over 512 KiB",
                "payload_too_large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let header = req.headers().get("stripe-signature").map(|v| v.as_bytes());
    let settings = stripe.settings();
    stripe::verify(
        header,
        &body,
        settings.webhook_secret(),
        gitvista_store::now(),
        i64::try_from(settings.tolerance.as_secs()).unwrap_or(300),
    )
    .map_err(|e| {
        metrics::counter!("gitvista_stripe_events_total", "outcome" => "bad_signature")
            .increment(1);
        ApiError::status(
            400,
            format!("the Stripe signature was refused: {e}"),
            "bad_signature",
        )
    })?;
    let event = stripe::parse(&body).map_err(|_| {
        metrics::counter!("gitvista_stripe_events_total", "outcome" => "malformed").increment(1);
        ApiError::bad_request("the body is not a Stripe event", "malformed_event")
    })?;
    let (store, e) = (h.store.clone(), event.clone());
    let handled =
        blocking(move || store.handle_stripe_event(&e.id, &e.kind, e.created, &e.change)).await?;
    let owner = match &handled {
        Handled::Duplicate => {
            metrics::counter!("gitvista_stripe_events_total", "outcome" => "duplicate")
                .increment(1);
            return Ok(HttpResponse::Ok().json(json!({"received": true, "duplicate": true})));
        }
        Handled::Applied(owner) => owner.clone(),
    };
    let other_price = match &event.change {
        gitvista_store::billing::Change::State { price_id, .. } => {
            price_id.as_deref() != Some(settings.price.as_str())
        }
        _ => false,
    };
    if other_price {
        // Recorded (a later event may still name the configured price), never counted.
        metrics::counter!("gitvista_stripe_events_total", "outcome" => "other_price").increment(1);
        tracing::info!(
            event = %event.id,
            kind = %event.kind,
            "a subscription to another price than GITVISTA_STRIPE_PRICE was recorded and is ignored"
        );
    } else {
        metrics::counter!("gitvista_stripe_events_total", "outcome" => "applied").increment(1);
        tracing::info!(event = %event.id, kind = %event.kind, "handled a Stripe event");
    }
    if let (Some(o), gitvista_store::billing::Change::State { status, id, .. }) =
        (owner.as_deref(), &event.change)
    {
        gitvista_accounts::audit::audit(
            &h.store,
            "stripe".into(),
            o.strip_prefix("team:").map(str::to_string),
            "plan.changed",
            Some(o.to_string()),
            Some(format!("{} {id}: {status}", event.kind)),
        )
        .await;
    }
    if let Some(uid) = owner.as_deref().and_then(|o| o.strip_prefix("user:")) {
        h.enforce_quota(uid, None).await?;
        if let Some(a) = &h.accounts {
            a.forget_user(uid);
        }
    } else if let Some(tid) = owner.as_deref().and_then(|o| o.strip_prefix("team:")) {
        h.enforce_team_quota(tid, None).await?;
    }
    Ok(HttpResponse::Ok().json(json!({"received": true})))
}

/// Keeps a repository frozen over the signed-in user's plan: it is refreshed again, and the
/// least recently viewed of the others they keep is frozen in its place when the plan is full.
#[post("/api/user/tracked/{id}/keep")]
pub async fn keep(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let v =
        viewer(&req).ok_or_else(|| ApiError::status(401, "sign in first", "sign_in_required"))?;
    let (store, rid, uid) = (accounts.store.clone(), id.to_string(), v.user.id.clone());
    if blocking(move || store.access(&rid, &uid)).await?.is_none() {
        return Err(ApiError::status(
            404,
            "you do not track this repository",
            "not_tracked",
        ));
    }
    let (frozen, thawed) = h.enforce_quota(&v.user.id, Some(&id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"frozen": frozen, "thawed": thawed})))
}
