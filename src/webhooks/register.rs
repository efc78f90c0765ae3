//! Per-repository hooks on GitHub, for OAuth App setups (a GitHub App has one hook for every
//! installation, configured with the app). When a signed-in user who may administer a
//! repository tracks it, a hook is registered with their token, delivering to
//! `/webhooks/github?repo=ID` and signed with a secret derived from the webhook secret and the
//! id (so none is stored); when nobody tracks the repository any more the hook is removed.
//! Users who may not administer a repository get no hook: it is polled.

use std::sync::Arc;

use crate::auth::accounts::Accounts;
use crate::error::blocking;
use crate::hosted::Hosted;
use crate::store::accounts::User;

/// What registering a hook came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A hook now delivers for the repository.
    Created,
    /// One was registered before.
    Already,
    /// The user may not administer the repository: it is polled.
    NotAdmin,
    /// Nothing to register: not on GitHub, a GitHub App setup, or no webhook secret.
    NotApplicable,
    /// GitHub refused or failed (logged): polled until someone tracks it again.
    Failed,
}

impl Registered {
    fn label(self) -> &'static str {
        match self {
            Registered::Created => "created",
            Registered::Already => "already",
            Registered::NotAdmin => "not_admin",
            Registered::NotApplicable => "not_applicable",
            Registered::Failed => "failed",
        }
    }
}

/// Registers a hook for repository `repo_id` with `user`'s token, if this setup registers
/// hooks per repository and the user may administer it.
pub async fn register(h: &Arc<Hosted>, repo_id: &str, user: &User) -> Registered {
    let outcome = try_register(h, repo_id, user).await;
    metrics::counter!("gitvista_webhook_registrations_total", "outcome" => outcome.label())
        .increment(1);
    outcome
}

async fn try_register(h: &Arc<Hosted>, repo_id: &str, user: &User) -> Registered {
    let Some(accounts) = &h.accounts else {
        return Registered::NotApplicable;
    };
    // A GitHub App's token cannot manage hooks, and its app-level hook covers the repository.
    if user.token_kind != "oauth" {
        return Registered::NotApplicable;
    }
    let Some(secret) = h.hooks.github_repo_secret(repo_id) else {
        return Registered::NotApplicable;
    };
    let (store, rid) = (h.store.clone(), repo_id.to_string());
    let Ok((Some(repo), existing)) =
        blocking(move || Ok((store.repo(&rid)?, store.registration(&rid, "github")?))).await
    else {
        return Registered::Failed;
    };
    if existing.is_some() {
        return Registered::Already;
    }
    let Some((owner, name)) = accounts.github_path(&repo.canonical_url) else {
        return Registered::NotApplicable;
    };
    let Ok(token) = accounts.token(user).await else {
        return Registered::Failed;
    };
    match accounts.github.repo(&token, &owner, &name).await {
        Ok(Some(r)) if r.permissions.is_some_and(|p| p.admin) => {}
        Ok(_) => return Registered::NotAdmin,
        Err(e) => {
            tracing::warn!(repo = repo_id, error = %e, "GitHub could not say whether the user administers the repository");
            return Registered::Failed;
        }
    }
    let url = format!(
        "{}/webhooks/github?repo={repo_id}",
        accounts.auth.public_url
    );
    let hook = accounts
        .github
        .create_hook(&token, &owner, &name, &url, &secret.expose())
        .await;
    match hook {
        Ok(hook_id) => {
            let (store, rid, uid) = (h.store.clone(), repo_id.to_string(), user.id.clone());
            let added = blocking(move || {
                let added = store.add_registration(&rid, "github", hook_id, Some(&uid))?;
                Ok((added, store.is_tracked(&rid)?))
            })
            .await;
            // Untracked while GitHub was creating the hook: that untrack found no registration
            // to remove, so the hook goes now.
            if let Ok((true, false)) = added {
                unregister(h, repo_id).await;
                return Registered::Failed;
            }
            let added = added.map(|(added, _)| added);
            tracing::info!(
                repo = repo_id,
                hook = hook_id,
                "registered a webhook on GitHub"
            );
            match added {
                Ok(true) => Registered::Created,
                Ok(false) => Registered::Already,
                Err(_) => Registered::Failed,
            }
        }
        Err(e) => {
            tracing::warn!(repo = repo_id, error = %e, "registering a webhook on GitHub failed; the repository is polled");
            Registered::Failed
        }
    }
}

/// Removes repository `repo_id`'s hook from GitHub (nobody tracks it any more, or it is being
/// deleted), with the token of the user who registered it or else of any tracker; the
/// registration is forgotten either way (a hook left behind delivers to a repository this
/// server answers `untracked` for).
pub async fn unregister(h: &Arc<Hosted>, repo_id: &str) {
    let Some(accounts) = &h.accounts else {
        return;
    };
    let (store, rid) = (h.store.clone(), repo_id.to_string());
    let Ok(Some((reg, repo, users))) = blocking(move || {
        let Some(reg) = store.registration(&rid, "github")? else {
            return Ok(None);
        };
        let mut users = Vec::new();
        if let Some(uid) = &reg.user_id
            && let Some(u) = store.user(uid)?
        {
            users.push(u);
        }
        users.extend(store.readers(&rid)?);
        store.remove_registration(&rid, "github")?;
        Ok(Some((reg, store.repo(&rid)?, users)))
    })
    .await
    else {
        return;
    };
    let removed = match repo.and_then(|r| accounts.github_path(&r.canonical_url)) {
        Some((owner, name)) => remove_with(accounts, &users, &owner, &name, reg.hook_id).await,
        None => false,
    };
    metrics::counter!("gitvista_webhook_unregistrations_total", "outcome" => if removed { "removed" } else { "left" })
        .increment(1);
    if removed {
        tracing::info!(
            repo = repo_id,
            hook = reg.hook_id,
            "removed the webhook from GitHub"
        );
    } else {
        tracing::warn!(
            repo = repo_id,
            hook = reg.hook_id,
            "the webhook could not be removed from GitHub; its deliveries are answered as untracked"
        );
    }
}

async fn remove_with(
    accounts: &Accounts,
    users: &[User],
    owner: &str,
    name: &str,
    hook_id: i64,
) -> bool {
    for user in users {
        let Ok(token) = accounts.token(user).await else {
            continue;
        };
        if accounts
            .github
            .delete_hook(&token, owner, name, hook_id)
            .await
            .is_ok()
        {
            return true;
        }
    }
    false
}
