//! Webhook deliveries (recorded once per delivery id, so a replay does nothing) and the hooks
//! this server registered on forges.

use diesel::prelude::*;

use super::schema::{repos, webhook_deliveries, webhook_registrations};
use super::{Repo, Store, StoreError, inserted_once, now};

/// A delivery as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    /// `github`, `gitlab` or `generic`.
    pub provider: String,
    /// The forge's delivery id (a hash of the body for generic hooks).
    pub delivery_id: String,
    /// The event (`push`, `ping`, `Push Hook`, ...).
    pub event: String,
    /// The repository it was about, when it named one this server knows.
    pub repo_id: Option<String>,
    /// What it caused (`fetch`, `untracked`, `ping`, `access`, `renamed`, `ignored`, ...).
    pub outcome: String,
    /// Unix seconds.
    pub received_at: i64,
}

/// A hook this server registered for a repository.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = webhook_registrations)]
pub struct Registration {
    /// The repository.
    pub repo_id: String,
    /// `github`, `gitlab` or `bitbucket`.
    pub provider: String,
    /// The forge's id of the hook (a number on GitHub and GitLab, a uuid on Bitbucket).
    pub hook_id: String,
    /// Whose token registered it (removal uses it), if that user still exists.
    pub user_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// How long deliveries are remembered: GitHub lets a delivery be redelivered for 30 days.
pub const DELIVERIES_KEPT_SECS: i64 = 30 * 86_400;

impl Store {
    /// Records a delivery whose body's digest is `digest`; false when one with the same
    /// provider and id, or the same provider and body, was recorded before (a redelivery, or a
    /// replay under a new id: the caller does nothing).
    pub fn record_delivery(&self, d: &Delivery, digest: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::provider.eq(&d.provider),
                webhook_deliveries::delivery_id.eq(&d.delivery_id),
                webhook_deliveries::body_digest.eq(digest),
                webhook_deliveries::event.eq(&d.event),
                webhook_deliveries::repo_id.eq(&d.repo_id),
                webhook_deliveries::outcome.eq(&d.outcome),
                webhook_deliveries::received_at.eq(d.received_at),
            ))
            .execute(&mut *conn);
        inserted_once(inserted)
    }

    /// The latest `limit` deliveries, newest first (for `repo_id` only when given).
    pub fn deliveries(
        &self,
        repo_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = webhook_deliveries::table
            .order((
                webhook_deliveries::received_at.desc(),
                webhook_deliveries::delivery_id,
            ))
            .limit(limit)
            .select(Delivery::as_select())
            .into_boxed();
        if let Some(id) = repo_id {
            q = q.filter(webhook_deliveries::repo_id.eq(id.to_string()));
        }
        Ok(q.load(&mut *conn)?)
    }

    /// The latest delivery time of each repository that had one since `since` (unix seconds).
    pub fn hooked_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<(Option<String>, Option<i64>)> = webhook_deliveries::table
            .filter(webhook_deliveries::received_at.ge(since))
            .filter(webhook_deliveries::repo_id.is_not_null())
            .group_by(webhook_deliveries::repo_id)
            .select((
                webhook_deliveries::repo_id,
                diesel::dsl::max(webhook_deliveries::received_at),
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| Some((id?, at?)))
            .collect())
    }

    /// The latest delivery time of each provider (a hook that answers pings is healthy even
    /// when it names no repository, as a GitHub App's does).
    pub fn last_delivery_by_provider(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, Option<i64>)> = webhook_deliveries::table
            .group_by(webhook_deliveries::provider)
            .select((
                webhook_deliveries::provider,
                diesel::dsl::max(webhook_deliveries::received_at),
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(p, at)| Some((p, at?)))
            .collect())
    }

    /// Forgets deliveries received before `before` (unix seconds); answers how many.
    pub fn prune_deliveries(&self, before: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(
            webhook_deliveries::table.filter(webhook_deliveries::received_at.lt(before)),
        )
        .execute(&mut *conn)?)
    }

    /// The repository whose canonical URL is `url`, whatever its id (a renamed repository keeps
    /// the id of its first URL).
    pub fn repo_by_url(&self, url: &str) -> Result<Option<Repo>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .filter(repos::canonical_url.eq(url))
            .select(Repo::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Points repository `id` at a new canonical URL (renamed or transferred on its forge);
    /// false when another row already has that URL or `id` is unknown.
    pub fn set_canonical_url(&self, id: &str, url: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let taken: i64 = repos::table
                .filter(repos::canonical_url.eq(url))
                .filter(repos::id.ne(id))
                .count()
                .get_result(c)?;
            if taken > 0 {
                return Ok(false);
            }
            Ok(diesel::update(repos::table.find(id))
                .set((repos::canonical_url.eq(url), repos::display_url.eq(url)))
                .execute(c)?
                == 1)
        })
    }

    /// The forge's own id of repository `id` (see [`Store::learn_forge_repo_id`]), once learnt.
    pub fn forge_repo_id(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .find(id)
            .select(repos::forge_repo_id)
            .first::<Option<String>>(&mut *conn)
            .optional()?
            .flatten())
    }

    /// Records `forge_id` as the forge's id of repository `id` unless one is known already
    /// (the first answer stands: a later one that differs names another repository); answers
    /// the id recorded now.
    pub fn learn_forge_repo_id(
        &self,
        id: &str,
        forge_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        diesel::update(repos::table.find(id).filter(repos::forge_repo_id.is_null()))
            .set(repos::forge_repo_id.eq(forge_id))
            .execute(&mut *conn)?;
        drop(conn);
        self.forge_repo_id(id)
    }

    /// Records a hook registered for `repo_id`; false when one was recorded already.
    pub fn add_registration(
        &self,
        repo_id: &str,
        provider: &str,
        hook_id: &str,
        user_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(webhook_registrations::table)
            .values((
                webhook_registrations::repo_id.eq(repo_id),
                webhook_registrations::provider.eq(provider),
                webhook_registrations::hook_id.eq(hook_id),
                webhook_registrations::user_id.eq(user_id),
                webhook_registrations::created_at.eq(now()),
            ))
            .execute(&mut *conn);
        inserted_once(inserted)
    }

    /// The hook registered for `repo_id` with `provider`, if any.
    pub fn registration(
        &self,
        repo_id: &str,
        provider: &str,
    ) -> Result<Option<Registration>, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_registrations::table
            .find((repo_id, provider))
            .select(Registration::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// The registration of the forge's hook `hook_id`, if this server made it.
    pub fn registration_by_hook(
        &self,
        provider: &str,
        hook_id: &str,
    ) -> Result<Option<Registration>, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_registrations::table
            .filter(webhook_registrations::provider.eq(provider))
            .filter(webhook_registrations::hook_id.eq(hook_id))
            .select(Registration::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Which of `repo_ids` have a hook registered (the dashboard's repositories).
    pub fn registered_among(&self, repo_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_registrations::table
            .filter(webhook_registrations::repo_id.eq_any(repo_ids))
            .select(webhook_registrations::repo_id)
            .distinct()
            .load(&mut *conn)?)
    }

    /// How many hooks are registered (the admin page).
    pub fn registration_count(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_registrations::table
            .count()
            .get_result(&mut *conn)?)
    }

    /// Every registration.
    pub fn registrations(&self) -> Result<Vec<Registration>, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_registrations::table
            .order(webhook_registrations::created_at.desc())
            .select(Registration::as_select())
            .load(&mut *conn)?)
    }

    /// The hooks `user_id` registered on `provider` (with their token), with each repository.
    pub fn registrations_by(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Vec<(Registration, Repo)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(webhook_registrations::table
            .inner_join(repos::table.on(repos::id.eq(webhook_registrations::repo_id)))
            .filter(webhook_registrations::user_id.eq(user_id))
            .filter(webhook_registrations::provider.eq(provider))
            .select((Registration::as_select(), Repo::as_select()))
            .load(&mut *conn)?)
    }

    /// Forgets the registration of `repo_id` with `provider`; false when there was none.
    pub fn remove_registration(&self, repo_id: &str, provider: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(
            diesel::delete(webhook_registrations::table.find((repo_id, provider)))
                .execute(&mut *conn)?
                == 1,
        )
    }

    /// Makes every confirmation of access to `repo_id` stale, so each tracker is asked of the
    /// forge again at their next request (a webhook said who may read it changed).
    pub fn expire_access(&self, repo_id: &str) -> Result<usize, StoreError> {
        use super::schema::repo_access;
        let mut conn = self.conn()?;
        Ok(
            diesel::update(repo_access::table.filter(repo_access::repo_id.eq(repo_id)))
                .set(repo_access::checked_at.eq(Some(0i64)))
                .execute(&mut *conn)?,
        )
    }
}
