//! Requests between nodes, signed with `GITVISTA_CLUSTER_SECRET`.
//!
//! A signed request carries `x-gitvista-cluster: <ms>.<nonce>.<hex HMAC-SHA-256>`, the MAC
//! over the time, a fresh 128-bit nonce, the method, the path with its query and the SHA-256 of
//! the body. A signature is good for [`WINDOW`] either side of the receiver's clock and once:
//! the receiver remembers every nonce it accepted for the window, so a signature seen on the
//! wire cannot be sent again, nor moved to another path, query or body. Internal traffic is
//! plain HTTP: it must stay on a private network (Fly's 6PN, a VPC); the signature keeps a
//! stray or replayed request out, it does not hide what travels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::{Digest as _, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a signed request's time may be from the receiver's clock (either way).
pub const WINDOW: Duration = Duration::from_secs(10);

/// Most nonces remembered at once; past it, signed requests are refused until old ones expire
/// (a flood of signed requests is a node gone wrong).
const MAX_REMEMBERED: usize = 200_000;

/// `GITVISTA_CLUSTER_SECRET`, and the nonces it accepted lately. Never printed.
#[derive(Clone)]
pub struct ClusterSecret {
    key: Arc<zeroize::Zeroizing<Vec<u8>>>,
    seen: Arc<Mutex<HashMap<[u8; 16], i64>>>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// 16 bytes never used before by this process: random, or (if the system has no randomness
/// to give) the time and a counter, which are unique as well; a nonce need not be secret.
fn fresh_nonce() -> [u8; 16] {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut nonce = [0u8; 16];
    if getrandom::fill(&mut nonce).is_err() {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        nonce[..8].copy_from_slice(&gitvista_store::jobs::now_ms().to_le_bytes());
        nonce[8..].copy_from_slice(&n.to_le_bytes());
    }
    nonce
}

impl ClusterSecret {
    /// `text` as the cluster secret, or a sentence saying why not.
    pub fn new(text: &str) -> Result<ClusterSecret, String> {
        if text.len() < 32 {
            return Err(format!(
                "GITVISTA_CLUSTER_SECRET must be at least 32 bytes (it has {}); `openssl rand -hex 32` makes one",
                text.len()
            ));
        }
        Ok(ClusterSecret {
            key: Arc::new(zeroize::Zeroizing::new(text.as_bytes().to_vec())),
            seen: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn mac(
        &self,
        at_ms: i64,
        nonce: &[u8; 16],
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
        let digest = Sha256::digest(body);
        mac.update(
            format!(
                "{at_ms} {} {method} {path_and_query} {}",
                hex(nonce),
                hex(&digest)
            )
            .as_bytes(),
        );
        mac
    }

    /// The header value signing `method path_and_query` with `body`, now, once.
    pub fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        self.sign_at(
            gitvista_store::jobs::now_ms(),
            fresh_nonce(),
            method,
            path_and_query,
            body,
        )
    }

    fn sign_at(
        &self,
        at: i64,
        nonce: [u8; 16],
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> String {
        let tag = self
            .mac(at, &nonce, method, path_and_query, body)
            .finalize()
            .into_bytes();
        format!("{at}.{}.{}", hex(&nonce), hex(&tag))
    }

    /// Whether `header` signs this request, within the window, for the first time (constant
    /// time; a good signature's nonce is remembered, so it is accepted once).
    pub fn verify(&self, header: &str, method: &str, path_and_query: &str, body: &[u8]) -> bool {
        let mut parts = header.split('.');
        let (Some(at), Some(nonce), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(at), Some(nonce), Some(tag)) =
            (at.parse::<i64>(), unhex::<16>(nonce), unhex::<32>(tag))
        else {
            return false;
        };
        let now = gitvista_store::jobs::now_ms();
        let window = WINDOW.as_millis() as i64;
        if (now - at).abs() > window {
            return false;
        }
        if self
            .mac(at, &nonce, method, path_and_query, body)
            .verify_slice(&tag)
            .is_err()
        {
            return false;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= MAX_REMEMBERED {
                tracing::warn!(
                    "too many signed requests within the window; refusing until old ones expire"
                );
                return false;
            }
        }
        match seen.entry(nonce) {
            std::collections::hash_map::Entry::Occupied(_) => {
                metrics::counter!("gitvista_cluster_replays_total").increment(1);
                false
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                // Remembered until its time can no longer pass the window check.
                v.insert(at + window + 1);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const PATH: &str = "/api/repos/abc/graph?offset=0";

    #[test]
    fn a_signature_covers_its_request_and_body_expires_and_works_once() {
        let s = ClusterSecret::new(SECRET).expect("valid");
        let h = s.sign("GET", PATH, b"");
        // Another query, method or body: refused (and the good one is still unused).
        assert!(!s.verify(&h, "GET", "/api/repos/abc/graph?offset=1", b""));
        assert!(!s.verify(&h, "POST", PATH, b""));
        assert!(!s.verify(&h, "GET", PATH, b"{}"));
        assert!(s.verify(&h, "GET", PATH, b""));
        // Replayed: refused.
        assert!(!s.verify(&h, "GET", PATH, b""), "a second time");
        // Another secret; a time outside the window either way.
        let other = ClusterSecret::new(&SECRET.replace('0', "1")).expect("valid");
        assert!(!other.verify(&s.sign("GET", PATH, b""), "GET", PATH, b""));
        let now = gitvista_store::jobs::now_ms();
        for at in [now - 11_000, now + 11_000] {
            let h = s.sign_at(at, fresh_nonce(), "GET", PATH, b"");
            assert!(!s.verify(&h, "GET", PATH, b""), "{at}");
        }
        let h = s.sign("GET", PATH, b"");
        for bad in [
            "",
            ".",
            "1.2",
            "x.y.z",
            &h[..h.len() - 1],
            &format!("{h}.0"),
        ] {
            assert!(!s.verify(bad, "GET", PATH, b""), "{bad}");
        }
        // Clones share what they remember (the middleware gets a clone).
        let clone = s.clone();
        let h = s.sign("GET", PATH, b"");
        assert!(clone.verify(&h, "GET", PATH, b""));
        assert!(!s.verify(&h, "GET", PATH, b""));
        assert_eq!(format!("{s:?}"), "ClusterSecret(..)");
    }
}
