//! A fake Stripe on 127.0.0.1 for the calls GitVista makes and the events it receives, for
//! tests without the network:
//!
//! - `POST /v1/checkout/sessions` (form, `Authorization: Bearer <secret key>`): a subscription
//!   Checkout Session whose `url` is the fake's own payment page;
//! - `GET /c/pay/{id}` shows it, and `POST /c/pay/{id}` (its Subscribe button) creates the
//!   customer and an active subscription carrying the session's metadata, sends the events
//!   Stripe sends (`customer.subscription.created`, `invoice.paid`,
//!   `checkout.session.completed`, each signed `Stripe-Signature: t=...,v1=...` with the
//!   endpoint secret) to the webhook URL, then redirects to the session's `success_url`;
//! - `POST /v1/billing_portal/sessions`: a portal session whose page (`GET /p/{id}`) can cancel
//!   the subscription (`POST /p/{id}/cancel`: `customer.subscription.deleted`, then back to
//!   `return_url`).
//!
//! [`FakeStripe::signed`] signs any event body as Stripe would, for tests that send events
//! themselves (out of order, twice, tampered, expired).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};

use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Session {
    price: String,
    quantity: i64,
    success_url: String,
    cancel_url: String,
    owner: String,
    customer: Option<String>,
    paid: bool,
}

#[derive(Debug, Clone)]
struct Sub {
    customer: String,
    owner: String,
    price: String,
    quantity: i64,
    status: String,
}

#[derive(Debug, Default)]
struct State {
    secret_key: String,
    webhook_secret: String,
    webhook_url: Option<String>,
    base: String,
    counter: u64,
    sessions: HashMap<String, Session>,
    subs: HashMap<String, Sub>,
    portals: HashMap<String, (String, String)>,
    /// Checkout Sessions by `Idempotency-Key`: the parameters first sent and the answer.
    idempotent: HashMap<String, (HashMap<String, String>, serde_json::Value)>,
    /// Every API call, `METHOD /path`.
    log: Vec<String>,
    /// What each event delivery got back.
    answers: Vec<(String, u16)>,
}

/// A running fake Stripe; stops when dropped.
#[derive(Debug)]
pub struct FakeStripe {
    url: String,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeStripe {
    /// Starts a fake that takes `secret_key` and signs events with `webhook_secret`.
    pub fn start(secret_key: &str, webhook_secret: &str) -> FakeStripe {
        let state = Arc::new(Mutex::new(State {
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
            ..State::default()
        }));
        let data = web::Data::new(Arc::clone(&state));
        let (port, server) = crate::serve_loopback(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(data.clone())
                .route("/v1/checkout/sessions", web::post().to(create_checkout))
                .route("/v1/billing_portal/sessions", web::post().to(create_portal))
                .route("/c/pay/{id}", web::get().to(pay_page))
                .route("/c/pay/{id}", web::post().to(pay))
                .route("/p/{id}", web::get().to(portal_page))
                .route("/p/{id}/cancel", web::post().to(cancel));
        });
        let url = format!("http://127.0.0.1:{port}");
        state.lock().unwrap_or_else(|e| e.into_inner()).base = url.clone();
        FakeStripe { url, state, server }
    }

    /// `http://127.0.0.1:PORT`: the API base (`GITVISTA_STRIPE_API_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Where events go (the server's `/webhooks/stripe`).
    pub fn set_webhook_url(&self, url: &str) {
        self.with(|s| s.webhook_url = Some(url.into()));
    }

    /// `body` signed as Stripe signs it at time `t`: the `Stripe-Signature` header's value.
    pub fn signed(&self, body: &[u8], t: i64) -> String {
        self.with(|s| signature(&s.webhook_secret, body, t))
    }

    /// Every API call so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// What the server answered each event the fake sent: (type, status).
    pub fn answers(&self) -> Vec<(String, u16)> {
        self.with(|s| s.answers.clone())
    }

    /// The subscriptions, as (id, owner, status).
    pub fn subscriptions(&self) -> Vec<(String, String, String)> {
        self.with(|s| {
            let mut v: Vec<_> = s
                .subs
                .iter()
                .map(|(id, x)| (id.clone(), x.owner.clone(), x.status.clone()))
                .collect();
            v.sort();
            v
        })
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256 of "{t}.{body}">`.
fn signature(secret: &str, body: &[u8], t: i64) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={t},v1={}", crate::github::sign(secret, &signed))
}

/// A subscription object as Stripe's events carry it.
pub fn subscription_object(
    id: &str,
    customer: &str,
    owner: &str,
    status: &str,
    price: &str,
    quantity: i64,
) -> Value {
    json!({
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "metadata": {"gitvista_owner": owner},
        "items": {"object": "list", "data": [{
            "id": format!("si_{id}"),
            "price": {"id": price, "object": "price"},
            "quantity": quantity,
            "current_period_end": now() + 30 * 86_400,
        }]},
    })
}

/// An event of `kind` about `object`, created at `created`.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": created,
        "api_version": "2025-09-30.clover",
        "data": {"object": object},
    }))
    .unwrap_or_default()
}

fn authorized(s: &State, req: &HttpRequest) -> bool {
    req.headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        == Some(s.secret_key.as_str())
}

fn stripe_error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .json(json!({"error": {"type": "invalid_request_error", "message": message}}))
}

async fn form(req: &HttpRequest, body: web::Bytes) -> HashMap<String, String> {
    web::Form::<HashMap<String, String>>::from_request(
        req,
        &mut actix_web::dev::Payload::from(body),
    )
    .await
    .map(|f| f.into_inner())
    .unwrap_or_default()
}

async fn create_checkout(state: Shared, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let f = form(&req, body).await;
    let mut s = lock(&state);
    s.log.push("POST /v1/checkout/sessions".into());
    if !authorized(&s, &req) {
        return stripe_error(401, "Invalid API Key provided");
    }
    // Stripe's idempotency: the same key with the same parameters answers the first answer
    // again; with other parameters, 400.
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some((params, answer)) = key.as_ref().and_then(|k| s.idempotent.get(k)) {
        return if *params == f {
            HttpResponse::Ok().json(answer.clone())
        } else {
            stripe_error(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            )
        };
    }
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("mode") != "subscription" || get("line_items[0][price]").is_empty() {
        return stripe_error(400, "mode=subscription and a price are required");
    }
    for k in ["success_url", "cancel_url", "client_reference_id"] {
        if get(k).is_empty() {
            return stripe_error(400, &format!("Missing required param: {k}."));
        }
    }
    if get("subscription_data[metadata][gitvista_owner]") != get("client_reference_id") {
        return stripe_error(400, "the subscription's metadata names another owner");
    }
    s.counter += 1;
    let id = format!("cs_test_{:04}", s.counter);
    let session = Session {
        price: get("line_items[0][price]"),
        quantity: get("line_items[0][quantity]").parse().unwrap_or(1),
        success_url: get("success_url"),
        cancel_url: get("cancel_url"),
        owner: get("client_reference_id"),
        customer: f.get("customer").cloned(),
        paid: false,
    };
    let url = format!("{}/c/pay/{id}", s.base);
    let answer = json!({
        "id": id,
        "object": "checkout.session",
        "mode": "subscription",
        "url": url,
        "client_reference_id": session.owner,
        "customer": session.customer,
    });
    s.sessions.insert(id, session);
    if let Some(k) = key {
        s.idempotent.insert(k, (f.clone(), answer.clone()));
    }
    HttpResponse::Ok().json(answer)
}

fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><title>{title}</title><style>body{{font:16px system-ui;margin:3em auto;max-width:28em}}button{{font:inherit;padding:.5em 1.5em;background:#635bff;color:#fff;border:0;border-radius:6px}}</style></head><body><p><strong>Fake Stripe</strong> (test mode)</p>{body}</body></html>"
        ))
}

async fn pay_page(state: Shared, id: web::Path<String>) -> HttpResponse {
    let s = lock(&state);
    let Some(session) = s.sessions.get(id.as_str()) else {
        return HttpResponse::NotFound().body("no such session");
    };
    page(
        "Subscribe",
        &format!(
            "<h1 id=\"title\">Subscribe to GitVista</h1><p id=\"price\">{} × {}</p><form method=\"post\"><button id=\"pay\" type=\"submit\">Subscribe</button></form><p><a id=\"back\" href=\"{}\">Back</a></p>",
            session.price, session.quantity, session.cancel_url
        ),
    )
}

/// POSTs `body` to `url` (loopback http only) with `headers`; answers the status.
fn post_blocking(url: &str, headers: &[(String, String)], body: &[u8]) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `events` (type, body) to the webhook URL, in order, each signed now.
async fn send_events(state: &Shared, events: Vec<(String, Vec<u8>)>) {
    let (url, secret) = {
        let s = lock(state);
        (s.webhook_url.clone(), s.webhook_secret.clone())
    };
    let Some(url) = url else {
        return;
    };
    for (kind, body) in events {
        let headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            (
                "Stripe-Signature".to_string(),
                signature(&secret, &body, now()),
            ),
            (
                "User-Agent".to_string(),
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_string(),
            ),
        ];
        let u = url.clone();
        let status = web::block(move || post_blocking(&u, &headers, &body))
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        lock(state).answers.push((kind, status));
    }
}

fn fresh(s: &mut State, prefix: &str) -> String {
    s.counter += 1;
    format!("{prefix}_{:04}", s.counter)
}

async fn pay(state: Shared, id: web::Path<String>) -> HttpResponse {
    let (events, success) = {
        let mut s = lock(&state);
        let Some(session) = s.sessions.get(id.as_str()).cloned() else {
            return HttpResponse::NotFound().body("no such session");
        };
        if session.paid {
            return HttpResponse::SeeOther()
                .insert_header(("Location", session.success_url))
                .finish();
        }
        let customer = session
            .customer
            .clone()
            .unwrap_or_else(|| fresh(&mut s, "cus"));
        let sub_id = fresh(&mut s, "sub");
        s.subs.insert(
            sub_id.clone(),
            Sub {
                customer: customer.clone(),
                owner: session.owner.clone(),
                price: session.price.clone(),
                quantity: session.quantity,
                status: "active".into(),
            },
        );
        if let Some(x) = s.sessions.get_mut(id.as_str()) {
            x.paid = true;
        }
        let t = now();
        let sub = subscription_object(
            &sub_id,
            &customer,
            &session.owner,
            "active",
            &session.price,
            session.quantity,
        );
        let (e1, e2, e3) = (
            fresh(&mut s, "evt"),
            fresh(&mut s, "evt"),
            fresh(&mut s, "evt"),
        );
        let invoice = json!({"id": fresh(&mut s, "in"), "object": "invoice", "customer": customer, "status": "paid",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub_id}}});
        let completed = json!({"id": id.as_str(), "object": "checkout.session", "mode": "subscription",
            "client_reference_id": session.owner, "customer": customer, "subscription": sub_id, "status": "complete"});
        (
            vec![
                (
                    "customer.subscription.created".to_string(),
                    event(&e1, "customer.subscription.created", t, sub),
                ),
                (
                    "invoice.paid".to_string(),
                    event(&e2, "invoice.paid", t, invoice),
                ),
                (
                    "checkout.session.completed".to_string(),
                    event(&e3, "checkout.session.completed", t, completed),
                ),
            ],
            session.success_url,
        )
    };
    send_events(&state, events).await;
    HttpResponse::SeeOther()
        .insert_header(("Location", success))
        .finish()
}

async fn create_portal(state: Shared, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let f = form(&req, body).await;
    let mut s = lock(&state);
    s.log.push("POST /v1/billing_portal/sessions".into());
    if !authorized(&s, &req) {
        return stripe_error(401, "Invalid API Key provided");
    }
    let (Some(customer), Some(back)) = (f.get("customer"), f.get("return_url")) else {
        return stripe_error(400, "customer and return_url are required");
    };
    if !s.subs.values().any(|x| &x.customer == customer) {
        return stripe_error(400, "No such customer");
    }
    let id = fresh(&mut s, "bps");
    s.portals
        .insert(id.clone(), (customer.clone(), back.clone()));
    HttpResponse::Ok().json(
        json!({"id": id, "object": "billing_portal.session", "url": format!("{}/p/{id}", s.base)}),
    )
}

async fn portal_page(state: Shared, id: web::Path<String>) -> HttpResponse {
    let s = lock(&state);
    let Some((customer, back)) = s.portals.get(id.as_str()) else {
        return HttpResponse::NotFound().body("no such portal session");
    };
    let plans: String = s
        .subs
        .iter()
        .filter(|(_, x)| &x.customer == customer)
        .map(|(sid, x)| {
            format!(
                "<li>{sid}: {} × {} ({})</li>",
                x.price, x.quantity, x.status
            )
        })
        .collect();
    page(
        "Billing",
        &format!(
            "<h1>Your plan</h1><ul id=\"subs\">{plans}</ul><form method=\"post\" action=\"/p/{}/cancel\"><button id=\"cancel-plan\" type=\"submit\">Cancel plan</button></form><p><a id=\"return\" href=\"{back}\">Return to GitVista</a></p>",
            id.as_str()
        ),
    )
}

async fn cancel(state: Shared, id: web::Path<String>) -> HttpResponse {
    let (events, back) = {
        let mut s = lock(&state);
        let Some((customer, back)) = s.portals.get(id.as_str()).cloned() else {
            return HttpResponse::NotFound().body("no such portal session");
        };
        let ids: Vec<String> = s
            .subs
            .iter()
            .filter(|(_, x)| x.customer == customer && x.status != "canceled")
            .map(|(i, _)| i.clone())
            .collect();
        let mut events = Vec::new();
        for sid in ids {
            let Some(sub) = s.subs.get_mut(&sid) else {
                continue;
            };
            sub.status = "canceled".into();
            let sub = sub.clone();
            let e = fresh(&mut s, "evt");
            let object = subscription_object(
                &sid,
                &sub.customer,
                &sub.owner,
                "canceled",
                &sub.price,
                sub.quantity,
            );
            events.push((
                "customer.subscription.deleted".to_string(),
                event(&e, "customer.subscription.deleted", now(), object),
            ));
        }
        (events, back)
    };
    send_events(&state, events).await;
    HttpResponse::SeeOther()
        .insert_header(("Location", back))
        .finish()
}
