//! A fake GitHub on 127.0.0.1 that speaks the endpoints GitVista's accounts use, for tests
//! without the network (forge-facts.md, "OAuth web flow" and "User access token"):
//!
//! - `GET /login/oauth/authorize` signs in as the user [`FakeGitHub::sign_in_as`] chose and
//!   redirects to `redirect_uri` with a one-time `code` and the caller's `state`;
//! - `POST /login/oauth/access_token` (form or JSON body, JSON answer) trades a code (checking client id and secret, redirect URI and the PKCE S256 verifier) or a
//!   refresh token for an access token that expires after [`FakeGitHub::set_token_ttl`] seconds
//!   and a refresh token; a used code or refresh token, and the access token a refresh replaced,
//!   stop working; failures are `200 {"error": ...}` as on GitHub;
//! - `GET /user`, `GET /user/repos` (paginated with a `Link` header), and
//!   `GET /repos/{owner}/{repo}` (200 for a token whose user may read it, else 404), with
//!   `Authorization: Bearer TOKEN` or `token TOKEN`; 401 `Bad credentials` otherwise.
//!
//! - git's smart HTTP at `/{owner}/{repo}[.git]/...` (after [`FakeGitHub::serve_git`]), by
//!   `git http-backend`: a public repository to anyone, a private one only with HTTP Basic
//!   whose password is a live token of a user who may read it (`x-access-token:TOKEN`, as
//!   GitHub takes it); 401 with `WWW-Authenticate: Basic` otherwise.
//!
//! The web side and the API are one server here (`GITVISTA_GITHUB_URL` and
//! `GITVISTA_GITHUB_API_URL` both point at [`FakeGitHub::url`]). [`FakeGitHub::fail_next`]
//! makes the next calls answer an error status, for the server's error paths.
//!
//! Its rooms: `oauth` (the authorize page and the token endpoint) and `hooks` (the
//! repository webhooks); the rest, the API and git, is here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;

mod hooks;
mod oauth;

use hooks::{create_hook, delete_hook, hook_config, list_hooks};
pub(crate) use oauth::url_encode;
use oauth::{access_token, authorize};

/// A user of the fake.
#[derive(Debug, Clone)]
pub struct FakeUser {
    /// GitHub's numeric id.
    pub id: i64,
    /// Login.
    pub login: String,
    /// Display name.
    pub name: String,
}

/// A repository of the fake, readable by the users listed.
#[derive(Debug, Clone)]
pub struct FakeRepo {
    /// GitHub's number for it: kept through a rename, new for a repository made at an old
    /// name.
    pub id: i64,
    /// `owner/name`.
    pub full_name: String,
    /// Private or public.
    pub private: bool,
    /// Users (logins) who may read it.
    pub readers: Vec<String>,
    /// Where git clones it from.
    pub clone_url: String,
    /// Users (logins) who may administer it (and so manage its webhooks).
    pub admins: Vec<String>,
}

/// A repository webhook registered on the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHook {
    /// GitHub's id of the hook.
    pub id: i64,
    /// The repository's `owner/name`.
    pub repo: String,
    /// Where deliveries go.
    pub url: String,
    /// What they are signed with.
    pub secret: String,
    /// The events it delivers.
    pub events: Vec<String>,
}

/// A delivery the fake prepared, as GitHub would send it: to `url`, with `headers` (event,
/// delivery id, hook id, `X-Hub-Signature-256`) and `body`.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Where it goes.
    pub url: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Code {
    login: String,
    scope: String,
    redirect_uri: String,
    challenge: Option<String>,
    used: bool,
}

#[derive(Debug)]
struct Token {
    login: String,
    expires_at: u64,
    live: bool,
}

#[derive(Debug, Default)]
struct State {
    client_id: String,
    client_secret: String,
    users: Vec<FakeUser>,
    repos: Vec<FakeRepo>,
    signing_in: Option<String>,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, Token>,
    refresh: HashMap<String, (String, bool, String)>,
    token_ttl: u64,
    /// A classic OAuth App: tokens never expire and come without a refresh token.
    oauth_app: bool,
    fail: Vec<u16>,
    /// Seconds the next requests wait before answering (one each).
    stall: Vec<u64>,
    counter: u64,
    /// Every request's method and path (with query), for tests that check what was asked.
    log: Vec<String>,
    /// Where the repositories git clones live (`ROOT/owner/name`).
    git_root: Option<std::path::PathBuf>,
    /// Every token git presented (to check that git got the current one).
    git_tokens: Vec<String>,
    /// The fake's own address (repositories' `html_url` live under it).
    base: String,
    /// Repository webhooks registered through the API.
    hooks: Vec<FakeHook>,
    /// A GitHub App's webhook (URL and secret), delivering every event of every repository.
    app_hook: Option<(String, String)>,
}

/// The running fake; stops when dropped.
#[derive(Debug)]
pub struct FakeGitHub {
    url: String,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// PKCE's S256: base64url (no padding) of the SHA-256 of the verifier.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl FakeGitHub {
    /// Starts a fake for the OAuth client `client_id` / `client_secret` on a free loopback port.
    pub fn start(client_id: &str, client_secret: &str) -> FakeGitHub {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            token_ttl: 8 * 3600,
            ..State::default()
        }));
        let data = web::Data::new(Arc::clone(&state));
        let (port, server) = crate::serve_loopback(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/user", web::get().to(user))
                .route("/user/repos", web::get().to(user_repos))
                .route("/repos/{owner}/{repo}", web::get().to(repo))
                .route("/repos/{owner}/{repo}/hooks", web::post().to(create_hook))
                .route("/repos/{owner}/{repo}/hooks", web::get().to(list_hooks))
                .route(
                    "/repos/{owner}/{repo}/hooks/{id}",
                    web::delete().to(delete_hook),
                )
                .route(
                    "/repos/{owner}/{repo}/hooks/{id}/config",
                    web::patch().to(hook_config),
                )
                .app_data(web::PayloadConfig::new(64 << 20))
                .route("/{owner}/{repo}/{tail:.*}", web::to(git));
        });
        let url = format!("http://127.0.0.1:{port}");
        state.lock().unwrap_or_else(|e| e.into_inner()).base = url.clone();
        FakeGitHub { url, state, server }
    }

    /// `http://127.0.0.1:PORT`, the web side and the API.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds a user.
    pub fn add_user(&self, id: i64, login: &str, name: &str) {
        self.with(|s| {
            s.users.push(FakeUser {
                id,
                login: login.into(),
                name: name.into(),
            })
        });
    }

    /// Adds a repository readable by `readers`.
    pub fn add_repo(&self, full_name: &str, private: bool, readers: &[&str], clone_url: &str) {
        self.with(|s| {
            let id = 7_000 + s.repos.len() as i64;
            s.repos.push(FakeRepo {
                id,
                full_name: full_name.into(),
                private,
                readers: readers.iter().map(|r| r.to_string()).collect(),
                clone_url: clone_url.into(),
                admins: Vec::new(),
            })
        });
    }

    /// Lets `logins` administer `full_name` (they may manage its webhooks).
    pub fn set_admins(&self, full_name: &str, logins: &[&str]) {
        self.with(|s| {
            for r in s.repos.iter_mut().filter(|r| r.full_name == full_name) {
                r.admins = logins.iter().map(|l| l.to_string()).collect();
            }
        });
    }

    /// The webhooks registered on `full_name`.
    pub fn hooks(&self, full_name: &str) -> Vec<FakeHook> {
        self.with(|s| {
            s.hooks
                .iter()
                .filter(|h| h.repo.eq_ignore_ascii_case(full_name))
                .cloned()
                .collect()
        })
    }

    /// Configures a GitHub App's webhook: every event of every repository goes to `url`,
    /// signed with `secret`.
    pub fn set_app_hook(&self, url: &str, secret: &str) {
        self.with(|s| s.app_hook = Some((url.to_string(), secret.to_string())));
    }

    /// The deliveries GitHub would send for `event` on `full_name` (to its repository hooks
    /// that take the event, and to the app's hook): `fields` are merged into a payload that
    /// carries the repository as GitHub describes it (and, for the app's hook, the
    /// installation).
    pub fn deliveries(
        &self,
        event: &str,
        full_name: &str,
        fields: serde_json::Value,
    ) -> Vec<Delivery> {
        self.with(|s| {
            let mut payload = json!({});
            if let Some(r) = s
                .repos
                .iter()
                .find(|r| r.full_name.eq_ignore_ascii_case(full_name))
            {
                payload["repository"] = repo_json(&s.base, r);
            }
            if let (Some(obj), serde_json::Value::Object(extra)) = (payload.as_object_mut(), fields)
            {
                obj.extend(extra);
            }
            let mut targets: Vec<(String, String, Option<i64>)> = s
                .hooks
                .iter()
                .filter(|h| h.repo.eq_ignore_ascii_case(full_name))
                .filter(|h| event == "ping" || h.events.iter().any(|e| e == event || e == "*"))
                .map(|h| (h.url.clone(), h.secret.clone(), Some(h.id)))
                .collect();
            if let Some((url, secret)) = &s.app_hook {
                targets.push((url.clone(), secret.clone(), None));
            }
            let mut out = Vec::new();
            for (url, secret, hook) in targets {
                let mut body = payload.clone();
                if hook.is_none() {
                    body["installation"] = json!({"id": 1});
                }
                let body = serde_json::to_vec(&body).unwrap_or_default();
                s.counter += 1;
                let delivery = format!("{:08x}-fake-{:012x}", s.counter, now());
                let mut headers = vec![
                    ("X-GitHub-Event".to_string(), event.to_string()),
                    ("X-GitHub-Delivery".to_string(), delivery),
                    (
                        "X-Hub-Signature-256".to_string(),
                        format!("sha256={}", sign(&secret, &body)),
                    ),
                    ("Content-Type".to_string(), "application/json".to_string()),
                    ("User-Agent".to_string(), "GitHub-Hookshot/fake".to_string()),
                ];
                if let Some(id) = hook {
                    headers.push(("X-GitHub-Hook-ID".to_string(), id.to_string()));
                }
                out.push(Delivery { url, headers, body });
            }
            out
        })
    }

    /// Gives `login` read access to `full_name` (made a collaborator on GitHub).
    pub fn add_reader(&self, full_name: &str, login: &str) {
        self.with(|s| {
            for r in s.repos.iter_mut().filter(|r| r.full_name == full_name) {
                r.readers.push(login.to_string());
            }
        });
    }

    /// Takes `login`'s read access to `full_name` away (revoked on GitHub).
    pub fn revoke(&self, full_name: &str, login: &str) {
        self.with(|s| {
            for r in s.repos.iter_mut().filter(|r| r.full_name == full_name) {
                r.readers.retain(|x| x != login);
            }
        });
    }

    /// Who the authorize page signs in as next.
    pub fn sign_in_as(&self, login: &str) {
        self.with(|s| s.signing_in = Some(login.into()));
    }

    /// Behave as a classic OAuth App (tokens that never expire, no refresh tokens, the scope
    /// asked for granted) instead of a GitHub App.
    pub fn set_oauth_app(&self, on: bool) {
        self.with(|s| s.oauth_app = on);
    }

    /// Renames `from` to `to`: its id, readers and hooks stay, and its clone URL names the new
    /// path (move the served directory to match).
    pub fn rename(&self, from: &str, to: &str) {
        self.with(|s| {
            for r in s.repos.iter_mut().filter(|r| r.full_name == from) {
                r.full_name = to.into();
                r.clone_url = r
                    .clone_url
                    .replace(&format!("/{from}.git"), &format!("/{to}.git"));
            }
            for h in s.hooks.iter_mut().filter(|h| h.repo == from) {
                h.repo = to.into();
            }
        });
    }

    /// Makes `full_name` private or public.
    pub fn set_private(&self, full_name: &str, private: bool) {
        self.with(|s| {
            for r in s.repos.iter_mut().filter(|r| r.full_name == full_name) {
                r.private = private;
            }
        });
    }

    /// Ends every access and refresh token of `login` (the user revoked the app).
    pub fn revoke_tokens(&self, login: &str) {
        self.with(|s| {
            for t in s.tokens.values_mut().filter(|t| t.login == login) {
                t.live = false;
            }
            for r in s.refresh.values_mut().filter(|r| r.0 == login) {
                r.1 = true;
            }
        });
    }

    /// Serves the repositories under `root` (`root/owner/name`) over git's smart HTTP.
    pub fn serve_git(&self, root: &std::path::Path) {
        self.with(|s| s.git_root = Some(root.to_path_buf()));
    }

    /// The tokens git presented so far, in order.
    pub fn git_tokens(&self) -> Vec<String> {
        self.with(|s| s.git_tokens.clone())
    }

    /// Every token handed out so far (access and refresh), for tests that look for leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.tokens.keys().chain(s.refresh.keys()).cloned().collect())
    }

    /// Lifetime of the access tokens handed out from now on, in seconds.
    pub fn set_token_ttl(&self, secs: u64) {
        self.with(|s| s.token_ttl = secs);
    }

    /// The next requests answer these statuses instead (one each).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.with(|s| s.fail.extend_from_slice(statuses));
    }

    /// The next requests wait this many seconds before answering (one each): a GitHub that
    /// hangs.
    pub fn stall_next(&self, secs: &[u64]) {
        self.with(|s| s.stall.extend_from_slice(secs));
    }

    /// Whether `token` is a live access token now.
    pub fn token_is_live(&self, token: &str) -> bool {
        self.with(|s| {
            s.tokens
                .get(token)
                .is_some_and(|t| t.live && t.expires_at > now())
        })
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

/// Logs the request and answers an injected failure, if one is queued.
async fn enter(state: &Shared, req: &HttpRequest) -> Option<HttpResponse> {
    let stall = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.log.push(format!("{} {}", req.method(), req.uri()));
        (!s.stall.is_empty()).then(|| s.stall.remove(0))
    };
    if let Some(secs) = stall {
        actix_rt::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if s.fail.is_empty() {
        return None;
    }
    let status = s.fail.remove(0);
    Some(
        HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        )
        .json(json!({"message": "injected failure"})),
    )
}

fn fresh(s: &mut State, prefix: &str) -> String {
    s.counter += 1;
    format!(
        "{prefix}_{:016x}{:08x}",
        s.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        now()
    )
}

/// The user the request's token belongs to (a live, unexpired token), if any.
fn caller(s: &State, req: &HttpRequest) -> Option<FakeUser> {
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("token "))
        .unwrap_or("");
    let t = s.tokens.get(token)?;
    if !t.live || t.expires_at <= now() {
        return None;
    }
    s.users.iter().find(|u| u.login == t.login).cloned()
}

/// 401 as GitHub answers a missing, wrong or expired token.
fn bad_credentials() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
    }))
}

async fn user(state: Shared, req: HttpRequest) -> HttpResponse {
    if let Some(r) = enter(&state, &req).await {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    match caller(&s, &req) {
        Some(u) => HttpResponse::Ok().json(json!({
            "id": u.id,
            "login": u.login,
            "name": u.name,
            "email": null,
            "avatar_url": format!("https://avatars.example.com/u/{}", u.id),
        })),
        None => bad_credentials(),
    }
}

fn repo_json(base: &str, r: &FakeRepo) -> serde_json::Value {
    let (owner, name) = r.full_name.split_once('/').unwrap_or(("", &r.full_name));
    json!({
        "id": r.id,
        "full_name": r.full_name,
        "name": name,
        "owner": {"login": owner},
        "private": r.private,
        "visibility": if r.private { "private" } else { "public" },
        "clone_url": r.clone_url,
        "html_url": format!("{base}/{}", r.full_name),
        "default_branch": "main",
    })
}

/// Hex HMAC-SHA-256 of `body` under `secret`: what `X-Hub-Signature-256` carries after
/// `sha256=`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn user_repos(
    state: Shared,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(r) = enter(&state, &req).await {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(u) = caller(&s, &req) else {
        return bad_credentials();
    };
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mine: Vec<&FakeRepo> = s
        .repos
        .iter()
        .filter(|r| r.readers.contains(&u.login))
        .collect();
    let last = mine.len().div_ceil(per_page).max(1);
    let items: Vec<_> = mine
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|r| repo_json(&s.base, r))
        .collect();
    let host = req.connection_info().host().to_string();
    let link = |p: usize, rel: &str| {
        format!("<http://{host}/user/repos?per_page={per_page}&page={p}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let mut resp = HttpResponse::Ok();
    if !links.is_empty() {
        resp.insert_header(("Link", links.join(", ")));
    }
    resp.json(items)
}

async fn repo(state: Shared, req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    if let Some(r) = enter(&state, &req).await {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let (owner, name) = path.into_inner();
    let full = format!("{owner}/{name}");
    let reader = caller(&s, &req).map(|u| u.login);
    if reader.is_none() && req.headers().contains_key("Authorization") {
        return bad_credentials();
    }
    // A repository the caller may not read does not exist, as GitHub answers it.
    match s.repos.iter().find(|r| {
        r.full_name.eq_ignore_ascii_case(&full)
            && (!r.private || reader.as_ref().is_some_and(|l| r.readers.contains(l)))
    }) {
        Some(r) => {
            let mut j = repo_json(&s.base, r);
            if let Some(login) = &reader {
                j["permissions"] = json!({
                    "admin": r.admins.contains(login),
                    "push": r.admins.contains(login),
                    "pull": true,
                });
            }
            HttpResponse::Ok().json(j)
        }
        None => HttpResponse::NotFound().json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
        })),
    }
}

/// Whether the HTTP Basic password of `req` is a live token of a reader of `r`; records it.
fn git_reader(s: &mut State, req: &HttpRequest, r: &FakeRepo) -> bool {
    let Some(password) = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|p| p.split_once(':').map(|(_, pw)| pw.to_string()))
    else {
        return false;
    };
    s.git_tokens.push(password.clone());
    s.tokens
        .get(&password)
        .is_some_and(|t| t.live && t.expires_at > now() && r.readers.contains(&t.login))
}

/// git's smart HTTP through `git http-backend`, gated like GitHub's.
async fn git(
    state: Shared,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(r) = enter(&state, &req).await {
        return r;
    }
    let (owner, name, tail) = path.into_inner();
    let name = name.strip_suffix(".git").unwrap_or(&name).to_string();
    let full = format!("{owner}/{name}");
    let root = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(root) = s.git_root.clone() else {
            return HttpResponse::NotFound().finish();
        };
        let Some(r) = s
            .repos
            .iter()
            .find(|r| r.full_name.eq_ignore_ascii_case(&full))
            .cloned()
        else {
            return HttpResponse::NotFound().body("Repository not found.");
        };
        if r.private && !git_reader(&mut s, &req, &r) {
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Basic realm=\"GitHub\""))
                .finish();
        }
        root
    };
    crate::smart_http::http_backend(root, &req, format!("/{owner}/{name}/{tail}"), body).await
}
