//! Finding a repository on disk: a work tree (walking up to `.git`), a `.git` file with `gitdir:`,
//! a linked worktree (`commondir`), or a bare repository.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why no repository was found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Neither the path nor any of its parents is or holds a git directory.
    #[error("{} is not inside a git repository", path.display())]
    NotARepository {
        /// The starting path.
        path: PathBuf,
    },
    /// The path itself cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A `.git` file or `commondir` file is malformed or points nowhere.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The directories that make up a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitDir {
    /// The git directory: `HEAD` and the per-worktree refs live here.
    pub git_dir: PathBuf,
    /// Where objects, shared refs, `packed-refs` and `shallow` live (differs from `git_dir` in a
    /// linked worktree).
    pub common_dir: PathBuf,
    /// The work tree, unless the repository is bare.
    pub work_tree: Option<PathBuf>,
}

/// Whether `dir` looks like a git directory: a `HEAD` file plus `objects/` and `refs/` (which a
/// linked worktree's git dir finds through `commondir`).
fn is_git_dir(dir: &Path) -> bool {
    if !dir.join("HEAD").is_file() {
        return false;
    }
    let common = read_commondir(dir)
        .ok()
        .flatten()
        .unwrap_or_else(|| dir.to_path_buf());
    common.join("objects").is_dir() && common.join("refs").is_dir()
}

fn read_commondir(git_dir: &Path) -> Result<Option<PathBuf>, DiscoverError> {
    let file = git_dir.join("commondir");
    match fs::read_to_string(&file) {
        Ok(text) => {
            let rel = text.trim_end_matches(['\n', '\r']);
            if rel.is_empty() {
                return Err(DiscoverError::Invalid {
                    path: file,
                    reason: "commondir is empty".into(),
                });
            }
            Ok(Some(git_dir.join(rel)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DiscoverError::Io { path: file, source }),
    }
}

fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl GitDir {
    /// Finds the repository at or above `start`.
    pub fn discover(start: &Path) -> Result<GitDir, DiscoverError> {
        let start = fs::canonicalize(start).map_err(|source| DiscoverError::Io {
            path: start.to_path_buf(),
            source,
        })?;
        let mut dir: Option<&Path> = Some(&start);
        while let Some(d) = dir {
            let dot_git = d.join(".git");
            if dot_git.is_file() {
                let git_dir = read_gitfile(&dot_git)?;
                return Self::from_git_dir(&git_dir, Some(d.to_path_buf()));
            }
            if dot_git.is_dir() && is_git_dir(&dot_git) {
                return Self::from_git_dir(&dot_git, Some(d.to_path_buf()));
            }
            if is_git_dir(d) {
                // A bare repository, or the inside of a `.git` directory.
                let work_tree = if d.file_name().is_some_and(|n| n == ".git") {
                    d.parent().map(Path::to_path_buf)
                } else {
                    None
                };
                return Self::from_git_dir(d, work_tree);
            }
            dir = d.parent();
        }
        Err(DiscoverError::NotARepository { path: start })
    }

    /// Opens a git directory directly (bare repositories, or when the caller knows it).
    pub fn from_git_dir(
        git_dir: &Path,
        work_tree: Option<PathBuf>,
    ) -> Result<GitDir, DiscoverError> {
        let git_dir = canonical(git_dir);
        if !is_git_dir(&git_dir) {
            return Err(DiscoverError::NotARepository { path: git_dir });
        }
        let common_dir = read_commondir(&git_dir)?
            .map(|p| canonical(&p))
            .unwrap_or_else(|| git_dir.clone());
        Ok(GitDir {
            git_dir,
            common_dir,
            work_tree: work_tree.map(|p| canonical(&p)),
        })
    }

    /// The object directory.
    pub fn objects_dir(&self) -> PathBuf {
        self.common_dir.join("objects")
    }

    /// Whether the repository has no work tree.
    pub fn is_bare(&self) -> bool {
        self.work_tree.is_none()
    }

    /// The directory a ref named `name` (e.g. `HEAD`, `refs/bisect/bad`) lives under: per-worktree
    /// refs in the git dir, shared ones in the common dir.
    pub fn ref_base(&self, name: &str) -> &Path {
        let per_worktree = name == "HEAD"
            || name.starts_with("refs/bisect/")
            || name.starts_with("refs/worktree/")
            || name.starts_with("refs/rewritten/")
            || !name.starts_with("refs/");
        if per_worktree {
            &self.git_dir
        } else {
            &self.common_dir
        }
    }
}

fn read_gitfile(file: &Path) -> Result<PathBuf, DiscoverError> {
    let text = fs::read_to_string(file).map_err(|source| DiscoverError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let rel = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("gitdir:"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DiscoverError::Invalid {
            path: file.to_path_buf(),
            reason: "expected a `gitdir: <path>` line".into(),
        })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let target = base.join(rel);
    if !target.is_dir() {
        return Err(DiscoverError::Invalid {
            path: file.to_path_buf(),
            reason: format!("gitdir {} does not exist", target.display()),
        });
    }
    Ok(target)
}
