//! Two commits compared, as Git Graph's "Compare with selected": the files changed between them
//! (`git diff A B`, renames included) and the commits each has that the other lacks
//! (`git log B..A` and `git log A..B`), and one file's diff between them.

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::ObjectId;
use gitcore::graph::{CommitGraph, CommitIdx};
use gitcore::odb::ObjectKind;
use serde_json::{Value, json};

use super::commits::{changed_file_json, files_json};
use super::*;
use crate::routes::AppState;
use crate::routes::repo_param::RepoObject;
use gitvista_errors::ApiError;

/// Commits listed per side (the counts are exact).
const MAX_LISTED: usize = 500;

/// `A...B` (each a full id or a unique prefix of 4+ digits) as the two commits.
fn parse_spec(graph: &CommitGraph, spec: &str) -> Result<(ObjectId, ObjectId), ApiError> {
    let (a, b) = spec.split_once("...").ok_or_else(|| {
        ApiError::bad_request(
            format!("{spec:?}: compare two commits as A...B"),
            "invalid_compare",
        )
    })?;
    Ok((resolve_commit(graph, a)?, resolve_commit(graph, b)?))
}

/// The tree a commit names.
fn tree_of(snap: &gitvista_actors::Snapshot, id: ObjectId) -> Result<ObjectId, ApiError> {
    let mut buf = Vec::new();
    snap.repo
        .odb()
        .reader()
        .read_kind(&id, ObjectKind::Commit, &mut buf)
        .map_err(|e| odb_error(e, &id))?;
    Ok(gitcore::object::CommitRef::parse(&buf)
        .map_err(|e| ApiError::Unavailable(format!("commit {id}: {e}")))?
        .tree)
}

fn listed(graph: &CommitGraph, side: &[CommitIdx]) -> Vec<Value> {
    side.iter()
        .take(MAX_LISTED)
        .map(|&c| {
            json!({
                "hash": graph.oid(c).to_hex(),
                "summary": graph.summary(c),
                "author": graph.author(c).name,
                "time": graph.author_time(c),
            })
        })
        .collect()
}

/// The files changed from A to B with line counts, and the commits only A has (`onlyA`,
/// `git log B..A`) and only B has (`onlyB`, `git log A..B`), newest first.
#[get("/api/repos/{id}/compare/{hash}")]
pub async fn compare(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash: spec } = object;
    let snap = crate::routes::complete_snapshot(&state, &id).await?;
    let (a, b) = parse_spec(&snap.graph, &spec)?;
    let tag = format!("compare-{a}-{b}");
    let key = format!("compare:{a}:{b}");
    let people = Freshness::People(snap.graph.mailmap().fingerprint());
    serve(&req, snap, tag, key, people, Kept::Diffs, move |snap| {
        let g = &snap.graph;
        let (ia, ib) = match (g.find(&a), g.find(&b)) {
            (Some(ia), Some(ib)) => (ia, ib),
            _ => {
                return Err(ApiError::NotFound(
                    "both commits must be in the graph".to_string(),
                ));
            }
        };
        let (only_a, only_b) = g.exclusive(ia, ib);
        let mut reader = snap.repo.odb().reader();
        let d = trees_diff(&mut reader, Some(tree_of(snap, a)?), tree_of(snap, b)?)?;
        let files = files_json(snap, &mut reader, &d)?;
        Ok(json!({
            "a": a.to_hex(),
            "b": b.to_hex(),
            "files": files,
            "truncated": d.truncated,
            "onlyA": listed(g, &only_a),
            "onlyB": listed(g, &only_b),
            "onlyACount": only_a.len(),
            "onlyBCount": only_b.len(),
        }))
    })
    .await
}

/// One file's line diff from A to B.
#[get("/api/repos/{id}/compare/{hash}/file")]
pub async fn compare_file(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
    query: web::Query<super::commits::FileDiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash: spec } = object;
    let (file, context) = query.parsed()?;
    let snap = snapshot(&state, &id).await?;
    let (a, b) = parse_spec(&snap.graph, &spec)?;
    let tag = format!("compare.file-{a}-{b}-{}-{context}", path_tag(&file));
    let key = format!("compare.file:{a}:{b}:{context}:{file}");
    serve(
        &req,
        snap,
        tag,
        key,
        Freshness::Immutable,
        Kept::Diffs,
        move |snap| {
            let mut reader = snap.repo.odb().reader();
            let d = trees_diff(&mut reader, Some(tree_of(snap, a)?), tree_of(snap, b)?)?;
            changed_file_json(snap, &mut reader, &d, &file, context)
                .ok_or_else(|| ApiError::NotFound(format!("{file} is the same in {a} and {b}")))?
        },
    )
    .await
}
