//! Line diffs of two blobs as unified hunks (Histogram algorithm, as `git diff --histogram`).

use imara_diff::{Algorithm, Diff, InternedInput};

use crate::odb::{ObjectKind, OdbError, OdbReader};
use crate::oid::ObjectId;

/// Limits and shape of a blob diff.
#[derive(Debug, Clone, Copy)]
pub struct DiffOptions {
    /// Lines of context around each change (`git diff -U<n>`).
    pub context: u32,
    /// Blobs larger than this are not diffed: the result says `too_large`.
    pub max_blob_bytes: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            context: 3,
            max_blob_bytes: 4 << 20,
        }
    }
}

/// The kind of a diff line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// Unchanged, shown for context.
    Context,
    /// Only in the new blob.
    Added,
    /// Only in the old blob.
    Removed,
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// What it is.
    pub kind: LineKind,
    /// 1-based line number in the old blob (context and removed lines).
    pub old_line: Option<u32>,
    /// 1-based line number in the new blob (context and added lines).
    pub new_line: Option<u32>,
    /// The line's bytes without its line terminator.
    pub text: Vec<u8>,
    /// Whether the line has no final newline (`\ No newline at end of file`).
    pub no_newline: bool,
}

/// A unified hunk: `@@ -old_start,old_len +new_start,new_len @@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// First old line (1-based; 0 when `old_len` is 0, as git prints it).
    pub old_start: u32,
    /// Old lines covered.
    pub old_len: u32,
    /// First new line (1-based; 0 when `new_len` is 0).
    pub new_start: u32,
    /// New lines covered.
    pub new_len: u32,
    /// The lines.
    pub lines: Vec<DiffLine>,
}

impl Hunk {
    /// The `@@ ... @@` header as git prints it.
    pub fn header(&self) -> String {
        let range = |start: u32, len: u32| {
            if len == 1 {
                format!("{start}")
            } else {
                format!("{start},{len}")
            }
        };
        format!(
            "@@ -{} +{} @@",
            range(self.old_start, self.old_len),
            range(self.new_start, self.new_len)
        )
    }
}

/// The result of diffing two blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobDiff {
    /// Either side looks binary (a NUL byte in its first 8000 bytes, git's test): no hunks.
    pub binary: bool,
    /// Either side is over `max_blob_bytes`: no hunks.
    pub too_large: bool,
    /// The hunks (empty when the blobs are equal, binary or too large).
    pub hunks: Vec<Hunk>,
    /// Lines added.
    pub additions: u32,
    /// Lines removed.
    pub deletions: u32,
}

/// git's binary test: a NUL byte within the first 8000 bytes.
pub fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    let mut lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn line(kind: LineKind, raw: &[u8], old: Option<u32>, new: Option<u32>) -> DiffLine {
    let no_newline = !raw.ends_with(b"\n");
    DiffLine {
        kind,
        old_line: old,
        new_line: new,
        text: raw.strip_suffix(b"\n").unwrap_or(raw).to_vec(),
        no_newline,
    }
}

/// Pushes the unchanged lines from old line `*o` (new line `*n`) up to old line `end`.
fn context_until(lines: &mut Vec<DiffLine>, old: &[&[u8]], o: &mut u32, n: &mut u32, end: u32) {
    while *o < end {
        lines.push(line(
            LineKind::Context,
            old[*o as usize],
            Some(*o + 1),
            Some(*n + 1),
        ));
        *o += 1;
        *n += 1;
    }
}

/// Diffs two byte strings line by line.
pub fn diff_bytes(old: &[u8], new: &[u8], options: DiffOptions) -> BlobDiff {
    if old.len() as u64 > options.max_blob_bytes || new.len() as u64 > options.max_blob_bytes {
        return BlobDiff {
            too_large: true,
            ..BlobDiff::default()
        };
    }
    if is_binary(old) || is_binary(new) {
        return BlobDiff {
            binary: old != new,
            ..BlobDiff::default()
        };
    }
    let a = split_lines(old);
    let b = split_lines(new);
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    let changes: Vec<imara_diff::Hunk> = diff.hunks().collect();
    let ctx = options.context;
    let mut out = BlobDiff {
        additions: diff.count_additions(),
        deletions: diff.count_removals(),
        ..BlobDiff::default()
    };
    let mut i = 0;
    while i < changes.len() {
        // Group changes whose context overlaps or touches, like git.
        let mut j = i;
        while j + 1 < changes.len()
            && changes[j + 1].before.start - changes[j].before.end <= 2 * ctx
        {
            j += 1;
        }
        let first = &changes[i];
        let last = &changes[j];
        let old_from = first.before.start.saturating_sub(ctx);
        let new_from = first
            .after
            .start
            .saturating_sub(first.before.start - old_from);
        let old_to = (last.before.end + ctx).min(a.len() as u32);
        let new_to = last.after.end + (old_to - last.before.end);
        let mut lines = Vec::new();
        let (mut o, mut n) = (old_from, new_from);
        for c in &changes[i..=j] {
            context_until(&mut lines, &a, &mut o, &mut n, c.before.start);
            for k in c.before.clone() {
                lines.push(line(LineKind::Removed, a[k as usize], Some(k + 1), None));
            }
            for k in c.after.clone() {
                lines.push(line(LineKind::Added, b[k as usize], None, Some(k + 1)));
            }
            o = c.before.end;
            n = c.after.end;
        }
        context_until(&mut lines, &a, &mut o, &mut n, old_to);
        let old_len = old_to - old_from;
        let new_len = new_to - new_from;
        out.hunks.push(Hunk {
            old_start: if old_len == 0 { old_from } else { old_from + 1 },
            old_len,
            new_start: if new_len == 0 { new_from } else { new_from + 1 },
            new_len,
            lines,
        });
        i = j + 1;
    }
    out
}

/// Reads and diffs two blobs (either may be absent: an empty side). Blobs over the size limit are
/// not read at all.
pub fn diff_blobs(
    reader: &mut OdbReader<'_>,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    options: DiffOptions,
) -> Result<BlobDiff, OdbError> {
    let mut sides: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (slot, id) in sides.iter_mut().zip([old, new]) {
        let Some(id) = id else { continue };
        let (_, size) = reader.read_header(&id)?;
        if size > options.max_blob_bytes {
            return Ok(BlobDiff {
                too_large: true,
                ..BlobDiff::default()
            });
        }
        reader.read_kind(&id, ObjectKind::Blob, slot)?;
    }
    Ok(diff_bytes(&sides[0], &sides[1], options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_have_git_headers_and_context() {
        let old = b"a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = b"a\nb\nc\nD\ne\nf\ng\nh\nnew\n";
        let d = diff_bytes(old, new, DiffOptions::default());
        assert_eq!(d.hunks.len(), 1);
        assert_eq!(d.hunks[0].header(), "@@ -1,8 +1,9 @@");
        assert_eq!((d.additions, d.deletions), (2, 1));
        let one = DiffOptions {
            context: 0,
            ..DiffOptions::default()
        };
        let d = diff_bytes(old, new, one);
        assert_eq!(d.hunks.len(), 2);
        assert_eq!(d.hunks[0].header(), "@@ -4 +4 @@");
        assert_eq!(d.hunks[1].header(), "@@ -8,0 +9 @@");
        let created = diff_bytes(b"", b"x", DiffOptions::default());
        assert_eq!(created.hunks[0].header(), "@@ -0,0 +1 @@");
        assert!(created.hunks[0].lines[0].no_newline);
        assert!(diff_bytes(b"\0", b"x", DiffOptions::default()).binary);
    }
}
