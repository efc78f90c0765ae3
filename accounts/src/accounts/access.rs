//! Whether a user may read a private repository: their own token for the repository's forge
//! asked, at most every [`Accounts::access_recheck`], and the answer recorded.

use super::*;

impl Accounts {
    /// What forge `p` says of `user`'s access to the repository at `path` with their own token.
    pub async fn ask_forge(
        &self,
        user: &User,
        p: &dyn Provider,
        path: &str,
    ) -> Result<Option<ForgeRepo>, ApiError> {
        let token = self
            .token(user, p)
            .await
            .map_err(|e| token_failed(user, &e))?;
        match p.repo(&token, path).await {
            Ok(r) => Ok(r),
            Err(ForgeError::Refused(_)) => Err(ApiError::status(
                401,
                format!("{} no longer accepts your sign-in; sign in again", p.name()),
                "sign_in_expired",
            )),
            Err(_) => Err(forge_unavailable(p)),
        }
    }

    /// Whether `viewer` may read `repo` now. Public repositories: anyone. Private: a user who
    /// tracks it and whose token its forge let read it within [`Accounts::access_recheck`]
    /// (asked again when older; a "no" removes their access; the forge saying the repository
    /// went private marks it so).
    pub async fn may_read(&self, repo: &Repo, viewer: Option<&Viewer>) -> Access {
        if !repo.is_private {
            return Access::Granted;
        }
        let Some(viewer) = viewer else {
            return Access::Denied;
        };
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), viewer.user.id.clone());
        let found =
            blocking(move || Ok((store.access(&rid, &uid)?, store.team_lists(&rid, &uid)?))).await;
        let checked = match found {
            Ok((Some(checked), _)) => checked.unwrap_or(0),
            // On a list of a team of theirs: their own forge account is asked, as for anyone
            // (a team never widens what a member may read).
            Ok((None, true)) => return self.recheck_for_team(repo, &viewer.user).await,
            _ => return Access::Denied,
        };
        let at = now();
        if at - checked < self.access_recheck.as_secs() as i64 {
            return Access::Granted;
        }
        self.recheck(repo, &viewer.user, checked).await
    }

    /// For a public repository on a configured forge that `user` tracks: asks the forge again
    /// (with their token) when the last answer is older than the recheck interval, so a
    /// repository made private is marked private (and from then on hidden from everyone else).
    /// Run in the background of a request; at most once per interval per repository and user.
    pub async fn notice_visibility(&self, repo: &Repo, user: &User) {
        if repo.is_private {
            return;
        }
        // Only a user with an account on the repository's forge can ask it.
        let Some((p, _)) = self.forge_of(&repo.canonical_url) else {
            return;
        };
        let (store, uid, kind) = (self.store.clone(), user.id.clone(), p.kind());
        if !matches!(
            blocking(move || store.connection(&uid, kind)).await,
            Ok(Some(_))
        ) {
            return;
        }
        let key = (repo.id.clone(), user.id.clone());
        if self
            .visibility_looked
            .get(&key)
            .is_some_and(|at| at.elapsed() < self.access_recheck)
        {
            return;
        }
        self.visibility_looked.insert(key, Instant::now());
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), user.id.clone());
        let Ok(Some(checked)) = blocking(move || store.access(&rid, &uid)).await else {
            return;
        };
        let checked = checked.unwrap_or(0);
        if now() - checked >= self.access_recheck.as_secs() as i64 {
            self.recheck(repo, user, checked).await;
        }
    }

    /// Asks the repository's forge whether `user`, a member of a team that lists `repo`, may
    /// read it with their own account; a yes is remembered as access through the team.
    async fn recheck_for_team(&self, repo: &Repo, user: &User) -> Access {
        let Some((p, path)) = self.forge_of(&repo.canonical_url) else {
            return Access::Denied;
        };
        match self.ask_forge(user, p.as_ref(), &path).await {
            Ok(Some(found))
                if self
                    .compare(&repo.id, found.clone(), crate::confirm::Learn::Yes)
                    .await
                    != crate::confirm::ForgeSays::Another =>
            {
                let (store, rid, uid) = (self.store.clone(), repo.id.clone(), user.id.clone());
                let _ = blocking(move || store.grant_team_access(&rid, &uid, now())).await;
                Access::Granted
            }
            Ok(_)
            | Err(ApiError::Status {
                status: 401 | 403, ..
            }) => Access::Denied,
            Err(_) => Access::Unconfirmed(p.name()),
        }
    }

    /// Asks the repository's forge again whether `user` may read `repo` and records the answer.
    pub async fn recheck(&self, repo: &Repo, user: &User, checked: i64) -> Access {
        let Some((p, path)) = self.forge_of(&repo.canonical_url) else {
            return Access::Denied;
        };
        let mut answer = self.ask_forge(user, p.as_ref(), &path).await;
        // The URL may name another repository now (renamed away, and a new one made at its
        // old name): that one's answer says nothing about this one.
        if let Ok(Some(found)) = &answer
            && self
                .compare(&repo.id, found.clone(), crate::confirm::Learn::Yes)
                .await
                == crate::confirm::ForgeSays::Another
        {
            answer = Ok(None);
        }
        let (store, rid, uid) = (self.store.clone(), repo.id.clone(), user.id.clone());
        match answer {
            Ok(Some(found)) => {
                let private = found.private;
                let _ = blocking(move || {
                    // Only refreshes the row: an untrack that won the race stays untracked.
                    store.confirm_access(&rid, &uid, now())?;
                    store.set_private(&rid, private)
                })
                .await;
                Access::Granted
            }
            // No, the sign-in is dead, or no account on that forge is linked any more.
            Ok(None)
            | Err(ApiError::Status {
                status: 401 | 403, ..
            }) => {
                tracing::info!(repo = %repo.id, user = %user.id, forge = p.kind(), "the forge no longer lets the user read the repository; access removed");
                metrics::counter!("gitvista_access_lost_total").increment(1);
                let _ = blocking(move || store.revoke_access(&rid, &uid)).await;
                Access::Denied
            }
            Err(_) if now() - checked < ACCESS_GRACE => Access::Granted,
            Err(_) => Access::Unconfirmed(p.name()),
        }
    }
}
