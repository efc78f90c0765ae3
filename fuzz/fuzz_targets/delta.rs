//! Arbitrary bytes as a delta against an arbitrary base.
#![no_main]

use gitcore::odb::delta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = usize::from(split).min(rest.len());
    let (base, patch) = rest.split_at(at);
    let mut out = Vec::new();
    let _ = delta::result_size(patch);
    let _ = delta::apply(base, patch, &mut out, 1 << 20);
});
