//! Annotated tag objects.

use super::{ParseError, Signature, malformed, split_line};
use crate::odb::ObjectKind;
use crate::oid::ObjectId;

/// A parsed annotated tag borrowing from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct TagRef<'a> {
    /// The tagged object.
    pub target: ObjectId,
    /// The tagged object's kind.
    pub target_kind: ObjectKind,
    /// The tag's name.
    pub name: &'a [u8],
    /// The tagger, if the tag has one (old tags do not).
    pub tagger: Option<Signature<'a>>,
    /// The message, byte-exact.
    pub message: &'a [u8],
}

impl<'a> TagRef<'a> {
    /// Parses a tag; `object` and `type` lines are required.
    pub fn parse(data: &'a [u8]) -> Result<TagRef<'a>, ParseError> {
        let (first, rest) = split_line(data);
        let target = first
            .strip_prefix(b"object ")
            .and_then(ObjectId::from_hex)
            .ok_or_else(|| malformed("tag has no valid object line", 0))?;
        let (second, mut rest) = split_line(rest);
        let target_kind = second
            .strip_prefix(b"type ")
            .and_then(ObjectKind::from_bytes)
            .ok_or_else(|| malformed("tag has no valid type line", first.len() + 1))?;
        let mut name: &[u8] = &[];
        let mut tagger = None;
        let mut message: &[u8] = &[];
        while !rest.is_empty() {
            let (line, next) = split_line(rest);
            if line.is_empty() {
                message = next;
                break;
            }
            if let Some(v) = line.strip_prefix(b"tag ") {
                name = v;
            } else if let Some(v) = line.strip_prefix(b"tagger ") {
                tagger = Some(Signature::parse(v));
            }
            rest = next;
        }
        Ok(TagRef {
            target,
            target_kind,
            name,
            tagger,
            message,
        })
    }
}
