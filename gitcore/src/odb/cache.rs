//! A small direct-mapped cache of delta bases, bounded in bytes, owned by one reader.

use super::ObjectKind;

const SLOTS: usize = 512;

/// Objects above this share of the budget are not cached: one huge blob must not evict everything.
const MAX_SHARE: usize = 4;

#[derive(Debug)]
struct Slot {
    pack: u32,
    offset: u64,
    kind: ObjectKind,
    data: Vec<u8>,
}

/// Delta bases keyed by (pack, offset), like git's `delta_base_cache`.
#[derive(Debug)]
pub(crate) struct DeltaCache {
    slots: Vec<Option<Slot>>,
    bytes: usize,
    limit: usize,
}

impl DeltaCache {
    pub(crate) fn new(limit: usize) -> Self {
        DeltaCache {
            slots: (0..SLOTS).map(|_| None).collect(),
            bytes: 0,
            limit,
        }
    }

    fn slot(pack: u32, offset: u64) -> usize {
        let h = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(pack);
        (h >> 32) as usize % SLOTS
    }

    pub(crate) fn get(&self, pack: u32, offset: u64) -> Option<(ObjectKind, &[u8])> {
        match &self.slots[Self::slot(pack, offset)] {
            Some(s) if s.pack == pack && s.offset == offset => Some((s.kind, &s.data)),
            _ => None,
        }
    }

    pub(crate) fn put(&mut self, pack: u32, offset: u64, kind: ObjectKind, data: &[u8]) {
        if data.len() > self.limit / MAX_SHARE {
            return;
        }
        let i = Self::slot(pack, offset);
        if let Some(old) = self.slots[i].take() {
            self.bytes -= old.data.len();
        }
        // Over budget: drop slots in order until there is room. Rare, since each entry is capped.
        let mut j = 0;
        while self.bytes + data.len() > self.limit && j < SLOTS {
            if let Some(old) = self.slots[j].take() {
                self.bytes -= old.data.len();
            }
            j += 1;
        }
        self.bytes += data.len();
        self.slots[i] = Some(Slot {
            pack,
            offset,
            kind,
            data: data.to_vec(),
        });
    }
}
