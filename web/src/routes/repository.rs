//! `/api/repos/{id}/repository`: the summary of a repository.

use actix_web::{HttpResponse, get, web};
use gitcore::graph::RefKind;
use serde::Serialize;

use super::{AppState, ViewQuery, session, view_layout, view_snapshot};
use crate::routes::repo_param::RepoParam;
use gitvista_actors::repo_session::ViewerCount;
use gitvista_errors::ApiError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefJson<'a> {
    name: &'a str,
    kind: &'static str,
    commit: String,
    row: Option<usize>,
}

/// The wire name of a ref kind.
pub fn kind_name(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Branch => "branch",
        RefKind::Remote => "remote",
        RefKind::Tag => "tag",
        RefKind::Stash => "stash",
        RefKind::Notes => "notes",
        RefKind::Pull => "pull",
        RefKind::Other => "other",
    }
}

/// Refs, HEAD, counts, the snapshot version and how many viewers are watching live.
#[get("/api/repos/{id}/repository")]
pub async fn repository(
    state: web::Data<AppState>,
    id: RepoParam,
    view: web::Query<ViewQuery>,
) -> Result<HttpResponse, ApiError> {
    let snap = view_snapshot(&state, &id, &view).await?;
    let layout = view_layout(&snap, &view).await?;
    let viewers = session(&state, &id)
        .await?
        .send(ViewerCount)
        .await
        .unwrap_or(0);
    let (name, forge) = name_and_forge(&state, &id, &snap).await?;
    // Local mode: how the branch stands against its upstream (`git status -sb`).
    let upstream = upstream_of(&state, &snap);
    let g = &snap.graph;
    let refs: Vec<RefJson<'_>> = g
        .refs()
        .iter()
        .filter(|r| layout.options().filter.includes(r))
        .map(|r| RefJson {
            name: &r.name,
            kind: kind_name(r.kind),
            commit: g.oid(r.commit).to_hex(),
            row: layout.row_of(r.commit),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": id.as_str(),
        "name": name,
        // Where `#123` in messages links to: the `origin` remote's forge (local mode) or the
        // repository's (hosted), when it is GitHub, GitLab or Bitbucket.
        "forge": forge,
        "state": "ready",
        "version": snap.version,
        "head": gitvista_actors::events::HeadEvent::from_head(g.head()),
        "commits": g.len(),
        "rows": layout.len(),
        "width": layout.width(),
        "refs": refs,
        "problems": g.problems(),
        "viewers": viewers,
        // A shallow clone: older commits are not here (yet; hosted mode deepens in the background).
        "historyIncomplete": g.shallow_count() > 0,
        "upstream": upstream.as_ref().map(upstream_json),
        // Only the newest commits so far: shown from the remote while it is cloned, or a first
        // screen while the whole history loads (older commits still coming).
        "streaming": snap.is_partial(),
        // A partial clone: `commits` or `trees` until it is hydrated (what a request needs is
        // fetched for it, or it is answered 202 "hydrating").
        "contents": snap.contents.as_str(),
        // Local mode only: a hosted repository gets its commit-graph from the server, not the user.
        "commitGraphHint": snap
            .commit_graph_hint
            .as_ref()
            .filter(|_| state.hosted.is_none())
            .map(|h| serde_json::json!({
                "message": h.message(),
                "command": gitvista_actors::snapshot::CommitGraphHint::COMMAND,
                "speedup": h.speedup(),
                "firstViewMs": h.first_view.as_millis() as u64,
                "expectedMs": h.estimate().as_millis() as u64,
            })),
    })))
}

/// The repository's name (`owner/repo` hosted, the directory locally) and where `#123` links:
/// the hosted URL's forge, or the `origin` remote's.
async fn name_and_forge(
    state: &AppState,
    id: &str,
    snap: &gitvista_actors::Snapshot,
) -> Result<(String, Option<crate::forge::Forge>), ApiError> {
    Ok(match &state.hosted {
        Some(h) => {
            let url = super::hosted::known(h, id).await?.display_url;
            (
                super::hosted::display_name(&url),
                crate::forge::forge_of(&url),
            )
        }
        None => {
            let origin = gitcore::config::get(
                &snap.repo.dirs().common_dir.join("config"),
                "remote",
                Some("origin"),
                "url",
            );
            (
                local_name(snap.repo.dirs()),
                origin.as_deref().and_then(crate::forge::forge_of),
            )
        }
    })
}

/// The repository's name, as the summary gives it.
pub(super) async fn name_of(
    state: &AppState,
    id: &str,
    snap: &gitvista_actors::Snapshot,
) -> Result<String, ApiError> {
    Ok(name_and_forge(state, id, snap).await?.0)
}

/// A local repository's name: its work tree's directory, or a bare repository's without `.git`.
pub(crate) fn local_name(dirs: &gitcore::discover::GitDir) -> String {
    let dir = dirs.work_tree.as_deref().unwrap_or(&dirs.git_dir);
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    name.strip_suffix(".git")
        .map(str::to_string)
        .unwrap_or(name)
}

/// The upstream answer: which ref, its commit, how the branch stands, the counts, and why not.
pub(super) fn upstream_json(up: &gitcore::upstream::Upstream) -> serde_json::Value {
    serde_json::json!({
        "ref": up.ref_name,
        "branchName": up.branch_name,
        "hash": up.hash.map(|h| h.to_hex()),
        "status": up.status.as_str(),
        "aheadCount": up.ahead.len(),
        "behindCount": up.behind.len(),
        "reason": up.reason,
    })
}

/// The upstream of a local repository's branch; `None` in hosted mode, where the clone is the
/// server's and its branches have no upstream a user set.
pub(super) fn upstream_of(
    state: &AppState,
    snap: &gitvista_actors::Snapshot,
) -> Option<gitcore::upstream::Upstream> {
    state
        .hosted
        .is_none()
        .then(|| gitcore::upstream::upstream(&snap.repo, &snap.graph))
}
