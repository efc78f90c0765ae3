//! Accounts: the fake GitHub the sign-in tests run against speaks GitHub's protocol (checked
//! here, so the sign-in tests test GitVista, not the fake).

use gitvista_testkit::github::{FakeGitHub, s256};
use serde_json::Value;

/// Follows nothing: the authorize step's redirect is what is looked at.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn grant(gh: &FakeGitHub, form: &[(&str, &str)]) -> Value {
    client()
        .post(format!("{}/login/oauth/access_token", gh.url()))
        .header("Accept", "application/json")
        .form(form)
        .send()
        .await
        .expect("grant")
        .json()
        .await
        .expect("json")
}

async fn api(gh: &FakeGitHub, path: &str, token: &str) -> (u16, Value, Option<String>) {
    let resp = client()
        .get(format!("{}{path}", gh.url()))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("api");
    let link = resp
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
        link,
    )
}

/// The authorize step for `state` and `challenge`: the code in the redirect.
async fn authorize(gh: &FakeGitHub, state: &str, challenge: &str) -> String {
    let resp = client()
        .get(format!("{}/login/oauth/authorize", gh.url()))
        .query(&[
            ("client_id", "cid"),
            ("redirect_uri", "http://127.0.0.1:1/auth/github/callback"),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_string();
    let url = reqwest::Url::parse(&location).expect("url");
    assert_eq!(url.path(), "/auth/github/callback");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("state").map(String::as_str),
        Some(state),
        "state comes back as sent"
    );
    q["code"].clone()
}

#[actix_rt::test]
async fn the_fake_github_speaks_the_web_flow_with_pkce_one_time_codes_and_rotating_refresh_tokens()
{
    let gh = FakeGitHub::start("cid", "csecret");
    gh.add_user(7, "alice", "Alice");
    gh.add_user(8, "bob", "Bob");
    for n in 0..45 {
        gh.add_repo(
            &format!("alice/r{n:02}"),
            n % 2 == 0,
            &["alice"],
            "http://x/r.git",
        );
    }
    gh.add_repo("carol/secret", true, &["carol"], "http://x/s.git");
    gh.sign_in_as("alice");
    let verifier = "a-verifier-of-at-least-forty-three-characters-long";
    let redirect = "http://127.0.0.1:1/auth/github/callback";
    let state = "st/ate+with=odd&chars";
    let code = authorize(&gh, state, &s256(verifier)).await;

    // A wrong verifier, secret or redirect is refused the way GitHub refuses it (200 + error),
    // and uses the code up.
    let refused = grant(
        &gh,
        &[
            ("client_id", "cid"),
            ("client_secret", "csecret"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", "not-the-verifier"),
        ],
    )
    .await;
    assert_eq!(refused["error"], "bad_verification_code");
    let code = authorize(&gh, state, &s256(verifier)).await;
    let wrong_secret = grant(
        &gh,
        &[
            ("client_id", "cid"),
            ("client_secret", "nope"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(wrong_secret["error"], "incorrect_client_credentials");
    let form = |code: &str| {
        vec![
            ("client_id", "cid".to_string()),
            ("client_secret", "csecret".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect.to_string()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let code = authorize(&gh, state, &s256(verifier)).await;
    let f = form(&code);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let t = grant(&gh, &f).await;
    let access = t["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let refresh = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    assert_eq!(t["expires_in"], 8 * 3600);
    assert_eq!(
        grant(&gh, &f).await["error"],
        "bad_verification_code",
        "a code works once"
    );

    let (status, me, _) = api(&gh, "/user", &access).await;
    assert_eq!(
        (status, me["login"].as_str(), me["id"].as_i64()),
        (200, Some("alice"), Some(7))
    );
    // Pagination as GitHub does it: a Link header with next and last.
    let (_, page1, link) = api(&gh, "/user/repos?per_page=20", &access).await;
    assert_eq!(page1.as_array().map(Vec::len), Some(20));
    let link = link.expect("link");
    assert!(
        link.contains("page=2>; rel=\"next\"") && link.contains("page=3>; rel=\"last\""),
        "{link}"
    );
    let (_, page3, _) = api(&gh, "/user/repos?per_page=20&page=3", &access).await;
    assert_eq!(page3.as_array().map(Vec::len), Some(5));
    // A private repository the user cannot read does not exist; a public one is there for all.
    assert_eq!(api(&gh, "/repos/carol/secret", &access).await.0, 404);
    assert_eq!(api(&gh, "/repos/alice/r00", &access).await.0, 200);
    // A token GitHub does not know is 401 "Bad credentials", even for a public repository.
    assert_eq!(api(&gh, "/repos/alice/r00", "nobody").await.0, 401);
    assert_eq!(api(&gh, "/repos/alice/r01", "nobody").await.0, 401);
    gh.revoke("alice/r00", "alice");
    assert_eq!(api(&gh, "/repos/alice/r00", &access).await.0, 404);

    // A refresh rotates both tokens: the old pair stops working.
    let r = grant(
        &gh,
        &[
            ("client_id", "cid"),
            ("client_secret", "csecret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    let access2 = r["access_token"].as_str().expect("new access token");
    assert_ne!(access2, access);
    assert_eq!(
        api(&gh, "/user", &access).await.0,
        401,
        "the replaced token is dead"
    );
    assert_eq!(api(&gh, "/user", access2).await.0, 200);
    let again = grant(
        &gh,
        &[
            ("client_id", "cid"),
            ("client_secret", "csecret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(
        again["error"], "bad_refresh_token",
        "a used refresh token stops working"
    );

    // Expiring tokens and injected failures.
    gh.set_token_ttl(1);
    let code = authorize(&gh, state, &s256(verifier)).await;
    let f = form(&code);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let short = grant(&gh, &f).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(gh.token_is_live(&short));
    actix_rt::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(!gh.token_is_live(&short));
    assert_eq!(api(&gh, "/user", &short).await.0, 401);
    gh.fail_next(&[500]);
    assert_eq!(api(&gh, "/user", access2).await.0, 500);
    assert_eq!(api(&gh, "/user", access2).await.0, 200);
    assert!(
        gh.requests()
            .iter()
            .any(|r| r.starts_with("POST /login/oauth/access_token"))
    );
}

#[test]
fn serve_refuses_to_start_with_sign_in_half_configured_and_never_prints_a_secret() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good: [(&str, &str); 5] = [
        ("GITHUB_CLIENT_ID", "Iv1.test"),
        ("GITHUB_CLIENT_SECRET", "client-secret-never-printed"),
        ("GITVISTA_PUBLIC_URL", "http://127.0.0.1:9"),
        (
            "GITVISTA_JWT_SECRET",
            "jwt-secret-never-printed-0123456789abcdef",
        ),
        (
            "GITVISTA_ENCRYPTION_KEY",
            "0707070707070707070707070707070707070707070707070707070707070707",
        ),
    ];
    let serve = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"));
        c.args(["serve", "--port", "0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .env_remove("DATABASE_URL")
            .env_remove("GITVISTA_ADMIN_TOKEN");
        for (k, _) in good {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    };
    for (name, bad, expect) in [
        (
            "GITVISTA_JWT_SECRET",
            "short-jwt-secret",
            "at least 32 bytes",
        ),
        (
            "GITVISTA_ENCRYPTION_KEY",
            "not-a-key-of-32-bytes",
            "must be 32 bytes",
        ),
        (
            "GITHUB_CLIENT_SECRET",
            "",
            "GITHUB_CLIENT_SECRET is required",
        ),
    ] {
        let mut env: Vec<(&str, &str)> = good.iter().copied().filter(|(k, _)| *k != name).collect();
        env.push((name, bad));
        let out = serve(&env).output().expect("runs");
        assert!(!out.status.success(), "{name}: refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(name) && stderr.contains(expect),
            "{name}: {stderr}"
        );
        for (_, secret) in &env {
            if secret.len() > 8 && !secret.starts_with("http") && *secret != "Iv1.test" {
                assert!(
                    !stderr.contains(secret),
                    "{name}: a secret was printed: {stderr}"
                );
            }
        }
    }
    // Fully configured, it starts; without a client id, it starts as before.
    for env in [&good[..], &[][..]] {
        let mut child = serve(env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("reads");
        let _ = child.kill();
        let _ = child.wait();
        assert!(line.contains("is serving at http://127.0.0.1:"), "{line}");
    }
}
