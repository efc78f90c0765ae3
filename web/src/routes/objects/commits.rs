//! A commit, its diff against its first parent (the file list with stats and rename scores),
//! and one file's diff in it.

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::ObjectId;
use gitcore::diff::{ChangeSide, DiffOptions, diff_blobs};
use gitcore::object::{CommitRef, EntryMode, decode_text};
use gitcore::odb::ObjectKind;
use serde_json::{Value, json};

use crate::routes::repo_param::RepoObject;
use crate::routes::repository::kind_name;
use crate::routes::{AppState, ViewQuery, snapshot, view_layout, view_snapshot};
use gitvista_errors::ApiError;

use super::*;

/// A commit: message, author, committer, parents, children, refs, row. Children, refs and row
/// move as the history grows, so the answer is tagged with the snapshot version.
#[get("/api/repos/{id}/commit/{hash}")]
pub async fn commit(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
    view: web::Query<ViewQuery>,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash } = object;
    let mut snap = view_snapshot(&state, &id, &view).await?;
    // Only the newest commits are in (a first screen): an abbreviation is resolved against the
    // whole history, and an older commit is answered from it, once it is loaded.
    if snap.is_partial()
        && (hash.len() != snap.graph.hash().hex_len()
            || resolve_commit(&snap.graph, &hash).is_ok_and(|oid| snap.graph.find(&oid).is_none()))
    {
        snap = crate::routes::complete_snapshot(&state, &id).await?;
    }
    let oid = resolve_commit(&snap.graph, &hash)?;
    let layout = view_layout(&snap, &view).await?;
    let freshness = Freshness::Version(snap.version);
    let view_key = crate::routes::view_key(&layout);
    let tag = match &view_key {
        Some(v) => format!("commit-{oid}-{}", path_tag(v)),
        None => format!("commit-{oid}"),
    };
    let key = format!("commit:{oid}:{}", view_key.unwrap_or_default());
    serve(&req, snap, tag, key, freshness, Kept::No, move |snap| {
        let mut buf = Vec::new();
        snap.repo
            .odb()
            .reader()
            .read_kind(&oid, ObjectKind::Commit, &mut buf)
            .map_err(|e| odb_error(e, &oid))?;
        let c = CommitRef::parse(&buf).map_err(|e| ApiError::Unavailable(format!("commit {oid}: {e}")))?;
        let g = &snap.graph;
        let idx = g.find(&oid);
        Ok(json!({
            "hash": oid.to_hex(),
            "tree": c.tree.to_hex(),
            "parents": c.parents().map(|p| p.to_hex()).collect::<Vec<_>>(),
            "children": idx.map(|i| g.children(i).map(|ch| g.oid(ch).to_hex()).collect::<Vec<_>>()).unwrap_or_default(),
            "author": person(g.mailmap(), &c.author, c.encoding),
            "committer": person(g.mailmap(), &c.committer, c.encoding),
            "summary": c.summary(),
            "message": decode_text(c.message, c.encoding),
            "refs": idx.map(|i| g.refs_at(i).iter().filter(|r| layout.options().filter.includes(r)).map(|r| json!({"name": r.name, "kind": kind_name(r.kind)})).collect::<Vec<_>>()).unwrap_or_default(),
            "row": idx.and_then(|i| layout.row_of(i)),
            // In the graph but not in this view (only hidden refs reach it) versus not reachable.
            "reachable": idx.is_some(),
        }))
    })
    .await
}

fn side(s: &Option<ChangeSide>) -> (Value, Value, Value) {
    match s {
        Some(s) => (
            json!(String::from_utf8_lossy(&s.path)),
            json!(format!("{:06o}", s.mode.as_octal())),
            json!(s.id.to_hex()),
        ),
        None => (Value::Null, Value::Null, Value::Null),
    }
}

/// The changed files of a tree diff with their line counts (the first 300), fetching what a
/// commits-only clone lacks at once.
pub(super) fn files_json(
    snap: &gitvista_actors::Snapshot,
    reader: &mut gitcore::odb::OdbReader<'_>,
    d: &gitcore::diff::TreeDiff,
) -> Result<Vec<Value>, ApiError> {
    // Line counts read both versions of each file: fetch the missing ones at once.
    need(snap.repo.odb(), blobs_of(&d.changes, MAX_STAT_FILES))?;
    Ok(d.changes
        .iter()
        .enumerate()
        .map(|(k, ch)| {
            let (old_path, old_mode, old_id) = side(&ch.old);
            let (new_path, new_mode, new_id) = side(&ch.new);
            let blobs =
                |s: &Option<ChangeSide>| s.as_ref().filter(|s| s.mode.is_blob()).map(|s| s.id);
            let stats = (k < MAX_STAT_FILES)
                .then(|| {
                    diff_blobs(
                        reader,
                        blobs(&ch.old),
                        blobs(&ch.new),
                        DiffOptions {
                            context: 0,
                            ..DiffOptions::default()
                        },
                    )
                    .ok()
                })
                .flatten();
            let submodule = [&ch.old, &ch.new]
                .iter()
                .any(|s| s.as_ref().is_some_and(|s| s.mode == EntryMode::Gitlink));
            json!({
                "status": ch.kind.letter().to_string(),
                "similarity": ch.similarity,
                "path": String::from_utf8_lossy(ch.path()),
                "oldPath": old_path, "newPath": new_path,
                "oldMode": old_mode, "newMode": new_mode,
                "oldHash": old_id, "newHash": new_id,
                "submodule": submodule,
                "additions": stats.as_ref().map(|s| s.additions),
                "deletions": stats.as_ref().map(|s| s.deletions),
                "binary": stats.as_ref().map(|s| s.binary),
            })
        })
        .collect())
}

/// The files a commit changed against its first parent, with line counts.
#[get("/api/repos/{id}/commit/diff/{hash}")]
pub async fn commit_diff(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
) -> Result<HttpResponse, ApiError> {
    serve_object(
        req,
        state,
        object,
        // Immutable answers name how they were computed: "m" since renames are found by
        // similarity, so browsers drop lists cached with exact renames only.
        "diff.m",
        None,
        Kept::Diffs,
        move |snap, oid| {
            let mut reader = snap.repo.odb().reader();
            let (parent, d) = first_parent_diff(&mut reader, oid)?;
            let files = files_json(snap, &mut reader, &d)?;
            Ok(json!({
                "hash": oid.to_hex(),
                "parent": parent.map(|p| p.to_hex()),
                "files": files,
                "truncated": d.truncated,
            }))
        },
    )
    .await
}

/// Query of the file diff routes: the path and the lines of context (3 unless asked).
#[derive(Debug, serde::Deserialize)]
pub struct FileDiffQuery {
    path: String,
    context: Option<u32>,
}

impl FileDiffQuery {
    /// The checked path and context (400 `invalid_path`, `invalid_context`).
    pub(super) fn parsed(&self) -> Result<(String, u32), ApiError> {
        let context = self.context.unwrap_or(3);
        if context > 10_000 {
            return Err(ApiError::bad_request(
                "context must be at most 10000",
                "invalid_context",
            ));
        }
        Ok((parse_path(&self.path)?, context))
    }
}

/// The line diff of one file of a commit against its first parent.
#[get("/api/repos/{id}/commit/diff/{hash}/file")]
pub async fn file_diff(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
    query: web::Query<FileDiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash } = object;
    let oid = parse_hash(&hash)?;
    let (file, context) = query.parsed()?;
    let snap = snapshot(&state, &id).await?;
    let tag = format!("file.m-{oid}-{}-{context}", path_tag(&file));
    let key = format!("file.m:{oid}:{context}:{file}");
    serve(
        &req,
        snap,
        tag,
        key,
        Freshness::Immutable,
        Kept::Diffs,
        move |snap| {
            let mut reader = snap.repo.odb().reader();
            let (_, d) = first_parent_diff(&mut reader, oid)?;
            let mut answer = changed_file_json(snap, &mut reader, &d, &file, context)
                .ok_or_else(|| ApiError::NotFound(format!("{file} did not change in {oid}")))??;
            answer["hash"] = json!(oid.to_hex());
            Ok(answer)
        },
    )
    .await
}

/// One changed file of a tree diff as unified hunks (highlighted) with its status and counts;
/// `None` when `file` did not change.
pub(super) fn changed_file_json(
    snap: &gitvista_actors::Snapshot,
    reader: &mut gitcore::odb::OdbReader<'_>,
    d: &gitcore::diff::TreeDiff,
    file: &str,
    context: u32,
) -> Option<Result<Value, ApiError>> {
    let change = d.changes.iter().find(|ch| ch.path() == file.as_bytes())?;
    let blob_of = |s: &Option<ChangeSide>| s.as_ref().filter(|s| s.mode.is_blob()).map(|s| s.id);
    let (old_blob, new_blob) = (blob_of(&change.old), blob_of(&change.new));
    Some((|| {
        need(snap.repo.odb(), blobs_of(std::slice::from_ref(change), 1))?;
        let lines = diff_blobs(
            reader,
            old_blob,
            new_blob,
            DiffOptions {
                context,
                ..DiffOptions::default()
            },
        )
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let read = |id: Option<ObjectId>, reader: &mut gitcore::odb::OdbReader<'_>| {
            id.and_then(|id| reader.read(&id).ok()).map(|(_, b)| b)
        };
        let hl = if lines.binary || lines.too_large {
            None
        } else {
            let old = read(old_blob, reader);
            let new = read(new_blob, reader);
            diff_highlight(file, &lines, old.as_deref(), new.as_deref())
        };
        Ok(json!({
            "path": file,
            "status": change.kind.letter().to_string(),
            "similarity": change.similarity,
            "oldPath": change.old.as_ref().map(|s| String::from_utf8_lossy(&s.path)),
            "binary": lines.binary,
            // Both sides' blobs and sizes: an image changed shows a preview of each.
            "oldBlob": old_blob.map(|b| b.to_hex()),
            "newBlob": new_blob.map(|b| b.to_hex()),
            "oldSize": old_blob.and_then(|b| reader.read_header(&b).ok()).map(|(_, n)| n),
            "newSize": new_blob.and_then(|b| reader.read_header(&b).ok()).map(|(_, n)| n),
            "tooLarge": lines.too_large,
            "additions": lines.additions,
            "deletions": lines.deletions,
            "hunks": hunks_json(&lines, hl.as_ref()),
        }))
    })())
}
