//! GitLab and Bitbucket beside GitHub, end to end against the real `gitvista serve` binary and
//! the fake forges of testkit (their OAuth and REST endpoints, git's smart HTTP behind Basic
//! auth with each forge's user name): signing in and a private clone per forge, one account
//! with several forges linked, unlinking, and a GitLab token that expires mid-session.

use std::time::Duration;

use gitvista_testkit::fixture;
use gitvista_testkit::forges::{FakeForge, Flavor};
use serde_json::{Value, json};

use crate::signin::{World, client, location, set_cookie, world};

const GITLAB_ID: &str = "gitlab-application-id";
const GITLAB_SECRET: &str = "gitlab-application-secret-for-tests";
const BITBUCKET_KEY: &str = "bitbucket-consumer-key";
const BITBUCKET_SECRET: &str = "bitbucket-consumer-secret-for-tests";
const GITLAB_HOOK_SECRET: &str = "gitlab-webhook-secret-for-the-forge-tests";
const BITBUCKET_HOOK_SECRET: &str = "bitbucket-webhook-secret-for-the-forge-tests";

/// The GitHub world of the sign-in tests, plus a fake GitLab (carol reads the private
/// `team/sub/secret`, alice's GitLab account `alice-gl` reads it too) and a fake Bitbucket
/// (dave reads the private `ws/secret`), both configured on the server.
struct Forges {
    w: World,
    gl: FakeForge,
    bb: FakeForge,
}

fn forges() -> Forges {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gl = FakeForge::start(Flavor::GitLab, GITLAB_ID, GITLAB_SECRET);
    let bb = FakeForge::start(Flavor::Bitbucket, BITBUCKET_KEY, BITBUCKET_SECRET);
    for (fake, path, name) in [(&gl, "team/sub/secret", "gl"), (&bb, "ws/secret", "bb")] {
        let root = tmp.path().join(format!("{name}-root"));
        let dest = root.join(path);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("dir");
        let src = fixture("linear", &tmp.path().join(format!("src-{name}"))).join("repo");
        std::fs::rename(&src, &dest).expect("move");
        fake.serve_git(&root);
    }
    gl.add_user("31", "carol", "Carol");
    gl.add_user("32", "alice-gl", "Alice on GitLab");
    gl.add_repo(
        "team/sub/secret",
        true,
        &["carol", "alice-gl"],
        &["carol", "alice-gl"],
    );
    bb.add_user("{0d0d0d0d-0000-4000-8000-00000000dave}", "dave", "Dave");
    bb.add_repo("ws/secret", true, &["dave"], &["dave"]);
    let w = world(&[
        ("GITLAB_CLIENT_ID", GITLAB_ID),
        ("GITLAB_CLIENT_SECRET", GITLAB_SECRET),
        ("GITVISTA_GITLAB_URL", gl.url()),
        ("BITBUCKET_CLIENT_ID", BITBUCKET_KEY),
        ("BITBUCKET_CLIENT_SECRET", BITBUCKET_SECRET),
        ("GITVISTA_BITBUCKET_URL", bb.url()),
        ("GITVISTA_BITBUCKET_API_URL", bb.url()),
        ("GITVISTA_FREE_REPOS", "5"),
        ("GITVISTA_FREE_PRIVATE_REPOS", "5"),
        ("GITVISTA_GITLAB_WEBHOOK_SECRET", GITLAB_HOOK_SECRET),
        ("GITVISTA_BITBUCKET_WEBHOOK_SECRET", BITBUCKET_HOOK_SECRET),
    ]);
    bb.set_consumer(
        &format!("{}/auth/bitbucket/callback", w.base),
        "account repository",
    );
    // The fixtures must outlive the test: kept with the world's own directory.
    std::mem::forget(tmp);
    Forges { w, gl, bb }
}

/// Runs a web flow from `start` (`/auth/{forge}/login` or `/connect`) with `session` (if any)
/// through `fake`'s authorize page; answers the callback's response.
async fn flow(
    w: &World,
    fake: &FakeForge,
    start: &str,
    session: Option<&str>,
) -> reqwest::Response {
    let c = client();
    let mut r = c.get(format!("{}{start}", w.base));
    if let Some(s) = session {
        r = r.header("Cookie", s);
    }
    let begun = r.send().await.expect("start");
    assert_eq!(begun.status().as_u16(), 302, "{start}");
    let pending = set_cookie(&begun, "gitvista_signin").expect("the sign-in cookie");
    let authorize = location(&begun);
    assert!(authorize.starts_with(fake.url()), "{authorize}");
    let back = c.get(&authorize).send().await.expect("authorize");
    assert_eq!(back.status().as_u16(), 302, "{authorize}");
    let callback = location(&back);
    let mut cookies = pending.split(';').next().expect("pair").to_string();
    if let Some(s) = session {
        cookies = format!("{cookies}; {s}");
    }
    c.get(&callback)
        .header("Cookie", cookies)
        .send()
        .await
        .expect("callback")
}

/// Signs in with `fake` as `login`; answers the session cookie.
async fn sign_in(w: &World, fake: &FakeForge, kind: &str, login: &str) -> String {
    fake.sign_in_as(login);
    let done = flow(
        w,
        fake,
        &format!("/auth/{kind}/login?back=/dashboard"),
        None,
    )
    .await;
    assert_eq!(done.status().as_u16(), 302, "{:?}", done.text().await);
    let session = set_cookie(&done, "gitvista_session").expect("a session");
    session.split(';').next().expect("pair").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_and_bitbucket_sign_in_and_clone_private_repositories_with_their_own_user_names() {
    let f = forges();
    let w = &f.w;
    let (status, listed) = w.get("/auth/forges", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["forges"],
        json!([
            {"kind": "github", "name": "GitHub"},
            {"kind": "gitlab", "name": "GitLab"},
            {"kind": "bitbucket", "name": "Bitbucket"},
        ])
    );
    // GitLab asks for read_user, read_api and read_repository, with PKCE.
    let begun = client()
        .get(format!("{}/auth/gitlab/login", w.base))
        .send()
        .await
        .expect("start");
    let authorize = url::Url::parse(&location(&begun)).expect("url");
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "read_user read_api read_repository");
    assert_eq!(q["code_challenge_method"], "S256");

    for (fake, kind, login, path, user) in [
        (&f.gl, "gitlab", "carol", "team/sub/secret", "oauth2"),
        (&f.bb, "bitbucket", "dave", "ws/secret", "x-token-auth"),
    ] {
        let session = sign_in(w, fake, kind, login).await;
        let (_, me) = w.get("/api/user", Some(&session)).await;
        assert_eq!(me["login"], login, "{me}");
        assert_eq!(me["connections"][0]["forge"], kind, "{me}");
        assert_eq!(me["connections"].as_array().map(Vec::len), Some(1));
        // The picker lists the forge's repositories.
        let (status, picked) = w
            .get(&format!("/api/user/repos?forge={kind}"), Some(&session))
            .await;
        assert_eq!(status, 200, "{picked}");
        assert_eq!(picked["repos"][0]["fullName"], path, "{picked}");
        assert_eq!(picked["repos"][0]["private"], true, "{picked}");
        // Tracking asks the forge with the user's token, and the clone presents it with the
        // forge's user name.
        let url = format!("{}/{path}", fake.url());
        let id = w.track(&session, &url).await;
        let (status, repo) = w
            .get(&format!("/api/repos/{id}/status"), Some(&session))
            .await;
        assert_eq!(status, 200, "{kind}");
        assert_eq!(repo["private"], true, "{kind}: {repo}");
        let (status, _) = w
            .get(&format!("/api/repos/{id}/repository"), Some(&session))
            .await;
        assert_eq!(status, 200, "{kind}");
        let creds = fake.git_credentials();
        assert!(!creds.is_empty(), "{kind}: git asked with credentials");
        assert!(
            creds
                .iter()
                .all(|(u, p)| u == user && fake.token_is_live(p)),
            "{kind}: {creds:?}"
        );
        // Without `api` (GitLab) or `webhook` (Bitbucket) no hook is registered: it is polled.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(fake.hooks(path).is_empty(), "{kind}: no hook");
        // Nobody else sees it.
        let (status, _) = w.get(&format!("/api/repos/{id}/repository"), None).await;
        assert_eq!(status, 404, "{kind}");
        // Another GitVista user without that forge: the same 404.
        let bob = w.sign_in("bob").await;
        let (status, _) = w
            .get(&format!("/api/repos/{id}/repository"), Some(&bob))
            .await;
        assert_eq!(status, 404, "{kind}");
    }
    // No token of any forge reached the log.
    let log = w.log_text();
    for t in
        f.gl.issued_tokens()
            .iter()
            .chain(f.bb.issued_tokens().iter())
    {
        assert!(!log.contains(t.as_str()), "a token in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_links_several_forges_and_unlinking_takes_back_what_it_granted() {
    let f = forges();
    let w = &f.w;
    let alice = w.sign_in("alice").await;
    let (_, me) = w.get("/api/user", Some(&alice)).await;
    let alice_id = me["id"].clone();
    // Connecting GitLab (with what registering hooks needs) keeps her session and links the
    // account to her.
    f.gl.sign_in_as("alice-gl");
    let done = flow(
        w,
        &f.gl,
        "/auth/gitlab/connect?hooks=1&back=/dashboard",
        Some(&alice),
    )
    .await;
    assert_eq!(done.status().as_u16(), 302, "{:?}", done.text().await);
    assert_eq!(location(&done), "/dashboard");
    assert!(
        set_cookie(&done, "gitvista_session").is_none(),
        "no new session"
    );
    let (_, me) = w.get("/api/user", Some(&alice)).await;
    let kinds: Vec<&str> = me["connections"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["forge"].as_str())
        .collect();
    assert_eq!(kinds, ["github", "gitlab"], "{me}");
    assert_eq!(me["login"], "alice", "her login stays GitHub's");
    // A GitLab repository asks GitLab with her GitLab token; a GitHub one GitHub.
    let gl_id = w
        .track(&alice, &format!("{}/team/sub/secret", f.gl.url()))
        .await;
    let gh_id = w.track(&alice, &w.repo_url("secret")).await;
    // She administers the GitLab project: a hook is registered there with her GitLab token.
    let hook = hooked(&f.gl, "team/sub/secret").await;
    assert!(hook.url.ends_with(&format!("?repo={gl_id}")), "{hook:?}");
    // Signing in with GitLab now finds the same account (asking for hooks again: a sign-in
    // with fewer scopes would leave a token that cannot remove the hook).
    f.gl.sign_in_as("alice-gl");
    let done = flow(w, &f.gl, "/auth/gitlab/login?hooks=1&back=/dashboard", None).await;
    assert_eq!(done.status().as_u16(), 302);
    let again = set_cookie(&done, "gitvista_session")
        .expect("session")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let (_, me) = w.get("/api/user", Some(&again)).await;
    assert_eq!(me["id"], alice_id);
    // Connecting needs a session, and an account already linked elsewhere is refused.
    let (status, _) = w.get("/auth/gitlab/connect", None).await;
    assert_eq!(status, 401);
    let bob = w.sign_in("bob").await;
    f.gl.sign_in_as("alice-gl");
    let taken = flow(w, &f.gl, "/auth/gitlab/connect", Some(&bob)).await;
    assert_eq!(taken.status().as_u16(), 409);
    let body: Value = taken.json().await.expect("json");
    assert_eq!(body["code"], "forge_account_taken", "{body}");
    let (_, bob_me) = w.get("/api/user", Some(&bob)).await;
    assert_eq!(bob_me["connections"].as_array().map(Vec::len), Some(1));
    // A link finished in another session than the one that started it is refused.
    f.gl.sign_in_as("carol");
    let c = client();
    let begun = c
        .get(format!("{}/auth/gitlab/connect", w.base))
        .header("Cookie", &bob)
        .send()
        .await
        .expect("start");
    let pending = set_cookie(&begun, "gitvista_signin").expect("cookie");
    let back = c.get(location(&begun)).send().await.expect("authorize");
    let stolen = c
        .get(location(&back))
        .header(
            "Cookie",
            format!("{}; {alice}", pending.split(';').next().expect("pair")),
        )
        .send()
        .await
        .expect("callback");
    assert_eq!(stolen.status().as_u16(), 400);
    // Disconnecting GitLab takes back the private GitLab repository, not the GitHub one.
    let resp = c
        .delete(format!("{}/api/user/connections/gitlab", w.base))
        .header("Cookie", &alice)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 200);
    let (status, _) = w
        .get(&format!("/api/repos/{gl_id}/repository"), Some(&alice))
        .await;
    assert_eq!(status, 404, "GitLab's private repository is hers no more");
    assert!(
        f.gl.hooks("team/sub/secret").is_empty(),
        "the hook her GitLab token registered is removed with it"
    );
    let (status, _) = w
        .get(&format!("/api/repos/{gh_id}/repository"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    let (_, tracked) = w.get("/api/user/tracked", Some(&alice)).await;
    let ids: Vec<&str> = tracked["repos"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [gh_id.as_str()], "{tracked}");
    // The last connection stays: it is how she signs in.
    let resp = c
        .delete(format!("{}/api/user/connections/github", w.base))
        .header("Cookie", &alice)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "last_connection", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_token_expiring_mid_session_is_refreshed_before_it_is_used() {
    let f = forges();
    let w = &f.w;
    // GitLab's tokens last two hours; this one is as good as expired at once.
    f.gl.set_token_ttl(2);
    let carol = sign_in(w, &f.gl, "gitlab", "carol").await;
    let first: Vec<String> = f.gl.issued_tokens();
    f.gl.set_token_ttl(7200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        first.iter().all(|t| !f.gl.token_is_live(t)),
        "the first token has expired"
    );
    // Tracking asks GitLab: the token is refreshed first, unnoticed by the user.
    let id = w
        .track(&carol, &format!("{}/team/sub/secret", f.gl.url()))
        .await;
    let grants =
        f.gl.requests()
            .iter()
            .filter(|r| r.starts_with("POST /oauth/token"))
            .count();
    assert_eq!(grants, 2, "the code, then one refresh");
    let creds = f.gl.git_credentials();
    assert!(
        creds
            .iter()
            .all(|(u, p)| u == "oauth2" && !first.contains(p) && f.gl.token_is_live(p)),
        "git got the refreshed token: {creds:?}"
    );
    let (status, _) = w
        .get(&format!("/api/repos/{id}/repository"), Some(&carol))
        .await;
    assert_eq!(status, 200);
    // The picker uses the refreshed token too, with no second refresh.
    let (status, _) = w.get("/api/user/repos?forge=gitlab", Some(&carol)).await;
    assert_eq!(status, 200);
    assert_eq!(
        f.gl.requests()
            .iter()
            .filter(|r| r.starts_with("POST /oauth/token"))
            .count(),
        2
    );
}

/// Sends `d` to the server as the forge would (its URL is the server's, from registration);
/// `tamper` changes one byte of the body first.
async fn send(d: &gitvista_testkit::github::Delivery, tamper: bool) -> (u16, Value) {
    let mut body = d.body.clone();
    if tamper {
        body.push(b' ');
    }
    let mut r = client().post(&d.url).body(body);
    for (k, v) in &d.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    let resp = r.send().await.expect("delivery");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until `fake` has a hook on `path`.
async fn hooked(fake: &FakeForge, path: &str) -> gitvista_testkit::forges::FakeHook {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(h) = fake.hooks(path).into_iter().next() {
            return h;
        }
        assert!(std::time::Instant::now() < deadline, "no hook on {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_and_bitbucket_hooks_are_registered_for_admins_and_signed_pushes_fetch_at_once() {
    let f = forges();
    let w = &f.w;
    // GitLab: `api` is asked for only when the user wants hooks registered for them.
    f.gl.sign_in_as("carol");
    let done = flow(w, &f.gl, "/auth/gitlab/login?hooks=1", None).await;
    assert_eq!(done.status().as_u16(), 302);
    let carol = set_cookie(&done, "gitvista_session")
        .expect("session")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let (_, me) = w.get("/api/user", Some(&carol)).await;
    assert_eq!(me["connections"][0]["hooks"], true, "{me}");
    // Bitbucket: the consumer has the `webhook` scope.
    f.bb.set_consumer(
        &format!("{}/auth/bitbucket/callback", w.base),
        "account repository webhook",
    );
    let dave = sign_in(w, &f.bb, "bitbucket", "dave").await;
    for (fake, session, path, provider) in [
        (&f.gl, &carol, "team/sub/secret", "gitlab"),
        (&f.bb, &dave, "ws/secret", "bitbucket"),
    ] {
        let id = w.track(session, &format!("{}/{path}", fake.url())).await;
        let hook = hooked(fake, path).await;
        assert!(
            hook.url
                .starts_with(&format!("{}/webhooks/{provider}", w.base)),
            "{hook:?}"
        );
        // Each repository's hook has a secret of its own (GitLab's maintainers can read a
        // hook's token: the receiver's own secret would let them force any repository's
        // fetches).
        assert!(hook.url.ends_with(&format!("?repo={id}")), "{hook:?}");
        for base in [GITLAB_HOOK_SECRET, BITBUCKET_HOOK_SECRET] {
            assert_ne!(hook.secret, base, "{provider}: a secret of its own");
        }
        let deliveries = fake.push_deliveries(path);
        assert_eq!(deliveries.len(), 1, "{provider}");
        let d = &deliveries[0];
        // A tampered body (Bitbucket) or a wrong token (GitLab) starts nothing.
        if provider == "bitbucket" {
            let (status, body) = send(d, true).await;
            assert_eq!(status, 401, "{body}");
        } else {
            let mut forged = d.clone();
            for h in &mut forged.headers {
                if h.0 == "X-Gitlab-Token" {
                    h.1 = "not-the-token".into();
                }
            }
            let (status, body) = send(&forged, false).await;
            assert_eq!(status, 401, "{body}");
        }
        let (status, body) = send(d, false).await;
        assert_eq!(status, 202, "{provider}: {body}");
        assert_eq!(body["outcome"], "fetch", "{provider}: {body}");
        assert_eq!(body["repo"], id.as_str(), "{provider}: {body}");
        // The same delivery again does nothing, under its own id or a new one.
        let (status, body) = send(d, false).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));
        let mut replayed = d.clone();
        for h in &mut replayed.headers {
            if h.0 == "X-Gitlab-Event-UUID" || h.0 == "X-Request-UUID" {
                h.1 = "11111111-2222-4333-8444-555555555555".into();
            }
        }
        let (status, body) = send(&replayed, false).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("duplicate")),
            "{provider}: a replay under a new delivery id"
        );
        if provider == "gitlab" {
            // Carol maintains the project, so she can read its hook's token. With it, a
            // delivery naming another tenant's repository (Dave's, on Bitbucket) is about her
            // repository only, or refused.
            let other = format!("{}/ws/secret", f.bb.url());
            let forged: Value = json!({
                "object_kind": "push",
                "ref": "refs/heads/main",
                "after": "2222222222222222222222222222222222222222",
                "project": {"path_with_namespace": "ws/secret", "web_url": other, "git_http_url": format!("{other}.git")},
            });
            let mut to_other = replayed.clone();
            to_other.body = serde_json::to_vec(&forged).expect("json");
            for h in &mut to_other.headers {
                if h.0 == "X-Gitlab-Event-UUID" {
                    h.1 = "66666666-2222-4333-8444-555555555555".into();
                }
            }
            let (status, body) = send(&to_other, false).await;
            assert_eq!(status, 202, "{body}");
            assert_eq!(
                body["repo"],
                id.as_str(),
                "bound to her own repository: {body}"
            );
            // Without `?repo=` (a system hook's receiver), her token is not the secret.
            let mut unbound = to_other.clone();
            unbound.url = unbound.url.split('?').next().expect("url").to_string();
            let (status, body) = send(&unbound, false).await;
            assert_eq!(status, 401, "{body}");
            // Nor for another repository id.
            let mut elsewhere = to_other.clone();
            elsewhere.url = format!("{}?repo=0123456789abcdef", unbound.url);
            let (status, body) = send(&elsewhere, false).await;
            assert_eq!(status, 401, "{body}");
        }
        // Untracking removes the hook from the forge.
        let resp = client()
            .delete(format!("{}/api/repos/{id}", w.base))
            .header("Cookie", session.as_str())
            .header("Origin", &w.base)
            .send()
            .await
            .expect("untrack");
        assert_eq!(resp.status().as_u16(), 204, "{provider}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !fake.hooks(path).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{provider}: hook left"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
