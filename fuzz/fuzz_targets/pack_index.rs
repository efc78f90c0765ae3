//! Arbitrary bytes as a `.idx` file (v1 or v2): validation, lookups, offsets, prefixes.
#![no_main]

use gitcore::ObjectId;
use gitcore::odb::idx::PackIndex;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let check = |bytes: Vec<u8>| {
        let Ok(index) = PackIndex::from_bytes(std::path::Path::new("fuzz.idx"), bytes) else {
            return;
        };
        for i in 0..index.len().min(4096) {
            let id = index.oid_at(i);
            let _ = index.offset_at(i);
            let _ = index.lookup(&id);
        }
        let _ = index.lookup(&ObjectId::from_bytes([0x5a; 20]));
        let _ = index.prefix_matches("5a5a", 8);
    };
    check(data.to_vec());
    // The same bytes with a correct trailing checksum, to get past the first check.
    if data.len() >= 20 {
        let mut fixed = data.to_vec();
        let n = fixed.len() - 20;
        let sum = Sha1::digest(&fixed[..n]).to_vec();
        fixed[n..].copy_from_slice(&sum);
        check(fixed);
    }
});
