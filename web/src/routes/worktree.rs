//! Local mode's work-tree routes: `working-tree/status`, `working-tree/diff?path=` (the index
//! against the file on disk) and `index/diff?path=` (HEAD against the index). They describe files
//! that change at any moment, so nothing is cached.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use gitcore::diff::{BlobDiff, DiffOptions, diff_bytes};
use gitcore::odb::ObjectKind;
use gitcore::worktree::{StatusError, StatusOptions, head_files, staged_entry};
use serde::Deserialize;
use serde_json::{Value, json};

use super::objects::{diff_highlight, hunks_json, parse_path};
use super::{AppState, snapshot};
use crate::routes::repo_param::RepoParam;
use gitvista_actors::Snapshot;
use gitvista_errors::ApiError;

/// Files larger than this are not diffed (`tooLarge`).
const MAX_FILE: u64 = 4 << 20;

fn status_error(e: StatusError) -> ApiError {
    match e {
        StatusError::Bare => ApiError::NoWorkTree,
        other => ApiError::Unavailable(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    id: &str,
    f: impl FnOnce(&Snapshot) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let snap = snapshot(state, id).await?;
    if snap.repo.dirs().work_tree.is_none() {
        return Err(ApiError::NoWorkTree);
    }
    web::block(move || f(&snap))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
}

fn no_store(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `git status`, for the work tree.
#[get("/api/repos/{id}/working-tree/status")]
pub async fn working_tree_status(
    state: web::Data<AppState>,
    id: RepoParam,
) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, &id, |snap| {
        gitcore::worktree::status(&snap.repo, StatusOptions::default())
            .map(|s| gitvista_actors::events::work_status_json(&s))
            .map_err(status_error)
    })
    .await?;
    Ok(no_store(body))
}

/// Query of the work-tree and index diffs.
#[derive(Debug, Deserialize)]
pub struct PathQuery {
    path: String,
    context: Option<u32>,
}

/// The line diff of two versions of `path`; 404 when neither exists (`where_not` says where it
/// was looked for).
fn diff_json(
    path: &str,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
    context: u32,
    where_not: &str,
) -> Result<Value, ApiError> {
    if old.is_none() && new.is_none() {
        return Err(ApiError::NotFound(format!("{path} is neither {where_not}")));
    }
    let lines: BlobDiff = diff_bytes(
        old.unwrap_or_default(),
        new.unwrap_or_default(),
        DiffOptions {
            context,
            max_blob_bytes: MAX_FILE,
        },
    );
    let status = match (old, new) {
        (None, Some(_)) => "A",
        (Some(_), None) => "D",
        _ => "M",
    };
    Ok(json!({
        "path": path,
        "status": status,
        "binary": lines.binary,
        "tooLarge": lines.too_large,
        "additions": lines.additions,
        "deletions": lines.deletions,
        "hunks": hunks_json(&lines, diff_highlight(path, &lines, old, new).as_ref()),
    }))
}

fn parse_query(q: &PathQuery) -> Result<(String, u32), ApiError> {
    let path = parse_path(&q.path)?;
    if path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(ApiError::bad_request(
            format!("{path:?} is inside the git directory"),
            "invalid_path",
        ));
    }
    let context = q.context.unwrap_or(3);
    if context > 10_000 {
        return Err(ApiError::bad_request(
            "context must be at most 10000",
            "invalid_context",
        ));
    }
    Ok((path, context))
}

/// A blob's bytes, or `None` for a too-large one (reported as `tooLarge`).
fn blob(snap: &Snapshot, id: &gitcore::ObjectId) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    snap.repo
        .odb()
        .reader()
        .read_kind(id, ObjectKind::Blob, &mut buf)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(buf)
}

/// The staged content of `path`: none for a path not staged, a submodule or `git add -N`.
fn staged_blob(snap: &Snapshot, path: &str) -> Result<Option<Vec<u8>>, ApiError> {
    match staged_entry(&snap.repo, path).map_err(status_error)? {
        Some(e) if !e.intent_to_add && e.mode & 0o170000 != 0o160000 => {
            Ok(Some(blob(snap, &e.id)?))
        }
        _ => Ok(None),
    }
}

/// The staged version of a file against the one on disk (`git diff -- path`); an untracked file
/// diffs against nothing.
#[get("/api/repos/{id}/working-tree/diff")]
pub async fn working_tree_diff(
    state: web::Data<AppState>,
    id: RepoParam,
    query: web::Query<PathQuery>,
) -> Result<HttpResponse, ApiError> {
    let (path, context) = parse_query(&query)?;
    let body = blocking(&state, &id, move |snap| {
        let old = staged_blob(snap, &path)?;
        let work_tree = snap
            .repo
            .dirs()
            .work_tree
            .clone()
            .ok_or(ApiError::NoWorkTree)?;
        let new = match gitcore::worktree::worktree_bytes(&work_tree, &path, MAX_FILE) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Ok(json!({"path": path, "status": "M", "binary": false,
                    "tooLarge": true, "additions": 0, "deletions": 0, "hunks": []}));
            }
            Err(e) => return Err(ApiError::Unavailable(e.to_string())),
        };
        diff_json(
            &path,
            old.as_deref(),
            new.as_deref(),
            context,
            "staged nor on disk",
        )
    })
    .await?;
    Ok(no_store(body))
}

/// HEAD's version of a file against the staged one (`git diff --cached -- path`).
#[get("/api/repos/{id}/index/diff")]
pub async fn index_diff(
    state: web::Data<AppState>,
    id: RepoParam,
    query: web::Query<PathQuery>,
) -> Result<HttpResponse, ApiError> {
    let (path, context) = parse_query(&query)?;
    let body = blocking(&state, &id, move |snap| {
        let head = head_files(&snap.repo).map_err(status_error)?;
        let old = match head.get(path.as_bytes()) {
            Some((mode, id)) if mode.is_blob() => Some(blob(snap, id)?),
            _ => None,
        };
        let new = staged_blob(snap, &path)?;
        diff_json(
            &path,
            old.as_deref(),
            new.as_deref(),
            context,
            "in HEAD nor staged",
        )
    })
    .await?;
    Ok(no_store(body))
}
