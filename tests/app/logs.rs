//! Structured logs of the real binary: JSON lines with one span per request.

use std::process::Command;

use crate::helpers::fixture;

const SECRET: &str = "log-secret-admin-token-7f3a-0123456789";

#[actix_rt::test]
async fn json_logs_have_a_span_per_request_and_never_the_admin_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let log = tmp.path().join("log.jsonl");
    let (mut child, base) = crate::helpers::spawn_binary_with(&repo, |c| {
        c.env("GITVISTA_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("GITVISTA_ADMIN_TOKEN", SECRET)
            .stderr(std::fs::File::create(&log).expect("log file"));
    });
    for path in [
        "/healthz",
        "/api/repos/local/graph?limit=1",
        "/api/repos/nope/repository",
    ] {
        reqwest::get(format!("{base}{path}"))
            .await
            .expect("request");
    }
    // The token travels in a header, a login body and a cookie; none of it may reach the log.
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{base}/api/admin/login"))
        .json(&serde_json::json!({ "token": SECRET }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 204);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a cookie")
        .to_string();
    let cookie_value = cookie.split_once('=').expect("name=value").1.to_string();
    for auth in [
        ("Authorization", format!("Bearer {SECRET}")),
        ("Cookie", cookie),
    ] {
        let resp = client
            .get(format!("{base}/api/admin/sessions"))
            .header(auth.0, auth.1)
            .send()
            .await
            .expect("sessions");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let spans: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["http.route"].is_string() || l["span"]["http.target"].is_string())
        .collect();
    assert!(
        spans.iter().any(|l| l["span"]["http.target"] == "/healthz"),
        "a span for /healthz: {text}"
    );
    assert!(
        spans
            .iter()
            .any(|l| l["span"]["http.status_code"] == 404 || l["span"]["http.status_code"] == "404"),
        "the status is recorded: {text}"
    );
    assert!(
        spans
            .iter()
            .any(|l| l["span"]["http.target"] == "/api/admin/sessions"),
        "the admin requests are logged: {text}"
    );
    assert!(!text.contains(SECRET), "the token is in the log: {text}");
    assert!(
        !text.contains(&cookie_value),
        "the cookie is in the log: {text}"
    );
}

#[actix_rt::test]
async fn an_https_server_behind_a_proxy_it_does_not_trust_says_so_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let warning = "GITVISTA_TRUSTED_PROXY is unset";
    for (name, trusted) in [("untrusted", None), ("trusted", Some("X-Forwarded-For"))] {
        let log = tmp.path().join(format!("{name}.log"));
        let data = tmp.path().join(name);
        let (_server, base) = crate::helpers::spawn_serve_binary(&data, |c| {
            c.env("GITVISTA_PUBLIC_URL", "https://gitvista.example")
                .env("RUST_LOG", "info")
                .stderr(std::fs::File::create(&log).expect("log file"));
            if let Some(header) = trusted {
                c.env("GITVISTA_TRUSTED_PROXY", header);
            }
        });
        let client = reqwest::Client::new();
        // A request without forwarding headers says nothing; then three a proxy passed on.
        let plain = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(plain.status().as_u16(), 200);
        assert!(
            !std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(warning)
        );
        for _ in 0..3 {
            let resp = client
                .get(format!("{base}/healthz"))
                .header("X-Forwarded-For", "203.0.113.7")
                .header("X-Forwarded-Proto", "https")
                .send()
                .await
                .expect("healthz");
            assert_eq!(resp.status().as_u16(), 200);
        }
        let text = std::fs::read_to_string(&log).expect("log");
        let said = text.matches(warning).count();
        assert_eq!(said, usize::from(trusted.is_none()), "{name}: {text}");
    }
}
