//! Read-only file mappings: the one module of gitcore allowed to use `unsafe`.
//!
//! Pack and index files are immutable once git has renamed them into place (git writes new files
//! and renames; it never rewrites a pack in place), so mapping them is what git itself does. A
//! file that is truncated by another process while mapped would raise SIGBUS; git never does that
//! to a finished pack, and gitcore only maps files under `objects/`.

use std::fs::File;
use std::io;
use std::path::Path;

/// A read-only view of a whole file (or, for fuzzing and tests, of bytes in memory).
#[derive(Debug)]
pub struct Mapped {
    map: Option<memmap2::Mmap>,
    owned: Vec<u8>,
}

impl Mapped {
    /// Maps `path` read-only. Empty files are represented without a mapping (mmap of length 0 is
    /// an error on Linux).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Mapped::from_vec(Vec::new()));
        }
        // SAFETY: the mapping is read-only and private to this process; see the module comment for
        // why the file does not change underneath it.
        #[expect(unsafe_code, reason = "memory-mapping immutable pack and index files")]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Mapped {
            map: Some(map),
            owned: Vec::new(),
        })
    }

    /// Bytes already in memory.
    pub fn from_vec(owned: Vec<u8>) -> Self {
        Mapped { map: None, owned }
    }

    /// Tells the kernel this process is done with the whole pages inside `range` for now: they
    /// leave its resident set (they stay in the page cache) and are mapped again from the file
    /// when read. A scan over a pack of several hundred megabytes then holds only the pages it is
    /// reading, not the whole file. Advisory: errors are ignored.
    pub fn release(&self, range: std::ops::Range<usize>) {
        const PAGE: usize = 4096;
        let Some(map) = &self.map else { return };
        let start = range.start / PAGE * PAGE;
        let end = range.end.min(map.len()) / PAGE * PAGE;
        if end <= start {
            return;
        }
        // SAFETY: the mapping is read-only and shared with the file, which does not change (see
        // the module comment): after MADV_DONTNEED, a read faults the same bytes back in from the
        // page cache or the file, so every borrow of `bytes()` keeps seeing identical contents.
        #[expect(
            unsafe_code,
            reason = "dropping pages of an immutable read-only file mapping"
        )]
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&self.owned)
    }
}
