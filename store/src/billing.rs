//! Stripe's subscriptions as this server last heard of them, the events already handled, and
//! which tracked repositories are frozen over their user's plan.
//!
//! Events repeat and arrive in any order. Each is recorded once (`stripe_events`) in the same
//! transaction as its change, and a change is written only when its event is newer than the one
//! the row came from; between events of the same second the later stage of a subscription's
//! life wins, and a terminal status (canceled, incomplete_expired) is never left. The decisions
//! are in the statements' `WHERE` clauses, so two deliveries racing on PostgreSQL cannot undo
//! each other.

use diesel::prelude::*;

use super::schema::{repo_access, repos, stripe_events, subscriptions};
use super::{AnyConnection, Repo, Store, StoreError, now};

/// A subscription row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct Subscription {
    /// Stripe's id (`sub_...`).
    pub id: String,
    /// `user:<id>` (or `team:<id>`), once known.
    pub owner: Option<String>,
    /// Stripe's customer (`cus_...`).
    pub customer_id: Option<String>,
    /// Stripe's status: incomplete, incomplete_expired, trialing, active, past_due, unpaid,
    /// paused, canceled.
    pub status: String,
    /// The price subscribed to.
    pub price_id: Option<String>,
    /// Seats (1 for a personal plan).
    pub quantity: i64,
    /// When the paid period ends.
    pub current_period_end: Option<i64>,
    /// When an unpaid invoice first failed (the grace period runs from here).
    pub payment_failed_at: Option<i64>,
    /// `created` of the event the status came from.
    pub state_at: i64,
    /// `created` of the latest invoice event applied.
    pub invoice_at: i64,
    /// Last write.
    pub updated_at: i64,
}

/// Statuses a subscription never leaves.
pub const TERMINAL: [&str; 2] = ["canceled", "incomplete_expired"];

/// How far along its life a status is: between two events of the same second, the later
/// stage wins.
fn stage(status: &str) -> u8 {
    match status {
        "incomplete" => 0,
        "trialing" => 1,
        "active" => 2,
        "past_due" => 3,
        "unpaid" => 4,
        "paused" => 5,
        _ => 6,
    }
}

/// Every status at or before `status`'s stage.
fn at_or_before(status: &str) -> Vec<&'static str> {
    [
        "incomplete",
        "trialing",
        "active",
        "past_due",
        "unpaid",
        "paused",
    ]
    .into_iter()
    .filter(|s| stage(s) <= stage(status))
    .collect()
}

/// What one Stripe event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A subscription's own state (`customer.subscription.*`).
    State {
        /// `sub_...`.
        id: String,
        /// From its metadata.
        owner: Option<String>,
        /// `cus_...`.
        customer: Option<String>,
        /// Stripe's status.
        status: String,
        /// The price.
        price_id: Option<String>,
        /// Seats.
        quantity: i64,
        /// When the period ends.
        current_period_end: Option<i64>,
    },
    /// Checkout finished: the subscription belongs to `owner` (`checkout.session.completed`).
    Checkout {
        /// `sub_...`.
        id: String,
        /// The session's client_reference_id.
        owner: String,
        /// `cus_...`.
        customer: Option<String>,
    },
    /// An invoice of the subscription was paid, or its payment failed.
    Invoice {
        /// `sub_...`.
        id: String,
        /// `cus_...`.
        customer: Option<String>,
        /// Paid (else failed).
        paid: bool,
    },
    /// Nothing this server keeps.
    Nothing,
}

/// What handling an event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Seen before: nothing done.
    Duplicate,
    /// Recorded (and applied when newer); the subscription's owner, when known.
    Applied(Option<String>),
}

fn ensure_row(c: &mut AnyConnection, id: &str) -> QueryResult<()> {
    let exists: i64 = subscriptions::table
        .filter(subscriptions::id.eq(id))
        .count()
        .get_result(c)?;
    if exists == 0 {
        diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::id.eq(id),
                subscriptions::status.eq("incomplete"),
                subscriptions::updated_at.eq(now()),
            ))
            .execute(c)?;
    }
    Ok(())
}

fn fill_owner(
    c: &mut AnyConnection,
    id: &str,
    owner: Option<&str>,
    customer: Option<&str>,
) -> QueryResult<()> {
    if let Some(o) = owner {
        diesel::update(
            subscriptions::table
                .find(id)
                .filter(subscriptions::owner.is_null()),
        )
        .set(subscriptions::owner.eq(o))
        .execute(c)?;
    }
    if let Some(cu) = customer {
        diesel::update(
            subscriptions::table
                .find(id)
                .filter(subscriptions::customer_id.is_null()),
        )
        .set(subscriptions::customer_id.eq(cu))
        .execute(c)?;
    }
    Ok(())
}

fn apply(c: &mut AnyConnection, change: &Change, at: i64) -> QueryResult<Option<String>> {
    let id = match change {
        Change::Nothing => return Ok(None),
        Change::State { id, .. } | Change::Checkout { id, .. } | Change::Invoice { id, .. } => id,
    };
    ensure_row(c, id)?;
    match change {
        Change::State {
            owner,
            customer,
            status,
            price_id,
            quantity,
            current_period_end,
            ..
        } => {
            fill_owner(c, id, owner.as_deref(), customer.as_deref())?;
            diesel::update(
                subscriptions::table
                    .find(id)
                    .filter(subscriptions::status.ne_all(TERMINAL))
                    .filter(
                        subscriptions::state_at.lt(at).or(subscriptions::state_at
                            .eq(at)
                            .and(subscriptions::status.eq_any(at_or_before(status)))),
                    ),
            )
            .set((
                subscriptions::status.eq(status),
                subscriptions::price_id.eq(price_id),
                subscriptions::quantity.eq(quantity),
                subscriptions::current_period_end.eq(current_period_end),
                subscriptions::state_at.eq(at),
                subscriptions::updated_at.eq(now()),
            ))
            .execute(c)?;
        }
        Change::Checkout {
            owner, customer, ..
        } => fill_owner(c, id, Some(owner), customer.as_deref())?,
        Change::Invoice { customer, paid, .. } => {
            fill_owner(c, id, None, customer.as_deref())?;
            let newer = subscriptions::table
                .find(id)
                .filter(subscriptions::invoice_at.le(at));
            if *paid {
                diesel::update(newer)
                    .set((
                        subscriptions::payment_failed_at.eq(None::<i64>),
                        subscriptions::invoice_at.eq(at),
                        subscriptions::updated_at.eq(now()),
                    ))
                    .execute(c)?;
            } else {
                // The first failure since the last payment starts the grace period.
                diesel::update(newer.filter(subscriptions::payment_failed_at.is_null()))
                    .set(subscriptions::payment_failed_at.eq(at))
                    .execute(c)?;
                diesel::update(
                    subscriptions::table
                        .find(id)
                        .filter(subscriptions::invoice_at.le(at)),
                )
                .set((
                    subscriptions::invoice_at.eq(at),
                    subscriptions::updated_at.eq(now()),
                ))
                .execute(c)?;
            }
        }
        Change::Nothing => {}
    }
    subscriptions::table
        .find(id)
        .select(subscriptions::owner)
        .first(c)
}

impl Store {
    /// Handles Stripe event `event_id` (of `kind`, created at `created`) once: records it and
    /// applies `change` in one transaction.
    pub fn handle_stripe_event(
        &self,
        event_id: &str,
        kind: &str,
        created: i64,
        change: &Change,
    ) -> Result<Handled, StoreError> {
        let mut conn = self.conn()?;
        let seen = |c: &mut AnyConnection| -> QueryResult<bool> {
            let n: i64 = stripe_events::table
                .filter(stripe_events::id.eq(event_id))
                .count()
                .get_result(c)?;
            Ok(n > 0)
        };
        if seen(&mut conn)? {
            return Ok(Handled::Duplicate);
        }
        let done = crate::write_transaction(&mut conn, |c| {
            diesel::insert_into(stripe_events::table)
                .values((
                    stripe_events::id.eq(event_id),
                    stripe_events::kind.eq(kind),
                    stripe_events::created.eq(created),
                    stripe_events::received_at.eq(now()),
                ))
                .execute(c)?;
            apply(c, change, created)
        });
        match done {
            Ok(owner) => Ok(Handled::Applied(owner)),
            // The same event handled by another delivery meanwhile; any other conflict is an
            // error (Stripe delivers it again).
            Err(e) if seen(&mut conn).unwrap_or(false) => {
                tracing::debug!(error = %e, "a concurrent delivery handled the event");
                Ok(Handled::Duplicate)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `owner`'s subscriptions, newest state first.
    pub fn subscriptions_of(&self, owner: &str) -> Result<Vec<Subscription>, StoreError> {
        let mut conn = self.conn()?;
        Ok(subscriptions::table
            .filter(subscriptions::owner.eq(owner))
            .order(subscriptions::state_at.desc())
            .select(Subscription::as_select())
            .load(&mut *conn)?)
    }

    /// Every subscription with an owner.
    pub fn owned_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let mut conn = self.conn()?;
        Ok(subscriptions::table
            .filter(subscriptions::owner.is_not_null())
            .order(subscriptions::state_at.desc())
            .select(Subscription::as_select())
            .load(&mut *conn)?)
    }

    /// Owners an admin put on the paid plan: `user:<id>` and `team:<id>`.
    pub fn granted_paid(&self) -> Result<Vec<String>, StoreError> {
        use super::schema::{teams, users};
        let mut conn = self.conn()?;
        let u: Vec<String> = users::table
            .filter(users::plan.eq("paid"))
            .select(users::id)
            .load(&mut *conn)?;
        let t: Vec<String> = teams::table
            .filter(teams::plan.eq("paid"))
            .select(teams::id)
            .load(&mut *conn)?;
        Ok(u.into_iter()
            .map(|id| format!("user:{id}"))
            .chain(t.into_iter().map(|id| format!("team:{id}")))
            .collect())
    }

    /// The repositories `user_ids` track and keep (not frozen), and those on `team_ids`' lists.
    pub fn repos_kept_by(
        &self,
        user_ids: &[String],
        team_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        use super::schema::team_repos;
        let mut conn = self.conn()?;
        let mut ids: Vec<String> = repo_access::table
            .filter(repo_access::user_id.eq_any(user_ids))
            .filter(repo_access::role.eq(super::accounts::TRACKS))
            .filter(repo_access::frozen.eq(false))
            .select(repo_access::repo_id)
            .load(&mut *conn)?;
        ids.extend(
            team_repos::table
                .filter(team_repos::team_id.eq_any(team_ids))
                .filter(team_repos::frozen.eq(false))
                .select(team_repos::repo_id)
                .load::<String>(&mut *conn)?,
        );
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Owners whose plan may change without an event: a failed payment's grace period runs out.
    pub fn owners_in_grace(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let owners: Vec<Option<String>> = subscriptions::table
            .filter(subscriptions::payment_failed_at.is_not_null())
            .filter(subscriptions::status.ne_all(TERMINAL))
            .select(subscriptions::owner)
            .distinct()
            .load(&mut *conn)?;
        Ok(owners.into_iter().flatten().collect())
    }

    /// What `user_id` tracks with whether each is frozen, most recently viewed first.
    pub fn tracked_with_frozen(&self, user_id: &str) -> Result<Vec<(Repo, bool)>, StoreError> {
        let mut conn = self.conn()?;
        let mut rows: Vec<(Repo, bool)> = repo_access::table
            .inner_join(repos::table)
            .filter(repo_access::user_id.eq(user_id))
            .filter(repo_access::role.eq(super::accounts::TRACKS))
            .select((Repo::as_select(), repo_access::frozen))
            .load(&mut *conn)?;
        most_recent_first(&mut rows);
        Ok(rows)
    }

    /// Freezes `freeze` and thaws `thaw` (repository ids) for `user_id`.
    pub fn set_frozen(
        &self,
        user_id: &str,
        freeze: &[String],
        thaw: &[String],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |c| {
            for (ids, frozen) in [(freeze, true), (thaw, false)] {
                if ids.is_empty() {
                    continue;
                }
                diesel::update(
                    repo_access::table
                        .filter(repo_access::user_id.eq(user_id))
                        .filter(repo_access::repo_id.eq_any(ids)),
                )
                .set(repo_access::frozen.eq(frozen))
                .execute(c)?;
            }
            Ok(())
        })
    }

    /// Whether `repo_id` is frozen: kept by someone (a user who tracks it, a team that lists
    /// it), and frozen for every one of them.
    pub fn is_frozen(&self, repo_id: &str) -> Result<bool, StoreError> {
        use super::schema::team_repos;
        let mut conn = self.conn()?;
        let mut flags: Vec<bool> = repo_access::table
            .filter(repo_access::repo_id.eq(repo_id))
            .filter(repo_access::role.eq(super::accounts::TRACKS))
            .select(repo_access::frozen)
            .load(&mut *conn)?;
        flags.extend(
            team_repos::table
                .filter(team_repos::repo_id.eq(repo_id))
                .select(team_repos::frozen)
                .load::<bool>(&mut *conn)?,
        );
        Ok(!flags.is_empty() && flags.iter().all(|f| *f))
    }

    /// What `team_id` lists with whether each is frozen for it, most recently viewed first.
    pub fn team_list_with_frozen(&self, team_id: &str) -> Result<Vec<(Repo, bool)>, StoreError> {
        let mut rows: Vec<(Repo, bool)> = self
            .team_repos(team_id)?
            .into_iter()
            .map(|(r, _, frozen)| (r, frozen))
            .collect();
        most_recent_first(&mut rows);
        Ok(rows)
    }

    /// Freezes `freeze` and thaws `thaw` (repository ids) on `team_id`'s list.
    pub fn set_team_frozen(
        &self,
        team_id: &str,
        freeze: &[String],
        thaw: &[String],
    ) -> Result<(), StoreError> {
        use super::schema::team_repos;
        let mut conn = self.conn()?;
        crate::write_transaction(&mut conn, |c| {
            for (ids, frozen) in [(freeze, true), (thaw, false)] {
                if ids.is_empty() {
                    continue;
                }
                diesel::update(
                    team_repos::table
                        .filter(team_repos::team_id.eq(team_id))
                        .filter(team_repos::repo_id.eq_any(ids)),
                )
                .set(team_repos::frozen.eq(frozen))
                .execute(c)?;
            }
            Ok(())
        })
    }

    /// Every frozen repository (start-up).
    pub fn frozen_repos(&self) -> Result<Vec<String>, StoreError> {
        use super::schema::team_repos;
        let mut conn = self.conn()?;
        let mut rows: Vec<(String, bool)> = repo_access::table
            .filter(repo_access::role.eq(super::accounts::TRACKS))
            .select((repo_access::repo_id, repo_access::frozen))
            .load(&mut *conn)?;
        rows.extend(
            team_repos::table
                .select((team_repos::repo_id, team_repos::frozen))
                .load::<(String, bool)>(&mut *conn)?,
        );
        let mut by_repo: std::collections::BTreeMap<String, bool> = Default::default();
        for (id, frozen) in rows {
            let all = by_repo.entry(id).or_insert(true);
            *all &= frozen;
        }
        Ok(by_repo
            .into_iter()
            .filter_map(|(id, all)| all.then_some(id))
            .collect())
    }
}

/// Sorts repositories most recently viewed (else added) first: the order plans keep them in.
fn most_recent_first(rows: &mut [(Repo, bool)]) {
    rows.sort_by_key(|(r, _)| std::cmp::Reverse(r.last_access_at.unwrap_or(r.created_at)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_order_a_subscriptions_life() {
        assert!(stage("incomplete") < stage("active"));
        assert!(stage("active") < stage("past_due"));
        assert!(stage("past_due") < stage("canceled"));
        assert_eq!(at_or_before("active"), ["incomplete", "trialing", "active"]);
        assert!(at_or_before("canceled").contains(&"paused"));
    }
}
