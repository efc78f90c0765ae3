//! `.mailmap`: the canonical name and email of people who committed under several, applied
//! exactly as `git log --format='%aN <%aE>'` applies it.
//!
//! The four line forms (`gitmailmap(5)`):
//!
//! ```text
//! Proper Name <commit@email>
//! <proper@email> <commit@email>
//! Proper Name <proper@email> <commit@email>
//! Proper Name <proper@email> Commit Name <commit@email>
//! ```
//!
//! Emails and names are matched without regard to ASCII case; a later line for the same key
//! replaces an earlier one; lines starting with `#` and lines without an email are skipped.
//!
//! Where a repository's map comes from, in git's order (later sources override earlier ones):
//! the work tree's `.mailmap` (never through a symbolic link), the blob `mailmap.blob` names
//! (`HEAD:.mailmap` by default in a bare repository), then the file `mailmap.file` names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::Entry;
use crate::object::CommitRef;
use crate::odb::{ObjectKind, OdbReader};
use crate::oid::ObjectId;
use crate::repo::Repository;

/// Mailmap sources larger than this are not read (git/git's is 20 KB).
const MAX_MAILMAP_BYTES: u64 = 4 << 20;

/// What a line maps to: either part may be left as the commit has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Replacement {
    name: Option<String>,
    email: Option<String>,
}

/// Everything known for one commit email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ByEmail {
    /// From the lines that name no commit name.
    simple: Replacement,
    /// From the lines that name a commit name too, keyed by that name (ASCII-lowercased).
    by_name: HashMap<String, Replacement>,
}

/// A parsed mailmap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailmap {
    /// Keyed by commit email, ASCII-lowercased.
    entries: HashMap<String, ByEmail>,
    /// Hash of the texts read, in order: two maps read from the same texts are equal, and
    /// answers computed under one map can be cached under it.
    fingerprint: u64,
}

/// Where the user's own git configuration applies: local mode reads it, as `git log` run by the
/// user would; a hosted repository's map comes from the repository alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserConfig {
    /// Read `mailmap.file` and `mailmap.blob` from the system and global config files too.
    Read,
    /// Only the repository's own config file.
    Ignore,
}

impl Mailmap {
    /// Parses mailmap text (one source).
    pub fn parse(text: &[u8]) -> Mailmap {
        let mut m = Mailmap::default();
        m.add(text);
        m
    }

    /// Adds the lines of one more source, which override earlier ones for the same keys.
    pub fn add(&mut self, text: &[u8]) {
        self.fingerprint = fnv(self.fingerprint ^ 0x9e37_79b9_7f4a_7c15, text);
        for line in text.split(|&b| b == b'\n') {
            self.add_line(&String::from_utf8_lossy(line));
        }
    }

    fn add_line(&mut self, line: &str) {
        if line.starts_with('#') {
            return;
        }
        let Some((name1, email1, rest)) = name_and_email(line, false) else {
            return;
        };
        let (name2, email2) = match rest.and_then(|r| name_and_email(r, true)) {
            Some((n, e, _)) => (n, Some(e)),
            None => (None, None),
        };
        // One email: it is the commit's, mapped to `name1`. Two: `email1` replaces `email2`.
        let (new_name, new_email, old_name, old_email) = match email2 {
            None => (name1, None, None, email1),
            Some(e2) => (name1, Some(email1), name2, e2),
        };
        let entry = self
            .entries
            .entry(old_email.to_ascii_lowercase())
            .or_default();
        let replacement = Replacement {
            name: new_name.map(str::to_string),
            email: new_email.map(str::to_string),
        };
        match old_name {
            None => {
                if replacement.name.is_some() {
                    entry.simple.name = replacement.name;
                }
                if replacement.email.is_some() {
                    entry.simple.email = replacement.email;
                }
            }
            Some(old) => {
                entry.by_name.insert(old.to_ascii_lowercase(), replacement);
            }
        }
    }

    /// Whether no line maps anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A hash of the sources read: equal maps have equal fingerprints.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The canonical name and email of someone who committed as `name <email>`.
    pub fn map<'a>(&'a self, name: &'a str, email: &'a str) -> (&'a str, &'a str) {
        let Some(entry) = self.entries.get(&email.to_ascii_lowercase()) else {
            return (name, email);
        };
        let r = entry
            .by_name
            .get(&name.to_ascii_lowercase())
            .unwrap_or(&entry.simple);
        (
            r.name.as_deref().unwrap_or(name),
            r.email.as_deref().unwrap_or(email),
        )
    }

    /// The map `git log` in this repository uses. `head` is the commit HEAD names, for a
    /// repository whose refs are not on disk (a history streamed into memory); `None` reads
    /// HEAD from disk. A missing or unreadable source counts as empty, as it does for git.
    pub fn read(repo: &Repository, head: Option<ObjectId>, user: UserConfig) -> Mailmap {
        let dirs = repo.dirs();
        let mut config: Vec<Entry> = Vec::new();
        if user == UserConfig::Read {
            for file in crate::config::user_files() {
                config.extend(crate::config::read(&file).unwrap_or_default());
            }
        }
        config.extend(crate::config::read(&dirs.common_dir.join("config")).unwrap_or_default());
        let last = |key: &str| {
            crate::config::last(&config, "mailmap", None, key).and_then(|e| e.value.clone())
        };
        let mut map = Mailmap::default();
        if let Some(work_tree) = &dirs.work_tree
            && let Some(text) = read_file(&work_tree.join(".mailmap"), false)
        {
            map.add(&text);
        }
        let blob = last("blob").or_else(|| dirs.is_bare().then(|| "HEAD:.mailmap".to_string()));
        if let Some(spec) = blob.filter(|s| !s.is_empty()) {
            let mut reader = repo.odb().reader();
            if let Some(text) = read_blob_spec(repo, &mut reader, &spec, head) {
                map.add(&text);
            }
        }
        if let Some(file) = last("file").filter(|f| !f.is_empty()) {
            let base = dirs.work_tree.as_deref().unwrap_or(&dirs.git_dir);
            if let Some(text) = read_file(&expand(&file, base), true) {
                map.add(&text);
            }
        }
        map
    }
}

/// `Name <email> rest`: the trimmed name (if any), the email, and what follows the `>` (if
/// anything). An empty email is accepted only where `allow_empty_email` says so.
fn name_and_email(s: &str, allow_empty_email: bool) -> Option<(Option<&str>, &str, Option<&str>)> {
    let left = s.find('<')?;
    let right = left + 1 + s[left + 1..].find('>')?;
    if !allow_empty_email && right == left + 1 {
        return None;
    }
    // C's isspace, as git trims: space, \t, \n, \v, \f, \r.
    let name = s[..left].trim_matches(|c: char| matches!(c, ' ' | '\t'..='\r'));
    let rest = &s[right + 1..];
    Some((
        (!name.is_empty()).then_some(name),
        &s[left + 1..right],
        (!rest.is_empty()).then_some(rest),
    ))
}

/// A file's bytes, unless it is missing, too large, or (where `follow` is false) a symbolic link.
fn read_file(path: &Path, follow: bool) -> Option<Vec<u8>> {
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .ok()?;
    if !meta.is_file() || meta.len() > MAX_MAILMAP_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

/// `~/x` under the home directory; a relative path under `base` (where git would run).
fn expand(file: &str, base: &Path) -> PathBuf {
    if let Some(rest) = file.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest);
    }
    base.join(file)
}

/// The blob a `mailmap.blob` value names: `REV:PATH` (REV being `HEAD`, a ref, or a full id) or
/// a blob id.
fn read_blob_spec(
    repo: &Repository,
    reader: &mut OdbReader<'_>,
    spec: &str,
    head: Option<ObjectId>,
) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let blob = match spec.split_once(':') {
        Some((rev, path)) => {
            let commit = resolve_rev(repo, rev, head)?;
            let (commit, _) = repo.peel(reader, commit, &mut buf).ok()?;
            reader
                .read_kind(&commit, ObjectKind::Commit, &mut buf)
                .ok()?;
            let tree = CommitRef::parse(&buf).ok()?.tree;
            crate::repo::blob_at(reader, tree, path)?
        }
        None => ObjectId::from_hex(spec.as_bytes())?,
    };
    let (kind, size) = reader.read_header(&blob).ok()?;
    if kind != ObjectKind::Blob || size > MAX_MAILMAP_BYTES {
        return None;
    }
    reader.read_kind(&blob, ObjectKind::Blob, &mut buf).ok()?;
    Some(buf)
}

fn resolve_rev(repo: &Repository, rev: &str, head: Option<ObjectId>) -> Option<ObjectId> {
    if let Some(id) = ObjectId::from_hex(rev.as_bytes()) {
        return Some(id);
    }
    if rev == "HEAD" || rev.is_empty() {
        return head.or_else(|| repo.refs().head.and_then(|h| h.target()));
    }
    let refs = repo.refs();
    ["", "refs/", "refs/tags/", "refs/heads/", "refs/remotes/"]
        .iter()
        .find_map(|prefix| refs.get(&format!("{prefix}{rev}")))
        .map(|r| r.target)
}

/// FNV-1a over `bytes`, continuing from `seed`.
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_forms_and_case_insensitive_keys() {
        let m = Mailmap::parse(
            b"# comment\n\
              Proper One <ONE@example.com>\n\
              <two@proper> <two@old>\n\
              Proper Three <three@proper> <three@old>\n\
              Proper Four <four@proper> Old Four <four@old>\n\
              <> <nothing@x>\n\
              Nobody\n",
        );
        assert_eq!(
            m.map("x", "one@Example.com"),
            ("Proper One", "one@Example.com")
        );
        assert_eq!(m.map("Two", "two@old"), ("Two", "two@proper"));
        assert_eq!(
            m.map("Three", "THREE@old"),
            ("Proper Three", "three@proper")
        );
        assert_eq!(
            m.map("old four", "four@old"),
            ("Proper Four", "four@proper")
        );
        // The email is known only with another name: nothing maps.
        assert_eq!(m.map("Someone", "four@old"), ("Someone", "four@old"));
        // An empty first email makes the line invalid.
        assert_eq!(m.map("n", "nothing@x"), ("n", "nothing@x"));
        assert_eq!(m.map("u", "u@x"), ("u", "u@x"));
    }

    #[test]
    fn later_lines_override_and_fingerprints_follow_the_text() {
        let m = Mailmap::parse(b"A <a@x>\nB <a@x>\n");
        assert_eq!(m.map("z", "a@x").0, "B");
        assert_eq!(
            m.fingerprint(),
            Mailmap::parse(b"A <a@x>\nB <a@x>\n").fingerprint()
        );
        assert_ne!(m.fingerprint(), Mailmap::parse(b"A <a@x>\n").fingerprint());
    }
}
