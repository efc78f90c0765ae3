//! `/api/repos/{id}/graph?offset=&limit=`: a window of laid-out rows.

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::layout::{EdgeOut, OVERFLOW};
use serde::{Deserialize, Serialize};

use super::repository::kind_name;
use super::{AppState, ViewQuery, view_layout, view_snapshot};
use crate::routes::repo_param::RepoParam;
use gitvista_errors::ApiError;

/// Largest window one request may ask for.
pub const MAX_LIMIT: usize = 2000;

#[derive(Debug, Deserialize)]
pub struct WindowQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Edge {
    parent: String,
    parent_row: usize,
    parent_lane: Option<u16>,
    track: Option<u16>,
    color: u8,
}

fn lane(l: u16) -> Option<u16> {
    (l != OVERFLOW).then_some(l)
}

fn edge(g: &gitcore::graph::CommitGraph, e: &EdgeOut) -> Edge {
    Edge {
        parent: g.oid(e.parent).to_hex(),
        parent_row: e.parent_row,
        parent_lane: lane(e.parent_lane),
        track: lane(e.track),
        color: e.color,
    }
}

/// Rows `offset..offset + limit` with lanes (`null` for the overflow lane), colours (an index into
/// a palette of `colors` entries, 0 for the main branch), edges, refs, author, time and subject, plus the edges from above that pass into the window.
#[get("/api/repos/{id}/graph")]
pub async fn graph(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: RepoParam,
    query: web::Query<WindowQuery>,
    view: web::Query<ViewQuery>,
) -> Result<HttpResponse, ApiError> {
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            format!("limit must be between 1 and {MAX_LIMIT}"),
            "invalid_limit",
        ));
    }
    let snap = view_snapshot(&state, &id, &view).await?;
    let layout = view_layout(&snap, &view).await?;
    // Building a window reads every edge of its rows and serializes them: off the async
    // workers, so one heavy window (a merge of thousands of parents) delays no other request.
    let body = web::block(move || window_json(&snap, &layout, offset, limit))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))??;
    Ok(crate::encoding::json(&req, HttpResponse::Ok(), body.into()))
}

/// The JSON of rows `offset..offset + limit` of `layout`.
fn window_json(
    snap: &gitvista_actors::Snapshot,
    layout: &gitcore::layout::Layout,
    offset: usize,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let g = &snap.graph;
    // A hidden kind of ref (`hide=remote`) loses its badges too, not only the commits only it
    // reaches.
    let shown = &layout.options().filter;
    let w = layout.window(offset, limit);
    // Read from the objects for these rows when the graph has only its topology so far.
    let commits: Vec<_> = w.rows.iter().map(|r| r.commit).collect();
    let summaries = g.summaries(&snap.repo, &commits);
    let rows: Vec<serde_json::Value> = w
        .rows
        .iter()
        .zip(summaries)
        .map(|(r, s)| {
            serde_json::json!({
                "row": r.row,
                "hash": g.oid(r.commit).to_hex(),
                "lane": lane(r.lane),
                "color": r.color,
                "edges": r.edges.iter().map(|e| edge(g, e)).collect::<Vec<_>>(),
                "moreParents": r.more_parents,
                // A root of the history: not a commit whose parents this view leaves out, nor
                // one whose parents are cut (a shallow clone's boundary, or a history still
                // streaming from its remote).
                "root": g.parents(r.commit).is_empty() && !g.is_shallow(&g.oid(r.commit)),
                "refs": g.refs_at(r.commit).iter().filter(|x| shown.includes(x)).map(|x| serde_json::json!({"name": x.name, "kind": kind_name(x.kind)})).collect::<Vec<_>>(),
                "author": s.author.name,
                "authorEmail": s.author.email,
                "time": s.author_time,
                "summary": s.summary,
            })
        })
        .collect();
    let through: Vec<serde_json::Value> = w
        .through
        .iter()
        .map(|t| {
            serde_json::json!({
                "childRow": t.child_row,
                "childLane": lane(t.child_lane),
                "edge": edge(g, &t.edge),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "version": snap.version,
        "offset": offset,
        "total": layout.len(),
        "width": w.width,
        "colors": gitcore::layout::COLORS,
        "rows": rows,
        "through": through,
    }))
    .map_err(|e| ApiError::Unavailable(e.to_string()))
}
