//! The GitHub calls accounts make, through octocrab: the web flow's code exchange and token
//! refresh (`POST /login/oauth/access_token` on the web side), the signed-in user (`GET /user`),
//! their repositories (`GET /user/repos`), and whether a token can read one repository
//! (`GET /repos/{owner}/{repo}`). Both sides' addresses come from the settings, so GitHub
//! Enterprise and the test fake work the same.
//!
//! Tokens go in and out as [`Zeroizing`] strings and never appear in an error: every failure is
//! a [`GitHubError`] that names what was asked, not with what.

use std::time::Duration;

use octocrab::Octocrab;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::settings::GitHubAuth;

/// How long a call to GitHub may take to connect (answering: the settings' timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a GitHub call failed. Carries no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// The token (or code, or refresh token) was refused: 401, or an OAuth `error` answer.
    #[error("GitHub refused the credentials: {0}")]
    Refused(String),
    /// GitHub answered something else than expected (5xx, a body that does not parse).
    #[error("GitHub answered {0}")]
    Upstream(String),
    /// GitHub could not be reached in time.
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
}

/// What a code exchange or a refresh gives.
pub struct Grant {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// The refresh token (GitHub App user tokens).
    pub refresh_token: Option<Zeroizing<String>>,
    /// Seconds until the access token expires (GitHub App user tokens: 8 hours).
    pub expires_in: Option<i64>,
    /// Seconds until the refresh token expires (6 months).
    pub refresh_expires_in: Option<i64>,
    /// The scopes granted (OAuth Apps), comma-separated.
    pub scope: String,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The signed-in user, as `GET /user` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct GitHubUser {
    /// GitHub's numeric id.
    pub id: i64,
    /// Login.
    pub login: String,
    /// Display name.
    pub name: Option<String>,
    /// Public email.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
}

/// A repository as `GET /repos/{o}/{r}` and `GET /user/repos` answer (the fields used).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct GitHubRepo {
    /// `owner/name`.
    pub full_name: String,
    /// Private (or internal).
    pub private: bool,
    /// The https clone URL.
    pub clone_url: String,
    /// A description, if any.
    #[serde(default)]
    pub description: Option<String>,
    /// When it was last pushed to.
    #[serde(default)]
    pub pushed_at: Option<String>,
    /// What the token's user may do with it (`GET /repos/{o}/{r}` with a user token).
    #[serde(default, skip_serializing)]
    pub permissions: Option<RepoPermissions>,
}

/// A user's permissions on a repository (the one used).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct RepoPermissions {
    /// May administer it (and so register webhooks).
    #[serde(default)]
    pub admin: bool,
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

/// The token endpoint's answer: a grant, or GitHub's `200 {"error": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenAnswer {
    Granted {
        access_token: String,
        #[serde(default)]
        scope: String,
        expires_in: Option<i64>,
        refresh_token: Option<String>,
        refresh_token_expires_in: Option<i64>,
    },
    Refused {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    },
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAnswer(..)")
    }
}

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
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GitHubClient")
    }
}

fn client(base: &str, json: bool, timeout: Duration) -> Result<Octocrab, String> {
    let mut builder = Octocrab::builder()
        .base_uri(base)
        .map_err(|e| format!("{base:?} is not a usable base URL: {e}"))?
        .set_connect_timeout(Some(CONNECT_TIMEOUT.min(timeout)))
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
fn classify(e: &octocrab::Error) -> GitHubError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            if matches!(status, 401 | 403) {
                GitHubError::Refused(format!("{status} {}", source.message))
            } else {
                GitHubError::Upstream(format!("{status} {}", source.message))
            }
        }
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => {
            GitHubError::Unreachable(e.to_string())
        }
        octocrab::Error::Json { .. } | octocrab::Error::Serde { .. } => {
            GitHubError::Upstream("a body that does not parse".into())
        }
        other => GitHubError::Unreachable(other.to_string()),
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
    pub fn new(auth: &GitHubAuth) -> Result<GitHubClient, String> {
        Ok(GitHubClient {
            web: client(&auth.web_url, true, auth.timeout)?,
            api: client(&auth.api_url, false, auth.timeout)?,
            client_id: auth.client_id.clone().into(),
            client_secret: auth.client_secret().to_string().into(),
            callback_url: auth.callback_url.clone(),
        })
    }

    async fn token_call<B: serde::Serialize + ?Sized>(
        &self,
        body: &B,
    ) -> Result<Grant, GitHubError> {
        let answer: TokenAnswer = self
            .web
            .post("/login/oauth/access_token", Some(body))
            .await
            .map_err(|e| classify(&e))?;
        match answer {
            TokenAnswer::Granted {
                access_token,
                scope,
                expires_in,
                refresh_token,
                refresh_token_expires_in,
            } => Ok(Grant {
                access_token: Zeroizing::new(access_token),
                refresh_token: refresh_token.map(Zeroizing::new),
                expires_in,
                refresh_expires_in: refresh_token_expires_in,
                scope,
            }),
            TokenAnswer::Refused {
                error,
                error_description,
            } => Err(GitHubError::Refused(match error_description {
                Some(d) => format!("{error}: {d}"),
                None => error,
            })),
        }
    }

    /// Trades the callback's `code` (with the PKCE verifier) for a grant.
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<Grant, GitHubError> {
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

    /// Trades a refresh token for a new grant (the old refresh token stops working).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Grant, GitHubError> {
        use octocrab::secrecy::ExposeSecret as _;
        self.token_call(&RefreshBody {
            client_id: self.client_id.expose_secret(),
            client_secret: self.client_secret.expose_secret(),
            grant_type: "refresh_token",
            refresh_token,
        })
        .await
    }

    fn as_user(&self, token: &str) -> Result<Octocrab, GitHubError> {
        self.api
            .user_access_token(token.to_string())
            .map_err(|e| classify(&e))
    }

    /// Who `token` belongs to.
    pub async fn user(&self, token: &str) -> Result<GitHubUser, GitHubError> {
        self.as_user(token)?
            .get("/user", None::<&()>)
            .await
            .map_err(|e| classify(&e))
    }

    /// Whether `token` can read `owner/name`: the repository, or `None` when GitHub says it does
    /// not exist for this token (GitHub's answer for "no access").
    pub async fn repo(
        &self,
        token: &str,
        owner: &str,
        name: &str,
    ) -> Result<Option<GitHubRepo>, GitHubError> {
        let path = format!("/repos/{}/{}", segment(owner)?, segment(name)?);
        match self.as_user(token)?.get(path, None::<&()>).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(&e)),
        }
    }

    /// Registers a webhook on `owner/name` delivering [`HOOK_EVENTS`] to `url`, signed with
    /// `secret`, with `token` (its user must administer the repository); answers the hook's
    /// id. A hook to the same URL already there (registered before, its row lost) is taken
    /// over: its secret is set to `secret`.
    pub async fn create_hook(
        &self,
        token: &str,
        owner: &str,
        name: &str,
        url: &str,
        secret: &str,
    ) -> Result<i64, GitHubError> {
        let crab = self.as_user(token)?;
        let base = format!("/repos/{}/{}/hooks", segment(owner)?, segment(name)?);
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
                    .map(|c| c.id)
                    .map_err(|_| GitHubError::Upstream("a hook that does not parse".into()))
            }
            // "Hook already exists on this repository": take it over.
            422 => {
                let (status, text) = read!(crab, crab._get(base.as_str()));
                if status != 200 {
                    return Err(GitHubError::Upstream(format!("{status} listing hooks")));
                }
                let hooks: Vec<Hook> = serde_json::from_str(&text)
                    .map_err(|_| GitHubError::Upstream("a hook list that does not parse".into()))?;
                let Some(hook) = hooks.iter().find(|h| h.config.url.as_deref() == Some(url)) else {
                    return Err(GitHubError::Upstream("422 creating the hook".into()));
                };
                let path = format!("{base}/{}/config", hook.id);
                let (status, _) = read!(crab, crab._patch(path.as_str(), Some(&config)));
                match status {
                    200 => Ok(hook.id),
                    401 | 403 => Err(GitHubError::Refused(status.to_string())),
                    other => Err(GitHubError::Upstream(format!("{other} updating the hook"))),
                }
            }
            401 | 403 => Err(GitHubError::Refused(status.to_string())),
            other => Err(GitHubError::Upstream(format!("{other} creating the hook"))),
        }
    }

    /// Removes webhook `id` from `owner/name` (one already gone counts as removed).
    pub async fn delete_hook(
        &self,
        token: &str,
        owner: &str,
        name: &str,
        id: i64,
    ) -> Result<(), GitHubError> {
        let crab = self.as_user(token)?;
        let path = format!("/repos/{}/{}/hooks/{id}", segment(owner)?, segment(name)?);
        let (status, _) = read!(crab, crab._delete(path.as_str(), None::<&()>));
        match status {
            204 | 404 => Ok(()),
            401 | 403 => Err(GitHubError::Refused(status.to_string())),
            other => Err(GitHubError::Upstream(format!("{other} deleting the hook"))),
        }
    }

    /// One page of the user's repositories (most recently pushed first) and whether more follow.
    pub async fn user_repos(
        &self,
        token: &str,
        page: u32,
        per_page: u8,
    ) -> Result<(Vec<GitHubRepo>, bool), GitHubError> {
        let crab = self.as_user(token)?;
        let response = crab
            ._get(
                format!(
                    "/user/repos?{}",
                    serde_urlencoded_pairs(&[
                        ("sort", "pushed".to_string()),
                        ("per_page", per_page.clamp(1, 100).to_string()),
                        ("page", page.max(1).to_string()),
                    ])
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
            200 => serde_json::from_str(&body)
                .map(|repos| (repos, more))
                .map_err(|_| GitHubError::Upstream("a repository list that does not parse".into())),
            401 | 403 => Err(GitHubError::Refused(status.to_string())),
            other => Err(GitHubError::Upstream(other.to_string())),
        }
    }
}

/// `k=v&...` with the values percent-encoded.
fn serde_urlencoded_pairs(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// An owner or repository name as GitHub allows them (letters, digits, `-`, `_`, `.`), so
/// nothing a user typed can change the path asked for.
fn segment(s: &str) -> Result<&str, GitHubError> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s)
    } else {
        Err(GitHubError::Upstream(format!(
            "{s:?} is not a GitHub owner or repository name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn only_plain_names_reach_the_path() {
        for ok in ["rust-lang", "cargo", "a.b_c-d", "x"] {
            assert_eq!(segment(ok).ok(), Some(ok));
        }
        for bad in ["", ".", "..", "a/b", "a?b", "a%2fb", "a b", "ü"] {
            assert!(segment(bad).is_err(), "{bad:?}");
        }
    }
}
