//! Signing in with a forge (state and PKCE in a sealed cookie, the code exchange, the user and
//! a session) and linking or unlinking more forges to the same account.

use super::*;

impl Accounts {
    /// Starts a sign-in with forge `p` (or, with `link`, linking it to that signed-in user):
    /// the forge's authorize URL (state, S256 challenge, the scopes `wanted` needs) and the
    /// sealed cookie that remembers forge, state and verifier.
    pub fn begin(
        &self,
        p: &dyn Provider,
        back: &str,
        wanted: Wanted,
        link: Option<&str>,
    ) -> Result<(String, String), ApiError> {
        let state = random_id::<24>()?;
        let verifier = random_id::<48>()?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let back = safe_back(back);
        let sealed = jwt::seal(
            &self.auth.jwt,
            "signin",
            &Pending {
                forge: p.kind().to_string(),
                state: state.clone(),
                verifier,
                back,
                exp: now() + LOGIN_SECS,
                link: link.map(str::to_string),
            },
        );
        let url = p
            .authorize_url(&state, &challenge, wanted)
            .map_err(ApiError::Unavailable)?;
        Ok((url, sealed))
    }

    /// Finishes a sign-in with forge `p`: checks `state` against the cookie (once, and for this
    /// forge), trades the code, asks who the user is, stores their forge account with its
    /// tokens encrypted and starts a session; or, for a link, adds the forge account to the
    /// signed-in `viewer` (who must be the one who started it) and keeps their session.
    /// Nothing is stored unless every step succeeded.
    pub async fn finish(
        &self,
        p: &dyn Provider,
        code: &str,
        state: &str,
        cookie: Option<&str>,
        viewer: Option<&Viewer>,
    ) -> Result<Finished, ApiError> {
        let bad_state = || {
            ApiError::status(
                400,
                "this sign-in link is not the one this browser started (or it was used already); start again from the sign-in button",
                "invalid_state",
            )
        };
        let pending: Pending = cookie
            .and_then(|c| jwt::open(&self.auth.jwt, "signin", c))
            .ok_or_else(bad_state)?;
        if pending.exp <= now() {
            return Err(ApiError::status(
                400,
                "the sign-in took longer than ten minutes; start again",
                "sign_in_expired",
            ));
        }
        if pending.forge != p.kind()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                pending.state.as_bytes(),
                state.as_bytes(),
            ))
        {
            return Err(bad_state());
        }
        if let Some(uid) = &pending.link
            && viewer.is_none_or(|v| &v.user.id != uid)
        {
            return Err(ApiError::status(
                400,
                "connecting an account must finish in the session that started it; sign in and start again",
                "invalid_state",
            ));
        }
        {
            let mut used = self.used_states.lock().unwrap_or_else(|e| e.into_inner());
            let at = now();
            used.retain(|_, exp| *exp > at);
            if used.insert(pending.state.clone(), pending.exp).is_some() {
                return Err(bad_state());
            }
        }
        if code.is_empty() || code.len() > 512 {
            return Err(ApiError::status(
                400,
                format!("{} sent no code", p.name()),
                "sign_in_refused",
            ));
        }
        let grant = p
            .exchange_code(code, &pending.verifier)
            .await
            .map_err(|e| sign_in_failed(p, &e))?;
        let who = p
            .user(&grant.access_token)
            .await
            .map_err(|e| sign_in_failed(p, &e))?;
        let user_id = match &pending.link {
            Some(uid) => uid.clone(),
            None => {
                let (store, kind, fid) = (self.store.clone(), p.kind(), who.id.clone());
                let existing = blocking(move || store.user_by_forge(kind, &fid)).await?;
                match existing {
                    Some(u) => u.id,
                    None => hex_id()?,
                }
            }
        };
        let cipher = &self.auth.cipher;
        let sealed = |t: &str| {
            cipher.encrypt(&user_id, t).map_err(|e| {
                ApiError::status(
                    503,
                    format!("the token could not be stored: {e}"),
                    "unavailable",
                )
            })
        };
        let access = sealed(&grant.access_token)?;
        let refresh = grant
            .refresh_token
            .as_ref()
            .map(|t| sealed(t))
            .transpose()?;
        let at = now();
        let kind = if grant.refresh_token.is_some() || grant.expires_in.is_some() {
            "app"
        } else {
            "oauth"
        };
        let forge = p.kind();
        let scope = grant.scope.clone();
        let signed = move |access: &[u8], refresh: Option<&[u8]>| -> SignedInOwned {
            SignedInOwned {
                provider: forge,
                forge_user_id: who.id.clone(),
                login: who.login.clone(),
                email: who.email.clone(),
                name: who.name.clone(),
                avatar_url: who.avatar_url.clone(),
                access_token: access.to_vec(),
                refresh_token: refresh.map(<[u8]>::to_vec),
                token_expires_at: grant.expires_in.map(|s| at + s),
                refresh_expires_at: grant.refresh_expires_in.map(|s| at + s),
                token_kind: kind,
                scopes: scope.clone(),
            }
        };
        let owned = signed(&access, refresh.as_deref());
        if let Some(uid) = pending.link {
            let (store, u) = (self.store.clone(), uid.clone());
            let linked = blocking(move || {
                let linked = store.link_connection(&u, &owned.borrowed())?;
                Ok((linked, store.user(&u)?))
            })
            .await?;
            let user = match linked {
                (Err(LinkRefused::OtherUser), _) => {
                    return Err(ApiError::status(
                        409,
                        format!(
                            "this {} account is already connected to another GitVista account; sign in with it and disconnect it there first",
                            p.name()
                        ),
                        "forge_account_taken",
                    ));
                }
                (Ok(replaced), Some(user)) => {
                    if replaced.is_some() {
                        // Another account of this forge was linked before: what it granted goes.
                        self.drop_forge_access(&user, p).await?;
                    }
                    user
                }
                (Ok(_), None) => return Err(ApiError::NotFound("the user is gone".into())),
            };
            self.forget_user(&uid);
            tracing::info!(user = %uid, forge, kind, "connected a forge account");
            metrics::counter!("gitvista_forge_links_total", "forge" => forge).increment(1);
            return Ok(Finished {
                user,
                session: None,
                back: pending.back,
            });
        }
        let session_id = random_id::<32>()?;
        let expires = at + SESSION_SECS;
        let (store, sid, uid) = (self.store.clone(), session_id.clone(), user_id.clone());
        let user = blocking(move || {
            let user = store.sign_in_user(&uid, &owned.borrowed())?;
            store.create_session(&sid, &user.id, expires)?;
            Ok(user)
        })
        .await?;
        tracing::info!(user = %user.id, login = %user.login, forge, kind, "signed in");
        metrics::counter!("gitvista_sign_ins_total", "forge" => forge).increment(1);
        let token = jwt::sign(
            &self.auth.jwt,
            &Claims {
                sub: user.id.clone(),
                sid: session_id,
                exp: expires,
            },
        );
        Ok(Finished {
            user,
            session: Some(token),
            back: pending.back,
        })
    }

    /// The private repositories on forge `p` that `user` tracks (their access came from the
    /// connection to it).
    async fn forge_private_repos(
        &self,
        user: &User,
        p: &dyn Provider,
    ) -> Result<Vec<String>, ApiError> {
        let (store, uid) = (self.store.clone(), user.id.clone());
        let tracked = blocking(move || store.tracked(&uid)).await?;
        Ok(tracked
            .into_iter()
            .filter(|r| r.is_private && p.repo_path(&r.canonical_url).is_some())
            .map(|r| r.id)
            .collect())
    }

    /// Ends `user`'s access to the private repositories on forge `p`.
    async fn drop_forge_access(&self, user: &User, p: &dyn Provider) -> Result<(), ApiError> {
        let ids = self.forge_private_repos(user, p).await?;
        let (store, uid) = (self.store.clone(), user.id.clone());
        blocking(move || {
            for id in &ids {
                store.revoke_access(id, &uid)?;
            }
            Ok(())
        })
        .await
    }

    /// Disconnects `user`'s account on forge `p`: its tokens are deleted and the private
    /// repositories it let them read are no longer theirs. The last connection stays (it is how
    /// they sign in).
    pub async fn unlink(&self, user: &User, p: &dyn Provider) -> Result<(), ApiError> {
        self.may_unlink(user, p).await?;
        let ids = self.forge_private_repos(user, p).await?;
        let (store, uid, kind) = (self.store.clone(), user.id.clone(), p.kind());
        blocking(move || store.unlink(&uid, kind, &ids)).await?;
        self.forget_user(&user.id);
        tracing::info!(user = %user.id, forge = kind, "disconnected a forge account");
        Ok(())
    }

    /// Whether `user` may disconnect their account on `p`: 404 when none is linked, 409 when it
    /// is the only one they sign in with.
    pub async fn may_unlink(&self, user: &User, p: &dyn Provider) -> Result<(), ApiError> {
        let connections = self.connections(&user.id).await?;
        if !connections.iter().any(|c| c.provider == p.kind()) {
            return Err(ApiError::NotFound(format!(
                "no {} account is connected",
                p.name()
            )));
        }
        if connections.len() == 1 {
            return Err(ApiError::status(
                409,
                format!(
                    "{} is the only account you sign in with; connect another forge before disconnecting it",
                    p.name()
                ),
                "last_connection",
            ));
        }
        Ok(())
    }
}

/// [`SignedIn`] with owned fields, to move onto the blocking pool.
struct SignedInOwned {
    provider: &'static str,
    forge_user_id: String,
    login: String,
    email: Option<String>,
    name: Option<String>,
    avatar_url: Option<String>,
    access_token: Vec<u8>,
    refresh_token: Option<Vec<u8>>,
    token_expires_at: Option<i64>,
    refresh_expires_at: Option<i64>,
    token_kind: &'static str,
    scopes: String,
}

impl SignedInOwned {
    fn borrowed(&self) -> SignedIn<'_> {
        SignedIn {
            provider: self.provider,
            forge_user_id: &self.forge_user_id,
            login: &self.login,
            email: self.email.as_deref(),
            name: self.name.as_deref(),
            avatar_url: self.avatar_url.as_deref(),
            access_token: &self.access_token,
            refresh_token: self.refresh_token.as_deref(),
            token_expires_at: self.token_expires_at,
            refresh_expires_at: self.refresh_expires_at,
            token_kind: self.token_kind,
            scopes: &self.scopes,
        }
    }
}

/// A new user id: 16 random bytes in hex.
fn hex_id() -> Result<String, ApiError> {
    Ok(random_bytes::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A path on this server to return to after signing in: `/...` but not `//...` (another host)
/// nor anything with a backslash or control character; `/` otherwise.
pub fn safe_back(back: &str) -> String {
    let ok = back.starts_with('/')
        && !back.starts_with("//")
        && back.len() <= 1024
        && !back.chars().any(|c| c == '\\' || c.is_control());
    if ok {
        back.to_string()
    } else {
        "/".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_back;

    #[test]
    fn only_paths_on_this_server_are_returned_to() {
        for ok in ["/", "/r/0123456789abcdef?commit=abc", "/dashboard"] {
            assert_eq!(safe_back(ok), ok);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_back(bad), "/", "{bad:?}");
        }
    }
}
