//! Who a request is from: the session cookie's token, checked against its row through a short
//! cache and slid forward while the user is active; signing out, here and everywhere.

use super::*;

impl Accounts {
    /// The user of a session cookie's token, if it names a live session; slides the session
    /// forward (and answers a new token) when it was last slid over [`SLIDE_EVERY`] ago.
    pub async fn identify(&self, token: &str) -> Option<Viewer> {
        let at = now();
        let claims = jwt::verify(&self.auth.jwt, token, at).ok()?;
        let cached = self
            .sessions
            .get(&claims.sid)
            .filter(|c| c.at.elapsed() < SESSION_CACHE);
        let cached = match cached {
            Some(c) => c,
            None => {
                let (store, sid) = (self.store.clone(), claims.sid.clone());
                let found = blocking(move || {
                    let Some(session) = store.session(&sid)? else {
                        return Ok(None);
                    };
                    Ok(store.user(&session.user_id)?.map(|user| (session, user)))
                })
                .await
                .ok()??;
                let plan = self.plan_of(&found.1).await.map_or("free", |p| p.plan);
                let c = CachedSession {
                    session: found.0,
                    user: found.1,
                    plan,
                    at: Instant::now(),
                };
                self.sessions.insert(claims.sid.clone(), c.clone());
                c
            }
        };
        if !cached.session.is_live(at) || cached.session.user_id != claims.sub {
            return None;
        }
        let mut renewed = None;
        if cached.session.expires_at - at < SESSION_SECS - SLIDE_EVERY {
            let expires = at + SESSION_SECS;
            let (store, sid) = (self.store.clone(), claims.sid.clone());
            if let Ok(true) = blocking(move || store.extend_session(&sid, expires)).await {
                self.sessions.remove(&claims.sid);
                renewed = Some(jwt::sign(
                    &self.auth.jwt,
                    &Claims {
                        exp: expires,
                        ..claims.clone()
                    },
                ));
            }
        }
        Some(Viewer {
            user: cached.user,
            session_id: claims.sid,
            renewed,
            plan: cached.plan,
        })
    }

    /// Ends one session now (sign-out).
    pub async fn sign_out(&self, session_id: &str) -> Result<(), ApiError> {
        self.sessions.remove(session_id);
        self.tell_others(format!("s:{session_id}"));
        let (store, sid) = (self.store.clone(), session_id.to_string());
        blocking(move || store.revoke_session(&sid)).await?;
        Ok(())
    }

    /// Ends every session of `user_id` now ("sign out everywhere", an admin's revoke);
    /// answers how many were live.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<usize, ApiError> {
        let (store, uid) = (self.store.clone(), user_id.to_string());
        let n = blocking(move || store.revoke_user_sessions(&uid)).await?;
        // Cached lookups of this user's sessions are dropped here, and on the other nodes of a
        // cluster at once (through Redis); without that, within SESSION_CACHE.
        self.forget_user(user_id);
        Ok(n)
    }

    /// Forgets cached lookups of `user_id` (their plan or profile changed, or they were signed
    /// out everywhere), here and on the other nodes.
    pub fn forget_user(&self, user_id: &str) {
        self.sessions.retain(|_, c| c.user.id != user_id);
        self.tell_others(format!("u:{user_id}"));
    }
}
