//! Arbitrary bytes as `.git/index`: twice, as given and with a valid checksum appended (so the
//! fuzzer reaches the entry parser instead of stopping at the checksum).
#![no_main]

use gitcore::worktree::Index;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("index");
    let _ = Index::parse(data, path);
    let mut signed = data.to_vec();
    signed.extend_from_slice(&Sha1::digest(data));
    let _ = Index::parse(&signed, path);
});
