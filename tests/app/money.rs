//! Money that holds on every path, against the real `gitvista serve`, the fake GitHub and the
//! fake Stripe: only the configured price pays (and only its quantity seats a team), and the
//! billing routes refuse what they must, in sentences of ours.

use serde_json::{Value, json};

use crate::billing::{PRICE, billed, me, now, send};
use crate::signin::World;
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

    // Four seats taken; the subscription ends: four members on three seats. Nobody is put
    // out, the team says it is over, and nobody new joins.
    let mut links = Vec::new();
    for _ in 0..4 {
        links.push(crate::teams::invite_token(&w, &team, &alice).await);
    }
    for (i, link) in links.iter().take(3).enumerate() {
        let login = format!("member{i}");
        w.gh.add_user(200 + i as i64, &login, &login);
        let cookie = w.sign_in(&login).await;
        let (status, body) = call(
            &w,
            "POST",
            &format!("/api/teams/join/{link}"),
            &cookie,
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let ended = subscription_object(
        "sub_seats",
        "cus_seats",
        &format!("team:{team}"),
        "canceled",
        PRICE,
        4,
    );
    let ended = event(
        "evt_seats_end",
        "customer.subscription.deleted",
        now(),
        ended,
    );
    assert_eq!(send(&w, &stripe, &ended).await.0, 200);
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/teams/{team}"),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(
        (seats(&t), t["overSeats"].as_bool()),
        (Some(3), Some(true)),
        "{t}"
    );
    assert_eq!(
        t["members"].as_array().map(Vec::len),
        Some(4),
        "nobody is put out"
    );
    w.gh.add_user(299, "latecomer", "Latecomer");
    let late = w.sign_in("latecomer").await;
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{}", links[3]),
        &late,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("team_full")),
        "{body}"
    );

    // Upgrade clicked twice: one Checkout Session (the same Idempotency-Key), not two.
    let (s1, first) = call(&w, "POST", "/api/billing/checkout", &alice, json!({})).await;
    let (s2, second) = call(&w, "POST", "/api/billing/checkout", &alice, json!({})).await;
    assert_eq!((s1, s2), (200, 200), "{first} {second}");
    assert_eq!(first["url"], second["url"], "a double click is one session");

    // And the configured price makes Alice paid.
    let paid = subscribed("paid", &format!("user:{uid}"), PRICE, 1);
    assert_eq!(send(&w, &stripe, &paid).await.0, 200);
    assert_eq!(me(&w, &alice).await["plan"], "paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_routes_refuse_what_they_must() {
    let (w, _stripe) = billed(&[]);
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    let open = w.track(&alice, &w.repo_url("open")).await;
    let anonymous = |method: &'static str, path: String, body: Value| {
        let url = format!("{}{path}", w.base);
        let base = w.base.clone();
        async move {
            let c = crate::signin::client();
            let r = match method {
                "DELETE" => c.delete(url),
                _ => c.post(url).json(&body),
            };
            let resp = r.header("Origin", base).send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Without a session: 401 sign_in_required.
    for path in [
        "/api/billing/checkout".to_string(),
        "/api/billing/portal".to_string(),
        format!("/api/user/tracked/{open}/keep"),
    ] {
        let (status, body) = anonymous("POST", path.clone(), json!({})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("sign_in_required")),
            "{path}: {body}"
        );
    }
    // Keeping a repository Bob does not track: 404.
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/user/tracked/{open}/keep"),
        &bob,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_tracked")),
        "{body}"
    );
    // Unlinking a forge Bob never linked (or that does not exist): 404.
    for forge in ["gitlab", "bitbucket", "nonsense"] {
        let (status, body) = call(
            &w,
            "DELETE",
            &format!("/api/user/connections/{forge}"),
            &bob,
            Value::Null,
        )
        .await;
        assert_eq!(status, 404, "{forge}: {body}");
    }
    // A team's seats: the owner only (a member is told 403), 1 to 1000, a number.
    let (_, made) = call(&w, "POST", "/api/teams", &alice, json!({"name": "Core"})).await;
    let team = made["team"]["id"].as_str().expect("team").to_string();
    let link = crate::teams::invite_token(&w, &team, &alice).await;
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{link}"),
        &bob,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let seats = format!("/api/teams/{team}/billing/checkout");
    let (status, body) = call(&w, "POST", &seats, &bob, json!({"seats": 2})).await;
    assert_eq!(status, 403, "a member: {body}");
    for bad in [json!({"seats": 0}), json!({"seats": 1001})] {
        let (status, body) = call(&w, "POST", &seats, &alice, bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_seats")),
            "{bad}: {body}"
        );
    }
    for bad in [json!({"seats": -1}), json!({"seats": "many"}), json!({})] {
        let (status, body) = call(&w, "POST", &seats, &alice, bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_body")),
            "{bad}: {body}"
        );
        // In our words, not serde's (which names our types and echoes what was sent).
        let message = body["error"].as_str().unwrap_or_default();
        for serde_word in [
            "line",
            "column",
            "invalid type",
            "missing field",
            "u32",
            "many",
        ] {
            assert!(!message.contains(serde_word), "{bad}: {message}");
        }
    }
    let (status, body) = w
        .get(
            &format!("/api/repos/{open}/graph?offset=many"),
            Some(&alice),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query")),
        "{body}"
    );
    assert!(
        !body["error"].as_str().unwrap_or_default().contains("many"),
        "{body}"
    );
    // A Stripe body over 512 KiB: 413 before its signature is even looked at.
    let big = vec![b' '; 513 << 10];
    let (status, body) = crate::billing::deliver(&w, &big, Some("t=1,v1=00".into())).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
}

/// Twenty requests at once by `cookie`: each `paths[i]` POSTed with `bodies[i]`; the statuses.
async fn at_once(w: &World, cookie: &str, requests: Vec<(String, Value)>) -> Vec<u16> {
    let calls = requests.into_iter().map(|(path, body)| {
        let (w, cookie) = (w, cookie.to_string());
        async move { call(w, "POST", &path, &cookie, body).await.0 }
    });
    futures_util::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_requests_at_once_cannot_pass_a_plan_limit_together() {
    let (w, _stripe) = billed(&[
        ("GITVISTA_FREE_REPOS", "3"),
        ("GITVISTA_FREE_PRIVATE_REPOS", "1"),
        ("GITVISTA_POSTS_PER_MINUTE", "1000"),
        ("GITVISTA_CLONES_PER_CLIENT", "1000"),
    ]);
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;

    // Twenty public URLs at once for a plan of three: three tracked, seventeen refused.
    let urls: Vec<(String, Value)> = (0..20)
        .map(|i| {
            let url = format!("http://127.0.0.1:9/nowhere/r{i}.git");
            ("/api/repos".to_string(), json!({ "url": url }))
        })
        .collect();
    let statuses = at_once(&w, &bob, urls).await;
    let added = statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((added, refused), (3, 17), "{statuses:?}");
    assert_eq!(me(&w, &bob).await["usage"]["repos"], 3);

    // Twenty private repositories at once for a plan of one private: one tracked.
    for i in 0..20 {
        w.gh.add_repo(
            &format!("alice/private-{i}"),
            true,
            &["alice"],
            &format!("{}/alice/private-{i}.git", w.gh.url()),
        );
    }
    let privates: Vec<(String, Value)> = (0..20)
        .map(|i| {
            let url = format!("{}/alice/private-{i}", w.gh.url());
            ("/api/repos".to_string(), json!({ "url": url }))
        })
        .collect();
    let statuses = at_once(&w, &alice, privates).await;
    let added = statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
    assert_eq!(added, 1, "{statuses:?}");
    let (_, tracked) = w.get("/api/user/tracked", Some(&alice)).await;
    let private_count = tracked["repos"]
        .as_array()
        .expect("repos")
        .iter()
        .filter(|r| r["private"] == true)
        .count();
    assert_eq!(private_count, 1, "{tracked}");

    // Twenty users join a free team (three seats, the owner's among them) at once, each with
    // an invitation of their own: two get in.
    let (_, made) = call(&w, "POST", "/api/teams", &alice, json!({"name": "Core"})).await;
    let team = made["team"]["id"].as_str().expect("team").to_string();
    let mut joins = Vec::new();
    for i in 0..20 {
        let login = format!("joiner{i}");
        w.gh.add_user(100 + i, &login, &login);
        let cookie = w.sign_in(&login).await;
        let link = crate::teams::invite_token(&w, &team, &alice).await;
        joins.push((cookie, format!("/api/teams/join/{link}")));
    }
    let calls = joins.iter().map(|(cookie, path)| {
        let w = &w;
        async move { call(w, "POST", path, cookie, json!({})).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let joined = statuses.iter().filter(|s| **s == 200).count();
    let full = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((joined, full), (2, 18), "{statuses:?}");
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/teams/{team}"),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(t["members"].as_array().map(Vec::len), Some(3), "{t}");

    // Four repositories onto the team's list at once, for a plan of three: three listed.
    let ids_of = |v: &Value| -> Vec<String> {
        v["repos"]
            .as_array()
            .expect("repos")
            .iter()
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect()
    };
    let mut ids = ids_of(&w.get("/api/user/tracked", Some(&bob)).await.1);
    ids.extend(ids_of(&w.get("/api/user/tracked", Some(&alice)).await.1));
    assert_eq!(ids.len(), 4, "{ids:?}");
    let adds = ids
        .iter()
        .map(|id| (format!("/api/teams/{team}/repos"), json!({ "id": id })))
        .collect();
    let statuses = at_once(&w, &alice, adds).await;
    let listed = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((listed, refused), (3, 1), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_over_its_plan_freezes_the_least_recently_viewed_on_its_list() {
    let (w, stripe) = billed(&[]);
    let alice = w.sign_in("alice").await;
    let uid = me(&w, &alice).await["id"].as_str().expect("id").to_string();
    let paid = subscribed("alice", &format!("user:{uid}"), PRICE, 1);
    assert_eq!(send(&w, &stripe, &paid).await.0, 200);
    let (_, made) = call(&w, "POST", "/api/teams", &alice, json!({"name": "Core"})).await;
    let team = made["team"]["id"].as_str().expect("team").to_string();
    let seats = subscribed("team", &format!("team:{team}"), PRICE, 3);
    assert_eq!(send(&w, &stripe, &seats).await.0, 200);
    // Three repositories on the paid team's list.
    let mut ids = Vec::new();
    for name in ["secret", "open", "third"] {
        let id = w.track(&alice, &w.repo_url(name)).await;
        let (status, body) = call(
            &w,
            "POST",
            &format!("/api/teams/{team}/repos"),
            &alice,
            json!({ "id": id }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        ids.push(id);
    }
    let frozen_on = |t: &Value| -> Vec<String> {
        t["repos"]
            .as_array()
            .expect("repos")
            .iter()
            .filter(|r| r["frozen"] == true)
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect()
    };
    let team_path = format!("/api/teams/{team}");
    let show = || call(&w, "GET", &team_path, &alice, Value::Null);
    assert!(frozen_on(&show().await.1).is_empty());

    // The team's subscription ends: the free plan lists two, so one is frozen on the list.
    let ended = subscription_object(
        "sub_team",
        "cus_team",
        &format!("team:{team}"),
        "canceled",
        PRICE,
        3,
    );
    let ended = event(
        "evt_team_end",
        "customer.subscription.deleted",
        now(),
        ended,
    );
    assert_eq!(send(&w, &stripe, &ended).await.0, 200);
    let (_, t) = show().await;
    assert_eq!(t["plan"]["repoLimit"], 2, "{t}");
    let frozen = frozen_on(&t);
    assert_eq!(frozen.len(), 1, "{t}");
    assert_eq!(
        t["repos"].as_array().map(Vec::len),
        Some(3),
        "nothing is removed"
    );

    // The owner keeps it: another one is frozen in its place.
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/repos/{}/keep", frozen[0]),
        &alice,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["thawed"], json!([frozen[0].clone()]), "{body}");
    let now_frozen = frozen_on(&show().await.1);
    assert_eq!(now_frozen.len(), 1);
    assert_ne!(now_frozen, frozen);
    // A repository the team does not list: 404.
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/repos/0123456789abcdef/keep"),
        &alice,
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    // Only the owner keeps: a stranger is told there is no such team, a member 403; neither
    // changes what is frozen. The id spelled in upper case names nothing on the list.
    let keep_path = format!("/api/teams/{team}/repos/{}/keep", now_frozen[0]);
    let bob = w.sign_in("bob").await;
    let (status, body) = call(&w, "POST", &keep_path, &bob, json!({})).await;
    assert_eq!(status, 404, "a stranger: {body}");
    let link = crate::teams::invite_token(&w, &team, &alice).await;
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{link}"),
        &bob,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&w, "POST", &keep_path, &bob, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_team_owner")),
        "a member: {body}"
    );
    let upper = format!(
        "/api/teams/{team}/repos/{}/keep",
        now_frozen[0].to_ascii_uppercase()
    );
    let (status, _) = call(&w, "POST", &upper, &alice, json!({})).await;
    assert_eq!(status, 404, "another spelling of the id");
    assert_eq!(frozen_on(&show().await.1), now_frozen, "nothing changed");
    // Taking one off the list thaws the other.
    let (status, _) = call(
        &w,
        "DELETE",
        &format!("/api/teams/{team}/repos/{}", frozen[0]),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    assert!(frozen_on(&show().await.1).is_empty());
    let _ = ids;
}
