//! Fake GitLab and Bitbucket Cloud on 127.0.0.1, beside the fake GitHub (`github.rs`), speaking
//! the endpoints GitVista's forge clients use, for tests without the network:
//!
//! - **GitLab** (`Flavor::GitLab`): `GET /oauth/authorize` (state, PKCE S256, the scopes asked
//!   are granted), `POST /oauth/token` (form; codes and refresh tokens work once, access tokens
//!   expire after [`FakeForge::set_token_ttl`], 2 hours by default; refusals are
//!   `400 {"error": "invalid_grant"}`), `GET /api/v4/user`, `GET /api/v4/projects/:path`
//!   (URL-encoded path; 404 for a project the token's user may not read; 403
//!   `insufficient_scope` without `read_api` or `api`), `GET /api/v4/projects?membership=true`
//!   (`X-Next-Page`), project hooks (`api` scope and Maintainer), and git over HTTP with user
//!   name `oauth2` and a token with `read_repository`.
//! - **Bitbucket** (`Flavor::Bitbucket`): `GET /site/oauth2/authorize` (no PKCE, the consumer's
//!   callback), `POST /site/oauth2/access_token` (the consumer's key and secret as HTTP Basic;
//!   the consumer's scopes granted), `GET /2.0/user`, `GET /2.0/repositories/{ws}/{repo}` (403
//!   for a private repository the user may not read, 404 for none), `GET /2.0/repositories?
//!   role=member` (`next`), `GET /2.0/user/permissions/repositories`, repository hooks (`webhook`
//!   scope and admin), and git with user name `x-token-auth`.
//!
//! The web side and the API are one server; repositories' git lives at `ROOT/<path>` after
//! [`FakeForge::serve_git`].
//!
//! Its rooms: `oauth` (the authorize page and the token endpoint) and `hooks` (the
//! repository webhooks); the rest, the API and git, is here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde_json::json;

mod hooks;
mod oauth;

use hooks::{hook_delete, hook_put, hooks_list};
use oauth::{authorize, basic, token};

/// Which forge the fake speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// GitLab (gitlab.com or self-managed).
    GitLab,
    /// Bitbucket Cloud.
    Bitbucket,
}

#[derive(Debug, Clone)]
struct User {
    id: String,
    login: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Repo {
    path: String,
    private: bool,
    readers: Vec<String>,
    admins: Vec<String>,
}

#[derive(Debug, Clone)]
struct Token {
    login: String,
    scopes: String,
    expires_at: u64,
    live: bool,
}

/// A hook registered on the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHook {
    /// The forge's id of it (a number on GitLab, a `{uuid}` on Bitbucket).
    pub id: String,
    /// The repository's path.
    pub repo: String,
    /// Where it delivers.
    pub url: String,
    /// Its token (GitLab) or signing secret (Bitbucket).
    pub secret: String,
}

#[derive(Debug, Default)]
struct State {
    gitlab: bool,
    client_id: String,
    client_secret: String,
    callback: String,
    consumer_scopes: String,
    users: Vec<User>,
    repos: Vec<Repo>,
    signing_in: Option<String>,
    codes: HashMap<String, (String, String, Option<String>, bool)>,
    tokens: HashMap<String, Token>,
    refresh: HashMap<String, (String, String, bool)>,
    token_ttl: u64,
    counter: u64,
    log: Vec<String>,
    git_root: Option<std::path::PathBuf>,
    git_credentials: Vec<(String, String)>,
    hooks: Vec<FakeHook>,
    base: String,
}

/// A running fake GitLab or Bitbucket; stops when dropped.
#[derive(Debug)]
pub struct FakeForge {
    url: String,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeForge {
    /// Starts a fake `flavor` for the OAuth client `client_id` / `client_secret` on a free
    /// loopback port.
    pub fn start(flavor: Flavor, client_id: &str, client_secret: &str) -> FakeForge {
        let state = Arc::new(Mutex::new(State {
            gitlab: flavor == Flavor::GitLab,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            consumer_scopes: "account repository".into(),
            token_ttl: 7200,
            ..State::default()
        }));
        let data = web::Data::new(Arc::clone(&state));
        let (port, server) = crate::serve_loopback(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 << 20));
            match flavor {
                Flavor::GitLab => {
                    cfg.route("/oauth/authorize", web::get().to(authorize))
                        .route("/oauth/token", web::post().to(token))
                        .route("/api/v4/user", web::get().to(user))
                        .route("/api/v4/projects", web::get().to(repo_list))
                        .route("/api/v4/projects/{id}", web::get().to(repo))
                        .route("/api/v4/projects/{id}/hooks", web::get().to(hooks_list))
                        .route("/api/v4/projects/{id}/hooks", web::post().to(hook_put))
                        .route(
                            "/api/v4/projects/{id}/hooks/{hook}",
                            web::put().to(hook_put),
                        )
                        .route(
                            "/api/v4/projects/{id}/hooks/{hook}",
                            web::delete().to(hook_delete),
                        );
                }
                Flavor::Bitbucket => {
                    cfg.route("/site/oauth2/authorize", web::get().to(authorize))
                        .route("/site/oauth2/access_token", web::post().to(token))
                        .route("/2.0/user", web::get().to(user))
                        .route(
                            "/2.0/user/permissions/repositories",
                            web::get().to(permissions),
                        )
                        .route("/2.0/repositories", web::get().to(repo_list))
                        .route("/2.0/repositories/{ws}/{slug}", web::get().to(repo))
                        .route(
                            "/2.0/repositories/{ws}/{slug}/hooks",
                            web::get().to(hooks_list),
                        )
                        .route(
                            "/2.0/repositories/{ws}/{slug}/hooks",
                            web::post().to(hook_put),
                        )
                        .route(
                            "/2.0/repositories/{ws}/{slug}/hooks/{hook}",
                            web::put().to(hook_put),
                        )
                        .route(
                            "/2.0/repositories/{ws}/{slug}/hooks/{hook}",
                            web::delete().to(hook_delete),
                        );
                }
            }
            cfg.route("/{tail:.*}", web::to(git));
        });
        let url = format!("http://127.0.0.1:{port}");
        state.lock().unwrap_or_else(|e| e.into_inner()).base = url.clone();
        FakeForge { url, state, server }
    }

    /// `http://127.0.0.1:PORT`: the web side and the API.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds a user (`id`: GitLab's number, Bitbucket's `{uuid}`).
    pub fn add_user(&self, id: &str, login: &str, name: &str) {
        self.with(|s| {
            s.users.push(User {
                id: id.into(),
                login: login.into(),
                name: name.into(),
            })
        });
    }

    /// Adds a repository at `path`, readable by `readers` and administered by `admins`.
    pub fn add_repo(&self, path: &str, private: bool, readers: &[&str], admins: &[&str]) {
        self.with(|s| {
            s.repos.push(Repo {
                path: path.into(),
                private,
                readers: readers.iter().map(|r| r.to_string()).collect(),
                admins: admins.iter().map(|r| r.to_string()).collect(),
            })
        });
    }

    /// Who the authorize page signs in as next.
    pub fn sign_in_as(&self, login: &str) {
        self.with(|s| s.signing_in = Some(login.into()));
    }

    /// Bitbucket: the consumer's callback URL (Bitbucket redirects there) and scopes.
    pub fn set_consumer(&self, callback: &str, scopes: &str) {
        self.with(|s| {
            s.callback = callback.into();
            s.consumer_scopes = scopes.into();
        });
    }

    /// Lifetime of the access tokens handed out from now on, in seconds.
    pub fn set_token_ttl(&self, secs: u64) {
        self.with(|s| s.token_ttl = secs);
    }

    /// Takes `login`'s read access to `path` away.
    pub fn revoke(&self, path: &str, login: &str) {
        self.with(|s| {
            for r in s.repos.iter_mut().filter(|r| r.path == path) {
                r.readers.retain(|x| x != login);
            }
        });
    }

    /// Serves the repositories under `root` (`root/<path>`) over git's smart HTTP.
    pub fn serve_git(&self, root: &std::path::Path) {
        self.with(|s| s.git_root = Some(root.to_path_buf()));
    }

    /// The (user name, password) pairs git presented, in order.
    pub fn git_credentials(&self) -> Vec<(String, String)> {
        self.with(|s| s.git_credentials.clone())
    }

    /// Every token handed out so far (access and refresh), for tests that look for leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.tokens.keys().chain(s.refresh.keys()).cloned().collect())
    }

    /// Whether `token` is a live, unexpired access token.
    pub fn token_is_live(&self, token: &str) -> bool {
        self.with(|s| {
            s.tokens
                .get(token)
                .is_some_and(|t| t.live && t.expires_at > now())
        })
    }

    /// The hooks registered on `path`.
    pub fn hooks(&self, path: &str) -> Vec<FakeHook> {
        self.with(|s| s.hooks.iter().filter(|h| h.repo == path).cloned().collect())
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// The push deliveries the forge would send now to the hooks on `path`, as it sends them:
    /// GitLab's `Push Hook` with `X-Gitlab-Token` and `X-Gitlab-Event-UUID`; Bitbucket's
    /// `repo:push` signed `X-Hub-Signature: sha256=...`, with `X-Request-UUID`.
    pub fn push_deliveries(&self, path: &str) -> Vec<crate::github::Delivery> {
        self.with(|s| {
            let web = format!("{}/{path}", s.base);
            let hooks: Vec<FakeHook> = s.hooks.iter().filter(|h| h.repo == path).cloned().collect();
            let mut out = Vec::new();
            for h in hooks {
                s.counter += 1;
                let uuid = format!("{:08x}-0000-4000-8000-{:012x}", s.counter, now());
                let (body, headers) = if s.gitlab {
                    let body = json!({
                        "object_kind": "push",
                        "ref": "refs/heads/main",
                        "project": {"path_with_namespace": path, "web_url": web, "git_http_url": format!("{web}.git")},
                    });
                    let headers = vec![
                        ("X-Gitlab-Event".to_string(), "Push Hook".to_string()),
                        ("X-Gitlab-Token".to_string(), h.secret.clone()),
                        ("X-Gitlab-Event-UUID".to_string(), uuid),
                    ];
                    (body, headers)
                } else {
                    let body = json!({
                        "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
                        "repository": {"type": "repository", "full_name": path, "links": {"html": {"href": web}}},
                    });
                    let bytes = serde_json::to_vec(&body).unwrap_or_default();
                    let headers = vec![
                        ("X-Event-Key".to_string(), "repo:push".to_string()),
                        (
                            "X-Hub-Signature".to_string(),
                            format!("sha256={}", crate::github::sign(&h.secret, &bytes)),
                        ),
                        ("X-Request-UUID".to_string(), uuid),
                        ("X-Hook-UUID".to_string(), h.id.clone()),
                    ];
                    (body, headers)
                };
                let mut headers = headers;
                headers.push(("Content-Type".to_string(), "application/json".to_string()));
                out.push(crate::github::Delivery {
                    url: h.url.clone(),
                    headers,
                    body: serde_json::to_vec(&body).unwrap_or_default(),
                });
            }
            out
        })
    }
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

fn fresh(s: &mut State, prefix: &str) -> String {
    s.counter += 1;
    format!(
        "{prefix}{:016x}{:08x}",
        s.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        now()
    )
}

fn note(s: &mut State, req: &HttpRequest) {
    s.log.push(format!("{} {}", req.method(), req.uri()));
}

/// The caller's token (bearer), if live and unexpired.
fn caller(s: &State, req: &HttpRequest) -> Option<(User, Token)> {
    let h = req.headers().get("Authorization")?.to_str().ok()?;
    let t = s.tokens.get(h.strip_prefix("Bearer ")?)?;
    if !t.live || t.expires_at <= now() {
        return None;
    }
    let u = s.users.iter().find(|u| u.login == t.login)?.clone();
    Some((u, t.clone()))
}

fn unauthorized(gitlab: bool) -> HttpResponse {
    if gitlab {
        HttpResponse::Unauthorized().json(json!({"message": "401 Unauthorized"}))
    } else {
        HttpResponse::Unauthorized()
            .json(json!({"type": "error", "error": {"message": "Access token expired."}}))
    }
}

fn has(t: &Token, scope: &str) -> bool {
    t.scopes.split([' ', ',']).any(|x| x == scope)
}

async fn user(state: Shared, req: HttpRequest) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    let Some((u, _)) = caller(&s, &req) else {
        return unauthorized(s.gitlab);
    };
    if s.gitlab {
        HttpResponse::Ok().json(json!({
            "id": u.id.parse::<i64>().unwrap_or(0),
            "username": u.login,
            "name": u.name,
            "public_email": "",
            "avatar_url": format!("https://gitlab.example/avatar/{}", u.id),
        }))
    } else {
        HttpResponse::Ok().json(json!({
            "type": "user",
            "uuid": u.id,
            "nickname": u.login,
            "display_name": u.name,
            "account_id": format!("acct-{}", u.login),
            "links": {"avatar": {"href": format!("https://bitbucket.example/avatar/{}", u.login)}},
        }))
    }
}

fn repo_json(s: &State, r: &Repo, login: Option<&str>) -> serde_json::Value {
    let clone = format!("{}/{}.git", s.base, r.path);
    if s.gitlab {
        let level = match login {
            Some(l) if r.admins.iter().any(|a| a == l) => 40,
            Some(l) if r.readers.iter().any(|a| a == l) => 20,
            _ => 0,
        };
        json!({
            "id": 1000 + s.repos.iter().position(|x| x.path == r.path).unwrap_or(0),
            "path_with_namespace": r.path,
            "visibility": if r.private { "private" } else { "public" },
            "http_url_to_repo": clone,
            "web_url": format!("{}/{}", s.base, r.path),
            "description": "",
            "last_activity_at": "2026-11-27T10:00:00Z",
            "permissions": {"project_access": if level > 0 { json!({"access_level": level}) } else { json!(null) }, "group_access": null},
        })
    } else {
        let host = s.base.trim_start_matches("http://");
        json!({
            "type": "repository",
            "uuid": format!("{{repo-{}}}", s.repos.iter().position(|x| x.path == r.path).unwrap_or(0)),
            "full_name": r.path,
            "is_private": r.private,
            "description": "",
            "updated_on": "2026-11-27T10:00:00+00:00",
            "links": {
                "clone": [
                    {"name": "https", "href": format!("http://{}@{host}/{}.git", login.unwrap_or("anon"), r.path)},
                    {"name": "ssh", "href": format!("git@{host}:{}.git", r.path)},
                ],
                "html": {"href": format!("{}/{}", s.base, r.path)},
            },
        })
    }
}

/// The repository a route names: GitLab's URL-encoded `{id}`, Bitbucket's `{ws}/{slug}`.
fn named(req: &HttpRequest) -> String {
    let m = req.match_info();
    match m.get("id") {
        Some(id) => id.replace("%2F", "/").replace("%2f", "/"),
        None => format!("{}/{}", m.query("ws"), m.query("slug")),
    }
}

fn readable(r: &Repo, login: Option<&str>) -> bool {
    !r.private || login.is_some_and(|l| r.readers.iter().any(|x| x == l))
}

async fn repo(state: Shared, req: HttpRequest) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    let who = caller(&s, &req);
    if who.is_none() && req.headers().contains_key("Authorization") {
        return unauthorized(s.gitlab);
    }
    if s.gitlab
        && who
            .as_ref()
            .is_some_and(|(_, t)| !has(t, "read_api") && !has(t, "api"))
    {
        return HttpResponse::Forbidden().json(json!({"error": "insufficient_scope"}));
    }
    let login = who.as_ref().map(|(u, _)| u.login.clone());
    let path = named(&req);
    match s.repos.iter().find(|r| r.path == path) {
        Some(r) if readable(r, login.as_deref()) => HttpResponse::Ok().json(repo_json(&s, r, login.as_deref())),
        // Bitbucket: a private repository one may not read is 403; GitLab hides it.
        Some(_) if !s.gitlab => HttpResponse::Forbidden()
            .json(json!({"type": "error", "error": {"message": "Access denied. You must have read access."}})),
        _ if s.gitlab => HttpResponse::NotFound().json(json!({"message": "404 Project Not Found"})),
        _ => HttpResponse::NotFound()
            .json(json!({"type": "error", "error": {"message": "Repository not found"}})),
    }
}

async fn repo_list(
    state: Shared,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    let Some((u, t)) = caller(&s, &req) else {
        return unauthorized(s.gitlab);
    };
    if s.gitlab && !has(&t, "read_api") && !has(&t, "api") {
        return HttpResponse::Forbidden().json(json!({"error": "insufficient_scope"}));
    }
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d).max(1);
    let per = num(if s.gitlab { "per_page" } else { "pagelen" }, 20).min(100);
    let page = num("page", 1);
    let mine: Vec<&Repo> = s
        .repos
        .iter()
        .filter(|r| r.readers.contains(&u.login))
        .collect();
    let items: Vec<_> = mine
        .iter()
        .skip((page - 1) * per)
        .take(per)
        .map(|r| repo_json(&s, r, Some(&u.login)))
        .collect();
    let more = page * per < mine.len();
    if s.gitlab {
        HttpResponse::Ok()
            .insert_header(("X-Page", page.to_string()))
            .insert_header((
                "X-Next-Page",
                if more {
                    (page + 1).to_string()
                } else {
                    String::new()
                },
            ))
            .json(items)
    } else {
        let mut body = json!({"values": items, "page": page, "pagelen": per, "size": mine.len()});
        if more {
            body["next"] = json!(format!(
                "{}/2.0/repositories?role=member&page={}&pagelen={per}",
                s.base,
                page + 1
            ));
        }
        HttpResponse::Ok().json(body)
    }
}

async fn permissions(
    state: Shared,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    let Some((u, _)) = caller(&s, &req) else {
        return unauthorized(false);
    };
    let wanted = q
        .get("q")
        .and_then(|f| f.strip_prefix("repository.full_name=\""))
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or("");
    let values: Vec<_> = s
        .repos
        .iter()
        .filter(|r| r.path == wanted && r.readers.contains(&u.login))
        .map(|r| {
            let admin = r.admins.contains(&u.login);
            json!({"permission": if admin { "admin" } else { "read" }, "repository": {"full_name": r.path}})
        })
        .collect();
    HttpResponse::Ok().json(json!({"values": values, "page": 1, "pagelen": 10}))
}

/// git's smart HTTP at `/<path>.git/...`, gated like the forge's: a private repository only
/// with HTTP Basic of the forge's user name and a live token of a reader (GitLab: with
/// `read_repository` or `api`).
async fn git(state: Shared, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let full = req.path().trim_start_matches('/').to_string();
    let (path, tail) = {
        let mut s = lock(&state);
        note(&mut s, &req);
        // `<path>.git/<tail>` or `<path>/<tail>`.
        let found = s.repos.iter().find_map(|r| {
            [format!("{}.git/", r.path), format!("{}/", r.path)]
                .iter()
                .find_map(|p| full.strip_prefix(p.as_str()))
                .map(|tail| (r.path.clone(), tail.to_string()))
        });
        match found {
            Some(f) => f,
            None => return HttpResponse::NotFound().body("Repository not found."),
        }
    };
    let root = {
        let mut s = lock(&state);
        let Some(root) = s.git_root.clone() else {
            return HttpResponse::NotFound().finish();
        };
        let Some(r) = s.repos.iter().find(|r| r.path == path).cloned() else {
            return HttpResponse::NotFound().body("Repository not found.");
        };
        if r.private {
            let user = if s.gitlab { "oauth2" } else { "x-token-auth" };
            let presented = basic(&req);
            if let Some(p) = &presented {
                s.git_credentials.push(p.clone());
            }
            let ok = presented.is_some_and(|(u, pw)| {
                u == user
                    && s.tokens.get(&pw).is_some_and(|t| {
                        t.live
                            && t.expires_at > now()
                            && r.readers.contains(&t.login)
                            && (!s.gitlab || has(t, "read_repository") || has(t, "api"))
                    })
            });
            if !ok {
                return HttpResponse::Unauthorized()
                    .insert_header(("WWW-Authenticate", "Basic realm=\"fake forge\""))
                    .finish();
            }
        }
        root
    };
    crate::smart_http::http_backend(root, &req, format!("/{path}/{tail}"), body).await
}
