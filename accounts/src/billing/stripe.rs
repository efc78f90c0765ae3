//! Stripe on the wire: the two API calls GitVista makes (a Checkout Session for a
//! subscription, a billing portal session), the `Stripe-Signature` check, and reading the
//! events this server acts on.

use hmac::{KeyInit as _, Mac as _};
use serde_json::Value;

use super::BillingSettings;
use gitvista_store::billing::Change;

/// Why a Stripe call failed. Never carries the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// Stripe said no (4xx), with its message.
    #[error("Stripe refused: {0}")]
    Refused(String),
    /// Stripe failed or could not be reached.
    #[error("Stripe could not be reached or failed: {0}")]
    Unavailable(String),
}

/// The client.
#[derive(Clone)]
pub struct Stripe {
    settings: BillingSettings,
    http: reqwest::Client,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Stripe {
    /// A client for `settings`.
    pub fn new(settings: BillingSettings) -> Result<Stripe, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the Stripe client could not be built: {e}"))?;
        Ok(Stripe { settings, http })
    }

    /// The settings.
    pub fn settings(&self) -> &BillingSettings {
        &self.settings
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.settings.api_url))
            .bearer_auth(self.settings.secret_key())
            .form(form);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| StripeError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.map_err(|_| {
            StripeError::Unavailable(format!("{status} with a body that does not parse"))
        })?;
        match status {
            200 => Ok(body),
            400..=499 => Err(StripeError::Refused(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("no message")
                    .chars()
                    .take(200)
                    .collect(),
            )),
            s => Err(StripeError::Unavailable(s.to_string())),
        }
    }

    /// A Checkout Session subscribing `owner` (`user:<id>`) to the paid price (`seats` of it),
    /// as customer `customer` when they have been one before; answers the URL to send them to.
    pub async fn checkout(
        &self,
        owner: &str,
        customer: Option<&str>,
        seats: u32,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<String, StripeError> {
        let seats = seats.max(1).to_string();
        let mut form = vec![
            ("mode", "subscription"),
            ("line_items[0][price]", self.settings.price.as_str()),
            ("line_items[0][quantity]", seats.as_str()),
            ("success_url", success_url),
            ("cancel_url", cancel_url),
            ("client_reference_id", owner),
            ("metadata[gitvista_owner]", owner),
            ("subscription_data[metadata][gitvista_owner]", owner),
        ];
        if let Some(c) = customer {
            form.push(("customer", c));
        }
        // A double click (or a retry) within the same ten minutes is the same Checkout
        // Session: Stripe answers the first one again for the same key and parameters.
        let key = idempotency_key(&form, gitvista_store::now() / 600);
        let body = self
            .post("/v1/checkout/sessions", &form, Some(&key))
            .await?;
        body["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| StripeError::Unavailable("a Checkout Session without a URL".into()))
    }

    /// A billing portal session for `customer`, coming back to `return_url`; answers its URL.
    pub async fn portal(&self, customer: &str, return_url: &str) -> Result<String, StripeError> {
        let body = self
            .post(
                "/v1/billing_portal/sessions",
                &[("customer", customer), ("return_url", return_url)],
                None,
            )
            .await?;
        body["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| StripeError::Unavailable("a portal session without a URL".into()))
    }
}

/// The `Idempotency-Key` of a Checkout Session with `form` in ten-minute window `window`:
/// the same request in the same window is the same key (and so the same session).
fn idempotency_key(form: &[(&str, &str)], window: i64) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(format!("gitvista checkout {window}").as_bytes());
    for (k, v) in form {
        h.update(format!("\n{k}={v}").as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a webhook was refused before its body was read as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("no Stripe-Signature header")]
    Missing,
    /// The header has no timestamp or no `v1` signature.
    #[error("a Stripe-Signature header without t= and v1=")]
    Malformed,
    /// No `v1` signature matches the body.
    #[error("no signature matches")]
    Mismatch,
    /// The timestamp is further from now than the tolerance (a replay, or a wrong clock).
    #[error("the signature's timestamp is outside the tolerance")]
    Expired,
}

/// Checks `Stripe-Signature` (`t=<unix>,v1=<hex>[,v1=...]`): some `v1` must be the hex
/// HMAC-SHA256 of `"{t}.{body}"` under `secret` (compared in constant time), and `t` within
/// `tolerance` seconds of `now`.
pub fn verify(
    header: Option<&[u8]>,
    body: &[u8],
    secret: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = std::str::from_utf8(header.ok_or(SignatureError::Missing)?)
        .map_err(|_| SignatureError::Malformed)?;
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let matches = v1.iter().any(|sig| {
        unhex(sig).is_some_and(|bytes| {
            bool::from(subtle::ConstantTimeEq::ct_eq(&bytes[..], &expected[..]))
        })
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if (now - t).abs() > tolerance {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A verified event: id, type, `created`, and what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_...`.
    pub id: String,
    /// `customer.subscription.updated`, ...
    pub kind: String,
    /// Unix seconds when Stripe created it: the order changes are applied in.
    pub created: i64,
    /// What it says.
    pub change: Change,
}

/// The body is not an event this server can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the body is not a Stripe event")]
pub struct Malformed;

fn text(v: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .map(str::to_string)
}

/// An id field that may be expanded into an object (`"customer": {"id": ...}`).
fn id_of(v: &Value, key: &str) -> Option<String> {
    text(v, &[key]).or_else(|| text(v, &[key, "id"]))
}

/// Reads an event's body (already verified).
pub fn parse(body: &[u8]) -> Result<Event, Malformed> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Malformed)?;
    let id = text(&v, &["id"]).ok_or(Malformed)?;
    let kind = text(&v, &["type"]).ok_or(Malformed)?;
    let created = v["created"].as_i64().ok_or(Malformed)?;
    let o = &v["data"]["object"];
    let change = match kind.as_str() {
        "checkout.session.completed" => {
            match (
                id_of(o, "subscription"),
                text(o, &["client_reference_id"])
                    .or_else(|| text(o, &["metadata", "gitvista_owner"])),
            ) {
                (Some(sub), Some(owner)) => Change::Checkout {
                    id: sub,
                    owner,
                    customer: id_of(o, "customer"),
                },
                // A payment-mode session or one not started here.
                _ => Change::Nothing,
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let item = &o["items"]["data"][0];
            Change::State {
                id: text(o, &["id"]).ok_or(Malformed)?,
                owner: text(o, &["metadata", "gitvista_owner"]),
                customer: id_of(o, "customer"),
                status: text(o, &["status"]).ok_or(Malformed)?,
                price_id: text(item, &["price", "id"]),
                quantity: item["quantity"].as_i64().unwrap_or(1).max(1),
                // Newer API versions keep the period on the item.
                current_period_end: o["current_period_end"]
                    .as_i64()
                    .or_else(|| item["current_period_end"].as_i64()),
            }
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let sub = id_of(o, "subscription")
                .or_else(|| text(o, &["parent", "subscription_details", "subscription"]));
            match sub {
                Some(sub) => Change::Invoice {
                    id: sub,
                    customer: id_of(o, "customer"),
                    paid: kind == "invoice.paid",
                },
                None => Change::Nothing,
            }
        }
        _ => Change::Nothing,
    };
    Ok(Event {
        id,
        kind,
        created,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn signatures_are_checked_as_stripe_signs_them() {
        let secret = b"whsec_test_secret";
        let body = br#"{"id":"evt_1"}"#;
        let t = 1_700_000_000;
        let good = sign(secret, t, body);
        let header = format!("t={t},v1={good}");
        assert_eq!(
            verify(Some(header.as_bytes()), body, secret, t + 10, 300),
            Ok(())
        );
        // Tampered body, wrong secret.
        assert_eq!(
            verify(Some(header.as_bytes()), b"{}", secret, t, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(header.as_bytes()), body, b"whsec_other", t, 300),
            Err(SignatureError::Mismatch)
        );
        // Too old, or from the future.
        assert_eq!(
            verify(Some(header.as_bytes()), body, secret, t + 301, 300),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(Some(header.as_bytes()), body, secret, t - 301, 300),
            Err(SignatureError::Expired)
        );
        // Several v1 (a secret being rolled): any may match; v0 is ignored.
        let rolled = format!("t={t},v1={},v0={good},v1={good}", "0".repeat(64));
        assert_eq!(
            verify(Some(rolled.as_bytes()), body, secret, t, 300),
            Ok(())
        );
        let only_v0 = format!("t={t},v0={good}");
        assert_eq!(
            verify(Some(only_v0.as_bytes()), body, secret, t, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(None, body, secret, t, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some(b"v1=abc"), body, secret, t, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn events_are_read_from_old_and_new_api_shapes() {
        let e = parse(
            br#"{"id":"evt_1","type":"customer.subscription.updated","created":5,"data":{"object":{"id":"sub_1","customer":"cus_1","status":"past_due","metadata":{"gitvista_owner":"user:u"},"items":{"data":[{"price":{"id":"price_p"},"quantity":3,"current_period_end":99}]}}}}"#,
        )
        .expect("parses");
        assert_eq!(
            e.change,
            Change::State {
                id: "sub_1".into(),
                owner: Some("user:u".into()),
                customer: Some("cus_1".into()),
                status: "past_due".into(),
                price_id: Some("price_p".into()),
                quantity: 3,
                current_period_end: Some(99),
            }
        );
        let e = parse(
            br#"{"id":"evt_2","type":"invoice.payment_failed","created":6,"data":{"object":{"customer":"cus_1","parent":{"subscription_details":{"subscription":"sub_1"}}}}}"#,
        )
        .expect("parses");
        assert_eq!(
            e.change,
            Change::Invoice {
                id: "sub_1".into(),
                customer: Some("cus_1".into()),
                paid: false
            }
        );
        let e = parse(
            br#"{"id":"evt_3","type":"checkout.session.completed","created":7,"data":{"object":{"mode":"subscription","client_reference_id":"user:u","customer":{"id":"cus_1"},"subscription":"sub_1"}}}"#,
        )
        .expect("parses");
        assert_eq!(
            e.change,
            Change::Checkout {
                id: "sub_1".into(),
                owner: "user:u".into(),
                customer: Some("cus_1".into())
            }
        );
        assert_eq!(
            parse(br#"{"id":"evt_4","type":"charge.refunded","created":8,"data":{"object":{}}}"#)
                .expect("parses")
                .change,
            Change::Nothing
        );
        assert_eq!(parse(b"[]"), Err(Malformed));
        assert_eq!(parse(br#"{"id":"evt_5","type":"x"}"#), Err(Malformed));
    }
}
