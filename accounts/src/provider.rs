//! What GitVista asks of a forge, whichever it is: the sign-in's web flow (authorize URL, code
//! exchange, refresh), who a token belongs to, whether it can read one repository (each forge's
//! own "no": GitHub and GitLab answer 404, Bitbucket 403 or 404), the user's repositories a page
//! at a time, webhooks on one repository, and the user name git presents the token with.
//!
//! [`Provider`] is that contract; `github.rs`, `gitlab.rs` and `bitbucket.rs` are its
//! implementations, and adding a forge is adding one more (plus its settings' names in
//! `settings.rs`). Nothing outside this module and those three knows a forge's endpoints.
//!
//! Tokens go in and out as [`Zeroizing`] strings and never appear in an error: every failure is
//! a [`ForgeError`] that names what was asked, not with what.

use std::time::Duration;

use futures_util::future::BoxFuture;
use zeroize::Zeroizing;

/// A forge call's answer.
pub type Call<'a, T> = BoxFuture<'a, Result<T, ForgeError>>;

/// The calls every forge makes, in an `impl Provider` block: each boxes the forge's inherent
/// async method of the same shape (`exchange(code, verifier)`, `renew`, `who`, `read_repo`,
/// `list_repos`, `add_hook`, `remove_hook`), so a forge writes only what differs.
macro_rules! forge_calls {
    () => {
        fn exchange_code<'a>(
            &'a self,
            code: &'a str,
            verifier: &'a str,
        ) -> $crate::provider::Call<'a, $crate::provider::Grant> {
            Box::pin(self.exchange(code, verifier))
        }

        fn refresh<'a>(
            &'a self,
            refresh_token: &'a str,
        ) -> $crate::provider::Call<'a, $crate::provider::Grant> {
            Box::pin(self.renew(refresh_token))
        }

        fn user<'a>(
            &'a self,
            token: &'a str,
        ) -> $crate::provider::Call<'a, $crate::provider::ForgeUser> {
            Box::pin(self.who(token))
        }

        fn repo<'a>(
            &'a self,
            token: &'a str,
            path: &'a str,
        ) -> $crate::provider::Call<'a, Option<$crate::provider::ForgeRepo>> {
            Box::pin(self.read_repo(token, path))
        }

        fn user_repos<'a>(
            &'a self,
            token: &'a str,
            page: u32,
            per_page: u8,
        ) -> $crate::provider::Call<'a, (Vec<$crate::provider::ForgeRepo>, bool)> {
            Box::pin(self.list_repos(token, page, per_page))
        }

        fn create_hook<'a>(
            &'a self,
            token: &'a str,
            path: &'a str,
            url: &'a str,
            secret: &'a str,
        ) -> $crate::provider::Call<'a, String> {
            Box::pin(self.add_hook(token, path, url, secret))
        }

        fn delete_hook<'a>(
            &'a self,
            token: &'a str,
            path: &'a str,
            id: &'a str,
        ) -> $crate::provider::Call<'a, ()> {
            Box::pin(self.remove_hook(token, path, id))
        }
    };
}
pub(crate) use forge_calls;

/// How long a call to a forge may take to connect (answering: the settings' timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a forge call failed. Carries no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// The token (or code, or refresh token) was refused: 401, or an OAuth `error` answer.
    #[error("the forge refused the credentials: {0}")]
    Refused(String),
    /// The forge answered something else than expected (5xx, a body that does not parse).
    #[error("the forge answered {0}")]
    Upstream(String),
    /// The forge could not be reached in time.
    #[error("the forge could not be reached: {0}")]
    Unreachable(String),
}

/// What a code exchange or a refresh gives.
pub struct Grant {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// The refresh token, when the forge's tokens expire.
    pub refresh_token: Option<Zeroizing<String>>,
    /// Seconds until the access token expires (GitHub App user tokens 8 hours, GitLab and
    /// Bitbucket 2 hours).
    pub expires_in: Option<i64>,
    /// Seconds until the refresh token expires, when the forge says.
    pub refresh_expires_in: Option<i64>,
    /// The scopes granted, space-separated.
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

/// The account a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeUser {
    /// The forge's stable id (survives renames): a number on GitHub and GitLab, a uuid on
    /// Bitbucket.
    pub id: String,
    /// Login (username, nickname).
    pub login: String,
    /// Display name.
    pub name: Option<String>,
    /// Public email.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
}

/// A repository as a forge describes it to a user who can read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForgeRepo {
    /// The forge's own id of the repository (GitHub's and GitLab's number, Bitbucket's uuid):
    /// it survives renames and transfers, and a new repository made at an old name has
    /// another.
    #[serde(skip)]
    pub id: Option<String>,
    /// `owner/name` (GitLab: every group).
    pub full_name: String,
    /// Private (or internal): only some users may read it.
    pub private: bool,
    /// The https clone URL.
    pub clone_url: String,
    /// A description, if any.
    pub description: Option<String>,
    /// When it last changed, as the forge writes it.
    pub pushed_at: Option<String>,
    /// Whether the token's user may manage its webhooks.
    #[serde(skip)]
    pub admin: bool,
}

/// What a sign-in asks the forge for beyond reading the user's profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Read the user's private repositories.
    pub private: bool,
    /// Register webhooks on repositories they administer.
    pub hooks: bool,
}

/// One forge, configured.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// `github`, `gitlab` or `bitbucket`: in routes (`/auth/{kind}/login`) and rows.
    fn kind(&self) -> &'static str;
    /// The forge's name for people: "GitHub".
    fn name(&self) -> &'static str;
    /// `host[:port]` of the forge's web side, lowercased: a repository whose URL is on it is
    /// this forge's.
    fn host(&self) -> &str;
    /// The authorize URL to send the browser to, with `state`, the PKCE S256 `challenge` (where
    /// the forge takes one) and the scopes `wanted` needs.
    fn authorize_url(&self, state: &str, challenge: &str, wanted: Wanted)
    -> Result<String, String>;
    /// Trades the callback's `code` (with the PKCE verifier) for a grant.
    fn exchange_code<'a>(&'a self, code: &'a str, verifier: &'a str) -> Call<'a, Grant>;
    /// Trades a refresh token for a new grant (the old refresh token stops working).
    fn refresh<'a>(&'a self, refresh_token: &'a str) -> Call<'a, Grant>;
    /// Who `token` belongs to.
    fn user<'a>(&'a self, token: &'a str) -> Call<'a, ForgeUser>;
    /// Whether `token` can read the repository at `path` (from [`Provider::repo_path`]): the
    /// repository, or `None` for the forge's "not found or not yours".
    fn repo<'a>(&'a self, token: &'a str, path: &'a str) -> Call<'a, Option<ForgeRepo>>;
    /// One page (1-based) of the repositories the token's user belongs to, most recently
    /// changed first, and whether more follow.
    fn user_repos<'a>(
        &'a self,
        token: &'a str,
        page: u32,
        per_page: u8,
    ) -> Call<'a, (Vec<ForgeRepo>, bool)>;
    /// Registers a push webhook on `path` delivering to `url` with `secret`; answers its id. A
    /// hook to the same URL already there is taken over.
    fn create_hook<'a>(
        &'a self,
        token: &'a str,
        path: &'a str,
        url: &'a str,
        secret: &'a str,
    ) -> Call<'a, String>;
    /// Removes webhook `id` from `path` (one already gone counts as removed).
    fn delete_hook<'a>(&'a self, token: &'a str, path: &'a str, id: &'a str) -> Call<'a, ()>;
    /// The user name git presents the token with over HTTP Basic (the token is the password).
    fn git_username(&self) -> &'static str;
    /// Whether a connection with `token_kind` and `scopes` may register webhooks (GitHub: an
    /// OAuth App's token, an App has its own hook; GitLab: the `api` scope; Bitbucket:
    /// `webhook`).
    fn registers_hooks(&self, token_kind: &str, scopes: &str) -> bool;
    /// How many path segments a repository has here: GitHub and Bitbucket exactly two, GitLab
    /// two or more (nested groups).
    fn nested_groups(&self) -> bool {
        false
    }
    /// The repository's path on this forge (`owner/name`; GitLab `group/sub/project`) from its
    /// canonical URL, if the URL is on this forge's host and every segment is a plain name.
    fn repo_path(&self, canonical_url: &str) -> Option<String> {
        let url = url::Url::parse(canonical_url).ok()?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return None,
        };
        if !host.eq_ignore_ascii_case(self.host()) {
            return None;
        }
        let mut segs: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        if let Some(last) = segs.last_mut() {
            *last = last.strip_suffix(".git").unwrap_or(last);
        }
        let count_ok = if self.nested_groups() {
            (2..=20).contains(&segs.len())
        } else {
            segs.len() == 2
        };
        (count_ok && segs.iter().all(|s| plain_name(s))).then(|| segs.join("/"))
    }
}

/// A name segment as forges allow them (letters, digits, `-`, `_`, `.`), so nothing a user
/// typed can change the path asked for.
pub fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `path` checked segment by segment ([`plain_name`]), or an error naming it.
pub fn checked_path(path: &str) -> Result<&str, ForgeError> {
    if path.split('/').all(plain_name) {
        Ok(path)
    } else {
        Err(ForgeError::Upstream(format!(
            "{path:?} is not a repository path"
        )))
    }
}

/// The error code for "forge `kind` could not be reached": `github_unavailable`, ...
pub fn unavailable_code(kind: &str) -> &'static str {
    match kind {
        "github" => "github_unavailable",
        "gitlab" => "gitlab_unavailable",
        "bitbucket" => "bitbucket_unavailable",
        _ => "forge_unavailable",
    }
}

/// `host[:port]` of `url`, lowercased.
pub fn host_of(url: &str) -> Result<String, String> {
    let web = url::Url::parse(url).map_err(|e| e.to_string())?;
    match (web.host_str(), web.port()) {
        (Some(h), Some(p)) => Ok(format!("{}:{p}", h.to_ascii_lowercase())),
        (Some(h), None) => Ok(h.to_ascii_lowercase()),
        (None, _) => Err(format!("{url:?} has no host")),
    }
}

/// A small JSON client for the forges without a crate of their own (GitLab, Bitbucket): bearer
/// token, timeouts, and failures sorted into [`ForgeError`] without the token.
#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    /// The forge's name, in errors.
    name: &'static str,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rest({})", self.name)
    }
}

/// An answer: status, the headers read, the body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes (at most [`Rest::MAX_BODY`]).
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T`, or an upstream error naming `what`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ForgeError> {
        serde_json::from_slice(&self.body)
            .map_err(|_| ForgeError::Upstream(format!("{what} that does not parse")))
    }

    /// 401 and 403 as refused, anything else as upstream, naming `what` was asked.
    pub fn failed(&self, what: &str) -> ForgeError {
        match self.status {
            401 | 403 => ForgeError::Refused(format!("{} {what}", self.status)),
            s => ForgeError::Upstream(format!("{s} {what}")),
        }
    }
}

impl Rest {
    /// The most a forge's answer may hold.
    pub const MAX_BODY: usize = 8 << 20;

    /// A client with `timeout` per call.
    pub fn new(name: &'static str, timeout: Duration) -> Result<Rest, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("GitVista/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the {name} client could not be built: {e}"))?;
        Ok(Rest { client, name })
    }

    /// A request to `url`.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Sends `req` and reads the answer (bounded); transport failures are unreachable.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, ForgeError> {
        let mut resp = req.send().await.map_err(|e| {
            // reqwest's error names the URL, never a header: no token in it.
            ForgeError::Unreachable(format!("{}: {}", self.name, e.without_url()))
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ForgeError::Unreachable(format!("{}: {}", self.name, e.without_url())))?
        {
            if body.len() + chunk.len() > Self::MAX_BODY {
                return Err(ForgeError::Upstream(format!(
                    "{}: an answer over {} bytes",
                    self.name,
                    Self::MAX_BODY
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// `GET url` with `token` as bearer.
    pub async fn get(&self, url: &str, token: &str) -> Result<Answer, ForgeError> {
        self.send(self.request(reqwest::Method::GET, url).bearer_auth(token))
            .await
    }
}

/// An OAuth 2 token endpoint's answer (RFC 6749 section 5): a grant, or an `error`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub enum TokenAnswer {
    /// Granted.
    Granted {
        /// Access token.
        access_token: String,
        /// Scopes (GitHub: comma-separated in `scope`; Bitbucket: `scopes`).
        #[serde(default, alias = "scopes")]
        scope: String,
        /// Seconds left.
        expires_in: Option<i64>,
        /// Refresh token.
        refresh_token: Option<String>,
        /// Seconds the refresh token has left (GitHub).
        refresh_token_expires_in: Option<i64>,
    },
    /// Refused.
    Refused {
        /// The OAuth error code.
        error: String,
        /// What it means.
        #[serde(default)]
        error_description: Option<String>,
    },
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAnswer(..)")
    }
}

impl TokenAnswer {
    /// The grant, or the refusal's reason.
    pub fn into_grant(self) -> Result<Grant, ForgeError> {
        match self {
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
                scope: scope.replace(',', " "),
            }),
            TokenAnswer::Refused {
                error,
                error_description,
            } => Err(ForgeError::Refused(match error_description {
                Some(d) => format!("{error}: {d}"),
                None => error,
            })),
        }
    }

    /// Reads a token endpoint's answer: 200 with a grant or an error, or 400/401 with an
    /// OAuth error (GitLab and Bitbucket answer refusals so).
    pub fn read(answer: &Answer) -> Result<Grant, ForgeError> {
        match answer.status {
            200 | 400 | 401 => match serde_json::from_slice::<TokenAnswer>(&answer.body) {
                Ok(t) => t.into_grant(),
                Err(_) if answer.status == 200 => Err(ForgeError::Upstream(
                    "a token answer that does not parse".into(),
                )),
                Err(_) => Err(answer.failed("exchanging the grant")),
            },
            _ => Err(answer.failed("exchanging the grant")),
        }
    }
}

/// `k=v&...` with the values percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().copied())
        .finish()
}

/// The forge settings every provider is built from.
#[derive(Clone)]
pub struct ForgeSettings {
    /// `github`, `gitlab` or `bitbucket`.
    pub kind: &'static str,
    /// The OAuth client's id.
    pub client_id: String,
    /// The OAuth client's secret.
    pub client_secret: std::sync::Arc<Zeroizing<String>>,
    /// The web side (authorize, token exchange).
    pub web_url: String,
    /// The REST API.
    pub api_url: String,
    /// `<GITVISTA_PUBLIC_URL>/auth/<kind>/callback`.
    pub callback_url: String,
    /// How long a call may take to answer.
    pub timeout: Duration,
}

impl std::fmt::Debug for ForgeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeSettings")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("web_url", &self.web_url)
            .field("api_url", &self.api_url)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_reach_a_path() {
        for ok in ["rust-lang", "cargo", "a.b_c-d", "x"] {
            assert!(plain_name(ok), "{ok:?}");
        }
        for bad in ["", ".", "..", "a/b", "a?b", "a%2fb", "a b", "ü"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
        assert!(checked_path("group/sub/project").is_ok());
        assert!(checked_path("group/../project").is_err());
        assert!(checked_path("group//project").is_err());
    }

    #[test]
    fn token_answers_of_every_forge_read_the_same() {
        let answer = |status, body: &str| Answer {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        };
        let g = TokenAnswer::read(&answer(
            200,
            r#"{"access_token":"a","token_type":"bearer","expires_in":7200,"refresh_token":"r","scope":"read_user read_repository","created_at":1}"#,
        ))
        .expect("gitlab");
        assert_eq!(g.expires_in, Some(7200));
        assert_eq!(g.scope, "read_user read_repository");
        let g = TokenAnswer::read(&answer(
            200,
            r#"{"access_token":"a","scopes":"repository webhook","expires_in":7200,"refresh_token":"r","token_type":"bearer"}"#,
        ))
        .expect("bitbucket");
        assert_eq!(g.scope, "repository webhook");
        let g = TokenAnswer::read(&answer(200, r#"{"access_token":"a","scope":"repo,user"}"#))
            .expect("github");
        assert_eq!(g.scope, "repo user");
        assert!(matches!(
            TokenAnswer::read(&answer(400, r#"{"error":"invalid_grant"}"#)),
            Err(ForgeError::Refused(_))
        ));
        assert!(matches!(
            TokenAnswer::read(&answer(200, r#"{"error":"bad_verification_code"}"#)),
            Err(ForgeError::Refused(_))
        ));
        assert!(matches!(
            TokenAnswer::read(&answer(502, "bad gateway")),
            Err(ForgeError::Upstream(_))
        ));
    }
}
