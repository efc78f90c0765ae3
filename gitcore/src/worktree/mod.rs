//! The work tree: the index, `git status`, and the contents the working-tree and index diffs
//! compare.
//!
//! [`status`] gives what `git status --porcelain=v1 --no-renames --untracked-files=normal` gives:
//! per path an index column (HEAD against the index) and a work-tree column (the index against the
//! files), conflicts as `UU`/`AA`/..., untracked files as `??`, and an untracked directory that
//! holds no tracked file as one `dir/` entry. Ignore rules come from `.gitignore` files at every
//! level and `.git/info/exclude`; a user's global excludes file is not read (the server's user is
//! not the repository's). Files are compared by stat data first and hashed only when it differs or
//! the entry is racily clean, as git does. Not supported: clean/smudge filters and line-ending
//! conversion (such files show as modified), `core.fileMode=false`.
//!
//! [`IgnoredPaths`] answers a watcher whether a changed path is one status leaves out.

mod ignored;
pub mod index;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::ObjectId;
use crate::object::{CommitRef, EntryMode, TreeIter};
use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::HashKind;
use crate::repo::Repository;
pub use ignored::IgnoredPaths;
use ignored::{Ignores, gitignore_of, tracked_dirs};
pub use index::{Index, IndexEntry, IndexError};

/// Why status could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The repository is bare.
    #[error("the repository has no work tree")]
    Bare,
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// HEAD's tree could not be read.
    #[error(transparent)]
    Odb(#[from] OdbError),
    /// HEAD's commit or a tree could not be parsed.
    #[error("object {id}: {reason}")]
    Parse {
        /// The object.
        id: ObjectId,
        /// What was wrong.
        reason: String,
    },
}

/// One line of status: the two porcelain columns and the path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatusEntry {
    /// Slash-separated path from the top of the work tree (`dir/` for an untracked directory).
    pub path: String,
    /// HEAD against the index: ' ', 'A', 'M', 'D', 'T', or for conflicts 'U'/'A'/'D', '?' for
    /// untracked.
    pub index: char,
    /// The index against the work tree: ' ', 'M', 'D', 'T', 'A' (intent to add), conflicts as
    /// above, '?' for untracked.
    pub worktree: char,
}

/// The state of a work tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkStatus {
    /// Changed, conflicted and untracked paths, sorted by path.
    pub entries: Vec<StatusEntry>,
    /// Whether the untracked walk stopped at its bound (entries are then incomplete).
    pub truncated: bool,
}

/// Bounds of a status run.
#[derive(Debug, Clone, Copy)]
pub struct StatusOptions {
    /// Directory entries visited in the untracked walk before it stops.
    pub max_walk: usize,
    /// Entries reported before stopping.
    pub max_entries: usize,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            max_walk: 1_000_000,
            max_entries: 10_000,
        }
    }
}

type Flat = BTreeMap<Vec<u8>, (EntryMode, ObjectId)>;

/// Every file under `tree`, by full path.
fn flatten(
    reader: &mut OdbReader<'_>,
    tree: ObjectId,
    prefix: &[u8],
    out: &mut Flat,
) -> Result<(), StatusError> {
    let mut buf = Vec::new();
    reader.read_kind(&tree, ObjectKind::Tree, &mut buf)?;
    let mut subtrees = Vec::new();
    for e in TreeIter::new(&buf, tree.kind()) {
        let e = e.map_err(|e| StatusError::Parse {
            id: tree,
            reason: e.to_string(),
        })?;
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(e.name);
        if e.mode == EntryMode::Tree {
            subtrees.push((path, e.id));
        } else {
            out.insert(path, (e.mode, e.id));
        }
    }
    for (path, id) in subtrees {
        flatten(reader, id, &path, out)?;
    }
    Ok(())
}

/// The files of HEAD's tree (empty when HEAD is unborn).
pub fn head_files(repo: &Repository) -> Result<Flat, StatusError> {
    let mut out = Flat::new();
    let Some(head) = repo.refs().head.and_then(|h| h.target()) else {
        return Ok(out);
    };
    let mut reader = repo.odb().reader();
    let mut buf = Vec::new();
    reader.read_kind(&head, ObjectKind::Commit, &mut buf)?;
    let tree = CommitRef::parse(&buf)
        .map_err(|e| StatusError::Parse {
            id: head,
            reason: e.to_string(),
        })?
        .tree;
    flatten(&mut reader, tree, b"", &mut out)?;
    Ok(out)
}

/// The id git would give `data` as a blob in a repository of `hash`.
pub fn blob_id(hash: HashKind, data: &[u8]) -> ObjectId {
    crate::odb::stream::hash_object(hash, ObjectKind::Blob, data)
}

/// Hashes the file at `path` as a blob of `hash` without holding it in memory.
fn hash_file(path: &Path, size: u64, hash: HashKind) -> std::io::Result<ObjectId> {
    let mut h = hash.hasher();
    h.update(format!("blob {size}\0").as_bytes());
    let mut f = std::fs::File::open(path)?.take(size);
    let mut buf = vec![0; 64 * 1024];
    let mut read = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        h.update(&buf[..n]);
    }
    if read != size {
        // The file changed under us: report it as modified.
        return Ok(hash.null());
    }
    Ok(h.finish())
}

/// What is on disk at a path, as git would stage it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisk {
    /// Nothing (or something git cannot stage, like a fifo).
    Missing,
    /// A directory (a submodule's checkout, or a file replaced by a directory).
    Directory,
    /// A file or symlink with its mode.
    File(EntryMode),
}

fn on_disk(meta: &std::fs::Metadata) -> OnDisk {
    let ft = meta.file_type();
    if ft.is_symlink() {
        OnDisk::File(EntryMode::Symlink)
    } else if ft.is_dir() {
        OnDisk::Directory
    } else if ft.is_file() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o100 != 0 {
                return OnDisk::File(EntryMode::Executable);
            }
        }
        OnDisk::File(EntryMode::Blob)
    } else {
        OnDisk::Missing
    }
}

/// The bytes git would stage for the work-tree file at `rel` (a symlink's target), if it is a
/// file or symlink of at most `max` bytes: `Ok(None)` if absent, `Err` naming the size if larger.
/// A directory on the way that is a symlink counts as absent: git never follows one.
pub fn worktree_bytes(work_tree: &Path, rel: &str, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut dir = work_tree.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => return Ok(None),
        }
    }
    let path = work_tree.join(rel);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match on_disk(&meta) {
        OnDisk::File(EntryMode::Symlink) => {
            let target = std::fs::read_link(&path)?;
            Ok(Some(target.as_os_str().as_encoded_bytes().to_vec()))
        }
        OnDisk::File(_) if meta.len() > max => Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("{} bytes", meta.len()),
        )),
        OnDisk::File(_) => {
            let mut data = Vec::new();
            std::fs::File::open(&path)?
                .take(max + 1)
                .read_to_end(&mut data)?;
            Ok(Some(data))
        }
        _ => Ok(None),
    }
}

/// Whether the work-tree file differs from its index entry (`Some(letter)`), by stat data and,
/// when that is not conclusive, content.
fn worktree_change(
    work_tree: &Path,
    e: &IndexEntry,
    index_mtime: Option<(u64, u32)>,
) -> Option<char> {
    let rel = String::from_utf8_lossy(&e.path);
    let path = work_tree.join(&*rel);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Some('D');
    };
    let staged = EntryMode::from_octal(e.mode);
    let disk = on_disk(&meta);
    match (staged, disk) {
        (Some(EntryMode::Gitlink), OnDisk::Directory) => return None,
        (Some(EntryMode::Gitlink), _) => return Some('D'),
        (_, OnDisk::Missing) | (_, OnDisk::Directory) => return Some('D'),
        (Some(EntryMode::Symlink), OnDisk::File(m)) if m != EntryMode::Symlink => {
            return Some('T');
        }
        (Some(s), OnDisk::File(EntryMode::Symlink)) if s != EntryMode::Symlink => {
            return Some('T');
        }
        _ => {}
    }
    let OnDisk::File(mode) = disk else {
        return Some('D');
    };
    if staged != Some(mode) {
        return Some('M');
    }
    #[cfg(unix)]
    let (mtime, ino) = {
        use std::os::unix::fs::MetadataExt;
        (
            (meta.mtime() as u64, meta.mtime_nsec() as u32),
            meta.ino() as u32,
        )
    };
    #[cfg(not(unix))]
    let (mtime, ino) = ((0u64, 0u32), 0u32);
    let same_stat = meta.len() as u32 == e.size
        && mtime == (u64::from(e.mtime.0), e.mtime.1)
        && (e.ino == 0 || ino == e.ino);
    // Racily clean: the file may have changed within the same timestamp the index was written.
    let racy = index_mtime.is_none_or(|im| mtime >= im);
    if same_stat && !racy {
        return None;
    }
    if !same_stat && meta.len() as u32 != e.size && mode != EntryMode::Symlink {
        return Some('M');
    }
    let id = if mode == EntryMode::Symlink {
        std::fs::read_link(&path)
            .map(|t| blob_id(e.id.kind(), t.as_os_str().as_encoded_bytes()))
            .ok()
    } else {
        hash_file(&path, meta.len(), e.id.kind()).ok()
    };
    (id != Some(e.id)).then_some('M')
}

struct Walk<'a> {
    work_tree: &'a Path,
    tracked: &'a HashSet<&'a [u8]>,
    tracked_dirs: &'a HashSet<Vec<u8>>,
    visited: usize,
    options: StatusOptions,
    out: Vec<StatusEntry>,
    truncated: bool,
}

impl Walk<'_> {
    fn full(&mut self) -> bool {
        if self.visited >= self.options.max_walk || self.out.len() >= self.options.max_entries {
            self.truncated = true;
        }
        self.truncated
    }

    /// Walks directory `rel` (slash-separated, "" for the top), reporting untracked paths.
    fn dir(&mut self, rel: &str, ignores: &mut Ignores) {
        let abs = if rel.is_empty() {
            self.work_tree.to_path_buf()
        } else {
            self.work_tree.join(rel)
        };
        let pushed = gitignore_of(&abs, &abs.join(".gitignore"));
        let had = pushed.is_some();
        ignores.stack.extend(pushed);
        let mut names: Vec<(String, bool)> = match std::fs::read_dir(&abs) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let is_dir = e.file_type().ok()?.is_dir();
                    Some((name, is_dir))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        for (name, is_dir) in names {
            if self.full() {
                break;
            }
            self.visited += 1;
            if name == ".git" {
                continue;
            }
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if self.tracked.contains(child.as_bytes()) {
                continue;
            }
            let child_abs = abs.join(&name);
            if ignores.ignored(&child_abs, is_dir) {
                continue;
            }
            if !is_dir {
                self.out.push(StatusEntry {
                    path: child,
                    index: '?',
                    worktree: '?',
                });
            } else if self.tracked_dirs.contains(child.as_bytes()) {
                self.dir(&child, ignores);
            } else if child_abs.join(".git").exists()
                || self.has_untracked_file(&child_abs, ignores)
            {
                // A nested repository, or a directory with something to add: one entry.
                self.out.push(StatusEntry {
                    path: format!("{child}/"),
                    index: '?',
                    worktree: '?',
                });
            }
        }
        if had {
            ignores.stack.pop();
        }
    }

    /// Whether the untracked directory `abs` holds a file that is not ignored.
    fn has_untracked_file(&mut self, abs: &Path, ignores: &mut Ignores) -> bool {
        let pushed = gitignore_of(abs, &abs.join(".gitignore"));
        let had = pushed.is_some();
        ignores.stack.extend(pushed);
        let mut found = false;
        if let Ok(rd) = std::fs::read_dir(abs) {
            for e in rd.filter_map(Result::ok) {
                self.visited += 1;
                if self.full() {
                    break;
                }
                let Ok(ft) = e.file_type() else { continue };
                let path = e.path();
                if ignores.ignored(&path, ft.is_dir()) {
                    continue;
                }
                if if ft.is_dir() {
                    path.join(".git").exists() || self.has_untracked_file(&path, ignores)
                } else {
                    true
                } {
                    found = true;
                    break;
                }
            }
        }
        if had {
            ignores.stack.pop();
        }
        found
    }
}

/// Conflict columns from the stages present (1 base, 2 ours, 3 theirs), as git prints them.
fn conflict(stages: [bool; 3]) -> (char, char) {
    match stages {
        [true, false, false] => ('D', 'D'),
        [false, true, false] => ('A', 'U'),
        [true, true, false] => ('U', 'D'),
        [false, false, true] => ('U', 'A'),
        [true, false, true] => ('D', 'U'),
        [false, true, true] => ('A', 'A'),
        _ => ('U', 'U'),
    }
}

/// The status of `repo`'s work tree.
pub fn status(repo: &Repository, options: StatusOptions) -> Result<WorkStatus, StatusError> {
    let work_tree: PathBuf = repo.dirs().work_tree.clone().ok_or(StatusError::Bare)?;
    let index = Index::read(&repo.dirs().git_dir.join("index"), repo.odb().hash())?;
    let head = head_files(repo)?;
    let index_mtime = index.mtime.and_then(|t| {
        let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some((d.as_secs(), d.subsec_nanos()))
    });

    let mut entries: BTreeMap<Vec<u8>, (char, char)> = BTreeMap::new();
    let mut conflicts: BTreeMap<&[u8], [bool; 3]> = BTreeMap::new();
    let mut staged: HashSet<&[u8]> = HashSet::new();
    for e in &index.entries {
        if e.stage > 0 {
            conflicts.entry(&e.path).or_default()[usize::from(e.stage - 1)] = true;
            continue;
        }
        staged.insert(&e.path);
        let x = if e.intent_to_add {
            ' '
        } else {
            match head.get(&e.path) {
                None => 'A',
                Some(&(mode, id)) => {
                    let now = EntryMode::from_octal(e.mode);
                    let kind = |m: Option<EntryMode>| match m {
                        Some(EntryMode::Symlink) => 1,
                        Some(EntryMode::Gitlink) => 2,
                        _ => 0,
                    };
                    if kind(Some(mode)) != kind(now) {
                        'T'
                    } else if id != e.id || Some(mode) != now {
                        'M'
                    } else {
                        ' '
                    }
                }
            }
        };
        let y = if e.intent_to_add {
            'A'
        } else if e.skip_worktree || e.assume_valid {
            ' '
        } else {
            worktree_change(&work_tree, e, index_mtime).unwrap_or(' ')
        };
        if (x, y) != (' ', ' ') {
            entries.insert(e.path.clone(), (x, y));
        }
    }
    for (path, stages) in &conflicts {
        entries.insert(path.to_vec(), conflict(*stages));
    }
    for path in head.keys() {
        if !staged.contains(path.as_slice()) && !conflicts.contains_key(path.as_slice()) {
            entries.insert(path.clone(), ('D', ' '));
        }
    }

    // Untracked files: every path the index names (any stage) is tracked, and so are the
    // directories above them.
    let tracked: HashSet<&[u8]> = index.entries.iter().map(|e| e.path.as_slice()).collect();
    let tracked_dirs = tracked_dirs(&index);
    let mut ignores = Ignores { stack: Vec::new() };
    ignores.stack.extend(gitignore_of(
        &work_tree,
        &repo.dirs().common_dir.join("info/exclude"),
    ));
    let mut walk = Walk {
        work_tree: &work_tree,
        tracked: &tracked,
        tracked_dirs: &tracked_dirs,
        visited: 0,
        options,
        out: Vec::new(),
        truncated: false,
    };
    walk.dir("", &mut ignores);

    let mut out: Vec<StatusEntry> = entries
        .into_iter()
        .map(|(path, (index, worktree))| StatusEntry {
            path: String::from_utf8_lossy(&path).into_owned(),
            index,
            worktree,
        })
        .chain(walk.out)
        .collect();
    out.sort();
    Ok(WorkStatus {
        entries: out,
        truncated: walk.truncated,
    })
}

/// The staged entry (stage 0) of `path`, if any.
pub fn staged_entry(repo: &Repository, path: &str) -> Result<Option<IndexEntry>, StatusError> {
    let index = Index::read(&repo.dirs().git_dir.join("index"), repo.odb().hash())?;
    Ok(index
        .entries
        .into_iter()
        .find(|e| e.stage == 0 && e.path == path.as_bytes()))
}
