//! What a partial clone lacks, as a session handles it: objects fetched for one request
//! ([`FetchObjects`]) and the hydration's progress ([`Hydration`]), which viewers see in their
//! `status` messages.

use std::sync::Arc;

use actix::prelude::*;
use gitcore::oid::ObjectId;

use super::{RepoSession, SessionError};
use crate::clone_queue::{Enqueue, JobError, JobKind, JobProgress, Priority};
use crate::events::ViewerEvent;
use crate::snapshot::Snapshot;

/// Fetches `ids` from the repository's remote (a commit's trees, a file's versions) through the
/// CloneQueue's objects lane, then answers a snapshot that reads them. Objects already on disk
/// (another request fetched them) cost no fetch.
#[derive(Debug, Message)]
#[rtype(result = "Result<Arc<Snapshot>, ObjectsError>")]
pub struct FetchObjects {
    /// The objects one request needs.
    pub ids: Vec<ObjectId>,
}

/// Why objects could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectsError {
    /// The session cannot serve (it stopped, failed to load, or another node serves it).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The repository has no remote to fetch from (local mode).
    #[error("this repository has no remote to fetch objects from")]
    NoRemote,
    /// The fetch failed (the server refuses wants of objects it did not advertise, or it is
    /// unreachable): the request waits for the hydration.
    #[error(transparent)]
    Fetch(#[from] JobError),
    /// The history is shown from memory and its clone is not on disk yet: the request waits
    /// for it.
    #[error("the repository is still being cloned")]
    NotCloned,
    /// The fetch ran, yet some objects are still not there.
    #[error("the remote did not send object {0}")]
    NotSent(ObjectId),
}

/// The hydration of this repository started, went on, or ended.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub enum Hydration {
    /// Percent done (git's receiving and resolving phases as one bar).
    Progress(u8),
    /// It ended (successfully: the clone on disk is a new one, read it).
    Ended {
        /// The clone was replaced.
        replaced: bool,
    },
}

/// How far a hydration is, from one of git's progress lines: receiving objects is the first
/// nine tenths, resolving deltas the last.
pub fn hydration_percent(p: &JobProgress) -> Option<u8> {
    let pct = u32::from(p.percent?);
    match p.phase.as_str() {
        "Receiving objects" => Some((pct * 9 / 10) as u8),
        "Resolving deltas" => Some((90 + pct / 10) as u8),
        _ => None,
    }
}

impl Handler<FetchObjects> for RepoSession {
    type Result = ResponseFuture<Result<Arc<Snapshot>, ObjectsError>>;

    fn handle(&mut self, msg: FetchObjects, ctx: &mut Context<Self>) -> Self::Result {
        self.last_access = std::time::Instant::now();
        let Some(fetch) = self.config.fetch.clone() else {
            return Box::pin(async { Err(ObjectsError::NoRemote) });
        };
        let Some(snapshot) = self.snapshot.clone() else {
            return Box::pin(async { Err(ObjectsError::Session(SessionError::Stopped)) });
        };
        if snapshot.repo.is_in_memory() {
            return Box::pin(async { Err(ObjectsError::NotCloned) });
        }
        let me = ctx.address();
        Box::pin(async move {
            let check = |snap: Arc<Snapshot>, ids: Vec<ObjectId>| async move {
                tokio::task::spawn_blocking(move || {
                    let fresh = snap.with_fresh_objects().map_err(|e| e.to_string())?;
                    let missing: Vec<ObjectId> = ids
                        .iter()
                        .filter(|i| !fresh.repo.odb().contains(i))
                        .copied()
                        .collect();
                    Ok::<_, String>((fresh, missing))
                })
                .await
                .map_err(|e| ObjectsError::Fetch(JobError::Io(e.to_string())))?
                .map_err(|e| ObjectsError::Fetch(JobError::Io(e)))
            };
            let (fresh, missing) = check(snapshot, msg.ids).await?;
            let fresh = if missing.is_empty() {
                fresh
            } else {
                let hex: Vec<String> = missing.iter().map(|i| i.to_hex()).collect();
                fetch
                    .queue
                    .send(Enqueue {
                        id: fetch.id.clone(),
                        kind: JobKind::Objects { ids: hex },
                        priority: Priority::Interactive,
                        progress: None,
                        client: None,
                    })
                    .await
                    .map_err(|_| ObjectsError::Fetch(JobError::Stopped))??;
                let (fresh, still) = check(Arc::new(fresh), missing).await?;
                if let Some(first) = still.first() {
                    return Err(ObjectsError::NotSent(*first));
                }
                fresh
            };
            let fresh = Arc::new(fresh);
            // Later requests read the new packs too.
            let _ = me.send(Adopt(Arc::clone(&fresh))).await;
            Ok(fresh)
        })
    }
}

/// Makes `0` the session's snapshot if it is of the current version (a reload that finished
/// meanwhile read the new packs itself).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Adopt(Arc<Snapshot>);

impl Handler<Adopt> for RepoSession {
    type Result = ();

    fn handle(&mut self, Adopt(fresh): Adopt, _: &mut Context<Self>) {
        let same = self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.version == fresh.version && Arc::ptr_eq(&s.caches, &fresh.caches));
        if same && !self.reloading {
            self.snapshot = Some(fresh);
        }
    }
}

impl Handler<Hydration> for RepoSession {
    type Result = ();

    fn handle(&mut self, msg: Hydration, ctx: &mut Context<Self>) {
        match msg {
            Hydration::Progress(pct) => {
                if self.hydrating == Some(pct) {
                    return;
                }
                self.hydrating = Some(pct);
            }
            Hydration::Ended { replaced } => {
                self.hydrating = None;
                if replaced && let Some(snap) = self.snapshot.clone() {
                    // The clone on disk is another one now: read its objects (the refs are
                    // the same), then reload as after any fetch.
                    let work = tokio::task::spawn_blocking(move || snap.with_fresh_objects());
                    ctx.spawn(
                        actix::fut::wrap_future::<_, Self>(work).map(|fresh, act, ctx| {
                            if let Ok(Ok(fresh)) = fresh {
                                act.snapshot = Some(Arc::new(fresh));
                            }
                            act.start_reload(ctx);
                            act.broadcast(ViewerEvent::Remote(Arc::new(act.remote_state())));
                        }),
                    );
                    return;
                }
            }
        }
        self.broadcast(ViewerEvent::Remote(Arc::new(self.remote_state())));
    }
}

impl Handler<JobProgress> for RepoSession {
    type Result = ();

    /// Progress of the repository's hydration (the hosted layer passes the session as one of
    /// the job's progress recipients).
    fn handle(&mut self, msg: JobProgress, ctx: &mut Context<Self>) {
        if let Some(pct) = hydration_percent(&msg) {
            <Self as Handler<Hydration>>::handle(self, Hydration::Progress(pct), ctx);
        }
    }
}
