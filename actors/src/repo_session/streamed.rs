//! A session shown before its clone exists: the hosted layer streams the remote's commits into
//! memory and hands the session each larger history ([`Streamed`]); viewers get each as a delta
//! (older commits below, rows anchored as for any live update). When the clone is on disk
//! ([`Cloned`]) the session reads it like any other and tells viewers what differs, usually
//! nothing.

use std::sync::Arc;

use actix::prelude::*;
use gitcore::graph::CommitGraph;
use gitcore::layout::Layout;
use gitcore::repo::Repository;

use super::RepoSession;
use crate::events::{DeltaEvent, ViewerEvent};
use crate::snapshot::Snapshot;

/// More of the history came from the remote: `graph` (laid out as `layout`) over the commits
/// `repo` holds in memory.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Streamed {
    /// The commits (and tags) received, in memory.
    pub repo: Arc<Repository>,
    /// Their graph, cut where parents have not come yet.
    pub graph: CommitGraph,
    /// Its standard layout.
    pub layout: Layout,
}

/// The clone is on disk now: read it, and serve it from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Cloned;

impl Handler<Streamed> for RepoSession {
    type Result = ();

    fn handle(&mut self, msg: Streamed, _: &mut Context<Self>) {
        if self.from_disk {
            // The clone is being read or served already; it holds at least as much.
            return;
        }
        let Streamed {
            repo,
            graph,
            layout,
        } = msg;
        let before = self.snapshot.clone();
        let delta = before.as_ref().map(|b| b.graph.delta_to(&graph));
        if delta.as_ref().is_some_and(|d| d.is_empty()) {
            return;
        }
        let version = before.as_ref().map_or(1, |b| b.version + 1);
        let snapshot = Arc::new(Snapshot::streamed(
            repo,
            graph,
            layout,
            version,
            Arc::clone(&self.caches),
        ));
        self.footprint.set_heap(snapshot.heap_bytes());
        self.snapshot = Some(Arc::clone(&snapshot));
        metrics::counter!("gitvista_streamed_snapshots_total").increment(1);
        match delta {
            None => {
                // Requests for the whole history (searches, analytics) wait for the clone.
                for w in self.waiting.drain(..) {
                    let _ = w.send(Ok(Arc::clone(&snapshot)));
                }
            }
            Some(delta) => {
                let event = DeltaEvent::new(version, &delta, snapshot.layout.len());
                self.broadcast(ViewerEvent::Delta(Arc::new(event)));
            }
        }
    }
}

impl Handler<Cloned> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: Cloned, ctx: &mut Context<Self>) {
        if !self.from_disk {
            self.start_load(ctx);
        }
    }
}
