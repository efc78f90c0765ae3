//! Hosted mode's repository routes: `POST /api/repos` (paste a URL), `GET /api/repos?ids=`
//! (the repositories the caller names), `GET /api/repos/{id}/status`, and for admins
//! `DELETE /api/repos/{id}` and `GET /api/admin/repos` (every repository). In local mode they
//! answer 404.
//!
//! Who may do what: anyone may paste a URL (rate-limited per client) and look at a public
//! repository whose id they know; with sign-in on, a signed-in user tracks what they add
//! within their plan and sees the private repositories their own forge account reads (the request
//! path in [`super::admission`] decides, once per request); listing every repository and deleting one
//! take the admin token.

use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, post, web};
use gitvista_actors::RepoId;
use gitvista_actors::clone_queue::QueueFull;
use gitvista_actors::supervisor::Forget;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::routes::repo_param::RepoParam;
use gitvista_errors::ApiError;
use gitvista_hosting::hosted::Hosted;
use gitvista_hosting::hosted::status::repo_json;
use gitvista_store::Repo;
use gitvista_store::accounts::Tracked;

fn hosted(state: &AppState) -> Result<Arc<Hosted>, ApiError> {
    state.hosted.clone().ok_or(ApiError::NoRoute)
}

use gitvista_errors::blocking;

/// Body of `POST /api/repos`.
#[derive(Debug, Deserialize)]
pub struct NewRepo {
    url: String,
}

/// Accepts a remote URL: 201 with the new repository (its clone starts), 200 with the known one;
/// 400 with the reason for a refused URL (no process is started for it).
#[post("/api/repos")]
pub async fn create(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewRepo>,
) -> Result<HttpResponse, ApiError> {
    let h = hosted(&state)?;
    // Per client (an IPv4 address or IPv6 /64, from the trusted proxy's header when configured).
    let client = state.clients.key(&req);
    if let Some(client) = client {
        h.take_token(client).await.map_err(ApiError::RateLimited)?;
    }
    let input = body.into_inner().url;
    let url = h
        .policy
        .parse(&input)
        .map_err(|e| ApiError::bad_request(e.to_string(), "invalid_url"))?;
    let checked = {
        let (policy, url) = (h.policy.clone(), url.clone());
        let resolve = h.config.resolver.0.clone();
        web::block(move || policy.check_addresses(&url, |host, port| resolve(host, port)))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    };
    checked.map_err(|e| ApiError::bad_request(e.to_string(), "refused_url"))?;
    // A repository renamed on its forge keeps the id of its first URL and is found by its new
    // one (a webhook told this server where it went).
    let id = {
        let (store, rid, canonical) = (h.store.clone(), url.id(), url.canonical.clone());
        blocking(move || {
            Ok(match store.repo(&rid)? {
                Some(_) => rid,
                None => store.repo_by_url(&canonical)?.map_or(rid, |r| r.id),
            })
        })
        .await?
    };
    let known = {
        let (store, rid) = (h.store.clone(), id.clone());
        blocking(move || store.repo(&rid)).await?
    };
    // With sign-in on: a signed-in user tracks what they add (within their plan), and a
    // repository on a configured forge they connected is asked of it with their own token,
    // which says whether it is private and whether they may read it. A repository already
    // tracked is asked about at its own URL (a renamed one's pasted old URL may name a new
    // repository now), and the answer must be about the same repository, by the forge's id.
    let accounts = state.hosted.as_ref().and_then(|h| h.accounts.clone());
    let viewer = super::account::viewer(&req);
    let mut private = None;
    let mut forge_id = None;
    // The caller's plan and its limits (repositories, private ones), checked again when the
    // repository is tracked, in the same transaction.
    let mut limits: Option<(&'static str, i64, i64)> = None;
    if let (Some(a), Some(v)) = (&accounts, &viewer) {
        let (store, rid, uid) = (h.store.clone(), id.clone(), v.user.id.clone());
        let (tracking, used) =
            blocking(move || Ok((store.tracks(&rid, &uid)?, store.tracked_count(&uid)?))).await?;
        let plan = a.plan_of(&v.user).await?.plan;
        let limit = a.plans.limit(plan);
        limits = Some((plan, limit, a.plans.private_limit(plan)));
        if !tracking && used >= limit {
            return Err(ApiError::status(
                403,
                format!(
                    "your {plan} plan tracks at most {limit} repositories and you track {used}; stop tracking one first"
                ),
                "quota_exceeded",
            ));
        }
        let asked_url = known
            .as_ref()
            .map_or(url.canonical.as_str(), |k| k.canonical_url.as_str());
        if let Some((p, path)) = a.forge_of(asked_url) {
            let mut answer = a.ask_forge(&v.user, p.as_ref(), &path).await;
            if let (Ok(Some(found)), Some(_)) = (&answer, &known)
                && a.compare(&id, found.clone(), gitvista_accounts::confirm::Learn::Yes)
                    .await
                    == gitvista_accounts::confirm::ForgeSays::Another
            {
                answer = Ok(None);
            }
            match answer {
                Ok(Some(found)) => {
                    if known.is_none()
                        && let Some(fid) = found.id.clone()
                    {
                        // Learnt with the row below, once it exists.
                        forge_id = Some(fid);
                    }
                    if found.private && !tracking {
                        let (store, uid) = (h.store.clone(), v.user.id.clone());
                        let privates = blocking(move || store.tracked(&uid))
                            .await?
                            .iter()
                            .filter(|r| r.is_private)
                            .count();
                        let allowed = a.plans.private_limit(plan);
                        if i64::try_from(privates).unwrap_or(i64::MAX) >= allowed {
                            return Err(ApiError::status(
                                403,
                                format!(
                                    "your {plan} plan tracks at most {allowed} private repositories; upgrade, or stop tracking one"
                                ),
                                "private_quota_exceeded",
                            ));
                        }
                    }
                    // This route never makes a repository public: only the forge's answer to
                    // a recheck (or a confirmed webhook) does.
                    private = Some(found.private || known.as_ref().is_some_and(|k| k.is_private));
                }
                Ok(None) => {
                    return Err(ApiError::status(
                        404,
                        format!(
                            "{} has no repository at this URL that your account can read",
                            p.name()
                        ),
                        "not_found",
                    ));
                }
                // No account on that forge linked: tracked as any public URL would be (a
                // private one then fails to clone, asking for credentials).
                Err(ApiError::Status {
                    code: "forge_not_connected",
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if private.is_none() && accounts.is_some() {
        // Not confirmed readable by the caller: a private repository someone else tracks is
        // answered as a URL never seen before would be, and nothing is started or shown.
        if let Some(known) = &known
            && known.is_private
        {
            let body = repo_json(&Repo {
                state: "cloning".into(),
                error_message: None,
                error_code: None,
                progress: None,
                disk_bytes: 0,
                commit_count: 0,
                last_fetch_at: None,
                last_access_at: Some(gitvista_store::now()),
                created_at: gitvista_store::now(),
                display_url: input.trim().to_string(),
                is_private: false,
                ..known.clone()
            });
            return Ok(HttpResponse::Created().json(body));
        }
    }
    // A repository not cloned yet needs room on disk (and a place under the repository cap).
    let needs_clone = known
        .as_ref()
        .is_none_or(|r| matches!(r.state.as_str(), "error" | "evicted"));
    if needs_clone {
        // The clone queue must have room for it (per client and in all) before it is promised.
        if let Some(client) = client {
            let (store, key) = (h.store.clone(), client.to_string());
            let (per_client, max_waiting) = (h.config.clones_per_client, h.config.queue_max);
            let pending = blocking(move || store.pending_clones(&key)).await?;
            QueueFull::admit(pending.waiting, pending.mine, per_client, max_waiting).map_err(
                |e| match e {
                    QueueFull::Client(_) => ApiError::QueueFull(e.to_string(), 429),
                    QueueFull::Total(_) => ApiError::QueueFull(e.to_string(), 503),
                },
            )?;
        }
        h.make_disk_room(true, known.is_none())
            .await
            .map_err(ApiError::StorageFull)?;
    }
    let (store, canonical, display) = (
        h.store.clone(),
        url.canonical.clone(),
        input.trim().to_string(),
    );
    let rid = id.clone();
    let tracker_added = accounts.is_some() && viewer.is_some();
    let tracker = viewer
        .as_ref()
        .filter(|_| accounts.is_some())
        .map(|v| v.user.id.clone());

    let tracked = blocking(move || {
        let (repo, created) = store.upsert_repo_as(&rid, &canonical, &display, private)?;
        if let Some(fid) = forge_id {
            store.learn_forge_repo_id(&rid, &fid)?;
        }
        if let Some(uid) = tracker {
            // A private repository's access was just confirmed; a public one needs none.
            let checked = private.filter(|p| *p).map(|_| gitvista_store::now());
            let (limit, private_limit) = limits.map_or((i64::MAX, i64::MAX), |(_, l, p)| (l, p));
            let private_limit = private.filter(|p| *p).map(|_| private_limit);
            match store.track_within(&rid, &uid, checked, limit, private_limit)? {
                Tracked::Added | Tracked::Already => {}
                over => {
                    // Made for this request only: gone with it.
                    if created && !store.is_tracked(&rid)? {
                        store.delete_repo(&rid)?;
                    }
                    return Ok(Err(over));
                }
            }
        }
        Ok(Ok((repo, created)))
    })
    .await?;
    let plan = limits.map_or("free", |(p, _, _)| p);
    let (repo, created) = match tracked {
        Ok(done) => done,
        Err(Tracked::OverPrivateLimit(_)) => {
            let allowed = limits.map_or(0, |(_, _, p)| p);
            return Err(ApiError::status(
                403,
                format!(
                    "your {plan} plan tracks at most {allowed} private repositories; upgrade, or stop tracking one"
                ),
                "private_quota_exceeded",
            ));
        }
        Err(_) => {
            let limit = limits.map_or(0, |(_, l, _)| l);
            return Err(ApiError::status(
                403,
                format!(
                    "your {plan} plan tracks at most {limit} repositories; stop tracking one first"
                ),
                "quota_exceeded",
            ));
        }
    };
    // A repository a paying user tracks is fetched at the paid pace from now on.
    if tracker_added && h.stripe.is_some() {
        h.sync_paid().await;
    }
    // An OAuth App setup registers a webhook when the user may administer the repository.
    if let (Some(_), Some(v)) = (&accounts, &viewer) {
        let (h, rid, user) = (Arc::clone(&h), id.clone(), v.user.clone());
        actix_web::rt::spawn(async move {
            gitvista_hosting::hosted::hook_registration::register(&h, &rid, &user).await;
        });
    }
    // A repository that failed or was evicted is cloned again when someone asks for it.
    let restart = created || matches!(repo.state.as_str(), "error" | "evicted");
    if restart {
        Arc::clone(&h).start_clone(
            repo.clone(),
            client,
            super::replay::asked_region(&req, &state),
        );
    } else {
        let store = h.store.clone();
        let rid = id.clone();
        let _ = blocking(move || store.touch(&rid)).await;
    }
    let mut body = repo_json(&repo);
    if restart {
        body["state"] = json!("cloning");
    }
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Most ids one `GET /api/repos?ids=` names.
const MAX_LISTED_IDS: usize = 50;

/// Query of `GET /api/repos`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Comma-separated repository ids (the landing page's "recently viewed", kept in the browser).
    ids: Option<String>,
}

/// The repositories the caller names (`?ids=a,b`; unknown ids are left out), in the order asked;
/// nothing without `ids`. Every repository is an admin's question (`GET /api/admin/repos`).
#[get("/api/repos")]
pub async fn list(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let h = hosted(&state)?;
    let mut ids: Vec<String> = Vec::new();
    for id in query.ids.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if id.is_empty() || ids.iter().any(|i| i == id) {
            continue;
        }
        if RepoId::parse(id).is_none() || ids.len() >= MAX_LISTED_IDS {
            return Err(ApiError::bad_request(
                format!("ids: at most {MAX_LISTED_IDS} repository ids, comma-separated"),
                "invalid_query",
            ));
        }
        ids.push(id.to_string());
    }
    let store = h.store.clone();
    let wanted = ids.clone();
    let repos = if ids.is_empty() {
        Vec::new()
    } else {
        blocking(move || store.repos_with_ids(&wanted)).await?
    };
    // A private repository the caller may not read is left out, as an unknown id is.
    let accounts = h.accounts.clone();
    let viewer = super::account::viewer(&req);
    let mut listed: Vec<Value> = Vec::with_capacity(ids.len());
    for r in ids
        .iter()
        .filter_map(|id| repos.iter().find(|r| &r.id == id))
    {
        if let Some(a) = &accounts
            && a.may_read(r, viewer.as_ref()).await != gitvista_accounts::accounts::Access::Granted
        {
            continue;
        }
        listed.push(repo_json(r));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "repos": listed })))
}

/// Every repository, most recently viewed first (admins only).
#[get("/api/admin/repos")]
pub async fn list_all(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::admin::authorize(&req, &state).await?;
    let h = hosted(&state)?;
    let store = h.store.clone();
    let repos = blocking(move || store.repos()).await?;
    let details = h.failure_details();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "repos": repos.iter().map(|r| {
                let mut v = repo_json(r);
                v["errorDetail"] = json!(details.get(&r.id));
                v
            }).collect::<Vec<_>>(),
        })))
}

pub(super) async fn known(h: &Hosted, id: &str) -> Result<Repo, ApiError> {
    let store = h.store.clone();
    let hidden = super::hidden(id);
    let rid = id.to_string();
    blocking(move || store.repo(&rid))
        .await?
        .filter(|_| !hidden)
        .ok_or_else(|| ApiError::UnknownRepo(id.to_string()))
}

/// State, clone progress (text and percent), error and name of a repository; in local mode
/// only the name (known before the history is read, for the page's first screen).
#[get("/api/repos/{id}/status")]
pub async fn status(state: web::Data<AppState>, id: RepoParam) -> Result<HttpResponse, ApiError> {
    let body = match (&state.hosted, &state.local_name) {
        (None, Some(name)) if id.as_str() == "local" => json!({ "mode": "local", "name": name }),
        _ => {
            let h = hosted(&state)?;
            let mut body = status_json(&h, &id).await?;
            if let Some(url) = body["displayUrl"].as_str() {
                body["name"] = json!(display_name(url));
            }
            body
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// What a repository is called on its pages: `owner/repo` from its remote's path (the last two
/// segments, without `.git`), or the whole path when it has one segment.
pub(super) fn display_name(url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    // scp-like `host:owner/repo.git`
    let path = if url.contains("://") {
        path
    } else {
        url.rsplit_once(':').map_or(url, |(_, p)| p)
    };
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_suffix(".git").unwrap_or(s))
        .collect();
    match segments.as_slice() {
        [] => url.to_string(),
        [one] => (*one).to_string(),
        [.., owner, repo] => format!("{owner}/{repo}"),
    }
}

/// A repository's state with the running job's progress (the status route and the clone
/// progress socket).
pub(crate) async fn status_json(h: &Hosted, id: &str) -> Result<Value, ApiError> {
    let repo = known(h, id).await?;
    Ok(h.repo_status(&repo).await)
}

/// Forgets a repository: its session stops, its clone and its row are deleted (admins only).
#[delete("/api/repos/{id}")]
pub async fn delete(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    id: RepoParam,
) -> Result<HttpResponse, ApiError> {
    let h = hosted(&state)?;
    if let Err(not_admin) = super::admin::authorize(&req, &state).await {
        // A signed-in user stops tracking it.
        let (Some(accounts), Some(v)) = (h.accounts.clone(), super::account::viewer(&req)) else {
            return Err(not_admin);
        };
        return untrack(&h, &accounts, &state, &v, &id).await;
    }
    let repo = known(&h, &id).await?;
    let rid = RepoId::parse(&repo.id).ok_or_else(|| ApiError::UnknownRepo(id.to_string()))?;
    // Its webhook goes first (removing it needs the row).
    gitvista_hosting::hosted::hook_registration::unregister(&h, rid.as_str()).await;
    // A clone or fetch running for it is killed first, so nothing lands after the delete.
    let _ = h
        .queue
        .send(gitvista_actors::clone_queue::Cancel(rid.clone()))
        .await;
    let _ = state.supervisor.send(Forget(rid.clone())).await;
    let dir = h.config.data_dir.join("repos").join(rid.as_str());
    let store = h.store.clone();
    blocking(move || {
        let _ = std::fs::remove_dir_all(&dir);
        store.delete_repo(rid.as_str())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `viewer` stops tracking repository `id` (204; 404 `not_tracked` when they did not). A
/// private repository nobody tracks any more cannot be shown to anyone: its session stops and
/// its clone goes, through the eviction path (the row stays, `evicted`).
async fn untrack(
    h: &Arc<Hosted>,
    accounts: &gitvista_accounts::accounts::Accounts,
    state: &AppState,
    v: &gitvista_accounts::accounts::Viewer,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let (store, rid, uid) = (accounts.store.clone(), id.to_string(), v.user.id.clone());
    let (removed, orphan, untracked) = blocking(move || {
        let removed = store.revoke_access(&rid, &uid)?;
        let untracked = !store.is_tracked(&rid)?;
        let orphan = match store.repo(&rid)? {
            Some(r) => r.is_private && untracked,
            None => false,
        };
        Ok((removed, orphan, untracked))
    })
    .await?;
    if !removed {
        return Err(ApiError::status(
            404,
            "you do not track this repository",
            "not_tracked",
        ));
    }
    // Nobody tracks it: the webhook registered for it goes.
    if removed && untracked {
        let (h, rid) = (Arc::clone(h), id.to_string());
        actix_web::rt::spawn(async move {
            gitvista_hosting::hosted::hook_registration::unregister(&h, &rid).await;
        });
    }
    if orphan && let Some(rid) = RepoId::parse(id) {
        let _ = state.supervisor.send(Forget(rid.clone())).await;
        h.delete_clone(&rid).await;
    }
    // A place under the plan freed: a repository frozen over it is kept again. (The one
    // untracked may also have thawed for nobody, or been the last to keep another frozen.)
    h.enforce_quota(&v.user.id, None).await?;
    h.sync_frozen(Some(vec![id.to_string()])).await;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn pages_name_a_hosted_repository_owner_slash_repo() {
        for (url, name) in [
            ("https://github.com/rust-lang/cargo.git", "rust-lang/cargo"),
            ("https://gitlab.com/group/sub/project", "sub/project"),
            ("git@github.com:owner/repo.git", "owner/repo"),
            ("http://127.0.0.1:9418/solo.git", "solo"),
            ("https://example.com/", "https://example.com/"),
        ] {
            assert_eq!(display_name(url), name, "{url}");
        }
    }
}
