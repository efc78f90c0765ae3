//! What the pack-index targets check, for either hash: every entry's id, offset and lookup,
//! a lookup of an absent id and a prefix search, on the bytes as given and with a correct
//! trailing checksum (to get past the first check).

use gitcore::ObjectId;
use gitcore::odb::idx::PackIndex;
use gitcore::oid::HashKind;

pub fn run(hash: HashKind, data: &[u8]) {
    let check = |bytes: Vec<u8>| {
        let Ok(index) = PackIndex::from_bytes(std::path::Path::new("fuzz.idx"), bytes, hash)
        else {
            return;
        };
        for i in 0..index.len().min(4096) {
            let id = index.oid_at(i);
            assert_eq!(id.kind(), hash);
            let _ = index.offset_at(i);
            let _ = index.lookup(&id);
        }
        let absent = ObjectId::from_raw(hash, &[0x5a; 32]).expect("32 bytes");
        let _ = index.lookup(&absent);
        let _ = index.prefix_matches("5a5a", 8);
    };
    check(data.to_vec());
    let len = hash.id_len();
    if data.len() >= len {
        let mut fixed = data.to_vec();
        let n = fixed.len() - len;
        let sum = hash.digest(&fixed[..n]);
        fixed[n..].copy_from_slice(sum.as_bytes());
        check(fixed);
    }
}
