//! Teams, their members, invitations and shared repositories, and the audit log.

use diesel::Connection as _;
use diesel::prelude::*;

use super::schema::{audit_events, repos, team_invites, team_members, team_repos, teams, users};
use super::{Repo, Store, StoreError, now};
use crate::accounts::User;

/// A team row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = teams)]
pub struct Team {
    /// Random id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `free` or `paid` (an admin's grant; subscriptions decide otherwise).
    pub plan: String,
    /// Who created it.
    #[serde(skip)]
    pub created_by: Option<String>,
    /// When.
    #[serde(rename = "createdAt")]
    pub created_at: i64,
}

/// An invitation row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = team_invites)]
pub struct Invite {
    /// Random id (signed into the link).
    pub id: String,
    /// The team.
    pub team_id: String,
    /// Who made it.
    pub created_by: String,
    /// The role it gives.
    pub role: String,
    /// For one forge account: its forge...
    pub provider: Option<String>,
    /// ... and login.
    pub login: Option<String>,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was used.
    pub used_at: Option<i64>,
    /// By whom.
    pub used_by: Option<String>,
    /// When it was made.
    pub created_at: i64,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    /// Random id.
    #[serde(skip)]
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// `user:<id>`, `admin` or `stripe`.
    pub actor: String,
    /// The team it concerns, if any.
    #[serde(rename = "teamId")]
    pub team_id: Option<String>,
    /// `team.created`, `member.invited`, `member.joined`, `member.removed`, `member.left`,
    /// `owner.transferred`, `repo.added`, `repo.removed`, `plan.changed`.
    pub action: String,
    /// What it was done to (a user, a repository).
    pub target: Option<String>,
    /// More, for people.
    pub detail: Option<String>,
}

/// Why an invitation cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefused {
    /// Unknown (or its team is gone).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Used already.
    Used,
    /// For another forge account than any of the user's.
    NotForYou,
    /// The team has all its seats taken (counted in the same transaction as the join).
    Full(i64),
}

impl Store {
    /// Creates team `id` named `name` with `owner` as its owner.
    pub fn create_team(&self, id: &str, name: &str, owner: &str) -> Result<Team, StoreError> {
        let mut conn = self.conn()?;
        let at = now();
        crate::write_transaction(&mut conn, |c| {
            diesel::insert_into(teams::table)
                .values((
                    teams::id.eq(id),
                    teams::name.eq(name),
                    teams::plan.eq("free"),
                    teams::created_by.eq(owner),
                    teams::created_at.eq(at),
                ))
                .execute(c)?;
            diesel::insert_into(team_members::table)
                .values((
                    team_members::team_id.eq(id),
                    team_members::user_id.eq(owner),
                    team_members::role.eq("owner"),
                    team_members::joined_at.eq(at),
                ))
                .execute(c)?;
            teams::table.find(id).select(Team::as_select()).first(c)
        })
        .map_err(Into::into)
    }

    /// Team `id`.
    pub fn team(&self, id: &str) -> Result<Option<Team>, StoreError> {
        let mut conn = self.conn()?;
        Ok(teams::table
            .find(id)
            .select(Team::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// The teams `user_id` belongs to, with their role.
    pub fn teams_of(&self, user_id: &str) -> Result<Vec<(Team, String)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(team_members::table
            .inner_join(teams::table)
            .filter(team_members::user_id.eq(user_id))
            .order(teams::created_at.asc())
            .select((Team::as_select(), team_members::role))
            .load(&mut *conn)?)
    }

    /// `user_id`'s role in `team_id`, if a member.
    pub fn role_in(&self, team_id: &str, user_id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(team_members::table
            .find((team_id, user_id))
            .select(team_members::role)
            .first(&mut *conn)
            .optional()?)
    }

    /// The members of `team_id` with their roles, owners first.
    pub fn members(&self, team_id: &str) -> Result<Vec<(User, String)>, StoreError> {
        let mut conn = self.conn()?;
        let mut rows: Vec<(User, String, i64)> = team_members::table
            .inner_join(users::table)
            .filter(team_members::team_id.eq(team_id))
            .select((
                User::as_select(),
                team_members::role,
                team_members::joined_at,
            ))
            .load(&mut *conn)?;
        rows.sort_by_key(|(_, role, at)| (role != "owner", *at));
        Ok(rows.into_iter().map(|(u, r, _)| (u, r)).collect())
    }

    /// Records an invitation.
    pub fn create_invite(&self, invite: &Invite) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        diesel::insert_into(team_invites::table)
            .values((
                team_invites::id.eq(&invite.id),
                team_invites::team_id.eq(&invite.team_id),
                team_invites::created_by.eq(&invite.created_by),
                team_invites::role.eq(&invite.role),
                team_invites::provider.eq(&invite.provider),
                team_invites::login.eq(&invite.login),
                team_invites::expires_at.eq(invite.expires_at),
                team_invites::created_at.eq(invite.created_at),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// Invitation `id`.
    pub fn invite(&self, id: &str) -> Result<Option<Invite>, StoreError> {
        let mut conn = self.conn()?;
        Ok(team_invites::table
            .find(id)
            .select(Invite::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Unused, unexpired invitations for forge accounts among `accounts` ((forge, login)).
    pub fn invites_for(&self, accounts: &[(String, String)]) -> Result<Vec<Invite>, StoreError> {
        let mut conn = self.conn()?;
        let all: Vec<Invite> = team_invites::table
            .filter(team_invites::used_at.is_null())
            .filter(team_invites::expires_at.gt(now()))
            .filter(team_invites::login.is_not_null())
            .select(Invite::as_select())
            .load(&mut *conn)?;
        Ok(all
            .into_iter()
            .filter(|i| {
                accounts.iter().any(|(p, l)| {
                    i.provider.as_deref() == Some(p.as_str())
                        && i.login
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(l))
                })
            })
            .collect())
    }

    /// Uses invitation `id` for `user_id` (whose forge accounts are `accounts`): they join its
    /// team with its role (a member already keeps their role), and it is used up; both or
    /// neither. A team with `seats` members already takes no one more: the members are counted
    /// under a lock of the team's row, so joins at once cannot pass the count together.
    pub fn accept_invite(
        &self,
        id: &str,
        user_id: &str,
        accounts: &[(String, String)],
        seats: i64,
    ) -> Result<Result<Invite, InviteRefused>, StoreError> {
        let mut conn = self.conn()?;
        let at = now();
        let joined = crate::write_transaction::<_, diesel::result::Error>(&mut conn, |c| {
            let Some(invite) = team_invites::table
                .find(id)
                .select(Invite::as_select())
                .first(c)
                .optional()?
            else {
                return Ok(Err(InviteRefused::Unknown));
            };
            if invite.used_at.is_some() {
                return Ok(Err(InviteRefused::Used));
            }
            if invite.expires_at <= at {
                return Ok(Err(InviteRefused::Expired));
            }
            if let (Some(p), Some(l)) = (&invite.provider, &invite.login)
                && !accounts
                    .iter()
                    .any(|(ap, al)| ap == p && al.eq_ignore_ascii_case(l))
            {
                return Ok(Err(InviteRefused::NotForYou));
            }
            // Used once: the update only wins while it is still unused.
            let n = diesel::update(
                team_invites::table
                    .find(id)
                    .filter(team_invites::used_at.is_null()),
            )
            .set((
                team_invites::used_at.eq(at),
                team_invites::used_by.eq(user_id),
            ))
            .execute(c)?;
            if n == 0 {
                return Ok(Err(InviteRefused::Used));
            }
            // PostgreSQL: joins to this team wait here for each other.
            diesel::update(teams::table.find(&invite.team_id))
                .set(teams::plan.eq(teams::plan))
                .execute(c)?;
            let members: i64 = team_members::table
                .filter(team_members::team_id.eq(&invite.team_id))
                .count()
                .get_result(c)?;
            let member: i64 = team_members::table
                .filter(team_members::team_id.eq(&invite.team_id))
                .filter(team_members::user_id.eq(user_id))
                .count()
                .get_result(c)?;
            if member == 0 && members >= seats {
                // Rolled back: the invitation stays unused.
                return Err(diesel::result::Error::RollbackTransaction);
            }
            if member == 0 {
                diesel::insert_into(team_members::table)
                    .values((
                        team_members::team_id.eq(&invite.team_id),
                        team_members::user_id.eq(user_id),
                        team_members::role.eq(&invite.role),
                        team_members::joined_at.eq(at),
                    ))
                    .execute(c)?;
            }
            Ok(Ok(invite))
        });
        match joined {
            Err(diesel::result::Error::RollbackTransaction) => Ok(Err(InviteRefused::Full(seats))),
            other => Ok(other?),
        }
    }

    /// Removes `user_id` from `team_id`; false when they were not a member.
    pub fn remove_member(&self, team_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::delete(team_members::table.find((team_id, user_id))).execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Makes `to` the owner of `team_id` and `from` a member, in one transaction; false when
    /// `to` is not a member.
    pub fn transfer_team(&self, team_id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let n = diesel::update(team_members::table.find((team_id, to)))
                .set(team_members::role.eq("owner"))
                .execute(c)?;
            if n == 0 {
                return Ok(false);
            }
            diesel::update(team_members::table.find((team_id, from)))
                .set(team_members::role.eq("member"))
                .execute(c)?;
            Ok(true)
        })
    }

    /// Adds `repo_id` to `team_id`'s list unless it holds `limit` already: `Ok(Some(true))`
    /// added, `Ok(Some(false))` there already, `Ok(None)` full. The list is counted under a lock
    /// of the team's row, in the insert's transaction, so adds at once cannot pass the limit.
    pub fn add_team_repo(
        &self,
        team_id: &str,
        repo_id: &str,
        by: &str,
        limit: i64,
    ) -> Result<Option<bool>, StoreError> {
        let mut conn = self.conn()?;
        Ok(conn.transaction(|c| {
            // A write first: PostgreSQL's row lock on the team, SQLite's write lock.
            diesel::update(teams::table.find(team_id))
                .set(teams::plan.eq(teams::plan))
                .execute(c)?;
            let listed: i64 = team_repos::table
                .filter(team_repos::team_id.eq(team_id))
                .count()
                .get_result(c)?;
            let there: i64 = team_repos::table
                .filter(team_repos::team_id.eq(team_id))
                .filter(team_repos::repo_id.eq(repo_id))
                .count()
                .get_result(c)?;
            if there > 0 {
                return Ok::<_, diesel::result::Error>(Some(false));
            }
            if listed >= limit {
                return Ok(None);
            }
            diesel::insert_into(team_repos::table)
                .values((
                    team_repos::team_id.eq(team_id),
                    team_repos::repo_id.eq(repo_id),
                    team_repos::added_by.eq(by),
                    team_repos::added_at.eq(now()),
                ))
                .execute(c)?;
            Ok(Some(true))
        })?)
    }

    /// Removes `repo_id` from `team_id`'s list; false when it was not there.
    pub fn remove_team_repo(&self, team_id: &str, repo_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = diesel::delete(team_repos::table.find((team_id, repo_id))).execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// `team_id`'s repositories, most recently added first, with who added each and whether it
    /// is frozen on the list (over the team's plan).
    pub fn team_repos(
        &self,
        team_id: &str,
    ) -> Result<Vec<(Repo, Option<String>, bool)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(team_repos::table
            .inner_join(repos::table)
            .filter(team_repos::team_id.eq(team_id))
            .order(team_repos::added_at.desc())
            .select((Repo::as_select(), team_repos::added_by, team_repos::frozen))
            .load(&mut *conn)?)
    }

    /// Whether `user_id` is in a team whose list holds `repo_id`.
    pub fn team_lists(&self, repo_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n: i64 = team_repos::table
            .inner_join(team_members::table.on(team_members::team_id.eq(team_repos::team_id)))
            .filter(team_repos::repo_id.eq(repo_id))
            .filter(team_members::user_id.eq(user_id))
            .count()
            .get_result(&mut *conn)?;
        Ok(n > 0)
    }

    /// Records an audit event.
    pub fn audit(
        &self,
        id: &str,
        actor: &str,
        team_id: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::id.eq(id),
                audit_events::at.eq(now()),
                audit_events::actor.eq(actor),
                audit_events::team_id.eq(team_id),
                audit_events::action.eq(action),
                audit_events::target.eq(target),
                audit_events::detail.eq(detail),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// The latest `limit` audit events, of `team_id` (or all), newest first.
    pub fn audit_events(
        &self,
        team_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = audit_events::table
            .order((audit_events::at.desc(), audit_events::id.desc()))
            .limit(limit.clamp(1, 1000))
            .select(AuditEvent::as_select())
            .into_boxed();
        if let Some(t) = team_id {
            q = q.filter(audit_events::team_id.eq(t));
        }
        Ok(q.load(&mut *conn)?)
    }
}
