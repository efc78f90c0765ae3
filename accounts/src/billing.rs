//! Paid plans through Stripe: Checkout for upgrading, the customer portal for managing billing,
//! and `POST /webhooks/stripe` keeping the `subscriptions` table in step with Stripe.
//!
//! Off unless `GITVISTA_STRIPE_SECRET_KEY` is set; then `GITVISTA_STRIPE_PRICE` (the paid
//! plan's price) and `GITVISTA_STRIPE_WEBHOOK_SECRET` are required and sign-in must be on, or
//! the server refuses to start. `GITVISTA_STRIPE_API_URL` points the client elsewhere (the
//! tests' fake). With billing off its routes answer 404.
//!
//! The client is a few form posts over reqwest rather than async-stripe: GitVista makes two
//! calls (Checkout Session, portal session), and async-stripe's generated API is a large build
//! for them; the webhook check is the documented HMAC.

pub mod stripe;

use std::time::Duration;

use gitvista_store::billing::Subscription;

/// Billing, configured.
#[derive(Clone)]
pub struct BillingSettings {
    /// `GITVISTA_STRIPE_SECRET_KEY`: only ever in the `Authorization` header of calls to Stripe.
    secret_key: std::sync::Arc<zeroize::Zeroizing<String>>,
    /// `GITVISTA_STRIPE_PRICE`: the paid plan's recurring price (`price_...`).
    pub price: String,
    /// `GITVISTA_STRIPE_WEBHOOK_SECRET`: the endpoint's signing secret (`whsec_...`).
    webhook_secret: std::sync::Arc<zeroize::Zeroizing<String>>,
    /// `GITVISTA_STRIPE_API_URL`: `https://api.stripe.com`.
    pub api_url: String,
    /// `GITVISTA_PAYMENT_GRACE_SECS` (7 days): how long a failed payment keeps the paid plan.
    pub grace: Duration,
    /// How far a webhook's timestamp may be from now (300 s, Stripe's libraries' default).
    pub tolerance: Duration,
}

impl std::fmt::Debug for BillingSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingSettings")
            .field("price", &self.price)
            .field("api_url", &self.api_url)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl BillingSettings {
    /// The secret key, for the `Authorization` header only.
    pub fn secret_key(&self) -> &str {
        self.secret_key.as_str()
    }

    /// The webhook signing secret.
    pub fn webhook_secret(&self) -> &[u8] {
        self.webhook_secret.as_bytes()
    }

    /// Reads the settings through `get`: `Ok(None)` when billing is off, else all checked;
    /// `sign_in` says whether accounts are on (billing needs them).
    pub fn from_settings(
        get: impl Fn(&str) -> Option<String>,
        sign_in: bool,
    ) -> Result<Option<BillingSettings>, String> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get("GITVISTA_STRIPE_SECRET_KEY") else {
            if get("GITVISTA_STRIPE_WEBHOOK_SECRET").is_some() {
                return Err("GITVISTA_STRIPE_WEBHOOK_SECRET is set without GITVISTA_STRIPE_SECRET_KEY: set both to turn billing on, or neither".into());
            }
            return Ok(None);
        };
        if !sign_in {
            return Err(
                "GITVISTA_STRIPE_SECRET_KEY is set, so billing is on, and billing needs sign-in: configure a forge's OAuth client (GITHUB_CLIENT_ID, GITLAB_CLIENT_ID or BITBUCKET_CLIENT_ID)".into(),
            );
        }
        let need = |name: &str| {
            get(name).ok_or_else(|| {
                format!(
                    "GITVISTA_STRIPE_SECRET_KEY is set, so billing is on and {name} is required"
                )
            })
        };
        let price = need("GITVISTA_STRIPE_PRICE")?;
        let webhook_secret = need("GITVISTA_STRIPE_WEBHOOK_SECRET")?;
        let api_url =
            get("GITVISTA_STRIPE_API_URL").unwrap_or_else(|| "https://api.stripe.com".to_string());
        let api_url = url::Url::parse(&api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .ok_or_else(|| format!("GITVISTA_STRIPE_API_URL {api_url:?} is not an http(s) URL"))?;
        let grace = match get("GITVISTA_PAYMENT_GRACE_SECS") {
            None => 7 * 86_400,
            Some(t) => t.parse::<u64>().map_err(|_| {
                format!("GITVISTA_PAYMENT_GRACE_SECS {t:?} is not a number of seconds")
            })?,
        };
        Ok(Some(BillingSettings {
            secret_key: std::sync::Arc::new(zeroize::Zeroizing::new(key)),
            price,
            webhook_secret: std::sync::Arc::new(zeroize::Zeroizing::new(webhook_secret)),
            api_url,
            grace: Duration::from_secs(grace),
            tolerance: Duration::from_secs(300),
        }))
    }
}

/// Where an owner's plan stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanState {
    /// `free` or `paid`.
    pub plan: &'static str,
    /// The paying (or last) subscription's Stripe status.
    pub status: Option<String>,
    /// A payment failed: the paid plan lasts until then unless it is paid.
    pub grace_until: Option<i64>,
    /// When the paid period ends.
    pub period_end: Option<i64>,
    /// The Stripe customer, for the portal (never shown).
    #[serde(skip)]
    pub customer: Option<String>,
    /// Paid through a subscription (not an admin's grant).
    pub subscribed: bool,
    /// How many of the paid price the paying subscription holds (a team's seats); 0 when no
    /// subscription pays.
    pub quantity: i64,
}

/// The plan `subs` give at `now` to an owner whose own plan is `base` (an admin may grant
/// `paid`), with a failed payment keeping it for `grace` seconds.
///
/// Only subscriptions to `price` (`GITVISTA_STRIPE_PRICE`) count: the same Stripe account may
/// sell other things, and a subscription to any of them (a donation, a Payment Link that sets
/// `client_reference_id` from its URL) names an owner just as well. Without a price (billing
/// off) none counts. The customer for the portal comes from those subscriptions too.
pub fn plan_state(
    base: &str,
    subs: &[Subscription],
    price: Option<&str>,
    now: i64,
    grace: i64,
) -> PlanState {
    let ours: Vec<&Subscription> = subs
        .iter()
        .filter(|s| price.is_some() && s.price_id.as_deref() == price)
        .collect();
    let paying = ours.iter().find_map(|s| {
        let failing = matches!(s.status.as_str(), "past_due" | "unpaid");
        let since = s
            .payment_failed_at
            .or(failing.then_some(s.state_at))
            .filter(|_| failing || s.payment_failed_at.is_some());
        let alive = matches!(
            s.status.as_str(),
            "active" | "trialing" | "past_due" | "unpaid"
        );
        let grace_until = since.map(|f| f + grace);
        let paid = alive && grace_until.is_none_or(|g| now < g);
        paid.then_some((s, grace_until))
    });
    let last = ours.first();
    let customer = ours.iter().find_map(|s| s.customer_id.clone());
    match paying {
        Some((s, grace_until)) => PlanState {
            plan: "paid",
            status: Some(s.status.clone()),
            grace_until,
            period_end: s.current_period_end,
            customer,
            subscribed: true,
            quantity: s.quantity.max(1),
        },
        None => PlanState {
            plan: if base == "paid" { "paid" } else { "free" },
            status: last.map(|s| s.status.clone()),
            grace_until: None,
            period_end: None,
            customer,
            subscribed: false,
            quantity: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(status: &str, failed: Option<i64>) -> Subscription {
        Subscription {
            id: "sub_1".into(),
            owner: Some("user:u".into()),
            customer_id: Some("cus_1".into()),
            status: status.into(),
            price_id: Some("price_paid".into()),
            quantity: 1,
            current_period_end: Some(5_000),
            payment_failed_at: failed,
            state_at: 100,
            invoice_at: 0,
            updated_at: 0,
        }
    }

    fn settings(pairs: &[(&str, &str)], sign_in: bool) -> Result<Option<BillingSettings>, String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BillingSettings::from_settings(|k| map.get(k).cloned(), sign_in)
    }

    #[test]
    fn billing_is_off_without_a_key_and_refused_half_configured() {
        assert!(settings(&[], true).expect("off").is_none());
        let full = [
            ("GITVISTA_STRIPE_SECRET_KEY", "sk_test_secret_value"),
            ("GITVISTA_STRIPE_PRICE", "price_1"),
            ("GITVISTA_STRIPE_WEBHOOK_SECRET", "whsec_secret_value"),
        ];
        let on = settings(&full, true).expect("ok").expect("on");
        assert_eq!(on.api_url, "https://api.stripe.com");
        assert_eq!(on.grace, Duration::from_secs(7 * 86_400));
        assert!(!format!("{on:?}").contains("sk_test_secret_value"));
        assert!(!format!("{on:?}").contains("whsec_secret_value"));
        let err = settings(&full, false).expect_err("needs sign-in");
        assert!(err.contains("needs sign-in"), "{err}");
        for drop in ["GITVISTA_STRIPE_PRICE", "GITVISTA_STRIPE_WEBHOOK_SECRET"] {
            let pairs: Vec<_> = full.iter().copied().filter(|(k, _)| *k != drop).collect();
            let err = settings(&pairs, true).expect_err(drop);
            assert!(err.contains(&format!("{drop} is required")), "{err}");
            assert!(!err.contains("sk_test_secret_value"));
        }
        let err = settings(&[("GITVISTA_STRIPE_WEBHOOK_SECRET", "whsec_x")], true)
            .expect_err("a secret without a key");
        assert!(err.contains("set both"), "{err}");
    }

    const P: Option<&str> = Some("price_paid");

    #[test]
    fn only_the_configured_price_pays_and_its_quantity_is_the_seats() {
        let mut other = sub("active", None);
        other.price_id = Some("price_cheap_donation".into());
        other.quantity = 500;
        other.customer_id = Some("cus_other".into());
        let s = plan_state("free", std::slice::from_ref(&other), P, 200, 1_000);
        assert_eq!((s.plan, s.subscribed, s.quantity), ("free", false, 0));
        assert_eq!(s.customer, None, "another product's customer is not ours");
        assert_eq!(s.status, None);
        let mut ours = sub("active", None);
        ours.quantity = 7;
        let s = plan_state("free", &[other.clone(), ours.clone()], P, 200, 1_000);
        assert_eq!((s.plan, s.quantity), ("paid", 7));
        assert_eq!(s.customer.as_deref(), Some("cus_1"));
        let mut unknown = sub("active", None);
        unknown.price_id = None;
        assert_eq!(plan_state("free", &[unknown], P, 200, 1_000).plan, "free");
        assert_eq!(
            plan_state("free", &[ours], None, 200, 1_000).plan,
            "free",
            "billing off: no subscription counts"
        );
    }

    #[test]
    fn a_failed_payment_keeps_the_plan_through_the_grace_period_only() {
        let g = 1_000;
        assert_eq!(plan_state("free", &[], P, 0, g).plan, "free");
        assert_eq!(
            plan_state("paid", &[], P, 0, g).plan,
            "paid",
            "an admin's grant"
        );
        let active = plan_state("free", &[sub("active", None)], P, 200, g);
        assert_eq!((active.plan, active.grace_until), ("paid", None));
        let failing = plan_state("free", &[sub("past_due", Some(150))], P, 200, g);
        assert_eq!((failing.plan, failing.grace_until), ("paid", Some(1_150)));
        let over = plan_state("free", &[sub("past_due", Some(150))], P, 1_150, g);
        assert_eq!(over.plan, "free");
        // past_due before the invoice's own event: grace from the status change.
        let early = plan_state("free", &[sub("past_due", None)], P, 200, g);
        assert_eq!(early.grace_until, Some(1_100));
        for gone in ["canceled", "incomplete", "incomplete_expired", "paused"] {
            let s = plan_state("free", &[sub(gone, None)], P, 200, g);
            assert_eq!(
                (s.plan, s.status.as_deref()),
                ("free", Some(gone)),
                "{gone}"
            );
        }
    }
}
