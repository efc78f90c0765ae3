//! Opening an object database: the object directory and its alternates, their packs (each
//! validated, or set aside as a problem) and multi-pack-indexes, reusing what has not changed on
//! a refresh; and the databases held in memory (one pack, or a streamed history's objects).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::idx::PackIndex;
use super::midx::MultiPackIndex;
use super::pack::Pack;
use super::{HeldObjects, Odb, OdbError, OdbOptions, PackSlot};
use crate::oid::HashKind;

fn file_key(path: &Path) -> (PathBuf, u64, Option<SystemTime>) {
    let meta = fs::metadata(path).ok();
    (
        path.to_path_buf(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok()),
    )
}

impl Odb {
    /// Opens the object directory `objects_dir` and its alternates, whose objects are named by
    /// `hash` (the repository's object format; see [`crate::format::check`]).
    pub fn open(objects_dir: &Path, hash: HashKind, options: OdbOptions) -> Result<Self, OdbError> {
        Self::open_reusing(objects_dir, hash, options, None)
    }

    /// Opens the object directory again, reusing the already-validated packs of `self` that have
    /// not changed on disk (new packs appear after a fetch or `git gc`).
    pub fn refresh(&self) -> Result<Self, OdbError> {
        if let Some(memory) = self.memory.as_ref().filter(|_| self.dirs.is_empty()) {
            // Held in memory only: nothing on disk to look at again.
            return Ok(Odb::empty(
                self.hash,
                self.options,
                Some(Arc::clone(memory)),
            ));
        }
        let dir = self.dirs.first().cloned().unwrap_or_default();
        Self::open_reusing(&dir, self.hash, self.options, Some(self))
    }

    fn open_reusing(
        objects_dir: &Path,
        hash: HashKind,
        options: OdbOptions,
        previous: Option<&Odb>,
    ) -> Result<Self, OdbError> {
        fs::metadata(objects_dir).map_err(|e| OdbError::io(objects_dir, e))?;
        let mut odb = Odb::empty(hash, options, None);
        odb.add_dir(objects_dir, 0, previous);
        Ok(odb)
    }

    fn add_dir(&mut self, dir: &Path, depth: usize, previous: Option<&Odb>) {
        let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if self.dirs.contains(&canonical) {
            return;
        }
        self.dirs.push(canonical.clone());
        self.add_packs(&canonical, previous);
        let alternates = canonical.join("info").join("alternates");
        let Ok(text) = fs::read(&alternates) else {
            return;
        };
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            if depth + 1 > self.options.max_alternates_depth {
                self.problems.push(format!(
                    "{}: alternates nested deeper than {} levels are ignored",
                    alternates.display(),
                    self.options.max_alternates_depth
                ));
                return;
            }
            let Ok(rel) = std::str::from_utf8(line) else {
                self.problems
                    .push(format!("{}: non-UTF-8 path ignored", alternates.display()));
                continue;
            };
            let path = canonical.join(rel);
            if path.is_dir() {
                self.add_dir(&path, depth + 1, previous);
            } else {
                self.problems.push(format!(
                    "{}: alternate {} does not exist",
                    alternates.display(),
                    path.display()
                ));
            }
        }
    }

    fn add_packs(&mut self, dir: &Path, previous: Option<&Odb>) {
        let pack_dir = dir.join("pack");
        let Ok(entries) = fs::read_dir(&pack_dir) else {
            return;
        };
        let mut packs: Vec<(Option<SystemTime>, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pack"))
            .map(|p| (fs::metadata(&p).and_then(|m| m.modified()).ok(), p))
            .collect();
        // Newest first, like git: recent objects are the ones asked for most.
        packs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));

        let midx_path = pack_dir.join("multi-pack-index");
        let midx = if midx_path.exists() {
            match MultiPackIndex::open(&midx_path, self.hash) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    self.problems.push(e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let covered: Vec<String> = midx
            .as_ref()
            .map(|m| m.pack_names().to_vec())
            .unwrap_or_default();

        let first_new = self.packs.len();
        for (_, pack_path) in packs {
            let idx_name = pack_path.with_extension("idx");
            let in_midx = idx_name
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| covered.iter().any(|c| c == n));
            let key = file_key(&pack_path);
            if let Some(prev) = previous.and_then(|p| {
                p.packs.iter().find(|s| {
                    s.key == key
                        && s.index.is_some() != in_midx
                        && (s.verified || !self.options.verify_index_checksums)
                })
            }) {
                self.packs.push(Arc::clone(prev));
                continue;
            }
            match Self::open_pack(
                &pack_path,
                &idx_name,
                in_midx,
                self.hash,
                self.options.verify_index_checksums,
            ) {
                Ok(slot) => self.packs.push(Arc::new(PackSlot { key, ..slot })),
                Err(e) => self.problems.push(e.to_string()),
            }
        }
        if let Some(midx) = midx {
            let map = midx
                .pack_names()
                .iter()
                .map(|name| {
                    let pack_path = pack_dir.join(name).with_extension("pack");
                    self.packs[first_new..]
                        .iter()
                        .position(|s| s.pack.path() == pack_path)
                        .map(|i| (first_new + i) as u32)
                })
                .collect();
            self.midxs.push((midx, map));
        }
    }

    fn open_pack(
        pack_path: &Path,
        idx_path: &Path,
        in_midx: bool,
        hash: HashKind,
        verify: bool,
    ) -> Result<PackSlot, OdbError> {
        let pack = Pack::open(pack_path, hash)?;
        let index = if in_midx {
            None
        } else {
            let index = PackIndex::open_checking(idx_path, hash, verify)?;
            if index.pack_checksum() != pack.checksum() {
                return Err(OdbError::Corrupt {
                    path: pack_path.to_path_buf(),
                    offset: None,
                    reason: format!(
                        "pack checksum does not match the one recorded in {}",
                        idx_path.display()
                    ),
                });
            }
            if index.len() != pack.count() as usize {
                return Err(OdbError::Corrupt {
                    path: pack_path.to_path_buf(),
                    offset: Some(8),
                    reason: format!(
                        "pack announces {} objects, its index lists {}",
                        pack.count(),
                        index.len()
                    ),
                });
            }
            Some(index)
        };
        Ok(PackSlot {
            pack,
            index,
            key: (PathBuf::new(), 0, None),
            verified: verify,
        })
    }

    /// An object database made of one pack and its index held in memory, with the same
    /// validation as packs on disk (for fuzzing the whole read path).
    pub fn from_pack_bytes(
        pack: Vec<u8>,
        index: Vec<u8>,
        hash: HashKind,
        options: OdbOptions,
    ) -> Result<Self, OdbError> {
        let pack_path = PathBuf::from("memory.pack");
        let pack = Pack::from_bytes(&pack_path, pack, hash)?;
        let index = PackIndex::from_bytes(Path::new("memory.idx"), index, hash)?;
        if index.pack_checksum() != pack.checksum() || index.len() != pack.count() as usize {
            return Err(OdbError::Corrupt {
                path: pack_path,
                offset: None,
                reason: "pack does not match its index".into(),
            });
        }
        let mut odb = Odb::empty(hash, options, None);
        odb.packs.push(Arc::new(PackSlot {
            pack,
            index: Some(index),
            key: (PathBuf::new(), 0, None),
            verified: true,
        }));
        Ok(odb)
    }

    /// An object database of the objects `held` holds in memory and nothing else: the
    /// commits (and tags) of a history streamed from a remote, read before anything is on
    /// disk (a [`MemoryObjects`](super::MemoryObjects) map is one such holder). Every other
    /// object reads as [`OdbError::Missing`]. Their ids are of `hash`.
    pub fn held(held: Arc<dyn HeldObjects>, hash: HashKind, options: OdbOptions) -> Self {
        Odb::empty(hash, options, Some(held))
    }

    /// No directory, no pack: only `memory`, if any.
    fn empty(hash: HashKind, options: OdbOptions, memory: Option<Arc<dyn HeldObjects>>) -> Odb {
        Odb {
            dirs: Vec::new(),
            packs: Vec::new(),
            midxs: Vec::new(),
            problems: Vec::new(),
            options,
            hash,
            memory,
        }
    }
}
