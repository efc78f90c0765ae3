//! The state of a repository that request handlers read.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gitcore::graph::{CommitGraph, GraphDelta};
use gitcore::layout::{Layout, LayoutOptions};
use gitcore::repo::{RepoError, Repository};

use crate::cache::SessionCaches;

/// A loaded repository: objects, commit graph and layout, consistent with one another. Never
/// mutated: a reload builds the next snapshot and the session swaps the `Arc`.
#[derive(Debug)]
pub struct Snapshot {
    /// The repository (object database and refs location).
    pub repo: Repository,
    /// Every commit, in topological order.
    pub graph: CommitGraph,
    /// The lane layout of `graph`.
    pub layout: Layout,
    /// Counts reloads that changed something, starting at 1.
    pub version: u64,
    /// The session's answer caches, shared by every snapshot of the session (their keys name
    /// immutable objects).
    pub caches: Arc<SessionCaches>,
    /// Layouts of other views (filters) of this graph, built on first use, most recent last.
    views: Mutex<Vec<(LayoutOptions, Layout)>>,
    /// The repository's change stamp, taken before it was read: a reload whose stamp is the same
    /// has nothing to read.
    stamp: gitcore::repo::ChangeStamp,
}

/// Views whose layouts a snapshot keeps.
const MAX_VIEWS: usize = 6;

impl Snapshot {
    /// Loads the repository at `path` (blocking: call from the blocking pool).
    pub fn load(path: &Path, caches: Arc<SessionCaches>) -> Result<Snapshot, RepoError> {
        let repo = Repository::discover(path)?;
        let stamp = repo.change_stamp();
        let graph = CommitGraph::load(&repo)?;
        let layout = Layout::build(&graph, LayoutOptions::standard());
        Ok(Snapshot {
            repo,
            graph,
            layout,
            version: 1,
            caches,
            views: Mutex::new(Vec::new()),
            stamp,
        })
    }

    /// The repository as it is on disk now, and what changed (blocking). The layout is extended
    /// in place when commits were only added on top, rebuilt otherwise.
    pub fn reload(&self) -> Result<(Snapshot, GraphDelta), RepoError> {
        let stamp = self.repo.change_stamp();
        let repo = self.repo.refresh()?;
        let (graph, delta) = self.graph.reload(&repo)?;
        let layout = if delta.rewritten {
            Layout::build(&graph, self.layout.options().clone())
        } else {
            self.layout
                .extend(&graph)
                .unwrap_or_else(|_| Layout::build(&graph, self.layout.options().clone()))
        };
        let version = if delta.is_empty() {
            self.version
        } else {
            self.version + 1
        };
        Ok((
            Snapshot {
                repo,
                graph,
                layout,
                version,
                caches: Arc::clone(&self.caches),
                views: Mutex::new(Vec::new()),
                stamp,
            },
            delta,
        ))
    }

    /// [`Snapshot::reload`], or `None` at the cost of a few `stat` calls when nothing a reload
    /// reads changed since this snapshot was read (blocking).
    pub fn reload_if_changed(&self) -> Result<Option<(Snapshot, GraphDelta)>, RepoError> {
        if self.repo.change_stamp() == self.stamp {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    /// Heap held by the graph, the layout and the kept views (not the caches, which are shared
    /// between snapshots and counted on their own).
    pub fn heap_bytes(&self) -> usize {
        let views = self
            .views
            .lock()
            .map(|v| v.iter().map(|(_, l)| l.heap_bytes()).sum::<usize>())
            .unwrap_or(0);
        self.graph.heap_bytes() + self.layout.heap_bytes() + views
    }

    /// The layout of this graph under `options` (filters, first-parent, no merges): the main
    /// layout for the default view, else one built on first use and kept (blocking: it costs a
    /// full layout, ~25 ms per 200,000 commits).
    pub fn layout_for(&self, options: &LayoutOptions) -> Layout {
        if options == self.layout.options() {
            return self.layout.clone();
        }
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = views.iter().position(|(o, _)| o == options) {
            let hit = views.remove(k);
            let layout = hit.1.clone();
            views.push(hit);
            return layout;
        }
        drop(views);
        let layout = Layout::build(&self.graph, options.clone());
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if views.len() >= MAX_VIEWS {
            views.remove(0);
        }
        views.push((options.clone(), layout.clone()));
        layout
    }
}
