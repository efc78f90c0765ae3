//! Who sent a delivery: GitHub's `X-Hub-Signature-256` (`sha256=` and the hex HMAC-SHA-256 of
//! the raw body), Gitea's and Forgejo's `X-Gitea-Signature` (the same HMAC, bare hex), and
//! GitLab's `X-Gitlab-Token` (the secret itself). Every comparison takes constant time, and
//! nothing here parses the body.

use hmac::{KeyInit as _, Mac as _};
use subtle::ConstantTimeEq as _;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Why a delivery's signature was refused (the sentence the sender is told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header at all.
    #[error("the delivery carries no signature")]
    Missing,
    /// A header that is not `sha256=` and 64 hex digits (a `sha1=` one among them).
    #[error("the delivery's signature is not an HMAC-SHA-256 in hex")]
    Malformed,
    /// Well formed, but not made with this server's secret over this body.
    #[error("the delivery's signature does not match")]
    Mismatch,
}

/// A webhook secret (never printed).
#[derive(Clone)]
pub struct HookSecret(zeroize::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSecret(..)")
    }
}

/// Shortest webhook secret accepted (bytes): shorter ones could be guessed from one delivery.
pub const MIN_HOOK_SECRET: usize = 16;

impl HookSecret {
    /// `text` (the setting `name`) as a secret, or a sentence saying why not.
    pub fn new(name: &str, text: &str) -> Result<HookSecret, String> {
        if text.len() < MIN_HOOK_SECRET {
            return Err(format!(
                "{name} must be at least {MIN_HOOK_SECRET} bytes (it has {}); generate one with `openssl rand -hex 32`",
                text.len()
            ));
        }
        Ok(HookSecret(zeroize::Zeroizing::new(
            text.as_bytes().to_vec(),
        )))
    }

    /// A secret of raw bytes (a derived one).
    pub fn from_bytes(bytes: &[u8]) -> HookSecret {
        HookSecret(zeroize::Zeroizing::new(bytes.to_vec()))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
    }

    /// The secret of one hook, derived from this one: the hex HMAC-SHA-256 of `label` (a
    /// per-repository hook's secret, which only this server can compute again).
    pub fn derive(&self, label: &str) -> HookSecret {
        let mut mac = self.mac();
        mac.update(label.as_bytes());
        HookSecret::from_bytes(hex(&mac.finalize().into_bytes()).as_bytes())
    }

    /// The secret as text, for registering a hook with it (never logged).
    pub fn expose(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// The hex HMAC-SHA-256 of `body` under this secret.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// Checks GitHub's `X-Hub-Signature-256` header value: `sha256=` + 64 hex digits.
    pub fn verify_github(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_sig = header
            .strip_prefix(b"sha256=")
            .ok_or(SignatureError::Malformed)?;
        self.verify_hex(hex_sig, body)
    }

    /// Checks Bitbucket Cloud's `X-Hub-Signature`: `sha256=` + 64 hex digits of HMAC-SHA256.
    /// (GitHub's header of the same name is HMAC-SHA1 and is never accepted: GitHub's
    /// receiver reads `X-Hub-Signature-256` only.)
    pub fn verify_bitbucket(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_sig = header
            .strip_prefix(b"sha256=")
            .ok_or(SignatureError::Malformed)?;
        self.verify_hex(hex_sig, body)
    }

    /// Checks Gitea's (and Forgejo's) `X-Gitea-Signature`: 64 hex digits.
    pub fn verify_gitea(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        self.verify_hex(header.ok_or(SignatureError::Missing)?, body)
    }

    fn verify_hex(&self, hex_sig: &[u8], body: &[u8]) -> Result<(), SignatureError> {
        let sig = unhex(hex_sig).ok_or(SignatureError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
    }

    /// Checks GitLab's `X-Gitlab-Token`, which carries the secret itself.
    pub fn verify_token(&self, header: Option<&[u8]>) -> Result<(), SignatureError> {
        let given = header.ok_or(SignatureError::Missing)?;
        // Both sides are hashed first, so the comparison's time says nothing about the length.
        let digest = |b: &[u8]| -> [u8; 32] {
            use sha2::Digest as _;
            sha2::Sha256::digest(b).into()
        };
        if bool::from(digest(given).ct_eq(&digest(&self.0))) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// 64 hex digits (either case) as 32 bytes.
fn unhex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example (docs: "Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const SIGNATURE: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secret() -> HookSecret {
        HookSecret::new("GITVISTA_GITHUB_WEBHOOK_SECRET", SECRET).expect("long enough")
    }

    #[test]
    fn githubs_documented_vector_verifies() {
        let s = secret();
        assert_eq!(s.sign(PAYLOAD), SIGNATURE);
        let header = format!("sha256={SIGNATURE}");
        assert_eq!(s.verify_github(Some(header.as_bytes()), PAYLOAD), Ok(()));
        // Upper-case hex is the same signature.
        let upper = format!("sha256={}", SIGNATURE.to_uppercase());
        assert_eq!(s.verify_github(Some(upper.as_bytes()), PAYLOAD), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_another_secret_does_not_verify() {
        let header = format!("sha256={SIGNATURE}");
        assert_eq!(
            secret().verify_github(Some(header.as_bytes()), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        let other = HookSecret::new("X", "It's a Secret to Everybody!").expect("long enough");
        assert_eq!(
            other.verify_github(Some(header.as_bytes()), PAYLOAD),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_sha1_and_malformed_headers_are_refused() {
        let s = secret();
        assert_eq!(s.verify_github(None, PAYLOAD), Err(SignatureError::Missing));
        for bad in [
            // GitHub's older SHA-1 header value.
            "sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0".to_string(),
            SIGNATURE.to_string(),
            format!("sha256={}", &SIGNATURE[..63]),
            format!("sha256={SIGNATURE}0"),
            format!("sha256={}g", &SIGNATURE[..63]),
            format!("sha256= {SIGNATURE}"),
            "sha256=".to_string(),
            String::new(),
        ] {
            assert_eq!(
                s.verify_github(Some(bad.as_bytes()), PAYLOAD),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gitea_signs_the_same_hmac_without_a_prefix() {
        let s = secret();
        assert_eq!(s.verify_gitea(Some(SIGNATURE.as_bytes()), PAYLOAD), Ok(()));
        let prefixed = format!("sha256={SIGNATURE}");
        assert_eq!(
            s.verify_gitea(Some(prefixed.as_bytes()), PAYLOAD),
            Err(SignatureError::Malformed)
        );
        assert_eq!(s.verify_gitea(None, PAYLOAD), Err(SignatureError::Missing));
    }

    #[test]
    fn bitbucket_signs_with_sha256_and_a_sha1_signature_is_refused() {
        let s = secret();
        let body = br#"{"push":{}}"#;
        let good = format!("sha256={}", s.sign(body));
        assert_eq!(s.verify_bitbucket(Some(good.as_bytes()), body), Ok(()));
        assert_eq!(
            s.verify_bitbucket(Some(good.as_bytes()), b"{}"),
            Err(SignatureError::Mismatch)
        );
        // GitHub's legacy `X-Hub-Signature: sha1=...` is not Bitbucket's.
        let sha1 = format!("sha1={}", &s.sign(body)[..40]);
        assert_eq!(
            s.verify_bitbucket(Some(sha1.as_bytes()), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(s.verify_bitbucket(None, body), Err(SignatureError::Missing));
    }

    #[test]
    fn gitlab_tokens_must_equal_the_secret() {
        let s = secret();
        assert_eq!(s.verify_token(Some(SECRET.as_bytes())), Ok(()));
        for bad in [
            "",
            "It's a Secret to Everybod",
            "It's a Secret to Everybody ",
        ] {
            assert_eq!(
                s.verify_token(Some(bad.as_bytes())),
                Err(SignatureError::Mismatch)
            );
        }
        assert_eq!(s.verify_token(None), Err(SignatureError::Missing));
    }

    #[test]
    fn derived_secrets_differ_per_label_and_are_stable() {
        let s = secret();
        let a = s.derive("gitvista github hook 0123456789abcdef");
        let b = s.derive("gitvista github hook 0123456789abcdee");
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(
            a.expose(),
            s.derive("gitvista github hook 0123456789abcdef").expose()
        );
    }

    #[test]
    fn short_secrets_are_refused_at_start_up() {
        let e = HookSecret::new("GITVISTA_GITLAB_WEBHOOK_SECRET", "short").expect_err("too short");
        assert!(
            e.contains("GITVISTA_GITLAB_WEBHOOK_SECRET") && e.contains("16"),
            "{e}"
        );
    }
}
