//! `GET /api/admin/status`: the service at a glance, for an operator (admin only, like the rest
//! of the admin API): repositories by state, the shared job queue (jobs by state, the one waiting
//! longest), this node's sessions and viewers, webhook deliveries of the last hour, this node's
//! clone bytes against its quota and free disk against its floor, and every live node of the
//! cluster with what it reported at its last heartbeat and the clone bytes it holds.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde_json::{Map, Value, json};

use super::AppState;
use super::admin::{authorize, described_sessions, node_json};
use gitvista_errors::ApiError;

/// The window the webhook counts cover.
const DELIVERIES_WINDOW_SECS: i64 = 3600;

/// See the module documentation.
#[get("/api/admin/status")]
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    let (sessions, viewers) = described_sessions(&state).await?;
    let this_node = json!({ "sessions": sessions.len(), "viewers": viewers });
    let Some(h) = &state.hosted else {
        return Ok(no_store(json!({ "mode": "local", "thisNode": this_node })));
    };
    let store = h.store.clone();
    let now = gitvista_store::now();
    let now_ms = gitvista_store::jobs::now_ms();
    let lease = gitvista_cluster::NODE_LEASE.as_millis() as i64;
    let (repos, jobs, deliveries, figures) = gitvista_errors::blocking(move || {
        Ok((
            store.count_by_state()?,
            store.count_jobs()?,
            store.deliveries_since(now - DELIVERIES_WINDOW_SECS)?,
            store.service_figures(now_ms, lease)?,
        ))
    })
    .await?;
    let counts = |rows: Vec<(String, i64)>| -> Map<String, Value> {
        rows.into_iter().map(|(k, n)| (k, json!(n))).collect()
    };
    let mut by_outcome: Map<String, Value> = Map::new();
    let mut by_provider: Map<String, Value> = Map::new();
    let mut total = 0;
    for (provider, outcome, n) in &deliveries {
        total += n;
        for (map, key) in [(&mut by_outcome, outcome), (&mut by_provider, provider)] {
            let entry = map.entry(key.clone()).or_insert(json!(0));
            *entry = json!(entry.as_i64().unwrap_or(0) + n);
        }
    }
    let nodes: Vec<Value> = figures
        .nodes
        .iter()
        .map(|n| {
            let mut node = node_json(n, h);
            node["cloneBytes"] = json!(figures.clone_bytes_of(&n.id));
            node
        })
        .collect();
    let mut this_node = this_node;
    this_node["id"] = json!(h.node_id);
    this_node["role"] = json!(h.role.as_str());
    if h.role.runs_git() {
        this_node["disk"] = json!({
            "cloneBytes": figures.clone_bytes_of(&h.node_id),
            "quotaBytes": h.config.disk_quota,
            "freeBytes": h.free_bytes(),
            "minFreeBytes": h.config.min_free,
        });
    }
    Ok(no_store(json!({
        "mode": "hosted",
        "thisNode": this_node,
        "repositories": counts(repos),
        "jobs": {
            "byState": counts(jobs),
            "oldestWaiting": figures.oldest_waiting.map(|o| json!({
                "kind": o.kind,
                "waitingMs": (now_ms - o.due_ms).max(0),
            })),
        },
        "webhooks": {
            "windowSecs": DELIVERIES_WINDOW_SECS,
            "deliveries": total,
            "byOutcome": by_outcome,
            "byProvider": by_provider,
        },
        "nodes": nodes,
    })))
}

fn no_store(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}
