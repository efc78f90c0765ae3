//! Sign-in with GitHub and private repositories, end to end against the real `gitvista serve`
//! binary and the fake GitHub (OAuth web flow, REST API and git's smart HTTP behind Basic auth).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gitvista_testkit::github::FakeGitHub;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Binary};
use gitvista_testkit::{fixture, git};

const CLIENT_ID: &str = "Iv1.signin-test";
const CLIENT_SECRET: &str = "client-secret-for-the-sign-in-tests";
const JWT_SECRET: &str = "jwt-secret-for-the-sign-in-tests-0123456789";
pub(crate) const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// A server with sign-in on, the fake GitHub it signs in with, and where its logs go.
pub(crate) struct World {
    pub(crate) gh: FakeGitHub,
    pub(crate) server: Option<Binary>,
    pub(crate) base: String,
    pub(crate) port: u16,
    pub(crate) log: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) root: PathBuf,
    _tmp: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The fake GitHub with alice (who may read `alice/secret`, private, and `alice/open`,
/// public) and bob (who may read only `alice/open`), and no server yet (its `base` is a free
/// port's until [`World::serve`] starts one there, or a test points it elsewhere).
pub(crate) fn github_world() -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("github");
    std::fs::create_dir_all(root.join("alice")).expect("dir");
    for (name, fixture_name) in [
        ("secret", "linear"),
        ("open", "merges"),
        ("third", "linear"),
    ] {
        let src = fixture(fixture_name, &tmp.path().join(format!("src-{name}"))).join("repo");
        std::fs::rename(&src, root.join("alice").join(name)).expect("move");
    }
    let gh = FakeGitHub::start(CLIENT_ID, CLIENT_SECRET);
    gh.serve_git(&root);
    gh.add_user(1, "alice", "Alice Liddell");
    gh.add_user(2, "bob", "Bob");
    let url = |name: &str| format!("{}/alice/{name}.git", gh.url());
    gh.add_repo("alice/secret", true, &["alice"], &url("secret"));
    gh.add_repo("alice/open", false, &["alice", "bob"], &url("open"));
    gh.add_repo("alice/third", false, &["alice"], &url("third"));
    let data = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let port = free_port();
    World {
        gh,
        server: None,
        base: format!("http://127.0.0.1:{port}"),
        port,
        log,
        data,
        root,
        _tmp: tmp,
    }
}

/// The fake GitHub with alice and bob of [`world`], and `gitvista serve` signing in with it.
pub(crate) fn world(extra: &[(&str, &str)]) -> World {
    let mut w = github_world();
    w.serve(extra, KEY, None);
    w
}

/// Turns sign-in with the fake GitHub `gh` on for a server its users reach at `public`, with
/// the tests' encryption `key` sealing tokens.
pub(crate) fn sign_in_with<'c>(
    c: &'c mut std::process::Command,
    gh: &FakeGitHub,
    public: &str,
    key: &str,
) -> &'c mut std::process::Command {
    c.env("GITHUB_CLIENT_ID", CLIENT_ID)
        .env("GITHUB_CLIENT_SECRET", CLIENT_SECRET)
        .env("GITVISTA_PUBLIC_URL", public)
        .env("GITVISTA_JWT_SECRET", JWT_SECRET)
        .env("GITVISTA_ENCRYPTION_KEY", key)
        .env("GITVISTA_GITHUB_URL", gh.url())
        .env("GITVISTA_GITHUB_API_URL", gh.url())
}

impl World {
    /// (Re)starts `gitvista serve` on the world's port and data directory, with `key` as the
    /// encryption key (and `previous`, if any), logging to the world's log.
    pub(crate) fn serve(&mut self, extra: &[(&str, &str)], key: &str, previous: Option<&str>) {
        self.server = None;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"));
        command
            .args([
                "serve",
                "--port",
                &self.port.to_string(),
                "--allowed-hosts",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(&self.data)
            .env_remove("DATABASE_URL")
            .env_remove("GITVISTA_ENCRYPTION_KEY_PREVIOUS")
            .env("GITVISTA_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GITVISTA_FREE_REPOS", "2")
            // Everything, so a token in any log line at all is caught.
            .env("RUST_LOG", "debug")
            .env("GITVISTA_WS_PER_CLIENT", "1000")
            .stdout(std::process::Stdio::piped())
            .stderr(log);
        sign_in_with(&mut command, &self.gh, &self.base, key);
        if let Some(p) = previous {
            command.env("GITVISTA_ENCRYPTION_KEY_PREVIOUS", p);
        }
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("starts");
        let stdout = child.stdout.take().expect("stdout");
        let line = std::io::BufReader::new(stdout)
            .lines()
            .next()
            .expect("a line")
            .expect("utf-8");
        assert!(line.contains(&self.port.to_string()), "{line}");
        self.server = Some(Binary(child));
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `name=value` of the `Set-Cookie` for `name` in `resp`, if any.
pub(crate) fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(String::from)
}

pub(crate) fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_string()
}

impl World {
    /// Signs in as `login` through the whole web flow; answers the session cookie
    /// (`gitvista_session=...`).
    pub(crate) async fn sign_in(&self, login: &str) -> String {
        self.gh.sign_in_as(login);
        let c = client();
        let start = c
            .get(format!("{}/auth/github/login?back=/dashboard", self.base))
            .send()
            .await
            .expect("login");
        assert_eq!(start.status().as_u16(), 302);
        let pending = set_cookie(&start, "gitvista_signin").expect("the sign-in cookie");
        assert!(
            pending.contains("HttpOnly") && pending.contains("SameSite=Lax"),
            "{pending}"
        );
        let authorize = location(&start);
        assert!(authorize.starts_with(self.gh.url()), "{authorize}");
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        let back = c.get(&authorize).send().await.expect("authorize");
        assert_eq!(back.status().as_u16(), 302);
        let callback = location(&back);
        assert!(callback.starts_with(&format!("{}/auth/github/callback?", self.base)));
        let pending = pending.split(';').next().expect("pair").to_string();
        let done = c
            .get(&callback)
            .header("Cookie", &pending)
            .send()
            .await
            .expect("callback");
        assert_eq!(done.status().as_u16(), 302, "{:?}", done.text().await);
        assert_eq!(location(&done), "/dashboard");
        let session = set_cookie(&done, "gitvista_session").expect("the session cookie");
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
            assert!(session.contains(attr), "{attr}: {session}");
        }
        assert!(!session.contains("Secure"), "plain http: not Secure");
        session.split(';').next().expect("pair").to_string()
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, Value) {
        let mut r = client().get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        let resp = r.send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, path: &str, cookie: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = client()
            .post(format!("{}{path}", self.base))
            .header("Origin", &self.base)
            .json(&body);
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        let resp = r.send().await.expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub(crate) fn repo_url(&self, name: &str) -> String {
        format!("{}/alice/{name}", self.gh.url())
    }

    /// `cookie`'s user adds (tracks) `url` as a new repository (201) and waits until it is
    /// cloned; answers its id.
    pub(crate) async fn track(&self, cookie: &str, url: &str) -> String {
        let (status, created) = self
            .post("/api/repos", Some(cookie), json!({ "url": url }))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        self.wait_ready(&id, Some(cookie)).await;
        id
    }

    /// Waits until repository `id` is ready for `cookie`'s user.
    pub(crate) async fn wait_ready(&self, id: &str, cookie: Option<&str>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(&format!("/api/repos/{id}/status"), cookie).await;
            assert_eq!(status, 200, "{body}");
            match body["state"].as_str() {
                Some("ready") => return body,
                Some("error") => panic!("clone failed: {body}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "never ready: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Every file under `dir`, as (path, bytes).
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => out.push((e.path(), std::fs::read(e.path()).unwrap_or_default())),
                Err(_) => {}
            }
        }
    }
    out
}

/// Every process's command line, from /proc.
fn command_lines() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .collect()
}

/// Every kind of repository route, with arguments that pass (and one that fails) validation.
const ROUTES: [&str; 9] = [
    "/status",
    "/repository",
    "/graph?offset=0&limit=50",
    "/commit/0123456789012345678901234567890123456789",
    "/search?q=commit",
    "/tree/HEAD",
    "/blob/0123456789012345678901234567890123456789",
    "/tree/blame/0123456789012345678901234567890123456789?path=README",
    "/ws",
];

#[actix_rt::test]
async fn a_private_repository_is_tracked_cloned_with_the_token_and_shown_to_its_readers_only() {
    let w = world(&[]);
    // Signed out: no user.
    let (status, body) = w.get("/api/user", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("sign_in_required"))
    );

    let alice = w.sign_in("alice").await;
    let (status, me) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["login"], "alice");
    assert_eq!(me["name"], "Alice Liddell");
    assert_eq!(me["plan"], "free");
    assert_eq!(me["usage"], json!({"repos": 0, "limit": 2, "frozen": 0}));
    assert_eq!(me["tokenKind"], "app");

    // The picker lists what GitHub lets her read.
    let (status, picker) = w.get("/api/user/repos", Some(&alice)).await;
    assert_eq!(status, 200, "{picker}");
    let names: Vec<&str> = picker["repos"]
        .as_array()
        .expect("repos")
        .iter()
        .filter_map(|r| r["fullName"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{picker}");
    for n in ["alice/secret", "alice/open", "alice/third"] {
        assert!(names.contains(&n), "{n}: {picker}");
    }
    let (_, found) = w.get("/api/user/repos?q=SEC", Some(&alice)).await;
    assert_eq!(found["repos"].as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found["repos"][0]["private"], true);
    assert_eq!(found["repos"][0]["tracked"], false);

    // Tracking the private one clones it with her token, which no command line shows.
    let tokens_before = w.gh.issued_tokens();
    assert!(!tokens_before.is_empty());
    let (status, created) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("secret")}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["private"], true, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let mut saw_git = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for line in command_lines() {
            if line.contains("git") && line.contains("/alice/secret") {
                saw_git = true;
            }
            for t in &tokens_before {
                assert!(
                    !line.contains(t.as_str()),
                    "a token in a command line: {line}"
                );
            }
        }
        let (_, status) = w
            .get(&format!("/api/repos/{id}/status"), Some(&alice))
            .await;
        if status["state"] == "ready" {
            break;
        }
        assert_ne!(status["state"], "error", "{status}");
        assert!(Instant::now() < deadline, "{status}");
    }
    assert!(saw_git, "the clone's git processes were seen while it ran");
    assert!(
        w.gh.git_tokens().iter().all(|t| tokens_before.contains(t))
            && !w.gh.git_tokens().is_empty(),
        "git presented alice's token"
    );
    let (status, graph) = w
        .get(
            &format!("/api/repos/{id}/graph?offset=0&limit=500"),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 200, "{graph}");
    let commits: usize = git(
        &w.root.join("alice/secret"),
        &["rev-list", "--all", "--count"],
    )
    .parse()
    .expect("count");
    assert_eq!(graph["rows"].as_array().map(Vec::len), Some(commits));
    let (_, me) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(me["usage"]["repos"], 1);
    let (_, listed) = w.get(&format!("/api/repos?ids={id}"), Some(&alice)).await;
    assert_eq!(listed["repos"][0]["private"], true);

    // Bob, and a visitor not signed in, get what an unknown id gets, on every route.
    let bob = w.sign_in("bob").await;
    let unknown = "0123456789abcdef";
    for route in ROUTES {
        let (want_status, want) = w.get(&format!("/api/repos/{unknown}{route}"), None).await;
        assert!(matches!(want_status, 400 | 404), "{route}: {want}");
        for who in [Some(bob.as_str()), None] {
            let (status, body) = w.get(&format!("/api/repos/{id}{route}"), who).await;
            assert_eq!(status, want_status, "{route} {who:?}: {body}");
            assert_eq!(
                body.to_string().replace(&id, unknown),
                want.to_string(),
                "{route}: the same body as an unknown id"
            );
        }
    }
    for who in [Some(bob.as_str()), None] {
        let (_, listed) = w.get(&format!("/api/repos?ids={id},{unknown}"), who).await;
        assert_eq!(listed, json!({"repos": []}), "{who:?}");
    }
    // Bob's own token cannot read it: GitHub's answer, whether or not someone tracks it.
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&bob),
            json!({"url": w.repo_url("secret")}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    // A visitor not signed in learns nothing either: the answer a new URL gets, then 404s.
    let (status, body) = w
        .post("/api/repos", None, json!({"url": w.repo_url("secret")}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "cloning");
    assert_eq!(body["private"], false);
    let (status, _) = w.get(&format!("/api/repos/{id}/status"), None).await;
    assert_eq!(status, 404);

    // Quota: free tracks 2.
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("open")}),
        )
        .await;
    assert!(status == 201 || status == 200, "{body}");
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("third")}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 2")),
        "{body}"
    );
    // Tracking a repository again is not a new one.
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("secret")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // An admin raises her plan.
    let alice_id = w.user_id("alice").await;
    let patched = client()
        .patch(format!("{}/api/admin/users/{alice_id}", w.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("Origin", &w.base)
        .json(&json!({"plan": "paid"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status().as_u16(), 200);
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("third")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Stop tracking: usage goes down.
    let resp = client()
        .delete(format!(
            "{}/api/repos/{}",
            w.base,
            body["id"].as_str().expect("id")
        ))
        .header("Cookie", &alice)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    let (_, me) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(me["usage"], json!({"repos": 2, "limit": 50, "frozen": 0}));

    // Signing out ends the session at once: the old cookie no longer works.
    let resp = client()
        .post(format!("{}/auth/logout", w.base))
        .header("Cookie", &alice)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status().as_u16(), 204);
    assert!(set_cookie(&resp, "gitvista_session").is_some_and(|c| c.contains("Max-Age=0")));
    let (status, _) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(status, 401);
    let (status, _) = w
        .get(&format!("/api/repos/{id}/status"), Some(&alice))
        .await;
    assert_eq!(
        status, 404,
        "signed out, the private repository is unknown again"
    );

    // No token in any file under the data directory (the database holds ciphertexts), nor in
    // any log line, even at debug level.
    let tokens = w.gh.issued_tokens();
    for (path, bytes) in files(&w.data) {
        let text = String::from_utf8_lossy(&bytes);
        for t in &tokens {
            assert!(
                !text.contains(t.as_str()),
                "{} holds a token",
                path.display()
            );
        }
    }
    let log = w.log_text();
    assert!(log.contains("signed in"), "the log is being written: {log}");
    for t in tokens
        .iter()
        .map(String::as_str)
        .chain([CLIENT_SECRET, JWT_SECRET, KEY])
    {
        assert!(!log.contains(t), "a secret in the log");
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A viewer's socket on repository `id` with `cookie`.
pub(crate) async fn socket(w: &World, id: &str, cookie: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = format!("{}/api/repos/{id}/ws", w.base.replace("http://", "ws://"))
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Cookie", cookie.parse().expect("header"));
    let (s, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    s
}

/// The messages of `s` until it closes (or `limit` passes): the JSON texts and the close code.
pub(crate) async fn until_closed(s: &mut Socket, limit: Duration) -> (Vec<Value>, Option<u16>) {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut texts = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                texts.push(serde_json::from_str(&t).unwrap_or(Value::Null));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (texts, frame.map(|f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return (texts, None),
            Err(_) => return (texts, None),
        }
    }
}

#[actix_rt::test]
async fn losing_access_on_github_closes_the_viewer_and_expired_tokens_refresh_unnoticed() {
    let w = world(&[("GITVISTA_ACCESS_RECHECK", "1")]);
    // alice's tokens live 302 s: with the five-minute margin, they are refreshed after 2 s.
    w.gh.set_token_ttl(302);
    let alice = w.sign_in("alice").await;
    let id = w.track(&alice, &w.repo_url("secret")).await;
    let grants = |w: &World| {
        w.gh.requests()
            .iter()
            .filter(|r| r.starts_with("POST /login/oauth/access_token"))
            .count()
    };
    assert_eq!(grants(&w), 1, "one code exchange so far");
    let first_tokens = w.gh.issued_tokens();

    // Past the margin, her next request that needs GitHub refreshes the pair on the way.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, picker) = w.get("/api/user/repos", Some(&alice)).await;
    assert_eq!(status, 200, "refreshed without her noticing: {picker}");
    assert_eq!(grants(&w), 2, "one refresh grant");
    for t in &first_tokens {
        assert!(!w.gh.token_is_live(t), "the old access token is dead");
    }
    // The fetch uses the new token too.
    let admin_fetch = || async {
        client()
            .post(format!("{}/api/admin/repos/{id}/fetch", w.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("Origin", &w.base)
            .send()
            .await
            .expect("fetch")
            .status()
            .as_u16()
    };
    let presented = w.gh.git_tokens().len();
    assert_eq!(admin_fetch().await, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.gh.git_tokens().len() == presented {
        assert!(Instant::now() < deadline, "the fetch reached the remote");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let used = w.gh.git_tokens().last().cloned().expect("a token");
    assert!(
        w.gh.token_is_live(&used),
        "the fetch presented the refreshed token"
    );

    // Watching; then GitHub takes her access away: within the recheck, the socket gets a
    // final status saying why and is closed, and the next request is 404.
    let mut s = socket(&w, &id, &alice).await;
    w.gh.revoke("alice/secret", "alice");
    let (texts, code) = until_closed(&mut s, Duration::from_secs(20)).await;
    assert_eq!(code, Some(1008), "closed for policy: {texts:?}");
    let last = texts.last().expect("a final message");
    assert_eq!(last["type"], "status", "{last}");
    assert_eq!(last["code"], "access_lost", "{last}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("can no longer read")),
        "{last}"
    );
    let (status, body) = w.get(&format!("/api/repos/{id}/graph"), Some(&alice)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_repo")),
        "{body}"
    );
    let (_, me) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(me["usage"]["repos"], 0, "her access was removed: {me}");
}

#[actix_rt::test]
async fn a_rejected_refresh_token_leaves_the_repository_auth_required_and_the_user_signed_out_of_github()
 {
    let w = world(&[]);
    w.gh.set_token_ttl(302);
    let alice = w.sign_in("alice").await;
    let (_, created) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("secret")}),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_string();
    w.wait_ready(&id, Some(&alice)).await;
    // She revokes the app on GitHub: her refresh token stops working too.
    w.gh.revoke_tokens("alice");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fetched = client()
        .post(format!("{}/api/admin/repos/{id}/fetch", w.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("fetch");
    assert_eq!(fetched.status().as_u16(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (_, status) = w
            .get(&format!("/api/repos/{id}/status"), Some(&alice))
            .await;
        if status["errorCode"] == "auth_required" {
            break status;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains("sign in with an account that can read")),
        "{status}"
    );
    // The picker needs GitHub: she is asked to sign in again.
    let (status, body) = w.get("/api/user/repos", Some(&alice)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("sign_in_expired")),
        "{body}"
    );
}

impl World {
    /// Starts a sign-in as `login` up to GitHub's redirect back: the sign-in cookie and the
    /// callback URL (not followed).
    async fn begin(&self, login: &str) -> (String, String) {
        self.gh.sign_in_as(login);
        let c = client();
        let start = c
            .get(format!("{}/auth/github/login", self.base))
            .send()
            .await
            .expect("login");
        let pending = set_cookie(&start, "gitvista_signin").expect("cookie");
        let back = c.get(location(&start)).send().await.expect("authorize");
        (
            pending.split(';').next().expect("pair").to_string(),
            location(&back),
        )
    }

    /// The callback with `cookie`: status, body, and whether a session cookie was set.
    async fn callback(&self, url: &str, cookie: &str) -> (u16, Value, bool) {
        let resp = client()
            .get(url)
            .header("Cookie", cookie)
            .send()
            .await
            .expect("callback");
        let session = set_cookie(&resp, "gitvista_session").is_some();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
            session,
        )
    }

    async fn users(&self) -> Vec<Value> {
        let resp = client()
            .get(format!("{}/api/admin/users", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("users");
        assert_eq!(resp.status().as_u16(), 200, "the admin lists users");
        let users: Value = resp.json().await.expect("json");
        users["users"].as_array().cloned().unwrap_or_default()
    }

    /// The GitVista id of the user GitHub knows as `login` (from the admin's list).
    async fn user_id(&self, login: &str) -> String {
        self.users()
            .await
            .into_iter()
            .find(|u| u["login"] == login)
            .and_then(|u| u["id"].as_str().map(String::from))
            .unwrap_or_else(|| panic!("no user {login}"))
    }
}

/// `url` with its `state` replaced.
fn with_state(url: &str, state: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                state.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[actix_rt::test]
async fn bad_states_codes_cookies_and_a_failing_github_leave_nobody_signed_in() {
    use gitvista::auth::jwt::{Claims, Secret, sign};
    let mut w = world(&[("GITVISTA_GITHUB_TIMEOUT", "1")]);

    // A state that is not the cookie's; no cookie at all.
    let (cookie, url) = w.begin("alice").await;
    let (status, body, session) = w.callback(&with_state(&url, "forged-state"), &cookie).await;
    assert_eq!(
        (status, body["code"].as_str(), session),
        (400, Some("invalid_state"), false),
        "{body}"
    );
    let (status, body, _) = w.callback(&url, "other=1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_state")),
        "{body}"
    );
    // A sign-in cookie forged without the server's secret.
    let forged = "gitvista_signin=eyJzdGF0ZSI6IngifQ.AAAA";
    let (status, _, _) = w.callback(&url, forged).await;
    assert_eq!(status, 400);
    assert!(w.users().await.is_empty(), "nobody was created");

    // GitHub failing (500), then hanging past the timeout: 502, nobody signed in.
    for fail in ["500", "hang"] {
        let (cookie, url) = w.begin("alice").await;
        match fail {
            "500" => w.gh.fail_next(&[500]),
            _ => w.gh.stall_next(&[3]),
        }
        let started = Instant::now();
        let (status, body, session) = w.callback(&url, &cookie).await;
        assert_eq!(
            (status, body["code"].as_str(), session),
            (502, Some("github_unavailable"), false),
            "{fail}: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{fail}: the timeout applies"
        );
        assert!(w.users().await.is_empty(), "{fail}: nobody was created");
    }

    // A good sign-in; then its callback replayed (same state, same cookie); then its code
    // under a new sign-in's state (GitHub refuses a used code).
    let (cookie, url) = w.begin("alice").await;
    let (status, body, session) = w.callback(&url, &cookie).await;
    assert_eq!((status, session), (302, true), "{body}");
    let (status, body, session) = w.callback(&url, &cookie).await;
    assert_eq!(
        (status, body["code"].as_str(), session),
        (400, Some("invalid_state"), false),
        "replayed: {body}"
    );
    let (cookie2, url2) = w.begin("alice").await;
    let state2 = reqwest::Url::parse(&url2)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let (status, body, session) = w.callback(&with_state(&url, &state2), &cookie2).await;
    assert_eq!(
        (status, body["code"].as_str(), session),
        (400, Some("sign_in_refused"), false),
        "reused code: {body}"
    );
    // The user cancelling on GitHub goes back to the landing page.
    let resp = client()
        .get(format!(
            "{}/auth/github/callback?error=access_denied&state=x",
            w.base
        ))
        .send()
        .await
        .expect("cancel");
    assert_eq!(
        (resp.status().as_u16(), location(&resp).as_str()),
        (302, "/?signin=cancelled&forge=github")
    );
    assert_eq!(w.users().await.len(), 1);

    // Session tokens: tampered, expired, `alg: none`, signed with another secret. Each is
    // nobody, and the cookie is cleared.
    let alice = w.sign_in("alice").await;
    let (status, me) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(status, 200);
    let token = alice.trim_start_matches("gitvista_session=").to_string();
    let secret = Secret::new(JWT_SECRET).expect("secret");
    let claims = |exp: i64| Claims {
        sub: me["id"].as_str().expect("id").to_string(),
        sid: "no-such-session".into(),
        exp,
    };
    let (h, rest) = token.split_once('.').expect("jwt");
    let (body, sig) = rest.split_once('.').expect("jwt");
    let mut tampered_body = body.to_string();
    tampered_body.replace_range(2..3, if &body[2..3] == "A" { "B" } else { "A" });
    let none_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let bad: Vec<(&str, String)> = vec![
        ("tampered", format!("{h}.{tampered_body}.{sig}")),
        ("unsigned", format!("{none_header}.{body}.")),
        (
            "alg none with the old signature",
            format!("{none_header}.{body}.{sig}"),
        ),
        (
            "another secret",
            sign(
                &Secret::new("some-other-secret-that-is-long-enough!").expect("s"),
                &claims(i64::MAX),
            ),
        ),
        ("expired", sign(&secret, &claims(1))),
        ("no such session", sign(&secret, &claims(i64::MAX))),
        ("garbage", "not-a-token".into()),
    ];
    for (what, t) in bad {
        let resp = client()
            .get(format!("{}/api/user", w.base))
            .header("Cookie", format!("gitvista_session={t}"))
            .send()
            .await
            .expect("user");
        assert_eq!(resp.status().as_u16(), 401, "{what}");
        assert!(
            set_cookie(&resp, "gitvista_session").is_some_and(|c| c.contains("Max-Age=0")),
            "{what}: the cookie is cleared"
        );
    }

    // A token stored under a key the server does not have: sign in again, the log says why.
    w.serve(
        &[],
        "0808080808080808080808080808080808080808080808080808080808080808",
        None,
    );
    let (status, body) = w.get("/api/user/repos", Some(&alice)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("sign_in_expired")),
        "{body}"
    );
    assert!(
        w.log_text().contains("not configured"),
        "the log names the missing key"
    );
    // `gitvista rotate-key` moves every token to the new key; then only the new key is needed.
    w.server = None;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .args(["rotate-key", "--data-dir"])
        .arg(&w.data)
        .env_remove("DATABASE_URL")
        .env(
            "GITVISTA_ENCRYPTION_KEY",
            "0808080808080808080808080808080808080808080808080808080808080808",
        )
        .env("GITVISTA_ENCRYPTION_KEY_PREVIOUS", KEY)
        .output()
        .expect("rotate-key");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("1 forge connections' tokens re-encrypted"),
        "{said}"
    );
    w.serve(
        &[],
        "0808080808080808080808080808080808080808080808080808080808080808",
        None,
    );
    let (status, body) = w.get("/api/user/repos", Some(&alice)).await;
    assert_eq!(
        status, 200,
        "the rotated token decrypts under the new key alone: {body}"
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[actix_rt::test]
async fn a_classic_oauth_app_signs_in_with_the_same_code_asking_for_repo_only_when_told() {
    let w = world(&[]);
    w.gh.set_oauth_app(true);
    let c = client();
    // Public repositories only: no scope asked for.
    let start = c
        .get(format!("{}/auth/github/login", w.base))
        .send()
        .await
        .expect("login");
    assert!(!location(&start).contains("scope="), "{}", location(&start));
    // "Include private repositories": the `repo` scope (which also grants write; README says so).
    let start = c
        .get(format!("{}/auth/github/login?private=1", w.base))
        .send()
        .await
        .expect("login");
    let authorize = location(&start);
    assert!(authorize.contains("scope=repo"), "{authorize}");
    let alice = w.sign_in("alice").await;
    let (_, me) = w.get("/api/user", Some(&alice)).await;
    assert_eq!(me["tokenKind"], "oauth", "{me}");
    // Its token does not expire and has no refresh token: it is used as it is.
    w.track(&alice, &w.repo_url("secret")).await;
    assert!(
        w.gh.git_tokens().iter().all(|t| t.starts_with("gho_")),
        "git presented the OAuth App's token"
    );
}

#[actix_rt::test]
async fn rate_limits_follow_the_signed_in_user_not_the_address() {
    let w = world(&[("GITVISTA_POSTS_PER_MINUTE", "2")]);
    let alice = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    let url = w.repo_url("open");
    for _ in 0..2 {
        let (status, body) = w
            .post("/api/repos", Some(&alice), json!({"url": url}))
            .await;
        assert!(status == 200 || status == 201, "{body}");
    }
    let resp = client()
        .post(format!("{}/api/repos", w.base))
        .header("Origin", &w.base)
        .header("Cookie", &alice)
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // Bob, from the same address, has his own allowance; so has a visitor not signed in.
    for who in [Some(bob.as_str()), None] {
        let (status, body) = w.post("/api/repos", who, json!({"url": url})).await;
        assert!(status == 200 || status == 201, "{who:?}: {body}");
    }
}

#[actix_rt::test]
async fn with_login_required_visitors_get_sign_in_and_signing_out_everywhere_ends_every_session() {
    let w = world(&[("GITVISTA_REQUIRE_LOGIN", "1")]);
    // Not signed in: the landing page and sign-in only.
    let (status, _) = w.get("/", None).await;
    assert_eq!(status, 200);
    let (status, body) = w.get("/api/repos?ids=0123456789abcdef", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("sign_in_required")),
        "{body}"
    );
    let (status, body) = w
        .post("/api/repos", None, json!({"url": w.repo_url("open")}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("sign_in_required")),
        "{body}"
    );
    let page = client()
        .get(format!("{}/r/0123456789abcdef?commit=abc", w.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 302);
    assert_eq!(
        location(&page),
        "/auth/github/login?back=%2Fr%2F0123456789abcdef%3Fcommit%3Dabc",
        "through sign-in and back to the page"
    );

    // Two sessions of alice (two browsers), one of bob.
    let first = w.sign_in("alice").await;
    let second = w.sign_in("alice").await;
    let bob = w.sign_in("bob").await;
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&first),
            json!({"url": w.repo_url("open")}),
        )
        .await;
    assert_eq!(status, 201, "signed in, public repositories work: {body}");
    // "Sign out everywhere" from one browser ends the other too.
    let resp = client()
        .post(format!("{}/auth/logout?everywhere=1", w.base))
        .header("Cookie", &first)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status().as_u16(), 204);
    for s in [&first, &second] {
        let (status, _) = w.get("/api/user", Some(s)).await;
        assert_eq!(status, 401);
    }
    let (status, _) = w.get("/api/user", Some(&bob)).await;
    assert_eq!(status, 200, "bob is still in");
    // An admin ends bob's sessions.
    let bob_id = w.user_id("bob").await;
    let ended: Value = client()
        .post(format!("{}/api/admin/users/{bob_id}/sign-out", w.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("admin sign-out")
        .json()
        .await
        .expect("json");
    assert_eq!(ended, json!({"ended": 1}));
    let (status, _) = w.get("/api/user", Some(&bob)).await;
    assert_eq!(status, 401);
    // Without the admin token, the user routes are not for anyone.
    let (status, _) = w.get("/api/admin/users", Some(&bob)).await;
    assert_eq!(status, 401);
}

#[actix_rt::test]
async fn a_public_repository_made_private_on_github_is_noticed_and_hidden_from_everyone_else() {
    let w = world(&[("GITVISTA_ACCESS_RECHECK", "1")]);
    let alice = w.sign_in("alice").await;
    let (status, created) = w
        .post(
            "/api/repos",
            Some(&alice),
            json!({"url": w.repo_url("third")}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["private"], false);
    let id = created["id"].as_str().expect("id").to_string();
    w.wait_ready(&id, None).await;
    // Public: a visitor not signed in sees it, and watches it.
    let (status, _) = w.get(&format!("/api/repos/{id}/repository"), None).await;
    assert_eq!(status, 200);
    let anon = format!("{}/api/repos/{id}/ws", w.base.replace("http://", "ws://"));
    let (mut watching, _) = tokio_tungstenite::connect_async(anon)
        .await
        .expect("connects");
    // Made private on GitHub; alice keeps looking at it.
    w.gh.set_private("alice/third", true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, _) = w
            .get(&format!("/api/repos/{id}/repository"), Some(&alice))
            .await;
        assert_eq!(status, 200, "its reader still sees it");
        let (status, _) = w.get(&format!("/api/repos/{id}/repository"), None).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "never noticed");
    }
    let (_, listed) = w.get(&format!("/api/repos?ids={id}"), Some(&alice)).await;
    assert_eq!(listed["repos"][0]["private"], true);
    // The visitor's socket is told and closed.
    let (texts, code) = until_closed(&mut watching, Duration::from_secs(20)).await;
    assert_eq!(code, Some(1008), "{texts:?}");
    assert!(
        texts.last().is_some_and(|m| m["error"]
            .as_str()
            .is_some_and(|e| e.contains("private now"))),
        "{texts:?}"
    );
}

#[actix_rt::test]
async fn with_sign_in_off_every_accounts_route_is_404() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted(&tmp.path().join("data"), None).await;
    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    for (method, path) in [
        ("GET", "/auth/github/login"),
        ("GET", "/auth/github/callback?code=x&state=y"),
        ("POST", "/auth/logout"),
        ("GET", "/api/user"),
        ("GET", "/api/user/repos"),
        ("GET", "/api/user/tracked"),
        ("GET", "/api/admin/users"),
        ("PATCH", "/api/admin/users/someone"),
        ("POST", "/api/admin/users/someone/sign-out"),
    ] {
        let mut r = c
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .header("Origin", &base)
            // Even with the admin token: the feature is off, not forbidden.
            .bearer_auth(ADMIN_TOKEN);
        if method == "PATCH" {
            r = r.json(&json!({"plan": "paid"}));
        }
        let resp = r.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 404, "{method} {path}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "not_found", "{method} {path}");
    }
}

#[actix_rt::test]
async fn accounts_routes_refuse_callers_who_may_not_use_them() {
    let w = world(&[]);
    let bob = w.sign_in("bob").await;
    let bob_id = w.user_id("bob").await;
    // Not signed in: the user's own routes are 401.
    for path in ["/api/user", "/api/user/repos", "/api/user/tracked"] {
        let (status, body) = w.get(path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("sign_in_required")),
            "{path}"
        );
    }
    // A signed-in user is not an admin: every admin user route is 401, and nothing changes.
    let c = client();
    let patched = c
        .patch(format!("{}/api/admin/users/{bob_id}", w.base))
        .header("Cookie", &bob)
        .header("Origin", &w.base)
        .json(&json!({"plan": "paid"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status().as_u16(), 401);
    let ended = c
        .post(format!("{}/api/admin/users/{bob_id}/sign-out", w.base))
        .header("Cookie", &bob)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("sign-out");
    assert_eq!(ended.status().as_u16(), 401);
    let (status, me) = w.get("/api/user", Some(&bob)).await;
    assert_eq!(
        (status, me["plan"].as_str()),
        (200, Some("free")),
        "still free, still signed in"
    );
    // Another site cannot sign him out (or anything else) with his cookie.
    let forged = c
        .post(format!("{}/auth/logout?everywhere=1", w.base))
        .header("Cookie", &bob)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("logout");
    assert_eq!(forged.status().as_u16(), 403);
    let (status, _) = w.get("/api/user", Some(&bob)).await;
    assert_eq!(status, 200);
    // An admin's bad requests: an unknown plan, an unknown user.
    for (id, plan, want) in [
        (bob_id.as_str(), "gold", 400),
        ("no-such-user", "paid", 404),
    ] {
        let resp = c
            .patch(format!("{}/api/admin/users/{id}", w.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("Origin", &w.base)
            .json(&json!({"plan": plan}))
            .send()
            .await
            .expect("patch");
        assert_eq!(resp.status().as_u16(), want, "{id} {plan}");
    }
    // GitHub failing under the picker: 502, and he stays signed in.
    w.gh.fail_next(&[500]);
    let (status, body) = w.get("/api/user/repos", Some(&bob)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("github_unavailable")),
        "{body}"
    );
    let (status, _) = w.get("/api/user", Some(&bob)).await;
    assert_eq!(status, 200);
    // A callback without a code (and without the sign-in cookie) starts nothing.
    let (status, body) = w.get("/auth/github/callback", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_state")),
        "{body}"
    );
    // Stopping tracking what one does not track.
    let resp = c
        .delete(format!("{}/api/repos/0123456789abcdef", w.base))
        .header("Cookie", &bob)
        .header("Origin", &w.base)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 404);
}
