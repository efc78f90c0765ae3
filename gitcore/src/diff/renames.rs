//! Rename detection as `git diff -M` does it (git's diffcore-rename, without copies or breaks):
//! exact renames first, then files whose basename is unique on both sides at 75% similarity, then
//! every remaining pair up to the rename limit, best scores first.
//!
//! Similarity is git's: both blobs are cut into spans (a line, or 64 bytes when a line is longer;
//! a CR before LF is ignored in text), spans are hashed into 107,927 buckets, and the score is
//! the bytes of the new file whose span also occurs in the old one, over the larger size. Scores
//! are out of [`MAX_SCORE`], as in git, so that ties and thresholds fall where git's do.

use std::collections::HashMap;

use super::{ChangeKind, DiffError, TreeChange, is_binary};
use crate::object::EntryMode;
use crate::odb::{ObjectKind, OdbReader};

/// A perfect score (git's `MAX_SCORE`).
pub const MAX_SCORE: u32 = 60_000;

/// Blobs larger than this are not compared for similarity (they can still be exact renames):
/// reading two of them per candidate pair would cost more than a diff is worth.
pub const MAX_SIMILARITY_BYTES: u64 = 64 << 20;

/// git's bucket count for span hashes: a prime between 2^16 and 2^17.
const HASHBASE: u32 = 107_927;

/// Candidates kept per new file in the full comparison (git's `NUM_CANDIDATE_PER_DST`).
const CANDIDATES: usize = 4;

/// Span hashes of a blob with the bytes each covers, sorted by hash.
fn spans(data: &[u8]) -> Vec<(u32, u32)> {
    let text = !is_binary(data);
    let mut counts: HashMap<u32, u32> = HashMap::new();
    let (mut n, mut a1, mut a2) = (0u32, 0u32, 0u32);
    let mut add = |a1: u32, a2: u32, n: u32| {
        let h = a1.wrapping_add(a2.wrapping_mul(0x61)) % HASHBASE;
        *counts.entry(h).or_insert(0) += n;
    };
    for (i, &byte) in data.iter().enumerate() {
        if text && byte == b'\r' && data.get(i + 1) == Some(&b'\n') {
            continue;
        }
        let c = u32::from(byte);
        let old1 = a1;
        a1 = (a1 << 7) ^ (a2 >> 25);
        a2 = (a2 << 7) ^ (old1 >> 25);
        a1 = a1.wrapping_add(c);
        n += 1;
        if n < 64 && byte != b'\n' {
            continue;
        }
        add(a1, a2, n);
        (n, a1, a2) = (0, 0, 0);
    }
    if n > 0 {
        add(a1, a2, n);
    }
    let mut v: Vec<(u32, u32)> = counts.into_iter().collect();
    v.sort_unstable();
    v
}

/// Bytes of `dst` whose span also occurs in `src` (as often), git's `src_copied`.
fn copied(src: &[(u32, u32)], dst: &[(u32, u32)]) -> u64 {
    let (mut i, mut j, mut total) = (0, 0, 0u64);
    while i < src.len() && j < dst.len() {
        match src[i].0.cmp(&dst[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                total += u64::from(src[i].1.min(dst[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    total
}

/// A path's file name (after the last `/`).
fn basename(p: &[u8]) -> &[u8] {
    p.rsplit(|&c| c == b'/').next().unwrap_or(p)
}

/// Whether two paths end in the same file name (git's `basename_same`).
fn basename_same(a: &[u8], b: &[u8]) -> bool {
    basename(a) == basename(b)
}

/// The side of change `i` that rename detection compares: the old one of a deletion, the new
/// one of an addition.
fn side(changes: &[TreeChange], i: usize) -> &super::ChangeSide {
    let c = &changes[i];
    c.old
        .as_ref()
        .or(c.new.as_ref())
        .expect("a change has a side")
}

fn is_regular(mode: EntryMode) -> bool {
    matches!(mode, EntryMode::Blob | EntryMode::Executable)
}

/// One side's blob as rename detection needs it: its size, then its spans, each read once.
#[derive(Default)]
struct Blob {
    size: Option<u64>,
    spans: Option<Vec<(u32, u32)>>,
}

/// The blobs of the added and deleted entries, read on first use.
struct Blobs<'a, 'r> {
    reader: &'a mut OdbReader<'r>,
    buf: Vec<u8>,
    cache: HashMap<crate::oid::ObjectId, Blob>,
}

impl Blobs<'_, '_> {
    fn size(&mut self, id: &crate::oid::ObjectId) -> Result<u64, DiffError> {
        if let Some(size) = self.cache.get(id).and_then(|b| b.size) {
            return Ok(size);
        }
        let (_, size) = self.reader.read_header(id)?;
        self.cache.entry(*id).or_default().size = Some(size);
        Ok(size)
    }

    fn spans(&mut self, id: &crate::oid::ObjectId) -> Result<&[(u32, u32)], DiffError> {
        if self.cache.get(id).is_none_or(|b| b.spans.is_none()) {
            self.reader.read_kind(id, ObjectKind::Blob, &mut self.buf)?;
            let s = spans(&self.buf);
            self.cache.entry(*id).or_default().spans = Some(s);
        }
        Ok(self.cache[id].spans.as_deref().unwrap_or_default())
    }

    /// git's `estimate_similarity`: 0 for anything but two regular files, for sizes too far
    /// apart to reach `minimum`, and for blobs past [`MAX_SIMILARITY_BYTES`].
    fn similarity(
        &mut self,
        src: &super::ChangeSide,
        dst: &super::ChangeSide,
        minimum: u32,
    ) -> Result<u32, DiffError> {
        if !is_regular(src.mode) || !is_regular(dst.mode) {
            return Ok(0);
        }
        let (a, b) = (self.size(&src.id)?, self.size(&dst.id)?);
        let (max, base) = (a.max(b), a.min(b));
        if max * u64::from(MAX_SCORE - minimum) < (max - base) * u64::from(MAX_SCORE)
            || max > MAX_SIMILARITY_BYTES
            || b == 0
        {
            return Ok(0);
        }
        let s = self.spans(&src.id)?.to_vec();
        let d = self.spans(&dst.id)?;
        Ok((copied(&s, d) * u64::from(MAX_SCORE) / max) as u32)
    }
}

/// Rename detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenameOptions {
    /// Least similarity of a rename, out of [`MAX_SCORE`] (git's default `-M`: 50%).
    pub minimum_score: u32,
    /// Past this many added times deleted files squared, only exact and basename renames are
    /// looked for (git's `diff.renameLimit`, 1000).
    pub limit: usize,
}

impl Default for RenameOptions {
    fn default() -> Self {
        RenameOptions {
            minimum_score: MAX_SCORE / 2,
            limit: 1000,
        }
    }
}

/// Pairs deleted and added entries of `changes` (sorted by path) into renames as git does,
/// keeping the path order. With `follow`, only an addition at that path may become a rename
/// (git's `single_follow`, what `git blame` and `git log --follow` use).
pub(super) fn detect(
    reader: &mut OdbReader<'_>,
    changes: &mut Vec<TreeChange>,
    options: RenameOptions,
    follow: Option<&[u8]>,
) -> Result<(), DiffError> {
    let srcs: Vec<usize> = (0..changes.len())
        .filter(|&i| changes[i].kind == ChangeKind::Deleted)
        .collect();
    let dsts: Vec<usize> = (0..changes.len())
        .filter(|&i| {
            changes[i].kind == ChangeKind::Added && follow.is_none_or(|p| changes[i].path() == p)
        })
        .collect();
    if srcs.is_empty() || dsts.is_empty() {
        return Ok(());
    }
    let side = |i: usize| side(changes, i);
    // (source change, score) for each destination that became a rename.
    let mut paired: HashMap<usize, (usize, u32)> = HashMap::new();
    let mut used = vec![false; srcs.len()];

    // Exact renames: the first unused identical source, one with the same file name if any.
    let mut by_id: HashMap<crate::oid::ObjectId, Vec<usize>> = HashMap::new();
    for (k, &s) in srcs.iter().enumerate() {
        by_id.entry(side(s).id).or_default().push(k);
    }
    for &d in &dsts {
        let target = side(d);
        let Some(candidates) = by_id.get(&target.id) else {
            continue;
        };
        // Among the first hundred usable ones, as git looks no further.
        let mut best: Option<(usize, bool)> = None;
        let usable = candidates.iter().filter(|&&k| {
            let source = side(srcs[k]);
            !used[k]
                && (is_regular(source.mode) && is_regular(target.mode)
                    || source.mode == target.mode)
        });
        for &k in usable.take(100) {
            let same_name = basename_same(&side(srcs[k]).path, &target.path);
            if best.is_none_or(|(_, b)| same_name && !b) {
                best = Some((k, same_name));
            }
            if same_name {
                break;
            }
        }
        if let Some((k, _)) = best {
            used[k] = true;
            paired.insert(d, (srcs[k], MAX_SCORE));
        }
    }
    if options.minimum_score < MAX_SCORE {
        let mut blobs = Blobs {
            reader,
            buf: Vec::new(),
            cache: HashMap::new(),
        };
        inexact(
            changes,
            &srcs,
            &dsts,
            &mut used,
            &mut paired,
            &mut blobs,
            options,
        )?;
    }

    // Each paired destination becomes the rename; its source leaves the list.
    let mut gone = vec![false; changes.len()];
    for (&d, &(s, score)) in &paired {
        gone[s] = true;
        let old = changes[s].old.clone();
        let c = &mut changes[d];
        c.kind = ChangeKind::Renamed;
        c.old = old;
        c.similarity = Some((u64::from(score) * 100 / u64::from(MAX_SCORE)) as u8);
    }
    let mut k = 0;
    changes.retain(|_| {
        k += 1;
        !gone[k - 1]
    });
    Ok(())
}

/// Basename matches, then the full comparison of what is left (git's `find_basename_matches`,
/// the similarity matrix and `find_renames`).
fn inexact(
    changes: &[TreeChange],
    srcs: &[usize],
    dsts: &[usize],
    used: &mut [bool],
    paired: &mut HashMap<usize, (usize, u32)>,
    blobs: &mut Blobs<'_, '_>,
    options: RenameOptions,
) -> Result<(), DiffError> {
    let side = |i: usize| side(changes, i);
    let minimum = options.minimum_score;

    // Files keeping their name in another directory: only names unique on each side, and a
    // higher bar (halfway from the minimum to a perfect score).
    let unique = |items: &mut dyn Iterator<Item = (usize, Vec<u8>)>| {
        let mut m: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
        for (i, name) in items {
            m.entry(name).and_modify(|v| *v = None).or_insert(Some(i));
        }
        m
    };
    let src_names = unique(
        &mut (0..srcs.len())
            .filter(|&k| !used[k])
            .map(|k| (k, basename(&side(srcs[k]).path).to_vec())),
    );
    let dst_names = unique(
        &mut dsts
            .iter()
            .filter(|d| !paired.contains_key(d))
            .map(|&d| (d, basename(&side(d).path).to_vec())),
    );
    let basename_minimum = minimum + (MAX_SCORE - minimum) / 2;
    for k in 0..srcs.len() {
        if used[k] {
            continue;
        }
        let name = basename(&side(srcs[k]).path);
        let (Some(Some(_)), Some(Some(d))) = (src_names.get(name), dst_names.get(name)) else {
            continue;
        };
        if paired.contains_key(d) {
            continue;
        }
        let score = blobs.similarity(side(srcs[k]), side(*d), minimum)?;
        if score >= basename_minimum {
            used[k] = true;
            paired.insert(*d, (srcs[k], score));
        }
    }

    let left_srcs: Vec<usize> = (0..srcs.len()).filter(|&k| !used[k]).collect();
    let left_dsts: Vec<usize> = dsts
        .iter()
        .copied()
        .filter(|d| !paired.contains_key(d))
        .collect();
    if left_srcs.is_empty()
        || left_dsts.is_empty()
        || left_srcs.len().saturating_mul(left_dsts.len())
            > options.limit.saturating_mul(options.limit)
    {
        return Ok(());
    }
    // The best few sources of each destination: (score, same name, destination, source).
    #[derive(Clone, Copy)]
    struct Candidate {
        score: u32,
        same_name: bool,
        dst: usize,
        src: usize,
    }
    // git's order: higher score first, then the same file name first.
    let rank = |c: &Candidate| (std::cmp::Reverse(c.score), std::cmp::Reverse(c.same_name));
    let mut all: Vec<Candidate> = Vec::new();
    for &d in &left_dsts {
        let mut best: Vec<Candidate> = Vec::with_capacity(CANDIDATES);
        for &k in &left_srcs {
            let c = Candidate {
                score: blobs.similarity(side(srcs[k]), side(d), minimum)?,
                same_name: basename_same(&side(srcs[k]).path, &side(d).path),
                dst: d,
                src: k,
            };
            if best.len() < CANDIDATES {
                best.push(c);
                continue;
            }
            // Replace the first of the worst when the new one ranks strictly better.
            let mut worst = 0;
            for i in 1..best.len() {
                if rank(&best[i]) > rank(&best[worst]) {
                    worst = i;
                }
            }
            if rank(&best[worst]) > rank(&c) {
                best[worst] = c;
            }
        }
        all.extend(best);
    }
    all.sort_by_key(rank);
    for c in all {
        if c.score < minimum {
            break;
        }
        if paired.contains_key(&c.dst) || used[c.src] {
            continue;
        }
        used[c.src] = true;
        paired.insert(c.dst, (srcs[c.src], c.score));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_end_at_newlines_or_64_bytes_and_ignore_cr_before_lf_in_text() {
        let total = |s: &[(u32, u32)]| s.iter().map(|&(_, n)| n).sum::<u32>();
        assert_eq!(total(&spans(b"a\nbb\n")), 5);
        assert_eq!(
            total(&spans(b"a\r\nbb\r\n")),
            5,
            "CRs before LF are not counted"
        );
        assert_eq!(spans(b"a\r\nbb\r\n"), spans(b"a\nbb\n"));
        assert_eq!(total(&spans(b"a\r\n\0")), 4, "binary keeps its CRs");
        let long = [b'x'; 130];
        let s = spans(&long);
        // Two 64-byte spans hash alike, then a 2-byte tail.
        assert_eq!(s.len(), 2);
        assert_eq!(total(&s), 130);
        assert_eq!(copied(&spans(b"a\nb\nc\n"), &spans(b"a\nb\nd\n")), 4);
    }
}
