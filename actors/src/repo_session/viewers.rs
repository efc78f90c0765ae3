//! Viewers and the requests sent to a session: broadcasting events (and publishing them to the
//! cluster's fan-out), subscribing, unsubscribing, snapshots on demand, refreshes.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::*;
use crate::events::ViewerEvent;
use crate::snapshot::Snapshot;
use crate::viewer::Delivery;

impl RepoSession {
    /// Sends `event` to every viewer without waiting; viewers whose mailbox is gone are dropped.
    /// A full mailbox is the viewer's problem (its WebSocket actor coalesces or disconnects).
    pub(super) fn broadcast(&mut self, event: ViewerEvent) {
        if let Some(crate::events::ClusterLink::Owner { id, publish }) = &self.config.cluster
            && !matches!(event, ViewerEvent::Closing | ViewerEvent::Status(_))
        {
            publish.do_send(crate::events::Published {
                id: id.clone(),
                event: event.clone(),
            });
        }
        let started = std::time::Instant::now();
        let before = self.viewers.len();
        let mut full = 0u64;
        let message = crate::viewer::EventMessage::new(&event);
        self.viewers
            .retain(|_, v| match v.deliver(&event, &message) {
                Delivery::Taken => true,
                Delivery::Full => {
                    full += 1;
                    true
                }
                Delivery::Gone => false,
            });
        let gone = before - self.viewers.len();
        if gone > 0 && self.viewers.is_empty() {
            self.interest(false, None);
        }
        self.footprint.set_viewers(self.viewers.len());
        metrics::gauge!("gitvista_viewers").decrement(gone as f64);
        metrics::counter!("gitvista_events_sent_total").increment(before as u64);
        // Named when each viewer had a mailbox: events a full viewer queue refused.
        metrics::counter!("gitvista_viewer_mailbox_full_total").increment(full);
        metrics::histogram!("gitvista_broadcast_seconds").record(started.elapsed().as_secs_f64());
    }
}

impl RepoSession {
    /// A remote session tells the fan-out that it wants its repository's events (`watch`, from
    /// `me`) or no longer does.
    pub(super) fn interest(&self, watch: bool, me: Option<Recipient<crate::events::Relay>>) {
        let Some(crate::events::ClusterLink::Remote { id, interest }) = &self.config.cluster else {
            return;
        };
        let id = id.clone();
        interest.do_send(match (watch, me) {
            (true, Some(session)) => crate::events::Interest::Watch { id, session },
            _ => crate::events::Interest::Unwatch { id },
        });
    }
}

impl Handler<crate::events::Relay> for RepoSession {
    type Result = ();

    fn handle(&mut self, relay: crate::events::Relay, _: &mut Context<Self>) {
        if relay.version.is_some() {
            self.relayed_version = relay.version;
        }
        self.broadcast(relay.event);
    }
}

impl RepoSession {
    /// The current snapshot, or a future for it: after the first load, and with `complete` once
    /// its metadata is read.
    pub(super) fn answer_snapshot(
        &mut self,
        complete: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Arc<Snapshot>, SessionError>> {
        self.last_access = std::time::Instant::now();
        self.footprint.touch();
        if self.config.is_remote() {
            return Box::pin(async { Err(SessionError::Remote) });
        }
        // A repository idle long enough to stop fetching starts again when someone looks.
        if self.snapshot.is_some() && self.fetch_timer.is_none() && !self.fetching {
            self.schedule_fetch(ctx);
        }
        if let Some(s) = &self.snapshot
            && (!complete || (s.graph.has_metadata() && !s.is_partial()))
        {
            let s = Arc::clone(s);
            return Box::pin(async move { Ok(s) });
        }
        if let Some(e) = &self.failed {
            let e = e.clone();
            return Box::pin(async move { Err(SessionError::Load(e)) });
        }
        let (tx, rx) = oneshot::channel();
        if complete {
            self.waiting_complete.push(tx);
            // A fill that failed (it only can by panicking) is tried again for this request.
            if self.snapshot.is_some() && !self.filling {
                self.start_fill(ctx);
            }
        } else {
            self.waiting.push(tx);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(SessionError::Stopped)) })
    }
}

impl Handler<Subscribe> for RepoSession {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        self.last_access = std::time::Instant::now();
        // A first viewer makes the repository hot: fetch on the short interval from now.
        let first = self.viewers.is_empty();
        let tell = |event: ViewerEvent| {
            let _ = msg
                .viewer
                .deliver(&event, &crate::viewer::EventMessage::new(&event));
        };
        if let Some(status) = &self.status {
            tell(ViewerEvent::Status(Arc::clone(status)));
        }
        // Changed since the viewer's summary was read: the deltas in between went to the
        // viewers of that moment.
        // A remote session has no snapshot: the version of the last delta it relayed says.
        let current = self
            .snapshot
            .as_ref()
            .map(|s| s.version)
            .or(self.relayed_version);
        if let (Some(seen), Some(current)) = (msg.seen, current)
            && current != seen
        {
            tell(ViewerEvent::Behind(current));
        }
        // A viewer arriving during a long fetch, while fetches fail, or while file contents are
        // still being fetched, is told at once.
        let partial = self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.contents != gitcore::repo::Contents::Complete);
        if self.fetch_announced || self.fetch_error.is_some() || partial {
            tell(ViewerEvent::Remote(Arc::new(self.remote_state())));
        }
        if self.viewers.insert(msg.id, msg.viewer).is_none() {
            metrics::gauge!("gitvista_viewers").increment(1.0);
        }
        if first {
            self.interest(true, Some(ctx.address().recipient()));
        }
        self.footprint.set_viewers(self.viewers.len());
        self.footprint.touch();
        if (first || self.fetch_timer.is_none()) && self.snapshot.is_some() && !self.fetching {
            self.schedule_fetch(ctx);
        }
    }
}

impl Handler<Unsubscribe> for RepoSession {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if self.viewers.remove(&msg.id).is_some() {
            metrics::gauge!("gitvista_viewers").decrement(1.0);
            if self.viewers.is_empty() {
                self.interest(false, None);
            }
        }
        self.footprint.set_viewers(self.viewers.len());
    }
}

impl Handler<Shutdown> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<CloseViewers> for RepoSession {
    type Result = usize;

    fn handle(&mut self, _: CloseViewers, _: &mut Context<Self>) -> usize {
        let n = self.viewers.len();
        self.broadcast(ViewerEvent::Closing);
        metrics::gauge!("gitvista_viewers").decrement(self.viewers.len() as f64);
        self.viewers.clear();
        self.footprint.set_viewers(0);
        n
    }
}

impl Handler<ViewerCount> for RepoSession {
    type Result = usize;

    fn handle(&mut self, _: ViewerCount, _: &mut Context<Self>) -> usize {
        self.viewers.len()
    }
}

impl Handler<Refresh> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: Refresh, ctx: &mut Context<Self>) {
        if self.scheduled {
            return;
        }
        self.scheduled = true;
        ctx.run_later(self.config.debounce, |act, ctx| {
            act.scheduled = false;
            act.start_reload(ctx);
            // The index and HEAD live in the git directory: status may have changed too.
            act.start_status(ctx);
        });
    }
}

impl Handler<FetchNow> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: FetchNow, ctx: &mut Context<Self>) {
        if self.fetching {
            self.fetch_again = true;
        } else {
            self.start_fetch(ctx);
        }
    }
}

impl Handler<AccessChanged> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: AccessChanged, _: &mut Context<Self>) {
        self.broadcast(ViewerEvent::AccessChanged);
    }
}

impl Handler<RefreshStatus> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: RefreshStatus, ctx: &mut Context<Self>) {
        if self.status_scheduled {
            return;
        }
        self.status_scheduled = true;
        ctx.run_later(self.config.status_debounce, |act, ctx| {
            act.status_scheduled = false;
            act.start_status(ctx);
        });
    }
}
