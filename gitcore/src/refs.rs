//! References: loose refs, `packed-refs` (with peeled `^` lines), or a reftable stack
//! ([`reftable`]); symbolic refs, HEAD (branch, detached or unborn), other worktrees' HEADs, the
//! stash reflog and the `shallow` file.
//!
//! A [`RefSnapshot`] is read in one pass and never touches objects; peeling annotated tags needs the
//! object database and happens in [`crate::repo`]. Malformed entries are skipped and reported in
//! [`RefSnapshot::problems`]: one bad line must not hide every other branch.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::discover::GitDir;
use crate::format::RefStorage;
use crate::oid::ObjectId;

pub mod reftable;

/// How deep symbolic refs are followed (git's limit is 5).
const MAX_SYMREF_DEPTH: usize = 5;

/// The ref whose reflog is read (the stash's entries are shown).
const STASH: &str = "refs/stash";

/// Namespaces each worktree has its own of.
const PER_WORKTREE: [&str; 3] = ["refs/bisect", "refs/worktree", "refs/rewritten"];

/// Whether ref `name` is in a namespace each worktree has its own of.
fn is_per_worktree(name: &str) -> bool {
    PER_WORKTREE.iter().any(|ns| {
        name.strip_prefix(ns)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The refs under `refs/` of a reftable stack, as the files reader collects them: names to
/// values, and the peeled ids the writer recorded. The stack is sorted, so the maps are built
/// in one pass.
fn raw_of(refs: Vec<(String, reftable::RefValue)>) -> RawMaps {
    let mut peeled = Vec::new();
    let raw = refs
        .into_iter()
        .filter(|(name, _)| name.starts_with("refs/") && is_safe_ref_name(name))
        .filter_map(|(name, value)| match value {
            reftable::RefValue::Direct(id, p) => {
                if let Some(p) = p {
                    peeled.push((name.clone(), p));
                }
                Some((name, RawRef::Direct(id)))
            }
            reftable::RefValue::Symbolic(t) => Some((name, RawRef::Symbolic(t))),
            reftable::RefValue::Deleted => None,
        })
        .collect();
    (raw, peeled.into_iter().collect())
}

/// HEAD as a reftable stack records it, resolved against `raw`.
fn head_of(
    value: Option<reftable::RefValue>,
    raw: &BTreeMap<String, RawRef>,
    dirs: &GitDir,
) -> Option<Head> {
    match value? {
        reftable::RefValue::Direct(id, _) => Some(Head::Detached(id)),
        reftable::RefValue::Symbolic(name) => Some(match resolve_symbolic(raw, &name, dirs, 1) {
            Some(target) => Head::Branch { name, target },
            None => Head::Unborn { name },
        }),
        reftable::RefValue::Deleted => None,
    }
}

/// Names to values, and names to peeled ids.
type RawMaps = (BTreeMap<String, RawRef>, BTreeMap<String, ObjectId>);

/// What HEAD is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// On a branch that has commits.
    Branch {
        /// Full ref name, e.g. `refs/heads/main`.
        name: String,
        /// The branch tip.
        target: ObjectId,
    },
    /// On a branch without commits yet (a new repository, or `git checkout --orphan`).
    Unborn {
        /// Full ref name the first commit will create.
        name: String,
    },
    /// Detached at a commit.
    Detached(ObjectId),
}

impl Head {
    /// The commit HEAD points at, if any.
    pub fn target(&self) -> Option<ObjectId> {
        match self {
            Head::Branch { target, .. } | Head::Detached(target) => Some(*target),
            Head::Unborn { .. } => None,
        }
    }

    /// The branch name HEAD is on (full ref name), if not detached.
    pub fn branch(&self) -> Option<&str> {
        match self {
            Head::Branch { name, .. } | Head::Unborn { name } => Some(name),
            Head::Detached(_) => None,
        }
    }
}

/// One reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Full name, e.g. `refs/tags/v1.0`.
    pub name: String,
    /// The object it names directly (for an annotated tag: the tag object), after following
    /// symbolic refs.
    pub target: ObjectId,
    /// The object `packed-refs` says the tag peels to, when it says so.
    pub peeled: Option<ObjectId>,
    /// For a symbolic ref (e.g. `refs/remotes/origin/HEAD`), the ref it points to.
    pub symbolic: Option<String>,
}

/// One entry of the stash reflog; index 0 is `stash@{0}`, the newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StashEntry {
    /// The stash commit.
    pub target: ObjectId,
    /// The reflog message (e.g. `WIP on main: 1234567 subject`).
    pub message: String,
}

/// The refs of a repository at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefSnapshot {
    /// HEAD of the repository (or of the worktree it was opened through).
    pub head: Option<Head>,
    /// Every ref under `refs/`, sorted by name (loose refs override packed ones).
    pub refs: Vec<Ref>,
    /// HEADs of the other linked worktrees (name of the worktree, commit).
    pub worktree_heads: Vec<(String, ObjectId)>,
    /// The stash reflog, newest first.
    pub stash: Vec<StashEntry>,
    /// Commits listed in `shallow`: their parents are absent on purpose.
    pub shallow: Vec<ObjectId>,
    /// Entries that were skipped, each naming the file (and line).
    pub problems: Vec<String>,
}

enum RawRef {
    Direct(ObjectId),
    Symbolic(String),
}

fn parse_ref_file(text: &[u8]) -> Option<RawRef> {
    let line = text.split(|&b| b == b'\n').next()?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(target) = line.strip_prefix(b"ref:") {
        let target = std::str::from_utf8(target).ok()?.trim();
        if target.is_empty() {
            return None;
        }
        return Some(RawRef::Symbolic(target.to_string()));
    }
    let hex_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    ObjectId::from_hex(&line[..hex_end]).map(RawRef::Direct)
}

/// Whether a name is an acceptable ref component path (no `..`, no control characters, no
/// absolute paths): a hostile `packed-refs` must not make us read files outside the git dir.
fn is_safe_ref_name(name: &str) -> bool {
    // One pass over the bytes (every ref of a large repository goes through here).
    let b = name.as_bytes();
    if b.is_empty() || b[0] == b'/' {
        return false;
    }
    let mut start = 0;
    for i in 0..=b.len() {
        let c = b.get(i).copied().unwrap_or(b'/');
        if c < 0x20 || c == 0x7f || c == b'\\' {
            return false;
        }
        if c == b'/' {
            if matches!(&b[start..i], b"" | b"." | b"..") {
                return false;
            }
            start = i + 1;
        }
    }
    true
}

impl RefSnapshot {
    /// Reads all refs of the repository.
    pub fn read(dirs: &GitDir) -> RefSnapshot {
        match crate::format::ref_storage(&dirs.common_dir) {
            RefStorage::Files => Self::read_files(dirs),
            RefStorage::Reftable => Self::read_reftable(dirs),
        }
    }

    /// Reads the refs of a repository that keeps them in files.
    fn read_files(dirs: &GitDir) -> RefSnapshot {
        let mut snap = RefSnapshot::default();
        let mut raw: BTreeMap<String, RawRef> = BTreeMap::new();
        let mut peeled: BTreeMap<String, ObjectId> = BTreeMap::new();
        snap.read_packed(&dirs.common_dir.join("packed-refs"), &mut raw, &mut peeled);
        snap.read_loose_dir(&dirs.common_dir, "refs", &mut raw, 0);
        if dirs.git_dir != dirs.common_dir {
            // Per-worktree namespaces of a linked worktree live in its own git dir.
            raw.retain(|k, _| !is_per_worktree(k));
            for ns in PER_WORKTREE {
                snap.read_loose_dir(&dirs.git_dir, ns, &mut raw, 0);
            }
        }
        snap.resolve_all(&raw, &peeled, dirs);
        snap.head = snap.read_head(&dirs.git_dir, &raw, dirs);
        snap.read_worktree_heads(dirs);
        snap.read_stash(dirs);
        snap.read_shallow(&dirs.common_dir.join("shallow"));
        snap
    }

    /// Reads the refs of a repository that keeps them in reftable stacks: the common one, and a
    /// linked worktree's own for its HEAD and per-worktree refs.
    fn read_reftable(dirs: &GitDir) -> RefSnapshot {
        let mut snap = RefSnapshot::default();
        let mut problems = Vec::new();
        let mut main =
            reftable::read_stack(&dirs.common_dir.join("reftable"), STASH, &mut problems)
                .unwrap_or_else(|| {
                    problems.push(format!(
                        "{}: no reftable stack",
                        dirs.common_dir.join("reftable").display()
                    ));
                    reftable::Stack::default()
                });
        let mut head = main.get("HEAD").cloned();
        let (mut raw, mut peeled) = raw_of(std::mem::take(&mut main.refs));
        if dirs.git_dir != dirs.common_dir {
            let mut own =
                reftable::read_stack(&dirs.git_dir.join("reftable"), STASH, &mut problems)
                    .unwrap_or_default();
            head = own.get("HEAD").cloned();
            let (wt_raw, wt_peeled) = raw_of(std::mem::take(&mut own.refs));
            raw.retain(|k, _| !is_per_worktree(k));
            peeled.retain(|k, _| !is_per_worktree(k));
            raw.extend(wt_raw.into_iter().filter(|(k, _)| is_per_worktree(k)));
            peeled.extend(wt_peeled.into_iter().filter(|(k, _)| is_per_worktree(k)));
        }
        snap.problems = problems;
        snap.resolve_all(&raw, &peeled, dirs);
        snap.head = head_of(head, &raw, dirs);
        if snap.head.is_none() {
            snap.problems.push("HEAD: not in the reftable stack".into());
        }
        // Other worktrees' HEADs, from their own stacks.
        if let Ok(entries) = fs::read_dir(dirs.common_dir.join("worktrees")) {
            let mut heads = Vec::new();
            for e in entries.filter_map(|e| e.ok()) {
                if e.path() == dirs.git_dir {
                    continue;
                }
                let mut ignored = Vec::new();
                let Some(stack) =
                    reftable::read_stack(&e.path().join("reftable"), STASH, &mut ignored)
                else {
                    continue;
                };
                let target =
                    head_of(stack.get("HEAD").cloned(), &raw, dirs).and_then(|h| h.target());
                if let Some(t) = target {
                    heads.push((e.file_name().to_string_lossy().into_owned(), t));
                }
            }
            heads.sort();
            snap.worktree_heads = heads;
        }
        snap.stash = main
            .reflog(STASH)
            .into_iter()
            .filter(|(id, _)| !id.is_null())
            .map(|(target, message)| StashEntry { target, message })
            .collect();
        snap.read_shallow(&dirs.common_dir.join("shallow"));
        snap
    }

    /// Every name of `raw` resolved into [`RefSnapshot::refs`] (dangling symbolic refs reported).
    fn resolve_all(
        &mut self,
        raw: &BTreeMap<String, RawRef>,
        peeled: &BTreeMap<String, ObjectId>,
        dirs: &GitDir,
    ) {
        let snap = self;
        let mut peeled = peeled.iter().peekable();
        for (name, value) in raw {
            let resolved = match value {
                RawRef::Direct(id) => Some((*id, None)),
                RawRef::Symbolic(t) => {
                    resolve_symbolic(raw, t, dirs, 1).map(|id| (id, Some(t.clone())))
                }
            };
            // Both maps are sorted by name: the peeled id, if any, is next in line.
            while peeled.peek().is_some_and(|(p, _)| *p < name) {
                peeled.next();
            }
            let peeled_id = peeled
                .peek()
                .filter(|(p, _)| *p == name)
                .map(|(_, id)| **id);
            if let Some(resolved) = resolved {
                snap.refs.push(Ref {
                    name: name.clone(),
                    target: resolved.0,
                    peeled: peeled_id,
                    symbolic: resolved.1,
                });
            } else if let RawRef::Symbolic(t) = value {
                // A dangling symbolic ref (e.g. origin/HEAD to a deleted branch) names nothing.
                snap.problems
                    .push(format!("{name}: symbolic ref to {t} does not resolve"));
            }
        }
    }

    fn read_head(
        &mut self,
        git_dir: &Path,
        raw: &BTreeMap<String, RawRef>,
        dirs: &GitDir,
    ) -> Option<Head> {
        let path = git_dir.join("HEAD");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(format!("{}: {e}", path.display()));
                return None;
            }
        };
        match parse_ref_file(&text) {
            Some(RawRef::Direct(id)) => Some(Head::Detached(id)),
            Some(RawRef::Symbolic(name)) => match resolve_symbolic(raw, &name, dirs, 1) {
                Some(target) => Some(Head::Branch { name, target }),
                None => Some(Head::Unborn { name }),
            },
            None => {
                self.problems
                    .push(format!("{}: not a valid ref", path.display()));
                None
            }
        }
    }

    fn read_worktree_heads(&mut self, dirs: &GitDir) {
        let Ok(entries) = fs::read_dir(dirs.common_dir.join("worktrees")) else {
            return;
        };
        let mut heads = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let wt = e.path();
            if wt == dirs.git_dir {
                continue;
            }
            let Ok(text) = fs::read(wt.join("HEAD")) else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            let target = match parse_ref_file(&text) {
                Some(RawRef::Direct(id)) => Some(id),
                Some(RawRef::Symbolic(r)) => {
                    // Resolve against the shared refs (this worktree's own HEAD is not involved).
                    let mut raw = BTreeMap::new();
                    let mut peeled = BTreeMap::new();
                    let mut scratch = RefSnapshot::default();
                    scratch.read_packed(
                        &dirs.common_dir.join("packed-refs"),
                        &mut raw,
                        &mut peeled,
                    );
                    scratch.read_loose_dir(&dirs.common_dir, "refs", &mut raw, 0);
                    resolve_symbolic(&raw, &r, dirs, 1)
                }
                None => None,
            };
            if let Some(t) = target {
                heads.push((name, t));
            }
        }
        heads.sort();
        self.worktree_heads = heads;
    }

    fn read_packed(
        &mut self,
        path: &Path,
        raw: &mut BTreeMap<String, RawRef>,
        peeled: &mut BTreeMap<String, ObjectId>,
    ) {
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                self.problems.push(format!("{}: {e}", path.display()));
                return;
            }
        };
        let mut last: Option<String> = None;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            if let Some(hex) = line.strip_prefix(b"^") {
                match (ObjectId::from_hex(hex), &last) {
                    (Some(id), Some(name)) => {
                        peeled.insert(name.clone(), id);
                    }
                    _ => self.problems.push(format!(
                        "{}:{}: malformed peeled line",
                        path.display(),
                        n + 1
                    )),
                }
                continue;
            }
            // `<40 or 64 hex digits> <name>`.
            let parsed = line
                .iter()
                .position(|&b| b == b' ')
                .and_then(|space| Some((ObjectId::from_hex(&line[..space])?, space)))
                .and_then(|(id, space)| {
                    let name = std::str::from_utf8(&line[space + 1..]).ok()?;
                    is_safe_ref_name(name).then(|| (id, name.to_string()))
                });
            match parsed {
                Some((id, name)) => {
                    raw.insert(name.clone(), RawRef::Direct(id));
                    last = Some(name);
                }
                None => {
                    last = None;
                    self.problems.push(format!(
                        "{}:{}: malformed line ignored",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
    }

    fn read_loose_dir(
        &mut self,
        base: &Path,
        prefix: &str,
        raw: &mut BTreeMap<String, RawRef>,
        depth: usize,
    ) {
        if depth > 64 {
            self.problems
                .push(format!("{}: ref directories nest too deep", base.display()));
            return;
        }
        let dir = base.join(prefix);
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let Ok(file_name) = e.file_name().into_string() else {
                self.problems
                    .push(format!("{}: non-UTF-8 ref name ignored", dir.display()));
                continue;
            };
            if file_name.ends_with(".lock") {
                continue;
            }
            let name = format!("{prefix}/{file_name}");
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                self.read_loose_dir(base, &name, raw, depth + 1);
            } else if ft.is_file() {
                match fs::read(e.path()) {
                    Ok(text) => match parse_ref_file(&text) {
                        Some(r) => {
                            raw.insert(name, r);
                        }
                        None => self
                            .problems
                            .push(format!("{}: not a valid ref", e.path().display())),
                    },
                    // A ref deleted between listing and reading is simply gone.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => self.problems.push(format!("{}: {err}", e.path().display())),
                }
            }
        }
    }

    fn read_stash(&mut self, dirs: &GitDir) {
        let path = dirs.common_dir.join("logs").join("refs").join("stash");
        let Ok(text) = fs::read(&path) else {
            return;
        };
        let mut entries = Vec::new();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            // "<old> <new> <ident> <time> <tz>\t<message>", ids of 40 or 64 hex digits.
            let new = line
                .splitn(3, |&b| b == b' ')
                .nth(1)
                .and_then(ObjectId::from_hex);
            match new {
                Some(id) if !id.is_null() => {
                    let message = line
                        .iter()
                        .position(|&b| b == b'\t')
                        .map(|t| String::from_utf8_lossy(&line[t + 1..]).into_owned())
                        .unwrap_or_default();
                    entries.push(StashEntry {
                        target: id,
                        message,
                    });
                }
                _ => self.problems.push(format!(
                    "{}:{}: malformed reflog line ignored",
                    path.display(),
                    n + 1
                )),
            }
        }
        entries.reverse();
        self.stash = entries;
    }

    fn read_shallow(&mut self, path: &Path) {
        let Ok(text) = fs::read(path) else { return };
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match ObjectId::from_hex(line) {
                Some(id) => self.shallow.push(id),
                None => self.problems.push(format!(
                    "{}:{}: malformed line ignored",
                    path.display(),
                    n + 1
                )),
            }
        }
        self.shallow.sort();
    }

    /// Looks a ref up by full name.
    pub fn get(&self, name: &str) -> Option<&Ref> {
        self.refs
            .binary_search_by(|r| r.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.refs[i])
    }
}

fn resolve_symbolic(
    raw: &BTreeMap<String, RawRef>,
    name: &str,
    dirs: &GitDir,
    depth: usize,
) -> Option<ObjectId> {
    if depth > MAX_SYMREF_DEPTH || !is_safe_ref_name(name) {
        return None;
    }
    match raw.get(name) {
        Some(RawRef::Direct(id)) => Some(*id),
        Some(RawRef::Symbolic(t)) => resolve_symbolic(raw, t, dirs, depth + 1),
        // Per-worktree refs (and pseudo-refs) are not in `raw`; read them from their own base.
        None if !name.starts_with("refs/") || dirs.git_dir != dirs.common_dir => {
            let path: PathBuf = dirs.ref_base(name).join(name);
            match parse_ref_file(&fs::read(path).ok()?)? {
                RawRef::Direct(id) => Some(id),
                RawRef::Symbolic(t) => resolve_symbolic(raw, &t, dirs, depth + 1),
            }
        }
        None => None,
    }
}
