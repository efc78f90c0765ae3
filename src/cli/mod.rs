//! Command implementations behind the thin dispatcher in `main.rs`.

pub mod loadtest;
pub mod log;
pub mod open;
pub mod serve;

/// The repository at `path` (any path inside a work tree, a `.git` directory or a bare
/// repository), or one sentence saying why there is none: `cannot open a repository at /tmp:
/// /tmp is not inside a git repository`.
pub fn discover(path: &std::path::Path) -> anyhow::Result<gitcore::repo::Repository> {
    gitcore::repo::Repository::discover(path)
        .map_err(|e| anyhow::anyhow!("cannot open a repository at {}: {e}", path.display()))
}
