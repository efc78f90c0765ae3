//! Sign-in settings, read and checked before the server starts: with `GITHUB_CLIENT_ID` unset
//! sign-in is off (its routes answer 404) and hosted mode works as without accounts; with it
//! set, every secret it needs must be there and strong enough, or the server refuses to start
//! with a sentence naming the setting (never its value).

use std::sync::Arc;

use super::cipher::{TokenCipher, parse_key};
use super::jwt::Secret;

/// GitHub sign-in, configured.
#[derive(Clone)]
pub struct GitHubAuth {
    /// `GITHUB_CLIENT_ID` (a GitHub App's or an OAuth App's).
    pub client_id: String,
    /// `GITHUB_CLIENT_SECRET`.
    client_secret: Arc<zeroize::Zeroizing<String>>,
    /// `GITVISTA_GITHUB_URL`: the web side (authorize, token exchange); `https://github.com`.
    pub web_url: String,
    /// `GITVISTA_GITHUB_API_URL`: the REST API; `https://api.github.com`.
    pub api_url: String,
    /// `<GITVISTA_PUBLIC_URL>/auth/github/callback`.
    pub callback_url: String,
    /// `GITVISTA_PUBLIC_URL` without a trailing `/` (hooks registered on GitHub point here).
    pub public_url: String,
    /// `GITVISTA_JWT_SECRET`: signs session cookies.
    pub jwt: Secret,
    /// `GITVISTA_ENCRYPTION_KEY` (and `GITVISTA_ENCRYPTION_KEY_PREVIOUS`): forge tokens at rest.
    pub cipher: Arc<TokenCipher>,
    /// `GITVISTA_GITHUB_TIMEOUT` (seconds, 10): how long a call to GitHub may take to answer.
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubAuth")
            .field("client_id", &self.client_id)
            .field("web_url", &self.web_url)
            .field("api_url", &self.api_url)
            .field("callback_url", &self.callback_url)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl GitHubAuth {
    /// The client secret, for the token exchange only.
    pub fn client_secret(&self) -> &str {
        self.client_secret.as_str()
    }

    /// Reads the settings through `get` (the environment in production): `Ok(None)` when
    /// sign-in is not configured, else every setting checked.
    pub fn from_settings(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<GitHubAuth>, String> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(client_id) = get("GITHUB_CLIENT_ID") else {
            return Ok(None);
        };
        let need = |name: &str| {
            get(name).ok_or_else(|| {
                format!("GITHUB_CLIENT_ID is set, so sign-in is on and {name} is required")
            })
        };
        let client_secret = need("GITHUB_CLIENT_SECRET")?;
        let public = need("GITVISTA_PUBLIC_URL")?;
        let base = |name: &str, default: &str| -> Result<String, String> {
            let text = get(name).unwrap_or_else(|| default.to_string());
            let url = url::Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| format!("{name} {text:?} is not an http(s) URL"))?;
            Ok(url.as_str().trim_end_matches('/').to_string())
        };
        let public = base("GITVISTA_PUBLIC_URL", &public)?;
        let jwt = Secret::new(&need("GITVISTA_JWT_SECRET")?)?;
        let key = parse_key("GITVISTA_ENCRYPTION_KEY", &need("GITVISTA_ENCRYPTION_KEY")?)
            .map_err(|e| e.to_string())?;
        let previous = get("GITVISTA_ENCRYPTION_KEY_PREVIOUS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| parse_key("GITVISTA_ENCRYPTION_KEY_PREVIOUS", k).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let previous: Vec<&[u8; 32]> = previous.iter().map(|k| &**k).collect();
        let timeout = match get("GITVISTA_GITHUB_TIMEOUT") {
            None => 10,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|t| (1..=300).contains(t))
                .ok_or_else(|| {
                    format!(
                        "GITVISTA_GITHUB_TIMEOUT {t:?} is not a number of seconds from 1 to 300"
                    )
                })?,
        };
        Ok(Some(GitHubAuth {
            client_id,
            client_secret: Arc::new(zeroize::Zeroizing::new(client_secret)),
            web_url: base("GITVISTA_GITHUB_URL", "https://github.com")?,
            api_url: base("GITVISTA_GITHUB_API_URL", "https://api.github.com")?,
            callback_url: format!("{public}/auth/github/callback"),
            public_url: public.clone(),
            jwt,
            cipher: Arc::new(TokenCipher::new(&key, &previous)),
            timeout: std::time::Duration::from_secs(timeout),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<GitHubAuth>, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GitHubAuth::from_settings(|k| map.get(k).cloned())
    }

    const FULL: [(&str, &str); 5] = [
        ("GITHUB_CLIENT_ID", "Iv1.abc"),
        ("GITHUB_CLIENT_SECRET", "shh-client-secret"),
        ("GITVISTA_PUBLIC_URL", "https://gitvista.example/"),
        (
            "GITVISTA_JWT_SECRET",
            "0123456789abcdef0123456789abcdef-jwt",
        ),
        (
            "GITVISTA_ENCRYPTION_KEY",
            "0707070707070707070707070707070707070707070707070707070707070707",
        ),
    ];

    #[test]
    fn without_a_client_id_sign_in_is_off() {
        assert!(settings(&[]).expect("ok").is_none());
        assert!(
            settings(&[("GITVISTA_JWT_SECRET", "x")])
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn a_full_configuration_turns_it_on_with_github_com_by_default() {
        let a = settings(&FULL).expect("ok").expect("on");
        assert_eq!(
            a.callback_url,
            "https://gitvista.example/auth/github/callback"
        );
        assert_eq!(a.web_url, "https://github.com");
        assert_eq!(a.api_url, "https://api.github.com");
        let mut enterprise = FULL.to_vec();
        enterprise.push(("GITVISTA_GITHUB_URL", "https://ghe.example.com/"));
        enterprise.push(("GITVISTA_GITHUB_API_URL", "https://ghe.example.com/api/v3"));
        let a = settings(&enterprise).expect("ok").expect("on");
        assert_eq!(a.web_url, "https://ghe.example.com");
        assert_eq!(a.api_url, "https://ghe.example.com/api/v3");
        assert!(
            !format!("{a:?}").contains("shh-client-secret"),
            "Debug hides the secret"
        );
    }

    #[test]
    fn each_missing_or_weak_setting_is_named_and_never_echoed() {
        for (drop, expect) in [
            ("GITHUB_CLIENT_SECRET", "GITHUB_CLIENT_SECRET is required"),
            ("GITVISTA_PUBLIC_URL", "GITVISTA_PUBLIC_URL is required"),
            ("GITVISTA_JWT_SECRET", "GITVISTA_JWT_SECRET is required"),
            (
                "GITVISTA_ENCRYPTION_KEY",
                "GITVISTA_ENCRYPTION_KEY is required",
            ),
        ] {
            let pairs: Vec<_> = FULL.iter().copied().filter(|(k, _)| *k != drop).collect();
            let err = settings(&pairs).expect_err(drop);
            assert!(err.contains(expect), "{drop}: {err}");
        }
        for (name, value, expect) in [
            (
                "GITVISTA_JWT_SECRET",
                "too-short-secret",
                "at least 32 bytes",
            ),
            ("GITVISTA_ENCRYPTION_KEY", "0707", "must be 32 bytes"),
            (
                "GITVISTA_ENCRYPTION_KEY_PREVIOUS",
                "abc",
                "GITVISTA_ENCRYPTION_KEY_PREVIOUS must be 32 bytes",
            ),
            ("GITVISTA_PUBLIC_URL", "ftp://x", "not an http(s) URL"),
            ("GITVISTA_GITHUB_API_URL", "not a url", "not an http(s) URL"),
        ] {
            let mut pairs: Vec<_> = FULL.iter().copied().filter(|(k, _)| *k != name).collect();
            pairs.push((name, value));
            let err = settings(&pairs).expect_err(name);
            assert!(err.contains(expect), "{name}: {err}");
            if name != "GITVISTA_PUBLIC_URL" && name != "GITVISTA_GITHUB_API_URL" {
                assert!(
                    !err.contains(value),
                    "{name}: the value is not echoed: {err}"
                );
            }
        }
    }
}
