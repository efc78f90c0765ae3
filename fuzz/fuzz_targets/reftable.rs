//! Arbitrary bytes as a reftable table: as given, and wrapped so the header, footer and CRC
//! check out and the ref and log blocks the input holds are reached: version 1 (SHA-1 ids) and
//! version 2 naming SHA-256 (32-byte ids).
#![no_main]

use gitcore::refs::reftable::parse_table;
use libfuzzer_sys::fuzz_target;

/// CRC-32 (IEEE), bit by bit: slow and small, enough for fuzzing.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_table(data);
    // The input's first byte chooses the version (its top bit: 2 with SHA-256 ids, else 1
    // with SHA-1) and places the log section (its low bits; 0: none); the rest is the body
    // after a header of block size 4096.
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let (v2, log_at) = (first & 0x80 != 0, first & 0x7f);
    let mut header = if v2 { b"REFT\x02\x00\x10\x00".to_vec() } else { b"REFT\x01\x00\x10\x00".to_vec() };
    header.extend_from_slice(&[0; 16]);
    if v2 {
        header.extend_from_slice(b"s256");
    }
    let mut table = header.clone();
    table.extend_from_slice(body);
    let log = if log_at == 0 { 0 } else { (header.len() + usize::from(log_at)).min(table.len()) };
    let mut footer = header;
    for field in [0u64, 0, 0, log as u64, 0] {
        footer.extend_from_slice(&field.to_be_bytes());
    }
    let crc = crc32(&footer);
    footer.extend_from_slice(&crc.to_be_bytes());
    table.extend_from_slice(&footer);
    let _ = parse_table(&table);
});
