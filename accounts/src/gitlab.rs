//! GitLab (gitlab.com or a self-managed instance at `GITVISTA_GITLAB_URL`) as a [`Provider`]:
//!
//! - sign-in: `GET /oauth/authorize` with state and PKCE S256, `POST /oauth/token` for the code
//!   and for refreshes (access tokens last 2 hours, each refresh token works once);
//! - scopes: `read_user` (who), `read_api` (the project and membership reads below: GitLab gives
//!   `/projects` nothing with `read_user` and `read_repository` alone), `read_repository` (git
//!   over HTTP), and `api` only when the user asks for webhooks to be registered for them;
//! - `GET /api/v4/user`, `GET /api/v4/projects/:path` (404 is GitLab's "not found or not
//!   yours"), `GET /api/v4/projects?membership=true` for the picker (`X-Next-Page`);
//! - project hooks `POST/GET/PUT/DELETE /api/v4/projects/:path/hooks[/:id]`, delivering push
//!   and tag events with `X-Gitlab-Token` (needs Maintainer: access level 40);
//! - git with user name `oauth2` and the token as password.

use serde::Deserialize;

use super::provider::{
    Answer, ForgeError, ForgeRepo, ForgeSettings, ForgeUser, Grant, Provider, Rest, TokenAnswer,
    Wanted, checked_path, host_of, query,
};

/// GitLab's Maintainer access level: may manage a project's hooks.
const MAINTAINER: u32 = 40;

/// GitLab, configured.
pub struct GitLab {
    settings: ForgeSettings,
    host: String,
    rest: Rest,
}

impl std::fmt::Debug for GitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLab")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct User {
    id: i64,
    username: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    public_email: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct Project {
    #[serde(default)]
    id: Option<u64>,
    path_with_namespace: String,
    #[serde(default)]
    visibility: Option<String>,
    http_url_to_repo: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    last_activity_at: Option<String>,
    #[serde(default)]
    permissions: Option<Permissions>,
}

#[derive(Deserialize, Default)]
struct Permissions {
    #[serde(default)]
    project_access: Option<Access>,
    #[serde(default)]
    group_access: Option<Access>,
}

#[derive(Deserialize)]
struct Access {
    access_level: u32,
}

impl From<Project> for ForgeRepo {
    fn from(p: Project) -> ForgeRepo {
        let level = p.permissions.as_ref().map_or(0, |perm| {
            let of = |a: &Option<Access>| a.as_ref().map_or(0, |a| a.access_level);
            of(&perm.project_access).max(of(&perm.group_access))
        });
        ForgeRepo {
            id: p.id.map(|id| id.to_string()),
            full_name: p.path_with_namespace,
            // Internal projects are readable only by the instance's signed-in users.
            private: p.visibility.as_deref() != Some("public"),
            clone_url: p.http_url_to_repo,
            description: p.description,
            pushed_at: p.last_activity_at,
            admin: level >= MAINTAINER,
        }
    }
}

#[derive(Deserialize)]
struct Hook {
    id: i64,
    #[serde(default)]
    url: Option<String>,
}

impl GitLab {
    /// GitLab at `settings.web_url`, its API at `settings.api_url`.
    pub fn new(settings: ForgeSettings) -> Result<GitLab, String> {
        Ok(GitLab {
            host: host_of(&settings.web_url)?,
            rest: Rest::new("GitLab", settings.timeout)?,
            settings,
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_url)
    }

    /// `/projects/group%2Fsub%2Fname`.
    fn project(path: &str) -> Result<String, ForgeError> {
        let path = checked_path(path)?;
        Ok(format!("/projects/{}", path.replace('/', "%2F")))
    }

    async fn token_call(&self, fields: &[(&str, &str)]) -> Result<Grant, ForgeError> {
        let req = self
            .rest
            .request(
                reqwest::Method::POST,
                &format!("{}/oauth/token", self.settings.web_url),
            )
            .form(fields);
        TokenAnswer::read(&self.rest.send(req).await?)
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<Grant, ForgeError> {
        self.token_call(&[
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.as_str()),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", &self.settings.callback_url),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn renew(&self, refresh_token: &str) -> Result<Grant, ForgeError> {
        self.token_call(&[
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.as_str()),
            ("refresh_token", refresh_token),
            ("grant_type", "refresh_token"),
            ("redirect_uri", &self.settings.callback_url),
        ])
        .await
    }

    async fn who(&self, token: &str) -> Result<ForgeUser, ForgeError> {
        let a = self.rest.get(&self.api("/user"), token).await?;
        if a.status != 200 {
            return Err(a.failed("reading the user"));
        }
        let u: User = a.json("a user")?;
        Ok(ForgeUser {
            id: u.id.to_string(),
            login: u.username,
            name: u.name,
            email: u.public_email.filter(|e| !e.is_empty()).or(u.email),
            avatar_url: u.avatar_url,
        })
    }

    async fn read_repo(&self, token: &str, path: &str) -> Result<Option<ForgeRepo>, ForgeError> {
        let a = self
            .rest
            .get(&self.api(&Self::project(path)?), token)
            .await?;
        match a.status {
            200 => Ok(Some(a.json::<Project>("a project")?.into())),
            // GitLab's answer for "no access" too.
            404 => Ok(None),
            _ => Err(a.failed("reading the project")),
        }
    }

    async fn list_repos(
        &self,
        token: &str,
        page: u32,
        per_page: u8,
    ) -> Result<(Vec<ForgeRepo>, bool), ForgeError> {
        let (per_page, page) = (per_page.clamp(1, 100).to_string(), page.max(1).to_string());
        let url = self.api(&format!(
            "/projects?{}",
            query(&[
                ("membership", "true"),
                ("order_by", "last_activity_at"),
                ("sort", "desc"),
                ("per_page", &per_page),
                ("page", &page),
            ])
        ));
        let a = self.rest.get(&url, token).await?;
        if a.status != 200 {
            return Err(a.failed("listing projects"));
        }
        let more = next_page(&a);
        let projects: Vec<Project> = a.json("a project list")?;
        Ok((projects.into_iter().map(ForgeRepo::from).collect(), more))
    }

    async fn add_hook(
        &self,
        token: &str,
        path: &str,
        url: &str,
        secret: &str,
    ) -> Result<String, ForgeError> {
        let base = self.api(&format!("{}/hooks", Self::project(path)?));
        let body = serde_json::json!({
            "url": url,
            "token": secret,
            "push_events": true,
            "tag_push_events": true,
            "enable_ssl_verification": true,
        });
        // A hook to the same URL already there (registered before, its row lost) is taken over.
        let listed = self.rest.get(&base, token).await?;
        if listed.status != 200 {
            return Err(listed.failed("listing hooks"));
        }
        let hooks: Vec<Hook> = listed.json("a hook list")?;
        let (method, target) = match hooks.iter().find(|h| h.url.as_deref() == Some(url)) {
            Some(h) => (reqwest::Method::PUT, format!("{base}/{}", h.id)),
            None => (reqwest::Method::POST, base),
        };
        let a = self
            .rest
            .send(
                self.rest
                    .request(method, &target)
                    .bearer_auth(token)
                    .json(&body),
            )
            .await?;
        match a.status {
            200 | 201 => Ok(a.json::<Hook>("a hook")?.id.to_string()),
            _ => Err(a.failed("creating the hook")),
        }
    }

    async fn remove_hook(&self, token: &str, path: &str, id: &str) -> Result<(), ForgeError> {
        let id: i64 = id
            .parse()
            .map_err(|_| ForgeError::Upstream(format!("{id:?} is not a GitLab hook id")))?;
        let url = self.api(&format!("{}/hooks/{id}", Self::project(path)?));
        let a = self
            .rest
            .send(
                self.rest
                    .request(reqwest::Method::DELETE, &url)
                    .bearer_auth(token),
            )
            .await?;
        match a.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(a.failed("deleting the hook")),
        }
    }
}

/// Whether a GitLab list has another page: `X-Next-Page` set, or a `Link` with `rel="next"`
/// (GitLab leaves out `X-Next-Page` on very large lists).
fn next_page(a: &Answer) -> bool {
    let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok());
    header("x-next-page").is_some_and(|n| !n.trim().is_empty())
        || header("link").is_some_and(|l| l.contains("rel=\"next\""))
}

impl Provider for GitLab {
    fn kind(&self) -> &'static str {
        "gitlab"
    }

    fn name(&self) -> &'static str {
        "GitLab"
    }

    fn host(&self) -> &str {
        &self.host
    }

    fn authorize_url(
        &self,
        state: &str,
        challenge: &str,
        wanted: Wanted,
    ) -> Result<String, String> {
        let mut scopes = vec!["read_user", "read_api", "read_repository"];
        if wanted.hooks {
            scopes.push("api");
        }
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.settings.web_url))
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.callback_url)
            .append_pair("response_type", "code")
            .append_pair("state", state)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.to_string())
    }

    crate::provider::forge_calls!();

    fn git_username(&self) -> &'static str {
        "oauth2"
    }

    fn registers_hooks(&self, _token_kind: &str, scopes: &str) -> bool {
        scopes.split([' ', ',']).any(|s| s == "api")
    }

    fn nested_groups(&self) -> bool {
        true
    }
}
