//! Tree diffs (what changed between two trees, with renames found as `git diff -M` finds them)
//! and line diffs of blobs.

mod lines;
mod renames;

use std::collections::BTreeMap;

pub use lines::{
    BlobDiff, DiffLine, DiffOptions, Hunk, LineKind, diff_blobs, diff_bytes, is_binary,
};
pub use renames::{MAX_SCORE, MAX_SIMILARITY_BYTES, RenameOptions};

use crate::object::{EntryMode, TreeIter};
use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::ObjectId;

/// Errors of a tree diff.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A tree or blob could not be read.
    #[error(transparent)]
    Odb(#[from] OdbError),
    /// A tree is malformed.
    #[error("tree {id}: {source}")]
    Parse {
        /// The tree.
        id: ObjectId,
        /// What is wrong.
        #[source]
        source: crate::object::ParseError,
    },
}

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// New path.
    Added,
    /// Removed path.
    Deleted,
    /// Same path, new content or mode.
    Modified,
    /// Same path, another kind of entry (file, symlink, submodule).
    TypeChanged,
    /// A deleted path's content reappears under a new path, the same or similar enough (see
    /// [`TreeChange::similarity`]).
    Renamed,
}

impl ChangeKind {
    /// git's one-letter status (`A`, `D`, `M`, `T`, `R`).
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
            ChangeKind::Modified => 'M',
            ChangeKind::TypeChanged => 'T',
            ChangeKind::Renamed => 'R',
        }
    }
}

/// One side of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSide {
    /// Full path (bytes; not necessarily UTF-8).
    pub path: Vec<u8>,
    /// Entry kind.
    pub mode: EntryMode,
    /// Object id (a commit id for a gitlink).
    pub id: ObjectId,
}

/// A changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChange {
    /// What happened.
    pub kind: ChangeKind,
    /// The old side (absent when added).
    pub old: Option<ChangeSide>,
    /// The new side (absent when deleted).
    pub new: Option<ChangeSide>,
    /// For a rename, how similar the two sides are in percent, as git prints it (`R086`): 100
    /// for the same content.
    pub similarity: Option<u8>,
}

impl TreeChange {
    /// The path shown for the change (the new path, or the old one when deleted).
    pub fn path(&self) -> &[u8] {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .map_or(&[][..], |s| s.path.as_slice())
    }
}

/// Limits of a tree diff.
#[derive(Debug, Clone, Copy)]
pub struct TreeDiffOptions {
    /// Stop after this many changes (the result says `truncated`).
    pub max_changes: usize,
    /// Detect renames (`None`: list deletions and additions as they are).
    pub renames: Option<RenameOptions>,
}

impl Default for TreeDiffOptions {
    fn default() -> Self {
        TreeDiffOptions {
            max_changes: 100_000,
            renames: Some(RenameOptions::default()),
        }
    }
}

/// The changes between two trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeDiff {
    /// Changes sorted by path.
    pub changes: Vec<TreeChange>,
    /// Whether `max_changes` cut the list short.
    pub truncated: bool,
}

type Entries = BTreeMap<Vec<u8>, (EntryMode, ObjectId)>;

fn read_tree(
    reader: &mut OdbReader<'_>,
    id: Option<ObjectId>,
    buf: &mut Vec<u8>,
) -> Result<Entries, DiffError> {
    let mut out = Entries::new();
    let Some(id) = id else { return Ok(out) };
    reader.read_kind(&id, ObjectKind::Tree, buf)?;
    for e in TreeIter::new(buf, id.kind()) {
        let e = e.map_err(|source| DiffError::Parse { id, source })?;
        out.insert(e.name.to_vec(), (e.mode, e.id));
    }
    Ok(out)
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        p.extend_from_slice(prefix);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Whether two non-tree modes are the same kind of entry (file, symlink or submodule).
fn same_kind(a: EntryMode, b: EntryMode) -> bool {
    let kind = |m: EntryMode| match m {
        EntryMode::Blob | EntryMode::Executable => 0,
        EntryMode::Symlink => 1,
        EntryMode::Gitlink => 2,
        EntryMode::Tree => 3,
    };
    kind(a) == kind(b)
}

/// Diffs tree `old` against tree `new` (either may be absent: an empty tree), recursively, like
/// `git diff-tree -r -M` (git's default rename detection with the default options).
pub fn diff_trees(
    reader: &mut OdbReader<'_>,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    options: TreeDiffOptions,
) -> Result<TreeDiff, DiffError> {
    diff_trees_following(reader, old, new, options, None)
}

/// Where the file at `path` in tree `new` came from when `old` lacks it: the old side of the
/// rename git finds for that one path (`git blame` and `git log --follow` look for renames of a
/// single destination, which can pair differently from a whole-commit diff), with its
/// similarity.
pub fn rename_source(
    reader: &mut OdbReader<'_>,
    old: ObjectId,
    new: ObjectId,
    path: &[u8],
) -> Result<Option<(ChangeSide, u8)>, DiffError> {
    let d = diff_trees_following(
        reader,
        Some(old),
        Some(new),
        TreeDiffOptions::default(),
        Some(path),
    )?;
    Ok(d.changes
        .into_iter()
        .find_map(|c| match (c.kind, c.old, c.similarity) {
            (ChangeKind::Renamed, Some(old), Some(score))
                if c.new.as_ref().is_some_and(|n| n.path == path) =>
            {
                Some((old, score))
            }
            _ => None,
        }))
}

fn diff_trees_following(
    reader: &mut OdbReader<'_>,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    options: TreeDiffOptions,
    follow: Option<&[u8]>,
) -> Result<TreeDiff, DiffError> {
    let mut result = TreeDiff::default();
    let mut buf = Vec::new();
    // (path prefix, old tree, new tree)
    let mut stack: Vec<(Vec<u8>, Option<ObjectId>, Option<ObjectId>)> =
        vec![(Vec::new(), old, new)];
    while let Some((prefix, o, n)) = stack.pop() {
        if o == n {
            continue;
        }
        let olds = read_tree(reader, o, &mut buf)?;
        let news = read_tree(reader, n, &mut buf)?;
        let mut names: Vec<&Vec<u8>> = olds.keys().chain(news.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let path = join(&prefix, name);
            let (a, b) = (olds.get(name).copied(), news.get(name).copied());
            let a_tree = a.filter(|(m, _)| *m == EntryMode::Tree).map(|(_, id)| id);
            let b_tree = b.filter(|(m, _)| *m == EntryMode::Tree).map(|(_, id)| id);
            if a_tree.is_some() || b_tree.is_some() {
                stack.push((path.clone(), a_tree, b_tree));
            }
            let a_leaf = a.filter(|(m, _)| *m != EntryMode::Tree);
            let b_leaf = b.filter(|(m, _)| *m != EntryMode::Tree);
            let side = |(mode, id): (EntryMode, ObjectId)| ChangeSide {
                path: path.clone(),
                mode,
                id,
            };
            let change = match (a_leaf, b_leaf) {
                (None, None) => continue,
                (None, Some(b)) => TreeChange {
                    kind: ChangeKind::Added,
                    old: None,
                    new: Some(side(b)),
                    similarity: None,
                },
                (Some(a), None) => TreeChange {
                    kind: ChangeKind::Deleted,
                    old: Some(side(a)),
                    new: None,
                    similarity: None,
                },
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) => TreeChange {
                    kind: if same_kind(a.0, b.0) {
                        ChangeKind::Modified
                    } else {
                        ChangeKind::TypeChanged
                    },
                    old: Some(side(a)),
                    new: Some(side(b)),
                    similarity: None,
                },
            };
            if result.changes.len() >= options.max_changes {
                result.truncated = true;
                stack.clear();
                break;
            }
            result.changes.push(change);
        }
    }
    result.changes.sort_by(|a, b| a.path().cmp(b.path()));
    if let Some(renames) = options.renames {
        renames::detect(reader, &mut result.changes, renames, follow)?;
    }
    Ok(result)
}
