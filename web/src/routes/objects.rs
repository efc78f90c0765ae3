//! Hash-addressed routes: `commit/{hash}`, `commit/diff/{hash}`, `tree/{hash}`, `blob/{hash}`.
//! Their answers never change, so they carry strong ETags and `Cache-Control: immutable`.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use gitcore::ObjectId;
use gitcore::diff::{TreeDiffOptions, diff_trees};
use gitcore::mailmap::Mailmap;
use gitcore::object::{CommitRef, Signature, decode_text};
use gitcore::odb::{ObjectKind, OdbError};
use serde_json::{Value, json};

use super::repo_param::RepoObject;
use super::{AppState, snapshot};
use gitvista_actors::{ByteCache, SessionCaches, Snapshot};
use gitvista_errors::ApiError;

mod commits;
mod comparison;
mod files;
mod images;

pub use commits::{commit, commit_diff, file_diff};
pub use comparison::{compare, compare_file};
pub use files::{blame, blob, tree};
pub use images::raw_image;

/// Blobs larger than this are cut (`truncated: true`).
const MAX_BLOB: usize = 1 << 20;
/// Files of a commit diff whose line counts are computed.
const MAX_STAT_FILES: usize = 300;

/// A full hash (40 hex digits for SHA-1, 64 for SHA-256), or 400.
fn parse_hash(hash: &str) -> Result<ObjectId, ApiError> {
    ObjectId::from_hex(hash.as_bytes()).ok_or_else(|| {
        ApiError::bad_request(
            format!("{hash:?} is not a 40- or 64-digit hexadecimal hash"),
            "invalid_hash",
        )
    })
}

/// A full commit id of the graph's kind, or an abbreviation of 4 or more hex digits that names
/// exactly one commit of the graph (as `git rev-parse` would; ambiguous ones are refused with
/// the candidates' count). In a SHA-256 history 40 digits are an abbreviation too.
pub(super) fn resolve_commit(
    graph: &gitcore::graph::CommitGraph,
    hash: &str,
) -> Result<ObjectId, ApiError> {
    let full = graph.hash().hex_len();
    if hash.len() == full {
        return parse_hash(hash);
    }
    if !(4..full).contains(&hash.len()) || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            format!("{hash:?} is not a commit id (4 to {full} hexadecimal digits)"),
            "invalid_hash",
        ));
    }
    match graph.find_prefix(hash, 2).as_slice() {
        [one] => Ok(graph.oid(*one)),
        [] => Err(ApiError::NotFound(format!(
            "no commit starting with {hash}"
        ))),
        _ => Err(ApiError::bad_request(
            format!("{hash} names more than one commit: give more digits"),
            "ambiguous_hash",
        )),
    }
}

fn odb_error(e: OdbError, id: &ObjectId) -> ApiError {
    match e {
        // Not in this clone: a partial clone gets it fetched (see `serve`), else 404.
        OdbError::Missing(m) => ApiError::NeedObjects(vec![m]),
        OdbError::WrongKind { .. } => ApiError::NotFound(format!("no such object {id}")),
        other => ApiError::Unavailable(other.to_string()),
    }
}

/// `ids` that the snapshot's clone does not hold, if any, as the error that gets them fetched.
fn need(odb: &gitcore::odb::Odb, ids: impl IntoIterator<Item = ObjectId>) -> Result<(), ApiError> {
    let mut missing: Vec<ObjectId> = ids.into_iter().filter(|i| !odb.contains(i)).collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::NeedObjects(missing))
    }
}

/// Rounds of fetching one answer may take (a commit diff takes two: trees, then files).
const FETCH_ROUNDS: usize = 4;

/// When a page told "hydrating" asks again.
pub(super) const HYDRATING_RETRY_MS: u64 = 2000;

/// The answer for a request whose objects are not here and cannot be fetched now: 202
/// "hydrating" while the clone is partial (the hydration brings them), else 404.
pub(super) fn not_here(snap: &Snapshot, what: impl std::fmt::Display) -> ApiError {
    if snap.contents == gitcore::repo::Contents::Complete {
        ApiError::NotFound(format!("no such object {what}"))
    } else {
        ApiError::Hydrating {
            retry_after_ms: HYDRATING_RETRY_MS,
        }
    }
}

/// Fetches `ids` through the repository's session; answers the snapshot that reads them, or
/// what the request is told instead.
async fn fetch_objects(
    req: &HttpRequest,
    snap: &Arc<Snapshot>,
    ids: Vec<ObjectId>,
) -> Result<Arc<Snapshot>, ApiError> {
    use gitvista_actors::clone_queue::{JobError, MAX_OBJECTS};
    use gitvista_actors::repo_session::contents::{FetchObjects, ObjectsError};
    let first = ids.first().map(|i| i.to_hex()).unwrap_or_default();
    let state = req.app_data::<web::Data<AppState>>();
    let id = req.match_info().get("id");
    let (Some(state), Some(id)) = (state, id) else {
        return Err(not_here(snap, first));
    };
    if state.hosted.is_none() {
        // Local mode never fetches: the user's own partial clone answers what it holds.
        return Err(ApiError::NotFound(format!("no such object {first}")));
    }
    if ids.len() > MAX_OBJECTS {
        return Err(not_here(snap, first));
    }
    let session = super::session(state, id).await?;
    let started = std::time::Instant::now();
    let fetched = session.send(FetchObjects { ids }).await;
    metrics::histogram!("gitvista_object_fetch_seconds").record(started.elapsed().as_secs_f64());
    match fetched {
        Ok(Ok(fresh)) => Ok(fresh),
        // The remote has no such object (git's upload-pack: "not our ref").
        Ok(Err(ObjectsError::Fetch(JobError::Git { message, .. })))
            if message.contains("not our ref") || message.contains("no such") =>
        {
            Err(ApiError::NotFound(format!("no such object {first}")))
        }
        Ok(Err(ObjectsError::NotSent(m))) => Err(ApiError::NotFound(format!("no such object {m}"))),
        Ok(Err(ObjectsError::NoRemote)) => {
            Err(ApiError::NotFound(format!("no such object {first}")))
        }
        // Shown from the remote while the clone is made: the page retries by itself.
        Ok(Err(ObjectsError::NotCloned)) => Err(not_here(snap, first)),
        Ok(Err(e)) => {
            metrics::counter!("gitvista_object_fetch_failures_total").increment(1);
            tracing::info!(repo = id, error = %e, "fetching objects for a request failed; it waits for the hydration");
            Err(not_here(snap, first))
        }
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// How long an answer stays valid in the browser.
#[derive(Debug, Clone, Copy)]
pub(super) enum Freshness {
    /// Named by hashes alone: never changes.
    Immutable,
    /// Also names things that move (children, refs, rows): valid for one snapshot version, and
    /// revalidated on every use.
    Version(u64),
    /// Named by hashes, but shows people through the mailmap with this fingerprint: valid while
    /// the mailmap is the same, and revalidated on every use (a 304 while it is).
    People(u64),
}

/// Whether the request already holds the answer tagged `etag`.
pub(crate) fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
}

/// The strong ETag of an answer tagged `tag`.
fn etag(tag: &str, freshness: Freshness) -> String {
    match freshness {
        Freshness::Immutable => format!("\"{tag}\""),
        Freshness::Version(v) => format!("\"{tag}-v{v}\""),
        Freshness::People(m) => format!("\"{tag}-m{m:016x}\""),
    }
}

/// A 304 when the browser has the answer already, else `body` (JSON), with caching headers.
fn respond(
    req: &HttpRequest,
    tag: &str,
    freshness: Freshness,
    body: Option<Bytes>,
) -> HttpResponse {
    let etag = etag(tag, freshness);
    let cache_control = match freshness {
        Freshness::Immutable => "public, max-age=31536000, immutable",
        Freshness::Version(_) | Freshness::People(_) => "no-cache",
    };
    let body = body.filter(|_| !not_modified(req, &etag));
    let mut resp = if body.is_some() {
        HttpResponse::Ok()
    } else {
        HttpResponse::NotModified()
    };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control));
    match body {
        Some(body) => crate::encoding::json(req, resp, body),
        None => resp.finish(),
    }
}

/// Which session cache keeps an answer.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kept {
    /// Not cached on the server.
    No,
    /// The diff cache.
    Diffs,
    /// The blame cache.
    Blame,
    /// The search cache.
    Searches,
}

impl Kept {
    fn cache(self, caches: &SessionCaches) -> Option<&ByteCache> {
        match self {
            Kept::No => None,
            Kept::Diffs => Some(&caches.diffs),
            Kept::Blame => Some(&caches.blame),
            Kept::Searches => Some(&caches.searches),
        }
    }
}

/// Serves the answer tagged `tag`: a 304 if the browser has it, else from the session cache
/// `kept`, else built by `build` on the blocking pool (and kept).
pub(super) async fn serve(
    req: &HttpRequest,
    snap: Arc<Snapshot>,
    tag: String,
    key: String,
    freshness: Freshness,
    kept: Kept,
    build: impl Fn(&Snapshot) -> Result<Value, ApiError> + Send + Sync + 'static,
) -> Result<HttpResponse, ApiError> {
    if not_modified(req, &etag(&tag, freshness)) {
        return Ok(respond(req, &tag, freshness, None));
    }
    // The cache key is built by the route from its parsed, normalised parameters (never the raw
    // URI: `?junk=1`, `?junk=2`, ... would each store a copy of one answer, and skip the cache),
    // plus the version for answers that move.
    let key = match freshness {
        Freshness::Immutable => key,
        Freshness::Version(v) => format!("{key} v{v}"),
        Freshness::People(m) => format!("{key} m{m:016x}"),
    };
    // Work that misses the caches is charged to the client that asked, by the time it took.
    let factor = super::account::viewer(req)
        .filter(|v| v.plan == "paid")
        .map_or(1.0, |_| {
            gitvista_accounts::accounts::Plans::PAID_WORK_FACTOR
        });
    let budget = req.app_data::<web::Data<AppState>>().and_then(|s| {
        Some((
            std::sync::Arc::clone(&s.clients),
            s.clients.key(req)?,
            factor,
        ))
    });
    let build: Build = Arc::new(build);
    let mut snap = snap;
    let mut rounds = 0;
    // A partial clone may lack what the answer reads: fetch it (all a round needs at once),
    // build again on a snapshot that reads it.
    let body = loop {
        let built = build_once(&snap, &key, kept, budget.clone(), Arc::clone(&build)).await;
        match built {
            Err(ApiError::NeedObjects(ids)) if rounds < FETCH_ROUNDS => {
                rounds += 1;
                snap = fetch_objects(req, &snap, ids).await?;
            }
            Err(ApiError::NeedObjects(ids)) => {
                let first = ids.first().map(|i| i.to_hex()).unwrap_or_default();
                return Err(not_here(&snap, first));
            }
            other => break other?,
        }
    };
    Ok(respond(req, &tag, freshness, Some(body)))
}

/// What builds an answer from a snapshot (called again after objects were fetched).
type Build = Arc<dyn Fn(&Snapshot) -> Result<Value, ApiError> + Send + Sync>;

/// The client a request's expensive work is charged to, and how much cheaper it is for them (a
/// paying user's costs count a quarter).
type Budget = Option<(Arc<crate::client::Clients>, crate::client::ClientKey, f64)>;

/// One build of an answer on the blocking pool: from the session cache `kept` when it has it,
/// else built (charged to `budget`) and kept.
async fn build_once(
    snap: &Arc<Snapshot>,
    key: &str,
    kept: Kept,
    budget: Budget,
    build: Build,
) -> Result<Bytes, ApiError> {
    let key = key.to_string();
    blocking(Arc::clone(snap), move |snap| {
        let cache = kept.cache(&snap.caches);
        let name = match kept {
            Kept::No => "none",
            Kept::Diffs => "diffs",
            Kept::Blame => "blame",
            Kept::Searches => "searches",
        };
        if let Some(hit) = cache.and_then(|c| c.get(&key)) {
            metrics::counter!("gitvista_cache_hits_total", "cache" => name).increment(1);
            return Ok(hit);
        }
        if let Some(c) = cache {
            metrics::counter!("gitvista_cache_misses_total", "cache" => name).increment(1);
            metrics::gauge!("gitvista_cache_bytes", "cache" => name).set(c.bytes() as f64);
        }
        if let Some((clients, client, _)) = &budget {
            clients.work.ready(*client).map_err(|secs| {
                metrics::counter!("gitvista_work_refused_total").increment(1);
                ApiError::TooMuchWork(secs)
            })?;
        }
        let started = std::time::Instant::now();
        let built = build(snap);
        if let Some((clients, client, factor)) = &budget {
            clients
                .work
                .spend(*client, started.elapsed().as_secs_f64() * 1000.0 / factor);
        }
        let body = Bytes::from(
            serde_json::to_vec(&built?).map_err(|e| ApiError::Unavailable(e.to_string()))?,
        );
        if let Some(c) = cache {
            c.insert(key, body.clone());
        }
        Ok(body)
    })
    .await
}

/// A signature as the mailmap shows it, with what the commit records when the map changed it.
fn person(mailmap: &Mailmap, s: &Signature<'_>, encoding: Option<&[u8]>) -> Value {
    let (name, email) = (
        decode_text(s.name, encoding),
        decode_text(s.email, encoding),
    );
    let shown = gitcore::graph::Person::through(mailmap, &name, &email);
    let recorded = (shown.name != name || shown.email != email)
        .then(|| json!({ "name": name, "email": email }));
    json!({
        "name": shown.name,
        "email": shown.email,
        "time": s.time,
        "tzMinutes": s.tz_minutes,
        "recorded": recorded,
    })
}

/// Runs object reads on the blocking pool.
async fn blocking<T: Send + 'static>(
    snap: Arc<Snapshot>,
    f: impl FnOnce(&Snapshot) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(move || f(&snap))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
}

/// Diffs commit `oid` against its first parent (the empty tree for a root commit); returns the
/// parent and the changes.
fn first_parent_diff(
    reader: &mut gitcore::odb::OdbReader<'_>,
    oid: ObjectId,
) -> Result<(Option<ObjectId>, gitcore::diff::TreeDiff), ApiError> {
    let mut buf = Vec::new();
    let mut read =
        |id: ObjectId, buf: &mut Vec<u8>| -> Result<(ObjectId, Option<ObjectId>), ApiError> {
            reader
                .read_kind(&id, ObjectKind::Commit, buf)
                .map_err(|e| odb_error(e, &id))?;
            let c = CommitRef::parse(buf)
                .map_err(|e| ApiError::Unavailable(format!("commit {id}: {e}")))?;
            Ok((c.tree, c.parents().next()))
        };
    let (root, parent) = read(oid, &mut buf)?;
    let parent_tree = match parent {
        Some(p) => Some(read(p, &mut buf)?.0),
        None => None,
    };
    Ok((parent, trees_diff(reader, parent_tree, root)?))
}

/// Diffs tree `old` (the empty tree when absent) against tree `new`, with renames, fetching what
/// a commits-only clone lacks.
fn trees_diff(
    reader: &mut gitcore::odb::OdbReader<'_>,
    parent_tree: Option<ObjectId>,
    root: ObjectId,
) -> Result<gitcore::diff::TreeDiff, ApiError> {
    // A commits-only clone: both trees in one fetch (each comes with its subtrees).
    need(
        reader.odb(),
        [Some(root), parent_tree].into_iter().flatten(),
    )?;
    let tree_error = |e: gitcore::diff::DiffError| match e {
        gitcore::diff::DiffError::Odb(OdbError::Missing(m)) => ApiError::NeedObjects(vec![m]),
        other => ApiError::Unavailable(other.to_string()),
    };
    match diff_trees(reader, parent_tree, Some(root), TreeDiffOptions::default()) {
        Ok(d) => Ok(d),
        Err(gitcore::diff::DiffError::Odb(OdbError::Missing(_))) => {
            // Finding renames reads the added and deleted files: fetch all of them at once.
            let plain = TreeDiffOptions {
                renames: None,
                ..TreeDiffOptions::default()
            };
            let d = diff_trees(reader, parent_tree, Some(root), plain).map_err(tree_error)?;
            need(reader.odb(), blobs_of(&d.changes, usize::MAX))?;
            // Everything was here after all (another request fetched it meanwhile).
            diff_trees(reader, parent_tree, Some(root), TreeDiffOptions::default())
                .map_err(tree_error)
        }
        Err(e) => Err(tree_error(e)),
    }
}

/// The blobs of both sides of the first `limit` changes (what line counts read).
fn blobs_of(
    changes: &[gitcore::diff::TreeChange],
    limit: usize,
) -> impl Iterator<Item = ObjectId> + '_ {
    changes.iter().take(limit).flat_map(|ch| {
        [&ch.old, &ch.new]
            .into_iter()
            .filter_map(|s| s.as_ref().filter(|s| s.mode.is_blob()).map(|s| s.id))
    })
}

/// The shared shape of the hash-addressed routes: validate the hash, get the snapshot, build the
/// answer on the blocking pool, serve it with an immutable ETag.
async fn serve_object(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
    kind: &str,
    extra: Option<&str>,
    kept: Kept,
    build: impl Fn(&Snapshot, ObjectId) -> Result<Value, ApiError> + Send + Sync + 'static,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash } = object;
    let oid = parse_hash(&hash)?;
    let snap = snapshot(&state, &id).await?;
    // What else shapes the answer (a blob's file name picks its highlighting) is in the tag and
    // the key too.
    let (tag, key) = match extra {
        Some(x) => (
            format!("{kind}-{oid}-{}", path_tag(x)),
            format!("{kind}:{oid}:{x}"),
        ),
        None => (format!("{kind}-{oid}"), format!("{kind}:{oid}")),
    };
    serve(
        &req,
        snap,
        tag,
        key,
        Freshness::Immutable,
        kept,
        move |snap| build(snap, oid),
    )
    .await
}

/// A repository path from a query: non-empty, relative, without `.`/`..` components or NULs.
pub(super) fn parse_path(path: &str) -> Result<String, ApiError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(ApiError::bad_request(
            format!("{path:?} is not a relative path inside the repository"),
            "invalid_path",
        ));
    }
    Ok(path.to_string())
}

/// A short stable tag for a path (or any parameter text), for ETags: 16 hex digits of SHA-256,
/// so two paths cannot be made to share one by choosing their names.
pub(super) fn path_tag(path: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(path.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Highlight spans of the two sides of a diff of `path`, when it is text worth highlighting.
pub(super) fn diff_highlight(
    path: &str,
    lines: &gitcore::diff::BlobDiff,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Option<Highlighted> {
    if lines.binary || lines.too_large || lines.hunks.is_empty() {
        return None;
    }
    let side = |b: Option<&[u8]>| {
        b.map_or(Some(Vec::new()), |b| {
            crate::highlight::highlight(path, &String::from_utf8_lossy(b)).map(|h| h.lines)
        })
    };
    Some(Highlighted {
        old: side(old)?,
        new: side(new)?,
    })
}

/// The hunks of a line diff as JSON; with `hl`, each line carries its highlight `spans`.
pub(super) fn hunks_json(lines: &gitcore::diff::BlobDiff, hl: Option<&Highlighted>) -> Vec<Value> {
    let kind = |k: gitcore::diff::LineKind| match k {
        gitcore::diff::LineKind::Context => "context",
        gitcore::diff::LineKind::Added => "added",
        gitcore::diff::LineKind::Removed => "removed",
    };
    lines
        .hunks
        .iter()
        .map(|h| {
            let lines: Vec<Value> = h
                .lines
                .iter()
                .map(|l| {
                    let spans = hl.and_then(|hl| match l.kind {
                        gitcore::diff::LineKind::Removed => {
                            l.old_line.and_then(|n| hl.old.get(n as usize - 1))
                        }
                        _ => l.new_line.and_then(|n| hl.new.get(n as usize - 1)),
                    });
                    json!({
                        "kind": kind(l.kind),
                        "oldLine": l.old_line,
                        "newLine": l.new_line,
                        "text": String::from_utf8_lossy(&l.text),
                        "noNewline": l.no_newline,
                        "spans": spans,
                    })
                })
                .collect();
            json!({
                "header": h.header(),
                "oldStart": h.old_start, "oldLen": h.old_len,
                "newStart": h.new_start, "newLen": h.new_len,
                "lines": lines,
            })
        })
        .collect()
}

/// Highlight spans per line of the old and new version of a file.
#[derive(Debug)]
pub(super) struct Highlighted {
    old: Vec<Vec<crate::highlight::Span>>,
    new: Vec<Vec<crate::highlight::Span>>,
}
