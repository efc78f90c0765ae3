//! Line blame: which commit last touched each line of a file, following first parents (as
//! `git blame --first-parent`), with a cap on commits visited that yields a `partial` result
//! instead of running forever.

use imara_diff::{Algorithm, Diff, InternedInput};

use crate::object::{CommitRef, EntryMode, TreeIter};
use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::ObjectId;
use crate::repo::Repository;

/// Errors of a blame.
#[derive(Debug, thiserror::Error)]
pub enum BlameError {
    /// The path is not a file in the commit.
    #[error("{path} is not a file in commit {commit}")]
    NotFound {
        /// The commit.
        commit: ObjectId,
        /// The path (lossily decoded).
        path: String,
    },
    /// An object could not be read.
    #[error(transparent)]
    Odb(#[from] OdbError),
    /// A commit or tree is malformed.
    #[error("object {id}: {source}")]
    Parse {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        #[source]
        source: crate::object::ParseError,
    },
}

/// Limits of a blame.
#[derive(Debug, Clone, Copy)]
pub struct BlameOptions {
    /// Commits visited along the first-parent chain before giving up (the result is `partial` and
    /// the remaining lines are attributed to the last commit visited).
    pub max_commits: usize,
    /// Files larger than this are not blamed (`too_large`).
    pub max_blob_bytes: u64,
}

impl Default for BlameOptions {
    fn default() -> Self {
        BlameOptions {
            max_commits: 50_000,
            max_blob_bytes: 4 << 20,
        }
    }
}

/// The blame of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlameLine {
    /// The commit that introduced the line (as it reads in the blamed commit).
    pub commit: ObjectId,
    /// The line's 1-based number in that commit's version of the file.
    pub orig_line: u32,
}

/// A file's blame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blame {
    /// One entry per line of the file.
    pub lines: Vec<BlameLine>,
    /// The file's content (so callers can show the lines).
    pub content: Vec<u8>,
    /// Whether `max_commits` stopped the walk before every line was attributed.
    pub partial: bool,
    /// Whether the file is binary (no lines are blamed).
    pub binary: bool,
    /// Whether the file is over `max_blob_bytes` (not read).
    pub too_large: bool,
}

struct Walker<'a, 'r> {
    reader: &'a mut OdbReader<'r>,
    buf: Vec<u8>,
}

impl Walker<'_, '_> {
    fn commit(&mut self, id: &ObjectId) -> Result<(ObjectId, Option<ObjectId>), BlameError> {
        self.reader
            .read_kind(id, ObjectKind::Commit, &mut self.buf)?;
        let c =
            CommitRef::parse(&self.buf).map_err(|source| BlameError::Parse { id: *id, source })?;
        let first = c.parents().next();
        Ok((c.tree, first))
    }

    /// The ids along `path` from `tree`: one per component (trees, then the file), stopping early
    /// where `known` (the ids of another commit's path) agrees, since the rest is then equal too.
    fn path_ids(
        &mut self,
        tree: ObjectId,
        path: &[Vec<u8>],
        known: Option<&[ObjectId]>,
    ) -> Result<Option<Vec<ObjectId>>, BlameError> {
        let mut ids = Vec::with_capacity(path.len());
        let mut cur = tree;
        for (depth, name) in path.iter().enumerate() {
            if let Some(k) = known
                && depth > 0
                && k.get(depth - 1) == Some(&cur)
            {
                ids.truncate(depth - 1);
                ids.extend_from_slice(&k[depth - 1..]);
                return Ok(Some(ids));
            }
            self.reader
                .read_kind(&cur, ObjectKind::Tree, &mut self.buf)?;
            let mut found = None;
            for e in TreeIter::new(&self.buf) {
                let e = e.map_err(|source| BlameError::Parse { id: cur, source })?;
                if e.name == name.as_slice() {
                    found = Some((e.mode, e.id));
                    break;
                }
            }
            let last = depth + 1 == path.len();
            match found {
                Some((mode, id))
                    if last
                        && matches!(
                            mode,
                            EntryMode::Blob | EntryMode::Executable | EntryMode::Symlink
                        ) =>
                {
                    ids.push(id);
                }
                Some((EntryMode::Tree, id)) if !last => {
                    ids.push(id);
                    cur = id;
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(ids))
    }
}

/// Blames `path` (slash-separated) at `commit`.
pub fn blame(
    repo: &Repository,
    commit: ObjectId,
    path: &str,
    options: BlameOptions,
) -> Result<Blame, BlameError> {
    let mut reader = repo.odb().reader();
    let mut w = Walker {
        reader: &mut reader,
        buf: Vec::new(),
    };
    let mut components: Vec<Vec<u8>> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| c.as_bytes().to_vec())
        .collect();
    let not_found = || BlameError::NotFound {
        commit,
        path: path.to_string(),
    };
    if components.is_empty() {
        return Err(not_found());
    }
    let (mut tree, mut parent) = w.commit(&commit)?;
    let mut ids = w.path_ids(tree, &components, None)?.ok_or_else(not_found)?;
    let mut blob = *ids.last().ok_or_else(not_found)?;
    let (_, size) = w.reader.read_header(&blob)?;
    if size > options.max_blob_bytes {
        return Ok(Blame {
            too_large: true,
            ..Blame::default()
        });
    }
    let mut content = Vec::new();
    w.reader.read_kind(&blob, ObjectKind::Blob, &mut content)?;
    if crate::diff::is_binary(&content) {
        return Ok(Blame {
            binary: true,
            content,
            ..Blame::default()
        });
    }
    let line_count = content.split_inclusive(|&b| b == b'\n').count();
    let mut result = vec![
        BlameLine {
            commit,
            orig_line: 0
        };
        line_count
    ];
    // (line index in the current commit's version, final line index)
    let mut pending: Vec<(u32, u32)> = (0..line_count as u32).map(|i| (i, i)).collect();
    let mut current = commit;
    let mut current_content = content.clone();
    let mut visited = 1;
    let mut partial = false;
    while !pending.is_empty() {
        let assign_all =
            |pending: &mut Vec<(u32, u32)>, result: &mut Vec<BlameLine>, to: ObjectId| {
                for &(cur, fin) in pending.iter() {
                    result[fin as usize] = BlameLine {
                        commit: to,
                        orig_line: cur + 1,
                    };
                }
                pending.clear();
            };
        let Some(p) = parent else {
            assign_all(&mut pending, &mut result, current);
            break;
        };
        if visited >= options.max_commits {
            partial = true;
            assign_all(&mut pending, &mut result, current);
            break;
        }
        visited += 1;
        let (p_tree, p_parent) = w.commit(&p)?;
        let p_ids = match w.path_ids(p_tree, &components, Some(&ids))? {
            Some(found) => found,
            None => match renamed_from(w.reader, p_tree, tree, &components)? {
                // Follow a rename (the same or similar content under another path), like git.
                Some(old) => {
                    components = old;
                    match w.path_ids(p_tree, &components, None)? {
                        Some(found) => found,
                        None => {
                            assign_all(&mut pending, &mut result, current);
                            break;
                        }
                    }
                }
                None => {
                    // The file does not exist in the parent: every remaining line was added here.
                    assign_all(&mut pending, &mut result, current);
                    break;
                }
            },
        };
        let p_blob = *p_ids.last().ok_or_else(not_found)?;
        if p_blob != blob {
            let mut p_content = Vec::new();
            w.reader
                .read_kind(&p_blob, ObjectKind::Blob, &mut p_content)?;
            let map = line_map(&p_content, &current_content);
            let mut still = Vec::with_capacity(pending.len());
            for &(cur, fin) in &pending {
                match map.get(cur as usize).copied().flatten() {
                    Some(old) => still.push((old, fin)),
                    None => {
                        result[fin as usize] = BlameLine {
                            commit: current,
                            orig_line: cur + 1,
                        }
                    }
                }
            }
            pending = still;
            current_content = p_content;
            blob = p_blob;
        }
        ids = p_ids;
        current = p;
        tree = p_tree;
        parent = p_parent;
    }
    Ok(Blame {
        lines: result,
        content,
        partial,
        binary: false,
        too_large: false,
    })
}

/// The path `path` had in `old_tree` when the change to `new_tree` renamed it (with or without
/// edits, found as `git blame` finds it: renames to this one path, by similarity).
fn renamed_from(
    reader: &mut OdbReader<'_>,
    old_tree: ObjectId,
    new_tree: ObjectId,
    path: &[Vec<u8>],
) -> Result<Option<Vec<Vec<u8>>>, BlameError> {
    let joined = path.join(&b'/');
    let source =
        crate::diff::rename_source(reader, old_tree, new_tree, &joined).map_err(|e| match e {
            crate::diff::DiffError::Odb(e) => BlameError::Odb(e),
            crate::diff::DiffError::Parse { id, source } => BlameError::Parse { id, source },
        })?;
    Ok(source.map(|(old, _)| old.path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()))
}

/// For each line of `new`, the index of the same line in `old` when the diff keeps it.
fn line_map(old: &[u8], new: &[u8]) -> Vec<Option<u32>> {
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_no_heuristic(&input);
    let mut map = Vec::with_capacity(input.after.len());
    let (mut o, mut n) = (0u32, 0u32);
    for h in diff.hunks() {
        while n < h.after.start {
            map.push(Some(o));
            o += 1;
            n += 1;
        }
        for _ in h.after.clone() {
            map.push(None);
        }
        o = h.before.end;
        n = h.after.end;
    }
    while (n as usize) < input.after.len() {
        map.push(Some(o));
        o += 1;
        n += 1;
    }
    map
}
