//! What a verified delivery will do: the repository it names (by a per-repository hook's own
//! id, or by URL on the hosts its receiver may speak for), decided before it is recorded, and
//! carried out once it is recorded as new.

use std::sync::Arc;

use gitvista_actors::RepoId;
use gitvista_errors::{ApiError, blocking};

use crate::hosted::Hosted;
use crate::hosted::hints::{self, FETCH_PRIORITY, access_changed};
use crate::webhooks::Webhooks;
use crate::webhooks::events::Action;

/// Where a receiver's own secret may name repositories: on its forge's host when that forge
/// is configured for sign-in, else on any host but the configured forges'. (A GitLab hook
/// naming a GitHub repository is not GitLab speaking.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Hosts {
    Only(String),
    AnyBut(Vec<String>),
}

impl Hosts {
    pub(super) fn allows(&self, url: &str) -> bool {
        let host = hints::host_of(url);
        match self {
            Hosts::Only(h) => host.as_deref() == Some(h.as_str()),
            Hosts::AnyBut(others) => host.is_some_and(|h| !others.contains(&h)),
        }
    }
}

pub(super) fn receiver_hosts(hosted: &Hosted, provider: &str) -> Hosts {
    let Some(a) = &hosted.accounts else {
        return Hosts::AnyBut(Vec::new());
    };
    let host = |kind: &str| a.auth.forge(kind).and_then(|f| hints::host_of(&f.web_url));
    match host(provider) {
        Some(h) => Hosts::Only(h),
        None => Hosts::AnyBut(
            ["github", "gitlab", "bitbucket"]
                .iter()
                .filter_map(|k| host(k))
                .collect(),
        ),
    }
}

/// The repository one of `urls` names, if this server tracks it (by id, or by its current URL
/// after a rename). URLs that would not be accepted if pasted, or that are not on `host`, are
/// skipped.
pub(super) async fn find_repo(
    hosted: &Arc<Hosted>,
    urls: &[String],
    hosts: &Hosts,
) -> Result<Option<RepoId>, ApiError> {
    let mut candidates = Vec::new();
    for u in urls {
        if let Ok(r) = crate::remote::RemoteUrl::parse(u, &hosted.policy)
            && hosts.allows(&r.canonical)
        {
            candidates.push((r.id(), r.canonical));
        }
    }
    if candidates.is_empty() {
        return Ok(None);
    }
    let store = hosted.store.clone();
    let found = blocking(move || {
        for (id, canonical) in &candidates {
            if let Some(r) = store.repo(id)? {
                return Ok(Some(r.id));
            }
            if let Some(r) = store.repo_by_url(canonical)? {
                return Ok(Some(r.id));
            }
        }
        Ok(None)
    })
    .await?;
    Ok(found.as_deref().and_then(RepoId::parse))
}

/// What a delivery will do, decided before it is recorded (so a replay does nothing).
#[derive(Debug)]
pub(super) enum Plan {
    Ping(Option<RepoId>),
    Fetch(RepoId),
    /// Tracked, but not served now (cloning, evicted, failed): nothing to fetch.
    NotServed(RepoId),
    /// Frozen over its users' plans: not fetched.
    Frozen(RepoId),
    /// Nobody paying keeps it (billing on): its next poll, at the free plan's pace, fetches it.
    Polled(RepoId),
    Moved(RepoId, String),
    Visibility(RepoId, bool),
    Recheck(Vec<RepoId>),
    Untracked,
    Ignored,
}

impl Plan {
    pub(super) fn outcome(&self) -> &'static str {
        match self {
            Plan::Ping(_) => "ping",
            Plan::Fetch(_) => "fetch",
            Plan::NotServed(_) => "not_served",
            Plan::Frozen(_) => "frozen",
            Plan::Polled(_) => "polled",
            Plan::Moved(..) => "moved",
            Plan::Visibility(..) => "visibility",
            Plan::Recheck(_) => "access",
            Plan::Untracked => "untracked",
            Plan::Ignored => "ignored",
        }
    }

    pub(super) fn repo(&self) -> Option<&RepoId> {
        match self {
            Plan::Ping(r) => r.as_ref(),
            Plan::Fetch(r)
            | Plan::NotServed(r)
            | Plan::Frozen(r)
            | Plan::Polled(r)
            | Plan::Moved(r, _)
            | Plan::Visibility(r, _) => Some(r),
            Plan::Recheck(rs) if rs.len() == 1 => rs.first(),
            _ => None,
        }
    }
}

/// Whether repository `id` has a clone to fetch into.
pub(super) async fn plan_fetch(hosted: &Arc<Hosted>, id: RepoId) -> Result<Plan, ApiError> {
    let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
    let (row, frozen) = blocking(move || Ok((store.repo(&rid)?, store.is_frozen(&rid)?))).await?;
    Ok(match row.map(|r| r.state) {
        Some(_) if frozen => Plan::Frozen(id),
        Some(s)
            if (s == "ready" || s == "fetching")
                && hosted.stripe.is_some()
                && !hosted.paid.contains(&id) =>
        {
            Plan::Polled(id)
        }
        Some(s) if s == "ready" || s == "fetching" => Plan::Fetch(id),
        Some(_) => Plan::NotServed(id),
        None => Plan::Untracked,
    })
}

/// Turns what the delivery asks for into what it will do. `bound`: the repository the hook
/// belongs to (a per-repository hook), which wins over what the body names; without one, the
/// body may name repositories on `hosts` only.
pub(super) async fn plan(
    hosted: &Arc<Hosted>,
    action: Action,
    bound: Option<RepoId>,
    hosts: &Hosts,
) -> Result<Plan, ApiError> {
    let find = |urls: Vec<String>| {
        let bound = bound.clone();
        async move {
            match bound {
                Some(id) => {
                    let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
                    Ok(blocking(move || store.repo(&rid)).await?.map(|_| id))
                }
                None => find_repo(hosted, &urls, hosts).await,
            }
        }
    };
    Ok(match action {
        Action::Ping { urls } => Plan::Ping(if urls.is_empty() && bound.is_none() {
            None
        } else {
            find(urls).await?
        }),
        Action::Fetch { urls } => match find(urls).await? {
            Some(id) => plan_fetch(hosted, id).await?,
            None => Plan::Untracked,
        },
        Action::Moved { old_urls, new_urls } => {
            let Some(new) = new_urls
                .iter()
                .find_map(|u| crate::remote::RemoteUrl::parse(u, &hosted.policy).ok())
            else {
                return Ok(Plan::Ignored);
            };
            let mut urls = old_urls;
            urls.extend(new_urls);
            match find(urls).await? {
                Some(id) => Plan::Moved(id, new.canonical),
                None => Plan::Untracked,
            }
        }
        Action::Visibility { urls, private } => match find(urls).await? {
            Some(id) => Plan::Visibility(id, private),
            None => Plan::Untracked,
        },
        // A repository's own hook speaks for that repository only (asking again who may read
        // it is harmless).
        Action::Recheck { .. } if bound.is_some() => {
            Plan::Recheck(bound.clone().into_iter().collect())
        }
        Action::Recheck { repos } => {
            let mut found = Vec::new();
            for urls in repos {
                if let Some(id) = find_repo(hosted, &urls, hosts).await? {
                    found.push(id);
                }
            }
            if found.is_empty() {
                Plan::Untracked
            } else {
                Plan::Recheck(found)
            }
        }
        Action::Ignored => Plan::Ignored,
    })
}

/// Does what was planned (after the delivery was recorded as new). Nothing here waits for a
/// fetch or for GitHub.
pub(super) async fn carry_out(
    hosted: &Arc<Hosted>,
    hooks: &Webhooks,
    plan: Plan,
) -> Result<(), ApiError> {
    if let Some(id) = plan.repo() {
        hooks.clock.heard(id);
    }
    match plan {
        // Through the shared job table: the repository's owner runs it (this node, on a
        // single node), and pushes coalesce there.
        Plan::Fetch(id) => hosted.queue_job(&id, "fetch", FETCH_PRIORITY).await?,
        Plan::Moved(id, url) => hints::moved(hosted, id, url).await?,
        Plan::Visibility(id, private) => hints::visibility(hosted, id, private).await?,
        Plan::Recheck(ids) => {
            for id in ids {
                let (store, rid) = (hosted.store.clone(), id.as_str().to_string());
                blocking(move || store.expire_access(&rid)).await?;
                access_changed(hosted, &id).await;
            }
        }
        Plan::Ping(_)
        | Plan::NotServed(_)
        | Plan::Frozen(_)
        | Plan::Polled(_)
        | Plan::Untracked
        | Plan::Ignored => {}
    }
    Ok(())
}
