//! reftable refs (`extensions.refStorage = reftable`): the stack `reftable/tables.list` names,
//! oldest table first, each a sorted file of ref blocks (prefix-compressed records between
//! restart points, padded to the block size) and deflated log blocks (the reflogs), closed by a
//! footer with a CRC. A newer table's record of a name shadows an older one's, and a deletion
//! record removes it; the same holds for a reflog entry, keyed by name and update index.
//!
//! Every length and offset in a table is checked before use: a hostile table is a
//! [`TableError`], never a panic or an allocation past its own size (a log block inflates to
//! at most the 16 MiB its 3-byte length can say).

use std::collections::BTreeMap;
use std::path::Path;

use crate::oid::{HashKind, ObjectId};

/// Why a table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Too short for a header and a footer, or without the `REFT` magic.
    #[error("not a reftable")]
    NotATable,
    /// A version other than 1 and 2.
    #[error("reftable version {0} is not 1 or 2")]
    Version(u8),
    /// Version 2 naming a hash git does not know.
    #[error("reftable hash id {0:#010x} is unknown")]
    UnknownHash(u32),
    /// The footer does not repeat the header, or its CRC does not match.
    #[error("reftable footer is damaged")]
    Footer,
    /// A block or record runs past its bounds or holds what the format does not allow.
    #[error("reftable {what} at byte {at} is malformed")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Where (from the start of the file, or of the inflated log block).
        at: usize,
    },
}

/// What a ref record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefValue {
    /// The name is deleted (shadows older tables).
    Deleted,
    /// An object id, and what it peels to when the writer knew it was a tag.
    Direct(ObjectId, Option<ObjectId>),
    /// A symbolic ref to another name.
    Symbolic(String),
}

/// What a log record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogValue {
    /// The entry is deleted (shadows older tables).
    Deleted,
    /// A ref update: the new value and its message (without a trailing newline).
    Update {
        /// The value after the update.
        new: ObjectId,
        /// The reflog message.
        message: String,
    },
}

/// The records of one table, in file order (sorted by name; logs newest first per name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Ref records: name and value.
    pub refs: Vec<(String, RefValue)>,
    /// Log records: ref name, update index, value.
    pub logs: Vec<(String, u64, LogValue)>,
}

/// The merged view of a stack: live refs by name, and reflog entries by name and update index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    /// Every ref the stack holds (deletions applied), sorted by name, including `HEAD` and
    /// pseudo-refs.
    pub refs: Vec<(String, RefValue)>,
    /// Reflog entries (deletions applied) by name, then update index.
    pub logs: BTreeMap<(String, u64), (ObjectId, String)>,
}

impl Stack {
    /// The value of ref `name`.
    pub fn get(&self, name: &str) -> Option<&RefValue> {
        self.refs
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.refs[i].1)
    }

    /// `name`'s reflog, newest first: (new value, message).
    pub fn reflog(&self, name: &str) -> Vec<(ObjectId, String)> {
        let mut out: Vec<_> = self
            .logs
            .range((name.to_string(), 0)..=(name.to_string(), u64::MAX))
            .map(|(_, v)| v.clone())
            .collect();
        out.reverse();
        out
    }
}

/// Reads the stack in `dir` (a `reftable` directory) with the reflog of `reflog` alone (the
/// stash's is the only one shown); `None` when it has no `tables.list`.
/// A table removed by a concurrent compaction between reading the list and the table makes the
/// whole list be read again, as git does. A table that cannot be read is reported in
/// `problems` and left out.
pub fn read_stack(dir: &Path, reflog: &str, problems: &mut Vec<String>) -> Option<Stack> {
    for _ in 0..5 {
        let list = match std::fs::read(dir.join("tables.list")) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                problems.push(format!("{}: {e}", dir.join("tables.list").display()));
                return None;
            }
        };
        let mut tables = Vec::new();
        let mut found = Vec::new();
        let mut raced = false;
        for name in list.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let path = match std::str::from_utf8(name) {
                Ok(n) if is_table_name(n) => dir.join(n),
                _ => {
                    found.push(format!(
                        "{}: bad table name {:?}",
                        dir.join("tables.list").display(),
                        String::from_utf8_lossy(name)
                    ));
                    continue;
                }
            };
            match std::fs::read(&path) {
                Ok(bytes) => match parse_table_logs(&bytes, Some(reflog)) {
                    Ok(table) => tables.push(table),
                    Err(e) => found.push(format!("{}: {e}", path.display())),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    raced = true;
                    break;
                }
                Err(e) => found.push(format!("{}: {e}", path.display())),
            }
        }
        if !raced {
            problems.extend(found);
            return Some(Stack::of(tables));
        }
    }
    problems.push(format!(
        "{}: the stack kept changing while it was read",
        dir.display()
    ));
    None
}

/// Whether `name` is a plain file name of the stack: one safe component (no `/`, no `..`).
fn is_table_name(name: &str) -> bool {
    super::is_safe_ref_name(name) && !name.contains('/')
}

impl Stack {
    /// The stack of `tables`, oldest first: the newest record of each name wins and
    /// deletions are dropped. Each table is sorted, so the concatenation is a few sorted runs,
    /// which a stable sort merges in O(n log tables), keeping table order among equal names.
    fn of(tables: Vec<Table>) -> Stack {
        let mut stack = Stack::default();
        let many = tables.len() > 1;
        for table in tables {
            stack.refs.extend(table.refs);
            stack.add_logs(table.logs);
        }
        if many {
            stack.refs.sort_by(|a, b| a.0.cmp(&b.0));
            // The last of equal names is the newest.
            let mut merged: Vec<(String, RefValue)> = Vec::with_capacity(stack.refs.len());
            for (name, value) in stack.refs.drain(..) {
                match merged.last_mut() {
                    Some(last) if last.0 == name => last.1 = value,
                    _ => merged.push((name, value)),
                }
            }
            stack.refs = merged;
        }
        stack.refs.retain(|(_, v)| *v != RefValue::Deleted);
        stack
    }

    /// Lays the log records of a table newer than every one added so far over the stack's.
    fn add_logs(&mut self, logs: Vec<(String, u64, LogValue)>) {
        for (name, index, value) in logs {
            match value {
                LogValue::Deleted => {
                    self.logs.remove(&(name, index));
                }
                LogValue::Update { new, message } => {
                    self.logs.insert((name, index), (new, message));
                }
            }
        }
    }
}

const SHA1_ID: u32 = u32::from_be_bytes(*b"sha1");
const SHA256_ID: u32 = u32::from_be_bytes(*b"s256");

/// Parses one table file, with every reflog entry.
pub fn parse_table(b: &[u8]) -> Result<Table, TableError> {
    parse_table_logs(b, None)
}

/// Parses one table file, keeping the reflog of `only` (every reflog when `None`); log records
/// are sorted by name, so reading stops past it.
fn parse_table_logs(b: &[u8], only: Option<&str>) -> Result<Table, TableError> {
    if b.len() < 24 || &b[..4] != b"REFT" {
        return Err(TableError::NotATable);
    }
    let version = b[4];
    let (header, footer) = match version {
        1 => (24, 68),
        2 => (28, 72),
        v => return Err(TableError::Version(v)),
    };
    if b.len() < header + footer {
        return Err(TableError::NotATable);
    }
    // Version 1 is SHA-1 only; version 2 names its hash.
    let hash = match (version == 2).then(|| be(&b[24..28]) as u32) {
        None | Some(SHA1_ID) => HashKind::Sha1,
        Some(SHA256_ID) => HashKind::Sha256,
        Some(other) => return Err(TableError::UnknownHash(other)),
    };
    let block_size = be(&b[5..8]) as usize;
    let data_end = b.len() - footer;
    let f = &b[data_end..];
    if f[..header] != b[..header] {
        return Err(TableError::Footer);
    }
    let mut crc = flate2::Crc::new();
    crc.update(&f[..footer - 4]);
    if crc.sum() != be(&f[footer - 4..]) as u32 {
        return Err(TableError::Footer);
    }
    let field = |i: usize| be(&f[header + 8 * i..header + 8 * i + 8]);
    let offset = |v: u64| usize::try_from(v).ok().filter(|&o| o <= data_end);
    let bad = |what, at| TableError::Malformed { what, at };
    let (ref_index, obj, log) = (field(0), field(1) >> 5, field(3));
    let ref_index = offset(ref_index).ok_or(bad("footer", data_end))?;
    let obj = offset(obj).ok_or(bad("footer", data_end))?;
    let log = offset(log).ok_or(bad("footer", data_end))?;
    // The ref blocks end where the next section begins.
    let refs_end = [ref_index, obj, log]
        .into_iter()
        .filter(|&o| o > 0)
        .min()
        .unwrap_or(data_end);
    let mut table = Table::default();
    read_ref_blocks(b, header, block_size, refs_end, hash, &mut table)?;
    if log > 0 {
        read_log_blocks(b, log, data_end, only, hash, &mut table)?;
    }
    Ok(table)
}

/// Reads the ref blocks from the start of the file to `end`.
fn read_ref_blocks(
    b: &[u8],
    header: usize,
    block_size: usize,
    end: usize,
    hash: HashKind,
    table: &mut Table,
) -> Result<(), TableError> {
    let mut pos = 0;
    while pos < end {
        // The first block shares its start with the file header.
        let at = if pos == 0 { header } else { pos };
        if at + 4 > end || b[at] != b'r' {
            break;
        }
        let block_end = pos + be(&b[at + 1..at + 4]) as usize;
        if block_end > end || block_end < at + 6 {
            return Err(TableError::Malformed {
                what: "ref block",
                at,
            });
        }
        let block = &b[..block_end];
        let records = restarts_start(block, at + 4)?;
        let mut r = Reader {
            b: block,
            pos: at + 4,
            hash,
        };
        let mut name = Vec::new();
        while r.pos < records {
            let kind = r.key(&mut name)?;
            r.varint()?; // the update index, less the table's least
            let value = match kind {
                0 => RefValue::Deleted,
                1 => RefValue::Direct(r.oid()?, None),
                2 => RefValue::Direct(r.oid()?, Some(r.oid()?)),
                3 => {
                    let len = r.varint()?;
                    let target = r.bytes(len)?;
                    RefValue::Symbolic(String::from_utf8_lossy(target).into_owned())
                }
                _ => return Err(r.bad("ref record")),
            };
            let name = String::from_utf8(name.clone()).map_err(|_| r.bad("ref name"))?;
            // Names ascend through the whole table (a stack is merged on that).
            if table.refs.last().is_some_and(|(last, _)| *last >= name) {
                return Err(r.bad("ref order"));
            }
            table.refs.push((name, value));
        }
        if r.pos != records {
            return Err(r.bad("ref block"));
        }
        pos = block_end;
        // Padding up to the next block boundary.
        if block_size > 0 && pos < end && b[pos] == 0 {
            pos = pos.div_ceil(block_size) * block_size;
        }
    }
    Ok(())
}

/// Reads the deflated log blocks from `start` up to `end` (the footer).
fn read_log_blocks(
    b: &[u8],
    start: usize,
    end: usize,
    only: Option<&str>,
    hash: HashKind,
    table: &mut Table,
) -> Result<(), TableError> {
    let mut pos = start;
    let mut inflated = Vec::new();
    let mut inflater = crate::inflate::Inflater::new();
    while pos + 4 <= end && b[pos] == b'g' {
        let len = be(&b[pos + 1..pos + 4]) as usize;
        if len < 6 {
            return Err(TableError::Malformed {
                what: "log block",
                at: pos,
            });
        }
        // Offsets inside count the 4-byte header, which is not deflated.
        let used = inflater
            .inflate_exact(&b[pos + 4..end], len - 4, &mut inflated)
            .map_err(|_| TableError::Malformed {
                what: "log block",
                at: pos,
            })?;
        let mut block = Vec::with_capacity(len);
        block.extend_from_slice(&b[pos..pos + 4]);
        block.extend_from_slice(&inflated);
        let records = restarts_start(&block, 4)?;
        let mut r = Reader {
            b: &block,
            pos: 4,
            hash,
        };
        let mut key = Vec::new();
        while r.pos < records {
            let kind = r.key(&mut key)?;
            // ref name '\0' reverse_int64(update index)
            let split = key.len().checked_sub(9).filter(|&i| key[i] == 0);
            let Some(split) = split else {
                return Err(r.bad("log key"));
            };
            let index = u64::MAX - be(&key[split + 1..]);
            let wanted = only.is_none_or(|o| o.as_bytes() == &key[..split]);
            if only.is_some_and(|o| &key[..split] > o.as_bytes()) {
                return Ok(());
            }
            let value = match kind {
                0 => LogValue::Deleted,
                1 => {
                    let _old = r.oid()?;
                    let new = r.oid()?;
                    let n = r.varint()?;
                    r.bytes(n)?; // name
                    let n = r.varint()?;
                    r.bytes(n)?; // email
                    r.varint()?; // time
                    r.bytes(2)?; // time zone
                    let n = r.varint()?;
                    let message = r.bytes(n)?;
                    if !wanted {
                        continue;
                    }
                    let message = String::from_utf8_lossy(message);
                    LogValue::Update {
                        new,
                        message: message.strip_suffix('\n').unwrap_or(&message).to_string(),
                    }
                }
                _ => return Err(r.bad("log record")),
            };
            if !wanted {
                continue;
            }
            let name = String::from_utf8(key[..split].to_vec()).map_err(|_| r.bad("log key"))?;
            table.logs.push((name, index, value));
        }
        if r.pos != records {
            return Err(r.bad("log block"));
        }
        pos += 4 + used;
    }
    Ok(())
}

/// Where a block's restart table begins: the block ends with `uint24 offset` x count and a
/// `uint16` count, which must leave room for the records from `first`.
fn restarts_start(block: &[u8], first: usize) -> Result<usize, TableError> {
    let n = block.len();
    let count = be(&block[n - 2..]) as usize;
    n.checked_sub(2 + 3 * count)
        .filter(|&s| s >= first && count > 0)
        .ok_or(TableError::Malformed {
            what: "restart table",
            at: n,
        })
}

/// Big-endian integer of up to 8 bytes.
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
}

/// A cursor over one block's records.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// The hash of the table's ids.
    hash: HashKind,
}

impl Reader<'_> {
    fn bad(&self, what: &'static str) -> TableError {
        TableError::Malformed { what, at: self.pos }
    }

    /// git's varint (the pack's offset encoding), at most 64 bits.
    fn varint(&mut self) -> Result<usize, TableError> {
        let mut byte = *self.b.get(self.pos).ok_or(self.bad("varint"))?;
        self.pos += 1;
        let mut v = u64::from(byte & 0x7f);
        while byte & 0x80 != 0 {
            byte = *self.b.get(self.pos).ok_or(self.bad("varint"))?;
            self.pos += 1;
            v = v
                .checked_add(1)
                .filter(|v| v.leading_zeros() >= 7)
                .ok_or(self.bad("varint"))?;
            v = (v << 7) | u64::from(byte & 0x7f);
        }
        usize::try_from(v).map_err(|_| self.bad("varint"))
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], TableError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or(self.bad("record"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn oid(&mut self) -> Result<ObjectId, TableError> {
        let hash = self.hash;
        let bytes = self.bytes(hash.id_len())?;
        ObjectId::from_raw(hash, bytes).ok_or(TableError::Malformed {
            what: "object id",
            at: self.pos,
        })
    }

    /// A prefix-compressed key into `key` (the previous key on entry); answers the record's
    /// 3-bit type.
    fn key(&mut self, key: &mut Vec<u8>) -> Result<u8, TableError> {
        let prefix = self.varint()?;
        let suffix_and_type = self.varint()?;
        if prefix > key.len() {
            return Err(self.bad("key prefix"));
        }
        let suffix = self.bytes(suffix_and_type >> 3)?;
        key.truncate(prefix);
        key.extend_from_slice(suffix);
        Ok((suffix_and_type & 7) as u8)
    }
}
