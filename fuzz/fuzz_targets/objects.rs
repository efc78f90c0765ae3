//! Arbitrary bytes as a commit, a tag and a tree.
#![no_main]

use gitcore::object::{CommitRef, TagRef, TreeIter, subject_line};
use gitcore::oid::HashKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CommitRef::parse(data) {
        let _ = c.parents().count();
        let _ = c.summary();
        let _ = subject_line(c.message, c.encoding);
    }
    let _ = TagRef::parse(data);
    for hash in [HashKind::Sha1, HashKind::Sha256] {
        for entry in TreeIter::new(data, hash).take(100_000) {
            if entry.is_err() {
                break;
            }
        }
    }
});
