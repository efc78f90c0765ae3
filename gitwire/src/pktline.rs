//! pkt-line framing (`gitprotocol-common(5)`): four hex digits giving the packet's length
//! including themselves, then the data; `0000` flush, `0001` delimiter, `0002` response end.
//! [`Decoder`] takes the bytes as they arrive and yields whole packets; [`band`] splits a
//! side-band-64k packet into pack data, progress and the server's error.

/// The largest packet git sends or accepts: 65,520 bytes, its four length digits included.
pub const MAX_PACKET: usize = 65520;

/// One decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data packet's payload (after the four length digits).
    Data(&'a [u8]),
    /// `0000`: the end of a message.
    Flush,
    /// `0001`: the end of a section (protocol v2).
    Delim,
    /// `0002`: the end of a stateless response (protocol v2).
    ResponseEnd,
}

/// What is wrong with a stream of packets. `offset` counts bytes from the start of the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PktError {
    /// The four length bytes are not hexadecimal digits.
    #[error("pkt-line at byte {offset}: length {found:?} is not four hex digits")]
    BadLength {
        /// Where the packet starts.
        offset: u64,
        /// The four bytes, lossily.
        found: String,
    },
    /// A length over [`MAX_PACKET`].
    #[error("pkt-line at byte {offset}: length {len} is over the limit of 65520")]
    TooLong {
        /// Where the packet starts.
        offset: u64,
        /// The length it claims.
        len: usize,
    },
    /// `0003`: a length no packet can have (shorter than its own digits, and not special).
    #[error("pkt-line at byte {offset}: length {len} is not a valid packet length")]
    Reserved {
        /// Where the packet starts.
        offset: u64,
        /// The length it claims.
        len: usize,
    },
    /// The stream ended inside a packet.
    #[error("the stream ended inside a pkt-line at byte {offset}")]
    Truncated {
        /// Where the unfinished packet starts.
        offset: u64,
    },
    /// The server sent `ERR <message>` (or an error on side-band 3).
    #[error("the server said: {0}")]
    Server(String),
    /// A side-band packet names a band other than 1, 2 or 3.
    #[error("pkt-line at byte {offset}: side-band {band} does not exist")]
    BadBand {
        /// Where the packet starts.
        offset: u64,
        /// The band byte.
        band: u8,
    },
    /// An empty data packet on the side-band (it must name a band).
    #[error("pkt-line at byte {offset}: a side-band packet without a band")]
    NoBand {
        /// Where the packet starts.
        offset: u64,
    },
}

/// An incremental pkt-line decoder. Push what the socket gave, then take packets with
/// [`Decoder::next_packet`] until it answers `None` (it needs more bytes). It never holds more
/// than one unfinished packet plus the last chunk pushed.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Where the first unconsumed byte of `buf` is.
    start: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received. Take the packets already complete first: bytes pushed while
    /// whole packets wait are kept too (the caller bounds its reads).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > MAX_PACKET {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet taken as packets.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The stream offset of the next packet.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next whole packet, `Ok(None)` when more bytes are needed. An `ERR` packet is
    /// [`PktError::Server`].
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, PktError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let offset = self.offset;
        let len = parse_len(&avail[..4]).ok_or_else(|| PktError::BadLength {
            offset,
            found: String::from_utf8_lossy(&avail[..4]).into_owned(),
        })?;
        let special = match len {
            0 => Some(Packet::Flush),
            1 => Some(Packet::Delim),
            2 => Some(Packet::ResponseEnd),
            3 => return Err(PktError::Reserved { offset, len }),
            _ => None,
        };
        if let Some(p) = special {
            self.start += 4;
            self.offset += 4;
            return Ok(Some(p));
        }
        if len > MAX_PACKET {
            return Err(PktError::TooLong { offset, len });
        }
        if avail.len() < len {
            return Ok(None);
        }
        let begin = self.start + 4;
        self.start += len;
        self.offset += len as u64;
        let data = &self.buf[begin..begin + len - 4];
        if let Some(msg) = data.strip_prefix(b"ERR ") {
            return Err(PktError::Server(text(msg)));
        }
        Ok(Some(Packet::Data(data)))
    }

    /// Checks that the stream ended between packets.
    pub fn finish(&self) -> Result<(), PktError> {
        if self.pending() == 0 {
            Ok(())
        } else {
            Err(PktError::Truncated {
                offset: self.offset,
            })
        }
    }
}

fn parse_len(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc * 16 + v as usize)
    })
}

/// A server's words made safe to show: control characters (terminal escapes included) and a
/// trailing newline removed, at most 500 characters.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect::<String>()
        .trim()
        .to_string()
}

/// One side-band-64k packet's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band<'a> {
    /// Band 1: the pack.
    Pack(&'a [u8]),
    /// Band 2: progress text for people (`Counting objects: 12% ...\r`).
    Progress(&'a [u8]),
}

/// Splits a side-band packet (read at `offset`); band 3, the server's fatal error, is
/// [`PktError::Server`].
pub fn band(data: &[u8], offset: u64) -> Result<Band<'_>, PktError> {
    match data.split_first() {
        None => Err(PktError::NoBand { offset }),
        Some((1, rest)) => Ok(Band::Pack(rest)),
        Some((2, rest)) => Ok(Band::Progress(rest)),
        Some((3, rest)) => Err(PktError::Server(text(rest))),
        Some((&b, _)) => Err(PktError::BadBand { offset, band: b }),
    }
}

/// `data` as one packet. Panics never: data longer than a packet allows is the caller's bug,
/// and is cut into several packets.
pub fn encode(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(MAX_PACKET - 4) {
        out.extend_from_slice(format!("{:04x}", chunk.len() + 4).as_bytes());
        out.extend_from_slice(chunk);
    }
}

/// `0000`.
pub const FLUSH: &[u8] = b"0000";
/// `0001`.
pub const DELIM: &[u8] = b"0001";

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, PktError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in bytes.chunks(chunk.max(1)) {
            d.push(c);
            while let Some(p) = d.next_packet()? {
                out.push(match p {
                    Packet::Data(x) => x.to_vec(),
                    Packet::Flush => b"<flush>".to_vec(),
                    Packet::Delim => b"<delim>".to_vec(),
                    Packet::ResponseEnd => b"<end>".to_vec(),
                });
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn packets_decode_the_same_whatever_the_chunks() {
        let stream = b"000eversion 2\n0015agent=git/2.47.3\n00010000000cls-refs\n0002";
        let whole = all(stream, stream.len()).expect("decodes");
        assert_eq!(
            whole,
            [
                &b"version 2\n"[..],
                b"agent=git/2.47.3\n",
                b"<delim>",
                b"<flush>",
                b"ls-refs\n",
                b"<end>"
            ]
        );
        for n in 1..8 {
            assert_eq!(all(stream, n).expect("decodes"), whole, "chunks of {n}");
        }
    }

    #[test]
    fn hostile_lengths_are_typed_errors() {
        let cases: &[(&[u8], PktError, &str)] = &[
            (
                b"zzzzabc",
                PktError::BadLength {
                    offset: 0,
                    found: "zzzz".into(),
                },
                "not hex",
            ),
            (
                b"0003",
                PktError::Reserved { offset: 0, len: 3 },
                "a length shorter than its digits",
            ),
            (
                b"0000fff1",
                PktError::TooLong {
                    offset: 4,
                    len: 0xfff1,
                },
                "65521: one over the limit",
            ),
            (
                b"0009abc",
                PktError::Truncated { offset: 0 },
                "the stream ends inside a packet",
            ),
            (
                b"0013ERR no such ref\n",
                PktError::Server("no such ref".into()),
                "the server's error",
            ),
        ];
        for (bytes, expected, why) in cases {
            assert_eq!(all(bytes, 3).expect_err(why), *expected, "{why}");
        }
        // The limit itself is fine.
        let mut big = Vec::new();
        encode(&vec![b'x'; MAX_PACKET - 4], &mut big);
        assert_eq!(
            all(&big, 1000).expect("the largest packet")[0].len(),
            MAX_PACKET - 4
        );
    }

    #[test]
    fn side_band_separates_pack_progress_and_errors() {
        assert_eq!(band(b"\x01PACK", 0), Ok(Band::Pack(b"PACK")));
        assert_eq!(
            band(b"\x02Counting\r", 0),
            Ok(Band::Progress(b"Counting\r"))
        );
        assert_eq!(
            band(b"\x03fatal: \x1b[31mbad\x1b[0m\n", 0),
            Err(PktError::Server("fatal: [31mbad[0m".into()))
        );
        assert_eq!(
            band(b"\x07x", 9),
            Err(PktError::BadBand { offset: 9, band: 7 })
        );
        assert_eq!(band(b"", 9), Err(PktError::NoBand { offset: 9 }));
    }

    #[test]
    fn encoding_splits_what_one_packet_cannot_hold() {
        let mut out = Vec::new();
        encode(&vec![b'a'; 70_000], &mut out);
        let back = all(&out, 4096).expect("decodes");
        assert_eq!(back.len(), 2);
        assert_eq!(back.iter().map(Vec::len).sum::<usize>(), 70_000);
    }
}
