//! Pieces shared by git's indexed binary files (`.idx`, `multi-pack-index`, `commit-graph`):
//! big-endian fields, the chunk table of the chunk-based formats, and fan-out tables over sorted
//! object ids. Errors are (byte offset, reason); each file type adds its path.

use std::ops::Range;

use crate::oid::{HashKind, ObjectId};

/// A problem at a byte offset.
pub(crate) type Problem = (usize, String);

/// A chunk: its four-byte id and byte range.
pub(crate) type Chunk = ([u8; 4], Range<usize>);

/// Checks the hash version byte (offset 5) that `commit-graph` and `multi-pack-index` headers
/// share against the repository's hash (the caller checked the header is there).
pub(crate) fn check_hash_version(b: &[u8], hash: HashKind) -> Result<(), Problem> {
    if b[5] == hash.file_version() {
        return Ok(());
    }
    Err((
        5,
        format!(
            "hash version {} is not the repository's ({} for {})",
            b[5],
            hash.file_version(),
            hash.name()
        ),
    ))
}

/// A big-endian u32 at `at` (0 when out of range; callers validate sizes first).
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// A big-endian u64 at `at`.
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

/// The chunks of a chunk table of `count` entries at `at` (plus its terminating entry), each as
/// (id, byte range), checked to lie between the table's end and `data_end`.
pub(crate) fn chunk_table(
    b: &[u8],
    at: usize,
    count: usize,
    data_end: usize,
) -> Result<Vec<Chunk>, Problem> {
    let table_end = at + (count + 1) * 12;
    if table_end > data_end {
        return Err((at, "chunk table is truncated".into()));
    }
    (0..count)
        .map(|i| {
            let e = at + i * 12;
            let id = [b[e], b[e + 1], b[e + 2], b[e + 3]];
            let start = be64(b, e + 4);
            let end = be64(b, e + 16);
            if start > end || end > data_end as u64 || start < table_end as u64 {
                return Err((e, "chunk offset out of range".to_string()));
            }
            Ok((id, start as usize..end as usize))
        })
        .collect()
}

/// The range of chunk `id`, or an error naming it.
pub(crate) fn require(chunks: &[Chunk], id: &[u8; 4], at: usize) -> Result<Range<usize>, Problem> {
    find(chunks, id).ok_or_else(|| (at, format!("missing {} chunk", String::from_utf8_lossy(id))))
}

/// The range of chunk `id`, if present.
pub(crate) fn find(chunks: &[Chunk], id: &[u8; 4]) -> Option<Range<usize>> {
    chunks.iter().find(|c| &c.0 == id).map(|c| c.1.clone())
}

/// Checks that the 256-entry fan-out table at `at` never decreases; returns the object count.
pub(crate) fn validate_fanout(b: &[u8], at: usize) -> Result<u32, Problem> {
    if b.len() < at + 1024 {
        return Err((at, "fan-out table is truncated".into()));
    }
    let mut prev = 0;
    for i in 0..256 {
        let n = be32(b, at + i * 4);
        if n < prev {
            return Err((at + i * 4, "fan-out table is not monotonic".into()));
        }
        prev = n;
    }
    Ok(prev)
}

/// Binary search for `id` among `count` sorted ids: the fan-out at `fanout`, the `k`th id at
/// `first + k * stride`.
pub(crate) fn fanout_search(
    b: &[u8],
    fanout: usize,
    first: usize,
    stride: usize,
    count: u32,
    id: &ObjectId,
) -> Option<u32> {
    let byte = usize::from(id.first_byte());
    let mut lo = if byte == 0 {
        0
    } else {
        be32(b, fanout + (byte - 1) * 4)
    };
    let mut hi = be32(b, fanout + byte * 4).min(count);
    let target = id.as_bytes();
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at = first + mid as usize * stride;
        match b.get(at..at + target.len())?.cmp(target) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}
