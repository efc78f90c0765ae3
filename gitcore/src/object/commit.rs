//! Commit objects.

use super::{ParseError, Signature, malformed, split_line};
use crate::oid::ObjectId;

/// A parsed commit borrowing from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct CommitRef<'a> {
    /// The root tree.
    pub tree: ObjectId,
    /// The `parent` header lines, each `parent <hex>` (parse with [`CommitRef::parents`]).
    parents_raw: &'a [u8],
    parent_count: usize,
    /// The author line, parsed.
    pub author: Signature<'a>,
    /// The committer line, parsed.
    pub committer: Signature<'a>,
    /// The `encoding` header, if any.
    pub encoding: Option<&'a [u8]>,
    /// Everything after the blank line that ends the headers, byte-exact.
    pub message: &'a [u8],
}

impl<'a> CommitRef<'a> {
    /// Parses a commit. A commit without a valid first `tree` line is an error; unknown headers
    /// (`gpgsig`, `mergetag`, continuation lines) are skipped.
    pub fn parse(data: &'a [u8]) -> Result<CommitRef<'a>, ParseError> {
        let (first, mut rest) = split_line(data);
        let tree = first
            .strip_prefix(b"tree ")
            .and_then(ObjectId::from_hex)
            .ok_or_else(|| malformed("commit has no valid tree line", 0))?;
        let parents_start = data.len() - rest.len();
        let mut parent_count = 0;
        while let Some(p) = rest.strip_prefix(b"parent ") {
            let (line, next) = split_line(p);
            if ObjectId::from_hex(line).is_none() {
                return Err(malformed("invalid parent line", data.len() - rest.len()));
            }
            parent_count += 1;
            rest = next;
        }
        let parents_raw = &data[parents_start..data.len() - rest.len()];
        let mut author = Signature::default();
        let mut committer = Signature::default();
        let mut encoding = None;
        let mut message: &[u8] = &[];
        while !rest.is_empty() {
            let (line, next) = split_line(rest);
            if line.is_empty() {
                message = next;
                break;
            }
            if let Some(v) = line.strip_prefix(b"author ") {
                author = Signature::parse(v);
            } else if let Some(v) = line.strip_prefix(b"committer ") {
                committer = Signature::parse(v);
            } else if let Some(v) = line.strip_prefix(b"encoding ") {
                encoding = Some(v);
            }
            rest = next;
        }
        Ok(CommitRef {
            tree,
            parents_raw,
            parent_count,
            author,
            committer,
            encoding,
            message,
        })
    }

    /// The parents in header order.
    pub fn parents(&self) -> impl Iterator<Item = ObjectId> + 'a {
        self.parents_raw
            .split(|&b| b == b'\n')
            .filter_map(|l| l.strip_prefix(b"parent ").and_then(ObjectId::from_hex))
    }

    /// Number of parents.
    pub fn parent_count(&self) -> usize {
        self.parent_count
    }

    /// The subject line as `git log --format=%s` prints it.
    pub fn summary(&self) -> String {
        super::subject_line(self.message, self.encoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_with_signature_and_no_final_newline() {
        let data = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 1111111111111111111111111111111111111111\n\
parent 2222222222222222222222222222222222222222\n\
author A <a@x> 10 +0000\ncommitter C <c@x> 20 -0700\n\
gpgsig -----BEGIN PGP SIGNATURE-----\n \n -----END PGP SIGNATURE-----\n\nsubject\n\nbody";
        let c = CommitRef::parse(data).expect("parses");
        assert_eq!(c.parent_count(), 2);
        assert_eq!(c.parents().count(), 2);
        assert_eq!(c.author.time, 10);
        assert_eq!(c.committer.tz_minutes, -420);
        assert_eq!(c.message, b"subject\n\nbody");
        assert!(CommitRef::parse(b"author A <a@x> 1 +0000\n\nmsg").is_err());
        assert!(CommitRef::parse(b"").is_err());
    }
}
