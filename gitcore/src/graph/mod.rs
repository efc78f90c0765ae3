//! The commit graph: every commit reachable from HEAD, every ref, other worktrees' HEADs and every
//! stash entry, held compactly and in topological order.
//!
//! Storage is column-wise in chunks of [`CHUNK`] commits, each chunk behind an `Arc`: commit index
//! `i` is in chunk `i >> CHUNK_BITS`. Commits are stored parents-first (every parent has a smaller
//! index than its children), so row `r` of the topological view (children first, newest first) is
//! index `len - 1 - r`. New commits on top are appended, and a reloaded graph shares every full
//! chunk with the previous one: a reload costs what changed, not the size of the history.
//!
//! Per commit the graph keeps the id, parents as indices, an interned author, author and committer
//! times, the generation number and the subject line; nothing is heap-allocated per commit.

pub mod commit_graph_file;
mod load;
mod metadata;
mod reach;
mod reload;
mod store;
mod tips;

use std::collections::HashMap;
use std::sync::Arc;

use crate::oid::ObjectId;
use crate::refs::Head;

pub use load::{
    FetchedGraph, ListedRef, LoadOptions, NewestCommits, NewestOptions, commit_parents,
};
pub use metadata::CommitSummary;
pub use reload::{GraphDelta, RefChange};
pub use store::CHUNK;
use store::{CHUNK_BITS, Chunk};

/// An interned author.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

impl Person {
    /// Who committed as `name <email>`, as `mailmap` names them.
    pub fn through(mailmap: &crate::mailmap::Mailmap, name: &str, email: &str) -> Person {
        let (name, email) = mailmap.map(name, email);
        Person {
            name: name.to_string(),
            email: email.to_string(),
        }
    }
}

/// The kind of a ref, by namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefKind {
    /// `refs/heads/*`.
    Branch,
    /// `refs/remotes/*`.
    Remote,
    /// `refs/tags/*`.
    Tag,
    /// `refs/stash` and its reflog entries.
    Stash,
    /// `refs/notes/*`.
    Notes,
    /// `refs/pull/*` (GitHub, Gitea), `refs/merge-requests/*` (GitLab), `refs/changes/*`
    /// (Gerrit): forge refs for proposed changes.
    Pull,
    /// Any other namespace (`refs/replace/*`, `refs/bisect/*`, ...) and other worktrees' HEADs.
    Other,
}

impl RefKind {
    /// Classifies a full ref name.
    pub fn of(name: &str) -> RefKind {
        if name.starts_with("refs/heads/") {
            RefKind::Branch
        } else if name.starts_with("refs/remotes/") {
            RefKind::Remote
        } else if name.starts_with("refs/tags/") {
            RefKind::Tag
        } else if name == "refs/stash" {
            RefKind::Stash
        } else if name.starts_with("refs/notes/") {
            RefKind::Notes
        } else if name.starts_with("refs/pull/")
            || name.starts_with("refs/merge-requests/")
            || name.starts_with("refs/changes/")
        {
            RefKind::Pull
        } else {
            RefKind::Other
        }
    }
}

/// A ref as placed on the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRef {
    /// Full name (`refs/heads/main`), `stash@{N}` for stash entries, or `worktree:<name>` for
    /// another worktree's HEAD.
    pub name: String,
    /// Its namespace.
    pub kind: RefKind,
    /// What the ref names directly (an annotated tag's tag object, for instance).
    pub target: ObjectId,
    /// The commit it peels to, as a commit index.
    pub commit: u32,
}

/// Index of a commit in a [`CommitGraph`].
pub type CommitIdx = u32;

/// The commit graph of a repository at one moment. Cheap to clone (chunks are shared).
#[derive(Debug, Clone, Default)]
pub struct CommitGraph {
    /// Column chunks; all but the last hold exactly [`CHUNK`] commits.
    chunks: Vec<Arc<Chunk>>,
    len: usize,
    /// People as the commits name them.
    people: Arc<People>,
    /// The mailmap the graph shows people through (empty: as the commits name them).
    mailmap: Arc<crate::mailmap::Mailmap>,
    /// `people` mapped through `mailmap` (empty while the mailmap is).
    shown: Arc<Shown>,
    /// Commit indices sorted by id, for the commits present when it was last rebuilt.
    by_oid: Arc<Vec<u32>>,
    /// Commit indices sorted by id, for commits added since (kept small, merged when it grows).
    by_oid_recent: Vec<u32>,
    /// Children as a CSR table over the first `children_len` commits.
    children: Arc<Csr>,
    /// Children added by reloads since the CSR table was built.
    children_extra: HashMap<u32, Vec<u32>>,
    /// Every ref, stash entry and worktree HEAD that names a commit, sorted by commit index.
    refs: Arc<Vec<GraphRef>>,
    head: Option<Head>,
    /// Commit HEAD points at, as an index.
    head_commit: Option<u32>,
    /// Commits `shallow` lists (sorted).
    shallow: Arc<Vec<ObjectId>>,
    /// Non-fatal problems met while loading (a ref to a missing object, a malformed line).
    problems: Vec<String>,
    /// Whether authors, author times and subjects are still to be read (topology came from the
    /// commit-graph file).
    metadata_pending: bool,
    /// Where the load found its commits and what decoding them cost.
    source: LoadSource,
}

/// Where a load found its commits, and what reading them from the packs cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadSource {
    /// The topology came from a commit-graph file (`objects/info/commit-graph` or a split chain).
    pub commit_graph: bool,
    /// Commits read from the object store for their parents (with a complete commit-graph,
    /// none: only the commits made after it was written).
    pub decoded: usize,
    /// Wall time of those reads: the part of a load a commit-graph file makes unnecessary.
    pub decode_time: std::time::Duration,
}

/// Interned people.
#[derive(Debug, Clone, Default)]
pub(crate) struct People {
    list: Vec<Person>,
    /// `name \0 email \0 encoding` as stored in the commit -> index: a known author costs a hash
    /// lookup and no allocation.
    index: HashMap<Box<[u8]>, u32, std::hash::BuildHasherDefault<BytesHasher>>,
    /// Decoded person -> index, so one person spelled in two encodings is interned once.
    decoded: HashMap<Person, u32>,
    key: Vec<u8>,
}

impl People {
    /// Drops the lookup tables, keeping the list: a finished batch of the load is only read by
    /// index, and with a table per batch of a thousand commits the tables outweighed the commits.
    pub(crate) fn seal(&mut self) {
        self.index = HashMap::default();
        self.decoded = HashMap::new();
        self.key = Vec::new();
        self.list.shrink_to_fit();
    }

    /// Interns a decoded person.
    pub(crate) fn intern(&mut self, name: &str, email: &str) -> u32 {
        self.intern_raw(name.as_bytes(), email.as_bytes(), None)
    }

    /// Interns a person from a commit's raw bytes, decoding them (per the commit's `encoding`)
    /// only the first time they are seen.
    pub(crate) fn intern_raw(&mut self, name: &[u8], email: &[u8], encoding: Option<&[u8]>) -> u32 {
        self.key.clear();
        self.key.extend_from_slice(name);
        self.key.push(0);
        self.key.extend_from_slice(email);
        self.key.push(0);
        self.key.extend_from_slice(encoding.unwrap_or_default());
        if let Some(&i) = self.index.get(self.key.as_slice()) {
            return i;
        }
        let person = Person {
            name: crate::object::decode_text(name, encoding),
            email: crate::object::decode_text(email, encoding),
        };
        let next = self.list.len() as u32;
        let i = *self.decoded.entry(person.clone()).or_insert(next);
        if i == next {
            self.list.push(person);
        }
        self.index.insert(self.key.clone().into_boxed_slice(), i);
        i
    }
}

/// People as shown: each person of [`People`] mapped through the mailmap, equal results merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    list: Vec<Person>,
    /// Index into `list` of each person of [`People`], in order.
    of_raw: Vec<u32>,
    index: HashMap<Person, u32>,
}

/// FxHash over bytes: the people index is probed once per commit, and SipHash's DoS resistance
/// buys nothing for keys that come from the repository being shown (a collision only costs time
/// within one load, bounded by the number of distinct authors).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BytesHasher(u64);

impl std::hash::Hasher for BytesHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

/// Children as compressed sparse rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Csr {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Csr {
    fn get(&self, i: u32) -> &[u32] {
        let i = i as usize;
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&s), Some(&e)) => &self.items[s as usize..e as usize],
            _ => &[],
        }
    }
}

impl CommitGraph {
    fn chunk(&self, i: CommitIdx) -> (&Chunk, usize) {
        let i = i as usize;
        (&self.chunks[i >> CHUNK_BITS], i & (CHUNK - 1))
    }

    /// Number of commits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the graph is empty (unborn HEAD and no refs).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The commit shown at `row` (row 0 is the newest; children come before parents).
    pub fn at_row(&self, row: usize) -> Option<CommitIdx> {
        (row < self.len).then(|| (self.len - 1 - row) as u32)
    }

    /// The row of commit `i`.
    pub fn row_of(&self, i: CommitIdx) -> usize {
        self.len - 1 - i as usize
    }

    /// The commit's id.
    pub fn oid(&self, i: CommitIdx) -> ObjectId {
        let (c, j) = self.chunk(i);
        c.oids.get(j)
    }

    /// The commit's parents in header order (parents absent from the repository, e.g. beyond a
    /// shallow boundary, are left out).
    pub fn parents(&self, i: CommitIdx) -> &[CommitIdx] {
        let (c, j) = self.chunk(i);
        let s = if j == 0 { 0 } else { c.parent_end[j - 1] } as usize;
        &c.parents[s..c.parent_end[j] as usize]
    }

    /// The commit's children (in no particular order).
    pub fn children(&self, i: CommitIdx) -> impl Iterator<Item = CommitIdx> + '_ {
        self.children.get(i).iter().copied().chain(
            self.children_extra
                .get(&i)
                .into_iter()
                .flat_map(|v| v.iter().copied()),
        )
    }

    /// The author, mapped through the graph's mailmap (empty name and email until the metadata
    /// is read: see [`CommitGraph::summaries`] for rows shown before).
    pub fn author(&self, i: CommitIdx) -> &Person {
        &self.people()[self.author_id(i) as usize]
    }

    /// The interned author number, after the mailmap (equal numbers, equal people): an index
    /// into [`CommitGraph::people`].
    pub fn author_id(&self, i: CommitIdx) -> u32 {
        let (c, j) = self.chunk(i);
        let raw = c.author[j];
        if self.mailmap.is_empty() {
            raw
        } else {
            self.shown.of_raw[raw as usize]
        }
    }

    /// All interned people, as the mailmap shows them.
    pub fn people(&self) -> &[Person] {
        if self.mailmap.is_empty() {
            &self.people.list
        } else {
            &self.shown.list
        }
    }

    /// The mailmap people are shown through.
    pub fn mailmap(&self) -> &crate::mailmap::Mailmap {
        &self.mailmap
    }

    /// Shows people through `mailmap` from now on (and in every graph reloaded from this one).
    /// Costs one lookup per distinct person; nothing when the map is the one in use.
    pub fn use_mailmap(&mut self, mailmap: Arc<crate::mailmap::Mailmap>) {
        if *mailmap == *self.mailmap {
            return;
        }
        self.mailmap = mailmap;
        self.shown = Arc::default();
        self.map_people();
    }

    /// Maps the people interned since the last call (call after every change to `people`).
    fn map_people(&mut self) {
        if self.mailmap.is_empty() || self.shown.of_raw.len() == self.people.list.len() {
            return;
        }
        let shown = Arc::make_mut(&mut self.shown);
        for p in &self.people.list[shown.of_raw.len()..] {
            let (name, email) = self.mailmap.map(&p.name, &p.email);
            let person = Person {
                name: name.to_string(),
                email: email.to_string(),
            };
            let next = shown.list.len() as u32;
            let i = *shown.index.entry(person.clone()).or_insert(next);
            if i == next {
                shown.list.push(person);
            }
            shown.of_raw.push(i);
        }
    }

    /// Author time (seconds since the epoch; the committer time until the metadata is read).
    pub fn author_time(&self, i: CommitIdx) -> i64 {
        let (c, j) = self.chunk(i);
        c.author_time[j]
    }

    /// Author time zone offset in minutes.
    pub fn author_tz(&self, i: CommitIdx) -> i16 {
        let (c, j) = self.chunk(i);
        c.author_tz[j]
    }

    /// Committer time (seconds since the epoch), which orders ties in the topological view.
    pub fn commit_time(&self, i: CommitIdx) -> i64 {
        let (c, j) = self.chunk(i);
        c.commit_time[j]
    }

    /// Generation number: 1 for roots, else one more than the highest parent's.
    pub fn generation(&self, i: CommitIdx) -> u32 {
        let (c, j) = self.chunk(i);
        c.generation[j]
    }

    /// The subject line (empty until the metadata is read).
    pub fn summary(&self, i: CommitIdx) -> &str {
        let (c, j) = self.chunk(i);
        let s = if j == 0 { 0 } else { c.summary_end[j - 1] } as usize;
        c.summaries
            .get(s..c.summary_end[j] as usize)
            .unwrap_or_default()
    }

    /// The index of the commit with id `id`.
    pub fn find(&self, id: &ObjectId) -> Option<CommitIdx> {
        let search = |v: &[u32]| {
            v.binary_search_by(|&i| self.oid(i).cmp(id))
                .ok()
                .map(|p| v[p])
        };
        search(&self.by_oid).or_else(|| search(&self.by_oid_recent))
    }

    /// The hash of the history's ids: those of one history are of one kind, and the first
    /// commit's says which (SHA-1 for an empty history).
    pub fn hash(&self) -> crate::oid::HashKind {
        if self.is_empty() {
            crate::oid::HashKind::Sha1
        } else {
            self.oid(0).kind()
        }
    }

    /// Commits whose hex id starts with `prefix` (hex digits, either case), at most `limit`, in id
    /// order.
    pub fn find_prefix(&self, prefix: &str, limit: usize) -> Vec<CommitIdx> {
        let kind = self.hash();
        if prefix.len() > kind.hex_len() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Vec::new();
        }
        let padded = format!("{prefix:0<width$}", width = kind.hex_len());
        let Some(low) = ObjectId::from_hex(padded.as_bytes()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in [&self.by_oid[..], &self.by_oid_recent[..]] {
            let start = v.partition_point(|&i| self.oid(i) < low);
            out.extend(
                v[start..]
                    .iter()
                    .copied()
                    .take_while(|&i| self.oid(i).starts_with_hex(prefix))
                    .take(limit),
            );
        }
        out.sort_by_key(|&i| self.oid(i));
        out.truncate(limit);
        out
    }

    /// The first-parent chain starting at `i` (including `i`), oldest last.
    pub fn first_parent_chain(&self, i: CommitIdx) -> impl Iterator<Item = CommitIdx> + '_ {
        std::iter::successors(Some(i), move |&c| self.parents(c).first().copied())
    }

    /// Every ref, stash entry and other-worktree HEAD, sorted by commit index.
    pub fn refs(&self) -> &[GraphRef] {
        &self.refs
    }

    /// The refs pointing at commit `i`.
    pub fn refs_at(&self, i: CommitIdx) -> &[GraphRef] {
        let s = self.refs.partition_point(|r| r.commit < i);
        let e = self.refs.partition_point(|r| r.commit <= i);
        &self.refs[s..e]
    }

    /// HEAD as read.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// The commit HEAD points at.
    pub fn head_commit(&self) -> Option<CommitIdx> {
        self.head_commit
    }

    /// How many commits `shallow` lists: more than zero means the history is cut there (a
    /// shallow clone), and older commits are missing on purpose.
    pub fn shallow_count(&self) -> usize {
        self.shallow.len()
    }

    /// Whether `id` is listed in `shallow`.
    pub fn is_shallow(&self, id: &ObjectId) -> bool {
        self.shallow.binary_search(id).is_ok()
    }

    /// Non-fatal problems met while loading.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Approximate heap bytes held by this graph (shared chunks counted in full).
    pub fn heap_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(|c| c.heap_bytes()).sum();
        let people: usize = self
            .people
            .list
            .iter()
            .map(|p| 2 * (p.name.capacity() + p.email.capacity()) + 2 * 48 + 16)
            .sum();
        let refs: usize = self.refs.iter().map(|r| r.name.capacity() + 64).sum();
        chunks
            + people
            + refs
            + self.by_oid.capacity() * 4
            + self.by_oid_recent.capacity() * 4
            + (self.children.start.capacity() + self.children.items.capacity()) * 4
            + self.children_extra.len() * 48
    }

    /// Bytes of subject text held (the part of [`CommitGraph::heap_bytes`] that depends on the
    /// messages rather than the shape of the graph).
    pub fn summary_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.summaries.capacity()).sum()
    }
}
