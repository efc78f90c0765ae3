//! HTTP routes.

mod graph;
mod health;
mod objects;
mod pages;
mod repository;
mod search;
pub(crate) mod worktree;

use std::sync::Arc;

use actix::Addr;
use actix_web::web;
use gitvista_actors::repo_session::{GetSnapshot, RepoSession};
use gitvista_actors::supervisor::GetSession;
use gitvista_actors::{RepoId, Snapshot, Supervisor};

use crate::error::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The registry of repository sessions.
    pub supervisor: Addr<Supervisor>,
    /// WebSocket heartbeat and queue limits.
    pub ws: crate::config::WsSettings,
}

/// The session of repository `id`, started on first use.
pub async fn session(state: &AppState, id: &str) -> Result<Addr<RepoSession>, ApiError> {
    let repo = RepoId::parse(id).ok_or_else(|| ApiError::UnknownRepo(id.to_string()))?;
    state
        .supervisor
        .send(GetSession(repo))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|_| ApiError::UnknownRepo(id.to_string()))
}

/// The current snapshot of repository `id`, loading it on first use.
pub async fn snapshot(state: &AppState, id: &str) -> Result<Arc<Snapshot>, ApiError> {
    session(state, id)
        .await?
        .send(GetSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(pages::index)
        .service(pages::graph_page)
        .service(pages::static_file)
        .service(repository::repository)
        .service(graph::graph)
        .service(search::search)
        .service(worktree::working_tree_status)
        .service(worktree::working_tree_diff)
        .service(worktree::index_diff)
        .service(objects::file_diff)
        .service(objects::commit_diff)
        .service(objects::blame)
        .service(objects::commit)
        .service(objects::tree)
        .service(objects::blob)
        .service(crate::ws::ws);
}
