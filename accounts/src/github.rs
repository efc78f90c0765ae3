//! GitHub as a [`Provider`], through octocrab: the web flow's code exchange and token refresh
//! (`POST /login/oauth/access_token` on the web side), the signed-in user (`GET /user`), their
//! repositories (`GET /user/repos`), whether a token can read one repository
//! (`GET /repos/{owner}/{repo}`: 404 is "no"), and repository hooks
//! (`/repos/{owner}/{repo}/hooks`). Both sides' addresses come from the settings, so GitHub
//! Enterprise and the test fake work the same.

use octocrab::Octocrab;
use serde::Deserialize;

use super::provider::{
    ForgeError, ForgeRepo, ForgeSettings, ForgeUser, Grant, Provider, TokenAnswer, Wanted,
    checked_path, host_of, query,
};

/// The signed-in user, as `GET /user` answers.
#[derive(Debug, Clone, Deserialize)]
struct GitHubUser {
    id: i64,
    login: String,
    name: Option<String>,
    email: Option<String>,
    avatar_url: Option<String>,
}

/// A repository as `GET /repos/{o}/{r}` and `GET /user/repos` answer (the fields used).
#[derive(Debug, Clone, Deserialize)]
struct GitHubRepo {
    #[serde(default)]
    id: Option<u64>,
    full_name: String,
    private: bool,
    clone_url: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pushed_at: Option<String>,
    /// What the token's user may do with it (`GET /repos/{o}/{r}` with a user token).
    #[serde(default)]
    permissions: Option<RepoPermissions>,
}

impl From<GitHubRepo> for ForgeRepo {
    fn from(r: GitHubRepo) -> ForgeRepo {
        ForgeRepo {
            id: r.id.map(|id| id.to_string()),
            full_name: r.full_name,
            private: r.private,
            clone_url: r.clone_url,
            description: r.description,
            pushed_at: r.pushed_at,
            admin: r.permissions.is_some_and(|p| p.admin),
        }
    }
}

/// A user's permissions on a repository (the one used).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
struct RepoPermissions {
    /// May administer it (and so register webhooks).
    #[serde(default)]
    admin: bool,
}

/// A repository webhook as `GET /repos/{o}/{r}/hooks` lists it (the fields used).
#[derive(Debug, Clone, Deserialize)]
struct Hook {
    id: i64,
    #[serde(default)]
    config: HookConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
}

/// The events a registered hook sends.
pub const HOOK_EVENTS: &[&str] = &["push", "create", "delete", "repository"];

/// The refresh grant's body.
#[derive(serde::Serialize)]
struct RefreshBody<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    grant_type: &'static str,
    refresh_token: &'a str,
}

/// Clients for GitHub's two sides, built once (TLS roots are loaded when built).
#[derive(Clone)]
pub struct GitHubClient {
    web: Octocrab,
    api: Octocrab,
    client_id: octocrab::secrecy::SecretString,
    client_secret: octocrab::secrecy::SecretString,
    callback_url: String,
    web_url: String,
    host: String,
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GitHubClient")
    }
}

fn client(base: &str, json: bool, timeout: std::time::Duration) -> Result<Octocrab, String> {
    let mut builder = Octocrab::builder()
        .base_uri(base)
        .map_err(|e| format!("{base:?} is not a usable base URL: {e}"))?
        .set_connect_timeout(Some(super::provider::CONNECT_TIMEOUT.min(timeout)))
        .set_read_timeout(Some(timeout))
        .set_write_timeout(Some(timeout));
    if json {
        // The web side answers the token endpoint as a form unless JSON is asked for.
        builder = builder.add_header(reqwest::header::ACCEPT, "application/json".to_string());
    }
    builder
        .build()
        .map_err(|e| format!("the GitHub client could not be built: {e}"))
}

/// Sorts an octocrab failure: 401/403 refused, 404 passed through as `None` by callers that
/// expect it, timeouts and connection errors unreachable, the rest upstream. Never the token.
fn classify(e: &octocrab::Error) -> ForgeError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            if matches!(status, 401 | 403) {
                ForgeError::Refused(format!("{status} {}", source.message))
            } else {
                ForgeError::Upstream(format!("{status} {}", source.message))
            }
        }
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => {
            ForgeError::Unreachable(e.to_string())
        }
        octocrab::Error::Json { .. } | octocrab::Error::Serde { .. } => {
            ForgeError::Upstream("a body that does not parse".into())
        }
        other => ForgeError::Unreachable(other.to_string()),
    }
}

fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// Sends an octocrab request and answers its status and body (`?` on transport failures).
macro_rules! read {
    ($crab:expr, $request:expr) => {{
        let response = $request.await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let body = $crab
            .body_to_string(response)
            .await
            .map_err(|e| classify(&e))?;
        (status, body)
    }};
}

impl GitHubClient {
    /// Clients for the configured web side and API.
    pub fn new(auth: &ForgeSettings) -> Result<GitHubClient, String> {
        Ok(GitHubClient {
            web: client(&auth.web_url, true, auth.timeout)?,
            api: client(&auth.api_url, false, auth.timeout)?,
            client_id: auth.client_id.clone().into(),
            client_secret: auth.client_secret.as_str().to_string().into(),
            callback_url: auth.callback_url.clone(),
            web_url: auth.web_url.clone(),
            host: host_of(&auth.web_url)?,
        })
    }

    async fn token_call<B: serde::Serialize + ?Sized>(
        &self,
        body: &B,
    ) -> Result<Grant, ForgeError> {
        // GitHub answers a refused grant with 200 and an `error`.
        let answer: TokenAnswer = self
            .web
            .post("/login/oauth/access_token", Some(body))
            .await
            .map_err(|e| classify(&e))?;
        answer.into_grant()
    }

    fn as_user(&self, token: &str) -> Result<Octocrab, ForgeError> {
        self.api
            .user_access_token(token.to_string())
            .map_err(|e| classify(&e))
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<Grant, ForgeError> {
        // octocrab's builder is the request body (client id and secret, code, redirect URI,
        // verifier); the answer is read here so GitHub's `error` answers keep their reason.
        let body = octocrab::auth::ExchangeWebFlowCodeBuilder::new(
            &self.web,
            &self.client_id,
            &self.client_secret,
            code,
        )
        .redirect_uri(&self.callback_url)
        .code_verifier(verifier);
        self.token_call(&body).await
    }

    async fn renew(&self, refresh_token: &str) -> Result<Grant, ForgeError> {
        use octocrab::secrecy::ExposeSecret as _;
        self.token_call(&RefreshBody {
            client_id: self.client_id.expose_secret(),
            client_secret: self.client_secret.expose_secret(),
            grant_type: "refresh_token",
            refresh_token,
        })
        .await
    }

    async fn who(&self, token: &str) -> Result<ForgeUser, ForgeError> {
        let u: GitHubUser = self
            .as_user(token)?
            .get("/user", None::<&()>)
            .await
            .map_err(|e| classify(&e))?;
        Ok(ForgeUser {
            id: u.id.to_string(),
            login: u.login,
            name: u.name,
            email: u.email,
            avatar_url: u.avatar_url,
        })
    }

    async fn read_repo(&self, token: &str, path: &str) -> Result<Option<ForgeRepo>, ForgeError> {
        let path = format!("/repos/{}", two_segments(path)?);
        match self
            .as_user(token)?
            .get::<GitHubRepo, _, _>(path, None::<&()>)
            .await
        {
            Ok(r) => Ok(Some(r.into())),
            // GitHub's answer for "no access" too.
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn add_hook(
        &self,
        token: &str,
        path: &str,
        url: &str,
        secret: &str,
    ) -> Result<String, ForgeError> {
        let crab = self.as_user(token)?;
        let base = format!("/repos/{}/hooks", two_segments(path)?);
        let config = serde_json::json!({
            "url": url,
            "content_type": "json",
            "secret": secret,
            "insecure_ssl": "0",
        });
        let body = serde_json::json!({
            "name": "web",
            "active": true,
            "events": HOOK_EVENTS,
            "config": config,
        });
        let (status, text) = read!(crab, crab._post(base.as_str(), Some(&body)));
        match status {
            200 | 201 => {
                #[derive(Deserialize)]
                struct Created {
                    id: i64,
                }
                serde_json::from_str::<Created>(&text)
                    .map(|c| c.id.to_string())
                    .map_err(|_| ForgeError::Upstream("a hook that does not parse".into()))
            }
            // "Hook already exists on this repository": take it over.
            422 => {
                let (status, text) = read!(crab, crab._get(base.as_str()));
                if status != 200 {
                    return Err(ForgeError::Upstream(format!("{status} listing hooks")));
                }
                let hooks: Vec<Hook> = serde_json::from_str(&text)
                    .map_err(|_| ForgeError::Upstream("a hook list that does not parse".into()))?;
                let Some(hook) = hooks.iter().find(|h| h.config.url.as_deref() == Some(url)) else {
                    return Err(ForgeError::Upstream("422 creating the hook".into()));
                };
                let path = format!("{base}/{}/config", hook.id);
                let (status, _) = read!(crab, crab._patch(path.as_str(), Some(&config)));
                match status {
                    200 => Ok(hook.id.to_string()),
                    401 | 403 => Err(ForgeError::Refused(status.to_string())),
                    other => Err(ForgeError::Upstream(format!("{other} updating the hook"))),
                }
            }
            401 | 403 => Err(ForgeError::Refused(status.to_string())),
            other => Err(ForgeError::Upstream(format!("{other} creating the hook"))),
        }
    }

    async fn remove_hook(&self, token: &str, path: &str, id: &str) -> Result<(), ForgeError> {
        let id: i64 = id
            .parse()
            .map_err(|_| ForgeError::Upstream(format!("{id:?} is not a GitHub hook id")))?;
        let crab = self.as_user(token)?;
        let path = format!("/repos/{}/hooks/{id}", two_segments(path)?);
        let (status, _) = read!(crab, crab._delete(path.as_str(), None::<&()>));
        match status {
            204 | 404 => Ok(()),
            401 | 403 => Err(ForgeError::Refused(status.to_string())),
            other => Err(ForgeError::Upstream(format!("{other} deleting the hook"))),
        }
    }

    async fn list_repos(
        &self,
        token: &str,
        page: u32,
        per_page: u8,
    ) -> Result<(Vec<ForgeRepo>, bool), ForgeError> {
        let crab = self.as_user(token)?;
        let (per_page, page) = (per_page.clamp(1, 100).to_string(), page.max(1).to_string());
        let response = crab
            ._get(
                format!(
                    "/user/repos?{}",
                    query(&[("sort", "pushed"), ("per_page", &per_page), ("page", &page)])
                )
                .as_str(),
            )
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let more = response
            .headers()
            .get("Link")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.contains("rel=\"next\""));
        let body = crab
            .body_to_string(response)
            .await
            .map_err(|e| classify(&e))?;
        match status {
            200 => serde_json::from_str::<Vec<GitHubRepo>>(&body)
                .map(|repos| (repos.into_iter().map(ForgeRepo::from).collect(), more))
                .map_err(|_| ForgeError::Upstream("a repository list that does not parse".into())),
            401 | 403 => Err(ForgeError::Refused(status.to_string())),
            other => Err(ForgeError::Upstream(other.to_string())),
        }
    }
}

impl Provider for GitHubClient {
    fn kind(&self) -> &'static str {
        "github"
    }

    fn name(&self) -> &'static str {
        "GitHub"
    }

    fn host(&self) -> &str {
        &self.host
    }

    /// GitHub's authorize URL: state, S256 challenge, the callback; the `repo` scope only when
    /// the user asked to include private repositories, which classic OAuth Apps need and GitHub
    /// Apps ignore.
    fn authorize_url(
        &self,
        state: &str,
        challenge: &str,
        wanted: Wanted,
    ) -> Result<String, String> {
        use octocrab::secrecy::ExposeSecret as _;
        let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", self.web_url))
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id.expose_secret())
            .append_pair("redirect_uri", &self.callback_url)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "true");
        if wanted.private {
            url.query_pairs_mut().append_pair("scope", "repo");
        }
        Ok(url.to_string())
    }

    crate::provider::forge_calls!();

    fn git_username(&self) -> &'static str {
        "x-access-token"
    }

    /// A GitHub App's token cannot manage hooks, and its app-level hook covers the repository.
    fn registers_hooks(&self, token_kind: &str, _scopes: &str) -> bool {
        token_kind == "oauth"
    }
}

/// `owner/name`, each a plain name.
fn two_segments(path: &str) -> Result<&str, ForgeError> {
    let path = checked_path(path)?;
    if path.split('/').count() == 2 {
        Ok(path)
    } else {
        Err(ForgeError::Upstream(format!(
            "{path:?} is not a GitHub owner/name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::two_segments;

    #[test]
    fn only_owner_and_name_reach_the_path() {
        assert_eq!(
            two_segments("rust-lang/cargo").ok(),
            Some("rust-lang/cargo")
        );
        for bad in ["cargo", "a/b/c", "a/..", "a/b?c", "a%2fb/c"] {
            assert!(two_segments(bad).is_err(), "{bad:?}");
        }
    }
}
