//! Loading and reloading: the first load from disk, reloads after a change (at most one running,
//! one more queued), filling a topology-only snapshot's metadata, the work tree's status, and
//! the polls that stand in for a watcher.

use std::sync::Arc;

use actix::prelude::*;

use super::watching::{started, watch, watch_tree};
use super::*;
use crate::events::{DeltaEvent, ViewerEvent};
use crate::snapshot::Snapshot;
use gitcore::worktree::StatusOptions;

impl RepoSession {
    pub(super) fn wants_status(&self) -> bool {
        self.config.status
            && self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.repo.dirs().work_tree.is_some())
    }

    /// Recomputes the work tree's status off the actor thread; broadcasts it if it changed.
    pub(super) fn start_status(&mut self, ctx: &mut Context<Self>) {
        if !self.wants_status() {
            return;
        }
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        if self.status_running {
            self.status_again = true;
            return;
        }
        self.status_running = true;
        self.status_runs += 1;
        metrics::counter!("gitvista_status_runs_total").increment(1);
        let work = tokio::task::spawn_blocking(move || {
            // Objects of a new HEAD may be in packs the snapshot has not seen yet.
            let repo = snapshot.repo.refresh().map_err(|e| e.to_string())?;
            gitcore::worktree::status(&repo, StatusOptions::default()).map_err(|e| e.to_string())
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
                act.status_running = false;
                if let Ok(Ok(status)) = result
                    && act.status.as_deref() != Some(&status)
                {
                    let status = Arc::new(status);
                    act.status = Some(Arc::clone(&status));
                    act.broadcast(ViewerEvent::Status(status));
                }
                if std::mem::take(&mut act.status_again) {
                    act.start_status(ctx);
                }
            }),
        );
    }

    pub(super) fn loaded(&mut self, result: Result<Snapshot, String>, ctx: &mut Context<Self>) {
        self.loading = false;
        match result {
            Ok(mut snapshot) => {
                // The whole of a history shown while it streamed from the remote or from a
                // first screen of its newest commits: viewers get what differs (the older
                // commits; nothing else unless the repository changed in between).
                let streamed = self.snapshot.take();
                let was_cloning = streamed.as_ref().is_some_and(|s| s.repo.is_in_memory());
                let delta = streamed.as_ref().map(|before| {
                    let delta = before.graph.delta_to(&snapshot.graph);
                    snapshot.version = before.version + u64::from(!delta.is_empty());
                    delta
                });
                let snapshot = Arc::new(snapshot);
                if let Some(delta) = delta.filter(|d| !d.is_empty()) {
                    self.broadcast(ViewerEvent::Delta(Arc::new(DeltaEvent::new(
                        snapshot.version,
                        &delta,
                        snapshot.layout.len(),
                    ))));
                }
                self.footprint.set_heap(snapshot.heap_bytes());
                let dirs = snapshot.repo.dirs().clone();
                self.snapshot = Some(Arc::clone(&snapshot));
                for w in self.waiting.drain(..) {
                    let _ = w.send(Ok(Arc::clone(&snapshot)));
                }
                if was_cloning {
                    // Viewers were told "cloning": the clone is in.
                    self.broadcast(ViewerEvent::Remote(Arc::new(self.remote_state())));
                }
                if let Some(hint) = &snapshot.commit_graph_hint {
                    tracing::info!(
                        path = %self.config.path.display(),
                        commits = hint.commits,
                        first_view_ms = hint.first_view.as_millis() as u64,
                        expected_ms = hint.estimate().as_millis() as u64,
                        "{}",
                        hint.message()
                    );
                }
                self.start_fill(ctx);
                if self.config.watch {
                    self.watcher = started(
                        watch(ctx.address(), &dirs.git_dir, &dirs.common_dir),
                        "git directory",
                        &dirs.git_dir,
                        self.config.poll_interval,
                    );
                }
                if self.config.watch
                    && self.wants_status()
                    && let Some(tree) = &dirs.work_tree
                {
                    // Checks the change stamp once in place (below).
                    let hash = snapshot.repo.odb().hash();
                    self.start_tree_watch(tree.clone(), dirs.clone(), hash, ctx);
                } else if self.config.watch {
                    // What changed while the history was read, before anything watched: the
                    // snapshot's change stamp was taken first, so a check finds it (or costs a
                    // few `stat` calls).
                    self.again = true;
                }
                self.start_status(ctx);
                self.schedule_fetch(ctx);
                self.schedule_poll(ctx);
                // A change noticed while the whole history loaded (a first screen was shown).
                if !self.filling && std::mem::take(&mut self.again) {
                    self.start_reload(ctx);
                }
            }
            Err(e) => {
                self.failed = Some(e.clone());
                if self.snapshot.as_ref().is_some_and(|s| s.is_partial()) {
                    // The first screen stays; its viewers learn why the rest will not come.
                    self.broadcast(ViewerEvent::ReloadFailed(Arc::new(e.clone())));
                }
                for w in self
                    .waiting
                    .drain(..)
                    .chain(self.waiting_complete.drain(..))
                {
                    let _ = w.send(Err(SessionError::Load(e.clone())));
                }
            }
        }
    }

    /// Watches the work tree, set up off the actor thread: a recursive watch adds one per
    /// directory, and a work tree with a build directory has tens of thousands (a Rust project's
    /// `target/`: 400 ms here), during which the session would answer nothing. Its status is
    /// polled until the watcher is in place, and computed again once it is.
    fn start_tree_watch(
        &mut self,
        tree: std::path::PathBuf,
        dirs: gitcore::discover::GitDir,
        hash: gitcore::oid::HashKind,
        ctx: &mut Context<Self>,
    ) {
        let addr = ctx.address();
        let poll = self.config.poll_interval;
        let work = tokio::task::spawn_blocking(move || {
            started(
                watch_tree(addr, &tree, &dirs, hash),
                "work tree",
                &tree,
                poll,
            )
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(|watcher, act, ctx| {
                act.tree_watcher = watcher.ok().flatten();
                // What changed while the history was read and the watches were set up: the
                // status, and refs or a `.mailmap` saved meanwhile (the snapshot's change stamp
                // was taken first: a check finds them, or costs a few `stat` calls).
                act.start_status(ctx);
                act.start_reload(ctx);
                act.schedule_poll(ctx);
            }),
        );
    }

    /// Whether the git directory must be polled: no watcher, or it failed, or the work tree is
    /// polled (its `.mailmap`, which renames people, is part of the change stamp a reload
    /// checks, and only the work tree's watcher would notice it saved).
    pub(super) fn polls_refs(&self) -> bool {
        self.watcher.is_none() || self.watch_failed || self.polls_status()
    }

    /// Whether the work tree's status must be polled (wanted, and no work-tree watcher).
    pub(super) fn polls_status(&self) -> bool {
        self.wants_status() && (self.tree_watcher.is_none() || self.watch_failed)
    }

    /// Schedules the next poll, if anything needs polling.
    pub(super) fn schedule_poll(&mut self, ctx: &mut Context<Self>) {
        if let Some(previous) = self.poll_timer.take() {
            ctx.cancel_future(previous);
        }
        if !self.polls_refs() && !self.polls_status() {
            return;
        }
        self.poll_timer = Some(ctx.run_later(self.poll_every, |act, ctx| {
            act.poll_timer = None;
            if act.polls_refs() {
                act.start_reload(ctx);
            }
            if act.polls_status() {
                act.start_status(ctx);
            }
            act.schedule_poll(ctx);
        }));
    }

    /// Reads the metadata of a snapshot loaded from a commit-graph file, off the actor thread,
    /// then swaps it in (same version: rows already shown do not change) and answers the
    /// requests waiting for it. Reloads wait for it: they would read the same metadata again.
    pub(super) fn start_fill(&mut self, ctx: &mut Context<Self>) {
        let Some(pending) = self.snapshot.clone() else {
            return;
        };
        if pending.is_partial() {
            // Part of the history: requests for the whole wait for the load that brings it.
            return;
        }
        if pending.graph.has_metadata() {
            for w in self.waiting_complete.drain(..) {
                let _ = w.send(Ok(Arc::clone(&pending)));
            }
            return;
        }
        self.filling = true;
        let work = {
            let pending = Arc::clone(&pending);
            tokio::task::spawn_blocking(move || pending.complete())
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(move |result, act, ctx| {
                act.filling = false;
                match result {
                    Ok(complete) => {
                        if act
                            .snapshot
                            .as_ref()
                            .is_some_and(|s| Arc::ptr_eq(s, &pending))
                        {
                            act.footprint.set_heap(complete.heap_bytes());
                            act.snapshot = Some(Arc::clone(&complete));
                        }
                        for w in act.waiting_complete.drain(..) {
                            let _ = w.send(Ok(Arc::clone(&complete)));
                        }
                    }
                    Err(e) => {
                        let e = format!("reading commit metadata failed: {e}");
                        tracing::warn!(path = %act.config.path.display(), "{e}");
                        for w in act.waiting_complete.drain(..) {
                            let _ = w.send(Err(SessionError::Load(e.clone())));
                        }
                    }
                }
                if std::mem::take(&mut act.again) {
                    act.start_reload(ctx);
                }
            }),
        );
    }

    pub(super) fn start_reload(&mut self, ctx: &mut Context<Self>) {
        let Some(previous) = self.snapshot.clone() else {
            return;
        };
        if self.reloading || self.filling || self.loading {
            self.again = true;
            return;
        }
        self.reloading = true;
        self.reload_checks += 1;
        let work = tokio::task::spawn_blocking(move || {
            previous.reload_if_changed().map_err(|e| e.to_string())
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
                act.reloading = false;
                let poll_cap = MAX_POLL.max(act.config.poll_interval);
                match result {
                    // Nothing a reload reads changed: a few stat calls, nothing read.
                    Ok(Ok(None)) => {
                        act.poll_every = (act.poll_every * 2).min(poll_cap);
                    }
                    Ok(Ok(Some((snapshot, delta)))) => {
                        act.reloads += 1;
                        act.poll_every = act.config.poll_interval;
                        metrics::counter!("gitvista_reloads_total").increment(1);
                        // An empty delta at a new version: people were renamed (the mailmap
                        // changed), and viewers re-read their rows as for any change.
                        let changed = !delta.is_empty()
                            || act
                                .snapshot
                                .as_ref()
                                .is_some_and(|s| s.version != snapshot.version);
                        let event = changed.then(|| {
                            DeltaEvent::new(snapshot.version, &delta, snapshot.layout.len())
                        });
                        // The delta carries HEAD; a `head` message follows only when HEAD is on
                        // another branch (or detached) now, not for a branch that advanced.
                        let branch_moved = delta.head.as_ref().is_some_and(|(before, after)| {
                            before.as_ref().and_then(|h| h.branch())
                                != after.as_ref().and_then(|h| h.branch())
                                || after.as_ref().is_some_and(|h| h.branch().is_none())
                        });
                        act.footprint.set_heap(snapshot.heap_bytes());
                        act.snapshot = Some(Arc::new(snapshot));
                        if let Some(event) = event {
                            let head = event.head.clone().filter(|_| branch_moved);
                            act.broadcast(ViewerEvent::Delta(Arc::new(event)));
                            if let Some(head) = head {
                                act.broadcast(ViewerEvent::Head(Arc::new(head)));
                            }
                        }
                    }
                    Ok(Err(e)) => act.broadcast(ViewerEvent::ReloadFailed(Arc::new(e))),
                    Err(e) => act.broadcast(ViewerEvent::ReloadFailed(Arc::new(e.to_string()))),
                }
                if !act.again
                    && let Some(done) = act.report_after_reload.take()
                {
                    act.report_fetch(done);
                }
                if std::mem::take(&mut act.again) {
                    act.start_reload(ctx);
                }
            }),
        );
    }
}

impl RepoSession {
    /// Reads the repository on disk (the first load, or a streamed session's clone once it
    /// landed), off the actor thread; requests wait for it. A large repository shown for the
    /// first time gets a first screen of its newest commits ([`Snapshot::first_screen`]) while
    /// the whole history loads; requests are answered from it meanwhile, except those that need
    /// the whole history.
    pub(super) fn start_load(&mut self, ctx: &mut Context<Self>) {
        self.from_disk = true;
        self.loading = true;
        let path = self.config.path.clone();
        let user_config = self.config.user_config;
        let caches = Arc::clone(&self.caches);
        // A history streaming from its remote is on screen already.
        let Some(first) = self.config.first_screen.filter(|_| self.snapshot.is_none()) else {
            self.load_whole(false, ctx);
            return;
        };
        let work = async move {
            let _permit = crate::budget::load_permit().await;
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let screen = Snapshot::first_screen(&path, first, caches, user_config);
                (screen, started)
            })
            .await
        };
        ctx.wait(
            actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
                let shown = match result {
                    Ok((Some(screen), started)) => {
                        act.show_first_screen(screen, started);
                        true
                    }
                    _ => false,
                };
                act.load_whole(shown, ctx);
            }),
        );
    }

    /// Serves `screen`, the newest commits, until the whole history is loaded.
    fn show_first_screen(&mut self, screen: Snapshot, started: std::time::Instant) {
        tracing::info!(
            path = %self.config.path.display(),
            commits = screen.graph.len(),
            ms = started.elapsed().as_millis() as u64,
            "first screen of the newest commits; the whole history follows"
        );
        metrics::counter!("gitvista_first_screens_total").increment(1);
        let screen = Arc::new(screen);
        self.footprint.set_heap(screen.heap_bytes());
        self.snapshot = Some(Arc::clone(&screen));
        for w in self.waiting.drain(..) {
            let _ = w.send(Ok(Arc::clone(&screen)));
        }
    }

    /// Loads the whole history off the actor thread. With a first screen `shown`, the session
    /// answers from it meanwhile; otherwise requests wait.
    fn load_whole(&mut self, shown: bool, ctx: &mut Context<Self>) {
        let path = self.config.path.clone();
        let hint_after = self.config.commit_graph_hint_after;
        let user_config = self.config.user_config;
        let caches = Arc::clone(&self.caches);
        // A few loads at a time: each holds a repository's worth of memory while it runs, and a
        // session stopped while waiting never loads.
        let work = async move {
            let _permit = crate::budget::load_permit().await;
            tokio::task::spawn_blocking(move || {
                Snapshot::load(&path, caches, hint_after, user_config).map_err(|e| e.to_string())
            })
            .await
        };
        let work = actix::fut::wrap_future::<_, Self>(work).map(|result, act, ctx| {
            let result = result.unwrap_or_else(|e| Err(e.to_string()));
            act.loaded(result, ctx);
        });
        if shown {
            ctx.spawn(work);
        } else {
            ctx.wait(work);
        }
    }
}

impl Handler<GetSnapshot> for RepoSession {
    type Result = ResponseFuture<Result<Arc<Snapshot>, SessionError>>;

    fn handle(&mut self, _: GetSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        self.answer_snapshot(false, ctx)
    }
}

impl Handler<GetCompleteSnapshot> for RepoSession {
    type Result = ResponseFuture<Result<Arc<Snapshot>, SessionError>>;

    fn handle(&mut self, _: GetCompleteSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        self.answer_snapshot(true, ctx)
    }
}
