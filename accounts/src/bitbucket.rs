//! Bitbucket Cloud as a [`Provider`]:
//!
//! - sign-in with an OAuth consumer: `GET /site/oauth2/authorize` (scopes are the consumer's
//!   own: `account`, `repository`, and `webhook` for registering hooks; Bitbucket takes no
//!   PKCE), `POST /site/oauth2/access_token` with the consumer's key and secret as HTTP Basic,
//!   for the code and for refreshes (access tokens last 2 hours);
//! - `GET /2.0/user`, `GET /2.0/repositories/{workspace}/{repo}` (403 and 404 are "not yours"),
//!   `GET /2.0/repositories?role=member` for the picker (`next` in the page), and
//!   `GET /2.0/user/permissions/repositories` for whether the user administers one;
//! - repository hooks `/2.0/repositories/{workspace}/{repo}/hooks[/{uuid}]` for `repo:push`,
//!   signed with `X-Hub-Signature: sha256=...`;
//! - git with user name `x-token-auth` and the token as password.

use serde::Deserialize;

use super::provider::{
    ForgeError, ForgeRepo, ForgeSettings, ForgeUser, Grant, Provider, Rest, TokenAnswer, Wanted,
    checked_path, host_of, query,
};

/// Bitbucket Cloud, configured.
pub struct Bitbucket {
    settings: ForgeSettings,
    host: String,
    rest: Rest,
}

impl std::fmt::Debug for Bitbucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitbucket")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct User {
    uuid: String,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    links: Links,
}

#[derive(Deserialize, Default)]
struct Links {
    #[serde(default)]
    avatar: Option<Href>,
    #[serde(default)]
    clone: Vec<NamedHref>,
}

#[derive(Deserialize)]
struct Href {
    href: String,
}

#[derive(Deserialize)]
struct NamedHref {
    name: String,
    href: String,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    uuid: Option<String>,
    full_name: String,
    is_private: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    updated_on: Option<String>,
    #[serde(default)]
    links: Links,
}

#[derive(Deserialize)]
struct Page<T> {
    values: Vec<T>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Permission {
    permission: String,
}

#[derive(Deserialize)]
struct Hook {
    uuid: String,
    #[serde(default)]
    url: Option<String>,
}

impl Repository {
    fn into_forge(self, admin: bool) -> ForgeRepo {
        // The https clone link names a user (`https://user@bitbucket.org/...`): dropped, git
        // gets its user name from the credential.
        let clone_url = self
            .links
            .clone
            .iter()
            .find(|c| c.name == "https")
            .and_then(|c| url::Url::parse(&c.href).ok())
            .map(|mut u| {
                let _ = u.set_username("");
                u.to_string()
            })
            .unwrap_or_default();
        ForgeRepo {
            id: self.uuid,
            full_name: self.full_name,
            private: self.is_private,
            clone_url,
            description: self.description.filter(|d| !d.is_empty()),
            pushed_at: self.updated_on,
            admin,
        }
    }
}

impl Bitbucket {
    /// Bitbucket with its web side at `settings.web_url` and API at `settings.api_url`.
    pub fn new(settings: ForgeSettings) -> Result<Bitbucket, String> {
        Ok(Bitbucket {
            host: host_of(&settings.web_url)?,
            rest: Rest::new("Bitbucket", settings.timeout)?,
            settings,
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_url)
    }

    /// `workspace/repo`, each a plain name.
    fn two(path: &str) -> Result<&str, ForgeError> {
        let path = checked_path(path)?;
        if path.split('/').count() == 2 {
            Ok(path)
        } else {
            Err(ForgeError::Upstream(format!(
                "{path:?} is not a Bitbucket workspace/repository"
            )))
        }
    }

    async fn token_call(&self, fields: &[(&str, &str)]) -> Result<Grant, ForgeError> {
        let req = self
            .rest
            .request(
                reqwest::Method::POST,
                &format!("{}/site/oauth2/access_token", self.settings.web_url),
            )
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.as_str()),
            )
            .form(fields);
        TokenAnswer::read(&self.rest.send(req).await?)
    }

    async fn exchange(&self, code: &str, _verifier: &str) -> Result<Grant, ForgeError> {
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.settings.callback_url),
        ])
        .await
    }

    async fn renew(&self, refresh_token: &str) -> Result<Grant, ForgeError> {
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn who(&self, token: &str) -> Result<ForgeUser, ForgeError> {
        let a = self.rest.get(&self.api("/2.0/user"), token).await?;
        if a.status != 200 {
            return Err(a.failed("reading the user"));
        }
        let u: User = a.json("a user")?;
        let login = u
            .nickname
            .or(u.username)
            .unwrap_or_else(|| u.uuid.trim_matches(['{', '}']).to_string());
        Ok(ForgeUser {
            id: u.uuid,
            login,
            name: u.display_name,
            email: None,
            avatar_url: u.links.avatar.map(|a| a.href),
        })
    }

    async fn is_admin(&self, token: &str, path: &str) -> Result<bool, ForgeError> {
        let filter = format!("repository.full_name=\"{path}\"");
        let url = self.api(&format!(
            "/2.0/user/permissions/repositories?{}",
            query(&[("q", &filter)])
        ));
        let a = self.rest.get(&url, token).await?;
        if a.status != 200 {
            return Err(a.failed("reading permissions"));
        }
        let page: Page<Permission> = a.json("a permission list")?;
        Ok(page.values.iter().any(|p| p.permission == "admin"))
    }

    async fn read_repo(&self, token: &str, path: &str) -> Result<Option<ForgeRepo>, ForgeError> {
        let path = Self::two(path)?;
        let a = self
            .rest
            .get(&self.api(&format!("/2.0/repositories/{path}")), token)
            .await?;
        match a.status {
            200 => {
                let repo: Repository = a.json("a repository")?;
                let admin = self.is_admin(token, path).await.unwrap_or(false);
                Ok(Some(repo.into_forge(admin)))
            }
            // Bitbucket answers 403 for a private repository the token may not read, 404 for
            // one that does not exist: both "not yours". A token it refuses outright is 401.
            403 | 404 => Ok(None),
            _ => Err(a.failed("reading the repository")),
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
            "/2.0/repositories?{}",
            query(&[
                ("role", "member"),
                ("sort", "-updated_on"),
                ("pagelen", &per_page),
                ("page", &page),
            ])
        ));
        let a = self.rest.get(&url, token).await?;
        if a.status != 200 {
            return Err(a.failed("listing repositories"));
        }
        let page: Page<Repository> = a.json("a repository list")?;
        let more = page.next.is_some();
        Ok((
            page.values
                .into_iter()
                .map(|r| r.into_forge(false))
                .collect(),
            more,
        ))
    }

    async fn add_hook(
        &self,
        token: &str,
        path: &str,
        url: &str,
        secret: &str,
    ) -> Result<String, ForgeError> {
        let base = self.api(&format!("/2.0/repositories/{}/hooks", Self::two(path)?));
        let body = serde_json::json!({
            "description": "GitVista",
            "url": url,
            "active": true,
            "secret": secret,
            "events": ["repo:push"],
        });
        // A hook to the same URL already there (registered before, its row lost) is taken over.
        let listed = self.rest.get(&base, token).await?;
        if listed.status != 200 {
            return Err(listed.failed("listing hooks"));
        }
        let hooks: Page<Hook> = listed.json("a hook list")?;
        let (method, target) = match hooks.values.iter().find(|h| h.url.as_deref() == Some(url)) {
            Some(h) => (reqwest::Method::PUT, format!("{base}/{}", h.uuid)),
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
            200 | 201 => Ok(a.json::<Hook>("a hook")?.uuid),
            _ => Err(a.failed("creating the hook")),
        }
    }

    async fn remove_hook(&self, token: &str, path: &str, id: &str) -> Result<(), ForgeError> {
        let plain = id.trim_matches(['{', '}']);
        if plain.is_empty() || !plain.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(ForgeError::Upstream(format!(
                "{id:?} is not a Bitbucket hook id"
            )));
        }
        let url = self.api(&format!(
            "/2.0/repositories/{}/hooks/%7B{plain}%7D",
            Self::two(path)?
        ));
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

impl Provider for Bitbucket {
    fn kind(&self) -> &'static str {
        "bitbucket"
    }

    fn name(&self) -> &'static str {
        "Bitbucket"
    }

    fn host(&self) -> &str {
        &self.host
    }

    /// Bitbucket's scopes are the consumer's, and it takes no PKCE: the state alone ties the
    /// callback to this browser.
    fn authorize_url(&self, state: &str, _challenge: &str, _: Wanted) -> Result<String, String> {
        let mut url = url::Url::parse(&format!("{}/site/oauth2/authorize", self.settings.web_url))
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("response_type", "code")
            .append_pair("state", state);
        Ok(url.to_string())
    }

    crate::provider::forge_calls!();

    fn git_username(&self) -> &'static str {
        "x-token-auth"
    }

    fn registers_hooks(&self, _token_kind: &str, scopes: &str) -> bool {
        scopes.split([' ', ',']).any(|s| s == "webhook")
    }
}
