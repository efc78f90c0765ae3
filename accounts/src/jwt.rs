//! The session cookie's token: a JWT signed with HMAC-SHA-256 (`HS256`) under
//! `GITVISTA_JWT_SECRET`.
//!
//! Only tokens this server made are accepted: the header must be exactly the one [`sign`]
//! writes (so `alg: none` or any other algorithm is refused before the signature is looked at),
//! the signature is compared in constant time, and the expiry is checked against the caller's
//! clock. The claims name a user and a row of the `sessions` table; whether that row still
//! stands is the caller's question.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The one header this server signs.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Shortest secret accepted (bytes).
pub const MIN_SECRET: usize = 32;

/// Longest token looked at (a cookie is at most 4 KiB anyway).
const MAX_TOKEN: usize = 2048;

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The session's id (a row of `sessions`).
    pub sid: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Why a token was refused. Carries no part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, too long, or claims that do not parse.
    #[error("the session token is malformed")]
    Malformed,
    /// Another header than this server's (another algorithm, `none`, extra fields).
    #[error("the session token was not made by this server")]
    ForeignHeader,
    /// The signature does not verify under this server's secret.
    #[error("the session token's signature is wrong")]
    BadSignature,
    /// Past its expiry.
    #[error("the session has expired")]
    Expired,
}

/// The secret, checked: at least [`MIN_SECRET`] bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// `text` as a signing secret, or a sentence saying why not.
    pub fn new(text: &str) -> Result<Secret, String> {
        if text.len() < MIN_SECRET {
            return Err(format!(
                "GITVISTA_JWT_SECRET must be at least {MIN_SECRET} bytes (it has {}); generate one with `openssl rand -hex 32`",
                text.len()
            ));
        }
        Ok(Secret(text.as_bytes().to_vec()))
    }

    /// A key for another purpose, derived from this secret: HMAC-SHA-256 of `label` (which no
    /// token's signing input can equal: labels hold a space, base64url never does).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        debug_assert!(label.contains(' '));
        let mut mac = self.mac();
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The token for `claims`.
pub fn sign(secret: &Secret, claims: &Claims) -> String {
    let body = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!("{}.{}", B64.encode(HEADER), B64.encode(body));
    let mut mac = secret.mac();
    mac.update(signed.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{signed}.{}", B64.encode(tag))
}

/// The claims of `token` if this server signed it and it has not expired at `now` (seconds
/// since the epoch).
pub fn verify(secret: &Secret, token: &str, now: i64) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN {
        return Err(JwtError::Malformed);
    }
    let (signed, tag) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (header, body) = signed.split_once('.').ok_or(JwtError::Malformed)?;
    if body.contains('.') {
        return Err(JwtError::Malformed);
    }
    let header = B64.decode(header).map_err(|_| JwtError::Malformed)?;
    if header != HEADER.as_bytes() {
        return Err(JwtError::ForeignHeader);
    }
    let tag = B64.decode(tag).map_err(|_| JwtError::Malformed)?;
    let mut mac = secret.mac();
    mac.update(signed.as_bytes());
    mac.verify_slice(&tag).map_err(|_| JwtError::BadSignature)?;
    let body = B64.decode(body).map_err(|_| JwtError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&body).map_err(|_| JwtError::Malformed)?;
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

/// `value` as `base64url(json).base64url(HMAC-SHA-256(purpose NUL json))`: a small signed
/// cookie (the sign-in's state and PKCE verifier) that only this server can make, and that
/// cannot pass for a session token or another purpose's value.
pub fn seal<T: Serialize>(secret: &Secret, purpose: &str, value: &T) -> String {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut mac = secret.mac();
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(&body);
    format!(
        "{}.{}",
        B64.encode(&body),
        B64.encode(mac.finalize().into_bytes())
    )
}

/// The value [`seal`] made for `purpose`, if the text is one.
pub fn open<T: serde::de::DeserializeOwned>(
    secret: &Secret,
    purpose: &str,
    text: &str,
) -> Option<T> {
    if text.len() > MAX_TOKEN {
        return None;
    }
    let (body, tag) = text.split_once('.')?;
    let body = B64.decode(body).ok()?;
    let tag = B64.decode(tag).ok()?;
    let mut mac = secret.mac();
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(&body);
    mac.verify_slice(&tag).ok()?;
    serde_json::from_slice(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_purpose_and_untouched() {
        let s = secret();
        let sealed = seal(&s, "login", &("state-1", 42));
        assert_eq!(
            open::<(String, i64)>(&s, "login", &sealed),
            Some(("state-1".into(), 42))
        );
        assert_eq!(open::<(String, i64)>(&s, "other", &sealed), None);
        let other = Secret::new("another secret of thirty-two bytes or more").expect("ok");
        assert_eq!(open::<(String, i64)>(&other, "login", &sealed), None);
        let (body, tag) = sealed.split_once('.').expect("two parts");
        let forged = format!("{}.{tag}", B64.encode(br#"["state-2",42]"#));
        assert_eq!(open::<(String, i64)>(&s, "login", &forged), None);
        assert_eq!(open::<(String, i64)>(&s, "login", body), None);
        // A session token is not a sealed value.
        let token = sign(
            &s,
            &Claims {
                sub: "u".into(),
                sid: "s".into(),
                exp: i64::MAX,
            },
        );
        assert_eq!(open::<serde_json::Value>(&s, "login", &token), None);
    }

    fn secret() -> Secret {
        Secret::new("a secret of at least thirty-two bytes!").expect("long enough")
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-1".into(),
            sid: "session-1".into(),
            exp: 2_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let t = sign(&secret(), &claims());
        assert_eq!(verify(&secret(), &t, 1_999), Ok(claims()));
        assert_eq!(verify(&secret(), &t, 2_000), Err(JwtError::Expired));
        // The standard encoding: base64url without padding, HS256 over "header.body".
        let mut parts = t.split('.');
        assert_eq!(
            B64.decode(parts.next().expect("header")).expect("b64"),
            HEADER.as_bytes()
        );
    }

    #[test]
    fn forged_tampered_and_foreign_tokens_are_refused() {
        let t = sign(&secret(), &claims());
        let other = Secret::new("another secret of thirty-two bytes or more").expect("ok");
        assert_eq!(verify(&other, &t, 0), Err(JwtError::BadSignature));
        // Claims changed after signing (a longer expiry, another user).
        let (head, rest) = t.split_once('.').expect("parts");
        let (_, tag) = rest.split_once('.').expect("parts");
        for forged in [
            Claims {
                exp: 9_999_999_999,
                ..claims()
            },
            Claims {
                sub: "admin".into(),
                ..claims()
            },
        ] {
            let body = B64.encode(serde_json::to_vec(&forged).expect("json"));
            assert_eq!(
                verify(&secret(), &format!("{head}.{body}.{tag}"), 0),
                Err(JwtError::BadSignature)
            );
        }
        // alg: none, with or without a signature; HS512; an extra header field.
        let body = B64.encode(serde_json::to_vec(&claims()).expect("json"));
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"JWT","kid":"x"}"#,
        ] {
            let h = B64.encode(header);
            for sig in ["", tag] {
                assert_eq!(
                    verify(&secret(), &format!("{h}.{body}.{sig}"), 0),
                    Err(JwtError::ForeignHeader),
                    "{header}"
                );
            }
        }
        for junk in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.!!!.!!!",
            &"x".repeat(5000),
            &format!("{head}.%%%.{tag}"),
        ] {
            assert!(
                matches!(
                    verify(&secret(), junk, 0),
                    Err(JwtError::Malformed | JwtError::BadSignature)
                ),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_as_openssl_computes_it() {
        use std::io::Write as _;
        let secret_text = "a secret of at least thirty-two bytes!";
        let t = sign(&secret(), &claims());
        let (signed, tag) = t.rsplit_once('.').expect("parts");
        let mut child = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-binary", "-hmac", secret_text])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(signed.as_bytes())
            .expect("writes");
        let out = child.wait_with_output().expect("openssl");
        assert_eq!(B64.encode(out.stdout), tag);
    }

    #[test]
    fn short_secrets_are_refused_with_a_sentence() {
        let err = Secret::new("short").expect_err("too short");
        assert!(err.contains("at least 32 bytes"), "{err}");
        assert!(!err.contains("short"), "the secret is not echoed: {err}");
    }
}
