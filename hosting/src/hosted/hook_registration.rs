//! Per-repository hooks on the forges, registered for the user who tracks a repository when
//! they may administer it and their connection may manage hooks: on GitHub with an OAuth App's
//! token (a GitHub App has one hook for every installation, configured with the app),
//! delivering to `/webhooks/github?repo=ID` and signed with a secret derived from the webhook
//! secret and the id (so none is stored); on GitLab with the `api` scope, delivering to
//! `/webhooks/gitlab` with the GitLab receiver's token. When nobody tracks the repository any
//! more the hook is removed. Repositories without a hook are polled.

use std::sync::Arc;

use crate::hosted::Hosted;
use gitvista_errors::blocking;
use gitvista_store::accounts::User;

/// What registering a hook came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A hook now delivers for the repository.
    Created,
    /// One was registered before.
    Already,
    /// The user may not administer the repository: it is polled.
    NotAdmin,
    /// Nothing to register: not on a configured forge, a connection that cannot manage hooks
    /// (a GitHub App, GitLab without `api`), or no webhook secret for that forge.
    NotApplicable,
    /// The forge refused or failed (logged): polled until someone tracks it again.
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
    let (store, rid) = (h.store.clone(), repo_id.to_string());
    let Ok(Some(repo)) = blocking(move || store.repo(&rid)).await else {
        return Registered::Failed;
    };
    let Some((p, path)) = accounts.forge_of(&repo.canonical_url) else {
        return Registered::NotApplicable;
    };
    let kind = p.kind();
    let Some((url, secret)) = h
        .hooks
        .registration_target(kind, &accounts.auth.public_url, repo_id)
    else {
        return Registered::NotApplicable;
    };
    let (store, rid, uid) = (h.store.clone(), repo_id.to_string(), user.id.clone());
    let Ok((existing, connection)) = blocking(move || {
        Ok((
            store.registration(&rid, kind)?,
            store.connection(&uid, kind)?,
        ))
    })
    .await
    else {
        return Registered::Failed;
    };
    let Some(connection) = connection.filter(|c| p.registers_hooks(&c.token_kind, &c.scopes))
    else {
        return Registered::NotApplicable;
    };
    if existing.is_some() {
        return Registered::Already;
    }
    let Ok(token) = accounts.connection_token(&connection, p.as_ref()).await else {
        return Registered::Failed;
    };
    match p.repo(&token, &path).await {
        Ok(Some(r)) if r.admin => {}
        Ok(_) => return Registered::NotAdmin,
        Err(e) => {
            tracing::warn!(repo = repo_id, forge = kind, error = %e, "the forge could not say whether the user administers the repository");
            return Registered::Failed;
        }
    }
    let hook = p.create_hook(&token, &path, &url, &secret.expose()).await;
    match hook {
        Ok(hook_id) => {
            let (store, rid, uid, hid) = (
                h.store.clone(),
                repo_id.to_string(),
                user.id.clone(),
                hook_id.clone(),
            );
            let added = blocking(move || {
                let added = store.add_registration(&rid, kind, &hid, Some(&uid))?;
                Ok((added, store.is_tracked(&rid)?))
            })
            .await;
            // Untracked while the forge was creating the hook: that untrack found no
            // registration to remove, so the hook goes now.
            if let Ok((true, false)) = added {
                unregister(h, repo_id).await;
                return Registered::Failed;
            }
            let added = added.map(|(added, _)| added);
            tracing::info!(
                repo = repo_id,
                forge = kind,
                hook = %hook_id,
                "registered a webhook"
            );
            match added {
                Ok(true) => Registered::Created,
                Ok(false) => Registered::Already,
                Err(_) => Registered::Failed,
            }
        }
        Err(e) => {
            tracing::warn!(repo = repo_id, forge = kind, error = %e, "registering a webhook failed; the repository is polled");
            Registered::Failed
        }
    }
}

/// Removes repository `repo_id`'s hook from its forge (nobody tracks it any more, or it is
/// being deleted), with the token of the user who registered it or else of any tracker with an
/// account there; the registration is forgotten either way (a hook left behind delivers to a
/// repository this server answers `untracked` for).
pub async fn unregister(h: &Arc<Hosted>, repo_id: &str) {
    let Some(accounts) = &h.accounts else {
        return;
    };
    let (store, rid) = (h.store.clone(), repo_id.to_string());
    let Ok(Some(repo)) = blocking(move || store.repo(&rid)).await else {
        return;
    };
    let Some((p, path)) = accounts.forge_of(&repo.canonical_url) else {
        return;
    };
    let kind = p.kind();
    let (store, rid) = (h.store.clone(), repo_id.to_string());
    let Ok(Some((reg, connections))) = blocking(move || {
        let Some(reg) = store.registration(&rid, kind)? else {
            return Ok(None);
        };
        let mut connections = Vec::new();
        if let Some(uid) = &reg.user_id
            && let Some(c) = store.connection(uid, kind)?
        {
            connections.push(c);
        }
        connections.extend(store.readers(&rid, kind)?.into_iter().map(|(_, c)| c));
        store.remove_registration(&rid, kind)?;
        Ok(Some((reg, connections)))
    })
    .await
    else {
        return;
    };
    let removed = delete_with(accounts, p.as_ref(), &path, &reg.hook_id, &connections).await;
    metrics::counter!("gitvista_webhook_unregistrations_total", "outcome" => if removed { "removed" } else { "left" })
        .increment(1);
    if removed {
        tracing::info!(
            repo = repo_id,
            forge = kind,
            hook = %reg.hook_id,
            "removed the webhook"
        );
    } else {
        tracing::warn!(
            repo = repo_id,
            forge = kind,
            hook = %reg.hook_id,
            "the webhook could not be removed; its deliveries are answered as untracked"
        );
    }
}

/// Removes the hooks `user` registered on forge `p` with their token, before that account is
/// unlinked (its tokens are about to be deleted, and a hook is removed with the token that made
/// it, or by someone who administers the repository). Each registration is forgotten either
/// way: a repository whose hook is gone is polled, and another tracker who administers it
/// registers a new one when they next add it.
pub async fn unregister_by(
    h: &Arc<Hosted>,
    user: &User,
    p: &dyn gitvista_accounts::provider::Provider,
) {
    let Some(accounts) = &h.accounts else {
        return;
    };
    let (store, uid, kind) = (h.store.clone(), user.id.clone(), p.kind());
    let Ok((registrations, connection)) = blocking(move || {
        Ok((
            store.registrations_by(&uid, kind)?,
            store.connection(&uid, kind)?,
        ))
    })
    .await
    else {
        return;
    };
    if registrations.is_empty() {
        return;
    }
    let token = match &connection {
        Some(c) => accounts
            .connection_token(c, p)
            .await
            .map_err(|e| e.to_string()),
        None => Err("no account is linked".to_string()),
    };
    for (reg, repo) in registrations {
        let outcome = match (&token, accounts.forge_of(&repo.canonical_url)) {
            (Ok(token), Some((_, path))) => p
                .delete_hook(token, &path, &reg.hook_id)
                .await
                .map_err(|e| e.to_string()),
            (Err(e), _) => Err(e.clone()),
            (_, None) => Err("the repository is on no configured forge".to_string()),
        };
        let mut removed = outcome.is_ok();
        if let Err(e) = &outcome {
            tracing::info!(repo = %reg.repo_id, forge = kind, error = %e, "a webhook could not be removed with the token that registered it; asking the other trackers'");
            // Someone else who tracks it may administer it.
            let (store, rid, uid) = (h.store.clone(), reg.repo_id.clone(), user.id.clone());
            let others: Vec<_> = blocking(move || store.readers(&rid, kind))
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|(u, _)| u.id != uid)
                .map(|(_, c)| c)
                .collect();
            if let Some((_, path)) = accounts.forge_of(&repo.canonical_url) {
                removed = delete_with(accounts, p, &path, &reg.hook_id, &others).await;
            }
        }
        let (store, rid) = (h.store.clone(), reg.repo_id.clone());
        let _ = blocking(move || store.remove_registration(&rid, kind)).await;
        metrics::counter!("gitvista_webhook_unregistrations_total", "outcome" => if removed { "removed" } else { "left" })
            .increment(1);
        tracing::info!(repo = %reg.repo_id, forge = kind, removed, "the account that registered a webhook was disconnected; its hook goes with it");
    }
}

/// Deletes hook `hook_id` of `path` on `p` with the first of `connections`' tokens that may.
async fn delete_with(
    accounts: &gitvista_accounts::accounts::Accounts,
    p: &dyn gitvista_accounts::provider::Provider,
    path: &str,
    hook_id: &str,
    connections: &[gitvista_store::accounts::Connection],
) -> bool {
    for c in connections {
        let Ok(token) = accounts.connection_token(c, p).await else {
            continue;
        };
        if p.delete_hook(&token, path, hook_id).await.is_ok() {
            return true;
        }
    }
    false
}
