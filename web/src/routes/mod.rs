//! HTTP routes.

pub(crate) mod account;
pub(crate) mod admin;
mod admin_status;
pub(crate) mod admission;
mod analytics;
mod billing;
pub(crate) mod forward;
mod graph;
mod health;
pub(crate) mod hosted;
pub(crate) mod methods;
mod metrics;
mod objects;
mod overview;
mod pages;
pub(crate) mod replay;
pub(crate) mod repo_param;
pub(crate) mod repository;
pub(crate) mod request_id;
pub(crate) mod request_span;
mod search;
mod team_invites;
mod teams;
mod webhooks;
pub(crate) mod worktree;
pub mod ws;

use std::sync::Arc;

use actix::Addr;
use actix_web::web;
use gitvista_actors::repo_session::{GetCompleteSnapshot, GetSnapshot, RepoSession};
use gitvista_actors::supervisor::{GetSession, SupervisorError};
use gitvista_actors::{RepoId, SessionError, Snapshot, Supervisor};

use gitvista_errors::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The registry of repository sessions.
    pub supervisor: Addr<Supervisor>,
    /// WebSocket heartbeat and queue limits.
    pub ws: crate::config::WsSettings,
    /// Hosted mode's store, queue and policy (`None` in local mode).
    pub hosted: Option<Arc<gitvista_hosting::hosted::Hosted>>,
    /// The admin token and its sign-ins (`None`: the admin API is off).
    pub admin: Option<Arc<gitvista_accounts::admin::AdminAuth>>,
    /// Budgets and counts per client address.
    pub clients: Arc<crate::client::Clients>,
    /// The server's own origin (what state-changing requests are checked against).
    pub guard: Arc<crate::guard::Guard>,
    /// Users reach the server over https (`GITVISTA_PUBLIC_URL`): cookies are `Secure`.
    pub public_https: bool,
    /// A web node's way to the workers that own repositories (`None` on other nodes).
    pub forwarder: Option<Arc<forward::Forwarder>>,
    /// Local mode: the repository's name, known before its history is read.
    pub local_name: Option<String>,
    /// Set when the server starts stopping: new WebSockets are refused (503 `stopping`).
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

tokio::task_local! {
    /// The repository a request may not see (a private one, for a visitor who may not read it):
    /// set by [`admission::admit`] around the handler, so every lookup of that id answers exactly
    /// what an unknown id's does, at the same point of the handler.
    pub static HIDDEN: String;
}

/// Whether the current request may not see repository `id` (see [`HIDDEN`]).
pub fn hidden(id: &str) -> bool {
    HIDDEN.try_with(|h| h == id).unwrap_or(false)
}

/// The session of repository `id`, started on first use.
pub async fn session(state: &AppState, id: &str) -> Result<Addr<RepoSession>, ApiError> {
    let repo = RepoId::parse(id).ok_or_else(|| ApiError::UnknownRepo(id.to_string()))?;
    if hidden(id) {
        return Err(ApiError::UnknownRepo(id.to_string()));
    }
    state
        .supervisor
        .send(GetSession(repo))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|e| match e {
            SupervisorError::Busy { .. } => ApiError::Busy(BUSY_RETRY_SECS),
            SupervisorError::UnknownRepo(_) => ApiError::UnknownRepo(id.to_string()),
        })
}

/// How long a client refused for the session budget is asked to wait.
const BUSY_RETRY_SECS: u64 = 10;

/// The current snapshot of repository `id`, loading it on first use. In hosted mode a known
/// repository that is not served yet answers 503 with its state, and an evicted one starts
/// cloning again.
pub async fn snapshot(state: &AppState, id: &str) -> Result<Arc<Snapshot>, ApiError> {
    // A session stopped between being handed out and answering (the budget made room for
    // another) is asked for again: the next one starts it afresh or says the server is busy.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let session = match session(state, id).await {
            Ok(s) => s,
            Err(ApiError::UnknownRepo(_)) if state.hosted.is_some() => {
                return Err(hosted_not_served(state, id).await);
            }
            Err(e) => return Err(e),
        };
        match session.send(GetSnapshot).await {
            Ok(Ok(snap)) => return Ok(snap),
            Ok(Err(SessionError::Stopped)) | Err(_) if attempts < 3 => continue,
            // Stopped each time: the session budget keeps making room for others; the client
            // is told to come back, as when the budget refuses a new session.
            Ok(Err(SessionError::Stopped)) | Err(_) => {
                return Err(ApiError::Busy(BUSY_RETRY_SECS));
            }
            Ok(Err(e)) => return Err(ApiError::Unavailable(e.to_string())),
        }
    }
}

/// [`snapshot`] of the whole history with every commit's author, author time and subject read:
/// right after a load from a commit-graph file this waits until they are (a few microseconds a
/// commit), and while only the newest commits are shown (a first screen, a history streaming
/// from its remote) until the whole history is in.
pub async fn complete_snapshot(state: &AppState, id: &str) -> Result<Arc<Snapshot>, ApiError> {
    let snap = snapshot(state, id).await?;
    if snap.graph.has_metadata() && !snap.is_partial() {
        return Ok(snap);
    }
    match session(state, id).await?.send(GetCompleteSnapshot).await {
        Ok(Ok(snap)) => Ok(snap),
        // Stopped for the session budget while reading: come back, as in `snapshot`.
        Ok(Err(SessionError::Stopped)) | Err(_) => Err(ApiError::Busy(BUSY_RETRY_SECS)),
        Ok(Err(e)) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// Every route whose `{id}` names a repository, as (method, pattern), from the route table:
/// the access tests are built from it, so a new route is covered without anyone listing it.
pub fn repository_routes() -> Vec<(&'static str, &'static str)> {
    methods::ROUTES
        .iter()
        .copied()
        .filter(|(_, pattern)| repo_param::is_repo_route(pattern))
        .collect()
}

/// Every admin API route (`/api/admin/...`), as (method, pattern), from the route table: the
/// test that each refuses without the token, and is off without one configured, is built from
/// it.
pub fn admin_routes() -> Vec<(&'static str, &'static str)> {
    methods::ROUTES
        .iter()
        .copied()
        .filter(|(_, pattern)| pattern.starts_with("/api/admin/"))
        .collect()
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(teams::create)
        .service(teams::list)
        .service(team_invites::preview)
        .service(team_invites::join)
        .service(team_invites::accept_addressed)
        .service(teams::show)
        .service(team_invites::create_invite)
        .service(teams::remove_member)
        .service(teams::transfer)
        .service(teams::add_repo)
        .service(teams::remove_repo)
        .service(teams::keep_repo)
        .service(teams::checkout)
        .service(teams::team_audit)
        .service(teams::admin_audit)
        .service(billing::checkout)
        .service(billing::portal)
        .service(billing::stripe_hook)
        .service(billing::keep)
        .service(account::forges)
        .service(account::login)
        .service(account::connect)
        .service(account::callback)
        .service(account::disconnect)
        .service(account::logout)
        .service(account::me)
        .service(account::picker)
        .service(account::tracked_repos)
        .service(account::admin_users)
        .service(account::admin_set_plan)
        .service(account::admin_sign_out)
        .service(admin::login)
        .service(admin::logout)
        .service(hosted::list_all)
        .service(admin::sessions)
        .service(admin::actors)
        .service(admin_status::status)
        .service(admin::fetch)
        .service(admin::evict)
        .service(metrics::render)
        .service(hosted::create)
        .service(hosted::list)
        .service(hosted::status)
        .service(hosted::delete)
        .service(pages::index)
        .service(pages::graph_page)
        .service(pages::analytics_page)
        .service(pages::dashboard)
        .service(pages::admin)
        .service(pages::static_file)
        .service(repository::repository)
        .service(overview::overview)
        .service(analytics::analytics)
        .service(overview::lifecycle)
        .service(graph::graph)
        .service(search::search)
        .service(worktree::working_tree_status)
        .service(worktree::working_tree_diff)
        .service(worktree::index_diff)
        .service(objects::file_diff)
        .service(objects::commit_diff)
        .service(objects::blame)
        .service(objects::commit)
        .service(objects::compare)
        .service(objects::compare_file)
        .service(objects::tree)
        .service(objects::raw_image)
        .service(objects::blob)
        .service(webhooks::github_hook)
        .service(webhooks::gitlab_hook)
        .service(webhooks::bitbucket_hook)
        .service(webhooks::generic_hook)
        .service(ws::ws);
}

/// Which view of the history a request is about: the filters the UI keeps in its URL. Every
/// route that answers rows (graph, search, commit, repository) takes the same parameters.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewQuery {
    /// Comma-separated ref kinds to hide beyond the default view's: `remote`, `tag`, `stash`,
    /// `notes`, `pull`, `other`, `branch`, `remoteHead`.
    hide: Option<String>,
    /// Comma-separated ref kinds the default view hides to show: `pull`, `notes`, `remoteHead`
    /// (the default view is [`gitcore::layout::RefFilter::standard`]).
    show: Option<String>,
    /// Comma-separated globs of branch/tag names to hide (`dependabot/*`).
    hide_glob: Option<String>,
    /// `1`/`true`: first parents only.
    first_parent: Option<String>,
    /// `1`/`true`: leave merge commits out.
    no_merges: Option<String>,
    /// A full ref name (`refs/heads/topic`): only it and its history, its first parents in the
    /// main lane.
    only: Option<String>,
    /// A search (the `search?q=` language): only the commits it matches, each drawn to its
    /// nearest matching ancestors ("show only matches").
    #[serde(rename = "match")]
    matching: Option<String>,
    /// A time window preset (`7d`, `30d`, `90d`, `1y`): only the commits made since (committer
    /// date, as `after:` searches), each drawn to its nearest kept ancestors; combines with
    /// `match=`.
    since: Option<String>,
    /// A commit (full id or a unique prefix of 4+ digits): only the branches containing it,
    /// local and remote-tracking (`git branch -a --contains`), and their history.
    contains: Option<String>,
}

/// Longest `match=` query accepted.
const MAX_MATCH_QUERY: usize = 1000;

/// A ref kind as the view parameters name it: a [`gitcore::graph::RefKind`], or `None` for
/// `remoteHead` (`refs/remotes/*/HEAD`).
fn view_kind(name: &str, param: &str) -> Result<Option<gitcore::graph::RefKind>, ApiError> {
    use gitcore::graph::RefKind;
    Ok(Some(match name {
        "remote" => RefKind::Remote,
        "tag" => RefKind::Tag,
        "stash" => RefKind::Stash,
        "notes" => RefKind::Notes,
        "pull" => RefKind::Pull,
        "other" => RefKind::Other,
        "branch" => RefKind::Branch,
        "remoteHead" => return Ok(None),
        other => {
            return Err(ApiError::bad_request(
                format!("{param}={other:?}: not a ref kind"),
                "invalid_view",
            ));
        }
    }))
}

impl ViewQuery {
    /// The layout options this view asks for, or 400 `invalid_view`.
    pub fn options(&self) -> Result<gitcore::layout::LayoutOptions, ApiError> {
        let flag = |v: &Option<String>, name: &str| match v.as_deref() {
            None | Some("") | Some("0") | Some("false") => Ok(false),
            Some("1") | Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                format!("{name}={other:?}: use 1 or 0"),
                "invalid_view",
            )),
        };
        let mut options = gitcore::layout::LayoutOptions {
            first_parent_only: flag(&self.first_parent, "firstParent")?,
            hide_merges: flag(&self.no_merges, "noMerges")?,
            ..gitcore::layout::LayoutOptions::standard()
        };
        let names = |v: &Option<String>| {
            v.iter()
                .flat_map(|h| h.split(','))
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let filter = &mut options.filter;
        for kind in names(&self.hide) {
            match view_kind(&kind, "hide")? {
                Some(k) if !filter.hide_kinds.contains(&k) => filter.hide_kinds.push(k),
                Some(_) => {}
                None => filter.hide_remote_heads = true,
            }
        }
        for kind in names(&self.show) {
            match view_kind(&kind, "show")? {
                Some(k) => filter.hide_kinds.retain(|&h| h != k),
                None => filter.hide_remote_heads = false,
            }
        }
        options.filter.hide_kinds.sort();
        for glob in self
            .hide_glob
            .iter()
            .flat_map(|g| g.split(','))
            .map(str::trim)
        {
            if glob.is_empty() {
                continue;
            }
            if glob.len() > 200 || options.filter.hide_globs.len() >= 32 {
                return Err(ApiError::bad_request(
                    "at most 32 globs of at most 200 bytes",
                    "invalid_view",
                ));
            }
            options.filter.hide_globs.push(glob.to_string());
        }
        if let Some(only) = self.only.as_deref().filter(|o| !o.is_empty()) {
            if !only.starts_with("refs/") || only.len() > 256 || only.contains("..") {
                return Err(ApiError::bad_request(
                    format!("only={only:?}: give a full ref name such as refs/heads/main"),
                    "invalid_view",
                ));
            }
            options.filter.only = Some(only.to_string());
            options.main_ref = Some(only.to_string());
        }
        Ok(options)
    }

    /// The `match=` search, parsed (400 `invalid_search` when it does not parse), with its text.
    pub fn match_query(&self) -> Result<Option<(String, gitcore::search::Query)>, ApiError> {
        let since = match self.since.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s @ ("7d" | "30d" | "90d" | "1y")) => Some(format!("after:{s}")),
            Some(other) => {
                return Err(ApiError::bad_request(
                    format!("since={other:?}: use 7d, 30d, 90d or 1y"),
                    "invalid_view",
                ));
            }
        };
        let matching = self
            .matching
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        let combined = match (since, matching) {
            (None, None) => return Ok(None),
            (Some(s), None) => s,
            (None, Some(m)) => m.to_string(),
            (Some(s), Some(m)) => format!("{s} {m}"),
        };
        let text = combined.as_str();
        if text.len() > MAX_MATCH_QUERY {
            return Err(ApiError::bad_request(
                format!("match= is at most {MAX_MATCH_QUERY} bytes"),
                "invalid_search",
            ));
        }
        let query = gitcore::search::Query::parse(text, gitvista_store::now())
            .map_err(|e| ApiError::bad_request(e.to_string(), "invalid_search"))?;
        Ok(Some((text.to_string(), query)))
    }
}

/// The snapshot `view` is read from: [`complete_snapshot`] when it keeps only the matches of a
/// search that reads authors or subjects, or when it needs the whole history (matches of any
/// search, the branches containing a commit) and only the newest commits are in; else
/// [`snapshot`].
pub async fn view_snapshot(
    state: &AppState,
    id: &str,
    view: &ViewQuery,
) -> Result<Arc<Snapshot>, ApiError> {
    let needs_whole = match view.match_query()? {
        Some((_, q)) if q.reads_metadata() => return complete_snapshot(state, id).await,
        Some(_) => true,
        None => view.contains.as_deref().is_some_and(|h| !h.is_empty()),
    };
    let snap = snapshot(state, id).await?;
    if needs_whole && snap.is_partial() {
        return complete_snapshot(state, id).await;
    }
    Ok(snap)
}

/// The layout of `snap` for `view`: the main one for the default view, else built (on the
/// blocking pool) or reused; a `match=` view runs its search first (read `snap` with
/// [`view_snapshot`]).
pub async fn view_layout(
    snap: &Arc<Snapshot>,
    view: &ViewQuery,
) -> Result<gitcore::layout::Layout, ApiError> {
    let mut options = view.options()?;
    if let Some(hash) = view.contains.as_deref().filter(|h| !h.is_empty()) {
        let commit = objects::resolve_commit(&snap.graph, hash)
            .ok()
            .and_then(|id| snap.graph.find(&id))
            .ok_or_else(|| {
                ApiError::bad_request(
                    format!("contains={hash:?}: no such commit in this repository"),
                    "invalid_view",
                )
            })?;
        options.filter.only_set = Some(gitcore::layout::branches_containing(&snap.graph, commit));
    }
    if let Some((text, query)) = view.match_query()? {
        let snap = Arc::clone(snap);
        return web::block(move || snap.matching_layout(options, &text, &query))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()));
    }
    if &options == snap.layout.options() {
        return Ok(snap.layout.clone());
    }
    let snap = Arc::clone(snap);
    web::block(move || snap.layout_for(&options))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// A normalised name of `layout`'s view for cache keys and ETags; `None` for the default view.
pub fn view_key(layout: &gitcore::layout::Layout) -> Option<String> {
    let options = layout.options();
    (options != &gitcore::layout::LayoutOptions::standard()).then(|| format!("{options:?}"))
}

/// Why a hosted repository has no session: unknown (404), or its state (503), re-cloning an
/// evicted one.
pub(crate) async fn hosted_not_served(state: &AppState, id: &str) -> ApiError {
    let Some(h) = state.hosted.clone() else {
        return ApiError::UnknownRepo(id.to_string());
    };
    if hidden(id) {
        return ApiError::UnknownRepo(id.to_string());
    }
    let store = h.store.clone();
    let rid = id.to_string();
    let repo = match web::block(move || store.repo(&rid)).await {
        Ok(Ok(Some(r))) => r,
        _ => return ApiError::UnknownRepo(id.to_string()),
    };
    if repo.state == "evicted" {
        if let Err(why) = h.make_disk_room(true, false).await {
            return ApiError::StorageFull(why);
        }
        let store = h.store.clone();
        let rid = repo.id.clone();
        let _ = web::block(move || store.set_state(&rid, "pending", None, None)).await;
        Arc::clone(&h).start_clone(repo, None, None);
        return ApiError::Unavailable(format!("{id} was idle and is being cloned again"));
    }
    ApiError::Unavailable(format!("{id} is {}", repo.state))
}
