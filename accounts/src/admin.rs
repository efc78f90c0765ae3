//! The operator's sign-in (`GITVISTA_ADMIN_TOKEN`): the token itself, presented as
//! `Authorization: Bearer`, or a session the token opened.
//!
//! A session is 32 random bytes in the `gitvista_admin` cookie; the server keeps only their
//! SHA-256 and the expiry (12 hours), in the `admin_sessions` table when there is a store (so
//! every node of a cluster knows it, and signing out ends it on all of them) and in memory in
//! local mode. Nothing about the token can be learnt from a cookie, a cookie stops working when
//! its session is signed out, and a new sign-in is a new session. A session found is
//! remembered for 5 seconds: signing out ends it at once on the node that did it, on the
//! others within 5 s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq as _;

use gitvista_errors::{ApiError, blocking};
use gitvista_store::{Store, now};

/// How long an admin sign-in lasts.
pub const ADMIN_SESSION: Duration = Duration::from_secs(12 * 3600);

/// How long a session found is trusted without asking the store again.
const REMEMBERED: Duration = Duration::from_secs(5);

/// The admin token's digest and the sessions it opened.
pub struct AdminAuth {
    /// SHA-256 of `"gitvista-admin:" + token`.
    digest: [u8; 32],
    /// Where sessions live (`None`: in memory, local mode).
    store: Option<Store>,
    /// Sessions by hash: their expiry (in memory without a store; else the ones seen lately,
    /// with when they were seen).
    sessions: Mutex<HashMap<String, (i64, Instant)>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("stored", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

/// The digest a token is compared through.
pub fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(format!("gitvista-admin:{token}").as_bytes()).into()
}

fn session_hash(id: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(format!("gitvista-admin-session:{id}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl AdminAuth {
    /// The admin sign-in for `token`, keeping sessions in `store` when there is one.
    pub fn new(token: &str, store: Option<Store>) -> AdminAuth {
        AdminAuth {
            digest: token_digest(token),
            store,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `token` is the admin token (compared in constant time, through digests).
    pub fn is_token(&self, token: &str) -> bool {
        bool::from(token_digest(token).ct_eq(&self.digest))
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Instant)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session; answers the cookie's value.
    pub async fn open(&self) -> Result<String, ApiError> {
        let id = super::accounts::random_id::<32>()?;
        let (hash, at) = (session_hash(&id), now());
        let expires = at + ADMIN_SESSION.as_secs() as i64;
        if let Some(store) = self.store.clone() {
            let h = hash.clone();
            blocking(move || {
                store.prune_admin_sessions(at)?;
                store.add_admin_session(&h, at, expires)
            })
            .await?;
        } else {
            let mut sessions = self.remembered();
            sessions.retain(|_, (e, _)| *e > at);
            sessions.insert(hash, (expires, Instant::now()));
        }
        Ok(id)
    }

    /// Whether cookie value `id` names a live session.
    pub async fn is_session(&self, id: &str) -> bool {
        // 32 bytes in base64url.
        if id.len() != 43
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        let hash = session_hash(id);
        let at = now();
        if let Some((expires, seen)) = self.remembered().get(&hash).copied()
            && expires > at
            && (self.store.is_none() || seen.elapsed() < REMEMBERED)
        {
            return true;
        }
        let Some(store) = self.store.clone() else {
            return false;
        };
        let h = hash.clone();
        match blocking(move || store.admin_session(&h)).await {
            Ok(Some(expires)) if expires > at => {
                self.remembered().insert(hash, (expires, Instant::now()));
                true
            }
            _ => {
                self.remembered().remove(&hash);
                false
            }
        }
    }

    /// Ends the session cookie value `id` names (here at once; on other nodes within 5 s).
    pub async fn close(&self, id: &str) -> Result<(), ApiError> {
        let hash = session_hash(id);
        self.remembered().remove(&hash);
        if let Some(store) = self.store.clone() {
            blocking(move || store.remove_admin_session(&hash)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn sessions_are_random_revocable_and_say_nothing_of_the_token() {
        let auth = AdminAuth::new("the-admin-token-of-this-test", None);
        assert!(auth.is_token("the-admin-token-of-this-test"));
        assert!(!auth.is_token("the-admin-token-of-this-tesT"));
        let a = auth.open().await.expect("open");
        let b = auth.open().await.expect("open");
        assert_ne!(a, b, "every sign-in is a session of its own");
        let digest: String = token_digest("the-admin-token-of-this-test")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(a, digest, "the cookie is not the token's hash");
        assert!(auth.is_session(&a).await && auth.is_session(&b).await);
        auth.close(&a).await.expect("close");
        assert!(!auth.is_session(&a).await, "signed out");
        assert!(auth.is_session(&b).await, "the other session stays");
        assert!(!auth.is_session(&digest).await);
        assert!(!auth.is_session("not hex").await);
    }
}
