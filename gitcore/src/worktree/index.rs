//! The index (`.git/index`, "DIRC"), versions 2, 3 and 4.
//!
//! Only what status needs is kept: per entry the stat data, mode, id, stage, flags and path.
//! Extensions are skipped (a sparse index's directory entries are kept as tree-mode entries).
//! The trailing SHA-1 is checked; any inconsistency is an [`IndexError`] naming the offset.

use std::path::{Path, PathBuf};

use crate::ObjectId;
use crate::oid::HashKind;

/// Why an index file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The index file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid index.
    #[error("{path} at offset {offset}: {reason}")]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// Where the problem was found.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
}

/// One index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Change time (seconds, nanoseconds).
    pub ctime: (u32, u32),
    /// Modification time (seconds, nanoseconds).
    pub mtime: (u32, u32),
    /// Device.
    pub dev: u32,
    /// Inode.
    pub ino: u32,
    /// Mode bits as git stores them (0o100644, 0o100755, 0o120000, 0o160000, 0o040000).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// File size, truncated to 32 bits.
    pub size: u32,
    /// The staged blob (or commit, for a gitlink).
    pub id: ObjectId,
    /// Merge stage: 0 normally, 1-3 for the sides of a conflict.
    pub stage: u8,
    /// `git update-index --assume-unchanged`.
    pub assume_valid: bool,
    /// `git add -N`: the path is known but nothing is staged.
    pub intent_to_add: bool,
    /// Sparse checkout: the file is not in the work tree.
    pub skip_worktree: bool,
    /// Slash-separated path from the top of the work tree.
    pub path: Vec<u8>,
}

/// A parsed index.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Format version (2, 3 or 4).
    pub version: u32,
    /// Entries sorted by path, then stage.
    pub entries: Vec<IndexEntry>,
    /// Modification time of the index file itself (for git's racy-clean rule).
    pub mtime: Option<std::time::SystemTime>,
}

/// Most entries accepted (a bound against a hostile count; the Linux kernel has ~90k).
const MAX_ENTRIES: u32 = 10_000_000;

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Cursor<'_> {
    fn corrupt(&self, reason: impl Into<String>) -> IndexError {
        IndexError::Corrupt {
            path: self.path.to_path_buf(),
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], IndexError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.corrupt("truncated"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u16(&mut self) -> Result<u16, IndexError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A v4 varint (git's offset encoding).
    fn varint(&mut self) -> Result<usize, IndexError> {
        let mut b = self.take(1)?[0];
        let mut v = usize::from(b & 0x7f);
        while b & 0x80 != 0 {
            b = self.take(1)?[0];
            v = v
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .map(|v| v | usize::from(b & 0x7f))
                .ok_or_else(|| self.corrupt("path prefix length overflows"))?;
        }
        Ok(v)
    }
}

impl Index {
    /// Reads the index at `path` of a repository of `hash`; a missing file is an empty index (a
    /// fresh repository).
    pub fn read(path: &Path, hash: HashKind) -> Result<Index, IndexError> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(source) => {
                return Err(IndexError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut index = Index::parse(&data, path, hash)?;
        index.mtime = mtime;
        Ok(index)
    }

    /// Parses index bytes of a repository of `hash` (the length of the ids and the checksum);
    /// `path` names the file in errors.
    pub fn parse(data: &[u8], path: &Path, hash: HashKind) -> Result<Index, IndexError> {
        if data.len() < 12 + hash.id_len() {
            return Err(Cursor { data, pos: 0, path }.corrupt("shorter than a header and checksum"));
        }
        let (body, sum) = data.split_at(data.len() - hash.id_len());
        // The cursor sees the body only: no field, path or padding can reach into the checksum.
        let mut c = Cursor {
            data: body,
            pos: 0,
            path,
        };
        if hash.digest(body).as_bytes() != sum {
            c.pos = body.len();
            return Err(c.corrupt("checksum mismatch"));
        }
        if c.take(4)? != b"DIRC" {
            return Err(c.corrupt("not an index (no DIRC signature)"));
        }
        let version = c.u32()?;
        if !(2..=4).contains(&version) {
            return Err(c.corrupt(format!("unsupported index version {version}")));
        }
        let count = c.u32()?;
        if count > MAX_ENTRIES || count as usize > body.len() / 62 {
            return Err(c.corrupt(format!("{count} entries cannot fit")));
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut previous: Vec<u8> = Vec::new();
        for _ in 0..count {
            let start = c.pos;
            let ctime = (c.u32()?, c.u32()?);
            let mtime = (c.u32()?, c.u32()?);
            let dev = c.u32()?;
            let ino = c.u32()?;
            let mode = c.u32()?;
            let uid = c.u32()?;
            let gid = c.u32()?;
            let size = c.u32()?;
            let id = ObjectId::from_raw(hash, c.take(hash.id_len())?)
                .ok_or_else(|| c.corrupt("bad id"))?;
            let flags = c.u16()?;
            let extended = flags & 0x4000 != 0;
            if extended && version < 3 {
                return Err(c.corrupt("extended flags in a version 2 index"));
            }
            let ext = if extended { c.u16()? } else { 0 };
            let path = if version == 4 {
                let strip = c.varint()?;
                if strip > previous.len() {
                    return Err(c.corrupt("path prefix longer than the previous path"));
                }
                let rest = &c.data[c.pos..];
                let nul = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| c.corrupt("unterminated path"))?;
                let mut p = previous[..previous.len() - strip].to_vec();
                p.extend_from_slice(&rest[..nul]);
                c.pos += nul + 1;
                p
            } else {
                let rest = &c.data[c.pos..];
                let nul = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| c.corrupt("unterminated path"))?;
                let p = rest[..nul].to_vec();
                // Entries are padded with 1-8 NULs to a multiple of 8 bytes.
                let len = c.pos - start + nul;
                let padded = (len + 8) & !7;
                c.pos = start + padded;
                if c.pos > body.len() {
                    return Err(c.corrupt("entry runs past the end"));
                }
                p
            };
            // A sparse index's directory entries end with '/'.
            let check = path.strip_suffix(b"/").unwrap_or(&path);
            if check.is_empty()
                || check.split(|&b| b == b'/').any(|s| {
                    s.is_empty() || s == b"." || s == b".." || s.eq_ignore_ascii_case(b".git")
                })
            {
                return Err(c.corrupt(format!("unsafe path {:?}", String::from_utf8_lossy(&path))));
            }
            previous.clone_from(&path);
            entries.push(IndexEntry {
                ctime,
                mtime,
                dev,
                ino,
                mode,
                uid,
                gid,
                size,
                id,
                stage: ((flags >> 12) & 3) as u8,
                assume_valid: flags & 0x8000 != 0,
                intent_to_add: ext & 0x2000 != 0,
                skip_worktree: ext & 0x4000 != 0,
                path,
            });
        }
        Ok(Index {
            version,
            entries,
            mtime: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_with_offsets() {
        let p = Path::new("index");
        assert!(matches!(
            Index::parse(b"short", p, HashKind::Sha1),
            Err(IndexError::Corrupt { offset: 0, .. })
        ));
        let mut data = b"DIRC\0\0\0\x02\xff\xff\xff\xff".to_vec();
        let sum = HashKind::Sha1.digest(&data);
        data.extend_from_slice(sum.as_bytes());
        let err = Index::parse(&data, p, HashKind::Sha1).expect_err("count too large");
        assert!(err.to_string().contains("entries cannot fit"), "{err}");
        let mut bad = data.clone();
        bad[5] ^= 1;
        assert!(
            Index::parse(&bad, p, HashKind::Sha1)
                .expect_err("checksum")
                .to_string()
                .contains("checksum")
        );
    }

    /// An index with a valid checksum whose one entry is cut short, so that its fields would be
    /// read from the checksum bytes.
    fn entry_cut_at(version: u32, keep: usize) -> Vec<u8> {
        let mut data = b"DIRC".to_vec();
        data.extend(version.to_be_bytes());
        data.extend(1u32.to_be_bytes());
        let mut entry = vec![0u8; 40];
        entry.extend([0x11; 20]);
        entry.extend(4u16.to_be_bytes());
        entry.extend(b"file\0\0\0\0");
        entry.truncate(keep);
        data.extend(entry);
        // Pad just enough for the count check (62 bytes an entry) to pass, so the entry's
        // fields end past the body, inside the checksum.
        while data.len() < 62 {
            data.push(0);
        }
        let sum = HashKind::Sha1.digest(&data);
        data.extend_from_slice(sum.as_bytes());
        data
    }

    #[test]
    fn an_entry_cut_short_is_corrupt_not_a_panic() {
        // Regression: the path slice started past the body's end and panicked.
        let p = Path::new("index");
        for version in [2, 3, 4] {
            for keep in 0..72 {
                let data = entry_cut_at(version, keep);
                // Anything but a panic; a cut entry can never be a whole index.
                if let Ok(index) = Index::parse(&data, p, HashKind::Sha1) {
                    assert!(index.entries.iter().all(|e| !e.path.is_empty()));
                }
            }
        }
        let err = Index::parse(&entry_cut_at(2, 50), p, HashKind::Sha1)
            .expect_err("fields run into the checksum");
        assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    }
}
