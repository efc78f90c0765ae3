//! A hosted session's fetches: when the next one is due (adaptive: faster while watched, slower
//! when cold, never when the layer above says so), starting it through the CloneQueue, and what viewers are told.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::*;
use crate::clone_queue::{Enqueue, FailureClass, JobKind, Priority};
use crate::events::{RemoteState, ViewerEvent};
use crate::pace::Pace;

impl RepoSession {
    /// How long until the next fetch, or `None` when the repository is idle enough to stop.
    pub(super) fn fetch_interval(&self, f: &FetchConfig) -> Option<Duration> {
        let pace = f.pace();
        if pace == Pace::Never {
            return None;
        }
        let idle = self.last_access.elapsed();
        let base = if !self.viewers.is_empty() {
            f.with_viewers
        } else if idle < Duration::from_secs(3600) {
            f.recent
        } else if idle < f.idle_stop {
            f.cold
        } else {
            return None;
        };
        // No faster than the layer above allows.
        let base = match pace {
            Pace::AtMost(floor) => base.max(floor),
            Pace::Adaptive | Pace::Never => base,
        };
        // A live webhook says when the remote changes: polling is only the safety net, until
        // the hook has been quiet for the window (then the adaptive poll is back within one
        // interval).
        let base = match f.hooks.as_ref().and_then(|h| h.since(&f.id)) {
            Some(since) if since < f.hook_window => {
                base.max(f.hooked_every.min(f.hook_window - since + base))
            }
            _ => base,
        };
        let backoff = base.saturating_mul(1u32 << self.fetch_failures.min(16));
        Some(if self.fetch_failures > 0 {
            backoff.min(f.max_backoff.max(base))
        } else {
            base
        })
    }

    /// Tells the hosted layer about a finished fetch, with the commits the session now holds.
    pub(super) fn report_fetch(&self, mut done: FetchDone) {
        done.commits = self.snapshot.as_ref().map(|s| s.graph.len());
        if let Some(on_done) = self.config.fetch.as_ref().and_then(|f| f.on_done.as_ref()) {
            let _ = on_done.try_send(done);
        }
    }

    /// (Re)arms the fetch timer from now.
    pub(super) fn schedule_fetch(&mut self, ctx: &mut Context<Self>) {
        let Some(f) = self.config.fetch.clone() else {
            return;
        };
        if let Some((h, _)) = self.fetch_timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(after) = self.fetch_interval(&f) {
            let handle = ctx.run_later(after, |act, ctx| {
                act.fetch_timer = None;
                act.start_fetch(ctx);
            });
            self.fetch_timer = Some((handle, std::time::Instant::now() + after));
        }
    }

    /// Fetches through the queue, then reloads; reports to the hosted layer.
    pub(super) fn start_fetch(&mut self, ctx: &mut Context<Self>) {
        let Some(f) = self.config.fetch.clone() else {
            return;
        };
        if self.fetching || f.pace() == Pace::Never {
            return;
        }
        self.fetching = true;
        self.fetch_notice = Some(ctx.run_later(f.notice_after, |act, _| {
            act.fetch_notice = None;
            act.fetch_announced = true;
            act.broadcast(ViewerEvent::Remote(Arc::new(act.remote_state())));
        }));
        let job = f.queue.send(Enqueue {
            id: f.id.clone(),
            kind: JobKind::Fetch,
            // Fetches for viewers use the slot kept for them.
            priority: if self.viewers.is_empty() {
                Priority::Background
            } else {
                Priority::Watched
            },
            progress: None,
            client: None,
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(job).map(move |result, act, ctx| {
                act.fetching = false;
                act.last_fetch = Some(std::time::Instant::now());
                if let Some(notice) = act.fetch_notice.take() {
                    ctx.cancel_future(notice);
                }
                let failure = match result {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some((e.class().code(), e.public_message(), e.to_string())),
                    Err(e) => Some((
                        FailureClass::Failed.code(),
                        FailureClass::Failed.sentence().to_string(),
                        e.to_string(),
                    )),
                };
                let code = failure.as_ref().map(|f| f.0);
                act.fetch_detail = failure.as_ref().map(|f| f.2.clone());
                let error = failure.map(|f| f.1);
                if error.is_some() {
                    act.fetch_failures = act.fetch_failures.saturating_add(1);
                } else {
                    act.fetch_failures = 0;
                }
                // Viewers hear of the end of a fetch they were told of, and of a fetch that
                // failed, or worked after failing; a quick fetch like the last one is silent.
                let announced = std::mem::take(&mut act.fetch_announced);
                if announced || error != act.fetch_error {
                    act.fetch_error = error.clone();
                    act.broadcast(ViewerEvent::Remote(Arc::new(act.remote_state())));
                }
                let done = FetchDone {
                    id: f.id.clone(),
                    commits: None,
                    failures: act.fetch_failures,
                    error,
                    code,
                };
                if done.error.is_none() {
                    // Reported once the reload holds the fetched commits, not the old count.
                    act.report_after_reload = Some(done);
                    act.start_reload(ctx);
                } else {
                    act.report_fetch(done);
                }
                if std::mem::take(&mut act.fetch_again) {
                    act.start_fetch(ctx);
                } else {
                    act.schedule_fetch(ctx);
                }
            }),
        );
    }

    /// Where fetching stands, as viewers see it.
    pub(super) fn remote_state(&self) -> RemoteState {
        RemoteState {
            state: if self.fetching && self.fetch_announced {
                "fetching"
            } else if self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.repo.is_in_memory())
            {
                // Shown from the remote while the clone runs.
                "cloning"
            } else {
                "ready"
            },
            error: self.fetch_error.clone(),
            failures: self.fetch_failures,
            contents: self
                .snapshot
                .as_ref()
                .map_or("complete", |s| s.contents.as_str()),
            hydrating: self.hydrating,
        }
    }
}
