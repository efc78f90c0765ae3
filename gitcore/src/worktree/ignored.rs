//! Whether a path that changed in a work tree is one [`status`](super::status) leaves out: an
//! untracked path the ignore rules match, or anything under an ignored directory that holds no
//! tracked file. A watcher asks it for every filesystem event, so a build writing thousands of
//! files into its ignored output directory (`target/`, `node_modules/`) costs no status run.
//!
//! The rules are [`status`](super::status)'s: `.git/info/exclude`, then the `.gitignore` of
//! every directory from the top down, each read once and remembered. The tracked paths come
//! from the index as it was read; a caller makes a new [`IgnoredPaths`] when the index or a
//! `.gitignore` changes. The rule stack below (`Ignores`) is the one status walks with.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::index::Index;
use crate::oid::HashKind;

/// Directories whose `.gitignore` is remembered at most; past it the memory starts over (a
/// build making directories without end must not grow it).
const REMEMBERED_DIRS: usize = 10_000;

/// The ignore rules and tracked paths of one work tree; see the module's notes.
#[derive(Debug)]
pub struct IgnoredPaths {
    work_tree: PathBuf,
    exclude: Option<ignore::gitignore::Gitignore>,
    /// Each directory's own `.gitignore` (relative path, `""` for the top), if it has one.
    per_dir: HashMap<String, Option<ignore::gitignore::Gitignore>>,
    tracked: HashSet<Vec<u8>>,
    tracked_dirs: HashSet<Vec<u8>>,
}

impl IgnoredPaths {
    /// The rules of the work tree `work_tree` whose git directory is `git_dir` (its index) and
    /// common directory `common_dir` (its `info/exclude`). An index that cannot be read counts
    /// as empty (every path untracked).
    pub fn load(work_tree: &Path, git_dir: &Path, common_dir: &Path, hash: HashKind) -> Self {
        let index = Index::read(&git_dir.join("index"), hash).ok();
        let entries = index.as_ref().map_or(&[][..], |i| &i.entries[..]);
        IgnoredPaths {
            work_tree: work_tree.to_path_buf(),
            exclude: gitignore_of(work_tree, &common_dir.join("info/exclude")),
            per_dir: HashMap::new(),
            tracked: entries.iter().map(|e| e.path.clone()).collect(),
            tracked_dirs: index.as_ref().map(tracked_dirs).unwrap_or_default(),
        }
    }

    fn rules_of(&mut self, rel: &str) -> Option<ignore::gitignore::Gitignore> {
        if self.per_dir.len() >= REMEMBERED_DIRS {
            self.per_dir.clear();
        }
        let work_tree = &self.work_tree;
        self.per_dir
            .entry(rel.to_string())
            .or_insert_with(|| {
                let dir = work_tree.join(rel);
                gitignore_of(&dir, &dir.join(".gitignore"))
            })
            .clone()
    }

    /// Whether `path` (absolute, as a watcher reports it) is left out of the status: false for
    /// a path outside the work tree, in its `.git`, or tracked.
    pub fn is_ignored(&mut self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.work_tree) else {
            return false;
        };
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => match s.to_str() {
                    Some(s) => parts.push(s),
                    None => return false,
                },
                _ => return false,
            }
        }
        if parts.is_empty() || parts[0] == ".git" {
            return false;
        }
        let mut ignores = Ignores {
            stack: self.exclude.iter().cloned().collect(),
        };
        let mut prefix = String::new();
        for (i, name) in parts.iter().enumerate() {
            ignores.stack.extend(self.rules_of(&prefix));
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            let last = i + 1 == parts.len();
            if last && self.tracked.contains(prefix.as_bytes()) {
                return false;
            }
            let is_dir = !last || path.is_dir();
            // A directory with a tracked file below is walked by status whatever the rules.
            if is_dir && self.tracked_dirs.contains(prefix.as_bytes()) {
                continue;
            }
            if ignores.ignored(&self.work_tree.join(&prefix), is_dir) {
                return true;
            }
        }
        false
    }
}

/// The ignore rules in force in one directory: its own `.gitignore` over its parents'.
pub(super) struct Ignores {
    pub(super) stack: Vec<ignore::gitignore::Gitignore>,
}

/// The directories above the index's paths (slash-separated): status walks them whatever the
/// ignore rules say.
pub(super) fn tracked_dirs(index: &Index) -> HashSet<Vec<u8>> {
    let mut dirs: HashSet<Vec<u8>> = HashSet::new();
    for e in &index.entries {
        let mut p = e.path.as_slice();
        while let Some(slash) = p.iter().rposition(|&b| b == b'/') {
            p = &p[..slash];
            if !dirs.insert(p.to_vec()) {
                break;
            }
        }
    }
    dirs
}

impl Ignores {
    pub(super) fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        for g in self.stack.iter().rev() {
            let m = g.matched(path, is_dir);
            if m.is_ignore() {
                return true;
            }
            if m.is_whitelist() {
                return false;
            }
        }
        false
    }
}

pub(super) fn gitignore_of(dir: &Path, file: &Path) -> Option<ignore::gitignore::Gitignore> {
    if !file.is_file() {
        return None;
    }
    let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
    let _ = b.add(file);
    b.build().ok()
}
