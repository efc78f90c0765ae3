//! Filling in authors, author times and subjects after a topology-only load.

use std::sync::Arc;

use rayon::prelude::*;

use super::store::Chunk;
use super::{CommitGraph, CommitIdx, People, Person};
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

/// One commit's metadata as stored in its object.
struct Decoded<'a> {
    name: &'a [u8],
    email: &'a [u8],
    encoding: Option<&'a [u8]>,
    author_time: i64,
    author_tz: i16,
    commit_time: i64,
    summary: String,
}

/// Reads commit `id` and picks out what the graph keeps of it.
fn decode<'a>(
    reader: &mut crate::odb::OdbReader<'_>,
    id: &crate::oid::ObjectId,
    buf: &'a mut Vec<u8>,
) -> Result<Decoded<'a>, String> {
    reader
        .read_kind(id, ObjectKind::Commit, buf)
        .map_err(|e| e.to_string())?;
    let c = CommitRef::parse(buf).map_err(|e| format!("commit {id}: {e}"))?;
    Ok(Decoded {
        name: c.author.name,
        email: c.author.email,
        encoding: c.encoding,
        author_time: c.author.time,
        author_tz: c.author.tz_minutes.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
        commit_time: c.committer.time,
        summary: c.summary(),
    })
}

fn decode_chunk(
    chunk: &Chunk,
    reader: &mut crate::odb::OdbReader<'_>,
    buf: &mut Vec<u8>,
) -> ChunkMeta {
    let mut m = ChunkMeta::default();
    for (j, id) in chunk.oids.iter().enumerate() {
        match decode(reader, &id, buf) {
            Ok(d) => {
                m.author
                    .push(m.people.intern_raw(d.name, d.email, d.encoding));
                m.author_time.push(d.author_time);
                m.author_tz.push(d.author_tz);
                m.commit_time.push(d.commit_time);
                m.summaries.push_str(super::store::clip(&d.summary));
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

/// What a row of the graph shows of a commit besides its place: author, author time, subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// The author.
    pub author: Person,
    /// Author time (seconds since the epoch).
    pub author_time: i64,
    /// The subject line (clipped as the graph clips it).
    pub summary: String,
}

impl CommitGraph {
    /// Where the load that built this graph found its commits, and what decoding them cost.
    pub fn load_source(&self) -> super::LoadSource {
        self.source
    }

    /// Whether authors, author times and subjects are loaded (false right after a topology-only
    /// load from the commit-graph file).
    pub fn has_metadata(&self) -> bool {
        !self.metadata_pending
    }

    /// Author, author time and subject of `commits`: from the graph once its metadata is read,
    /// else read from the objects one by one (a window of rows costs a few microseconds per
    /// commit), so rows show the same before [`CommitGraph::fill_metadata`] as after. A commit
    /// that cannot be read shows as the filled graph would show it: no author, its commit time,
    /// no subject.
    pub fn summaries(&self, repo: &Repository, commits: &[CommitIdx]) -> Vec<CommitSummary> {
        let from_graph = |i: CommitIdx| CommitSummary {
            author: self.author(i).clone(),
            author_time: self.author_time(i),
            summary: self.summary(i).to_owned(),
        };
        if !self.metadata_pending {
            return commits.iter().map(|&i| from_graph(i)).collect();
        }
        let mut reader = repo.odb().reader();
        let mut buf = Vec::new();
        commits
            .iter()
            .map(|&i| match decode(&mut reader, &self.oid(i), &mut buf) {
                Ok(d) => CommitSummary {
                    author: Person::through(
                        &self.mailmap,
                        &crate::object::decode_text(d.name, d.encoding),
                        &crate::object::decode_text(d.email, d.encoding),
                    ),
                    author_time: d.author_time,
                    summary: super::store::clip(&d.summary).to_owned(),
                },
                Err(_) => from_graph(i),
            })
            .collect()
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
        self.map_people();
    }
}
