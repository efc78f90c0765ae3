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

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&self.owned)
    }
}
