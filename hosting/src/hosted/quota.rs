//! Plans applied to what users track. An upgrade takes effect at once; a downgrade (a
//! subscription ended, a payment's grace period ran out, an admin's change) deletes nothing:
//! the repositories over the new plan's limit, least recently viewed first, are frozen for that
//! user (no fetches, and the dashboard says why) until they choose which to keep or upgrade. A
//! repository is frozen only while every user who tracks it, and every team that lists it, has
//! it frozen. A team's list is held to the team's plan the same way.

use std::sync::Arc;

use gitvista_actors::RepoId;
use gitvista_actors::repo_session::FetchNow;
use gitvista_actors::supervisor::{GetSession, Running};

use crate::hosted::Hosted;
use gitvista_errors::{ApiError, blocking};

/// A set of repositories the plans decide: those frozen over their users' plans (no fetches
/// until someone keeps them), and those a paying user tracks (fetched at the full pace). Sessions
/// learn what it means through their fetch [`gitvista_actors::pace::Pace`].
#[derive(Debug, Default)]
pub struct RepoSet {
    ids: std::sync::Mutex<std::collections::HashSet<RepoId>>,
}

impl RepoSet {
    /// Whether `id` is in the set.
    pub fn contains(&self, id: &RepoId) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// Makes the set exactly `ids`.
    pub fn replace(&self, ids: std::collections::HashSet<RepoId>) {
        *self.ids.lock().unwrap_or_else(|e| e.into_inner()) = ids;
    }

    /// Puts `id` in (`true`) or out of the set; answers whether that changed anything.
    pub fn set(&self, id: &RepoId, frozen: bool) -> bool {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if frozen {
            ids.insert(id.clone())
        } else {
            ids.remove(id)
        }
    }
}

/// One tracked repository as [`rebalance`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The repository.
    pub id: String,
    /// Frozen for this user now.
    pub frozen: bool,
    /// Private (counts against the private limit too).
    pub private: bool,
}

/// What to freeze and thaw so that `rows` (most recently viewed first) keeps at most `limit`
/// unfrozen, of which at most `private_limit` private (as many as fit), preferring those kept
/// already and then the most recently viewed; `keep` is kept whatever else goes.
pub fn rebalance(
    rows: &[Held],
    limit: usize,
    private_limit: usize,
    keep: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut order: Vec<&Held> = rows.iter().collect();
    // Kept first (the one asked for before all), then already unfrozen, then by recency.
    order.sort_by_key(|h| (Some(h.id.as_str()) != keep, h.frozen));
    let mut freeze = Vec::new();
    let mut thaw = Vec::new();
    let (mut kept, mut kept_private) = (0, 0);
    for Held {
        id,
        frozen,
        private,
    } in order
    {
        let fits = kept < limit && (!private || kept_private < private_limit);
        if fits {
            kept += 1;
            kept_private += usize::from(*private);
        }
        let want_frozen = !fits;
        if want_frozen && !frozen {
            freeze.push(id.clone());
        } else if !want_frozen && *frozen {
            thaw.push(id.clone());
        }
    }
    (freeze, thaw)
}

impl Hosted {
    /// Applies `user_id`'s plan to what they track (keeping `keep` in any case); answers the
    /// repositories frozen and thawed for them.
    pub async fn enforce_quota(
        self: &Arc<Self>,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let Some(accounts) = &self.accounts else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (store, uid) = (self.store.clone(), user_id.to_string());
        let Some(user) = blocking(move || store.user(&uid)).await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let plan = accounts.plan_of(&user).await?;
        let limit = usize::try_from(accounts.plans.limit(plan.plan)).unwrap_or(0);
        let private_limit = usize::try_from(accounts.plans.private_limit(plan.plan)).unwrap_or(0);
        let (store, uid) = (self.store.clone(), user_id.to_string());
        let rows = blocking(move || store.tracked_with_frozen(&uid)).await?;
        let rows: Vec<Held> = rows
            .into_iter()
            .map(|(r, frozen)| Held {
                id: r.id,
                frozen,
                private: r.is_private,
            })
            .collect();
        let (freeze, thaw) = rebalance(&rows, limit, private_limit, keep);
        if freeze.is_empty() && thaw.is_empty() {
            // The plan may have changed all the same (what it keeps fetches at another pace).
            self.sync_paid().await;
            return Ok((freeze, thaw));
        }
        let (store, uid, fz, th) = (
            self.store.clone(),
            user_id.to_string(),
            freeze.clone(),
            thaw.clone(),
        );
        blocking(move || store.set_frozen(&uid, &fz, &th)).await?;
        tracing::info!(
            user = user_id,
            plan = plan.plan,
            frozen = freeze.len(),
            thawed = thaw.len(),
            "applied the plan to the tracked repositories"
        );
        accounts.forget_user(user_id);
        let changed: Vec<String> = freeze.iter().chain(thaw.iter()).cloned().collect();
        self.sync_frozen(Some(changed)).await;
        self.sync_paid().await;
        Ok((freeze, thaw))
    }

    /// Applies team `team_id`'s plan to its list (keeping `keep` in any case), as
    /// [`Hosted::enforce_quota`] does for a user: past the plan's limit, the least recently
    /// viewed are frozen on the list (not kept fresh on the team's account); answers what was
    /// frozen and thawed.
    pub async fn enforce_team_quota(
        self: &Arc<Self>,
        team_id: &str,
        keep: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let Some(accounts) = &self.accounts else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (store, tid) = (self.store.clone(), team_id.to_string());
        let Some(team) = blocking(move || store.team(&tid)).await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (plan, _) = accounts
            .owner_plan(&format!("team:{team_id}"), &team.plan)
            .await?;
        let limit = usize::try_from(accounts.plans.limit(plan.plan)).unwrap_or(0);
        let (store, tid) = (self.store.clone(), team_id.to_string());
        let rows = blocking(move || store.team_list_with_frozen(&tid)).await?;
        let rows: Vec<Held> = rows
            .into_iter()
            .map(|(r, frozen)| Held {
                id: r.id,
                frozen,
                private: false,
            })
            .collect();
        let (freeze, thaw) = rebalance(&rows, limit, usize::MAX, keep);
        if !freeze.is_empty() || !thaw.is_empty() {
            let (store, tid, fz, th) = (
                self.store.clone(),
                team_id.to_string(),
                freeze.clone(),
                thaw.clone(),
            );
            blocking(move || store.set_team_frozen(&tid, &fz, &th)).await?;
            tracing::info!(
                team = team_id,
                plan = plan.plan,
                frozen = freeze.len(),
                thawed = thaw.len(),
                "applied the team's plan to its list"
            );
            let changed: Vec<String> = freeze.iter().chain(thaw.iter()).cloned().collect();
            self.sync_frozen(Some(changed)).await;
        }
        self.sync_paid().await;
        Ok((freeze, thaw))
    }

    /// Recomputes which repositories a paying user keeps or a paying team lists (billing on
    /// only): every owner's subscriptions and an admin's grants, at the sweep and after a plan
    /// changed.
    pub async fn sync_paid(self: &Arc<Self>) {
        if self.stripe.is_none() {
            return;
        }
        let Some(accounts) = &self.accounts else {
            return;
        };
        let grace = i64::try_from(accounts.payment_grace.as_secs()).unwrap_or(i64::MAX);
        let price = accounts.paid_price.clone();
        let store = self.store.clone();
        let ids = blocking(move || {
            let mut by_owner: std::collections::BTreeMap<
                String,
                Vec<gitvista_store::billing::Subscription>,
            > = Default::default();
            for s in store.owned_subscriptions()? {
                if let Some(o) = s.owner.clone() {
                    by_owner.entry(o).or_default().push(s);
                }
            }
            let at = gitvista_store::now();
            let mut paying: Vec<String> = by_owner
                .into_iter()
                .filter(|(_, subs)| {
                    gitvista_accounts::billing::plan_state(
                        "free",
                        subs,
                        price.as_deref(),
                        at,
                        grace,
                    )
                    .plan
                        == "paid"
                })
                .map(|(o, _)| o)
                .collect();
            paying.extend(store.granted_paid()?);
            let users: Vec<String> = paying
                .iter()
                .filter_map(|o| o.strip_prefix("user:").map(str::to_string))
                .collect();
            let teams: Vec<String> = paying
                .iter()
                .filter_map(|o| o.strip_prefix("team:").map(str::to_string))
                .collect();
            store.repos_kept_by(&users, &teams)
        })
        .await;
        match ids {
            Ok(ids) => self
                .paid
                .replace(ids.iter().filter_map(|i| RepoId::parse(i)).collect()),
            Err(e) => tracing::warn!(error = %e, "the paid repositories could not be read"),
        }
    }

    /// Reads whether `ids` (every repository, with `None`) are frozen from the store into this
    /// node's set, and fetches the ones that thawed now.
    pub async fn sync_frozen(self: &Arc<Self>, ids: Option<Vec<String>>) {
        let store = self.store.clone();
        let answer = blocking(move || match ids {
            Some(ids) => ids
                .into_iter()
                .map(|id| store.is_frozen(&id).map(|f| (id, f)))
                .collect::<Result<Vec<_>, _>>(),
            None => {
                let frozen: std::collections::HashSet<String> =
                    store.frozen_repos()?.into_iter().collect();
                let known = store.repos()?;
                Ok(known
                    .into_iter()
                    .map(|r| {
                        let f = frozen.contains(&r.id);
                        (r.id, f)
                    })
                    .collect())
            }
        })
        .await;
        let Ok(states) = answer else {
            return;
        };
        for (id, frozen) in states {
            let Some(rid) = RepoId::parse(&id) else {
                continue;
            };
            if !self.frozen.set(&rid, frozen) || frozen {
                continue;
            }
            // Thawed: fetch now rather than at the next timer it no longer has.
            if let Ok(true) = self.supervisor.send(Running(rid.clone())).await
                && let Ok(Ok(session)) = self.supervisor.send(GetSession(rid.clone())).await
            {
                session.do_send(FetchNow);
            }
        }
    }

    /// Every `billing_sweep`: owners whose payment failed are looked at again (a grace period
    /// may have ended without any event), and frozen repositories are read back from the store
    /// (another node of a cluster may have changed them).
    pub fn start_billing_sweep(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = self.config.billing_sweep;
        actix::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(h) = weak.upgrade() else {
                    return;
                };
                let store = h.store.clone();
                if let Ok(owners) = blocking(move || store.owners_in_grace()).await {
                    for owner in owners {
                        if let Some(uid) = owner.strip_prefix("user:") {
                            let _ = h.enforce_quota(uid, None).await;
                        } else if let Some(tid) = owner.strip_prefix("team:") {
                            let _ = h.enforce_team_quota(tid, None).await;
                        }
                    }
                }
                h.sync_frozen(None).await;
                h.sync_paid().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{Held, rebalance};

    fn rows(spec: &[(&str, bool)]) -> Vec<Held> {
        spec.iter()
            .map(|(i, f)| Held {
                id: i.to_string(),
                frozen: *f,
                private: false,
            })
            .collect()
    }

    #[test]
    fn a_downgrade_freezes_the_least_recently_viewed_and_an_upgrade_thaws_the_most_recent() {
        let all_live = rows(&[("a", false), ("b", false), ("c", false), ("d", false)]);
        assert_eq!(
            rebalance(&all_live, 2, 9, None),
            (vec!["c".to_string(), "d".to_string()], vec![])
        );
        let half = rows(&[("a", false), ("b", true), ("c", false), ("d", true)]);
        // Kept ones stay kept even when less recent; then the most recent frozen one.
        assert_eq!(
            rebalance(&half, 3, 9, None),
            (vec![], vec!["b".to_string()])
        );
        assert_eq!(
            rebalance(&half, 10, 9, None),
            (vec![], vec!["b".to_string(), "d".to_string()])
        );
        // Choosing to keep d gives up the least recent kept one.
        assert_eq!(
            rebalance(&half, 2, 9, Some("d")),
            (vec!["c".to_string()], vec!["d".to_string()])
        );
        assert_eq!(rebalance(&[], 5, 9, None), (vec![], vec![]));
    }

    #[test]
    fn a_downgrade_keeps_no_more_private_repositories_than_the_plan_allows() {
        let mut held = rows(&[("a", false), ("b", false), ("c", false), ("d", false)]);
        held[0].private = true;
        held[1].private = true;
        held[2].private = true;
        // Within 50 repositories but one private: the most recent private one stays.
        assert_eq!(
            rebalance(&held, 50, 1, None),
            (vec!["b".to_string(), "c".to_string()], vec![])
        );
        // Keeping c gives up a, the other private one.
        assert_eq!(
            rebalance(&held, 50, 1, Some("c")),
            (vec!["a".to_string(), "b".to_string()], vec![])
        );
    }
}
