//! Forge tokens at rest: AES-256-GCM under `GITVISTA_ENCRYPTION_KEY`.
//!
//! A stored token is `1 || key id (4 bytes) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The nonce is fresh from the OS for every encryption; the owner's user id is the associated
//! data, so a ciphertext copied to another user's row does not decrypt. The key id is the first
//! four bytes of the key's SHA-256 (nothing to configure); the cipher holds the current key and
//! any number of previous ones, which decrypt only: `gitvista rotate-key` re-encrypts every
//! token under the current key while both are configured.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use sha2::Digest as _;
use zeroize::Zeroizing;

/// The format byte of a stored token.
const VERSION: u8 = 1;
const KEY_ID: usize = 4;
const NONCE: usize = 12;
const TAG: usize = 16;
const HEADER: usize = 1 + KEY_ID + NONCE;

/// Why a key or a stored token was refused. Never carries key or token bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The configured key is not 32 bytes of hex or base64.
    #[error(
        "{name} must be 32 bytes written as 64 hex digits or base64 (generate one with `openssl rand -hex 32`)"
    )]
    BadKey {
        /// The setting's name.
        name: String,
    },
    /// The stored value is too short or of an unknown format.
    #[error("a stored token is malformed ({0})")]
    Malformed(&'static str),
    /// The stored value was encrypted under a key that is not configured.
    #[error(
        "a stored token was encrypted under key {key_id}, which is not configured (add it to GITVISTA_ENCRYPTION_KEY_PREVIOUS)"
    )]
    UnknownKey {
        /// The key id, in hex.
        key_id: String,
    },
    /// The tag did not verify: tampered, or stored for another user.
    #[error("a stored token does not decrypt (tampered, or not this user's)")]
    Invalid,
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// One configured key.
struct Key {
    id: [u8; KEY_ID],
    aead: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Key {
        let digest = sha2::Sha256::digest(bytes);
        let mut id = [0; KEY_ID];
        id.copy_from_slice(&digest[..KEY_ID]);
        Key {
            id,
            aead: Aes256Gcm::new(bytes.into()),
        }
    }
}

/// Encrypts tokens under the current key and decrypts them under it or a previous one.
pub struct TokenCipher {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("current", &hex(&self.current.id))
            .field(
                "previous",
                &self.previous.iter().map(|k| hex(&k.id)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 32-byte key written as 64 hex digits or as base64 (standard or URL-safe, padded or not).
pub fn parse_key(name: &str, text: &str) -> Result<Zeroizing<[u8; 32]>, CipherError> {
    let text = text.trim();
    let bad = || CipherError::BadKey {
        name: name.to_string(),
    };
    let bytes: Zeroizing<Vec<u8>> =
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Zeroizing::new(
                (0..32)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad())?,
            )
        } else {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            Zeroizing::new(
                engines
                    .iter()
                    .find_map(|e| e.decode(text).ok())
                    .ok_or_else(bad)?,
            )
        };
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(bad());
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

impl TokenCipher {
    /// A cipher encrypting under `current`, also decrypting under each of `previous`.
    pub fn new(current: &[u8; 32], previous: &[&[u8; 32]]) -> TokenCipher {
        TokenCipher {
            current: Key::new(current),
            previous: previous.iter().map(|k| Key::new(k)).collect(),
        }
    }

    /// The current key's id, in hex (what `rotate-key` reports).
    pub fn key_id(&self) -> String {
        hex(&self.current.id)
    }

    /// `token` encrypted for user `user_id` under the current key.
    pub fn encrypt(&self, user_id: &str, token: &str) -> Result<Vec<u8>, CipherError> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| CipherError::Random(e.to_string()))?;
        let sealed = self
            .current
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Invalid)?;
        let mut out = Vec::with_capacity(HEADER + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The token in `stored`, which must have been encrypted for `user_id` under a configured
    /// key. Zeroed when dropped.
    pub fn decrypt(&self, user_id: &str, stored: &[u8]) -> Result<Zeroizing<String>, CipherError> {
        if stored.len() < HEADER + TAG {
            return Err(CipherError::Malformed("too short"));
        }
        if stored[0] != VERSION {
            return Err(CipherError::Malformed("unknown format"));
        }
        let id = &stored[1..1 + KEY_ID];
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CipherError::UnknownKey { key_id: hex(id) })?;
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&stored[1 + KEY_ID..HEADER]);
        let plain = Zeroizing::new(
            key.aead
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &stored[HEADER..],
                        aad: user_id.as_bytes(),
                    },
                )
                .map_err(|_| CipherError::Invalid)?,
        );
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CipherError::Malformed("not UTF-8"))
    }

    /// Whether `stored` is under the current key (else `rotate-key` re-encrypts it).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        stored.get(1..1 + KEY_ID) == Some(&self.current.id[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [7; 32];
    const B: [u8; 32] = [9; 32];

    #[test]
    fn a_token_round_trips_for_its_user_only() {
        let c = TokenCipher::new(&A, &[]);
        let stored = c.encrypt("user-1", "gho_secret").expect("encrypts");
        assert_eq!(
            c.decrypt("user-1", &stored).expect("decrypts").as_str(),
            "gho_secret"
        );
        assert!(
            !stored.windows(10).any(|w| w == b"gho_secret"),
            "the token is not in the clear"
        );
        assert_eq!(c.decrypt("user-2", &stored), Err(CipherError::Invalid));
        // A fresh nonce each time: the same token never encrypts the same way twice.
        assert_ne!(stored, c.encrypt("user-1", "gho_secret").expect("encrypts"));
    }

    #[test]
    fn tampered_short_and_foreign_ciphertexts_are_refused_by_name() {
        let c = TokenCipher::new(&A, &[]);
        let stored = c.encrypt("u", "token").expect("encrypts");
        for i in [0, 5, HEADER, stored.len() - 1] {
            let mut bad = stored.clone();
            bad[i] ^= 1;
            let err = c.decrypt("u", &bad).expect_err("refused");
            assert!(
                matches!(
                    err,
                    CipherError::Invalid
                        | CipherError::Malformed(_)
                        | CipherError::UnknownKey { .. }
                ),
                "byte {i}: {err:?}"
            );
        }
        assert_eq!(
            c.decrypt("u", &stored[..HEADER + TAG - 1]),
            Err(CipherError::Malformed("too short"))
        );
        let other = TokenCipher::new(&B, &[]);
        let err = other.decrypt("u", &stored).expect_err("another key");
        assert_eq!(err, CipherError::UnknownKey { key_id: c.key_id() });
        assert!(err.to_string().contains(&c.key_id()));
    }

    #[test]
    fn rotation_decrypts_under_the_previous_key_and_encrypts_under_the_new() {
        let old = TokenCipher::new(&A, &[]);
        let stored = old.encrypt("u", "token").expect("encrypts");
        let rotating = TokenCipher::new(&B, &[&A]);
        assert!(!rotating.is_current(&stored));
        let token = rotating.decrypt("u", &stored).expect("old key still reads");
        let again = rotating.encrypt("u", &token).expect("encrypts");
        assert!(rotating.is_current(&again));
        assert_eq!(
            TokenCipher::new(&B, &[])
                .decrypt("u", &again)
                .expect("new key")
                .as_str(),
            "token"
        );
    }

    #[test]
    fn keys_are_32_bytes_of_hex_or_base64() {
        let hex_key = "07".repeat(32);
        assert_eq!(*parse_key("K", &hex_key).expect("hex"), A);
        let b64 = base64::engine::general_purpose::STANDARD.encode(A);
        assert_eq!(*parse_key("K", &b64).expect("base64"), A);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(B);
        assert_eq!(*parse_key("K", &url).expect("url-safe"), B);
        for bad in [
            "",
            "07",
            &"07".repeat(31),
            &"zz".repeat(32),
            "not a key at all!",
        ] {
            let err = parse_key("GITVISTA_ENCRYPTION_KEY", bad).expect_err(bad);
            assert!(
                err.to_string()
                    .starts_with("GITVISTA_ENCRYPTION_KEY must be 32 bytes")
            );
        }
    }
}
