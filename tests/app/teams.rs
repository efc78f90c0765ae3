//! Teams end to end against the real `gitvista serve`, the fake GitHub and the fake GitLab:
//! invitations by link and by forge login (expired, reused, for someone else), the shared
//! list, a member whose own forge account cannot read a private repository not seeing it,
//! leaving, removing, transferring ownership, and the audit log.

use diesel::{Connection as _, RunQueryDsl as _};
use serde_json::{Value, json};

use crate::helpers::ADMIN_TOKEN;
use crate::signin::{World, client, location, set_cookie, world};
use gitvista_testkit::forges::{FakeForge, Flavor};

pub(crate) async fn call(
    w: &World,
    method: &str,
    path: &str,
    cookie: &str,
    body: Value,
) -> (u16, Value) {
    let c = client();
    let url = format!("{}{path}", w.base);
    let r = match method {
        "POST" => c.post(url).json(&body),
        "DELETE" => c.delete(url),
        _ => c.get(url),
    };
    let resp = r
        .header("Cookie", cookie)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs in with the fake GitLab as `login`; answers the session cookie.
async fn gitlab_sign_in(w: &World, gl: &FakeForge, login: &str) -> String {
    gl.sign_in_as(login);
    let c = client();
    let begun = c
        .get(format!("{}/auth/gitlab/login", w.base))
        .send()
        .await
        .expect("start");
    let pending = set_cookie(&begun, "gitvista_signin").expect("cookie");
    let back = c.get(location(&begun)).send().await.expect("authorize");
    let done = c
        .get(location(&back))
        .header("Cookie", pending.split(';').next().expect("pair"))
        .send()
        .await
        .expect("callback");
    set_cookie(&done, "gitvista_session")
        .expect("session")
        .split(';')
        .next()
        .expect("pair")
        .to_string()
}

pub(crate) fn token_of(url: &str) -> String {
    url.split("join=").nth(1).expect("a join link").to_string()
}

/// A new invitation link's token to team `team`, made by its owner (`owner`'s cookie).
pub(crate) async fn invite_token(w: &World, team: &str, owner: &str) -> String {
    let (status, invite) = call(
        w,
        "POST",
        &format!("/api/teams/{team}/invites"),
        owner,
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{invite}");
    token_of(invite["url"].as_str().expect("url"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_members_and_what_a_team_may_show_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gl = FakeForge::start(Flavor::GitLab, "gl-team", "gl-team-secret");
    let root = tmp.path().join("gl");
    std::fs::create_dir_all(root.join("grp")).expect("dir");
    let src = gitvista_testkit::fixture("linear", &tmp.path().join("src")).join("repo");
    std::fs::rename(&src, root.join("grp").join("private")).expect("move");
    gl.serve_git(&root);
    gl.add_user("41", "carol", "Carol");
    gl.add_user("42", "dan", "Dan");
    gl.add_repo("grp/private", true, &["carol"], &[]);
    let w = world(&[
        ("GITLAB_CLIENT_ID", "gl-team"),
        ("GITLAB_CLIENT_SECRET", "gl-team-secret"),
        ("GITVISTA_GITLAB_URL", gl.url()),
        ("GITVISTA_FREE_REPOS", "5"),
    ]);
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    let carol = gitlab_sign_in(&w, &gl, "carol").await;
    let dan = gitlab_sign_in(&w, &gl, "dan").await;
    let id_of = |v: &Value| v["id"].as_str().expect("id").to_string();
    let bob_id = id_of(&w.get("/api/user", Some(&bob)).await.1);
    let carol_id = id_of(&w.get("/api/user", Some(&carol)).await.1);

    // Alice makes a team and shares her private GitHub repository and a public one.
    let (status, made) = call(&w, "POST", "/api/teams", &alice, json!({"name": "Core"})).await;
    assert_eq!(status, 201, "{made}");
    let team = made["team"]["id"].as_str().expect("team id").to_string();
    let secret = w.track(&alice, &w.repo_url("secret")).await;
    let open = w.track(&alice, &w.repo_url("open")).await;
    for repo in [&secret, &open] {
        let (status, body) = call(
            &w,
            "POST",
            &format!("/api/teams/{team}/repos"),
            &alice,
            json!({"id": repo}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // Carol shares her private GitLab repository once she is in.
    // Strangers see no team at all.
    let (status, _) = call(&w, "GET", &format!("/api/teams/{team}"), &bob, Value::Null).await;
    assert_eq!(status, 404);

    // An invitation link: Bob previews and accepts it.
    let (status, inv) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/invites"),
        &alice,
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{inv}");
    let link = token_of(inv["url"].as_str().expect("url"));
    let (status, preview) = call(
        &w,
        "GET",
        &format!("/api/teams/join/{link}"),
        &bob,
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, preview["team"].as_str()),
        (200, Some("Core")),
        "{preview}"
    );
    let (status, joined) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{link}"),
        &bob,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    // Used once: Dan cannot use it again; a forged or altered link is unknown.
    let (status, again) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{link}"),
        &dan,
        json!({}),
    )
    .await;
    assert_eq!((status, again["code"].as_str()), (410, Some("invite_used")));
    // The link works for anyone who has it: it never reaches the log, whose request spans
    // say `/api/teams/join/[redacted]`.
    let log = w.log_text();
    assert!(!log.contains(&link), "an invitation token in the log");
    assert!(
        log.contains("/api/teams/join/[redacted]"),
        "the joins are logged"
    );
    let forged = format!("{}x", link);
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{forged}"),
        &dan,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("invite_unknown")),
        "{body}"
    );
    // A member cannot invite.
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/invites"),
        &bob,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_team_owner"))
    );

    // Bob's GitHub account cannot read alice/secret: the team does not show it to him.
    let (status, seen) = call(&w, "GET", &format!("/api/teams/{team}"), &bob, Value::Null).await;
    assert_eq!(status, 200, "{seen}");
    let ids: Vec<&str> = seen["repos"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [open.as_str()], "{seen}");
    assert_eq!(seen["hiddenRepos"], 1);
    let (status, _) = w
        .get(&format!("/api/repos/{secret}/repository"), Some(&bob))
        .await;
    assert_eq!(status, 404, "a team never widens forge permissions");
    // And he does not track what the team lists.
    let (_, mine) = w.get("/api/user/tracked", Some(&bob)).await;
    assert_eq!(mine["repos"].as_array().map(Vec::len), Some(0));

    // An invitation for a GitLab login: only that account may accept it.
    let (status, inv) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/invites"),
        &alice,
        json!({"login": "gitlab:carol"}),
    )
    .await;
    assert_eq!(status, 201, "{inv}");
    let invite_id = inv["id"].as_str().expect("id").to_string();
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/invites/{invite_id}/accept"),
        &dan,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("invite_not_for_you"))
    );
    let (_, listed) = call(&w, "GET", "/api/teams", &carol, Value::Null).await;
    assert_eq!(listed["invites"][0]["team"], "Core", "{listed}");
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/teams/invites/{invite_id}/accept"),
        &carol,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    // Carol tracks her private GitLab repository and shares it: Bob cannot see it, Carol can.
    let gl_repo = w.track(&carol, &format!("{}/grp/private", gl.url())).await;
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/repos"),
        &carol,
        json!({"id": gl_repo}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, seen) = call(&w, "GET", &format!("/api/teams/{team}"), &bob, Value::Null).await;
    assert_eq!(seen["hiddenRepos"], 2, "{seen}");
    // Bob cannot add what he cannot read, nor remove what Carol added.
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/repos"),
        &bob,
        json!({"id": secret}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &w,
        "DELETE",
        &format!("/api/teams/{team}/repos/{gl_repo}"),
        &bob,
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);

    // An expired invitation (its row past its end) is refused.
    let (_, inv) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/invites"),
        &alice,
        json!({}),
    )
    .await;
    let late = token_of(inv["url"].as_str().expect("url"));
    let db = w.data.join("gitvista.db").display().to_string();
    let mut c = diesel::SqliteConnection::establish(&db).expect("sqlite");
    diesel::sql_query(format!(
        "UPDATE team_invites SET expires_at = 1 WHERE id = '{}'",
        inv["id"].as_str().expect("id")
    ))
    .execute(&mut c)
    .expect("expire");
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{late}"),
        &dan,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("invite_expired")),
        "{body}"
    );

    // The free plan seats three: a fourth member is refused.
    let (_, inv) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/invites"),
        &alice,
        json!({}),
    )
    .await;
    let full = token_of(inv["url"].as_str().expect("url"));
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{full}"),
        &dan,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("team_full")),
        "{body}"
    );

    // The owner cannot leave; she transfers ownership to Carol, who removes Bob; Alice leaves.
    let (status, body) = call(
        &w,
        "DELETE",
        &format!(
            "/api/teams/{team}/members/{}",
            id_of(&w.get("/api/user", Some(&alice)).await.1)
        ),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("owner_cannot_leave"))
    );
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/transfer"),
        &alice,
        json!({"user": carol_id}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &w,
        "DELETE",
        &format!("/api/teams/{team}/members/{bob_id}"),
        &carol,
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&w, "GET", &format!("/api/teams/{team}"), &bob, Value::Null).await;
    assert_eq!(status, 404, "removed");
    let alice_id = id_of(&w.get("/api/user", Some(&alice)).await.1);
    let (status, _) = call(
        &w,
        "DELETE",
        &format!("/api/teams/{team}/members/{alice_id}"),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(status, 204, "left");

    // The audit log: the owner sees the team's; an admin sees everything.
    let (status, log) = call(
        &w,
        "GET",
        &format!("/api/teams/{team}/audit"),
        &carol,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let mut actions: Vec<&str> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    actions.reverse();
    for expected in [
        "team.created",
        "repo.added",
        "member.invited",
        "member.joined",
        "owner.transferred",
        "member.removed",
        "member.left",
    ] {
        assert!(actions.contains(&expected), "{expected}: {actions:?}");
    }
    let resp = client()
        .get(format!("{}/api/admin/audit", w.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status().as_u16(), 200);
    let all: Value = resp.json().await.expect("json");
    assert!(
        all["events"]
            .as_array()
            .is_some_and(|e| e.len() >= actions.len())
    );
    let (status, _) = call(&w, "GET", "/api/admin/audit", &carol, Value::Null).await;
    assert_eq!(status, 401, "not an admin");
}
