//! Arbitrary bytes as a `.idx` file (v1 or v2) of SHA-1 ids: validation, lookups, offsets,
//! prefixes. `pack_index_sha256` runs the same checks on indexes of 32-byte ids.
#![no_main]

use gitcore::oid::HashKind;
use libfuzzer_sys::fuzz_target;

#[path = "pack_index_check.rs"]
mod pack_index_check;

fuzz_target!(|data: &[u8]| pack_index_check::run(HashKind::Sha1, data));
