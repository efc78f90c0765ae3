//! `/api/repos/{id}/overview`: what a repository is (name, description, HEAD, upstream, counts,
//! recent tags, remotes), and `/api/repos/{id}/lifecycle`: local mode's work against its
//! upstream (commits not pushed, commits not merged, the work tree's status).

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use gitcore::graph::{CommitGraph, CommitIdx, RefKind};
use gitcore::odb::ObjectKind;
use serde_json::{Value, json};

use super::{AppState, complete_snapshot, snapshot};
use crate::routes::repo_param::RepoParam;
use gitvista_actors::Snapshot;
use gitvista_errors::ApiError;

/// Commits listed per side of the lifecycle (the counts are exact).
const MAX_LISTED: usize = 200;

/// How many recent tags the overview lists.
const RECENT_TAGS: usize = 5;

/// A remote URL without the user name and password a `scheme://user:password@host/` URL
/// carries (a token is often the user name); scp-like `user@host:path` is kept (ssh).
fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The five newest tags, by the tag's own date (annotated) or its commit's (lightweight), as
/// `git for-each-ref --sort=-creatordate refs/tags` orders them.
fn recent_tags(snap: &Snapshot) -> Vec<Value> {
    let g = &snap.graph;
    let mut reader = snap.repo.odb().reader();
    let mut buf = Vec::new();
    let mut tags: Vec<(i64, &str, CommitIdx)> = g
        .refs()
        .iter()
        .filter(|r| r.kind == RefKind::Tag)
        .map(|r| {
            let own = (r.target != g.oid(r.commit))
                .then(|| {
                    reader
                        .read_kind(&r.target, ObjectKind::Tag, &mut buf)
                        .ok()?;
                    let tag = gitcore::object::TagRef::parse(&buf).ok()?;
                    tag.tagger.map(|t| t.time)
                })
                .flatten();
            (
                own.unwrap_or_else(|| g.commit_time(r.commit)),
                r.name.as_str(),
                r.commit,
            )
        })
        .collect();
    tags.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    tags.into_iter()
        .take(RECENT_TAGS)
        .map(|(time, name, commit)| {
            json!({
                "name": name.strip_prefix("refs/tags/").unwrap_or(name),
                "commit": g.oid(commit).to_hex(),
                "time": time,
            })
        })
        .collect()
}

/// The repository's description (`description` in the git directory), unless it is git's
/// placeholder.
fn description(snap: &Snapshot) -> Option<String> {
    let path = snap.repo.dirs().common_dir.join("description");
    let text = std::fs::read(&path).ok().filter(|t| t.len() < 4096)?;
    let text = String::from_utf8_lossy(&text).trim().to_string();
    (!text.is_empty() && !text.starts_with("Unnamed repository")).then_some(text)
}

/// Name, description, HEAD, upstream, counts of commits, branches and tags, the five newest
/// tags, and (local mode) the remotes without credentials.
#[get("/api/repos/{id}/overview")]
pub async fn overview(state: web::Data<AppState>, id: RepoParam) -> Result<HttpResponse, ApiError> {
    let snap = snapshot(&state, &id).await?;
    let name = super::repository::name_of(&state, &id, &snap).await?;
    let local = state.hosted.is_none();
    let body = web::block({
        let state = state.clone();
        move || {
            let g = &snap.graph;
            let count = |kind: RefKind| g.refs().iter().filter(|r| r.kind == kind).count();
            let remotes: Option<Vec<Value>> = local.then(|| {
                gitcore::config::read(&snap.repo.dirs().common_dir.join("config"))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| e.section == "remote" && e.key == "url")
                    .filter_map(|e| {
                        Some(json!({ "name": e.subsection?, "url": strip_credentials(&e.value?) }))
                    })
                    .collect()
            });
            json!({
                "name": name,
                "description": description(&snap),
                "head": gitvista_actors::events::HeadEvent::from_head(g.head()),
                "upstream": super::repository::upstream_of(&state, &snap).as_ref().map(super::repository::upstream_json),
                "counts": {
                    "commits": g.len(),
                    "branches": count(RefKind::Branch),
                    "tags": count(RefKind::Tag),
                    "remoteBranches": count(RefKind::Remote),
                },
                "recentTags": recent_tags(&snap),
                "remotes": remotes,
            })
        }
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// A commit as the lifecycle lists it.
fn commit_json(g: &CommitGraph, c: CommitIdx) -> Value {
    json!({
        "hash": g.oid(c).to_hex(),
        "summary": g.summary(c),
        "author": g.author(c).name,
        "time": g.author_time(c),
    })
}

/// Local mode: the branch's commits not on its upstream (to push) and the upstream's not on
/// the branch (to merge), newest first and at most 200 each, with the work tree's status.
#[get("/api/repos/{id}/lifecycle")]
pub async fn lifecycle(
    state: web::Data<AppState>,
    id: RepoParam,
) -> Result<HttpResponse, ApiError> {
    let snap = complete_snapshot(&state, &id).await?;
    if state.hosted.is_some() || snap.repo.dirs().work_tree.is_none() {
        return Err(ApiError::NoWorkTree);
    }
    let body = web::block(move || {
        let g = &snap.graph;
        let up = gitcore::upstream::upstream(&snap.repo, g);
        let list = |v: &[CommitIdx]| -> Vec<Value> {
            v.iter().take(MAX_LISTED).map(|&c| commit_json(g, c)).collect()
        };
        let status = gitcore::worktree::status(&snap.repo, Default::default())
            .map(|s| gitvista_actors::events::work_status_json(&s))
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok::<_, ApiError>(json!({
            "branch": g.head().and_then(|h| h.branch()).map(|b| b.strip_prefix("refs/heads/").unwrap_or(b)),
            "upstream": super::repository::upstream_json(&up),
            "ahead": list(&up.ahead),
            "behind": list(&up.behind),
            "status": status,
        }))
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

#[cfg(test)]
mod tests {
    use super::strip_credentials;

    #[test]
    fn credentials_are_stripped_from_urls_but_not_from_scp_paths() {
        assert_eq!(
            strip_credentials("https://someone:s3cret@example.com/team/tool.git"),
            "https://example.com/team/tool.git"
        );
        assert_eq!(
            strip_credentials("https://ghp_token@github.com/o/r"),
            "https://github.com/o/r"
        );
        assert_eq!(
            strip_credentials("https://github.com/o/r@v1"),
            "https://github.com/o/r@v1"
        );
        assert_eq!(
            strip_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }
}
