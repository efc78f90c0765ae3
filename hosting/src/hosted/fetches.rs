//! Finished fetches: recorded in the store, and the clone kept in shape (repacks and
//! commit-graphs queued as packs gather).

use std::sync::Arc;

use actix::prelude::*;
use gitvista_actors::clone_queue::{CloneQueue, Enqueue, JobKind, Priority, dir_size};
use gitvista_actors::repo_session::FetchDone;
use gitvista_actors::supervisor::{GetSession, Running};
use gitvista_actors::{RepoId, Supervisor};

use gitvista_store::Store;

/// Records finished fetches in the store (off the actor thread), and keeps the clone in shape:
/// past [`MAX_PACKS`] packs a repack (then a commit-graph) is queued.
#[derive(Debug)]
pub struct FetchRecorder {
    pub(crate) store: Store,
    pub(crate) fences: Arc<gitvista_cluster::Fences>,
    pub(crate) data_dir: std::path::PathBuf,
    pub(crate) queue: Addr<CloneQueue>,
    pub(crate) supervisor: Addr<Supervisor>,
}

/// Packs a clone may gather (each fetch adds one) before they are repacked.
pub const MAX_PACKS: usize = 8;

/// Packs in a repository.
pub(crate) fn pack_count(repo: &std::path::Path) -> usize {
    std::fs::read_dir(repo.join("objects").join("pack")).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    })
}

/// Queues git's own maintenance of repository `id` (background; runs after what is queued for
/// it): a repack first when asked, then the commit-graph. A running session reloads after a
/// repack (its packs were replaced; a reload that raced the repack may have failed).
pub fn maintain(
    queue: &Addr<CloneQueue>,
    supervisor: &Addr<Supervisor>,
    id: &RepoId,
    repack: bool,
) {
    let (queue, supervisor, id) = (queue.clone(), supervisor.clone(), id.clone());
    actix::spawn(async move {
        let job = |kind: JobKind| Enqueue {
            id: id.clone(),
            kind,
            priority: Priority::Background,
            progress: None,
            client: None,
        };
        if repack {
            let repacked = queue.send(job(JobKind::Repack)).await;
            if matches!(repacked, Ok(Ok(())))
                && let Ok(true) = supervisor.send(Running(id.clone())).await
                && let Ok(Ok(session)) = supervisor.send(GetSession(id.clone())).await
            {
                session.do_send(gitvista_actors::repo_session::Refresh);
            }
        }
        let _ = queue.send(job(JobKind::CommitGraph)).await;
    });
}

impl Actor for FetchRecorder {
    type Context = Context<Self>;
}

impl Handler<FetchDone> for FetchRecorder {
    type Result = ();

    fn handle(&mut self, msg: FetchDone, _: &mut Context<Self>) {
        let store = self.store.clone();
        // Only the owner records anything, and only while its epoch is current.
        let Some(fence) = self.fences.get(msg.id.as_str()) else {
            return;
        };
        let dir = self.data_dir.join("repos").join(msg.id.as_str());
        if msg.error.is_none() && pack_count(&dir) > MAX_PACKS {
            maintain(&self.queue, &self.supervisor, &msg.id, true);
        }
        actix::spawn(async move {
            let _ = tokio::task::spawn_blocking(move || match &msg.error {
                None => {
                    store.set_fetched_fenced(
                        msg.id.as_str(),
                        &fence,
                        msg.commits.map(|c| c as i64),
                        dir_size(&dir) as i64,
                    )?;
                    store.set_state_fenced(msg.id.as_str(), &fence, "ready", None)
                }
                // The last good clone is still served; the error is shown beside it.
                Some(e) => store.set_failure_fenced(
                    msg.id.as_str(),
                    &fence,
                    "ready",
                    msg.code.unwrap_or("failed"),
                    &format!("Updating failed {} time(s): {e}", msg.failures),
                ),
            })
            .await;
        });
    }
}
