//! Line blame: which commit last touched each line of a file, as `git blame` finds it.
//!
//! Lines are passed from a commit to its parents as git passes them: a parent holding the very
//! same file takes every line; otherwise each parent in order (the file at the same path, or
//! where a rename brought it from) takes the lines its diff leaves unchanged, and what no parent
//! takes was written by the commit. Commits are visited newest first. `first_parent` looks only
//! at first parents (`git blame --first-parent`); commits in `ignore` (`--ignore-rev`) hand the
//! lines they changed to the parent line they most likely came from ([`fuzzy`], git's
//! heuristic), keeping only those that match nothing. A cap on commits visited yields a
//! `partial` result instead of running forever.

mod fuzzy;

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::rc::Rc;

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

/// How to blame, and its limits.
#[derive(Debug, Clone)]
pub struct BlameOptions {
    /// Versions of the file visited before giving up (the result is `partial`, and lines not
    /// yet passed on stay with the commit they had reached).
    pub max_commits: usize,
    /// Files larger than this are not blamed (`too_large`).
    pub max_blob_bytes: u64,
    /// Follow first parents only (`git blame --first-parent`).
    pub first_parent: bool,
    /// Commits whose changes are looked through (`git blame --ignore-rev`).
    pub ignore: HashSet<ObjectId>,
}

impl Default for BlameOptions {
    fn default() -> Self {
        BlameOptions {
            max_commits: 50_000,
            max_blob_bytes: 4 << 20,
            first_parent: false,
            ignore: HashSet::new(),
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
    /// The line passed through an ignored commit on its way (git marks it `?` with
    /// `blame.markIgnoredLines`).
    pub ignored: bool,
    /// An ignored commit changed the line and it matched nothing in the parent, so it stays
    /// with that commit (`*` with `blame.markUnblamableLines`).
    pub unblamable: bool,
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

/// A commit as the walk needs it.
#[derive(Debug, Clone)]
struct CommitInfo {
    tree: ObjectId,
    parents: Vec<ObjectId>,
    time: i64,
}

/// One version of the file: a commit and the path the file had there.
struct Origin {
    commit: ObjectId,
    info: Rc<CommitInfo>,
    path: Vec<Vec<u8>>,
    /// Ids along the path from the commit's tree: trees, then the file.
    ids: Vec<ObjectId>,
    link: bool,
    content: Option<Rc<Vec<u8>>>,
}

impl Origin {
    fn blob(&self) -> ObjectId {
        *self.ids.last().unwrap_or(&self.info.tree)
    }
}

/// A line still looking for its commit: its number in the version it has reached, its number
/// in the blamed file, and its marks.
#[derive(Debug, Clone, Copy)]
struct Pending {
    line: u32,
    fin: u32,
    ignored: bool,
    unblamable: bool,
}

struct Walker<'a, 'r> {
    reader: &'a mut OdbReader<'r>,
    buf: Vec<u8>,
    commits: HashMap<ObjectId, Rc<CommitInfo>>,
    origins: Vec<Origin>,
    by_key: HashMap<(ObjectId, Vec<u8>), usize>,
    pending: Vec<Vec<Pending>>,
    queued: Vec<bool>,
    queue: BinaryHeap<(i64, usize)>,
}

impl Walker<'_, '_> {
    fn commit(&mut self, id: &ObjectId) -> Result<Rc<CommitInfo>, BlameError> {
        if let Some(c) = self.commits.get(id) {
            return Ok(Rc::clone(c));
        }
        self.reader
            .read_kind(id, ObjectKind::Commit, &mut self.buf)?;
        let c =
            CommitRef::parse(&self.buf).map_err(|source| BlameError::Parse { id: *id, source })?;
        let info = Rc::new(CommitInfo {
            tree: c.tree,
            parents: c.parents().collect(),
            time: c.committer.time,
        });
        self.commits.insert(*id, Rc::clone(&info));
        Ok(info)
    }

    /// The ids along `path` from `tree`, one per component (trees, then the file), and whether
    /// the file is a symbolic link; `None` when the path is not a file there. Stops early where
    /// `known` (the ids of another commit's path) agrees, since the rest is then equal too.
    fn path_ids(
        &mut self,
        tree: ObjectId,
        path: &[Vec<u8>],
        known: Option<(&[ObjectId], bool)>,
    ) -> Result<Option<(Vec<ObjectId>, bool)>, BlameError> {
        let mut ids = Vec::with_capacity(path.len());
        let mut cur = tree;
        for (depth, name) in path.iter().enumerate() {
            if let Some((k, link)) = known
                && depth > 0
                && k.get(depth - 1) == Some(&cur)
            {
                ids.truncate(depth - 1);
                ids.extend_from_slice(&k[depth - 1..]);
                return Ok(Some((ids, link)));
            }
            self.reader
                .read_kind(&cur, ObjectKind::Tree, &mut self.buf)?;
            let mut found = None;
            for e in TreeIter::new(&self.buf, cur.kind()) {
                let e = e.map_err(|source| BlameError::Parse { id: cur, source })?;
                if e.name == name.as_slice() {
                    found = Some((e.mode, e.id));
                    break;
                }
            }
            let last = depth + 1 == path.len();
            match found {
                Some((
                    mode @ (EntryMode::Blob | EntryMode::Executable | EntryMode::Symlink),
                    id,
                )) if last => {
                    ids.push(id);
                    return Ok(Some((ids, mode == EntryMode::Symlink)));
                }
                Some((EntryMode::Tree, id)) if !last => {
                    ids.push(id);
                    cur = id;
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The version of the file at `path` in `commit`, made once.
    fn origin(
        &mut self,
        commit: ObjectId,
        info: Rc<CommitInfo>,
        path: Vec<Vec<u8>>,
        ids: Vec<ObjectId>,
        link: bool,
    ) -> usize {
        let key = (commit, path.join(&b'/'));
        if let Some(&o) = self.by_key.get(&key) {
            return o;
        }
        let o = self.origins.len();
        self.origins.push(Origin {
            commit,
            info,
            path,
            ids,
            link,
            content: None,
        });
        self.pending.push(Vec::new());
        self.queued.push(false);
        self.by_key.insert(key, o);
        o
    }

    /// The same path in `parent` (git's `find_origin`): `None` when it is not there, or not
    /// the same kind of file (a type change is not a continuation).
    fn same_path(&mut self, o: usize, parent: ObjectId) -> Result<Option<usize>, BlameError> {
        let info = self.commit(&parent)?;
        let key = (parent, self.origins[o].path.join(&b'/'));
        if let Some(&p) = self.by_key.get(&key) {
            return Ok(Some(p));
        }
        let (path, known, link) = {
            let x = &self.origins[o];
            (x.path.clone(), x.ids.clone(), x.link)
        };
        Ok(
            match self.path_ids(info.tree, &path, Some((&known, link)))? {
                Some((ids, l)) if l == link => Some(self.origin(parent, info, path, ids, l)),
                _ => None,
            },
        )
    }

    /// Where a rename in `parent` brought the file from (git's `find_rename`).
    fn renamed(&mut self, o: usize, parent: ObjectId) -> Result<Option<usize>, BlameError> {
        let info = self.commit(&parent)?;
        let (tree, path) = {
            let x = &self.origins[o];
            (x.info.tree, x.path.clone())
        };
        let Some(old) = renamed_from(self.reader, info.tree, tree, &path)? else {
            return Ok(None);
        };
        let key = (parent, old.join(&b'/'));
        if let Some(&p) = self.by_key.get(&key) {
            return Ok(Some(p));
        }
        Ok(self
            .path_ids(info.tree, &old, None)?
            .map(|(ids, link)| self.origin(parent, info, old, ids, link)))
    }

    fn content(&mut self, o: usize) -> Result<Rc<Vec<u8>>, BlameError> {
        if let Some(c) = &self.origins[o].content {
            return Ok(Rc::clone(c));
        }
        let mut data = Vec::new();
        let blob = self.origins[o].blob();
        self.reader.read_kind(&blob, ObjectKind::Blob, &mut data)?;
        let data = Rc::new(data);
        self.origins[o].content = Some(Rc::clone(&data));
        Ok(data)
    }

    /// Hands `lines` to origin `p`, queueing it if it had none.
    fn hand(&mut self, p: usize, lines: impl IntoIterator<Item = Pending>) {
        let before = self.pending[p].len();
        self.pending[p].extend(lines);
        if self.pending[p].len() > before && !self.queued[p] {
            self.queued[p] = true;
            self.queue.push((self.origins[p].info.time, p));
        }
    }

    /// Passes the lines of `o` on to its parents, leaving it those it wrote (git's
    /// `pass_blame`).
    fn pass(&mut self, o: usize, options: &BlameOptions) -> Result<(), BlameError> {
        let info = Rc::clone(&self.origins[o].info);
        let parents: &[ObjectId] = if options.first_parent {
            &info.parents[..info.parents.len().min(1)]
        } else {
            &info.parents
        };
        // The same path first, then renames; a parent with the very same file takes it all.
        let mut found: Vec<Option<usize>> = vec![None; parents.len()];
        for rename in [false, true] {
            for (i, &p) in parents.iter().enumerate() {
                if found[i].is_some() {
                    continue;
                }
                let porigin = if rename {
                    self.renamed(o, p)?
                } else {
                    self.same_path(o, p)?
                };
                let Some(porigin) = porigin else {
                    continue;
                };
                let blob = self.origins[porigin].blob();
                if blob == self.origins[o].blob() {
                    let lines = std::mem::take(&mut self.pending[o]);
                    self.hand(porigin, lines);
                    return Ok(());
                }
                let repeated = found[..i]
                    .iter()
                    .flatten()
                    .any(|&q| self.origins[q].blob() == blob);
                if !repeated {
                    found[i] = Some(porigin);
                }
            }
        }
        for &porigin in found.iter().flatten() {
            if self.pending[o].is_empty() {
                return Ok(());
            }
            let hunks = self.hunks(porigin, o)?;
            let mut kept = Vec::new();
            let mut passed = Vec::new();
            for l in std::mem::take(&mut self.pending[o]) {
                match unchanged(&hunks, l.line) {
                    Some(line) => passed.push(Pending { line, ..l }),
                    None => kept.push(l),
                }
            }
            self.pending[o] = kept;
            self.hand(porigin, passed);
        }
        if options.ignore.contains(&self.origins[o].commit) {
            for &porigin in found.iter().flatten() {
                if self.pending[o].is_empty() {
                    return Ok(());
                }
                self.look_through(o, porigin)?;
            }
        }
        Ok(())
    }

    /// The ignored commit `o` hands each line it changed to the parent line it most likely came
    /// from; lines that match nothing stay, marked unblamable.
    fn look_through(&mut self, o: usize, porigin: usize) -> Result<(), BlameError> {
        let hunks = self.hunks(porigin, o)?;
        let mut parent = fuzzy::fingerprints(&self.content(porigin)?);
        let target = fuzzy::fingerprints(&self.content(o)?);
        let mut guess: HashMap<u32, Option<u32>> = HashMap::new();
        for h in &hunks {
            if h.after.is_empty() {
                continue;
            }
            let lines = fuzzy::guess_hunk(
                &mut parent,
                &target,
                h.before.start as usize,
                h.before.len(),
                h.after.start as usize,
                h.after.len(),
            );
            for (t, g) in h.after.clone().zip(lines) {
                guess.insert(t, g);
            }
        }
        let mut kept = Vec::new();
        let mut passed = Vec::new();
        for l in std::mem::take(&mut self.pending[o]) {
            match guess.get(&l.line).copied().flatten() {
                Some(line) => passed.push(Pending {
                    line,
                    ignored: true,
                    ..l
                }),
                None => kept.push(Pending {
                    unblamable: true,
                    ..l
                }),
            }
        }
        self.pending[o] = kept;
        self.hand(porigin, passed);
        Ok(())
    }

    /// The diff from parent version `p` to version `o`, as hunks.
    fn hunks(&mut self, p: usize, o: usize) -> Result<Vec<imara_diff::Hunk>, BlameError> {
        let old = self.content(p)?;
        let new = self.content(o)?;
        let input = InternedInput::new(old.as_slice(), new.as_slice());
        let mut diff = Diff::compute(Algorithm::Myers, &input);
        diff.postprocess_no_heuristic(&input);
        Ok(diff.hunks().collect())
    }
}

/// Line `line` of the new side in the old one, unless a hunk changed it.
fn unchanged(hunks: &[imara_diff::Hunk], line: u32) -> Option<u32> {
    // Hunks are in order: those wholly above the line shift it by what they changed.
    let k = hunks.partition_point(|h| h.after.end <= line);
    if hunks.get(k).is_some_and(|h| h.after.contains(&line)) {
        return None;
    }
    Some(match k.checked_sub(1).map(|k| &hunks[k]) {
        Some(h) => line - h.after.end + h.before.end,
        None => line,
    })
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
        commits: HashMap::new(),
        origins: Vec::new(),
        by_key: HashMap::new(),
        pending: Vec::new(),
        queued: Vec::new(),
        queue: BinaryHeap::new(),
    };
    let components: Vec<Vec<u8>> = path
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
    let info = w.commit(&commit)?;
    let (ids, link) = w
        .path_ids(info.tree, &components, None)?
        .ok_or_else(not_found)?;
    let start = w.origin(commit, info, components, ids, link);
    let (_, size) = w.reader.read_header(&w.origins[start].blob())?;
    if size > options.max_blob_bytes {
        return Ok(Blame {
            too_large: true,
            ..Blame::default()
        });
    }
    let content = w.content(start)?;
    if crate::diff::is_binary(&content) {
        return Ok(Blame {
            binary: true,
            content: content.to_vec(),
            ..Blame::default()
        });
    }
    let line_count = content.split_inclusive(|&b| b == b'\n').count() as u32;
    let mut result = vec![
        BlameLine {
            commit,
            orig_line: 0,
            ignored: false,
            unblamable: false,
        };
        line_count as usize
    ];
    w.hand(
        start,
        (0..line_count).map(|i| Pending {
            line: i,
            fin: i,
            ignored: false,
            unblamable: false,
        }),
    );
    let mut visited = 0;
    let mut partial = false;
    while let Some((_, o)) = w.queue.pop() {
        w.queued[o] = false;
        if visited >= options.max_commits {
            partial = true;
        } else {
            visited += 1;
            w.pass(o, &options)?;
        }
        // What is left was written here.
        let here = w.origins[o].commit;
        for l in std::mem::take(&mut w.pending[o]) {
            result[l.fin as usize] = BlameLine {
                commit: here,
                orig_line: l.line + 1,
                ignored: l.ignored,
                unblamable: l.unblamable,
            };
        }
        // Versions are read again only if more lines reach them (a skewed clock).
        w.origins[o].content = None;
    }
    Ok(Blame {
        lines: result,
        content: content.to_vec(),
        partial,
        binary: false,
        too_large: false,
    })
}

/// The revisions a blame looks through, and where they were listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRevs {
    /// The list's name: the files `blame.ignoreRevsFile` names, or `.git-blame-ignore-revs`.
    pub source: String,
    /// The commits listed.
    pub revs: HashSet<ObjectId>,
}

/// The file GitHub and GitLab read at the root of the blamed revision.
pub const IGNORE_REVS_FILE: &str = ".git-blame-ignore-revs";

/// Lists larger than this are not read.
const MAX_IGNORE_LIST_BYTES: u64 = 1 << 20;

/// Parses an ignore list as git does: one full object id per line, `#` starting a comment.
/// Lines that name no id are skipped (git refuses the whole list).
pub fn parse_ignore_list(text: &[u8]) -> HashSet<ObjectId> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.split(|&b| b == b'#').next().unwrap_or_default();
            ObjectId::from_hex(line.trim_ascii())
        })
        .collect()
}

/// The revisions to look through when blaming at `commit`: those `blame.ignoreRevsFile` lists
/// (files in the work tree, as git reads them), else those `.git-blame-ignore-revs` lists in
/// the blamed commit's tree (as GitHub reads them). `None` when there is no list.
pub fn ignore_revs(repo: &Repository, commit: ObjectId) -> Option<IgnoreRevs> {
    let dirs = repo.dirs();
    let base = dirs.work_tree.as_deref().unwrap_or(&dirs.git_dir);
    let mut files: Vec<String> = Vec::new();
    for e in crate::config::read(&dirs.common_dir.join("config")).unwrap_or_default() {
        if e.section == "blame" && e.subsection.is_none() && e.key == "ignorerevsfile" {
            match e.value {
                // An empty value forgets the files named before it.
                Some(v) if v.is_empty() => files.clear(),
                Some(v) => files.push(v),
                None => {}
            }
        }
    }
    if !files.is_empty() {
        let mut revs = HashSet::new();
        for f in &files {
            let path = base.join(f);
            let small = std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_IGNORE_LIST_BYTES);
            if let Some(text) = small.then(|| std::fs::read(&path).ok()).flatten() {
                revs.extend(parse_ignore_list(&text));
            }
        }
        return Some(IgnoreRevs {
            source: files.join(", "),
            revs,
        });
    }
    let mut reader = repo.odb().reader();
    let mut buf = Vec::new();
    reader
        .read_kind(&commit, ObjectKind::Commit, &mut buf)
        .ok()?;
    let tree = CommitRef::parse(&buf).ok()?.tree;
    let blob = crate::repo::blob_at(&mut reader, tree, IGNORE_REVS_FILE)?;
    let (_, size) = reader.read_header(&blob).ok()?;
    if size > MAX_IGNORE_LIST_BYTES {
        return None;
    }
    reader.read_kind(&blob, ObjectKind::Blob, &mut buf).ok()?;
    Some(IgnoreRevs {
        source: IGNORE_REVS_FILE.to_string(),
        revs: parse_ignore_list(&buf),
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
