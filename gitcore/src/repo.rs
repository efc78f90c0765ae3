//! [`Repository`]: a discovered git directory with its object database.

use std::path::Path;

use crate::discover::{DiscoverError, GitDir};
use crate::object::{CommitRef, ParseError, TagRef};
use crate::odb::{ObjectKind, Odb, OdbError, OdbOptions, OdbReader};
use crate::oid::ObjectId;
use crate::refs::RefSnapshot;

/// How many annotated tags in a row are followed when peeling (tags of tags of ...).
pub const MAX_PEEL_DEPTH: usize = 32;

/// Errors opening or reading a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No repository at the path.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The object database failed.
    #[error(transparent)]
    Odb(#[from] OdbError),
    /// An object's bytes are malformed.
    #[error("object {id}: {source}")]
    Parse {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        #[source]
        source: ParseError,
    },
    /// Annotated tags nest deeper than [`MAX_PEEL_DEPTH`] (or loop).
    #[error("tag {0} nests deeper than {MAX_PEEL_DEPTH} levels")]
    TagTooDeep(ObjectId),
    /// The repository's format or an extension it uses is one this reader cannot read.
    #[error("{}: {source}", path.display())]
    Format {
        /// The repository's git directory.
        path: std::path::PathBuf,
        /// Which setting, and why.
        #[source]
        source: crate::format::FormatError,
    },
}

/// An open repository.
#[derive(Debug)]
pub struct Repository {
    dirs: GitDir,
    odb: Odb,
    /// What a repository held in memory holds (one on disk reads its configuration).
    memory_contents: Option<Contents>,
}

impl Repository {
    /// Finds the repository at or above `path` and opens its objects with default limits.
    pub fn discover(path: &Path) -> Result<Repository, RepoError> {
        Self::discover_with(path, OdbOptions::default())
    }

    /// Like [`Repository::discover`] with explicit object database limits.
    pub fn discover_with(path: &Path, options: OdbOptions) -> Result<Repository, RepoError> {
        let dirs = GitDir::discover(path)?;
        Self::from_dirs(dirs, options)
    }

    /// Opens an already discovered repository.
    pub fn from_dirs(dirs: GitDir, options: OdbOptions) -> Result<Repository, RepoError> {
        let hash = crate::format::check(&dirs.common_dir).map_err(|source| RepoError::Format {
            path: dirs.git_dir.clone(),
            source,
        })?;
        let odb = Odb::open(&dirs.objects_dir(), hash, options)?;
        Ok(Repository {
            dirs,
            odb,
            memory_contents: None,
        })
    }

    /// A repository whose objects are `odb` held in memory (see [`Odb::held`]), holding
    /// `contents`, that will live at `dirs` once cloned (nothing there is read: refs come from
    /// the remote's listing, and the graph is built from the objects).
    pub fn in_memory(dirs: GitDir, odb: Odb, contents: Contents) -> Repository {
        Repository {
            dirs,
            odb,
            memory_contents: Some(contents),
        }
    }

    /// Whether the objects are held in memory (no clone on disk yet).
    pub fn is_in_memory(&self) -> bool {
        self.memory_contents.is_some()
    }

    /// Re-opens the object database, reusing unchanged packs (after a fetch, a commit, `git gc`).
    pub fn refresh(&self) -> Result<Repository, RepoError> {
        Ok(Repository {
            dirs: self.dirs.clone(),
            odb: self.odb.refresh()?,
            memory_contents: self.memory_contents,
        })
    }

    /// What the clone holds, from its configuration: a partial clone names its promisor remote
    /// (`remote.<name>.promisor`, or `extensions.partialClone`) and the filter it was made with
    /// (`remote.<name>.partialCloneFilter`). Read from disk on every call (a few KB).
    pub fn contents(&self) -> Contents {
        if let Some(c) = self.memory_contents {
            return c;
        }
        Contents::of_git_dir(&self.dirs.common_dir)
    }

    /// The repository's directories.
    pub fn dirs(&self) -> &GitDir {
        &self.dirs
    }

    /// The object database.
    pub fn odb(&self) -> &Odb {
        &self.odb
    }

    /// A cheap fingerprint of everything a reload reads (stat data only, no file contents): two
    /// equal stamps mean a reload would find nothing new. Take it before reading, so a change that
    /// races the read shows up in the next stamp.
    pub fn change_stamp(&self) -> ChangeStamp {
        ChangeStamp::of(&self.dirs)
    }

    /// Reads every ref now.
    pub fn refs(&self) -> RefSnapshot {
        RefSnapshot::read(&self.dirs)
    }

    /// Follows annotated tags from `id` to the first non-tag object; returns it and its kind.
    pub fn peel(
        &self,
        reader: &mut OdbReader<'_>,
        id: ObjectId,
        buf: &mut Vec<u8>,
    ) -> Result<(ObjectId, ObjectKind), RepoError> {
        let mut cur = id;
        for _ in 0..MAX_PEEL_DEPTH {
            let (kind, _) = reader.read_header(&cur)?;
            if kind != ObjectKind::Tag {
                return Ok((cur, kind));
            }
            reader.read_kind(&cur, ObjectKind::Tag, buf)?;
            let tag = TagRef::parse(buf).map_err(|source| RepoError::Parse { id: cur, source })?;
            cur = tag.target;
        }
        Err(RepoError::TagTooDeep(id))
    }

    /// Reads and parses commit `id`, calling `f` with the parsed view (which borrows `buf`).
    pub fn with_commit<T>(
        &self,
        reader: &mut OdbReader<'_>,
        id: &ObjectId,
        buf: &mut Vec<u8>,
        f: impl FnOnce(&CommitRef<'_>) -> T,
    ) -> Result<T, RepoError> {
        reader.read_kind(id, ObjectKind::Commit, buf)?;
        let commit =
            CommitRef::parse(buf).map_err(|source| RepoError::Parse { id: *id, source })?;
        Ok(f(&commit))
    }
}

/// What [`Repository::change_stamp`] answers: stat data of `HEAD`, `packed-refs`, `shallow`, the
/// stash reflog, reftable stacks' `tables.list`, the pack and commit-graph directories, other worktrees' `HEAD`s, the config
/// file and the work tree's `.mailmap`, and every
/// directory under `refs/` (a ref written, created or deleted renames a file into its directory,
/// which changes the directory's times), folded into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeStamp(u64);

impl ChangeStamp {
    fn of(dirs: &crate::discover::GitDir) -> ChangeStamp {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::MetadataExt;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut stat = |p: &Path| match std::fs::symlink_metadata(p) {
            Ok(m) => (
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            )
                .hash(&mut h),
            Err(_) => 0u8.hash(&mut h),
        };
        let (git, common) = (&dirs.git_dir, &dirs.common_dir);
        for p in [
            git.join("HEAD"),
            common.join("packed-refs"),
            common.join("shallow"),
            common.join("logs/refs/stash"),
            // A reftable stack changes by renaming a new list into place.
            common.join("reftable/tables.list"),
            git.join("reftable/tables.list"),
            common.join("objects/pack"),
            common.join("objects/info"),
            common.join("objects/info/commit-graphs"),
            common.join("worktrees"),
            // Where the mailmap is named (`mailmap.file`, `mailmap.blob`), and the work tree's.
            common.join("config"),
        ] {
            stat(&p);
        }
        if let Some(work_tree) = &dirs.work_tree {
            stat(&work_tree.join(".mailmap"));
        }
        if let Ok(rd) = std::fs::read_dir(common.join("worktrees")) {
            let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            names.sort();
            for w in names {
                stat(&w.join("HEAD"));
                stat(&w.join("reftable/tables.list"));
            }
        }
        // Every directory and loose ref file under refs/ (git renames a lock file into place, which
        // changes the directory; a file rewritten in place changes itself).
        let mut stack = vec![common.join("refs")];
        if git != common {
            stack.push(git.join("refs"));
        }
        let mut seen = 0usize;
        while let Some(d) = stack.pop() {
            stat(&d);
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut entries: Vec<(std::path::PathBuf, bool)> = rd
                .flatten()
                .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
                .collect();
            entries.sort();
            for (path, is_dir) in entries {
                seen += 1;
                if seen > 1_000_000 {
                    break;
                }
                if is_dir {
                    stack.push(path);
                } else {
                    stat(&path);
                }
            }
        }
        ChangeStamp(h.finish())
    }
}

/// Which objects a clone holds, as its partial-clone filter says. gitcore never fetches what
/// is left out: reading it is [`OdbError::Missing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contents {
    /// Every object reachable from its refs (not a partial clone).
    Complete,
    /// Commits and trees, no file contents (`blob:none`, or `blob:limit=<n>`: some blobs).
    NoBlobs,
    /// Commits only (`tree:0`, or `tree:<depth>`, or any other filter git knows).
    CommitsOnly,
}

impl Contents {
    /// The contents of the repository whose (common) git directory is `dir`, from its
    /// `config` (complete when there is none, or it cannot be read).
    pub fn of_git_dir(dir: &Path) -> Contents {
        crate::config::read(&dir.join("config"))
            .map_or(Contents::Complete, |entries| Contents::of_config(&entries))
    }

    /// The contents a parsed config file describes.
    pub fn of_config(entries: &[crate::config::Entry]) -> Contents {
        let last = |section: &str, sub: Option<&str>, key: &str| {
            crate::config::last(entries, section, sub, key)
        };
        let truthy = |e: &crate::config::Entry| {
            e.value.as_deref().is_none_or(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
            })
        };
        // The promisor remote: `extensions.partialClone`, else every remote marked promisor.
        let mut remotes: Vec<&str> = Vec::new();
        if let Some(e) = last("extensions", None, "partialclone")
            && let Some(v) = e.value.as_deref()
        {
            remotes.push(v);
        }
        for e in entries {
            if e.section == "remote"
                && e.key == "promisor"
                && truthy(e)
                && let Some(sub) = e.subsection.as_deref()
                && !remotes.contains(&sub)
            {
                remotes.push(sub);
            }
        }
        let mut contents = Contents::Complete;
        for r in remotes {
            let filter = last("remote", Some(r), "partialclonefilter")
                .and_then(|e| e.value.as_deref())
                .unwrap_or("");
            let this = Contents::of_filter(filter);
            if this.rank() < contents.rank() {
                contents = this;
            }
        }
        contents
    }

    /// The contents a clone made with `--filter=<filter>` holds (`""`: a promisor remote
    /// without a filter, which holds what its fetches brought: counted as complete).
    pub fn of_filter(filter: &str) -> Contents {
        let f = filter.trim().to_ascii_lowercase();
        if f.is_empty() {
            Contents::Complete
        } else if f == "blob:none" || f.starts_with("blob:limit=") {
            Contents::NoBlobs
        } else {
            Contents::CommitsOnly
        }
    }

    fn rank(self) -> u8 {
        match self {
            Contents::CommitsOnly => 0,
            Contents::NoBlobs => 1,
            Contents::Complete => 2,
        }
    }

    /// `commits`, `trees` or `complete`: the wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Contents::CommitsOnly => "commits",
            Contents::NoBlobs => "trees",
            Contents::Complete => "complete",
        }
    }
}

/// The file (blob or executable) at slash-separated `path` in `tree`, if there is one.
pub(crate) fn blob_at(reader: &mut OdbReader<'_>, tree: ObjectId, path: &str) -> Option<ObjectId> {
    let mut buf = Vec::new();
    let mut cur = tree;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (depth, name) in parts.iter().enumerate() {
        reader.read_kind(&cur, ObjectKind::Tree, &mut buf).ok()?;
        let entry = crate::object::TreeIter::new(&buf, cur.kind())
            .filter_map(Result::ok)
            .find(|e| e.name == name.as_bytes())?;
        let last = depth + 1 == parts.len();
        match entry.mode {
            crate::object::EntryMode::Tree if !last => cur = entry.id,
            crate::object::EntryMode::Blob | crate::object::EntryMode::Executable if last => {
                return Some(entry.id);
            }
            _ => return None,
        }
    }
    None
}
