//! The repository's format: `core.repositoryformatversion` and `extensions.*`, checked as git's
//! `setup.c` checks them before it reads anything, so a repository this reader cannot
//! understand is refused by name instead of misread.
//!
//! Version 0 ignores extensions it does not know but refuses those that only version 1 defines;
//! version 1 refuses any extension it does not know. [`check`] answers the object format
//! (`extensions.objectFormat`: SHA-1 or SHA-256 ids). Of the extensions git knows, one whose
//! value changes what is on disk in a way gitcore does not read (a compatibility object format,
//! the SHA-1/SHA-256 interop git is building) is refused with a sentence saying so.
//! [`ref_storage`] says where the refs are: loose files and `packed-refs`, or a reftable stack.

use std::path::Path;

use crate::oid::HashKind;

/// Why a repository's format is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// `core.repositoryformatversion` is newer than git's 1.
    #[error("repository format version {0} is newer than any git writes (0 or 1)")]
    NewerVersion(String),
    /// Version 1 with an extension git does not know.
    #[error("unknown repository extension found: {0}")]
    UnknownExtension(String),
    /// Version 0 with an extension only version 1 defines (git refuses it too).
    #[error("repo version is 0, but v1-only extension found: {0}")]
    VersionOneOnly(String),
    /// An extension git knows whose value this reader does not read yet.
    #[error("extensions.{extension} = {value}: {why}")]
    NotReadYet {
        /// The extension, as git spells it lowercased.
        extension: String,
        /// Its value.
        value: String,
        /// What is not read.
        why: &'static str,
    },
}

/// Extensions version 0 knows (and version 1 too).
const V0: [&str; 4] = ["noop", "preciousobjects", "partialclone", "worktreeconfig"];
/// Extensions only version 1 knows.
const V1_ONLY: [&str; 4] = [
    "noop-v1",
    "objectformat",
    "compatobjectformat",
    "refstorage",
];

/// Checks the format of the repository whose common directory is `common_dir` (its `config`)
/// and answers the hash that names its objects. A repository without a readable config is
/// format 0 with no extensions (SHA-1), as git reads it.
pub fn check(common_dir: &Path) -> Result<HashKind, FormatError> {
    let entries = crate::config::read(&common_dir.join("config")).unwrap_or_default();
    let version =
        setting(&entries, "core", "repositoryformatversion").unwrap_or_else(|| "0".to_string());
    let version = match version.trim() {
        "0" => 0,
        "1" => 1,
        other => return Err(FormatError::NewerVersion(other.to_string())),
    };
    let mut hash = HashKind::Sha1;
    for e in entries
        .iter()
        .filter(|e| e.section == "extensions" && e.subsection.is_none())
    {
        let name = e.key.as_str();
        let value = e.value.clone().unwrap_or_default();
        if V0.contains(&name) {
            continue;
        }
        if !V1_ONLY.contains(&name) {
            if version == 1 {
                return Err(FormatError::UnknownExtension(name.to_string()));
            }
            continue; // version 0 ignores what it does not know
        }
        if version == 0 {
            return Err(FormatError::VersionOneOnly(name.to_string()));
        }
        let not_read = |why| FormatError::NotReadYet {
            extension: name.to_string(),
            value: value.clone(),
            why,
        };
        match (name, value.to_ascii_lowercase().as_str()) {
            ("noop-v1", _) | ("refstorage", "files") | ("refstorage", "reftable") => {}
            ("objectformat", v) if HashKind::from_name(v).is_some() => {
                // The last setting wins, as in git's config reading.
                hash = HashKind::from_name(v).unwrap_or_default();
            }
            ("compatobjectformat", _) => {
                return Err(not_read(
                    "GitVista does not read repositories with a compatibility object format",
                ));
            }
            _ => return Err(not_read("a value git itself does not know")),
        }
    }
    Ok(hash)
}

/// Where a repository keeps its refs (`extensions.refStorage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefStorage {
    /// Loose files under `refs/` and `packed-refs` (git's default before 3.0).
    Files,
    /// A reftable stack under `reftable/` (3.0's default).
    Reftable,
}

/// Where the repository whose common directory is `common_dir` keeps its refs, as its config
/// says (a version 0 repository ignores the extension, as git does).
pub fn ref_storage(common_dir: &Path) -> RefStorage {
    let entries = crate::config::read(&common_dir.join("config")).unwrap_or_default();
    let v1 = setting(&entries, "core", "repositoryformatversion").is_some_and(|v| v.trim() == "1");
    match setting(&entries, "extensions", "refstorage") {
        Some(v) if v1 && v.eq_ignore_ascii_case("reftable") => RefStorage::Reftable,
        _ => RefStorage::Files,
    }
}

/// The value of `section.key` (no subsection) in `entries`; a key without a value is unset.
fn setting(entries: &[crate::config::Entry], section: &str, key: &str) -> Option<String> {
    crate::config::last(entries, section, None, key).and_then(|e| e.value.clone())
}
