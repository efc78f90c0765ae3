//! zlib inflation with a reusable decompressor and a hard output bound.
//!
//! Every object git stores is zlib-compressed and announces its inflated size up front. A hostile
//! repository can announce a size far larger (or smaller) than what the stream holds, so the output
//! buffer grows with what is actually produced and never past the announced size.

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Why a zlib stream could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The stream is not valid zlib data (bad header, bad block, bad checksum).
    #[error("invalid zlib stream ({0:?})")]
    Invalid(&'static str),
    /// The stream ended before the end-of-stream marker.
    #[error("zlib stream is truncated")]
    Truncated,
    /// The stream inflates to more bytes than the object announced.
    #[error("zlib stream inflates past the announced size of {expected} bytes")]
    TooLong {
        /// The size the object header announced.
        expected: usize,
    },
    /// The stream inflates to fewer bytes than the object announced.
    #[error("zlib stream inflates to {actual} bytes, announced {expected}")]
    TooShort {
        /// The size the object header announced.
        expected: usize,
        /// What the stream produced.
        actual: usize,
    },
}

/// A reusable zlib decompressor (its state is ~11 KB, so keep one per thread).
pub struct Inflater {
    state: Box<DecompressorOxide>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

/// The first allocation for an object whose announced size is large: real objects that big are
/// rare, and a lying header must not make us allocate gigabytes up front.
const INITIAL_CAP: usize = 1 << 20;

impl Inflater {
    /// A fresh decompressor.
    pub fn new() -> Self {
        Inflater {
            state: Box::default(),
        }
    }

    /// Inflates the zlib stream at the start of `input` into `out` (cleared first), which must end
    /// up exactly `expected` bytes long. Bytes after the end of the stream are ignored. Returns the
    /// number of input bytes the stream occupied.
    pub fn inflate_exact(
        &mut self,
        input: &[u8],
        expected: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, InflateError> {
        self.inflate_inner(input, expected, out, true)
    }

    /// Inflates at most `limit` bytes of the zlib stream at the start of `input` into `out`
    /// (cleared first). Used to read just an object's header; never fails on a short stream as
    /// long as what was produced is valid.
    pub fn inflate_prefix(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        match self.inflate_inner(input, limit, out, false) {
            Ok(_) | Err(InflateError::TooLong { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn inflate_inner(
        &mut self,
        mut input: &[u8],
        expected: usize,
        out: &mut Vec<u8>,
        exact: bool,
    ) -> Result<usize, InflateError> {
        self.state.init();
        out.clear();
        // One spare byte lets us detect a stream that is longer than announced.
        let hard_cap = expected.saturating_add(1);
        out.resize(hard_cap.min(INITIAL_CAP), 0);
        let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        let mut out_pos = 0;
        let mut consumed = 0;
        loop {
            let (status, in_used, out_used) =
                decompress(&mut self.state, input, out, out_pos, flags);
            out_pos += out_used;
            consumed += in_used;
            input = input.get(in_used..).unwrap_or_default();
            match status {
                TINFLStatus::Done => {
                    out.truncate(out_pos);
                    if out_pos > expected {
                        return Err(InflateError::TooLong { expected });
                    }
                    if exact && out_pos != expected {
                        return Err(InflateError::TooShort {
                            expected,
                            actual: out_pos,
                        });
                    }
                    return Ok(consumed);
                }
                TINFLStatus::HasMoreOutput => {
                    if out.len() >= hard_cap {
                        out.truncate(expected.min(out.len()));
                        return Err(InflateError::TooLong { expected });
                    }
                    let new_len = out.len().saturating_mul(2).min(hard_cap);
                    out.resize(new_len, 0);
                }
                TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                    out.truncate(out_pos);
                    return Err(InflateError::Truncated);
                }
                TINFLStatus::Adler32Mismatch => {
                    return Err(InflateError::Invalid("adler32 checksum mismatch"));
                }
                TINFLStatus::BadParam => return Err(InflateError::Invalid("bad parameter")),
                TINFLStatus::Failed => return Err(InflateError::Invalid("bad deflate data")),
                _ => return Err(InflateError::Invalid("unexpected decompressor state")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
    }

    #[test]
    fn exact_sizes() {
        let data = b"hello hello hello hello".repeat(1000);
        let z = zlib(&data);
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        let used = inf
            .inflate_exact(&z, data.len(), &mut out)
            .expect("inflates");
        assert_eq!(used, z.len());
        assert_eq!(out, data);
        assert!(matches!(
            inf.inflate_exact(&z, data.len() - 1, &mut out),
            Err(InflateError::TooLong { .. })
        ));
        assert!(matches!(
            inf.inflate_exact(&z, data.len() + 1, &mut out),
            Err(InflateError::TooShort { .. })
        ));
        assert!(matches!(
            inf.inflate_exact(&z[..z.len() / 2], data.len(), &mut out),
            Err(InflateError::Truncated)
        ));
    }

    #[test]
    fn lying_huge_size_does_not_allocate_it() {
        let z = zlib(b"tiny");
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        let err = inf.inflate_exact(&z, usize::MAX / 2, &mut out);
        assert!(matches!(err, Err(InflateError::TooShort { actual: 4, .. })));
        assert!(out.capacity() < 64 << 20);
    }
}
