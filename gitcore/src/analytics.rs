//! What each commit changed, in numbers, for the analytics dashboard: the files a commit changed
//! against its first parent (renames found as `git diff -M` finds them) with lines added and
//! deleted, as `git log --numstat` counts them. [`HistoryStats`] holds them for a whole history
//! compactly, computes them on every core, and is extended with only the commits it lacks when
//! the history grows. [`report`] turns them into the dashboard's figures for a time window.

pub mod report;

use std::collections::HashMap;

use imara_diff::{Algorithm, Diff, InternedInput};
use rayon::prelude::*;

use crate::diff::{DiffError, TreeDiffOptions, diff_trees, is_binary};
use crate::graph::{CommitGraph, CommitIdx};
use crate::object::{CommitRef, EntryMode};
use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::ObjectId;
use crate::repo::Repository;

/// Files larger than this count as binary (no lines), as git treats files over its
/// `core.bigFileThreshold`-like limits; far above any source file.
const MAX_COUNTED_BYTES: u64 = 64 << 20;

/// Commits diffed per parallel task.
const BATCH: usize = 256;

/// A commit's changed files as computed: (path, lines added, lines deleted).
type Computed = (ObjectId, Vec<(Vec<u8>, u32, u32)>);

/// One file a commit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileChange {
    /// The path (new path of a rename), as an index into [`HistoryStats::path`].
    pub path: u32,
    /// Lines added (0 for a binary file).
    pub added: u32,
    /// Lines deleted.
    pub deleted: u32,
}

/// Errors computing stats.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// An object could not be read.
    #[error(transparent)]
    Odb(#[from] OdbError),
    /// A commit or tree is malformed.
    #[error("{0}")]
    Parse(String),
}

impl From<DiffError> for StatsError {
    fn from(e: DiffError) -> Self {
        match e {
            DiffError::Odb(e) => StatsError::Odb(e),
            other => StatsError::Parse(other.to_string()),
        }
    }
}

type OidMap<V> = HashMap<ObjectId, V, std::hash::BuildHasherDefault<crate::oid::OidHasher>>;

/// The changes of many commits, keyed by commit id, with paths interned, and each path's unit
/// (its first two segments, what the hotspots count) interned too.
#[derive(Debug, Clone, Default)]
pub struct HistoryStats {
    paths: Vec<String>,
    path_index: HashMap<String, u32>,
    /// Unit of each path, as an index into `units`.
    path_unit: Vec<u32>,
    units: Vec<String>,
    unit_index: HashMap<String, u32>,
    files: Vec<FileChange>,
    /// Commit -> range in `files`.
    commits: OidMap<(u32, u32)>,
}

impl HistoryStats {
    /// The files `id` changed, if its changes are known.
    pub fn changes(&self, id: &ObjectId) -> Option<&[FileChange]> {
        let &(start, len) = self.commits.get(id)?;
        Some(&self.files[start as usize..(start + len) as usize])
    }

    /// A path by index.
    pub fn path(&self, i: u32) -> &str {
        &self.paths[i as usize]
    }

    /// Paths known.
    pub fn path_count(&self) -> usize {
        self.paths.len()
    }

    /// The unit (first two segments) of path `i`, as an index.
    pub fn unit_of_path(&self, i: u32) -> u32 {
        self.path_unit[i as usize]
    }

    /// A unit by index.
    pub fn unit(&self, u: u32) -> &str {
        &self.units[u as usize]
    }

    /// Units known.
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// Commits whose changes are known.
    pub fn len(&self) -> usize {
        self.commits.len()
    }

    /// Whether no commit's changes are known.
    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.files.capacity() * std::mem::size_of::<FileChange>()
            // Each entry: its id, its two numbers, and the table's control byte.
            + self.commits.capacity() * (std::mem::size_of::<(ObjectId, (u32, u32))>() + 1)
            + self
                .paths
                .iter()
                .map(|p| 2 * p.capacity() + 64)
                .sum::<usize>()
    }

    /// Forgets one commit's changes (its files stay in the arena until the stats are rebuilt):
    /// for measuring what reading one new commit costs.
    pub fn forget(&mut self, id: &ObjectId) {
        self.commits.remove(id);
    }

    /// How many of `commits` (merges aside) have changes not known yet.
    pub fn missing(&self, graph: &CommitGraph, commits: &[CommitIdx]) -> usize {
        commits
            .iter()
            .filter(|&&c| graph.parents(c).len() <= 1 && !self.commits.contains_key(&graph.oid(c)))
            .count()
    }

    /// Computes the changes of the commits in `commits` not known yet (merges are skipped: the
    /// dashboard counts them, it does not diff them), on every core. Answers how many were
    /// computed: after a push, only the new commits.
    pub fn extend(
        &mut self,
        repo: &Repository,
        graph: &CommitGraph,
        commits: &[CommitIdx],
    ) -> Result<usize, StatsError> {
        let missing: Vec<(ObjectId, Option<ObjectId>)> = commits
            .iter()
            .filter(|&&c| graph.parents(c).len() <= 1 && !self.commits.contains_key(&graph.oid(c)))
            .map(|&c| {
                (
                    graph.oid(c),
                    graph.parents(c).first().map(|&p| graph.oid(p)),
                )
            })
            .collect();
        let odb = repo.odb();
        let computed: Vec<Result<Vec<Computed>, StatsError>> = missing
            .par_chunks(BATCH)
            .map_init(
                || (odb.reader(), Vec::new()),
                |(reader, buf), batch| {
                    batch
                        .iter()
                        .map(|&(id, parent)| Ok((id, commit_changes(reader, buf, id, parent)?)))
                        .collect()
                },
            )
            .collect();
        let mut n = 0;
        for batch in computed {
            for (id, changes) in batch? {
                let start = self.files.len() as u32;
                for (path, added, deleted) in changes {
                    let path = String::from_utf8_lossy(&path).into_owned();
                    let next = self.paths.len() as u32;
                    let p = *self.path_index.entry(path.clone()).or_insert(next);
                    if p == next {
                        let unit = report::unit_of(&path).to_string();
                        let next_unit = self.units.len() as u32;
                        let u = *self.unit_index.entry(unit.clone()).or_insert(next_unit);
                        if u == next_unit {
                            self.units.push(unit);
                        }
                        self.path_unit.push(u);
                        self.paths.push(path);
                    }
                    self.files.push(FileChange {
                        path: p,
                        added,
                        deleted,
                    });
                }
                self.commits
                    .insert(id, (start, self.files.len() as u32 - start));
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The tree a commit names.
fn tree_of(
    reader: &mut OdbReader<'_>,
    buf: &mut Vec<u8>,
    id: ObjectId,
) -> Result<ObjectId, StatsError> {
    reader.read_kind(&id, ObjectKind::Commit, buf)?;
    Ok(CommitRef::parse(buf)
        .map_err(|e| StatsError::Parse(format!("commit {id}: {e}")))?
        .tree)
}

/// The files `id` changed against `parent` (the empty tree for a root), with line counts.
fn commit_changes(
    reader: &mut OdbReader<'_>,
    buf: &mut Vec<u8>,
    id: ObjectId,
    parent: Option<ObjectId>,
) -> Result<Vec<(Vec<u8>, u32, u32)>, StatsError> {
    let new = tree_of(reader, buf, id)?;
    let old = match parent {
        Some(p) => Some(tree_of(reader, buf, p)?),
        None => None,
    };
    let d = diff_trees(reader, old, Some(new), TreeDiffOptions::default())?;
    let mut out = Vec::with_capacity(d.changes.len());
    for ch in &d.changes {
        let side = |s: &Option<crate::diff::ChangeSide>| {
            s.as_ref()
                .map(|s| (s.mode, s.id))
                .filter(|(m, _)| *m != EntryMode::Tree)
        };
        let (added, deleted) = count_lines(reader, side(&ch.old), side(&ch.new))?;
        out.push((ch.path().to_vec(), added, deleted));
    }
    Ok(out)
}

/// Lines added and deleted between two versions of a file, as `git diff --numstat` counts them
/// (Myers; a binary file counts none; a submodule's commit line counts one).
fn count_lines(
    reader: &mut OdbReader<'_>,
    old: Option<(EntryMode, ObjectId)>,
    new: Option<(EntryMode, ObjectId)>,
) -> Result<(u32, u32), StatsError> {
    let mut sides: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (slot, side) in sides.iter_mut().zip([old, new]) {
        match side {
            None => {}
            Some((EntryMode::Gitlink, id)) => {
                *slot = format!("Subproject commit {id}\n").into_bytes();
            }
            Some((_, id)) => {
                let (_, size) = reader.read_header(&id)?;
                if size > MAX_COUNTED_BYTES {
                    return Ok((0, 0));
                }
                reader.read_kind(&id, ObjectKind::Blob, slot)?;
            }
        }
    }
    if is_binary(&sides[0]) || is_binary(&sides[1]) {
        return Ok((0, 0));
    }
    let input = InternedInput::new(sides[0].as_slice(), sides[1].as_slice());
    let diff = Diff::compute(Algorithm::Myers, &input);
    Ok((diff.count_additions(), diff.count_removals()))
}
