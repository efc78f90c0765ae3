//! Searching the whole history with a small query language.
//!
//! A query is a list of terms separated by spaces; a commit matches when every term does. A term
//! is free text or `qualifier:value`; a value with spaces is quoted (`author:"Ada Lovelace"`,
//! `"two words"`), and a leading `-` negates a term (`-merge:only`, `-author:bot`).
//!
//! | term | matches commits |
//! | --- | --- |
//! | text | whose subject, author name or email contains it (case-insensitive), or whose hash starts with it |
//! | `author:` | whose author name or email contains the value (case-insensitive) |
//! | `hash:` | whose hash starts with the value |
//! | `message:` | whose whole message contains the value (case-insensitive; reads every candidate commit) |
//! | `branch:` | reachable from a branch (local or remote-tracking) whose short or full name equals the value, `*` globbing |
//! | `tag:` | that a tag with that short or full name (`*` globbing) points at, peeled |
//! | `after:`, `before:` | whose committer time is at or after / at or before a date: `2024-05-01`, `2024-05-01T12:30[:00]`, `@1714521600`, or an age like `3d`, `2w`, `6m`, `1y`, `12h` (times are UTC) |
//! | `merge:only`, `merge:exclude` | with two or more parents / with fewer |
//! | `path:` | the history of the file or directory at that path as `git log -- path` shows it: git's default history simplification (a commit that left the path as one of its parents had it follows only that parent, and is not shown) |
//! | `fullpath:` | that changed the file or directory at that path against some parent (a root commit: that has it), like `git rev-list --full-history -- path` |
//!
//! A word that looks like a qualifier but names none (`fix:` in a subject) is plain text.
//!
//! Cheap terms run first over every commit; `message:` and `fullpath:` then read objects only for
//! the commits still in the running, in parallel; `path:` walks the history from every ref.

use rayon::prelude::*;

use crate::ObjectId;
use crate::graph::commit_graph_file::CommitGraphFile;
use crate::graph::{CommitGraph, CommitIdx, RefKind};
use crate::layout::glob_match;
use crate::object::{CommitRef, EntryMode, TreeIter};
use crate::odb::{ObjectKind, Odb, OdbError, OdbReader};
use crate::oid::OidMap;

/// Why a query could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// Why a search failed while reading objects.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// An object could not be read.
    #[error(transparent)]
    Odb(#[from] OdbError),
    /// A commit or tree could not be parsed.
    #[error("object {id}: {reason}")]
    Parse {
        /// The object.
        id: ObjectId,
        /// What was wrong.
        reason: String,
    },
    /// The query tests authors or subjects and the graph has not read them yet
    /// ([`CommitGraph::fill_metadata`]).
    #[error("the commits' authors and subjects are still being read")]
    MetadataPending,
}

/// What one term tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// Subject, author or hash prefix (lowercased).
    Text(String),
    /// Author name or email (lowercased).
    Author(String),
    /// Hash prefix (lowercase hex).
    Hash(String),
    /// Whole message (lowercased).
    Message(String),
    /// Reachable from matching branches.
    Branch(String),
    /// Pointed at by matching tags.
    Tag(String),
    /// Committer time at or after (seconds since the epoch).
    After(i64),
    /// Committer time at or before.
    Before(i64),
    /// Merge commits (`true`) or others (`false`).
    Merge(bool),
    /// Changed the path (components): in the simplified history (`path:`), or against any parent
    /// (`fullpath:`, `full`).
    Path {
        /// The path's components.
        parts: Vec<Vec<u8>>,
        /// Full history (every commit that differs from some parent at the path).
        full: bool,
    },
}

/// A term: a predicate, possibly negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Matches when the predicate does not.
    pub negated: bool,
    /// The test.
    pub predicate: Predicate,
}

/// A parsed query: the conjunction of its terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// The terms; an empty query matches nothing.
    pub terms: Vec<Term>,
}

/// Longest query accepted, in bytes.
pub const MAX_QUERY: usize = 1024;
/// Most terms in one query.
pub const MAX_TERMS: usize = 16;
/// Most `message:` and `path:` terms in one query: each reads objects for every commit still in
/// the running (16 negated `path:` terms took 6.4 s on a 200,000-commit history).
pub const MAX_OBJECT_TERMS: usize = 3;

/// Splits a query into (negated, word) pairs, honouring double quotes anywhere in a word.
fn words(q: &str) -> Result<Vec<(bool, String)>, QueryError> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        let negated = first == '-';
        if negated {
            chars.next();
        }
        let mut word = String::new();
        let mut quoted = false;
        let mut had_quotes = false;
        while let Some(c) = chars.next_if(|&c| quoted || !c.is_whitespace()) {
            if c == '"' {
                quoted = !quoted;
                had_quotes = true;
            } else {
                word.push(c);
            }
        }
        if quoted {
            return Err(QueryError("a quote is not closed".into()));
        }
        if word.is_empty() && !had_quotes {
            if negated {
                return Err(QueryError("`-` must be followed by a term".into()));
            }
            continue;
        }
        out.push((negated, word));
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(s: &str, what: &str) -> Result<i64, QueryError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 12 {
        return Err(QueryError(format!("{what} {s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| QueryError(format!("{what} {s:?} is not a number")))
}

/// A date: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS][Z]`, `@SECONDS`, or an age (`3d`, `2w`, `6m`,
/// `1y`, `12h`) before `now`.
pub fn parse_date(s: &str, now: i64) -> Result<i64, QueryError> {
    let bad = || {
        QueryError(format!(
            "{s:?} is not a date (use 2024-05-01, 2024-05-01T12:30, @1714521600 or an age like 2w)"
        ))
    };
    if let Some(secs) = s.strip_prefix('@') {
        return number(secs, "timestamp");
    }
    if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic())
        && s.len() > 1
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        let n = number(&s[..s.len() - 1], "age")?;
        let secs = match unit {
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            'm' => 30 * 86_400,
            'y' => 365 * 86_400,
            _ => return Err(bad()),
        };
        return Ok(now.saturating_sub(n.saturating_mul(secs)));
    }
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t.trim_end_matches(['Z', 'z']))),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d) = (number(y, "year")?, number(m, "month")?, number(d, "day")?);
    if y.to_string().len() != 4 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let mut hms = t.split(':');
        let h = number(hms.next().unwrap_or(""), "hour")?;
        let min = number(hms.next().ok_or_else(bad)?, "minute")?;
        let sec = hms.next().map_or(Ok(0), |x| number(x, "second"))?;
        if hms.next().is_some() || h > 23 || min > 59 || sec > 60 {
            return Err(bad());
        }
        secs += h * 3600 + min * 60 + sec;
    }
    Ok(secs)
}

impl Query {
    /// Whether a term tests authors or subjects, which a graph loaded from a commit-graph file
    /// reads after its topology ([`CommitGraph::has_metadata`]).
    pub fn reads_metadata(&self) -> bool {
        self.terms
            .iter()
            .any(|t| matches!(t.predicate, Predicate::Text(_) | Predicate::Author(_)))
    }

    /// Parses `q`; relative dates count back from `now` (seconds since the epoch).
    pub fn parse(q: &str, now: i64) -> Result<Query, QueryError> {
        if q.len() > MAX_QUERY {
            return Err(QueryError(format!(
                "the query is longer than {MAX_QUERY} bytes"
            )));
        }
        let mut terms = Vec::new();
        for (negated, word) in words(q)? {
            let predicate = match word.split_once(':') {
                Some((qual, value)) if is_qualifier(qual) => {
                    if value.is_empty() {
                        return Err(QueryError(format!("{qual}: needs a value")));
                    }
                    qualified(qual, value, now)?
                }
                _ => {
                    let text = word.to_lowercase();
                    if text.is_empty() {
                        continue;
                    }
                    Predicate::Text(text)
                }
            };
            terms.push(Term { negated, predicate });
        }
        if terms.len() > MAX_TERMS {
            return Err(QueryError(format!("a query has at most {MAX_TERMS} terms")));
        }
        let reading = terms
            .iter()
            .filter(|t| matches!(t.predicate, Predicate::Message(_) | Predicate::Path { .. }))
            .count();
        if reading > MAX_OBJECT_TERMS {
            return Err(QueryError(format!(
                "a query has at most {MAX_OBJECT_TERMS} message:, path: and fullpath: terms"
            )));
        }
        Ok(Query { terms })
    }
}

fn is_qualifier(q: &str) -> bool {
    matches!(
        q,
        "author"
            | "hash"
            | "message"
            | "branch"
            | "tag"
            | "after"
            | "before"
            | "merge"
            | "path"
            | "fullpath"
    )
}

fn qualified(qual: &str, value: &str, now: i64) -> Result<Predicate, QueryError> {
    Ok(match qual {
        "author" => Predicate::Author(value.to_lowercase()),
        "hash" => {
            let v = value.to_ascii_lowercase();
            // Up to a SHA-256 id's 64 digits.
            if v.len() > 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(QueryError(format!(
                    "hash:{value} is not a hexadecimal prefix"
                )));
            }
            Predicate::Hash(v)
        }
        "message" => Predicate::Message(value.to_lowercase()),
        "branch" => Predicate::Branch(value.to_string()),
        "tag" => Predicate::Tag(value.to_string()),
        "after" => Predicate::After(parse_date(value, now)?),
        "before" => Predicate::Before(parse_date(value, now)?),
        "merge" => match value {
            "only" => Predicate::Merge(true),
            "exclude" => Predicate::Merge(false),
            _ => {
                return Err(QueryError(format!(
                    "merge:{value}: use merge:only or merge:exclude"
                )));
            }
        },
        _ => {
            let parts: Vec<Vec<u8>> = value
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .map(|p| p.as_bytes().to_vec())
                .collect();
            if parts.is_empty() || parts.iter().any(|p| p == b"..") {
                return Err(QueryError(format!(
                    "{qual}:{value} is not a path in the repository"
                )));
            }
            Predicate::Path {
                parts,
                full: qual == "fullpath",
            }
        }
    })
}

/// Whether `hay` contains `needle` (already lowercased), ignoring case.
fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let n = needle.as_bytes();
        hay.as_bytes()
            .windows(n.len().max(1))
            .any(|w| w.eq_ignore_ascii_case(n))
            || n.is_empty()
    } else {
        hay.to_lowercase().contains(needle)
    }
}

fn ref_matches(pattern: &str, full: &str, short: &str) -> bool {
    glob_match(pattern, short) || glob_match(pattern, full)
}

/// Commits reachable from `tips`.
fn reachable(graph: &CommitGraph, tips: impl Iterator<Item = CommitIdx>) -> Vec<bool> {
    let mut seen = vec![false; graph.len()];
    let mut stack: Vec<CommitIdx> = tips.collect();
    while let Some(c) = stack.pop() {
        if std::mem::replace(&mut seen[c as usize], true) {
            continue;
        }
        stack.extend(graph.parents(c).iter().filter(|&&p| !seen[p as usize]));
    }
    seen
}

/// Evaluates a cheap predicate for every commit (`None` for the ones that read objects).
fn cheap(graph: &CommitGraph, p: &Predicate) -> Option<Vec<bool>> {
    let n = graph.len() as u32;
    let all = |f: &dyn Fn(CommitIdx) -> bool| (0..n).map(f).collect::<Vec<bool>>();
    Some(match p {
        Predicate::Text(t) => {
            let hex = t.len() >= 4 && t.bytes().all(|b| b.is_ascii_hexdigit());
            let people: Vec<bool> = graph
                .people()
                .iter()
                .map(|a| contains_ci(&a.name, t) || contains_ci(&a.email, t))
                .collect();
            all(&|c| {
                people[graph.author_id(c) as usize]
                    || contains_ci(graph.summary(c), t)
                    || (hex && graph.oid(c).to_hex().starts_with(t.as_str()))
            })
        }
        Predicate::Author(t) => {
            let people: Vec<bool> = graph
                .people()
                .iter()
                .map(|a| contains_ci(&a.name, t) || contains_ci(&a.email, t))
                .collect();
            all(&|c| people[graph.author_id(c) as usize])
        }
        Predicate::Hash(h) => {
            let mut hits = vec![false; graph.len()];
            for c in graph.find_prefix(h, usize::MAX) {
                hits[c as usize] = true;
            }
            hits
        }
        Predicate::Branch(b) => reachable(
            graph,
            graph
                .refs()
                .iter()
                .filter(|r| {
                    let short = match r.kind {
                        RefKind::Branch => r.name.strip_prefix("refs/heads/"),
                        RefKind::Remote => r.name.strip_prefix("refs/remotes/"),
                        _ => None,
                    };
                    short.is_some_and(|s| ref_matches(b, &r.name, s))
                })
                .map(|r| r.commit),
        ),
        Predicate::Tag(t) => {
            let mut hits = vec![false; graph.len()];
            for r in graph.refs() {
                if let Some(short) = r.name.strip_prefix("refs/tags/")
                    && ref_matches(t, &r.name, short)
                {
                    hits[r.commit as usize] = true;
                }
            }
            hits
        }
        Predicate::After(t) => all(&|c| graph.commit_time(c) >= *t),
        Predicate::Before(t) => all(&|c| graph.commit_time(c) <= *t),
        Predicate::Merge(m) => all(&|c| (graph.parents(c).len() >= 2) == *m),
        Predicate::Message(_) | Predicate::Path { .. } => return None,
    })
}

/// Reads commits' parents' and own trees and paths, with a memo of trees already walked.
struct PathReader<'a> {
    reader: OdbReader<'a>,
    buf: Vec<u8>,
    /// Per number of path components left: tree -> entry at the rest of the path.
    memo: Vec<OidMap<Option<(EntryMode, ObjectId)>>>,
}

impl PathReader<'_> {
    fn tree_of(&mut self, commit: &ObjectId) -> Result<ObjectId, SearchError> {
        self.reader
            .read_kind(commit, ObjectKind::Commit, &mut self.buf)?;
        let c = CommitRef::parse(&self.buf).map_err(|e| SearchError::Parse {
            id: *commit,
            reason: e.to_string(),
        })?;
        Ok(c.tree)
    }

    /// The entry at `path` under `tree`.
    fn entry(
        &mut self,
        tree: ObjectId,
        path: &[Vec<u8>],
    ) -> Result<Option<(EntryMode, ObjectId)>, SearchError> {
        // Memoized per tree: most commits share most trees.
        let memo = path.len();
        if let Some(hit) = self.memo.get(memo).and_then(|m| m.get(&tree)) {
            return Ok(*hit);
        }
        let Some((name, rest)) = path.split_first() else {
            return Ok(None);
        };
        self.reader
            .read_kind(&tree, ObjectKind::Tree, &mut self.buf)?;
        let mut found = None;
        for e in TreeIter::new(&self.buf, tree.kind()) {
            let e = e.map_err(|e| SearchError::Parse {
                id: tree,
                reason: e.to_string(),
            })?;
            if e.name == name.as_slice() {
                found = Some((e.mode, e.id));
                break;
            }
        }
        let result = match found {
            Some(entry) if rest.is_empty() => Some(entry),
            Some((EntryMode::Tree, sub)) => self.entry(sub, rest)?,
            _ => None,
        };
        if self.memo.len() <= memo {
            self.memo.resize_with(memo + 1, OidMap::default);
        }
        if self.memo[memo].len() < 1 << 18 {
            self.memo[memo].insert(tree, result);
        }
        Ok(result)
    }

    fn at_path(
        &mut self,
        commit: &ObjectId,
        path: &[Vec<u8>],
    ) -> Result<Option<(EntryMode, ObjectId)>, SearchError> {
        let tree = self.tree_of(commit)?;
        self.entry(tree, path)
    }
}

/// The changed-path filters of the repository's commit-graph (`git commit-graph write
/// --changed-paths`), when it has them, asked about one path.
struct PathFilters {
    cg: Option<CommitGraphFile>,
    /// git adds every leading directory of a changed path as a key: all must be present.
    keys: Vec<Vec<u8>>,
}

impl PathFilters {
    fn open(odb: &Odb, path: &[Vec<u8>]) -> PathFilters {
        PathFilters {
            cg: CommitGraphFile::open(odb.objects_dir(), odb.hash())
                .ok()
                .flatten()
                .filter(|cg| cg.has_changed_paths()),
            keys: (1..=path.len()).map(|n| path[..n].join(&b'/')).collect(),
        }
    }

    /// Whether the filters rule out that `c` changed the path against its first parent (they
    /// say nothing about other parents, and nothing without a filter for `c`).
    fn unchanged(&self, graph: &CommitGraph, c: CommitIdx) -> bool {
        let Some(cg) = &self.cg else { return false };
        cg.lookup(&graph.oid(c))
            .and_then(|pos| cg.changed_paths(pos))
            .is_some_and(|f| self.keys.iter().any(|k| f.may_contain(k) == Some(false)))
    }
}

/// Evaluates `message:` or `fullpath:` for the commits in `candidates`, in parallel.
fn expensive(
    odb: &Odb,
    graph: &CommitGraph,
    p: &Predicate,
    candidates: &[CommitIdx],
) -> Result<Vec<bool>, SearchError> {
    match p {
        Predicate::Message(m) => candidates
            .par_iter()
            .map_init(
                || (odb.reader(), Vec::new()),
                |(reader, buf), &c| {
                    let id = graph.oid(c);
                    reader.read_kind(&id, ObjectKind::Commit, buf)?;
                    let commit = CommitRef::parse(buf).map_err(|e| SearchError::Parse {
                        id,
                        reason: e.to_string(),
                    })?;
                    Ok(contains_ci(&String::from_utf8_lossy(commit.message), m))
                },
            )
            .collect(),
        Predicate::Path { parts: path, .. } => {
            // With changed-path filters (`git commit-graph write --changed-paths`), a commit with
            // one parent whose filter rules the path out is answered without reading a tree, as
            // `git log -- path` does. The filters are against the first parent, so they say
            // nothing about merges; roots and commits newer than the file read trees too.
            let filters = PathFilters::open(odb, path);
            let ruled_out =
                |c: CommitIdx| graph.parents(c).len() == 1 && filters.unchanged(graph, c);
            candidates
                .par_iter()
                .map_init(
                    || PathReader {
                        reader: odb.reader(),
                        buf: Vec::new(),
                        memo: Vec::new(),
                    },
                    |r, &c| {
                        if ruled_out(c) {
                            return Ok(false);
                        }
                        let own = r.at_path(&graph.oid(c), path)?;
                        let parents = graph.parents(c);
                        if parents.is_empty() {
                            return Ok(own.is_some());
                        }
                        for &parent in parents {
                            if r.at_path(&graph.oid(parent), path)? != own {
                                return Ok(true);
                            }
                        }
                        Ok(false)
                    },
                )
                .collect()
        }
        _ => Ok(cheap(graph, p)
            .map(|hits| candidates.iter().map(|&c| hits[c as usize]).collect())
            .unwrap_or_default()),
    }
}

/// The commits `git rev-list --all -- path` lists: a walk from every ref, HEAD and childless
/// commit in which a commit whose entry at `path` equals one of its parents' (TREESAME) follows
/// only the first such parent and is not listed; other commits are listed (a root: when it has
/// the path) and all their parents walked. Changed-path filters answer "same as the first parent"
/// without reading trees where they rule the path out.
fn simplified_history(
    odb: &Odb,
    graph: &CommitGraph,
    path: &[Vec<u8>],
) -> Result<Vec<bool>, SearchError> {
    type Entry = Option<(EntryMode, ObjectId)>;
    let n = graph.len();
    let filters = PathFilters::open(odb, path);
    let unchanged_from_first_parent =
        |c: CommitIdx| !graph.parents(c).is_empty() && filters.unchanged(graph, c);
    let reader = || PathReader {
        reader: odb.reader(),
        buf: Vec::new(),
        memo: Vec::new(),
    };
    // The entries the walk may compare are read up front on all cores: every commit's without
    // filters (the walk reaches most commits), with them only those of the commits the filters
    // let through and of their parents.
    let wanted: Vec<bool> = if filters.cg.is_none() {
        vec![true; n]
    } else {
        let mut w = vec![false; n];
        for c in (0..n as u32).filter(|&c| !unchanged_from_first_parent(c)) {
            w[c as usize] = true;
            for &p in graph.parents(c) {
                w[p as usize] = true;
            }
        }
        w
    };
    let mut entries: Vec<Option<Entry>> = (0..n as u32)
        .into_par_iter()
        .map_init(reader, |r, c| {
            if wanted[c as usize] {
                r.at_path(&graph.oid(c), path).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<_, _>>()?;
    let mut r = reader();
    let mut entry =
        |c: CommitIdx, entries: &mut Vec<Option<Entry>>| -> Result<Entry, SearchError> {
            if let Some(e) = entries[c as usize] {
                return Ok(e);
            }
            let e = r.at_path(&graph.oid(c), path)?;
            entries[c as usize] = Some(e);
            Ok(e)
        };
    let mut shown = vec![false; n];
    let mut seen = vec![false; n];
    let mut stack: Vec<CommitIdx> = graph
        .refs()
        .iter()
        .map(|r| r.commit)
        .chain(graph.head_commit())
        .chain((0..n as u32).filter(|&c| graph.children(c).next().is_none()))
        .collect();
    while let Some(c) = stack.pop() {
        if std::mem::replace(&mut seen[c as usize], true) {
            continue;
        }
        let parents = graph.parents(c);
        if parents.is_empty() {
            shown[c as usize] = entry(c, &mut entries)?.is_some();
            continue;
        }
        let mut same = None;
        if unchanged_from_first_parent(c) {
            same = Some(parents[0]);
        } else {
            let own = entry(c, &mut entries)?;
            for &p in parents {
                if entry(p, &mut entries)? == own {
                    same = Some(p);
                    break;
                }
            }
        }
        match same {
            Some(p) => stack.push(p),
            None => {
                shown[c as usize] = true;
                stack.extend(parents.iter().rev());
            }
        }
    }
    Ok(shown)
}

/// The commits matching `query`, in graph order (newest first). An empty query matches nothing.
pub fn search(
    odb: &Odb,
    graph: &CommitGraph,
    query: &Query,
) -> Result<Vec<CommitIdx>, SearchError> {
    if query.terms.is_empty() {
        return Ok(Vec::new());
    }
    if query.reads_metadata() && !graph.has_metadata() {
        return Err(SearchError::MetadataPending);
    }
    let mut keep = vec![true; graph.len()];
    let mut slow = Vec::new();
    for term in &query.terms {
        if let Predicate::Path { parts, full: false } = &term.predicate {
            let hits = simplified_history(odb, graph, parts)?;
            for (k, h) in keep.iter_mut().zip(hits) {
                *k &= h != term.negated;
            }
            continue;
        }
        match cheap(graph, &term.predicate) {
            Some(hits) => {
                for (k, h) in keep.iter_mut().zip(hits) {
                    *k &= h != term.negated;
                }
            }
            None => slow.push(term),
        }
    }
    let mut candidates: Vec<CommitIdx> = (0..graph.len() as u32)
        .filter(|&c| keep[c as usize])
        .collect();
    for term in slow {
        let hits = expensive(odb, graph, &term.predicate, &candidates)?;
        let mut hits = hits.into_iter();
        candidates.retain(|_| hits.next().is_some_and(|h| h != term.negated));
    }
    candidates.sort_unstable_by_key(|&c| graph.row_of(c));
    Ok(candidates)
}

#[cfg(test)]
mod tests;
