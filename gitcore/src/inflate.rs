//! zlib inflation with a reusable decompressor and a hard output bound.
//!
//! Every object git stores is zlib-compressed and announces its inflated size up front. A hostile
//! repository can announce a size far larger (or smaller) than what the stream holds, so the output
//! buffer grows with what is actually produced and never past the announced size.

use flate2::{Decompress, FlushDecompress, Status};

/// Why a zlib stream could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The stream is not valid zlib data (bad header, bad block, bad checksum).
    #[error("invalid zlib stream")]
    Invalid,
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

/// A reusable zlib decompressor (keep one per thread: its state is several KB).
pub struct Inflater {
    state: Decompress,
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
            state: Decompress::new(true),
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

    /// Inflates the start of a stream a little at a time (`first` bytes, then `step` more each
    /// round) until `done` accepts what is out, the stream ends, or `limit` bytes are out.
    /// Returns whether the whole stream is in `out`. Loading the graph needs a commit's headers
    /// and subject, often half of it or less: the rest is never inflated.
    pub fn inflate_until(
        &mut self,
        input: &[u8],
        limit: usize,
        (first, step): (usize, usize),
        out: &mut Vec<u8>,
        done: impl Fn(&[u8]) -> bool,
    ) -> Result<bool, InflateError> {
        self.state.reset(true);
        out.clear();
        out.resize(limit, 0);
        let mut want = first.max(1).min(limit);
        loop {
            let produced = self.state.total_out() as usize;
            let consumed = self.state.total_in() as usize;
            let rest = input.get(consumed..).unwrap_or_default();
            let status = self
                .state
                .decompress(rest, &mut out[produced..want], FlushDecompress::None)
                .map_err(|_| InflateError::Invalid)?;
            let produced = self.state.total_out() as usize;
            if status == Status::StreamEnd {
                out.truncate(produced);
                return Ok(true);
            }
            if produced < want {
                // Output room is left, so the input ran out (or the stream is stuck).
                if self.state.total_in() as usize >= input.len() {
                    out.truncate(produced);
                    return Err(InflateError::Truncated);
                }
                if status == Status::BufError {
                    out.truncate(produced);
                    return Err(InflateError::Invalid);
                }
                continue;
            }
            if want == limit || done(&out[..produced]) {
                out.truncate(produced);
                return Ok(false);
            }
            want = (want + step.max(1)).min(limit);
        }
    }

    fn inflate_inner(
        &mut self,
        input: &[u8],
        expected: usize,
        out: &mut Vec<u8>,
        exact: bool,
    ) -> Result<usize, InflateError> {
        self.state.reset(true);
        out.clear();
        // One spare byte lets us detect a stream that is longer than announced.
        let hard_cap = expected.saturating_add(1);
        out.reserve_exact(hard_cap.min(INITIAL_CAP));
        loop {
            let consumed = self.state.total_in() as usize;
            let rest = input.get(consumed..).unwrap_or_default();
            let status = self
                .state
                .decompress_vec(rest, out, FlushDecompress::Finish)
                .map_err(|_| InflateError::Invalid)?;
            let produced = out.len();
            match status {
                Status::StreamEnd => {
                    if produced > expected {
                        out.truncate(expected);
                        return Err(InflateError::TooLong { expected });
                    }
                    if exact && produced != expected {
                        return Err(InflateError::TooShort {
                            expected,
                            actual: produced,
                        });
                    }
                    return Ok(self.state.total_in() as usize);
                }
                Status::Ok | Status::BufError => {
                    if produced >= hard_cap {
                        out.truncate(expected);
                        return Err(InflateError::TooLong { expected });
                    }
                    if produced == out.capacity() {
                        let grow = out.capacity().max(64).min(hard_cap - produced);
                        out.reserve_exact(grow);
                    } else if self.state.total_in() as usize >= input.len() {
                        return Err(InflateError::Truncated);
                    } else if status == Status::BufError {
                        // No progress with room to spare and input left: cannot happen for a
                        // valid stream.
                        return Err(InflateError::Invalid);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("in-memory write");
        e.finish().expect("in-memory write")
    }

    #[test]
    fn inflate_until_stops_when_done_and_reports_whole_streams() {
        let data: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let z = zlib(&data);
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        // Stops at the first step holding the end of a line past byte 100.
        let complete = inf
            .inflate_until(&z, 1 << 20, (64, 32), &mut out, |b| {
                b.get(100..).is_some_and(|rest| rest.contains(&b'\n'))
            })
            .expect("inflates");
        assert!(!complete);
        assert!(out.len() < 200 && data.starts_with(&out), "{}", out.len());
        // Never satisfied: the whole stream, flagged complete.
        let complete = inf
            .inflate_until(&z, 1 << 20, (64, 1000), &mut out, |_| false)
            .expect("inflates");
        assert!(complete);
        assert_eq!(out, data);
        // The limit bounds the output.
        let complete = inf
            .inflate_until(&z, 300, (64, 64), &mut out, |_| false)
            .expect("inflates");
        assert!(!complete);
        assert_eq!(out, data[..300]);
        // A cut stream is truncated, garbage is invalid.
        assert_eq!(
            inf.inflate_until(&z[..z.len() / 2], 1 << 20, (64, 64), &mut out, |_| false),
            Err(InflateError::Truncated)
        );
        assert!(
            inf.inflate_until(b"\x78\x9c\xff\xff\xff", 100, (8, 8), &mut out, |_| false)
                .is_err()
        );
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
