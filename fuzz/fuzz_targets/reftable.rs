//! Arbitrary bytes as a reftable table: as given, and wrapped so the header, footer and CRC
//! check out and the ref and log blocks the input holds are reached.
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
    // The input's first byte places the log section (0: none); the rest is the body after a
    // version 1 header of block size 4096.
    let Some((&log_at, body)) = data.split_first() else {
        return;
    };
    let mut header = b"REFT\x01\x00\x10\x00".to_vec();
    header.extend_from_slice(&[0; 16]);
    let mut table = header.clone();
    table.extend_from_slice(body);
    let log = if log_at == 0 { 0 } else { (24 + usize::from(log_at)).min(table.len()) };
    let mut footer = header;
    for field in [0u64, 0, 0, log as u64, 0] {
        footer.extend_from_slice(&field.to_be_bytes());
    }
    let crc = crc32(&footer);
    footer.extend_from_slice(&crc.to_be_bytes());
    table.extend_from_slice(&footer);
    let _ = parse_table(&table);
});
