//! Identifiers shared by every actor (kept apart so the actors need not import each other for
//! them).

use std::fmt;

/// A repository's id: `local` in local mode, 16 hex digits in hosted mode. Only lowercase
/// letters, digits and `-`, 1 to 64 characters, so it is safe in paths and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(String);

impl RepoId {
    /// Validates an id.
    pub fn parse(id: &str) -> Option<RepoId> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| RepoId(id.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
