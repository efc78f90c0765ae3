//! Column chunks of the commit graph.

use std::sync::Arc;

use super::CommitGraph;
use crate::oid::{HashKind, ObjectId};

/// Object ids stored as their bytes only (20 per SHA-1 commit, 32 per SHA-256 one): an
/// [`ObjectId`] value also carries its kind and room for the longest hash.
#[derive(Debug, Clone, Default)]
pub(crate) struct OidColumn {
    /// The kind of every id (taken from the first one pushed).
    kind: HashKind,
    bytes: Vec<u8>,
}

impl OidColumn {
    fn with_capacity(n: usize) -> Self {
        OidColumn {
            kind: HashKind::Sha1,
            bytes: Vec::with_capacity(n * HashKind::Sha1.id_len()),
        }
    }

    /// Appends `id`; every id takes the column's width, so one of another kind (which a
    /// history never holds) cannot shift the ids after it.
    fn push(&mut self, id: ObjectId) {
        if self.bytes.is_empty() {
            self.kind = id.kind();
        }
        let (start, n) = (self.bytes.len(), self.kind.id_len());
        let raw = id.as_bytes();
        self.bytes.extend_from_slice(&raw[..n.min(raw.len())]);
        self.bytes.resize(start + n, 0);
    }

    /// The `j`th id.
    #[inline]
    pub(crate) fn get(&self, j: usize) -> ObjectId {
        let n = self.kind.id_len();
        ObjectId::from_raw(self.kind, &self.bytes[j * n..]).unwrap_or(self.kind.null())
    }

    /// Every id, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.bytes
            .chunks_exact(self.kind.id_len())
            .filter_map(|raw| ObjectId::from_raw(self.kind, raw))
    }
}

/// log2 of the number of commits per chunk.
pub(crate) const CHUNK_BITS: u32 = 12;
/// Commits per chunk: small enough that copying the last chunk on a reload is cheap, large enough
/// that the chunk table of a million-commit history is a few hundred pointers.
pub const CHUNK: usize = 1 << CHUNK_BITS;

/// One chunk of columns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chunk {
    pub(crate) oids: OidColumn,
    /// End offset (into `parents`) of each commit's parents.
    pub(crate) parent_end: Vec<u32>,
    pub(crate) parents: Vec<u32>,
    pub(crate) author: Vec<u32>,
    pub(crate) author_time: Vec<i64>,
    pub(crate) author_tz: Vec<i16>,
    pub(crate) commit_time: Vec<i64>,
    pub(crate) generation: Vec<u32>,
    /// End offset (into `summaries`) of each commit's subject.
    pub(crate) summary_end: Vec<u32>,
    pub(crate) summaries: String,
}

impl Chunk {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Chunk {
            oids: OidColumn::with_capacity(n),
            parent_end: Vec::with_capacity(n),
            parents: Vec::with_capacity(n + n / 8),
            author: Vec::with_capacity(n),
            author_time: Vec::with_capacity(n),
            author_tz: Vec::with_capacity(n),
            commit_time: Vec::with_capacity(n),
            generation: Vec::with_capacity(n),
            summary_end: Vec::with_capacity(n),
            summaries: String::new(),
        }
    }

    /// Appends one commit's columns.
    pub(crate) fn push_commit(&mut self, c: &NewCommit<'_>, generation: u32) {
        self.oids.push(c.oid);
        self.parents.extend_from_slice(c.parents);
        self.parent_end.push(self.parents.len() as u32);
        self.author.push(c.author);
        self.author_time.push(c.author_time);
        self.author_tz.push(c.author_tz);
        self.commit_time.push(c.commit_time);
        self.generation.push(generation);
        self.summaries.push_str(clip(c.summary));
        self.summary_end.push(self.summaries.len() as u32);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.oids.bytes.capacity()
            + self.parent_end.capacity() * 4
            + self.parents.capacity() * 4
            + self.author.capacity() * 4
            + self.author_time.capacity() * 8
            + self.author_tz.capacity() * 2
            + self.commit_time.capacity() * 8
            + self.generation.capacity() * 4
            + self.summary_end.capacity() * 4
            + self.summaries.capacity()
    }

    fn shrink(&mut self) {
        self.oids.bytes.shrink_to_fit();
        self.parent_end.shrink_to_fit();
        self.parents.shrink_to_fit();
        self.author.shrink_to_fit();
        self.author_time.shrink_to_fit();
        self.author_tz.shrink_to_fit();
        self.commit_time.shrink_to_fit();
        self.generation.shrink_to_fit();
        self.summary_end.shrink_to_fit();
        self.summaries.shrink_to_fit();
    }
}

/// Everything needed to append one commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewCommit<'a> {
    pub(crate) oid: ObjectId,
    pub(crate) parents: &'a [u32],
    pub(crate) author: u32,
    pub(crate) author_time: i64,
    pub(crate) author_tz: i16,
    pub(crate) commit_time: i64,
    pub(crate) summary: &'a str,
}

/// Subjects longer than this are cut (at a character boundary): the graph shows one line, the full
/// message is read from the object when a commit is opened.
pub(crate) const MAX_SUMMARY: usize = 4096;

pub(crate) fn clip(s: &str) -> &str {
    if s.len() <= MAX_SUMMARY {
        return s;
    }
    let mut end = MAX_SUMMARY;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl CommitGraph {
    /// Appends a commit whose parents are all already present; returns its index.
    pub(crate) fn push(&mut self, c: NewCommit<'_>) -> u32 {
        let idx = self.len as u32;
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Arc::new(Chunk::with_capacity(CHUNK)));
        }
        let generation = c
            .parents
            .iter()
            .map(|&p| self.generation(p))
            .max()
            .map_or(1, |g| g.saturating_add(1));
        let last = self.chunks.len() - 1;
        Arc::make_mut(&mut self.chunks[last]).push_commit(&c, generation);
        self.len += 1;
        idx
    }

    /// Sets every generation number from the parents (after a bulk build). Parents come first,
    /// so one pass in index order suffices.
    pub(crate) fn number_generations(&mut self) {
        for i in 0..self.len as u32 {
            let g = self
                .parents(i)
                .iter()
                .map(|&p| self.generation(p))
                .max()
                .map_or(1, |g| g.saturating_add(1));
            let (c, j) = ((i as usize) >> CHUNK_BITS, (i as usize) & (CHUNK - 1));
            Arc::make_mut(&mut self.chunks[c]).generation[j] = g;
        }
    }

    /// Releases spare capacity after a bulk load.
    pub(crate) fn shrink(&mut self) {
        for c in &mut self.chunks {
            if let Some(c) = Arc::get_mut(c) {
                c.shrink();
            }
        }
    }
}
