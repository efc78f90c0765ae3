//! The state of a repository that request handlers read.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitcore::graph::commit_graph_file::CommitGraphFile;
use gitcore::graph::{CommitGraph, GraphDelta, LoadOptions, NewestOptions};
use gitcore::layout::{Layout, LayoutOptions, Subset};
use gitcore::mailmap::{Mailmap, UserConfig};
use gitcore::repo::{RepoError, Repository};
use gitcore::search::{Query, SearchError, search};

use crate::cache::SessionCaches;

/// A loaded repository: objects, commit graph and layout, consistent with one another. Never
/// mutated: a reload builds the next snapshot and the session swaps the `Arc`.
#[derive(Debug)]
pub struct Snapshot {
    /// The repository (object database and refs location), shared with the snapshot that reads
    /// the rest of the metadata.
    pub repo: Arc<Repository>,
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
    /// Set while the repository has no commit-graph file and its first view was slow enough for
    /// one to matter.
    pub commit_graph_hint: Option<CommitGraphHint>,
    /// Which objects the clone holds (a partial clone's filter), read with the objects.
    pub contents: gitcore::repo::Contents,
    /// Whether the user's git configuration names mailmaps too (local mode).
    user_config: UserConfig,
    /// Only the newest part of the history: a first screen read before the whole load, or a
    /// history still streaming from its remote. Searches and analytics wait for the whole.
    partial: bool,
}

/// When a session shows the newest commits first, while its whole history loads (see
/// [`Snapshot::first_screen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstScreen {
    /// Repositories whose packs hold fewer objects than this load whole in about the time the
    /// first screen takes (50,000 objects: some 7,000 commits of a forge-shaped history, about
    /// 40 ms here), and get no first screen.
    pub from_objects: usize,
    /// Commits the first screen reads at least (see [`NewestOptions::rows`]).
    pub rows: usize,
}

impl Default for FirstScreen {
    fn default() -> Self {
        FirstScreen {
            from_objects: 50_000,
            rows: NewestOptions::default().rows,
        }
    }
}

/// What `git commit-graph write` would save a repository without a commit-graph file, measured
/// on its own load: the first view took `first_view`, of which `decoding` went to reading
/// commits from the object store, the part a commit-graph replaces (with one, the load reads
/// ids, parents and dates from the file and the rows' authors and subjects as they are shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitGraphHint {
    /// Commits loaded.
    pub commits: usize,
    /// Time from opening the repository to a laid-out graph.
    pub first_view: Duration,
    /// The part of it spent reading commits from the object store.
    pub decoding: Duration,
}

impl CommitGraphHint {
    /// The command that writes the file (with changed-path filters, which `path:` searches use).
    pub const COMMAND: &'static str = "git commit-graph write --reachable --changed-paths";

    /// A first view shorter than this is not worth a hint (the default of `gitvista open`).
    pub const WORTH_IT: Duration = Duration::from_millis(200);

    /// The hint for a first view that took `first_view` on `graph`, if it is at least `after`
    /// (a load that slow is mostly decoding: the benchmarks measure 6 to 10 times faster first
    /// views with the file at 200,000 commits and more).
    fn measure(
        graph: &CommitGraph,
        first_view: Duration,
        after: Option<Duration>,
    ) -> Option<CommitGraphHint> {
        let source = graph.load_source();
        let hint = CommitGraphHint {
            commits: graph.len(),
            first_view,
            decoding: source.decode_time.min(first_view),
        };
        let worth_it =
            after.is_some_and(|after| first_view >= after) && hint.decoding > Duration::ZERO;
        (!source.commit_graph && worth_it).then_some(hint)
    }

    /// The expected first view with a commit-graph file: this one without its decoding.
    pub fn estimate(&self) -> Duration {
        self.first_view - self.decoding
    }

    /// How many times faster the first view would be (rounded down to a tenth).
    pub fn speedup(&self) -> f64 {
        let estimate = self.estimate().as_secs_f64().max(1e-6);
        (self.first_view.as_secs_f64() / estimate * 10.0).floor() / 10.0
    }

    /// One sentence for the log and the page.
    pub fn message(&self) -> String {
        format!(
            "no commit-graph: loading {} commits took {} ms; `{}` would show the first screen \
             about {}x faster (about {} ms) and answer path: searches from its filters",
            self.commits,
            self.first_view.as_millis(),
            Self::COMMAND,
            self.speedup(),
            self.estimate().as_millis(),
        )
    }
}

/// Views whose layouts a snapshot keeps.
const MAX_VIEWS: usize = 6;

impl Snapshot {
    /// Loads the repository at `path` (blocking: call from the blocking pool).
    ///
    /// With a commit-graph file only the topology is read: authors, author times and subjects are
    /// still to come ([`CommitGraph::has_metadata`] is false) and [`Snapshot::complete`] reads
    /// them; rows shown before read their own ([`CommitGraph::summaries`]).
    /// Without a commit-graph file, a first view slower than `hint_after` whose time went mostly
    /// to decoding commits gets a [`CommitGraphHint`].
    ///
    /// People are shown through the repository's mailmap, read as `git log` reads it (with the
    /// user's own git configuration where `user_config` says so).
    pub fn load(
        path: &Path,
        caches: Arc<SessionCaches>,
        hint_after: Option<Duration>,
        user_config: UserConfig,
    ) -> Result<Snapshot, RepoError> {
        let started = Instant::now();
        let repo = Repository::discover(path)?;
        let stamp = repo.change_stamp();
        let graph = CommitGraph::load_topology_with(&repo, LoadOptions::default())?;
        let mut snapshot = Self::first_version(repo, stamp, graph, caches, user_config, false);
        snapshot.commit_graph_hint =
            CommitGraphHint::measure(&snapshot.graph, started.elapsed(), hint_after);
        Ok(snapshot)
    }

    /// Version 1 of `graph`, read from `repo` as it was at `stamp`: people shown through the
    /// mailmap, the standard layout.
    fn first_version(
        repo: Repository,
        stamp: gitcore::repo::ChangeStamp,
        mut graph: CommitGraph,
        caches: Arc<SessionCaches>,
        user_config: UserConfig,
        partial: bool,
    ) -> Snapshot {
        graph.use_mailmap(Arc::new(Mailmap::read(&repo, None, user_config)));
        let layout = Layout::build(&graph, LayoutOptions::standard());
        Snapshot {
            contents: repo.contents(),
            repo: Arc::new(repo),
            graph,
            layout,
            version: 1,
            caches,
            views: Mutex::new(Vec::new()),
            stamp,
            commit_graph_hint: None,
            user_config,
            partial,
        }
    }

    /// The newest commits of the repository at `path` as a snapshot (blocking; tens of
    /// milliseconds), for a first screen shown while the whole history loads: `None` for a
    /// repository smaller than `first.from_objects`, or whose newest commits are the whole
    /// history (the whole load is as quick), or that does not open (the whole load says why).
    /// Rows, HEAD, refs among them, authors and subjects are those of the whole load; the history
    /// is cut where the walk stopped (see [`CommitGraph::load_newest`]). Pack indexes are not
    /// checksummed here: the whole load that follows does it.
    pub fn first_screen(
        path: &Path,
        first: FirstScreen,
        caches: Arc<SessionCaches>,
        user_config: UserConfig,
    ) -> Option<Snapshot> {
        let options = gitcore::odb::OdbOptions {
            verify_index_checksums: false,
            ..gitcore::odb::OdbOptions::default()
        };
        let repo = Repository::discover_with(path, options).ok()?;
        if repo.odb().packed_objects() < first.from_objects {
            return None;
        }
        let stamp = repo.change_stamp();
        let newest = NewestOptions {
            rows: first.rows,
            ..NewestOptions::default()
        };
        let newest = match CommitGraph::load_newest(&repo, newest) {
            Ok(n) if !n.complete => n,
            _ => return None,
        };
        Some(Self::first_version(
            repo,
            stamp,
            newest.graph,
            caches,
            user_config,
            true,
        ))
    }

    /// Whether this is only the newest part of the history (a first screen, or a history still
    /// streaming in): what needs the whole history waits for the next snapshot.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// A snapshot of a history read from the remote into memory (`repo` holds its commits;
    /// nothing is on disk yet), laid out by the caller.
    /// People are shown through the mailmap HEAD names, when its blob came.
    pub fn streamed(
        repo: Arc<Repository>,
        mut graph: CommitGraph,
        layout: Layout,
        version: u64,
        caches: Arc<SessionCaches>,
    ) -> Snapshot {
        let head = graph.head_commit().map(|i| graph.oid(i));
        graph.use_mailmap(Arc::new(Mailmap::read(&repo, head, UserConfig::Ignore)));
        Snapshot {
            user_config: UserConfig::Ignore,
            contents: repo.contents(),
            stamp: repo.change_stamp(),
            repo,
            graph,
            layout,
            version,
            caches,
            views: Mutex::new(Vec::new()),
            commit_graph_hint: None,
            partial: true,
        }
    }

    /// This snapshot with every commit's metadata read (blocking: all cores, about 3 us a
    /// commit); itself if it had them. Same version: rows already shown do not change.
    pub fn complete(self: &Arc<Self>) -> Arc<Snapshot> {
        if self.graph.has_metadata() {
            return Arc::clone(self);
        }
        let mut graph = self.graph.clone();
        graph.fill_metadata(&self.repo);
        Arc::new(self.same_version(Arc::clone(&self.repo), graph, self.contents))
    }

    /// The same snapshot (graph, layout, version) reading the object database as it is on disk
    /// now: objects fetched for a request, or a hydrated clone moved into place. Cheap: the
    /// graph and layout are shared, unchanged packs are reused.
    pub fn with_fresh_objects(&self) -> Result<Snapshot, RepoError> {
        let repo = Arc::new(self.repo.refresh()?);
        let contents = repo.contents();
        Ok(self.same_version(repo, self.graph.clone(), contents))
    }

    /// This snapshot's version, layout, views and caches over `repo` and `graph` (the same
    /// commits: metadata filled in, or objects read afresh), holding `contents`.
    fn same_version(
        &self,
        repo: Arc<Repository>,
        graph: CommitGraph,
        contents: gitcore::repo::Contents,
    ) -> Snapshot {
        let views = self.views.lock().map(|v| v.clone()).unwrap_or_default();
        Snapshot {
            contents,
            repo,
            graph,
            layout: self.layout.clone(),
            version: self.version,
            caches: Arc::clone(&self.caches),
            views: Mutex::new(views),
            stamp: self.stamp,
            commit_graph_hint: self.commit_graph_hint.clone(),
            user_config: self.user_config,
            partial: self.partial,
        }
    }

    /// The repository as it is on disk now, and what changed (blocking). The layout is extended
    /// in place when commits were only added on top, rebuilt otherwise.
    pub fn reload(&self) -> Result<(Snapshot, GraphDelta), RepoError> {
        let stamp = self.repo.change_stamp();
        let repo = self.repo.refresh()?;
        let (mut graph, delta) = self.graph.reload(&repo)?;
        // A changed mailmap changes what rows and details show: a new version. It is read
        // afresh on each reload: its inputs (the config files, the work tree's `.mailmap`, a
        // blob HEAD names) cost as much to check for a change as to read, a few file reads and
        // two object reads, against the milliseconds of the reload itself.
        graph.use_mailmap(Arc::new(Mailmap::read(&repo, None, self.user_config)));
        let people_changed = graph.mailmap() != self.graph.mailmap();
        let layout = if delta.rewritten {
            Layout::build(&graph, self.layout.options().clone())
        } else {
            self.layout
                .extend(&graph)
                .unwrap_or_else(|_| Layout::build(&graph, self.layout.options().clone()))
        };
        let version = if delta.is_empty() && !people_changed {
            self.version
        } else {
            self.version + 1
        };
        Ok((
            Snapshot {
                contents: repo.contents(),
                repo: Arc::new(repo),
                graph,
                layout,
                version,
                caches: Arc::clone(&self.caches),
                views: Mutex::new(Vec::new()),
                stamp,
                // Gone once the file is written (writing it changes the stamp, so this runs).
                commit_graph_hint: self
                    .commit_graph_hint
                    .clone()
                    .filter(|_| !CommitGraphFile::exists(self.repo.odb().objects_dir())),
                user_config: self.user_config,
                partial: false,
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

    /// Heap held by the graph, the layout, the kept views and objects held in memory (a
    /// history streamed from the remote; not the caches, which are shared between snapshots
    /// and counted on their own).
    pub fn heap_bytes(&self) -> usize {
        let views = self
            .views
            .lock()
            .map(|v| v.iter().map(|(_, l)| l.heap_bytes()).sum::<usize>())
            .unwrap_or(0);
        self.graph.heap_bytes() + self.layout.heap_bytes() + views + self.repo.odb().memory_bytes()
    }

    /// The layout of this graph under `options` (filters, first-parent, no merges): the main
    /// layout for the default view, else one built on first use and kept (blocking: it costs a
    /// full layout, ~25 ms per 200,000 commits).
    pub fn layout_for(&self, options: &LayoutOptions) -> Layout {
        if options == self.layout.options() {
            return self.layout.clone();
        }
        if let Some(layout) = self.kept_view(options) {
            return layout;
        }
        let layout = Layout::build(&self.graph, options.clone());
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if views.len() >= MAX_VIEWS {
            views.remove(0);
        }
        views.push((options.clone(), layout.clone()));
        layout
    }

    /// A kept layout of the view `options`, marked most recently used.
    fn kept_view(&self, options: &LayoutOptions) -> Option<Layout> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        let k = views.iter().position(|(o, _)| o == options)?;
        let hit = views.remove(k);
        let layout = hit.1.clone();
        views.push(hit);
        Some(layout)
    }

    /// The layout of the view `options` keeping only the commits `query` matches, named by
    /// `text` (the query as typed): "show only matches". Built on first use and kept like
    /// [`Snapshot::layout_for`] (blocking: a search of the whole history, then a full layout).
    /// Searches that read authors or subjects need a [`Snapshot::complete`] snapshot.
    pub fn matching_layout(
        &self,
        mut options: LayoutOptions,
        text: &str,
        query: &Query,
    ) -> Result<Layout, SearchError> {
        // Subsets compare by name: an empty one finds the kept layout of the same search.
        options.subset = Some(Subset::new(text, 0, []));
        if let Some(layout) = self.kept_view(&options) {
            return Ok(layout);
        }
        let hits = search(self.repo.odb(), &self.graph, query)?;
        options.subset = Some(Subset::new(text, self.graph.len(), hits));
        Ok(self.layout_for(&options))
    }
}
