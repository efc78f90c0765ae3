//! What a delivery may only suggest: a repository made public or private, renamed or
//! transferred. The forge is asked (with a tracker's token, see [`gitvista_accounts::confirm`]) before
//! anything that could show a repository to more people changes:
//!
//! - **Publicized**: the repository becomes public only when the forge describes the same
//!   repository (by its id) as public. An answer it does not give changes nothing.
//! - **Privatized**: hidden at once (hiding never shows anything to anyone) and every viewer's
//!   access is asked again; if the forge then says the same repository is public, it is
//!   public again.
//! - **Moved**: followed only to a URL on the same forge host, and only when the forge says
//!   the new URL names the same repository.
//!
//! Each hint's fate is counted in `gitvista_webhook_hints_total{hint, outcome}`.

use std::sync::Arc;

use gitvista_actors::RepoId;

use crate::hosted::Hosted;
use gitvista_accounts::confirm::{ForgeSays, Learn};
use gitvista_actors::repo_session::AccessChanged;
use gitvista_actors::supervisor::{GetSession, Running};
use gitvista_errors::{ApiError, blocking};

/// The lower-case host of `url`, with its port when it is not the scheme's own
/// ([`gitvista_accounts::provider::host_of`]), if it has one.
pub fn host_of(url: &str) -> Option<String> {
    gitvista_accounts::provider::host_of(url).ok()
}

fn count(hint: &'static str, outcome: &'static str) {
    metrics::counter!("gitvista_webhook_hints_total", "hint" => hint, "outcome" => outcome)
        .increment(1);
}

/// What the forge says about repository `id` at its own URL, if accounts are on.
async fn ask(hosted: &Hosted, id: &RepoId, url: &str, learn: Learn) -> ForgeSays {
    match &hosted.accounts {
        Some(a) => a.ask_about(id.as_str(), url, learn).await,
        None => ForgeSays::Unknown,
    }
}

/// A delivery says repository `id` was made private (`private`) or public.
pub async fn visibility(hosted: &Arc<Hosted>, id: RepoId, private: bool) -> Result<(), ApiError> {
    let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
    let Some(repo) = blocking(move || store.repo(&rid)).await? else {
        return Ok(());
    };
    if private {
        let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
        blocking(move || {
            store.set_private(&rid, true)?;
            store.expire_access(&rid)
        })
        .await?;
        access_changed(hosted, &id).await;
    }
    let hosted = Arc::clone(hosted);
    actix::spawn(async move {
        let says = ask(&hosted, &id, &repo.canonical_url, Learn::Yes).await;
        let public = matches!(&says, ForgeSays::Same(found) if !found.private);
        let outcome = match (private, public) {
            // Made public, and the forge agrees: shown to everyone from now on.
            (false, true) => {
                let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
                match blocking(move || store.set_private(&rid, false)).await {
                    Ok(_) => {
                        tracing::info!(repo = %id, "the forge confirms the repository is public");
                        "confirmed"
                    }
                    Err(_) => "unconfirmed",
                }
            }
            (false, false) => {
                tracing::warn!(repo = %id, answer = ?says, "a delivery says the repository was made public and its forge does not confirm it; nothing changes");
                if matches!(says, ForgeSays::Unknown) {
                    "unconfirmed"
                } else {
                    "refused"
                }
            }
            // Hidden already; the forge says it is public after all.
            (true, true) => {
                let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
                let _ = blocking(move || store.set_private(&rid, false)).await;
                tracing::info!(repo = %id, "a delivery said the repository was made private and its forge says it is public; it stays public");
                "refused"
            }
            (true, false) if matches!(says, ForgeSays::Unknown) => "unconfirmed",
            (true, false) => "confirmed",
        };
        count(if private { "privatized" } else { "publicized" }, outcome);
    });
    Ok(())
}

/// A delivery says repository `id` now lives at `url`.
pub async fn moved(hosted: &Arc<Hosted>, id: RepoId, url: String) -> Result<(), ApiError> {
    let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
    let Some(repo) = blocking(move || store.repo(&rid)).await? else {
        return Ok(());
    };
    if repo.canonical_url == url {
        return Ok(());
    }
    if host_of(&repo.canonical_url) != host_of(&url) {
        tracing::warn!(repo = %id, "a delivery says the repository moved to another host; refused");
        count("moved", "other_host");
        return Ok(());
    }
    let hosted = Arc::clone(hosted);
    actix::spawn(async move {
        // The new URL must name the repository whose id is known: a new URL cannot teach it.
        let says = ask(&hosted, &id, &url, Learn::No).await;
        if !matches!(says, ForgeSays::Same(_)) {
            tracing::warn!(repo = %id, answer = ?says, "a delivery says the repository moved and its forge does not confirm that the new URL names it; nothing changes");
            count("moved", "refused");
            return;
        }
        let (store, rid, u) = (hosted.store.clone(), id.as_str().to_string(), url.clone());
        if let Ok(true) = blocking(move || store.set_canonical_url(&rid, &u)).await {
            tracing::info!(repo = %id, url = %url, "the repository moved on its forge; following it");
            count("moved", "confirmed");
            // The owner points its clone at the new URL, then fetches.
            let _ = hosted.queue_job(&id, "set-url", FETCH_PRIORITY).await;
        }
    });
    Ok(())
}

/// Fetches asked for by hooks go ahead of maintenance, after clones.
pub const FETCH_PRIORITY: i32 = 5;

/// Tells the running session of `id`, if any, that who may read it changed.
pub async fn access_changed(hosted: &Arc<Hosted>, id: &RepoId) {
    // Viewers on every web node check their access again.
    if let Some(bus) = &hosted.bus {
        bus.do_send(gitvista_cluster::bus::Announce(
            id.clone(),
            gitvista_cluster::bus::Announcement::Access,
        ));
    }
    if let Ok(true) = hosted.supervisor.send(Running(id.clone())).await
        && let Ok(Ok(session)) = hosted.supervisor.send(GetSession(id.clone())).await
    {
        session.do_send(AccessChanged);
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn a_move_compares_hosts_as_urls_spell_them() {
        assert_eq!(
            host_of("https://GitHub.com/o/r"),
            host_of("https://github.com:443/o/renamed")
        );
        assert_ne!(
            host_of("https://github.com/o/r"),
            host_of("https://github.com.evil.example/o/r")
        );
        assert_ne!(
            host_of("http://127.0.0.1:8080/o/r"),
            host_of("http://127.0.0.1:8081/o/r")
        );
        assert_eq!(host_of("not a url"), None);
    }
}
