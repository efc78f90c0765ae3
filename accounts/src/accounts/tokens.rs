//! Users' forge tokens: one per linked forge, decrypted for one call, refreshed before they
//! expire; and the credential a git job on a private repository uses.

use super::*;

impl Accounts {
    /// `user`'s access token on forge `p`, decrypted for one use; refreshed first (and the new
    /// pair stored) when it expires within [`REFRESH_MARGIN`].
    pub async fn token(
        &self,
        user: &User,
        p: &dyn Provider,
    ) -> Result<Zeroizing<String>, TokenError> {
        let (store, uid, kind) = (self.store.clone(), user.id.clone(), p.kind());
        let connection = blocking(move || store.connection(&uid, kind))
            .await
            .map_err(|_| TokenError::Unavailable(p.name()))?
            .ok_or(TokenError::NotLinked(p.name()))?;
        self.connection_token(&connection, p).await
    }

    /// The access token of `connection` (an account on forge `p`), refreshed when it expires
    /// soon.
    pub async fn connection_token(
        &self,
        connection: &Connection,
        p: &dyn Provider,
    ) -> Result<Zeroizing<String>, TokenError> {
        let cipher = &self.auth.cipher;
        let decrypt = |c: &Connection| {
            cipher
                .decrypt(&c.user_id, &c.access_token)
                .map_err(|e| TokenError::Stored(e.to_string()))
        };
        let fresh = |c: &Connection| {
            c.token_expires_at
                .is_none_or(|t| t > now() + REFRESH_MARGIN)
        };
        if fresh(connection) {
            return decrypt(connection);
        }
        let (uid, kind) = (connection.user_id.clone(), p.kind());
        let lock = {
            let mut map = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(map.entry(format!("{uid} {kind}")).or_default())
        };
        let _held = lock.lock().await;
        // Another request (or node) may have refreshed while this one waited.
        let reread = || {
            let (store, uid) = (self.store.clone(), uid.clone());
            blocking(move || store.connection(&uid, kind))
        };
        let current = reread()
            .await
            .map_err(|_| TokenError::Unavailable(p.name()))?
            .ok_or(TokenError::NotLinked(p.name()))?;
        if fresh(&current) {
            return decrypt(&current);
        }
        let Some(stored_refresh) = &current.refresh_token else {
            return Err(TokenError::Expired(p.name()));
        };
        if current.refresh_expires_at.is_some_and(|t| t <= now()) {
            return Err(TokenError::Expired(p.name()));
        }
        let refresh = cipher
            .decrypt(&current.user_id, stored_refresh)
            .map_err(|e| TokenError::Stored(e.to_string()))?;
        let grant = match p.refresh(&refresh).await {
            Ok(g) => g,
            Err(ForgeError::Refused(_)) => {
                // A used refresh token stops working: if another node refreshed first, its
                // pair is in the store now.
                if let Ok(Some(again)) = reread().await
                    && again.access_token != current.access_token
                    && fresh(&again)
                {
                    return decrypt(&again);
                }
                tracing::info!(user = %uid, forge = kind, "the forge refused the refresh token; the user must sign in again");
                return Err(TokenError::Expired(p.name()));
            }
            Err(_) => return Err(TokenError::Unavailable(p.name())),
        };
        let seal = |t: &str| {
            cipher
                .encrypt(&current.user_id, t)
                .map_err(|e| TokenError::Stored(e.to_string()))
        };
        let access = seal(&grant.access_token)?;
        let refresh_ct = grant.refresh_token.as_ref().map(|t| seal(t)).transpose()?;
        let at = now();
        let (store, u, previous) = (
            self.store.clone(),
            uid.clone(),
            current.access_token.clone(),
        );
        let expires = grant.expires_in.map(|s| at + s);
        let refresh_expires = grant
            .refresh_expires_in
            .map(|s| at + s)
            .or(current.refresh_expires_at);
        blocking(move || {
            store.replace_tokens(
                &u,
                kind,
                &previous,
                &Tokens {
                    access_token: &access,
                    refresh_token: refresh_ct.as_deref(),
                    token_expires_at: expires,
                    refresh_expires_at: refresh_expires,
                },
            )
        })
        .await
        .map_err(|_| TokenError::Unavailable(p.name()))?;
        self.forget_user(&uid);
        metrics::counter!("gitvista_token_refreshes_total", "forge" => kind).increment(1);
        tracing::info!(user = %uid, forge = kind, "refreshed a forge token");
        Ok(grant.access_token)
    }

    /// The credential a git job on `repo_id` uses: none for a public repository; for a private
    /// one the token of the user who tracks it with an account on its forge and was confirmed
    /// most recently, refreshed if needed (the next one when a token is dead), presented with
    /// the forge's user name.
    pub async fn credential(
        &self,
        repo_id: &str,
    ) -> Result<Option<gitvista_actors::clone_queue::Credential>, String> {
        let (store, rid) = (self.store.clone(), repo_id.to_string());
        let repo = blocking(move || store.repo(&rid))
            .await
            .map_err(|e| e.to_string())?;
        let Some(repo) = repo.filter(|r| r.is_private) else {
            return Ok(None);
        };
        let Some((p, _)) = self.forge_of(&repo.canonical_url) else {
            return Err("it is private and on no forge this server signs in with".into());
        };
        let (store, rid, kind) = (self.store.clone(), repo.id.clone(), p.kind());
        let readers = blocking(move || store.readers(&rid, kind))
            .await
            .map_err(|e| e.to_string())?;
        for (_, connection) in &readers {
            if let Ok(token) = self.connection_token(connection, p.as_ref()).await {
                return Ok(Some(gitvista_actors::clone_queue::Credential::basic(
                    p.git_username(),
                    &token,
                )));
            }
        }
        Err(format!(
            "none of the {} users who track it has a {} sign-in that still works",
            readers.len(),
            p.name()
        ))
    }
}

/// What a user is told when their token cannot be used: connect the forge, sign in again (an
/// expired sign-in, or one stored under a key the server no longer has, which the log names for
/// the operator), or try again later (the forge unreachable).
pub fn token_failed(user: &User, e: &TokenError) -> ApiError {
    match e {
        TokenError::NotLinked(_) => ApiError::status(403, e.to_string(), "forge_not_connected"),
        TokenError::Expired(_) => ApiError::status(401, e.to_string(), "sign_in_expired"),
        TokenError::Unavailable(name) => ApiError::status(
            502,
            e.to_string(),
            crate::provider::unavailable_code(&name.to_ascii_lowercase()),
        ),
        TokenError::Stored(why) => {
            tracing::warn!(user = %user.id, error = %why, "a stored forge token cannot be decrypted");
            ApiError::status(
                401,
                "the server cannot use your stored forge sign-in; sign in again",
                "sign_in_expired",
            )
        }
    }
}
