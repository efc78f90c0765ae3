//! A pack body of arbitrary entries, indexed at offsets the input chooses, read through the whole
//! object database path: entry headers, inflation, OFS/REF delta chains, the delta-base cache.
#![no_main]

use gitcore::ObjectId;
use gitcore::odb::{Odb, OdbOptions};
use gitcore::oid::HashKind;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    // Layout: count (1 byte, up to 16), then count u16 offsets into the body, then the body.
    let Some((&count, rest)) = data.split_first() else { return };
    let count = usize::from(count % 17);
    if rest.len() < count * 2 {
        return;
    }
    let (offsets, body) = rest.split_at(count * 2);
    let mut pack = b"PACK".to_vec();
    pack.extend(2u32.to_be_bytes());
    pack.extend((count as u32).to_be_bytes());
    pack.extend_from_slice(body);
    let sum = Sha1::digest(&pack).to_vec();
    pack.extend(&sum);
    // Entry k gets the id [k + 1; 20], so REF_DELTA bases can name one another.
    let mut entries: Vec<(ObjectId, u32)> = (0..count)
        .map(|k| {
            let off = u16::from_be_bytes([offsets[2 * k], offsets[2 * k + 1]]) as u32 + 12;
            (ObjectId::from_bytes([k as u8 + 1; 20]), off)
        })
        .collect();
    entries.sort();
    let mut idx = b"\xfftOc".to_vec();
    idx.extend(2u32.to_be_bytes());
    for b in 0..256u32 {
        let n = entries.iter().filter(|(id, _)| u32::from(id.first_byte()) <= b).count() as u32;
        idx.extend(n.to_be_bytes());
    }
    for (id, _) in &entries {
        idx.extend(id.as_bytes());
    }
    idx.extend(std::iter::repeat_n(0u8, 4 * count));
    for (_, off) in &entries {
        idx.extend(off.to_be_bytes());
    }
    idx.extend(&sum);
    let idx_sum = Sha1::digest(&idx).to_vec();
    idx.extend(idx_sum);
    let options = OdbOptions {
        max_object_size: 1 << 20,
        max_delta_depth: 64,
        delta_cache_bytes: 1 << 20,
        max_alternates_depth: 0,
    };
    let Ok(odb) = Odb::from_pack_bytes(pack, idx, HashKind::Sha1, options) else { return };
    let mut reader = odb.reader();
    for (id, _) in &entries {
        let _ = reader.read_header(id);
        let _ = reader.read(id);
    }
});
