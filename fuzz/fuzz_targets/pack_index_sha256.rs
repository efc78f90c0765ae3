//! Arbitrary bytes as a `.idx` file (v1 or v2) of SHA-256 ids (32 bytes each, a 64-byte
//! trailer): validation, lookups, offsets, prefixes.
#![no_main]

use gitcore::oid::HashKind;
use libfuzzer_sys::fuzz_target;

#[path = "pack_index_check.rs"]
mod pack_index_check;

fuzz_target!(|data: &[u8]| pack_index_check::run(HashKind::Sha256, data));
