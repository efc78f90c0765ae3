//! Teams over HTTP (with sign-in on; 404 otherwise). Every route about one team starts from
//! the [`TeamMember`] or [`TeamOwner`] extractor: a user who is not a member of the team it
//! names is answered as for an unknown team (404), and owner-only routes answer members 403.
//!
//! - `POST /api/teams` (create; the creator owns it), `GET /api/teams` (yours, and invitations
//!   addressed to your forge accounts), `GET /api/teams/{id}` (members, plan, the repositories
//!   on its list that you can read);
//! - invitations and joining: [`super::team_invites`];
//! - `DELETE /api/teams/{id}/members/{user}` (owner removes; anyone leaves),
//!   `POST /api/teams/{id}/transfer` (owner hands ownership to a member);
//! - `POST /api/teams/{id}/repos` and `DELETE /api/teams/{id}/repos/{repo}` (the shared list),
//!   `POST /api/teams/{id}/repos/{repo}/keep` (owner: keep one frozen over the plan);
//! - `POST /api/teams/{id}/billing/checkout` (owner: seats through Stripe);
//! - `GET /api/teams/{id}/audit` (owner), `GET /api/admin/audit` (admin).

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, post, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::account::{accounts, viewer};
use gitvista_accounts::accounts::{Access, Accounts, Viewer, random_id};
use gitvista_accounts::audit::audit;
use gitvista_errors::{ApiError, blocking};
use gitvista_store::teams::Team;

/// How long an invitation link works (7 days).
pub(super) const INVITE_SECS: i64 = 7 * 86_400;
/// Members of a team on the free plan.
pub(super) const FREE_SEATS: i64 = 3;

pub(super) fn signed_in(req: &HttpRequest) -> Result<Viewer, ApiError> {
    viewer(req).ok_or_else(|| ApiError::status(401, "sign in first", "sign_in_required"))
}

pub(super) fn no_team() -> ApiError {
    ApiError::NotFound("no such team".into())
}

pub(super) fn owners_only() -> ApiError {
    ApiError::status(403, "only the team's owner may do this", "not_team_owner")
}

/// The signed-in caller as a member of the team the path's `{id}` names: how every route about
/// one team starts. 401 `sign_in_required` when not signed in, 404 for anyone not a member
/// (exactly as for an unknown team), 404 with sign-in off.
pub(super) struct TeamMember {
    pub accounts: Arc<Accounts>,
    pub viewer: Viewer,
    pub team: Team,
    /// `owner` or `member`.
    pub role: String,
}

impl TeamMember {
    pub fn owns(&self) -> bool {
        self.role == "owner"
    }
}

impl FromRequest for TeamMember {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<TeamMember, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { TeamMember::of(&req).await })
    }
}

impl TeamMember {
    /// The caller of `req` as a member of the team its path names.
    pub async fn of(req: &HttpRequest) -> Result<TeamMember, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or(ApiError::NoRoute)?;
        let accounts = accounts(state)?;
        let viewer = signed_in(req)?;
        let (store, tid, uid) = (
            accounts.store.clone(),
            req.match_info().get("id").unwrap_or_default().to_string(),
            viewer.user.id.clone(),
        );
        let found = blocking(move || Ok((store.team(&tid)?, store.role_in(&tid, &uid)?))).await?;
        let (Some(team), Some(role)) = found else {
            return Err(no_team());
        };
        Ok(TeamMember {
            accounts,
            viewer,
            team,
            role,
        })
    }
}

/// [`TeamMember`] who owns the team: owner-only routes start here (403 `not_team_owner` for
/// the other members).
pub(super) struct TeamOwner(pub TeamMember);

impl FromRequest for TeamOwner {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<TeamOwner, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { TeamOwner::of(&req).await })
    }
}

impl TeamOwner {
    /// The caller of `req` as the owner of the team its path names (for a route that answers
    /// something else first, such as a feature that is off).
    pub async fn of(req: &HttpRequest) -> Result<TeamOwner, ApiError> {
        let member = TeamMember::of(req).await?;
        if !member.owns() {
            return Err(owners_only());
        }
        Ok(TeamOwner(member))
    }
}

impl std::ops::Deref for TeamOwner {
    type Target = TeamMember;
    fn deref(&self) -> &TeamMember {
        &self.0
    }
}

/// A team's plan, limits and usage.
pub(super) async fn team_plan(
    accounts: &Accounts,
    team: &Team,
) -> Result<serde_json::Value, ApiError> {
    let (state, _) = accounts
        .owner_plan(&format!("team:{}", team.id), &team.plan)
        .await?;
    // Seats are what the paying subscription (to the configured price only) holds; an admin's
    // grant of the paid plan without a subscription keeps the free seats.
    let seats = if state.subscribed {
        state.quantity.max(1)
    } else {
        FREE_SEATS
    };
    Ok(json!({
        "plan": state.plan,
        "seats": seats,
        "repoLimit": accounts.plans.limit(state.plan),
        "billing": state,
    }))
}

/// Body of `POST /api/teams`.
#[derive(Debug, Deserialize)]
pub struct NewTeam {
    name: String,
}

/// Creates a team owned by the caller.
#[post("/api/teams")]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewTeam>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = signed_in(&req)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a team's name is 1 to 80 characters, without control characters",
            "invalid_name",
        ));
    }
    let (store, id, uid, n) = (
        accounts.store.clone(),
        random_id::<12>()?,
        v.user.id.clone(),
        name.clone(),
    );
    let team = blocking(move || store.create_team(&id, &n, &uid)).await?;
    audit(
        &accounts.store,
        format!("user:{}", v.user.id),
        Some(team.id.clone()),
        "team.created",
        None,
        Some(name),
    )
    .await;
    Ok(HttpResponse::Created().json(json!({"team": team, "role": "owner"})))
}

/// The caller's forge accounts as (forge, login).
pub(super) async fn forge_accounts(
    accounts: &Accounts,
    user: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    Ok(accounts
        .connections(user)
        .await?
        .into_iter()
        .map(|c| (c.provider, c.login))
        .collect())
}

/// The caller's teams, and invitations addressed to their forge accounts.
#[get("/api/teams")]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = signed_in(&req)?;
    let mine = forge_accounts(&accounts, &v.user.id).await?;
    let (store, uid) = (accounts.store.clone(), v.user.id.clone());
    let (teams, invites) = blocking(move || {
        let teams = store.teams_of(&uid)?;
        let invites = store
            .invites_for(&mine)?
            .into_iter()
            .filter_map(|i| store.team(&i.team_id).ok().flatten().map(|t| (i, t)))
            .collect::<Vec<_>>();
        Ok((teams, invites))
    })
    .await?;
    let teams: Vec<_> = teams
        .into_iter()
        .map(|(t, role)| json!({"team": t, "role": role}))
        .collect();
    let invites: Vec<_> = invites
        .into_iter()
        .map(|(i, t)| json!({"id": i.id, "team": t.name, "teamId": t.id, "role": i.role, "expiresAt": i.expires_at}))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"teams": teams, "invites": invites})))
}

/// A team: members, plan, and the repositories on its list the caller can read (a private one
/// only when their own forge account can; the others are counted, not named).
#[get("/api/teams/{id}")]
pub async fn show(
    TeamMember {
        accounts,
        viewer: v,
        team,
        role,
    }: TeamMember,
) -> Result<HttpResponse, ApiError> {
    let (store, tid) = (accounts.store.clone(), team.id.clone());
    let (members, repos) =
        blocking(move || Ok((store.members(&tid)?, store.team_repos(&tid)?))).await?;
    let mut shown = Vec::new();
    let mut hidden = 0;
    for (repo, added_by, frozen) in &repos {
        if accounts.may_read(repo, Some(&v)).await == Access::Granted {
            let mut j = gitvista_hosting::hosted::status::repo_json(repo);
            j["addedBy"] = json!(added_by);
            j["frozen"] = json!(frozen);
            shown.push(j);
        } else {
            hidden += 1;
        }
    }
    let members: Vec<_> = members
        .iter()
        .map(|(u, r)| json!({"id": u.id, "login": u.login, "name": u.display_name, "role": r}))
        .collect();
    let plan = team_plan(&accounts, &team).await?;
    // After a downgrade a team may have more members than seats: nobody joins until it has
    // room again, and the dashboard says so.
    let over_seats = plan["seats"]
        .as_i64()
        .is_some_and(|seats| i64::try_from(members.len()).unwrap_or(i64::MAX) > seats);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "team": team,
            "role": role,
            "members": members,
            "repos": shown,
            "hiddenRepos": hidden,
            "usage": {"repos": repos.len()},
            "overSeats": over_seats,
            "plan": plan,
        })))
}

/// Removes a member (the owner), or leaves (anyone but the owner: ownership is transferred
/// first). What the team let them read goes with it.
#[delete("/api/teams/{id}/members/{user}")]
pub async fn remove_member(
    member: TeamMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, target) = path.into_inner();
    let leaving = target == member.viewer.user.id;
    if !leaving && !member.owns() {
        return Err(owners_only());
    }
    let TeamMember {
        accounts,
        viewer: v,
        team,
        ..
    } = member;
    let tid = team.id.clone();
    let (store, t, u) = (accounts.store.clone(), tid.clone(), target.clone());
    let target_role = blocking(move || store.role_in(&t, &u)).await?;
    match target_role.as_deref() {
        None => return Err(ApiError::NotFound("no such member".into())),
        Some("owner") => {
            return Err(ApiError::status(
                409,
                "the owner cannot leave: transfer ownership to another member first",
                "owner_cannot_leave",
            ));
        }
        Some(_) => {}
    }
    let (store, t, u) = (accounts.store.clone(), tid.clone(), target.clone());
    blocking(move || {
        let ids: Vec<String> = store
            .team_repos(&t)?
            .into_iter()
            .map(|(r, _, _)| r.id)
            .collect();
        store.remove_member(&t, &u)?;
        store.revoke_team_access(&u, &ids)
    })
    .await?;
    accounts.forget_user(&target);
    audit(
        &accounts.store,
        format!("user:{}", v.user.id),
        Some(team.id.clone()),
        if leaving {
            "member.left"
        } else {
            "member.removed"
        },
        Some(format!("user:{target}")),
        None,
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/teams/{id}/transfer`.
#[derive(Debug, Deserialize)]
pub struct Transfer {
    /// The member who becomes the owner.
    user: String,
}

/// Hands ownership to another member (owner); the previous owner stays as a member.
#[post("/api/teams/{id}/transfer")]
pub async fn transfer(
    TeamOwner(TeamMember {
        accounts,
        viewer: v,
        team,
        ..
    }): TeamOwner,
    body: web::Json<Transfer>,
) -> Result<HttpResponse, ApiError> {
    if body.user == v.user.id {
        return Err(ApiError::bad_request(
            "you own it already",
            "invalid_transfer",
        ));
    }
    let (store, t, from, to) = (
        accounts.store.clone(),
        team.id.clone(),
        v.user.id.clone(),
        body.user.clone(),
    );
    if !blocking(move || store.transfer_team(&t, &from, &to)).await? {
        return Err(ApiError::NotFound("no such member".into()));
    }
    audit(
        &accounts.store,
        format!("user:{}", v.user.id),
        Some(team.id.clone()),
        "owner.transferred",
        Some(format!("user:{}", body.user)),
        None,
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({"owner": body.user})))
}

/// Body of `POST /api/teams/{id}/repos`.
#[derive(Debug, Deserialize)]
pub struct AddRepo {
    /// A repository the caller can read (one they track, or a public one).
    id: String,
}

/// Adds a repository to the team's list (any member who can read it; within the team's plan).
#[post("/api/teams/{id}/repos")]
pub async fn add_repo(
    TeamMember {
        accounts,
        viewer: v,
        team,
        ..
    }: TeamMember,
    state: web::Data<AppState>,
    body: web::Json<AddRepo>,
) -> Result<HttpResponse, ApiError> {
    let (store, rid) = (accounts.store.clone(), body.id.clone());
    let repo = blocking(move || store.repo(&rid))
        .await?
        .ok_or_else(|| ApiError::UnknownRepo(body.id.clone()))?;
    if accounts.may_read(&repo, Some(&v)).await != Access::Granted {
        return Err(ApiError::UnknownRepo(body.id.clone()));
    }
    let limit = team_plan(&accounts, &team).await?["repoLimit"]
        .as_i64()
        .unwrap_or(0);
    let (store, tid, rid, uid) = (
        accounts.store.clone(),
        team.id.clone(),
        repo.id.clone(),
        v.user.id.clone(),
    );
    // Counted in the insert's own transaction: adds at once cannot pass the plan together.
    let Some(added) = blocking(move || store.add_team_repo(&tid, &rid, &uid, limit)).await? else {
        return Err(ApiError::status(
            403,
            format!("the team's plan lists at most {limit} repositories"),
            "quota_exceeded",
        ));
    };
    if added {
        if let Some(h) = &state.hosted {
            h.sync_paid().await;
        }
        audit(
            &accounts.store,
            format!("user:{}", v.user.id),
            Some(team.id.clone()),
            "repo.added",
            Some(repo.id.clone()),
            Some(repo.display_url.clone()),
        )
        .await;
    }
    Ok(if added {
        HttpResponse::Created().json(gitvista_hosting::hosted::status::repo_json(&repo))
    } else {
        HttpResponse::Ok().json(gitvista_hosting::hosted::status::repo_json(&repo))
    })
}

/// Keeps a repository frozen on the team's list over its plan (the owner): it is kept fresh on
/// the team's account again, and the least recently viewed of the others is frozen in its
/// place when the plan is full.
#[post("/api/teams/{id}/repos/{repo}/keep")]
pub async fn keep_repo(
    owner: TeamOwner,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, rid) = path.into_inner();
    let (accounts, team) = (&owner.accounts, &owner.team);
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let (store, t) = (accounts.store.clone(), team.id.clone());
    let listed = blocking(move || store.team_repos(&t)).await?;
    if !listed.iter().any(|(r, _, _)| r.id == rid) {
        return Err(ApiError::status(
            404,
            "the team does not list this repository",
            "not_listed",
        ));
    }
    let (frozen, thawed) = h.enforce_team_quota(&team.id, Some(&rid)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"frozen": frozen, "thawed": thawed})))
}

/// Removes a repository from the team's list (the owner, or the member who added it).
#[delete("/api/teams/{id}/repos/{repo}")]
pub async fn remove_repo(
    TeamMember {
        accounts,
        viewer: v,
        team,
        role,
    }: TeamMember,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, rid) = path.into_inner();
    let (store, t) = (accounts.store.clone(), team.id.clone());
    let listed = blocking(move || store.team_repos(&t)).await?;
    let Some((repo, added_by, _)) = listed.iter().find(|(r, _, _)| r.id == rid) else {
        return Err(ApiError::UnknownRepo(rid));
    };
    if role != "owner" && added_by.as_deref() != Some(v.user.id.as_str()) {
        return Err(owners_only());
    }
    let (store, t, r) = (accounts.store.clone(), team.id.clone(), rid.clone());
    blocking(move || {
        store.remove_team_repo(&t, &r)?;
        for (u, _) in store.members(&t)? {
            store.revoke_team_access(&u.id, std::slice::from_ref(&r))?;
        }
        Ok(())
    })
    .await?;
    audit(
        &accounts.store,
        format!("user:{}", v.user.id),
        Some(team.id.clone()),
        "repo.removed",
        Some(rid.clone()),
        Some(repo.display_url.clone()),
    )
    .await;
    // Room on a list over its plan: the next frozen one thaws.
    if let Some(h) = &state.hosted {
        h.enforce_team_quota(&team.id, None).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/teams/{id}/billing/checkout`.
#[derive(Debug, Deserialize)]
pub struct Seats {
    seats: u32,
}

/// Seats for the team through Stripe Checkout (owner); answers `{"url": ...}`.
#[post("/api/teams/{id}/billing/checkout")]
pub async fn checkout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Seats>,
) -> Result<HttpResponse, ApiError> {
    // Billing off is no route, for owners too.
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let stripe = h.stripe.clone().ok_or(ApiError::NoRoute)?;
    let TeamMember { accounts, team, .. } = TeamOwner::of(&req).await?.0;
    if !(1..=1000).contains(&body.seats) {
        return Err(ApiError::bad_request(
            "seats are 1 to 1000",
            "invalid_seats",
        ));
    }
    let plan = team_plan(&accounts, &team).await?;
    if plan["billing"]["subscribed"] == true {
        return Err(ApiError::status(
            409,
            "a subscription already pays for this team",
            "already_subscribed",
        ));
    }
    // The team's customer from a subscription to the configured price only.
    let customer = accounts
        .owner_plan(&format!("team:{}", team.id), &team.plan)
        .await?
        .0
        .customer;
    let base = &accounts.auth.public_url;
    let url = stripe
        .checkout(
            &format!("team:{}", team.id),
            customer.as_deref(),
            body.seats,
            &format!("{base}/dashboard?team={}&billing=success", team.id),
            &format!("{base}/dashboard?team={}&billing=cancelled", team.id),
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "a Stripe call failed");
            ApiError::status(
                502,
                "Stripe could not be reached; try again in a minute",
                "billing_unavailable",
            )
        })?;
    Ok(HttpResponse::Ok().json(json!({ "url": url })))
}

/// Query of the audit routes.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
}

/// The team's audit log (owner).
#[get("/api/teams/{id}/audit")]
pub async fn team_audit(
    owner: TeamOwner,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let (accounts, team) = (&owner.accounts, &owner.team);
    let (store, t, limit) = (
        accounts.store.clone(),
        team.id.clone(),
        query.limit.unwrap_or(100),
    );
    let events = blocking(move || store.audit_events(Some(&t), limit)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "events": events })))
}

/// Every audit event (admins).
#[get("/api/admin/audit")]
pub async fn admin_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    super::admin::authorize(&req, &state).await?;
    let accounts = accounts(&state)?;
    let (store, limit) = (accounts.store.clone(), query.limit.unwrap_or(200));
    let events = blocking(move || store.audit_events(None, limit)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "events": events })))
}
