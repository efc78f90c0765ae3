//! Parsers for commits, tags and trees. They borrow from the object's bytes, allocate nothing,
//! accept what git itself accepts (odd time zones, zero-padded modes, a missing final newline,
//! non-UTF-8 names and messages, unknown headers such as `gpgsig` and `mergetag`) and reject with a
//! [`ParseError`] what git could not have written.

mod commit;
mod signature;
mod tag;
mod tree;

pub use commit::CommitRef;
pub use signature::Signature;
pub use tag::TagRef;
pub use tree::{EntryMode, TreeEntry, TreeIter};

/// Why an object's bytes could not be parsed. The caller adds the object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A required header is missing or malformed.
    #[error("{what} at byte {offset}")]
    Malformed {
        /// What was expected.
        what: &'static str,
        /// Byte offset in the object.
        offset: usize,
    },
}

pub(crate) fn malformed(what: &'static str, offset: usize) -> ParseError {
    ParseError::Malformed { what, offset }
}

/// Splits `data` at the first `\n` (or the end), returning the line and the rest.
pub(crate) fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match memchr(b'\n', data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Position of the first `needle` in `hay`.
pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Decodes text from a commit or tag: UTF-8 when valid, Latin-1 when the object declares an
/// ISO-8859-1 family encoding, otherwise UTF-8 with replacement characters.
pub fn decode_text(bytes: &[u8], encoding: Option<&[u8]>) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    let latin1 = encoding.is_some_and(|e| {
        let e = e.to_ascii_lowercase();
        e.starts_with(b"iso-8859-1")
            || e.starts_with(b"iso8859-1")
            || e == b"latin1"
            || e == b"latin-1"
            || e.starts_with(b"windows-1252")
            || e.starts_with(b"cp1252")
    });
    if latin1 {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// git's subject line (`%s`): the first paragraph of a message with its lines joined by spaces.
pub fn subject(message: &[u8]) -> &[u8] {
    // Skip leading blank lines like git's format_subject.
    let mut start = 0;
    while start < message.len() {
        let (line, _) = split_line(&message[start..]);
        if line.iter().all(|b| b.is_ascii_whitespace()) && start + line.len() < message.len() {
            start += line.len() + 1;
        } else {
            break;
        }
    }
    let msg = &message[start..];
    let mut end = 0;
    let mut rest = msg;
    while !rest.is_empty() {
        let (line, next) = split_line(rest);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        end = msg.len() - rest.len() + line.len();
        rest = next;
    }
    &msg[..end]
}

/// The subject as a single line: newlines inside the first paragraph become spaces, trailing
/// whitespace of each line is dropped (as `git log --format=%s` prints it).
pub fn subject_line(message: &[u8], encoding: Option<&[u8]>) -> String {
    let raw = subject(message);
    if !raw.contains(&b'\n') {
        let trimmed = trim_end(raw);
        return decode_text(trimmed, encoding);
    }
    let mut joined = Vec::with_capacity(raw.len());
    for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            joined.push(b' ');
        }
        joined.extend_from_slice(trim_end(line));
    }
    decode_text(&joined, encoding)
}

fn trim_end(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && s[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(subject_line(b"one\ntwo\n\nbody\n", None), "one two");
        assert_eq!(subject_line(b"\n\nfirst  \n", None), "first");
        assert_eq!(subject_line(b"", None), "");
        assert_eq!(subject_line(b"caf\xe9", Some(b"ISO-8859-1")), "caf\u{e9}");
    }
}
