//! Applying git's binary deltas (the payload of OFS_DELTA and REF_DELTA pack entries).

/// Why a delta could not be applied; the caller adds the file and offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The delta's header is cut short.
    #[error("delta header is truncated")]
    TruncatedHeader,
    /// The delta was made against a base of another size.
    #[error("delta expects a base of {expected} bytes, the base has {actual}")]
    BaseSize {
        /// The size the delta announces.
        expected: u64,
        /// The actual base size.
        actual: usize,
    },
    /// The result would exceed the object size limit.
    #[error("delta result of {0} bytes exceeds the object size limit")]
    TooLarge(u64),
    /// A copy instruction reaches outside the base.
    #[error("delta copies {size} bytes at {offset} out of a {base_len}-byte base")]
    CopyOutOfRange {
        /// Start of the copy in the base.
        offset: u64,
        /// Bytes to copy.
        size: u64,
        /// Base length.
        base_len: usize,
    },
    /// An instruction or its operands run past the end of the delta, or opcode 0.
    #[error("delta instruction stream is malformed at byte {0}")]
    BadInstruction(usize),
    /// The instructions produce more or fewer bytes than announced.
    #[error("delta produces {actual} bytes, announced {expected}")]
    ResultSize {
        /// Announced size.
        expected: u64,
        /// Produced size.
        actual: usize,
    },
}

/// Reads a delta header varint (little-endian base-128) from `data` at `*pos`.
fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *data.get(*pos)?;
        *pos += 1;
        if shift > 63 {
            return None;
        }
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
}

/// The result size a delta announces, without applying it.
pub fn result_size(delta: &[u8]) -> Result<u64, DeltaError> {
    let mut pos = 0;
    varint(delta, &mut pos).ok_or(DeltaError::TruncatedHeader)?;
    varint(delta, &mut pos).ok_or(DeltaError::TruncatedHeader)
}

/// Applies `delta` to `base`, writing the result into `out` (cleared first). The result may not
/// exceed `max_size` bytes.
pub fn apply(
    base: &[u8],
    delta: &[u8],
    out: &mut Vec<u8>,
    max_size: u64,
) -> Result<(), DeltaError> {
    let mut pos = 0;
    let base_size = varint(delta, &mut pos).ok_or(DeltaError::TruncatedHeader)?;
    let result_size = varint(delta, &mut pos).ok_or(DeltaError::TruncatedHeader)?;
    if base_size != base.len() as u64 {
        return Err(DeltaError::BaseSize {
            expected: base_size,
            actual: base.len(),
        });
    }
    if result_size > max_size {
        return Err(DeltaError::TooLarge(result_size));
    }
    out.clear();
    // The announced size is a claim until the instructions make it true: reserve only what the
    // delta could plausibly produce and let real output grow the buffer (a 10-byte delta
    // announcing 1 GiB must not allocate 1 GiB).
    let plausible = (base.len() as u64)
        .saturating_add(delta.len() as u64)
        .saturating_mul(4);
    out.reserve(result_size.min(plausible) as usize);
    while pos < delta.len() {
        let at = pos;
        let cmd = delta[pos];
        pos += 1;
        if cmd & 0x80 != 0 {
            let mut offset = 0u64;
            let mut size = 0u64;
            for i in 0..4 {
                if cmd & (1 << i) != 0 {
                    let b = *delta.get(pos).ok_or(DeltaError::BadInstruction(at))?;
                    pos += 1;
                    offset |= u64::from(b) << (8 * i);
                }
            }
            for i in 0..3 {
                if cmd & (0x10 << i) != 0 {
                    let b = *delta.get(pos).ok_or(DeltaError::BadInstruction(at))?;
                    pos += 1;
                    size |= u64::from(b) << (8 * i);
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = offset
                .checked_add(size)
                .filter(|&end| end <= base.len() as u64)
                .ok_or(DeltaError::CopyOutOfRange {
                    offset,
                    size,
                    base_len: base.len(),
                })?;
            if out.len() as u64 + size > result_size {
                return Err(DeltaError::ResultSize {
                    expected: result_size,
                    actual: out.len() + size as usize,
                });
            }
            out.extend_from_slice(&base[offset as usize..end as usize]);
        } else if cmd != 0 {
            let n = usize::from(cmd);
            let chunk = delta
                .get(pos..pos + n)
                .ok_or(DeltaError::BadInstruction(at))?;
            if (out.len() + n) as u64 > result_size {
                return Err(DeltaError::ResultSize {
                    expected: result_size,
                    actual: out.len() + n,
                });
            }
            out.extend_from_slice(chunk);
            pos += n;
        } else {
            return Err(DeltaError::BadInstruction(at));
        }
    }
    if out.len() as u64 != result_size {
        return Err(DeltaError::ResultSize {
            expected: result_size,
            actual: out.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_insert() {
        let base = b"hello world";
        // base 11, result 11: copy 6 bytes at 0, insert "there"
        let delta = [11, 11, 0x80 | 0x10, 6, 5, b't', b'h', b'e', b'r', b'e'];
        let mut out = Vec::new();
        apply(base, &delta, &mut out, 1 << 20).expect("applies");
        assert_eq!(out, b"hello there");
    }

    #[test]
    fn a_tiny_delta_announcing_a_gigabyte_reserves_nothing_like_it() {
        // Regression: the announced result size (up to the 1 GiB object limit) was reserved
        // before a single instruction was checked.
        let mut delta = vec![3u8];
        let mut n: u64 = 1 << 30;
        while n >= 0x80 {
            delta.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        delta.push(n as u8);
        delta.extend([0x03, b'a', b'b', b'c']);
        let mut out = Vec::new();
        let err = apply(b"xyz", &delta, &mut out, 1 << 30).expect_err("3 bytes are not 1 GiB");
        assert!(matches!(err, DeltaError::ResultSize { .. }), "{err}");
        assert!(
            out.capacity() < 1 << 20,
            "reserved {} bytes",
            out.capacity()
        );
    }

    #[test]
    fn rejects_out_of_range_copy() {
        let base = b"abc";
        let delta = [3, 4, 0x80 | 0x01 | 0x10, 2, 2];
        let mut out = Vec::new();
        assert!(matches!(
            apply(base, &delta, &mut out, 1 << 20),
            Err(DeltaError::CopyOutOfRange { .. })
        ));
        assert!(matches!(
            apply(base, &[3, 1, 0], &mut out, 1 << 20),
            Err(DeltaError::BadInstruction(2))
        ));
        assert!(matches!(
            apply(base, &[3, 200, 1], &mut out, 10),
            Err(DeltaError::TooLarge(200))
        ));
    }
}
