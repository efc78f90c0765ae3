//! What only the forge may say about a tracked repository: whether it is private, where it
//! lives now, and whether a URL still names the same repository.
//!
//! A webhook's body and a pasted URL are hints. Before a visibility change, a rename or a
//! transfer is followed, the forge is asked (with the token of a user who tracks the
//! repository) and its answer is compared with what is known: the forge's own id of the
//! repository, learnt the first time the forge describes it, must be the same, so a new
//! repository made at a renamed one's old name is never taken for it.

use super::Accounts;
use crate::provider::ForgeRepo;
use gitvista_errors::blocking;

/// How many trackers' tokens are tried before the answer is given up on.
const ASKED: usize = 3;

/// What the forge said about a repository at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgeSays {
    /// The forge describes the same repository: its id is the one learnt (or is learnt now).
    Same(ForgeRepo),
    /// The URL names another repository than the one tracked (a new one at an old name).
    Another,
    /// None of the trackers asked may read it: private to them, or gone.
    Unreadable,
    /// Nobody could ask (no tracker has an account on its forge), the forge did not answer,
    /// or the repository's id is not known when it had to be.
    Unknown,
}

/// Whether a repository whose id is not known yet may have it learnt from this answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Yes: the URL asked about is the repository's own canonical URL.
    Yes,
    /// No: the URL is new (a rename's target), so only a known id can confirm it.
    No,
}

impl Accounts {
    /// Asks the forge about `url` on behalf of repository `repo_id`, with the tokens of up to
    /// three users who track it (most recently confirmed first), and compares the forge's id
    /// of what it found with the one known for `repo_id`.
    pub async fn ask_about(&self, repo_id: &str, url: &str, learn: Learn) -> ForgeSays {
        let Some((p, path)) = self.forge_of(url) else {
            return ForgeSays::Unknown;
        };
        let (store, rid, kind) = (self.store.clone(), repo_id.to_string(), p.kind());
        let Ok(readers) = blocking(move || store.readers(&rid, kind)).await else {
            return ForgeSays::Unknown;
        };
        let mut unreadable = false;
        let mut failed = false;
        for (_, connection) in readers.iter().take(ASKED) {
            let Ok(token) = self.connection_token(connection, p.as_ref()).await else {
                failed = true;
                continue;
            };
            match p.repo(&token, &path).await {
                Ok(Some(found)) => return self.compare(repo_id, found, learn).await,
                Ok(None) => unreadable = true,
                Err(_) => failed = true,
            }
        }
        if unreadable && !failed {
            ForgeSays::Unreadable
        } else {
            ForgeSays::Unknown
        }
    }

    /// Whether `found` is repository `repo_id`, by the forge's id.
    pub async fn compare(&self, repo_id: &str, found: ForgeRepo, learn: Learn) -> ForgeSays {
        let (store, rid) = (self.store.clone(), repo_id.to_string());
        let Ok(known) = blocking(move || store.forge_repo_id(&rid)).await else {
            return ForgeSays::Unknown;
        };
        match (known, found.id.clone(), learn) {
            (Some(known), Some(id), _) if known == id => ForgeSays::Same(found),
            (Some(_), Some(_), _) => {
                tracing::warn!(repo = %repo_id, "the forge's answer names another repository than the one tracked (a new one at a renamed one's old name?); nothing is changed");
                ForgeSays::Another
            }
            (None, Some(id), Learn::Yes) => {
                let (store, rid) = (self.store.clone(), repo_id.to_string());
                match blocking(move || store.learn_forge_repo_id(&rid, &id)).await {
                    // Another request learnt a different id first: compare with that one.
                    Ok(Some(now)) if Some(&now) != found.id.as_ref() => ForgeSays::Another,
                    Ok(_) => ForgeSays::Same(found),
                    Err(_) => ForgeSays::Unknown,
                }
            }
            _ => ForgeSays::Unknown,
        }
    }
}
