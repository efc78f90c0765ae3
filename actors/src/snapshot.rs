//! The state of a repository that request handlers read.

use std::path::Path;
use std::sync::Arc;

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
}

impl Snapshot {
    /// Loads the repository at `path` (blocking: call from the blocking pool).
    pub fn load(path: &Path, caches: Arc<SessionCaches>) -> Result<Snapshot, RepoError> {
        let repo = Repository::discover(path)?;
        let graph = CommitGraph::load(&repo)?;
        let layout = Layout::build(&graph, LayoutOptions::default());
        Ok(Snapshot {
            repo,
            graph,
            layout,
            version: 1,
            caches,
        })
    }

    /// The repository as it is on disk now, and what changed (blocking). The layout is extended
    /// in place when commits were only added on top, rebuilt otherwise.
    pub fn reload(&self) -> Result<(Snapshot, GraphDelta), RepoError> {
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
            },
            delta,
        ))
    }
}
