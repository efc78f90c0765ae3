//! Sign-in settings, read and checked before the server starts. Sign-in is on when at least one
//! forge's OAuth client is configured (`GITHUB_CLIENT_ID`, `GITLAB_CLIENT_ID`,
//! `BITBUCKET_CLIENT_ID`); with none, its routes answer 404 and hosted mode works as without
//! accounts. With one, every secret it needs must be there and strong enough, or the server
//! refuses to start with a sentence naming the setting (never its value). A forge whose client
//! is not configured is off: its routes answer 404.

use std::sync::Arc;

use super::cipher::{TokenCipher, parse_key};
use super::jwt::Secret;
use super::provider::ForgeSettings;

/// One forge's settings' names and defaults.
struct Names {
    kind: &'static str,
    client_id: &'static str,
    client_secret: &'static str,
    web: &'static str,
    web_default: &'static str,
    api: &'static str,
    /// `None`: the web URL + `/api/v4` (GitLab's API lives on its web side).
    api_default: Option<&'static str>,
}

const FORGES: [Names; 3] = [
    Names {
        kind: "github",
        client_id: "GITHUB_CLIENT_ID",
        client_secret: "GITHUB_CLIENT_SECRET",
        web: "GITVISTA_GITHUB_URL",
        web_default: "https://github.com",
        api: "GITVISTA_GITHUB_API_URL",
        api_default: Some("https://api.github.com"),
    },
    Names {
        kind: "gitlab",
        client_id: "GITLAB_CLIENT_ID",
        client_secret: "GITLAB_CLIENT_SECRET",
        web: "GITVISTA_GITLAB_URL",
        web_default: "https://gitlab.com",
        api: "GITVISTA_GITLAB_API_URL",
        api_default: None,
    },
    Names {
        kind: "bitbucket",
        client_id: "BITBUCKET_CLIENT_ID",
        client_secret: "BITBUCKET_CLIENT_SECRET",
        web: "GITVISTA_BITBUCKET_URL",
        web_default: "https://bitbucket.org",
        api: "GITVISTA_BITBUCKET_API_URL",
        api_default: Some("https://api.bitbucket.org"),
    },
];

/// Sign-in, configured.
#[derive(Clone)]
pub struct AuthSettings {
    /// The forges users may sign in with, in the order GitHub, GitLab, Bitbucket.
    pub forges: Vec<ForgeSettings>,
    /// `GITVISTA_PUBLIC_URL` without a trailing `/` (callbacks and hooks point here).
    pub public_url: String,
    /// `GITVISTA_JWT_SECRET`: signs session cookies.
    pub jwt: Secret,
    /// `GITVISTA_ENCRYPTION_KEY` (and `GITVISTA_ENCRYPTION_KEY_PREVIOUS`): forge tokens at rest.
    pub cipher: Arc<TokenCipher>,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("forges", &self.forges)
            .field("public_url", &self.public_url)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl AuthSettings {
    /// The settings of forge `kind`, if it is configured.
    pub fn forge(&self, kind: &str) -> Option<&ForgeSettings> {
        self.forges.iter().find(|f| f.kind == kind)
    }

    /// Reads the settings through `get` (the environment in production): `Ok(None)` when
    /// sign-in is not configured, else every setting checked.
    pub fn from_settings(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<AuthSettings>, String> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(first) = FORGES
            .iter()
            .find_map(|f| get(f.client_id).map(|_| f.client_id))
        else {
            return Ok(None);
        };
        let need = |name: &str, because: &str| {
            get(name)
                .ok_or_else(|| format!("{because} is set, so sign-in is on and {name} is required"))
        };
        let base = |name: &str, default: &str| -> Result<String, String> {
            let text = get(name).unwrap_or_else(|| default.to_string());
            let url = url::Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| format!("{name} {text:?} is not an http(s) URL"))?;
            Ok(url.as_str().trim_end_matches('/').to_string())
        };
        let public = need("GITVISTA_PUBLIC_URL", first)?;
        let public = base("GITVISTA_PUBLIC_URL", &public)?;
        let jwt = Secret::new(&need("GITVISTA_JWT_SECRET", first)?)?;
        let key = parse_key(
            "GITVISTA_ENCRYPTION_KEY",
            &need("GITVISTA_ENCRYPTION_KEY", first)?,
        )
        .map_err(|e| e.to_string())?;
        let previous = get("GITVISTA_ENCRYPTION_KEY_PREVIOUS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| parse_key("GITVISTA_ENCRYPTION_KEY_PREVIOUS", k).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let previous: Vec<&[u8; 32]> = previous.iter().map(|k| &**k).collect();
        // GITVISTA_GITHUB_TIMEOUT is the name this setting had while GitHub was the only forge.
        let timeout_name = ["GITVISTA_FORGE_TIMEOUT", "GITVISTA_GITHUB_TIMEOUT"]
            .into_iter()
            .find(|n| get(n).is_some());
        let timeout = match timeout_name {
            None => 10,
            Some(name) => {
                let t = get(name).unwrap_or_default();
                t.parse::<u64>()
                    .ok()
                    .filter(|t| (1..=300).contains(t))
                    .ok_or_else(|| {
                        format!("{name} {t:?} is not a number of seconds from 1 to 300")
                    })?
            }
        };
        let mut forges = Vec::new();
        for f in FORGES {
            let Some(client_id) = get(f.client_id) else {
                continue;
            };
            let client_secret = need(f.client_secret, f.client_id)?;
            let web_url = base(f.web, f.web_default)?;
            let api_url = match f.api_default {
                Some(d) => base(f.api, d)?,
                None => base(f.api, &format!("{web_url}/api/v4"))?,
            };
            let kind = f.kind;
            forges.push(ForgeSettings {
                kind,
                client_id,
                client_secret: Arc::new(zeroize::Zeroizing::new(client_secret)),
                web_url,
                api_url,
                callback_url: format!("{public}/auth/{kind}/callback"),
                timeout: std::time::Duration::from_secs(timeout),
            });
        }
        Ok(Some(AuthSettings {
            forges,
            public_url: public,
            jwt,
            cipher: Arc::new(TokenCipher::new(&key, &previous)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<AuthSettings>, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthSettings::from_settings(|k| map.get(k).cloned())
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
        let gh = a.forge("github").expect("github");
        assert_eq!(
            gh.callback_url,
            "https://gitvista.example/auth/github/callback"
        );
        assert_eq!(gh.web_url, "https://github.com");
        assert_eq!(gh.api_url, "https://api.github.com");
        assert!(
            a.forge("gitlab").is_none(),
            "a forge without a client is off"
        );
        let mut enterprise = FULL.to_vec();
        enterprise.push(("GITVISTA_GITHUB_URL", "https://ghe.example.com/"));
        enterprise.push(("GITVISTA_GITHUB_API_URL", "https://ghe.example.com/api/v3"));
        let a = settings(&enterprise).expect("ok").expect("on");
        let gh = a.forge("github").expect("github");
        assert_eq!(gh.web_url, "https://ghe.example.com");
        assert_eq!(gh.api_url, "https://ghe.example.com/api/v3");
        assert!(
            !format!("{a:?}").contains("shh-client-secret"),
            "Debug hides the secret"
        );
    }

    #[test]
    fn gitlab_and_bitbucket_alone_turn_sign_in_on_with_their_own_addresses() {
        let shared: Vec<_> = FULL
            .iter()
            .copied()
            .filter(|(k, _)| !k.starts_with("GITHUB_"))
            .collect();
        let mut pairs = shared.clone();
        pairs.extend([
            ("GITLAB_CLIENT_ID", "gl-app"),
            ("GITLAB_CLIENT_SECRET", "gl-secret"),
            ("GITVISTA_GITLAB_URL", "https://git.example.org/"),
            ("BITBUCKET_CLIENT_ID", "bb-key"),
            ("BITBUCKET_CLIENT_SECRET", "bb-secret"),
        ]);
        let a = settings(&pairs).expect("ok").expect("on");
        let kinds: Vec<_> = a.forges.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["gitlab", "bitbucket"]);
        let gl = a.forge("gitlab").expect("gitlab");
        assert_eq!(gl.web_url, "https://git.example.org");
        assert_eq!(gl.api_url, "https://git.example.org/api/v4");
        assert_eq!(
            gl.callback_url,
            "https://gitvista.example/auth/gitlab/callback"
        );
        let bb = a.forge("bitbucket").expect("bitbucket");
        assert_eq!(bb.web_url, "https://bitbucket.org");
        assert_eq!(bb.api_url, "https://api.bitbucket.org");
        let mut missing = shared;
        missing.push(("GITLAB_CLIENT_ID", "gl-app"));
        let err = settings(&missing).expect_err("no secret");
        assert!(
            err.contains(
                "GITLAB_CLIENT_ID is set, so sign-in is on and GITLAB_CLIENT_SECRET is required"
            ),
            "{err}"
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
