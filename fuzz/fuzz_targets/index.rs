//! Arbitrary bytes as `.git/index`: twice, as given and with a valid checksum appended (so the
//! fuzzer reaches the entry parser instead of stopping at the checksum).
#![no_main]

use gitcore::worktree::Index;
use libfuzzer_sys::fuzz_target;
use gitcore::oid::HashKind;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("index");
    for hash in [HashKind::Sha1, HashKind::Sha256] {
        let _ = Index::parse(data, path, hash);
        let mut signed = data.to_vec();
        signed.extend_from_slice(hash.digest(data).as_bytes());
        let _ = Index::parse(&signed, path, hash);
    }
});
