//! What users see of a repository's clone: its progress (the [`ProgressBoard`] the queue
//! reports to, and one status feed per repository with progress sockets open), its status, and
//! its row as the API shows it.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use gitvista_actors::RepoId;
use gitvista_actors::clone_queue::JobProgress;

use crate::hosted::Hosted;
use crate::hosted::{FEED_INTERVAL, ProgressStatus};
use gitvista_store::Repo;
use serde_json::{Value, json};

/// Clone progress by repository, as the status route shows it.
#[derive(Debug, Default)]
pub struct ProgressBoard {
    latest: HashMap<RepoId, JobProgress>,
}

impl Actor for ProgressBoard {
    type Context = Context<Self>;
}

impl Handler<JobProgress> for ProgressBoard {
    type Result = ();

    fn handle(&mut self, msg: JobProgress, _: &mut Context<Self>) {
        self.latest.insert(msg.id.clone(), msg);
    }
}

/// The latest progress of a repository's running job (taken: it is shown once per job).
#[derive(Debug, Message)]
#[rtype(result = "Option<JobProgress>")]
pub struct LatestProgress(pub RepoId, pub bool);

impl Handler<LatestProgress> for ProgressBoard {
    type Result = Option<JobProgress>;

    fn handle(
        &mut self,
        LatestProgress(id, clear): LatestProgress,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if clear {
            self.latest.remove(&id)
        } else {
            self.latest.get(&id).cloned()
        }
    }
}

impl Hosted {
    /// The status feed of repository `id`'s clone: one task per repository reads its state every
    /// 250 ms for all its progress sockets, while at least one watches, until the clone ends.
    pub fn progress_feed(
        self: &Arc<Self>,
        id: &str,
    ) -> tokio::sync::watch::Receiver<Option<ProgressStatus>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = feeds.get(id) {
            return rx.clone();
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        feeds.insert(id.to_string(), rx.clone());
        metrics::gauge!("gitvista_progress_feeds").increment(1.0);
        let hosted = Arc::clone(self);
        let id = id.to_string();
        actix::spawn(async move {
            loop {
                let (store, rid) = (hosted.store.clone(), id.clone());
                let row = gitvista_errors::blocking(move || store.repo(&rid)).await;
                let status = match row {
                    Ok(Some(repo)) => {
                        let mut v = hosted.repo_status(&repo).await;
                        v["type"] = "status".into();
                        ProgressStatus {
                            state: v["state"].as_str().unwrap_or_default().to_string(),
                            served: v["rows"].as_u64().is_some_and(|rows| rows > 0),
                            text: v.to_string(),
                        }
                    }
                    Ok(None) | Err(_) => ProgressStatus {
                        state: "gone".into(),
                        text: serde_json::json!({
                            "type": "status", "state": "gone", "id": id,
                            "error": "the repository was deleted",
                        })
                        .to_string(),
                        served: false,
                    },
                };
                let done =
                    status.served || matches!(status.state.as_str(), "ready" | "error" | "gone");
                tx.send_if_modified(|cur| {
                    let changed = cur.as_ref() != Some(&status);
                    *cur = Some(status);
                    changed
                });
                {
                    let mut feeds = hosted.feeds.lock().unwrap_or_else(|e| e.into_inner());
                    // Only the map's own receiver left: nobody watches.
                    if done || tx.receiver_count() <= 1 {
                        feeds.remove(&id);
                        break;
                    }
                }
                tokio::time::sleep(FEED_INTERVAL).await;
            }
            metrics::gauge!("gitvista_progress_feeds").decrement(1.0);
        });
        rx
    }
}

impl Hosted {
    /// A repository's state, clone progress (text, phase and percent) and error, with the rows
    /// streamed from the remote while it is cloned.
    pub async fn repo_status(&self, repo: &gitvista_store::Repo) -> serde_json::Value {
        let id = repo.id.as_str();
        let progress = match gitvista_actors::RepoId::parse(id) {
            Some(rid) => self
                .progress
                .send(LatestProgress(rid, false))
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let mut body = crate::hosted::status::repo_json(repo);
        body["progress"] = serde_json::json!(progress.as_ref().map(|p| &p.text));
        body["phase"] = serde_json::json!(progress.as_ref().map(|p| &p.phase));
        body["percent"] = serde_json::json!(progress.as_ref().and_then(|p| p.percent));
        // Shown from the remote while it is cloned: the page need not wait for the clone.
        if let Some(rows) = self.streamed_rows(id).filter(|_| repo.state == "cloning") {
            body["rows"] = serde_json::json!(rows);
            if progress.is_none() {
                body["progress"] =
                    serde_json::json!(format!("reading history from the remote: {rows} commits"));
            }
        }
        body
    }
}

/// A hosted repository's row as the API shows it.
pub fn repo_json(r: &Repo) -> Value {
    json!({
        "id": r.id,
        "url": r.canonical_url,
        "displayUrl": r.display_url,
        "private": r.is_private,
        "state": r.state,
        "error": r.error_message,
        "errorCode": r.error_code,
        "commits": r.commit_count,
        "diskBytes": r.disk_bytes,
        "lastFetchAt": r.last_fetch_at,
        "lastAccessAt": r.last_access_at,
        "createdAt": r.created_at,
    })
}
