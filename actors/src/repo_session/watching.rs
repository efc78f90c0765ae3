//! Watching a local repository's files: which filesystem events are changes, and the watchers
//! on the git directory and the work tree.

use std::path::Path;

use actix::prelude::*;
use gitcore::worktree::IgnoredPaths;
use notify::{RecursiveMode, Watcher};

use super::*;

/// Whether a filesystem event means something changed: a write, a creation, a removal or a
/// rename. Opens, reads and closes after reading (the server's own reads of `HEAD`, refs and
/// files) and attribute changes are not: reacting to them made every reload trigger the next.
pub(super) fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any | EventKind::Other => false,
    }
}

/// Tells a session its watcher failed (it polls from then on).
#[derive(Debug, Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct WatchFailed;

impl Handler<WatchFailed> for RepoSession {
    type Result = ();

    fn handle(&mut self, _: WatchFailed, ctx: &mut Context<Self>) {
        if !self.watch_failed {
            tracing::warn!(path = %self.config.path.display(), "the filesystem watcher failed; polling for changes");
            self.watch_failed = true;
            self.poll_every = self.config.poll_interval;
            self.schedule_poll(ctx);
        }
    }
}

/// Starts a recursive watcher on the work tree that asks `addr` for a status run on every change
/// outside the git directory (whose changes the other watcher reports) that status would not
/// leave out (an ignored build directory churns without one: [`IgnoredPaths`]), and for a
/// reload when the work tree's `.mailmap` changes (it renames people). The rules are read
/// again after the index or a `.gitignore` changed.
pub(super) fn watch_tree(
    addr: Addr<RepoSession>,
    work_tree: &Path,
    dirs: &gitcore::discover::GitDir,
    hash: gitcore::oid::HashKind,
) -> notify::Result<notify::RecommendedWatcher> {
    let addr = addr.downgrade();
    let (tree, dirs) = (work_tree.to_path_buf(), dirs.clone());
    let index = dirs.git_dir.join("index");
    let mailmap = work_tree.join(".mailmap");
    let mut rules: Option<IgnoredPaths> = None;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Some(addr) = addr.upgrade() else {
            return;
        };
        match res {
            Ok(event) if is_change(&event.kind) => {
                if event
                    .paths
                    .iter()
                    .any(|p| *p == index || p.file_name().is_some_and(|n| n == ".gitignore"))
                {
                    rules = None;
                }
                let rules = rules.get_or_insert_with(|| {
                    IgnoredPaths::load(&tree, &dirs.git_dir, &dirs.common_dir, hash)
                });
                let counts = event
                    .paths
                    .iter()
                    .filter(|p| !p.starts_with(&dirs.git_dir))
                    .any(|p| !rules.is_ignored(p));
                if counts {
                    addr.do_send(RefreshStatus);
                    if event.paths.contains(&mailmap) {
                        addr.do_send(Refresh);
                    }
                }
            }
            Ok(_) => {}
            Err(_) => addr.do_send(WatchFailed),
        }
    })?;
    watcher.watch(work_tree, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// Keeps a watcher that started, or says why one did not (the session polls instead): Linux
/// limits each user's inotify instances (`fs.inotify.max_user_instances`, 128 by default) and
/// watches (`fs.inotify.max_user_watches`, 8,192 on older kernels, more with more memory on
/// newer ones), and editors and file indexers take many.
pub(super) fn started(
    watcher: notify::Result<notify::RecommendedWatcher>,
    what: &str,
    path: &Path,
    poll: std::time::Duration,
) -> Option<notify::RecommendedWatcher> {
    watcher
        .map_err(|e| {
            tracing::warn!(
                path = %path.display(),
                "could not watch the {what} ({e}); polling for changes instead, from every {} ms \
                 (on Linux, raising fs.inotify.max_user_instances or fs.inotify.max_user_watches lifts the limit)",
                poll.as_millis()
            )
        })
        .ok()
}

/// Whether a path is one of git's lock files (written and renamed away in every update).
pub(super) fn is_lock(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "lock")
}

/// Starts a watcher on the git directory (and the common directory of a linked worktree) that
/// asks `addr` for a refresh on every change but lock-file churn.
/// The watcher holds a weak address: it must not keep a stopped session alive.
pub(super) fn watch(
    addr: Addr<RepoSession>,
    git_dir: &Path,
    common_dir: &Path,
) -> notify::Result<notify::RecommendedWatcher> {
    let addr = addr.downgrade();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Some(addr) = addr.upgrade() else {
            return;
        };
        match res {
            Ok(event) if is_change(&event.kind) && event.paths.iter().any(|p| !is_lock(p)) => {
                addr.do_send(Refresh);
            }
            Ok(_) => {}
            Err(_) => addr.do_send(WatchFailed),
        }
    })?;
    watcher.watch(git_dir, RecursiveMode::Recursive)?;
    if common_dir != git_dir {
        watcher.watch(common_dir, RecursiveMode::Recursive)?;
    }
    Ok(watcher)
}
