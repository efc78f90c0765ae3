//! Tree objects.

use super::{ParseError, malformed};
use crate::oid::{HashKind, ObjectId};

/// What a tree entry is, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryMode {
    /// A regular file (`100644`, and the historical `100664`).
    Blob,
    /// An executable file (`100755`).
    Executable,
    /// A symbolic link (`120000`).
    Symlink,
    /// A subdirectory (`40000`, also written zero-padded as `040000`).
    Tree,
    /// A submodule commit (`160000`).
    Gitlink,
}

impl EntryMode {
    /// Maps an octal mode the way git does: by its file-type bits.
    pub fn from_octal(mode: u32) -> Option<Self> {
        match mode & 0o170000 {
            0o040000 => Some(EntryMode::Tree),
            0o120000 => Some(EntryMode::Symlink),
            0o160000 => Some(EntryMode::Gitlink),
            0o100000 if mode & 0o111 != 0 => Some(EntryMode::Executable),
            0o100000 => Some(EntryMode::Blob),
            _ => None,
        }
    }

    /// The canonical octal mode git prints (`git ls-tree`, `git diff-tree`).
    pub fn as_octal(self) -> u32 {
        match self {
            EntryMode::Blob => 0o100644,
            EntryMode::Executable => 0o100755,
            EntryMode::Symlink => 0o120000,
            EntryMode::Tree => 0o040000,
            EntryMode::Gitlink => 0o160000,
        }
    }

    /// Whether the entry's object is a blob (file or symlink).
    pub fn is_blob(self) -> bool {
        matches!(
            self,
            EntryMode::Blob | EntryMode::Executable | EntryMode::Symlink
        )
    }
}

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry<'a> {
    /// Its kind.
    pub mode: EntryMode,
    /// Its name (bytes: not necessarily UTF-8).
    pub name: &'a [u8],
    /// The object it names.
    pub id: ObjectId,
}

/// Iterates over a tree's entries; yields an error (once) on malformed data.
#[derive(Debug, Clone)]
pub struct TreeIter<'a> {
    data: &'a [u8],
    pos: usize,
    /// The hash of the entries' ids.
    hash: HashKind,
}

impl<'a> TreeIter<'a> {
    /// Starts iterating over the bytes of a tree object whose ids are of `hash`.
    pub fn new(data: &'a [u8], hash: HashKind) -> Self {
        TreeIter { data, pos: 0, hash }
    }
}

impl<'a> Iterator for TreeIter<'a> {
    type Item = Result<TreeEntry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.data[start..];
        let fail = |this: &mut Self, what| {
            this.pos = this.data.len();
            Some(Err(malformed(what, start)))
        };
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            return fail(self, "tree entry has no mode");
        };
        let mode_text = &rest[..space];
        if mode_text.is_empty()
            || mode_text.len() > 7
            || !mode_text.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            return fail(self, "tree entry mode is not octal");
        }
        let mode = mode_text
            .iter()
            .fold(0u32, |m, &d| m * 8 + u32::from(d - b'0'));
        let Some(mode) = EntryMode::from_octal(mode) else {
            return fail(self, "tree entry has an unknown mode");
        };
        let after = &rest[space + 1..];
        let Some(nul) = after.iter().position(|&b| b == 0) else {
            return fail(self, "tree entry name is not terminated");
        };
        let name = &after[..nul];
        let Some(id) = after
            .get(nul + 1..)
            .and_then(|raw| ObjectId::from_raw(self.hash, raw))
        else {
            return fail(self, "tree entry id is truncated");
        };
        self.pos = start + space + 1 + nul + 1 + self.hash.id_len();
        Some(Ok(TreeEntry { mode, name, id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padded_modes_and_truncation() {
        let mut data = b"040000 dir\0".to_vec();
        data.extend_from_slice(&[1; 20]);
        data.extend_from_slice(b"160000 sub\0");
        data.extend_from_slice(&[2; 20]);
        let entries: Vec<_> = TreeIter::new(&data, HashKind::Sha1)
            .collect::<Result<_, _>>()
            .expect("parses");
        assert_eq!(entries[0].mode, EntryMode::Tree);
        assert_eq!(entries[1].mode, EntryMode::Gitlink);
        let cut = &data[..data.len() - 3];
        assert!(TreeIter::new(cut, HashKind::Sha1).any(|e| e.is_err()));
    }
}
