//! `/api/repos/{id}/search?q=&limit=`: search the whole history (see [`gitcore::search`] for the
//! query language); hits come back as row numbers so the UI can jump to any of them.

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::search::{Query, SearchError, search as run_search};
use serde::Deserialize;
use serde_json::json;

use super::objects::{Freshness, Kept, path_tag, serve};
use super::{AppState, ViewQuery, complete_snapshot, view_layout, view_snapshot};
use crate::routes::repo_param::RepoParam;
use gitvista_errors::ApiError;

/// Most rows one answer lists (the total is always exact).
pub const MAX_HITS: usize = 100_000;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

/// Rows of the commits matching `q`, top to bottom, at most `limit` (default and cap
/// [`MAX_HITS`]); `total` counts every hit.
#[get("/api/repos/{id}/search")]
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: RepoParam,
    query: web::Query<SearchQuery>,
    view: web::Query<ViewQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(MAX_HITS);
    if limit == 0 || limit > MAX_HITS {
        return Err(ApiError::bad_request(
            format!("limit must be between 1 and {MAX_HITS}"),
            "invalid_limit",
        ));
    }
    let parsed = Query::parse(&query.q, gitvista_store::now())
        .map_err(|e| ApiError::bad_request(e.to_string(), "invalid_search"))?;
    // Rows need no metadata; authors and subjects do, and are read soon after the topology.
    // Every search needs the whole history: it waits for it behind a first screen.
    let snap = if parsed.reads_metadata() {
        complete_snapshot(&state, &id).await?
    } else {
        let snap = view_snapshot(&state, &id, &view).await?;
        if snap.is_partial() {
            complete_snapshot(&state, &id).await?
        } else {
            snap
        }
    };
    let layout = view_layout(&snap, &view).await?;
    let freshness = Freshness::Version(snap.version);
    let text = query.q.clone();
    // The view decides which rows exist: it is part of the answer's name.
    let view_key = super::view_key(&layout).unwrap_or_default();
    let tag = format!(
        "search-{}-{limit}",
        path_tag(&format!("{view_key}\n{text}"))
    );
    let key = format!("search:{limit}:{view_key}:{text}");
    serve(
        &req,
        snap,
        tag,
        key,
        freshness,
        Kept::Searches,
        move |snap| {
            let hits = run_search(snap.repo.odb(), &snap.graph, &parsed).map_err(|e| match e {
                // Path terms read trees a commits-only clone does not hold yet.
                SearchError::Odb(gitcore::odb::OdbError::Missing(m)) => {
                    super::objects::not_here(snap, m)
                }
                SearchError::Odb(e) => ApiError::Unavailable(e.to_string()),
                other => ApiError::Unavailable(other.to_string()),
            })?;
            let rows: Vec<usize> = hits.iter().filter_map(|&c| layout.row_of(c)).collect();
            let total = rows.len();
            Ok(json!({
                "query": text,
                "version": snap.version,
                "total": total,
                "rows": &rows[..total.min(limit)],
                "truncated": total > limit,
            }))
        },
    )
    .await
}
