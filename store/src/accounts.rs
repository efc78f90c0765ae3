//! Users, their forge accounts (connections) and their sessions. Forge tokens are stored as the ciphertexts
//! the accounts floor's `TokenCipher` makes; this module never sees a token in the clear.

use diesel::prelude::*;

use super::schema::{oauth_connections, repo_access, repos, sessions, users};
use super::{AnyConnection, Repo, Store, StoreError, now};

/// The `repo_access` role of a user who tracks a repository (it counts towards their plan).
pub const TRACKS: &str = "viewer";

/// What [`Store::track_within`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// Tracked now.
    Added,
    /// Tracked before (its access re-dated).
    Already,
    /// Not tracked: the user tracks this many already, the limit.
    OverLimit(i64),
    /// Not tracked: the user tracks this many private repositories already, the limit.
    OverPrivateLimit(i64),
}
/// The role of access that comes from a team's list (confirmed with the member's own token;
/// not tracked by them).
pub const THROUGH_TEAM: &str = "team";

/// A user row: who they are to GitVista. Their forge accounts are [`Connection`]s.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// GitVista's id for the user.
    pub id: String,
    /// The login shown (the forge login they first signed in with).
    pub login: String,
    /// Public email, if any.
    pub email: Option<String>,
    /// Display name, if any.
    pub display_name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// `free` or `paid`.
    pub plan: String,
    /// First sign-in.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A forge account linked to a user, with its tokens as ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = oauth_connections)]
pub struct Connection {
    /// Whose.
    pub user_id: String,
    /// `github`, `gitlab` or `bitbucket`.
    pub provider: String,
    /// The forge's stable id of the account.
    pub forge_user_id: String,
    /// The login on the forge.
    pub login: String,
    /// The access token, encrypted.
    pub access_token: Vec<u8>,
    /// The refresh token, encrypted.
    pub refresh_token: Option<Vec<u8>>,
    /// When the access token expires.
    pub token_expires_at: Option<i64>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<i64>,
    /// `app` (expiring, refreshable) or `oauth` (a classic OAuth App's).
    pub token_kind: String,
    /// The scopes granted, space-separated.
    pub scopes: String,
    /// When it was linked.
    pub created_at: i64,
    /// Last change (a sign-in or a refresh).
    pub updated_at: i64,
}

impl Connection {
    /// Whether the forge granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split([' ', ',']).any(|s| s.trim() == scope)
    }
}

/// What a sign-in knows about the forge account, tokens already encrypted.
#[derive(Debug, Clone)]
pub struct SignedIn<'a> {
    /// `github`, `gitlab` or `bitbucket`.
    pub provider: &'a str,
    /// The forge's stable id of the account.
    pub forge_user_id: &'a str,
    /// Login.
    pub login: &'a str,
    /// Email.
    pub email: Option<&'a str>,
    /// Name.
    pub name: Option<&'a str>,
    /// Avatar URL.
    pub avatar_url: Option<&'a str>,
    /// Encrypted access token.
    pub access_token: &'a [u8],
    /// Encrypted refresh token.
    pub refresh_token: Option<&'a [u8]>,
    /// Access token expiry.
    pub token_expires_at: Option<i64>,
    /// Refresh token expiry.
    pub refresh_expires_at: Option<i64>,
    /// `app` or `oauth`.
    pub token_kind: &'a str,
    /// Scopes granted, space-separated.
    pub scopes: &'a str,
}

/// Why a forge account cannot be linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRefused {
    /// It is the forge account of another GitVista user.
    OtherUser,
}

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// Random id, named by the cookie's token.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// When it began.
    pub created_at: i64,
    /// When it ends unless used (slid forward while the user is active).
    pub expires_at: i64,
    /// Last request seen.
    pub last_seen_at: i64,
    /// When it was ended (sign-out, sign out everywhere, an admin).
    pub revoked_at: Option<i64>,
}

impl Session {
    /// Whether it still lets its user in at `at`.
    pub fn is_live(&self, at: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > at
    }
}

impl Store {
    /// The user whose forge account `who` is, created with `new_id` on first sign-in (their
    /// login, name and avatar taken from it); the connection's login and tokens are updated
    /// either way, and so is a profile field the user has none of yet.
    pub fn sign_in_user(&self, new_id: &str, who: &SignedIn<'_>) -> Result<User, StoreError> {
        let mut conn = self.conn()?;
        let at = now();
        crate::write_transaction(&mut conn, |conn| {
            let existing: Option<(String, String)> = oauth_connections::table
                .filter(oauth_connections::provider.eq(who.provider))
                .filter(oauth_connections::forge_user_id.eq(who.forge_user_id))
                .select((oauth_connections::user_id, oauth_connections::login))
                .first(conn)
                .optional()?;
            let id = match existing {
                Some((id, old_login)) => {
                    let user: User = users::table
                        .find(&id)
                        .select(User::as_select())
                        .first(conn)?;
                    // A login renamed on the forge it came from follows; one from another
                    // forge stays.
                    let login = if user.login == old_login {
                        who.login.to_string()
                    } else {
                        user.login.clone()
                    };
                    diesel::update(users::table.find(&id))
                        .set((
                            users::login.eq(login),
                            users::email.eq(user.email.as_deref().or(who.email)),
                            users::display_name.eq(user.display_name.as_deref().or(who.name)),
                            users::avatar_url.eq(user.avatar_url.as_deref().or(who.avatar_url)),
                            users::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                    id
                }
                None => {
                    diesel::insert_into(users::table)
                        .values((
                            users::id.eq(new_id),
                            users::login.eq(who.login),
                            users::email.eq(who.email),
                            users::display_name.eq(who.name),
                            users::avatar_url.eq(who.avatar_url),
                            users::plan.eq("free"),
                            users::created_at.eq(at),
                            users::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                    new_id.to_string()
                }
            };
            put_connection(conn, &id, who, at)?;
            Ok(users::table
                .find(&id)
                .select(User::as_select())
                .first(conn)?)
        })
    }

    /// Links forge account `who` to user `user_id` (replacing the account of that forge they
    /// had linked before); refused when it is another user's. Answers the forge account that
    /// was replaced, if it was a different one.
    pub fn link_connection(
        &self,
        user_id: &str,
        who: &SignedIn<'_>,
    ) -> Result<Result<Option<Connection>, LinkRefused>, StoreError> {
        let mut conn = self.conn()?;
        let at = now();
        crate::write_transaction(&mut conn, |conn| {
            let owner: Option<String> = oauth_connections::table
                .filter(oauth_connections::provider.eq(who.provider))
                .filter(oauth_connections::forge_user_id.eq(who.forge_user_id))
                .select(oauth_connections::user_id)
                .first(conn)
                .optional()?;
            if owner.as_deref().is_some_and(|o| o != user_id) {
                return Ok(Err(LinkRefused::OtherUser));
            }
            let before: Option<Connection> = oauth_connections::table
                .find((user_id, who.provider))
                .select(Connection::as_select())
                .first(conn)
                .optional()?;
            put_connection(conn, user_id, who, at)?;
            Ok(Ok(before.filter(|b| b.forge_user_id != who.forge_user_id)))
        })
    }

    /// `user_id`'s connection to `provider`.
    pub fn connection(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<Connection>, StoreError> {
        let mut conn = self.conn()?;
        Ok(oauth_connections::table
            .find((user_id, provider))
            .select(Connection::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Every forge account linked to `user_id`, in the order they were linked.
    pub fn connections(&self, user_id: &str) -> Result<Vec<Connection>, StoreError> {
        let mut conn = self.conn()?;
        Ok(oauth_connections::table
            .filter(oauth_connections::user_id.eq(user_id))
            .order(oauth_connections::created_at.asc())
            .select(Connection::as_select())
            .load(&mut *conn)?)
    }

    /// Unlinks `user_id`'s `provider` account and ends their access to `private_repos` (the
    /// private repositories on that forge, whose access it granted); false when it was not
    /// linked.
    pub fn unlink(
        &self,
        user_id: &str,
        provider: &str,
        private_repos: &[String],
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |conn| {
            let n =
                diesel::delete(oauth_connections::table.find((user_id, provider))).execute(conn)?;
            diesel::delete(
                repo_access::table
                    .filter(repo_access::user_id.eq(user_id))
                    .filter(repo_access::repo_id.eq_any(private_repos)),
            )
            .execute(conn)?;
            Ok(n == 1)
        })
    }

    /// The user `id`.
    pub fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let mut conn = self.conn()?;
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Starts session `id` for `user_id`, ending at `expires_at` unless slid forward.
    pub fn create_session(
        &self,
        id: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<Session, StoreError> {
        let mut conn = self.conn()?;
        let at = now();
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(id),
                sessions::user_id.eq(user_id),
                sessions::created_at.eq(at),
                sessions::expires_at.eq(expires_at),
                sessions::last_seen_at.eq(at),
            ))
            .execute(&mut *conn)?;
        Ok(sessions::table
            .find(id)
            .select(Session::as_select())
            .first(&mut *conn)?)
    }

    /// Session `id`, live or not.
    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn()?;
        Ok(sessions::table
            .find(id)
            .select(Session::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Slides a live session's end to `expires_at`; false when it is revoked or gone.
    pub fn extend_session(&self, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::expires_at.eq(expires_at),
            sessions::last_seen_at.eq(now()),
        ))
        .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Ends session `id` (sign-out); false when it was not live.
    pub fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(now()))
        .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Ends every session of `user_id` ("sign out everywhere", an admin's revoke); answers how
    /// many were live.
    pub fn revoke_user_sessions(&self, user_id: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(now()))
        .execute(&mut *conn)?)
    }

    /// The user whose account on forge `provider` is `forge_user_id`.
    pub fn user_by_forge(
        &self,
        provider: &str,
        forge_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let mut conn = self.conn()?;
        Ok(oauth_connections::table
            .inner_join(users::table)
            .filter(oauth_connections::provider.eq(provider))
            .filter(oauth_connections::forge_user_id.eq(forge_user_id))
            .select(User::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Every user, oldest first (admins).
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut conn = self.conn()?;
        Ok(users::table
            .order(users::created_at.asc())
            .select(User::as_select())
            .load(&mut *conn)?)
    }

    /// Stores a refreshed token pair of `user_id`'s `provider` account; false when `previous`
    /// (the access token ciphertext the refresh started from) is no longer the stored one:
    /// another request refreshed first.
    pub fn replace_tokens(
        &self,
        user_id: &str,
        provider: &str,
        previous: &[u8],
        t: &Tokens<'_>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            oauth_connections::table
                .find((user_id, provider))
                .filter(oauth_connections::access_token.eq(previous)),
        )
        .set((
            oauth_connections::access_token.eq(t.access_token),
            oauth_connections::refresh_token.eq(t.refresh_token),
            oauth_connections::token_expires_at.eq(t.token_expires_at),
            oauth_connections::refresh_expires_at.eq(t.refresh_expires_at),
            oauth_connections::updated_at.eq(now()),
        ))
        .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Sets `user_id`'s plan; false when there is no such user.
    pub fn set_plan(&self, user_id: &str, plan: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(users::table.find(user_id))
            .set((users::plan.eq(plan), users::updated_at.eq(now())))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Records that `user_id` tracks `repo_id` and their token could read it at `checked_at`
    /// (`None`: a public repository, nothing to check); answers whether the row is new.
    pub fn grant_access(
        &self,
        repo_id: &str,
        user_id: &str,
        checked_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |conn| {
            // Access through a team becomes tracking (and counts from now on).
            let n = diesel::update(repo_access::table.find((repo_id, user_id)))
                .set((
                    repo_access::checked_at.eq(checked_at),
                    repo_access::role.eq(TRACKS),
                ))
                .execute(conn)?;
            if n == 1 {
                return Ok(false);
            }
            diesel::insert_into(repo_access::table)
                .values((
                    repo_access::repo_id.eq(repo_id),
                    repo_access::user_id.eq(user_id),
                    repo_access::role.eq("viewer"),
                    repo_access::granted_at.eq(now()),
                    repo_access::checked_at.eq(checked_at),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }

    /// Records that the forge confirmed at `checked_at` that `user_id` may still read `repo_id`,
    /// if they still have it (access through a team becomes tracking, as in [`Self::grant_access`]);
    /// answers whether they did. Never adds a row: a confirmation that arrives after the user
    /// stopped tracking (a recheck in the background of their own request) must not track it
    /// again.
    pub fn confirm_access(
        &self,
        repo_id: &str,
        user_id: &str,
        checked_at: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(repo_access::table.find((repo_id, user_id)))
            .set((
                repo_access::checked_at.eq(Some(checked_at)),
                repo_access::role.eq(TRACKS),
            ))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// `user_id` tracks `repo_id` (access confirmed at `checked_at`), unless that would take
    /// them past `limit` repositories or, for a private one (`private_limit`), past that many
    /// private ones. The counts are taken under a lock of the user's row, in the insert's own
    /// transaction, so requests at once cannot pass a limit together.
    pub fn track_within(
        &self,
        repo_id: &str,
        user_id: &str,
        checked_at: Option<i64>,
        limit: i64,
        private_limit: Option<i64>,
    ) -> Result<Tracked, StoreError> {
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |c| {
            // A write first: the user's row locked on PostgreSQL, SQLite's write lock taken.
            diesel::update(users::table.find(user_id))
                .set(users::plan.eq(users::plan))
                .execute(c)?;
            let tracked = |c: &mut AnyConnection, private_only: bool| -> QueryResult<i64> {
                let q = repo_access::table
                    .inner_join(repos::table)
                    .filter(repo_access::user_id.eq(user_id))
                    .filter(repo_access::role.eq(TRACKS))
                    .into_boxed();
                let q = if private_only {
                    q.filter(repos::is_private.eq(true))
                } else {
                    q
                };
                q.count().get_result(c)
            };
            let already: i64 = repo_access::table
                .filter(repo_access::repo_id.eq(repo_id))
                .filter(repo_access::user_id.eq(user_id))
                .filter(repo_access::role.eq(TRACKS))
                .count()
                .get_result(c)?;
            if already == 0 {
                let used = tracked(c, false)?;
                if used >= limit {
                    return Ok(Tracked::OverLimit(used));
                }
                if let Some(allowed) = private_limit {
                    let privates = tracked(c, true)?;
                    if privates >= allowed {
                        return Ok(Tracked::OverPrivateLimit(privates));
                    }
                }
            }
            let n = diesel::update(repo_access::table.find((repo_id, user_id)))
                .set((
                    repo_access::checked_at.eq(checked_at),
                    repo_access::role.eq(TRACKS),
                ))
                .execute(c)?;
            if n == 0 {
                diesel::insert_into(repo_access::table)
                    .values((
                        repo_access::repo_id.eq(repo_id),
                        repo_access::user_id.eq(user_id),
                        repo_access::role.eq(TRACKS),
                        repo_access::granted_at.eq(now()),
                        repo_access::checked_at.eq(checked_at),
                    ))
                    .execute(c)?;
            }
            Ok(if already == 0 {
                Tracked::Added
            } else {
                Tracked::Already
            })
        })
    }

    /// Whether `user_id` tracks `repo_id` (not only reads it through a team).
    pub fn tracks(&self, repo_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n: i64 = repo_access::table
            .filter(repo_access::repo_id.eq(repo_id))
            .filter(repo_access::user_id.eq(user_id))
            .filter(repo_access::role.eq(TRACKS))
            .count()
            .get_result(&mut *conn)?;
        Ok(n > 0)
    }

    /// Records that `user_id`'s own token could read `repo_id`, which a team of theirs lists:
    /// access without tracking (a row they track already is only re-dated).
    pub fn grant_team_access(
        &self,
        repo_id: &str,
        user_id: &str,
        checked_at: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |conn| {
            let n = diesel::update(repo_access::table.find((repo_id, user_id)))
                .set(repo_access::checked_at.eq(Some(checked_at)))
                .execute(conn)?;
            if n == 0 {
                diesel::insert_into(repo_access::table)
                    .values((
                        repo_access::repo_id.eq(repo_id),
                        repo_access::user_id.eq(user_id),
                        repo_access::role.eq(THROUGH_TEAM),
                        repo_access::granted_at.eq(now()),
                        repo_access::checked_at.eq(Some(checked_at)),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    /// Ends access through a team to `repo_ids` for `user_id` (they left the team, or the
    /// repository left its list); what they track themselves stays.
    pub fn revoke_team_access(&self, user_id: &str, repo_ids: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        diesel::delete(
            repo_access::table
                .filter(repo_access::user_id.eq(user_id))
                .filter(repo_access::role.eq(THROUGH_TEAM))
                .filter(repo_access::repo_id.eq_any(repo_ids)),
        )
        .execute(&mut *conn)?;
        Ok(())
    }

    /// When `user_id`'s access to `repo_id` was last confirmed (`Some(None)`: granted, never
    /// checked; `None`: not granted).
    pub fn access(&self, repo_id: &str, user_id: &str) -> Result<Option<Option<i64>>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repo_access::table
            .find((repo_id, user_id))
            .select(repo_access::checked_at)
            .first(&mut *conn)
            .optional()?)
    }

    /// Ends `user_id`'s access to `repo_id` (stop tracking, or GitHub said no); false when they
    /// had none.
    pub fn revoke_access(&self, repo_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::delete(repo_access::table.find((repo_id, user_id))).execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Who tracks `repo_id` with an account on `provider` linked, most recently confirmed
    /// first (the fetch takes the first token that works).
    pub fn readers(
        &self,
        repo_id: &str,
        provider: &str,
    ) -> Result<Vec<(User, Connection)>, StoreError> {
        let mut conn = self.conn()?;
        let mut rows: Vec<(User, Connection, Option<i64>)> = repo_access::table
            .inner_join(users::table.inner_join(oauth_connections::table))
            .filter(repo_access::repo_id.eq(repo_id))
            .filter(oauth_connections::provider.eq(provider))
            .select((
                User::as_select(),
                Connection::as_select(),
                repo_access::checked_at,
            ))
            .load(&mut *conn)?;
        rows.sort_by_key(|(_, _, checked)| std::cmp::Reverse(checked.unwrap_or(0)));
        Ok(rows.into_iter().map(|(u, c, _)| (u, c)).collect())
    }

    /// The repositories `user_id` tracks, most recently viewed first.
    pub fn tracked(&self, user_id: &str) -> Result<Vec<Repo>, StoreError> {
        let mut conn = self.conn()?;
        let mut rows: Vec<Repo> = repo_access::table
            .inner_join(repos::table)
            .filter(repo_access::user_id.eq(user_id))
            .filter(repo_access::role.eq(TRACKS))
            .select(Repo::as_select())
            .load(&mut *conn)?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.last_access_at.unwrap_or(r.created_at)));
        Ok(rows)
    }

    /// How many repositories `user_id` tracks (their plan's usage).
    pub fn tracked_count(&self, user_id: &str) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(repo_access::table
            .filter(repo_access::user_id.eq(user_id))
            .filter(repo_access::role.eq(TRACKS))
            .count()
            .get_result(&mut *conn)?)
    }

    /// Whether anyone tracks `repo_id`.
    pub fn is_tracked(&self, repo_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n: i64 = repo_access::table
            .filter(repo_access::repo_id.eq(repo_id))
            .count()
            .get_result(&mut *conn)?;
        Ok(n > 0)
    }

    /// Marks `repo_id` private or public (what GitHub said at the last check).
    pub fn set_private(&self, repo_id: &str, private: bool) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(repos::table.find(repo_id))
            .set(repos::is_private.eq(private))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Every stored token ciphertext with its owner and forge (for `gitvista rotate-key`).
    pub fn all_tokens(&self) -> Result<Vec<StoredTokens>, StoreError> {
        let mut conn = self.conn()?;
        Ok(oauth_connections::table
            .select((
                oauth_connections::user_id,
                oauth_connections::provider,
                oauth_connections::access_token,
                oauth_connections::refresh_token,
            ))
            .load(&mut *conn)?)
    }

    /// Rewrites one connection's ciphertexts (same tokens, new key); false when they changed
    /// since they were read (a refresh or sign-in came between).
    pub fn reencrypt_tokens(
        &self,
        user_id: &str,
        provider: &str,
        old_access: &[u8],
        access: &[u8],
        refresh: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            oauth_connections::table
                .find((user_id, provider))
                .filter(oauth_connections::access_token.eq(old_access)),
        )
        .set((
            oauth_connections::access_token.eq(access),
            oauth_connections::refresh_token.eq(refresh),
        ))
        .execute(&mut *conn)?;
        Ok(n == 1)
    }
}

/// Writes (inserts or replaces) `user_id`'s connection to `who`'s forge.
fn put_connection(
    conn: &mut super::AnyConnection,
    user_id: &str,
    who: &SignedIn<'_>,
    at: i64,
) -> Result<(), diesel::result::Error> {
    let fields = (
        oauth_connections::forge_user_id.eq(who.forge_user_id),
        oauth_connections::login.eq(who.login),
        oauth_connections::access_token.eq(who.access_token),
        oauth_connections::refresh_token.eq(who.refresh_token),
        oauth_connections::token_expires_at.eq(who.token_expires_at),
        oauth_connections::refresh_expires_at.eq(who.refresh_expires_at),
        oauth_connections::token_kind.eq(who.token_kind),
        oauth_connections::scopes.eq(who.scopes),
        oauth_connections::updated_at.eq(at),
    );
    let n = diesel::update(oauth_connections::table.find((user_id, who.provider)))
        .set(fields)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(oauth_connections::table)
            .values((
                oauth_connections::user_id.eq(user_id),
                oauth_connections::provider.eq(who.provider),
                oauth_connections::created_at.eq(at),
                fields,
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A connection's user id, forge, and access and refresh token ciphertexts.
pub type StoredTokens = (String, String, Vec<u8>, Option<Vec<u8>>);

/// A token pair after a refresh, already encrypted.
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    /// Encrypted access token.
    pub access_token: &'a [u8],
    /// Encrypted refresh token.
    pub refresh_token: Option<&'a [u8]>,
    /// Access token expiry.
    pub token_expires_at: Option<i64>,
    /// Refresh token expiry.
    pub refresh_expires_at: Option<i64>,
}
