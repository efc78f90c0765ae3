//! Trees, blobs (highlighted, cut past a size) and blame at a commit.

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::diff::is_binary;
use gitcore::object::{CommitRef, EntryMode, TreeIter, decode_text};
use gitcore::odb::{ObjectKind, OdbError};
use serde_json::{Value, json};

use crate::routes::repo_param::RepoObject;
use crate::routes::{AppState, snapshot};
use gitvista_errors::ApiError;

use super::*;

/// A tree's entries (a commit hash shows its root tree).
#[get("/api/repos/{id}/tree/{hash}")]
pub async fn tree(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
) -> Result<HttpResponse, ApiError> {
    serve_object(
        req,
        state,
        object,
        "tree",
        None,
        Kept::No,
        move |snap, oid| {
            let mut reader = snap.repo.odb().reader();
            let mut buf = Vec::new();
            let kind = reader
                .read_into(&oid, &mut buf)
                .map_err(|e| odb_error(e, &oid))?;
            let tree_id = match kind {
                ObjectKind::Tree => oid,
                ObjectKind::Commit => {
                    let t = CommitRef::parse(&buf)
                        .map_err(|e| ApiError::Unavailable(e.to_string()))?
                        .tree;
                    reader
                        .read_kind(&t, ObjectKind::Tree, &mut buf)
                        .map_err(|e| odb_error(e, &t))?;
                    t
                }
                _ => {
                    return Err(ApiError::NotFound(format!(
                        "{oid} is not a tree or a commit"
                    )));
                }
            };
            let mut entries = Vec::new();
            for e in TreeIter::new(&buf, tree_id.kind()) {
                let e = e.map_err(|e| ApiError::Unavailable(format!("tree {tree_id}: {e}")))?;
                let kind = match e.mode {
                    EntryMode::Tree => "tree",
                    EntryMode::Gitlink => "submodule",
                    EntryMode::Symlink => "symlink",
                    _ => "blob",
                };
                entries.push(json!({
                    "name": String::from_utf8_lossy(e.name),
                    "mode": format!("{:06o}", e.mode.as_octal()),
                    "type": kind,
                    "hash": e.id.to_hex(),
                }));
            }
            Ok(json!({ "hash": tree_id.to_hex(), "entries": entries }))
        },
    )
    .await
}

/// A blob's content (UTF-8, lossily), cut at 1 MiB, with `binary` and `truncated` flags.
#[get("/api/repos/{id}/blob/{hash}")]
pub async fn blob(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
    query: web::Query<BlobQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = match &query.path {
        Some(p) => Some(parse_path(p)?),
        None => None,
    };
    let extra = name.clone();
    // A highlighted answer costs real CPU: it is kept (by hash and file name), a plain one is not.
    let kept = if name.is_some() {
        Kept::Diffs
    } else {
        Kept::No
    };
    serve_object(req, state, object, "blob", extra.as_deref(), kept, move |snap, oid| {
        let mut reader = snap.repo.odb().reader();
        let (kind, size) = reader.read_header(&oid).map_err(|e| odb_error(e, &oid))?;
        if kind != ObjectKind::Blob {
            return Err(ApiError::NotFound(format!("{oid} is not a blob")));
        }
        let mut buf = Vec::new();
        if size as usize > MAX_BLOB * 64 {
            // Far too large to show: answer from the header alone.
            return Ok(json!({"hash": oid.to_hex(), "size": size, "binary": false, "truncated": true, "content": ""}));
        }
        reader.read_kind(&oid, ObjectKind::Blob, &mut buf).map_err(|e| odb_error(e, &oid))?;
        let binary = is_binary(&buf);
        let truncated = buf.len() > MAX_BLOB;
        buf.truncate(MAX_BLOB);
        let content = if binary { String::new() } else { String::from_utf8_lossy(&buf).into_owned() };
        let h = match &name {
            Some(name) if !binary && !truncated => crate::highlight::highlight(name, &content),
            _ => None,
        };
        let coverage = crate::highlight::coverage(h.as_ref());
        let spans = h.map(|h| h.lines);
        Ok(json!({"hash": oid.to_hex(), "size": size, "binary": binary, "truncated": truncated, "content": content, "spans": spans, "highlight": coverage}))
    })
    .await
}

/// Query of the blob route: the file's path, when known, picks the highlighting grammar.
#[derive(Debug, serde::Deserialize)]
pub struct BlobQuery {
    path: Option<String>,
}

/// Query of the blame route.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlameQuery {
    path: String,
    /// `1`: follow first parents only (`git blame --first-parent`).
    first_parent: Option<u8>,
    /// `0`: do not look through the revisions the repository lists to ignore (default: look
    /// through them when there is a list).
    ignore_revs: Option<u8>,
}

/// Which commit last touched each line of a file at a commit, as `git blame` says: every parent
/// (or first parents only), looking through the revisions `.git-blame-ignore-revs` (or
/// `blame.ignoreRevsFile`) lists unless asked not to.
#[get("/api/repos/{id}/tree/blame/{hash}")]
pub async fn blame(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
    query: web::Query<BlameQuery>,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash } = object;
    let oid = parse_hash(&hash)?;
    let file = parse_path(&query.path)?;
    let flag = |v: Option<u8>, name: &str, default: bool| match v {
        None => Ok(default),
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            format!("{name} must be 0 or 1"),
            "invalid_flag",
        )),
    };
    let first_parent = flag(query.first_parent, "firstParent", false)?;
    let look_through = flag(query.ignore_revs, "ignoreRevs", true)?;
    let snap = snapshot(&state, &id).await?;
    // The list is read from the blamed commit's tree (or the work tree's file): a few reads.
    // It is read before the cache is asked, because what it lists keys the answer: a work
    // tree's list can change without a new snapshot, and a cached blame must not outlive it.
    let list = {
        let snap = std::sync::Arc::clone(&snap);
        web::block(move || gitcore::blame::ignore_revs(&snap.repo, oid))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    };
    let applied = list.as_ref().filter(|l| look_through && !l.revs.is_empty());
    let list_tag = applied.map_or_else(
        || "none".to_string(),
        |l| {
            let mut revs: Vec<String> = l.revs.iter().map(|r| r.to_hex()).collect();
            revs.sort();
            path_tag(&revs.join(","))
        },
    );
    let mode = format!("{}-{list_tag}", if first_parent { "fp" } else { "all" });
    // "p": every parent; renames followed by similarity; the commits' authors (through the
    // mailmap) and subjects.
    let tag = format!("blame.p-{oid}-{}-{mode}", path_tag(&file));
    let key = format!("blame.p:{oid}:{file}:{mode}");
    let people = Freshness::People(snap.graph.mailmap().fingerprint());
    let ignore = applied.map(|l| l.revs.clone()).unwrap_or_default();
    let list_json = list.as_ref().map(
        |l| json!({ "source": l.source, "count": l.revs.len(), "applied": applied.is_some() }),
    );
    serve(&req, snap, tag, key, people, Kept::Blame, move |snap| {
        let b = gitcore::blame::blame(
            &snap.repo,
            oid,
            &file,
            gitcore::blame::BlameOptions {
                first_parent,
                ignore: ignore.clone(),
                ..gitcore::blame::BlameOptions::default()
            },
        )
        .map_err(|e| match e {
            gitcore::blame::BlameError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            // Blame reads the file at every commit that touched it: too much to fetch for
            // one request; the hydration brings it.
            gitcore::blame::BlameError::Odb(OdbError::Missing(m)) => not_here(snap, m),
            // A blob, tree or tag hash: the caller's mistake, not the server's trouble.
            gitcore::blame::BlameError::Odb(OdbError::WrongKind { id, actual, .. }) => {
                ApiError::bad_request(
                    format!("{id} is a {actual}; blame needs a commit"),
                    "not_a_commit",
                )
            }
            other => ApiError::Unavailable(other.to_string()),
        })?;
        let texts: Vec<&[u8]> = b.content.split_inclusive(|&c| c == b'\n').collect();
        // Author, author time and subject of each commit named, for the page's groups of
        // lines (as GitHub's blame shows them).
        let mut commits = serde_json::Map::new();
        let mut reader = snap.repo.odb().reader();
        let mut buf = Vec::new();
        for l in &b.lines {
            let hex = l.commit.to_hex();
            if commits.contains_key(&hex) {
                continue;
            }
            let about = reader
                .read_kind(&l.commit, ObjectKind::Commit, &mut buf)
                .ok()
                .and_then(|()| CommitRef::parse(&buf).ok())
                .map(|c| {
                    let author = gitcore::graph::Person::through(
                        snap.graph.mailmap(),
                        &decode_text(c.author.name, c.encoding),
                        &decode_text(c.author.email, c.encoding),
                    );
                    json!({
                        "author": author.name,
                        "time": c.author.time,
                        "summary": c.summary(),
                    })
                });
            commits.insert(hex, about.unwrap_or(Value::Null));
        }
        let lines: Vec<Value> = b
            .lines
            .iter()
            .zip(&texts)
            .enumerate()
            .map(|(i, (l, t))| {
                let t = t.strip_suffix(b"\n").unwrap_or(t);
                json!({
                    "line": i + 1,
                    "commit": l.commit.to_hex(),
                    "origLine": l.orig_line,
                    "ignored": l.ignored,
                    "unblamable": l.unblamable,
                    "text": String::from_utf8_lossy(t),
                })
            })
            .collect();
        Ok(json!({
            "hash": oid.to_hex(),
            "path": file,
            "partial": b.partial,
            "firstParent": first_parent,
            "ignoreRevs": list_json,
            "binary": b.binary,
            "tooLarge": b.too_large,
            "lines": lines,
            "commits": commits,
        }))
    })
    .await
}
