//! Filling in authors, author times and subjects after a topology-only load.

use std::sync::Arc;

use rayon::prelude::*;

use super::store::Chunk;
use super::{CommitGraph, People};
use crate::object::CommitRef;
use crate::odb::ObjectKind;
use crate::repo::Repository;

/// What one chunk's commits decode to, with people numbered locally.
#[derive(Debug, Default)]
struct ChunkMeta {
    people: People,
    author: Vec<u32>,
    author_time: Vec<i64>,
    author_tz: Vec<i16>,
    commit_time: Vec<i64>,
    summary_end: Vec<u32>,
    summaries: String,
    problems: Vec<String>,
}

fn decode_chunk(
    chunk: &Chunk,
    reader: &mut crate::odb::OdbReader<'_>,
    buf: &mut Vec<u8>,
) -> ChunkMeta {
    let mut m = ChunkMeta::default();
    for (j, id) in chunk.oids.iter().enumerate() {
        let parsed = reader
            .read_kind(id, ObjectKind::Commit, buf)
            .map_err(|e| e.to_string())
            .and_then(|()| CommitRef::parse(buf).map_err(|e| format!("commit {id}: {e}")));
        match parsed {
            Ok(c) => {
                m.author.push(
                    m.people
                        .intern_raw(c.author.name, c.author.email, c.encoding),
                );
                m.author_time.push(c.author.time);
                m.author_tz
                    .push(c.author.tz_minutes.clamp(i16::MIN.into(), i16::MAX.into()) as i16);
                m.commit_time.push(c.committer.time);
                m.summaries.push_str(super::store::clip(&c.summary()));
            }
            Err(e) => {
                m.problems.push(e);
                m.author.push(m.people.intern("", ""));
                m.author_time.push(chunk.commit_time[j]);
                m.author_tz.push(0);
                m.commit_time.push(chunk.commit_time[j]);
            }
        }
        m.summary_end.push(m.summaries.len() as u32);
    }
    m
}

impl CommitGraph {
    /// Whether authors, author times and subjects are loaded (false right after a topology-only
    /// load from the commit-graph file).
    pub fn has_metadata(&self) -> bool {
        !self.metadata_pending
    }

    /// Reads every commit's author, author time and subject, on all cores. Does nothing when they
    /// are already loaded.
    pub fn fill_metadata(&mut self, repo: &Repository) {
        if !self.metadata_pending {
            return;
        }
        let odb = repo.odb();
        let metas: Vec<ChunkMeta> = self
            .chunks
            .par_iter()
            .map_init(
                || (odb.reader(), Vec::new()),
                |(reader, buf), chunk| decode_chunk(chunk, reader, buf),
            )
            .collect();
        let people = Arc::make_mut(&mut self.people);
        for (chunk, m) in self.chunks.iter_mut().zip(metas) {
            let map: Vec<u32> = m
                .people
                .list
                .iter()
                .map(|p| people.intern(&p.name, &p.email))
                .collect();
            let c = Arc::make_mut(chunk);
            c.author = m.author.iter().map(|&a| map[a as usize]).collect();
            c.author_time = m.author_time;
            c.author_tz = m.author_tz;
            c.commit_time = m.commit_time;
            c.summary_end = m.summary_end;
            c.summaries = m.summaries;
            self.problems.extend(m.problems);
        }
        self.metadata_pending = false;
    }
}
