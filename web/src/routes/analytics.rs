//! `/api/repos/{id}/analytics`: the dashboard's figures (gitcore's `analytics::report`) for a
//! period of the default view's history, with the deltas against the period before.
//!
//! The per-commit changes behind them are computed once per session: in the background when
//! many commits lack them (the answer is 202 with the progress until they are done), inline when
//! a few do (after a push). Answers are kept per snapshot version and window.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::analytics::report::{self, Report, SIZE_BUCKETS, Window};
use gitcore::graph::CommitIdx;
use serde::Deserialize;
use serde_json::{Value, json};

use super::objects::{Freshness, Kept, serve};
use super::{AppState, complete_snapshot};
use crate::routes::repo_param::RepoParam;
use gitvista_actors::Snapshot;
use gitvista_actors::cache::HistoryCache;
use gitvista_errors::ApiError;

/// More commits than this without their changes are computed in the background.
const INLINE: usize = 2_000;
/// Commits computed per step of the background computation (its progress granularity).
const STEP: usize = 10_000;
const DAY: i64 = 86_400;

/// Query: `period` (`all`, `3m`, `6m`, `1y`; default `all`), or `start` and `end` (dates
/// `YYYY-MM-DD`, the end day included, or Unix seconds, the end excluded).
#[derive(Debug, Deserialize)]
pub struct AnalyticsQuery {
    period: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

/// A `start`/`end` value as seconds; a date's end is the day after it.
fn parse_time(v: &str, end: bool) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            format!("{v:?} is neither a date (YYYY-MM-DD) nor Unix seconds"),
            "invalid_window",
        )
    };
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(secs);
    }
    let parts: Vec<&str> = v.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok((gitcore::search::days_from_civil(y, m, d) + i64::from(end)) * DAY)
}

/// The window a query asks for, over `commits` (for `all`: the first to the last author date).
fn window(q: &AnalyticsQuery, snap: &Snapshot, commits: &[CommitIdx]) -> Result<Window, ApiError> {
    let now = gitvista_store::now();
    let w = match (&q.start, &q.end, q.period.as_deref()) {
        (Some(s), Some(e), None) => Window {
            start: parse_time(s, false)?,
            end: parse_time(e, true)?,
        },
        (None, None, None | Some("all")) => {
            let times = commits.iter().map(|&c| snap.graph.author_time(c));
            match (times.clone().min(), times.max()) {
                (Some(lo), Some(hi)) => Window {
                    start: lo,
                    end: hi + 1,
                },
                _ => Window {
                    start: now,
                    end: now + 1,
                },
            }
        }
        (None, None, Some(p @ ("3m" | "6m" | "1y"))) => {
            let days = match p {
                "3m" => 91,
                "6m" => 182,
                _ => 365,
            };
            Window {
                start: now - days * DAY,
                end: now + 1,
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "ask for period=all|3m|6m|1y, or start= and end=",
                "invalid_window",
            ));
        }
    };
    if w.end <= w.start || w.end - w.start > 200 * 366 * DAY {
        return Err(ApiError::bad_request(
            "the window must end after it starts, within 200 years",
            "invalid_window",
        ));
    }
    Ok(w)
}

/// The default view's commits.
fn view_commits(snap: &Snapshot) -> Vec<CommitIdx> {
    (0..snap.layout.len())
        .filter_map(|r| snap.layout.commit_at(r))
        .collect()
}

/// Starts computing the missing changes in the background, unless that runs already.
fn compute_in_background(history: Arc<HistoryCache>, snap: Arc<Snapshot>, commits: Vec<CommitIdx>) {
    if history.computing.swap(true, Ordering::SeqCst) {
        return;
    }
    let missing: Vec<CommitIdx> = {
        let stats = history.stats.lock().unwrap_or_else(|e| e.into_inner());
        commits
            .into_iter()
            .filter(|&c| stats.missing(&snap.graph, &[c]) > 0)
            .collect()
    };
    history.done.store(0, Ordering::SeqCst);
    history.total.store(missing.len() as u64, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        for step in missing.chunks(STEP) {
            let mut stats = history.stats.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = stats.extend(&snap.repo, &snap.graph, step) {
                tracing::warn!(error = %e, "analytics: reading the history's changes failed");
                break;
            }
            history.done.fetch_add(step.len() as u64, Ordering::SeqCst);
        }
        tracing::info!(
            commits = missing.len(),
            ms = started.elapsed().as_millis() as u64,
            "analytics: the history's changes are read"
        );
        history.computing.store(false, Ordering::SeqCst);
    });
}

/// The dashboard for a period: velocity, authors, heatmap, merges, change size, rework,
/// hotspots, deltas against the period before, and signals.
#[get("/api/repos/{id}/analytics")]
pub async fn analytics(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: RepoParam,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let snap = complete_snapshot(&state, &id).await?;
    let commits = view_commits(&snap);
    let w = window(&query, &snap, &commits)?;
    let history = Arc::clone(&snap.caches.history);
    let missing = if history.computing.load(Ordering::SeqCst) {
        usize::MAX
    } else {
        let stats = history.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.missing(&snap.graph, &commits)
    };
    if missing > INLINE {
        compute_in_background(Arc::clone(&history), Arc::clone(&snap), commits);
        return Ok(HttpResponse::Accepted()
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "state": "computing",
                "done": history.done.load(Ordering::SeqCst),
                "total": history.total.load(Ordering::SeqCst),
            })));
    }
    let tag = format!("analytics-{}-{}", w.start, w.end);
    let key = format!("analytics:{}:{}", w.start, w.end);
    let freshness = Freshness::Version(snap.version);
    serve(
        &req,
        snap,
        tag,
        key,
        freshness,
        Kept::Searches,
        // `commits` were listed from this same snapshot above.
        move |snap| {
            let mut stats = history.stats.lock().unwrap_or_else(|e| e.into_inner());
            // A push: only the new commits are read.
            stats
                .extend(&snap.repo, &snap.graph, &commits)
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            let current = report::report(&snap.graph, &commits, &stats, w);
            let previous = report::report(&snap.graph, &commits, &stats, w.previous());
            let deltas = report::deltas(&current, &previous);
            Ok(report_json(&current, &deltas, snap.version))
        },
    )
    .await
}

fn report_json(r: &Report, deltas: &[report::Delta], version: u64) -> Value {
    let w = r.window.expect("a report has its window");
    json!({
        "state": "ready",
        "version": version,
        "window": { "start": w.start, "end": w.end },
        "velocity": {
            "weeks": r.velocity.weeks.iter().map(|x| json!({"ts": x.ts, "count": x.count, "avg": x.avg})).collect::<Vec<_>>(),
            "totalCommits": r.velocity.total_commits,
            "avgPerWeek": r.velocity.avg_per_week,
            "bestWeek": r.velocity.best_week.map(|(ts, count)| json!({"ts": ts, "count": count})),
        },
        "authors": {
            "authors": r.authors.iter().map(|a| json!({"name": a.name, "email": a.email, "count": a.count})).collect::<Vec<_>>(),
            "totalInPeriod": r.velocity.total_commits,
            "activeAuthors": r.active_authors,
        },
        "heatmap": {
            "grid": r.heatmap,
            "max": r.heatmap.iter().flatten().max().copied().unwrap_or(0),
        },
        "merges": {
            "mergeCount": r.merges.merge_count,
            "totalCount": r.merges.total_count,
            "mergePercent": r.merges.merge_percent,
            "mergesPerWeek": r.merges.merges_per_week,
        },
        "changeSize": {
            "buckets": SIZE_BUCKETS.iter().zip(&r.change_size.buckets).map(|((label, lo, hi), n)| json!({
                "label": label, "min": lo, "max": (*hi != u64::MAX).then_some(*hi), "count": n,
            })).collect::<Vec<_>>(),
            "median": r.change_size.median,
            "avgSize": r.change_size.avg_size,
        },
        "rework": {
            "weeks": r.rework.weeks.iter().map(|(ts, rate)| json!({"ts": ts, "rate": rate})).collect::<Vec<_>>(),
            "avgRate": r.rework.avg_rate,
        },
        "hotspots": r.hotspots.iter().map(|h| json!({
            "path": h.path,
            "churnCount": h.churn_count,
            "reworkRate": h.rework_rate,
            "largeChangeShare": h.large_change_share,
            "topAuthor": h.top_author,
            "topAuthorShare": h.top_author_share,
            "riskScore": h.risk_score,
            "status": h.status,
            "recommendation": h.recommendation,
        })).collect::<Vec<_>>(),
        "summarySignals": report::signals(r, deltas),
        "deltas": deltas.iter().map(|d| json!({
            "name": d.name, "current": d.current, "previous": d.previous, "changePercent": d.change_percent,
        })).collect::<Vec<_>>(),
        "missingStats": r.missing_stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_since_the_epoch_and_end_days_are_included() {
        assert_eq!(parse_time("1970-01-01", false).ok(), Some(0));
        assert_eq!(parse_time("1970-01-01", true).ok(), Some(DAY));
        assert_eq!(parse_time("2024-03-01", false).ok(), Some(1_709_251_200));
        assert_eq!(parse_time("1700000000", true).ok(), Some(1_700_000_000));
        assert!(parse_time("2024-13-01", false).is_err());
        assert!(parse_time("yesterday", false).is_err());
    }
}
