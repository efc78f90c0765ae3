//! The bulk source without a commit-graph file: every commit in the packs decoded on all cores,
//! in units of pack entries, each inflating only the header and the subject.

use super::*;
use crate::odb::pack::EntryKind;
use crate::odb::{ObjectKind, OdbReader};
use crate::repo::Repository;

/// Entries per parallel work unit of the pack scan.
pub(super) const SCAN_UNIT: usize = 1024;

/// Entries per segment of the pack scan (bounds the listing held at once). Every segment is
/// sampled: git writes a pack's commits together, but once per layer, and forges pack with
/// delta islands, so a clone from GitHub holds the commits of heads and tags first and the
/// commits only pull requests reach after all the trees and blobs.
pub(super) const SCAN_SEGMENT: usize = 32 * SCAN_UNIT;

/// One entry in this many is sampled to decide whether a unit holds commits.
pub(super) const SCAN_PROBE: usize = 32;

/// Most bytes inflated per commit while looking for the end of its subject (signed commits and
/// merges of signed tags carry kilobytes of headers); past them the whole commit is read.
pub(super) const COMMIT_PREFIX: usize = 64 * 1024;

/// Whether a (possibly truncated) commit holds its complete headers and subject.
pub(super) fn subject_complete(data: &[u8]) -> bool {
    let Some(headers_end) = data.windows(2).position(|w| w == b"\n\n") else {
        return false;
    };
    let message = &data[headers_end + 2..];
    let subject = crate::object::subject(message);
    let subject_end = subject.as_ptr() as usize - message.as_ptr() as usize + subject.len();
    // The subject ends at a blank line; that line must be inside the buffer and terminated.
    let after = &message[subject_end..];
    let Some(rest) = after.strip_prefix(b"\n") else {
        return false;
    };
    rest.iter()
        .position(|&b| b == b'\n')
        .is_some_and(|nl| rest[..nl].iter().all(u8::is_ascii_whitespace))
}

/// Whether the next few of `entries` say this region of the pack holds commits, from headers
/// alone: a whole entry gives its kind; a delta whose base is a commit found by an earlier
/// segment is a commit. Other delta chains are not followed: their bases lie anywhere in the pack
/// and touching them would map the whole file. Trees and blobs are nearly all deltified on a forge
/// (94% and 99% on the benchmark pack), commits rarely, except in the run of deltified commits a
/// forge's pack keeps for pull requests (their bases are commits on the main line).
pub(super) fn probe(
    odb: &crate::odb::Odb,
    pack: u32,
    entries: &[(u64, u32)],
    commit_offsets: &[u64],
) -> Option<ObjectKind> {
    const LOOK_AHEAD: usize = 8;
    entries.iter().take(LOOK_AHEAD).find_map(|&(offset, _)| {
        match odb.packed_entry_kind(pack, offset).ok()? {
            EntryKind::Base(kind) => Some(kind),
            EntryKind::OfsDelta(base) if commit_offsets.binary_search(&base).is_ok() => {
                Some(ObjectKind::Commit)
            }
            EntryKind::OfsDelta(_) | EntryKind::RefDelta(_) => None,
        }
    })
}

/// Decodes the commits of one run of pack entries.
pub(super) fn scan_unit(
    odb: &crate::odb::Odb,
    listing: &crate::odb::PackListing,
    unit: &[(u64, u32)],
    commit_offsets: &[u64],
    reader: &mut OdbReader<'_>,
    buf: &mut Vec<u8>,
) -> (Batch, Vec<u64>, Vec<String>) {
    let mut batch = Batch::default();
    let mut offsets = Vec::new();
    let mut problems = Vec::new();
    // Trees and blobs fill most of a pack: a unit whose sampled entries hold no commit is left
    // unread, so its pages are never touched (the few commits a sample can miss at the edge of a
    // commit run are read when the walk reaches them).
    let sampled = (0..unit.len())
        .step_by(SCAN_PROBE)
        .any(|k| probe(odb, listing.pack, &unit[k..], commit_offsets) == Some(ObjectKind::Commit));
    // The scan reads each page once: let go of this unit's pages behind it, so the load's resident
    // set holds the pages being read rather than the whole pack (git log keeps only the commits'
    // pages; a pack is mostly trees and blobs).
    let release = || {
        if let (Some(first), Some(last)) = (unit.first(), unit.last()) {
            odb.release_packed(listing.pack, first.0, last.0);
        }
    };
    if !sampled {
        release();
        return (batch, offsets, problems);
    }
    let mut deltas = 0;
    for &(offset, pos) in unit {
        let kind = match odb.packed_entry_kind(listing.pack, offset) {
            Ok(EntryKind::Base(kind)) => Ok(kind),
            _ => {
                deltas += 1;
                reader.packed_kind(listing.pack, offset)
            }
        };
        match kind {
            Ok(ObjectKind::Commit) => {}
            Ok(_) => continue,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        }
        let oid = odb.listing_oid(listing, pos);
        let read = reader
            .read_packed_until(listing.pack, offset, COMMIT_PREFIX, buf, subject_complete)
            .and_then(|(_, complete)| {
                if !complete && !subject_complete(buf) {
                    reader.read_packed(listing.pack, offset, buf)?;
                }
                Ok(())
            });
        match read {
            // A malformed commit is reported when the walk reaches it.
            Ok(()) => {
                offsets.push(offset);
                drop(batch.decode(oid, buf));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    batch.seal();
    if deltas > 0 {
        // Delta bases lie anywhere in the pack.
        odb.release_mapped();
    } else {
        release();
    }
    (batch, offsets, problems)
}

/// Decodes the commits stored in the packs, in parallel.
pub(super) fn scan_packs(repo: &Repository) -> (Vec<Batch>, Vec<String>) {
    let odb = repo.odb();
    let mut batches = Vec::new();
    let mut problems = Vec::new();
    // Reading the tips touched pages all over the packs.
    odb.release_mapped();
    for listing in odb.pack_listings() {
        // Offsets of the commits found in this pack so far, ascending (segments are in pack
        // order): how a probe recognises a deltified commit.
        let mut commit_offsets: Vec<u64> = Vec::new();
        for start in (0..listing.len()).step_by(SCAN_SEGMENT) {
            let segment =
                odb.listing_entries(&listing, start..(start + SCAN_SEGMENT).min(listing.len()));
            let results: Vec<(Batch, Vec<u64>, Vec<String>)> = segment
                .par_chunks(SCAN_UNIT)
                .map_init(
                    || (odb.reader(), Vec::new()),
                    |(reader, buf), unit| {
                        scan_unit(odb, &listing, unit, &commit_offsets, reader, buf)
                    },
                )
                .collect();
            let mut found = Vec::new();
            for (b, offsets, p) in results {
                if !b.commits.is_empty() {
                    found.push(b);
                }
                commit_offsets.extend(offsets);
                problems.extend(p);
            }
            if !found.is_empty() {
                batches.push(Batch::merge(found));
            }
            // Deltified commits read their bases from anywhere in the pack, and the segment's
            // listing and ids come from the index: let those pages go too.
            odb.release_mapped();
        }
    }
    (batches, problems)
}
