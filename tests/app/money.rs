//! Money that holds on every path, against the real `gitvista serve`, the fake GitHub and the
//! fake Stripe: only the configured price pays (and only its quantity seats a team), and the
//! billing routes refuse what they must.

use serde_json::{Value, json};

use crate::billing::{PRICE, billed, me, now, send};
use crate::teams::call;
use gitvista_testkit::stripe::{event, subscription_object};

/// A signed `customer.subscription.created` for `owner` to `price`, `quantity` of it.
fn subscribed(n: &str, owner: &str, price: &str, quantity: i64) -> Vec<u8> {
    event(
        &format!("evt_{n}"),
        "customer.subscription.created",
        now() - 5,
        subscription_object(
            &format!("sub_{n}"),
            &format!("cus_{n}"),
            owner,
            "active",
            price,
            quantity,
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_to_another_price_grants_no_plan_and_no_seats() {
    let (w, stripe) = billed(&[]);
    let alice = w.sign_in("alice").await;
    let uid = me(&w, &alice).await["id"].as_str().expect("id").to_string();
    let free_limit = me(&w, &alice).await["usage"]["limit"].clone();

    // A donation on the same Stripe account, naming Alice.
    let donation = subscribed(
        "donation",
        &format!("user:{uid}"),
        "price_cheap_donation",
        1,
    );
    let (status, answer) = send(&w, &stripe, &donation).await;
    assert_eq!(status, 200, "recorded: {answer}");
    let m = me(&w, &alice).await;
    assert_eq!(m["plan"], "free", "another price pays for nothing: {m}");
    assert_eq!(m["usage"]["limit"], free_limit, "{m}");
    assert!(
        w.log_text()
            .contains("a subscription to another price than GITVISTA_STRIPE_PRICE"),
        "the ignored subscription is logged"
    );
    // Manage billing has no customer of ours to open.
    let (status, body) = call(&w, "POST", "/api/billing/portal", &alice, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("no_billing_account")),
        "{body}"
    );

    // A team: 500 seats of another price are no seats; 4 of ours are 4.
    let (status, made) = call(&w, "POST", "/api/teams", &alice, json!({"name": "Core"})).await;
    assert_eq!(status, 201, "{made}");
    let team = made["team"]["id"].as_str().expect("team id").to_string();
    let seats = |v: &Value| v["plan"]["seats"].as_i64();
    let other = subscribed("bulk", &format!("team:{team}"), "price_other_product", 500);
    assert_eq!(send(&w, &stripe, &other).await.0, 200);
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/teams/{team}"),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(
        (t["plan"]["plan"].as_str(), seats(&t)),
        (Some("free"), Some(3)),
        "{t}"
    );
    let ours = subscribed("seats", &format!("team:{team}"), PRICE, 4);
    assert_eq!(send(&w, &stripe, &ours).await.0, 200);
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/teams/{team}"),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(
        (t["plan"]["plan"].as_str(), seats(&t)),
        (Some("paid"), Some(4)),
        "{t}"
    );

    // And the configured price makes Alice paid.
    let paid = subscribed("paid", &format!("user:{uid}"), PRICE, 1);
    assert_eq!(send(&w, &stripe, &paid).await.0, 200);
    assert_eq!(me(&w, &alice).await["plan"], "paid");
}
