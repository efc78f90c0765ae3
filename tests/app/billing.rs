//! Paid plans through Stripe, end to end against the real `gitvista serve` binary, the fake
//! GitHub it signs in with and the fake Stripe of testkit: Checkout and the portal, the signed
//! webhook (good, tampered, expired, several `v1`, wrong secret), duplicate and out-of-order
//! events ending in the right plan, an upgrade raising the quota at once, a downgrade freezing
//! the extra repositories without deleting them, and a failed payment's grace period.

use std::time::{Duration, Instant};

use gitvista_testkit::stripe::{FakeStripe, event, subscription_object};
use serde_json::{Value, json};

use crate::signin::{World, client, world};

const SECRET_KEY: &str = "sk_test_gitvista_billing_tests";
const WEBHOOK_SECRET: &str = "whsec_gitvista_billing_tests";
pub(crate) const PRICE: &str = "price_paid_monthly";

/// The sign-in world (free plan: 2 repositories) with billing on against a fake Stripe.
pub(crate) fn billed(extra: &[(&str, &str)]) -> (World, FakeStripe) {
    let stripe = FakeStripe::start(SECRET_KEY, WEBHOOK_SECRET);
    let mut env = vec![
        ("GITVISTA_STRIPE_SECRET_KEY", SECRET_KEY),
        ("GITVISTA_STRIPE_PRICE", PRICE),
        ("GITVISTA_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("GITVISTA_STRIPE_API_URL", stripe.url()),
    ];
    env.extend_from_slice(extra);
    let w = world(&env);
    stripe.set_webhook_url(&format!("{}/webhooks/stripe", w.base));
    (w, stripe)
}

pub(crate) fn now() -> i64 {
    gitvista::store::now()
}

/// Sends `body` to `/webhooks/stripe` with `signature` as `Stripe-Signature`.
pub(crate) async fn deliver(w: &World, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut r = client()
        .post(format!("{}/webhooks/stripe", w.base))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        r = r.header("Stripe-Signature", s);
    }
    let resp = r.send().await.expect("delivery");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs and sends an event now.
pub(crate) async fn send(w: &World, stripe: &FakeStripe, body: &[u8]) -> (u16, Value) {
    deliver(w, body, Some(stripe.signed(body, now()))).await
}

pub(crate) async fn me(w: &World, cookie: &str) -> Value {
    let (status, me) = w.get("/api/user", Some(cookie)).await;
    assert_eq!(status, 200, "{me}");
    me
}

pub(crate) async fn post(w: &World, path: &str, cookie: &str) -> (u16, Value) {
    w.post(path, Some(cookie), json!({})).await
}

/// Follows a fake Stripe page's form (its only POST) and answers where it redirected.
async fn submit(url: &str) -> String {
    let resp = client().post(url).send().await.expect("submit");
    assert_eq!(resp.status().as_u16(), 303, "{url}");
    resp.headers()
        .get("Location")
        .and_then(|l| l.to_str().ok())
        .expect("a Location")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_signature_is_checked_before_anything_is_read() {
    let (w, stripe) = billed(&[]);
    let body = event(
        "evt_sig_1",
        "customer.subscription.created",
        now(),
        subscription_object("sub_sig", "cus_sig", "user:nobody", "active", PRICE, 1),
    );
    let t = now();
    let good = stripe.signed(&body, t);
    // Tampered body, wrong secret, expired or future timestamp, no header, garbage.
    let mut tampered = body.clone();
    tampered.push(b' ');
    let other = FakeStripe::start(SECRET_KEY, "whsec_someone_else").signed(&body, t);
    let old = stripe.signed(&body, t - 400);
    let future = stripe.signed(&body, t + 400);
    for (what, b, sig) in [
        ("tampered", tampered.as_slice(), Some(good.clone())),
        ("wrong secret", &body, Some(other)),
        ("expired", &body, Some(old)),
        ("future", &body, Some(future)),
        ("missing", &body, None),
        ("malformed", &body, Some("v1=abc".to_string())),
    ] {
        let (status, answer) = deliver(&w, b, sig).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("bad_signature")),
            "{what}: {answer}"
        );
    }
    // Several v1 (the secret being rolled): one matching is enough.
    let v1 = good.split(",v1=").nth(1).expect("v1").to_string();
    let rolled = format!("t={t},v1={},v1={v1}", "0".repeat(64));
    let (status, answer) = deliver(&w, &body, Some(rolled)).await;
    assert_eq!(status, 200, "{answer}");
    // A signed body that is no event.
    let junk = b"[1,2,3]";
    let (status, answer) = deliver(&w, junk, Some(stripe.signed(junk, now()))).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("malformed_event"))
    );
    assert!(
        !w.log_text().contains(SECRET_KEY),
        "the key never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_out_of_order_subscription_events_end_in_the_right_plan() {
    let (w, stripe) = billed(&[("GITVISTA_PAYMENT_GRACE_SECS", "3600")]);
    let alice = w.sign_in("alice").await;
    let uid = me(&w, &alice).await["id"].as_str().expect("id").to_string();
    let owner = format!("user:{uid}");
    let sub = |status: &str| subscription_object("sub_ooo", "cus_ooo", &owner, status, PRICE, 1);
    let t = now() - 100;
    // The update (past_due) is delivered before the creation (active) it follows.
    let updated = event(
        "evt_2",
        "customer.subscription.updated",
        t + 20,
        sub("past_due"),
    );
    let created = event("evt_1", "customer.subscription.created", t, sub("active"));
    assert_eq!(send(&w, &stripe, &updated).await.0, 200);
    assert_eq!(send(&w, &stripe, &created).await.0, 200);
    let m = me(&w, &alice).await;
    assert_eq!(
        m["billing"]["status"], "past_due",
        "the newer event wins: {m}"
    );
    assert_eq!(m["plan"], "paid", "within the grace period: {m}");
    assert!(m["billing"]["graceUntil"].is_i64(), "{m}");
    // The same event again changes nothing and says so.
    let (status, answer) = send(&w, &stripe, &updated).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)));
    // A payment fails, then one is paid: the grace ends, paid stays.
    let invoice = |paid: bool| json!({"object": "invoice", "customer": "cus_ooo", "subscription": "sub_ooo", "paid": paid});
    send(
        &w,
        &stripe,
        &event("evt_3", "invoice.payment_failed", t + 21, invoice(false)),
    )
    .await;
    send(
        &w,
        &stripe,
        &event(
            "evt_5",
            "customer.subscription.updated",
            t + 40,
            sub("active"),
        ),
    )
    .await;
    send(
        &w,
        &stripe,
        &event("evt_4", "invoice.paid", t + 39, invoice(true)),
    )
    .await;
    // A failure older than the payment, delivered late, does not bring the grace back.
    send(
        &w,
        &stripe,
        &event("evt_3b", "invoice.payment_failed", t + 30, invoice(false)),
    )
    .await;
    let m = me(&w, &alice).await;
    assert_eq!(
        (m["plan"].as_str(), m["billing"]["status"].as_str()),
        (Some("paid"), Some("active")),
        "{m}"
    );
    assert!(m["billing"]["graceUntil"].is_null(), "{m}");
    // Canceled is final: a late update from before the cancellation changes nothing.
    send(
        &w,
        &stripe,
        &event(
            "evt_7",
            "customer.subscription.deleted",
            t + 60,
            sub("canceled"),
        ),
    )
    .await;
    send(
        &w,
        &stripe,
        &event(
            "evt_6",
            "customer.subscription.updated",
            t + 50,
            sub("active"),
        ),
    )
    .await;
    send(
        &w,
        &stripe,
        &event(
            "evt_8",
            "customer.subscription.updated",
            t + 70,
            sub("active"),
        ),
    )
    .await;
    let m = me(&w, &alice).await;
    assert_eq!(
        (m["plan"].as_str(), m["billing"]["status"].as_str()),
        (Some("free"), Some("canceled")),
        "{m}"
    );
}

/// Waits until `cookie`'s user's tracked list satisfies `ok`.
async fn tracked_until(w: &World, cookie: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = w.get("/api/user/tracked", Some(cookie)).await;
        let list = body["repos"].as_array().cloned().unwrap_or_default();
        if ok(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "never: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn frozen_ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter(|r| r["frozen"] == true)
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_raises_the_quota_at_once_and_a_downgrade_freezes_without_deleting() {
    let (w, stripe) = billed(&[("GITVISTA_GITHUB_WEBHOOK_SECRET", crate::webhooks::SECRET)]);
    let alice = w.sign_in("alice").await;
    // Free: two repositories.
    let open = w.track(&alice, &w.repo_url("open")).await;
    let secret = w.track(&alice, &w.repo_url("secret")).await;
    let hook = |delivery: &'static str, url: String| {
        let base = w.base.clone();
        async move {
            crate::webhooks::github(
                &base,
                "push",
                delivery,
                &crate::webhooks::push(&format!("{url}.git")),
            )
            .await
        }
    };
    // Free: a push hook waits for the next poll at the free plan's pace.
    let (status, answer) = hook("free-push", w.repo_url("open")).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("polled")),
        "{answer}"
    );
    let (status, refused) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("third")}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("quota_exceeded"))
    );
    // The portal needs a customer first.
    let (status, body) = post(&w, "/api/billing/portal", &alice).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("no_billing_account"))
    );
    // Upgrade: Checkout, paid on the fake's page; its events arrive before the redirect.
    let (status, body) = post(&w, "/api/billing/checkout", &alice).await;
    assert_eq!(status, 200, "{body}");
    let pay = body["url"].as_str().expect("url").to_string();
    assert!(pay.starts_with(stripe.url()), "{pay}");
    let back = submit(&pay).await;
    assert_eq!(back, format!("{}/dashboard?billing=success", w.base));
    assert!(
        stripe.answers().iter().all(|(_, s)| *s == 200),
        "{:?}",
        stripe.answers()
    );
    let m = me(&w, &alice).await;
    assert_eq!(
        (m["plan"].as_str(), m["usage"]["limit"].as_i64()),
        (Some("paid"), Some(50))
    );
    let (status, again) = post(&w, "/api/billing/checkout", &alice).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("already_subscribed"))
    );
    // The quota is raised at once: a third repository; and pushes fetch at once.
    let third = w.track(&alice, &w.repo_url("third")).await;
    let (status, answer) = hook("paid-push", w.repo_url("open")).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("fetch")),
        "{answer}"
    );
    // Opening `open` again makes it the most recently used (times are in seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("open")}),
        )
        .await;
    assert_eq!(status, 200);
    // Downgrade: cancel in the portal.
    let (status, body) = post(&w, "/api/billing/portal", &alice).await;
    assert_eq!(status, 200, "{body}");
    let portal = body["url"].as_str().expect("url").to_string();
    let cancel = format!("{portal}/cancel");
    assert_eq!(submit(&cancel).await, format!("{}/dashboard", w.base));
    let m = me(&w, &alice).await;
    assert_eq!(m["plan"], "free", "{m}");
    assert_eq!(m["usage"]["repos"], 3, "nothing deleted: {m}");
    assert_eq!(m["usage"]["frozen"], 1, "{m}");
    // The least recently viewed is frozen; it is still there and still readable.
    let list = tracked_until(&w, &alice, |l| frozen_ids(l).len() == 1).await;
    let frozen = frozen_ids(&list);
    assert_ne!(frozen[0], open, "the most recently viewed stays kept");
    let (status, _) = w
        .get(
            &format!("/api/repos/{}/repository", frozen[0]),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 200);
    // A push hook for a frozen repository fetches nothing.
    let name = |id: &str| {
        list.iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["url"].as_str().or(r["displayUrl"].as_str()))
            .map(String::from)
            .expect("its URL")
    };
    let (status, answer) = crate::webhooks::github(
        &w.base,
        "push",
        "frozen-push",
        &crate::webhooks::push(&format!("{}.git", name(&frozen[0]))),
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("frozen")),
        "{answer}"
    );
    let (status, answer) = crate::webhooks::github(
        &w.base,
        "push",
        "kept-push",
        &crate::webhooks::push(&format!("{}.git", name(&open))),
    )
    .await;
    // Kept, but on the free plan again: it waits for the free plan's poll.
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("polled")),
        "{answer}"
    );
    // She chooses to keep the frozen one: another, least recently viewed, freezes instead.
    let (status, body) = post(&w, &format!("/api/user/tracked/{}/keep", frozen[0]), &alice).await;
    assert_eq!(status, 200, "{body}");
    let list = tracked_until(&w, &alice, |l| {
        let f = frozen_ids(l);
        f.len() == 1 && f[0] != frozen[0]
    })
    .await;
    assert_ne!(frozen_ids(&list)[0], open);
    // Untracking one frees a place: nothing is frozen any more.
    let victim = [secret.as_str(), third.as_str()]
        .into_iter()
        .find(|id| *id != frozen_ids(&list)[0])
        .expect("one kept")
        .to_string();
    let resp = client()
        .delete(format!("{}/api/repos/{victim}", w.base))
        .header("Cookie", &alice)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("untrack");
    assert_eq!(resp.status().as_u16(), 204);
    tracked_until(&w, &alice, |l| l.len() == 2 && frozen_ids(l).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payment_keeps_the_plan_for_the_grace_period_then_freezes_the_extra() {
    let (w, stripe) = billed(&[
        ("GITVISTA_PAYMENT_GRACE_SECS", "6"),
        ("GITVISTA_BILLING_SWEEP_SECS", "1"),
    ]);
    let alice = w.sign_in("alice").await;
    let uid = me(&w, &alice).await["id"].as_str().expect("id").to_string();
    let owner = format!("user:{uid}");
    let t = now();
    let sub = |status: &str| subscription_object("sub_g", "cus_g", &owner, status, PRICE, 1);
    send(
        &w,
        &stripe,
        &event(
            "evt_g1",
            "customer.subscription.created",
            t - 10,
            sub("active"),
        ),
    )
    .await;
    for name in ["open", "secret", "third"] {
        w.track(&alice, &w.repo_url(name)).await;
    }
    // The renewal fails now: past_due, with a banner until the grace ends (counted from the
    // failure's own time).
    let t = now();
    send(
        &w,
        &stripe,
        &event(
            "evt_g2",
            "invoice.payment_failed",
            t,
            json!({"customer": "cus_g", "subscription": "sub_g"}),
        ),
    )
    .await;
    send(
        &w,
        &stripe,
        &event(
            "evt_g3",
            "customer.subscription.updated",
            t,
            sub("past_due"),
        ),
    )
    .await;
    let m = me(&w, &alice).await;
    assert_eq!(m["plan"], "paid", "{m}");
    assert_eq!(m["billing"]["graceUntil"], t + 6, "{m}");
    assert_eq!(m["usage"]["frozen"], 0, "{m}");
    // No event comes when the grace ends: the sweep notices, and the extra one freezes.
    let list = tracked_until(&w, &alice, |l| frozen_ids(l).len() == 1).await;
    assert_eq!(list.len(), 3);
    let m = me(&w, &alice).await;
    assert_eq!(m["plan"], "free", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repositories_beyond_the_free_plan_need_the_paid_plan() {
    let (w, stripe) = billed(&[("GITVISTA_FREE_PRIVATE_REPOS", "0")]);
    let alice = w.sign_in("alice").await;
    let (status, refused) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("secret")}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("private_quota_exceeded")),
        "{refused}"
    );
    // Public ones are fine.
    w.track(&alice, &w.repo_url("open")).await;
    let uid = me(&w, &alice).await["id"].as_str().expect("id").to_string();
    let sub = subscription_object("sub_p", "cus_p", &format!("user:{uid}"), "active", PRICE, 1);
    let (status, _) = send(
        &w,
        &stripe,
        &event("evt_p1", "customer.subscription.created", now(), sub),
    )
    .await;
    assert_eq!(status, 200);
    w.track(&alice, &w.repo_url("secret")).await;
}
