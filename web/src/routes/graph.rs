//! `/api/repos/{id}/graph?offset=&limit=`: a window of laid-out rows.

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::graph::{CommitGraph, CommitSummary, GraphRef};
use gitcore::layout::{EdgeOut, Layout, OVERFLOW, PassEdge, RefFilter, Window, WindowRow};
use serde::{Deserialize, Serialize, Serializer};

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

/// An id as its hex digits, written without a `String`.
struct Hex(gitcore::oid::HexId);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Edge {
    parent: Hex,
    parent_row: usize,
    parent_lane: Option<u16>,
    track: Option<u16>,
    color: u8,
}

fn lane(l: u16) -> Option<u16> {
    (l != OVERFLOW).then_some(l)
}

fn edge(g: &CommitGraph, e: &EdgeOut) -> Edge {
    Edge {
        parent: Hex(g.oid(e.parent).hex()),
        parent_row: e.parent_row,
        parent_lane: lane(e.parent_lane),
        track: lane(e.track),
        color: e.color,
    }
}

/// A row's edges, serialized as they are read.
struct Edges<'a>(&'a CommitGraph, &'a [EdgeOut]);

impl Serialize for Edges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|e| edge(self.0, e)))
    }
}

#[derive(Serialize)]
struct Badge<'a> {
    name: &'a str,
    kind: &'static str,
}

/// The refs at a row that the view shows.
struct Badges<'a>(&'a [GraphRef], &'a RefFilter);

impl Serialize for Badges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|r| self.1.includes(r)).map(|r| Badge {
            name: &r.name,
            kind: kind_name(r.kind),
        }))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    row: usize,
    hash: Hex,
    lane: Option<u16>,
    color: u8,
    edges: Edges<'a>,
    more_parents: usize,
    root: bool,
    refs: Badges<'a>,
    author: &'a str,
    author_email: &'a str,
    time: i64,
    summary: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Through {
    child_row: usize,
    child_lane: Option<u16>,
    edge: Edge,
}

/// The rows, each serialized as it is read.
struct Rows<'a> {
    graph: &'a CommitGraph,
    rows: &'a [WindowRow],
    /// Read from the objects (a graph with only its topology so far); `None` reads the graph.
    summaries: Option<Vec<CommitSummary>>,
    shown: &'a RefFilter,
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = self.graph;
        s.collect_seq(self.rows.iter().enumerate().map(|(i, r)| {
            let (author, author_email, time, summary) =
                match self.summaries.as_ref().and_then(|all| all.get(i)) {
                    Some(s) => (
                        &*s.author.name,
                        &*s.author.email,
                        s.author_time,
                        &*s.summary,
                    ),
                    None => {
                        let who = g.author(r.commit);
                        (
                            &*who.name,
                            &*who.email,
                            g.author_time(r.commit),
                            g.summary(r.commit),
                        )
                    }
                };
            let id = g.oid(r.commit);
            Row {
                row: r.row,
                hash: Hex(id.hex()),
                lane: lane(r.lane),
                color: r.color,
                edges: Edges(g, &r.edges),
                more_parents: r.more_parents,
                // A root of the history: not a commit whose parents this view leaves out, nor
                // one whose parents are cut (a shallow clone's boundary, or a history still
                // streaming from its remote).
                root: g.parents(r.commit).is_empty() && !g.is_shallow(&id),
                refs: Badges(g.refs_at(r.commit), self.shown),
                author,
                author_email,
                time,
                summary,
            }
        }))
    }
}

/// Edges from above the window into it, serialized as they are read.
struct PassingEdges<'a>(&'a CommitGraph, &'a [PassEdge]);

impl Serialize for PassingEdges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|t| Through {
            child_row: t.child_row,
            child_lane: lane(t.child_lane),
            edge: edge(self.0, &t.edge),
        }))
    }
}

#[derive(Serialize)]
struct WindowBody<'a> {
    version: u64,
    offset: usize,
    total: usize,
    width: u16,
    colors: u8,
    rows: Rows<'a>,
    through: PassingEdges<'a>,
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
    let window = layout.window(offset, limit);
    let edges: usize = window.rows.iter().map(|r| r.edges.len()).sum();
    let body = if snap.graph.has_metadata() && edges + window.through.len() <= INLINE_EDGES {
        window_json(&snap, &layout, offset, &window)?
    } else {
        // A heavy window (merges of many parents, rows read from the objects while the graph
        // has only its topology) is written off the async workers, so it delays no other
        // request; handing work to the blocking pool costs more than writing a common window.
        web::block(move || window_json(&snap, &layout, offset, &window))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))??
    };
    Ok(crate::encoding::json(&req, HttpResponse::Ok(), body.into()))
}

/// Most edges (the rows' own and those passing in) of a window written on an async worker:
/// about 1,000 rows of a forge's history, well under a millisecond.
const INLINE_EDGES: usize = 2048;

/// The JSON of rows `offset..offset + limit` of `layout`, written straight from the graph and
/// layout (no intermediate values).
fn window_json(
    snap: &gitvista_actors::Snapshot,
    layout: &Layout,
    offset: usize,
    w: &Window,
) -> Result<Vec<u8>, ApiError> {
    let g = &snap.graph;
    // Read from the objects for these rows when the graph has only its topology so far.
    let summaries = (!g.has_metadata()).then(|| {
        let commits: Vec<_> = w.rows.iter().map(|r| r.commit).collect();
        g.summaries(&snap.repo, &commits)
    });
    let body = WindowBody {
        version: snap.version,
        offset,
        total: layout.len(),
        width: w.width,
        colors: gitcore::layout::COLORS,
        rows: Rows {
            graph: g,
            rows: &w.rows,
            summaries,
            // A hidden kind of ref (`hide=remote`) loses its badges too, not only the commits
            // only it reaches.
            shown: &layout.options().filter,
        },
        through: PassingEdges(g, &w.through),
    };
    // About 420 bytes a row on a forge's history.
    let mut out = Vec::with_capacity(512 + 512 * w.rows.len());
    serde_json::to_writer(&mut out, &body).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(out)
}
