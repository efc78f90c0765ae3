//! Object identifiers: SHA-1 (20 bytes) or SHA-256 (32 bytes), as the repository's
//! `extensions.objectFormat` says. A repository holds ids of one kind only; every id carries its
//! kind, so its hex form has the right length wherever it is printed.

use std::fmt;

/// Length in bytes of the longest object id (SHA-256).
pub const MAX_OID_LEN: usize = 32;

/// The hash function that names a repository's objects (`extensions.objectFormat`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
pub enum HashKind {
    /// SHA-1, 20-byte ids: every repository before Git 3.0, unless created otherwise.
    #[default]
    Sha1,
    /// SHA-256, 32-byte ids: `git init --object-format=sha256`, Git 3.0's default.
    Sha256,
}

impl HashKind {
    /// Length in bytes of an id.
    #[inline]
    pub const fn id_len(self) -> usize {
        match self {
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
        }
    }

    /// Length in hexadecimal digits of an id.
    pub const fn hex_len(self) -> usize {
        self.id_len() * 2
    }

    /// The name git gives it (`sha1`, `sha256`) in the configuration and on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            HashKind::Sha1 => "sha1",
            HashKind::Sha256 => "sha256",
        }
    }

    /// The kind git names `name` (either case); `None` for a name git does not know.
    pub fn from_name(name: &str) -> Option<HashKind> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Some(HashKind::Sha1),
            "sha256" => Some(HashKind::Sha256),
            _ => None,
        }
    }

    /// The number the commit-graph and multi-pack-index headers use (1 SHA-1, 2 SHA-256).
    pub const fn file_version(self) -> u8 {
        match self {
            HashKind::Sha1 => 1,
            HashKind::Sha256 => 2,
        }
    }

    /// The four bytes reftable v2 files and git's format ids use (`sha1`, `s256`).
    pub const fn format_id(self) -> [u8; 4] {
        match self {
            HashKind::Sha1 => *b"sha1",
            HashKind::Sha256 => *b"s256",
        }
    }

    /// The empty tree, which git treats as present in every repository (a commit of no files
    /// names it, and no pack need hold it).
    pub const fn empty_tree(self) -> ObjectId {
        match self {
            HashKind::Sha1 => ObjectId::padded(
                HashKind::Sha1,
                [
                    0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e, 0xb9, 0xa0, 0x60, 0xe5, 0x4b, 0xf8,
                    0xd6, 0x92, 0x88, 0xfb, 0xee, 0x49, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
            HashKind::Sha256 => ObjectId::padded(
                HashKind::Sha256,
                [
                    0x6e, 0xf1, 0x9b, 0x41, 0x22, 0x5c, 0x53, 0x69, 0xf1, 0xc1, 0x04, 0xd4, 0x5d,
                    0x8d, 0x85, 0xef, 0xa9, 0xb0, 0x57, 0xb5, 0x3b, 0x14, 0xb4, 0xb9, 0xb9, 0x39,
                    0xdd, 0x74, 0xde, 0xcc, 0x53, 0x21,
                ],
            ),
        }
    }

    /// The all-zero id git uses for "no object" (e.g. the old side of a reflog entry).
    pub const fn null(self) -> ObjectId {
        ObjectId::padded(self, [0; MAX_OID_LEN])
    }

    /// The hash of `bytes` (a trailer's checksum).
    pub fn digest(self, bytes: &[u8]) -> ObjectId {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish()
    }

    /// A hasher that names objects of this kind: feed it `"<kind> <size>\0"` and the content.
    pub fn hasher(self) -> IdHasher {
        match self {
            HashKind::Sha1 => IdHasher::Sha1(sha1::Sha1::default()),
            HashKind::Sha256 => IdHasher::Sha256(sha2::Sha256::default()),
        }
    }
}

/// A running hash of either kind (see [`HashKind::hasher`]); also checks the trailers of packs,
/// indexes and the index file, which use the repository's hash.
#[derive(Clone)]
pub enum IdHasher {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
}

impl fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            IdHasher::Sha1(_) => HashKind::Sha1,
            IdHasher::Sha256(_) => HashKind::Sha256,
        };
        write!(f, "IdHasher({})", kind.name())
    }
}

impl IdHasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha1::Digest;
        match self {
            IdHasher::Sha1(h) => h.update(bytes),
            IdHasher::Sha256(h) => h.update(bytes),
        }
    }

    /// The id of what was fed.
    pub fn finish(self) -> ObjectId {
        use sha1::Digest;
        match self {
            IdHasher::Sha1(h) => {
                ObjectId::from_raw(HashKind::Sha1, &h.finalize()).expect("20 bytes")
            }
            IdHasher::Sha256(h) => {
                ObjectId::from_raw(HashKind::Sha256, &h.finalize()).expect("32 bytes")
            }
        }
    }
}

/// A git object id of either kind. Ids of one repository are all of one kind; two ids of
/// different kinds are never equal.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ObjectId {
    /// The id's bytes, zero past its kind's length.
    raw: [u8; MAX_OID_LEN],
    kind: HashKind,
}

impl Default for ObjectId {
    fn default() -> Self {
        HashKind::Sha1.null()
    }
}

impl std::hash::Hash for ObjectId {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl ObjectId {
    /// The SHA-1 empty tree (see [`HashKind::empty_tree`]).
    pub const EMPTY_TREE: ObjectId = HashKind::Sha1.empty_tree();

    /// The SHA-1 all-zero id (see [`HashKind::null`]), also the placeholder of errors that name
    /// no object.
    pub const NULL: ObjectId = HashKind::Sha1.null();

    const fn padded(kind: HashKind, raw: [u8; MAX_OID_LEN]) -> Self {
        ObjectId { raw, kind }
    }

    /// Wraps the 20 bytes of a SHA-1 id.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        let mut raw = [0u8; MAX_OID_LEN];
        let mut i = 0;
        while i < 20 {
            raw[i] = bytes[i];
            i += 1;
        }
        ObjectId {
            raw,
            kind: HashKind::Sha1,
        }
    }

    /// Reads an id of `kind` from the first bytes of `bytes`; `None` if it is shorter.
    #[inline]
    pub fn from_raw(kind: HashKind, bytes: &[u8]) -> Option<Self> {
        // Copies of a constant length per kind: a few moves, not a `memcpy` call, on the
        // paths that read millions of ids (pack indexes, trees, the graph's id column).
        let mut raw = [0u8; MAX_OID_LEN];
        match kind {
            HashKind::Sha1 => raw[..20].copy_from_slice(bytes.get(..20)?),
            HashKind::Sha256 => raw.copy_from_slice(bytes.get(..32)?),
        }
        Some(ObjectId { raw, kind })
    }

    /// Parses exactly 40 (SHA-1) or 64 (SHA-256) hexadecimal digits, either case; `None` for
    /// anything else.
    #[inline]
    pub fn from_hex(hex: &[u8]) -> Option<Self> {
        let kind = match hex.len() {
            40 => HashKind::Sha1,
            64 => HashKind::Sha256,
            _ => return None,
        };
        // Branch-free: a table lookup per digit, one check at the end (a commit's tree and
        // parent lines are parsed this way for every commit of a load).
        let mut raw = [0u8; MAX_OID_LEN];
        let mut seen = 0u8;
        for (out, pair) in raw.iter_mut().zip(hex.chunks_exact(2)) {
            let (hi, lo) = (
                HEX_VALUE[usize::from(pair[0])],
                HEX_VALUE[usize::from(pair[1])],
            );
            seen |= hi | lo;
            *out = (hi << 4) | (lo & 15);
        }
        (seen & 0xf0 == 0).then_some(ObjectId { raw, kind })
    }

    /// Parses an id of `kind` in hex; `None` for anything else (e.g. a SHA-1 id in a SHA-256
    /// repository).
    pub fn from_hex_of(kind: HashKind, hex: &[u8]) -> Option<Self> {
        Self::from_hex(hex).filter(|id| id.kind == kind)
    }

    /// The raw bytes (20 or 32).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw[..self.kind.id_len()]
    }

    /// The hash that made this id.
    #[inline]
    pub fn kind(&self) -> HashKind {
        self.kind
    }

    /// The first byte, used for fan-out tables.
    #[inline]
    pub fn first_byte(&self) -> u8 {
        self.raw[0]
    }

    /// Whether this is the all-zero id.
    pub fn is_null(&self) -> bool {
        self.raw == [0; MAX_OID_LEN]
    }

    /// Lowercase hex: 40 digits for SHA-1, 64 for SHA-256.
    pub fn to_hex(&self) -> String {
        self.hex().as_str().to_owned()
    }

    /// Lowercase hex without allocating: for writers that emit many ids (a graph window's rows
    /// and edges).
    pub fn hex(&self) -> HexId {
        let mut digits = [0u8; 2 * MAX_OID_LEN];
        for (i, &b) in self.as_bytes().iter().enumerate() {
            digits[2 * i] = HEX[(b >> 4) as usize];
            digits[2 * i + 1] = HEX[(b & 15) as usize];
        }
        HexId {
            digits,
            len: self.kind.hex_len() as u8,
        }
    }

    /// Whether the hex form of this id starts with `prefix` (lowercase or uppercase hex digits).
    pub fn starts_with_hex(&self, prefix: &str) -> bool {
        let p = prefix.as_bytes();
        if p.len() > self.kind.hex_len() {
            return false;
        }
        p.iter().enumerate().all(|(i, &c)| {
            let nibble = if i % 2 == 0 {
                self.raw[i / 2] >> 4
            } else {
                self.raw[i / 2] & 15
            };
            hex_val(c) == Some(nibble)
        })
    }
}

impl Ord for ObjectId {
    /// Byte order, as git sorts ids; compared as big-endian words, which is several times faster
    /// than `memcmp` in the sorts and binary searches of a graph load. The bytes past a SHA-1
    /// id are zero, so both kinds compare as their bytes do.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let word = |b: &[u8; MAX_OID_LEN], i: usize| {
            u64::from_be_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        word(&self.raw, 0)
            .cmp(&word(&other.raw, 0))
            .then_with(|| word(&self.raw, 8).cmp(&word(&other.raw, 8)))
            .then_with(|| word(&self.raw, 16).cmp(&word(&other.raw, 16)))
            .then_with(|| word(&self.raw, 24).cmp(&word(&other.raw, 24)))
            .then_with(|| self.kind.cmp(&other.kind))
    }
}

impl PartialOrd for ObjectId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A hasher for maps keyed by [`ObjectId`]: ids are already uniformly random, so the first eight
/// bytes are the hash. Several times faster than SipHash on the million-entry maps of a load.
#[derive(Debug, Default, Clone, Copy)]
pub struct OidHasher(u64);

impl std::hash::Hasher for OidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Some(head) = bytes.get(..8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(head);
            self.0 = u64::from_le_bytes(word);
        } else {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
    }

    fn write_usize(&mut self, _length_prefix: usize) {}
}

/// A `HashMap` keyed by object id with [`OidHasher`].
pub type OidMap<V> =
    std::collections::HashMap<ObjectId, V, std::hash::BuildHasherDefault<OidHasher>>;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Each byte's value as a hex digit (either case), 0xff for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// An id's lowercase hex digits, on the stack ([`ObjectId::hex`]).
#[derive(Clone, Copy)]
pub struct HexId {
    digits: [u8; 2 * MAX_OID_LEN],
    len: u8,
}

impl fmt::Debug for HexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HexId {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Every byte written is an ASCII hex digit.
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or_default()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl std::str::FromStr for ObjectId {
    type Err = InvalidHex;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::from_hex(s.as_bytes()).ok_or(InvalidHex)
    }
}

/// The text was not 40 or 64 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a 40- or 64-digit hexadecimal object id")]
pub struct InvalidHex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let hex = "0123456789abcdef0123456789ABCDEF01234567";
        let id = ObjectId::from_hex(hex.as_bytes()).expect("valid hex");
        assert_eq!(id.to_hex(), hex.to_lowercase());
        assert!(id.starts_with_hex("0123456789AB"));
        assert!(!id.starts_with_hex("1"));
        assert!(ObjectId::from_hex(b"xyz").is_none());
        assert!(ObjectId::from_hex(&[b'g'; 40]).is_none());
        assert!(ObjectId::from_hex(&[b'a'; 41]).is_none());
        // Any one byte that is not a hex digit, anywhere, spoils the whole id.
        for len in [40, 64] {
            for at in 0..len {
                for bad in [b'g', b'G', b'/', b':', b'@', b'`', b' ', 0, 0xff] {
                    let mut hex = vec![b'a'; len];
                    hex[at] = bad;
                    assert!(ObjectId::from_hex(&hex).is_none(), "{len} {at} {bad}");
                }
            }
        }
    }

    #[test]
    fn sha256_ids_keep_their_length_and_sort_by_their_bytes() {
        let hex = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321";
        let id = ObjectId::from_hex(hex.as_bytes()).expect("64 digits");
        assert_eq!(id.kind(), HashKind::Sha256);
        assert_eq!(id, HashKind::Sha256.empty_tree());
        assert_eq!(id.to_hex(), hex);
        assert_eq!(id.as_bytes().len(), 32);
        assert!(id.starts_with_hex(hex));
        assert!(!id.starts_with_hex(&format!("{hex}0")));
        let mut h = HashKind::Sha256.hasher();
        h.update(b"tree 0\0");
        assert_eq!(h.finish(), id);
        let mut h = HashKind::Sha1.hasher();
        h.update(b"tree 0\0");
        assert_eq!(h.finish(), ObjectId::EMPTY_TREE);
        // Ids that differ only in their last byte order by it.
        let mut a = id.as_bytes().to_vec();
        a[31] = 0x20;
        let lower = ObjectId::from_raw(HashKind::Sha256, &a).expect("32 bytes");
        assert!(lower < id);
        assert_eq!(HashKind::Sha256.null().to_hex(), "0".repeat(64));
        assert!(ObjectId::from_hex_of(HashKind::Sha1, hex.as_bytes()).is_none());
    }
}
