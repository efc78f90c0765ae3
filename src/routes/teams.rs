//! Teams over HTTP (with sign-in on; 404 otherwise). Every route answers a user who is not a
//! member of the team it names as it answers an unknown team (404), and owner-only routes
//! answer members 403.
//!
//! - `POST /api/teams` (create; the creator owns it), `GET /api/teams` (yours, and invitations
//!   addressed to your forge accounts), `GET /api/teams/{id}` (members, plan, the repositories
//!   on its list that you can read);
//! - `POST /api/teams/{id}/invites` (owner: a signed, expiring, single-use link, optionally for
//!   one forge login), `GET|POST /api/teams/join/{token}` (see, accept),
//!   `POST /api/teams/invites/{id}/accept` (an invitation to your forge login);
//! - `DELETE /api/teams/{id}/members/{user}` (owner removes; anyone leaves),
//!   `POST /api/teams/{id}/transfer` (owner hands ownership to a member);
//! - `POST /api/teams/{id}/repos` and `DELETE /api/teams/{id}/repos/{repo}` (the shared list);
//! - `POST /api/teams/{id}/billing/checkout` (owner: seats through Stripe);
//! - `GET /api/teams/{id}/audit` (owner), `GET /api/admin/audit` (admin).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::account::{accounts, viewer};
use crate::auth::accounts::{Access, Accounts, Viewer, random_id};
use crate::auth::jwt;
use crate::error::{ApiError, blocking};
use crate::store::teams::{Invite, InviteRefused, Team};
use crate::store::{Store, now};

/// How long an invitation link works (7 days).
const INVITE_SECS: i64 = 7 * 86_400;
/// Members of a team on the free plan.
const FREE_SEATS: i64 = 3;

fn signed_in(req: &HttpRequest) -> Result<Viewer, ApiError> {
    viewer(req).ok_or_else(|| ApiError::status(401, "sign in first", "sign_in_required"))
}

fn no_team() -> ApiError {
    ApiError::NotFound("no such team".into())
}

fn owners_only() -> ApiError {
    ApiError::status(403, "only the team's owner may do this", "not_team_owner")
}

/// Writes an audit event (failures are logged: the action itself is done).
pub async fn audit(
    store: &Store,
    actor: String,
    team: Option<String>,
    action: &'static str,
    target: Option<String>,
    detail: Option<String>,
) {
    let (store, id) = (store.clone(), random_id::<12>().unwrap_or_default());
    let done = blocking(move || {
        store.audit(
            &id,
            &actor,
            team.as_deref(),
            action,
            target.as_deref(),
            detail.as_deref(),
        )
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, action, "an audit event could not be written");
    }
}

/// The team `id` and the caller's role in it; 404 for anyone not a member.
async fn membership(accounts: &Accounts, id: &str, user: &str) -> Result<(Team, String), ApiError> {
    let (store, tid, uid) = (accounts.store.clone(), id.to_string(), user.to_string());
    let found = blocking(move || Ok((store.team(&tid)?, store.role_in(&tid, &uid)?))).await?;
    match found {
        (Some(team), Some(role)) => Ok((team, role)),
        _ => Err(no_team()),
    }
}

/// The caller, their accounts and team `id`, when they own it (404 for non-members, 403 for
/// members).
async fn as_owner(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
) -> Result<(Arc<Accounts>, Viewer, Team), ApiError> {
    let accounts = accounts(state)?;
    let v = signed_in(req)?;
    let (team, role) = membership(&accounts, id, &v.user.id).await?;
    if role != "owner" {
        return Err(owners_only());
    }
    Ok((accounts, v, team))
}

/// A team's plan, limits and usage.
async fn team_plan(accounts: &Accounts, team: &Team) -> Result<serde_json::Value, ApiError> {
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
async fn forge_accounts(
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = signed_in(&req)?;
    let (team, role) = membership(&accounts, &id, &v.user.id).await?;
    let (store, tid) = (accounts.store.clone(), team.id.clone());
    let (members, repos, frozen) = blocking(move || {
        let frozen: std::collections::HashSet<String> = store
            .team_list_with_frozen(&tid)?
            .into_iter()
            .filter_map(|(r, f)| f.then_some(r.id))
            .collect();
        Ok((store.members(&tid)?, store.team_repos(&tid)?, frozen))
    })
    .await?;
    let mut shown = Vec::new();
    let mut hidden = 0;
    for (repo, added_by) in &repos {
        if accounts.may_read(repo, Some(&v)).await == Access::Granted {
            let mut j = super::hosted::repo_json(repo);
            j["addedBy"] = json!(added_by);
            j["frozen"] = json!(frozen.contains(&repo.id));
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

/// Body of `POST /api/teams/{id}/invites`.
#[derive(Debug, Deserialize)]
pub struct NewInvite {
    /// `forge:login` (`gitlab:carol`): only that forge account may accept. Without it, anyone
    /// signed in who has the link.
    login: Option<String>,
}

/// What an invitation link carries, signed.
#[derive(Debug, Serialize, Deserialize)]
struct InviteToken {
    id: String,
    exp: i64,
}

/// Creates an invitation (owner): a link that works once within seven days.
#[post("/api/teams/{id}/invites")]
pub async fn create_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<NewInvite>,
) -> Result<HttpResponse, ApiError> {
    let (accounts, v, team) = as_owner(&state, &req, &id).await?;
    let (provider, login) = match body
        .login
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        None => (None, None),
        Some(spec) => {
            let (p, l) = spec.split_once(':').ok_or_else(|| {
                ApiError::bad_request(
                    "name the account as forge:login (gitlab:carol)",
                    "invalid_login",
                )
            })?;
            if accounts.provider(p).is_none()
                || l.is_empty()
                || l.len() > 100
                || !l
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(ApiError::bad_request(
                    "name a configured forge and a plain login (gitlab:carol)",
                    "invalid_login",
                ));
            }
            (Some(p.to_string()), Some(l.to_string()))
        }
    };
    let at = now();
    let invite = Invite {
        id: random_id::<24>()?,
        team_id: team.id.clone(),
        created_by: v.user.id.clone(),
        role: "member".into(),
        provider,
        login,
        expires_at: at + INVITE_SECS,
        used_at: None,
        used_by: None,
        created_at: at,
    };
    let (store, i) = (accounts.store.clone(), invite.clone());
    blocking(move || store.create_invite(&i)).await?;
    let token = jwt::seal(
        &accounts.auth.jwt,
        "team-invite",
        &InviteToken {
            id: invite.id.clone(),
            exp: invite.expires_at,
        },
    );
    let target = match (&invite.provider, &invite.login) {
        (Some(p), Some(l)) => Some(format!("{p}:{l}")),
        _ => None,
    };
    audit(
        &accounts.store,
        format!("user:{}", v.user.id),
        Some(team.id.clone()),
        "member.invited",
        target.clone(),
        None,
    )
    .await;
    Ok(HttpResponse::Created().json(json!({
        "id": invite.id,
        "url": format!("{}/dashboard?join={token}", accounts.auth.public_url),
        "token": token,
        "for": target,
        "expiresAt": invite.expires_at,
    })))
}

/// The invitation a link's token names, if the signature holds.
fn invite_id(accounts: &Accounts, token: &str) -> Result<String, ApiError> {
    let t: InviteToken = jwt::open(&accounts.auth.jwt, "team-invite", token).ok_or_else(|| {
        ApiError::status(404, "this invitation link is not valid", "invite_unknown")
    })?;
    if t.exp <= now() {
        return Err(refused(InviteRefused::Expired));
    }
    Ok(t.id)
}

fn refused(why: InviteRefused) -> ApiError {
    match why {
        InviteRefused::Unknown => {
            ApiError::status(404, "this invitation is not valid", "invite_unknown")
        }
        InviteRefused::Expired => ApiError::status(
            410,
            "this invitation has expired; ask the team's owner for a new one",
            "invite_expired",
        ),
        InviteRefused::Used => ApiError::status(
            410,
            "this invitation was used already; ask the team's owner for a new one",
            "invite_used",
        ),
        InviteRefused::NotForYou => ApiError::status(
            403,
            "this invitation is for another account: sign in with the forge account it names, or connect it",
            "invite_not_for_you",
        ),
        InviteRefused::Full(seats) => team_full(seats),
    }
}

/// What an invitation link offers: the team's name and whether it is still good.
#[get("/api/teams/join/{token}")]
pub async fn preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let _ = signed_in(&req)?;
    let id = invite_id(&accounts, &token)?;
    let (store, iid) = (accounts.store.clone(), id.clone());
    let found = blocking(move || {
        let Some(i) = store.invite(&iid)? else {
            return Ok(None);
        };
        Ok(store.team(&i.team_id)?.map(|t| (i, t)))
    })
    .await?;
    let (inv, team) = found.ok_or_else(|| refused(InviteRefused::Unknown))?;
    if inv.used_at.is_some() {
        return Err(refused(InviteRefused::Used));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "team": team.name,
            "teamId": team.id,
            "role": inv.role,
            "for": inv.provider.zip(inv.login).map(|(p, l)| format!("{p}:{l}")),
            "expiresAt": inv.expires_at,
        })))
}

/// 409 `team_full`.
fn team_full(seats: i64) -> ApiError {
    ApiError::status(
        409,
        format!("the team has all its {seats} seats taken; its owner can buy more"),
        "team_full",
    )
}

/// Accepts invitation `id` for `v`; answers the team.
async fn accept(
    h: &Arc<crate::hosted::Hosted>,
    accounts: &Accounts,
    v: &Viewer,
    id: String,
) -> Result<HttpResponse, ApiError> {
    let mine = forge_accounts(accounts, &v.user.id).await?;
    let (store, iid, uid) = (accounts.store.clone(), id, v.user.id.clone());
    // A full team takes no one more.
    let pre = {
        let (store, iid) = (store.clone(), iid.clone());
        blocking(move || {
            let Some(i) = store.invite(&iid)? else {
                return Ok(None);
            };
            Ok(store
                .team(&i.team_id)?
                .map(|t| (t, store.members(&i.team_id).map(|m| m.len()))))
        })
        .await?
    };
    // What is wrong with the invitation itself is said first (checked again when it is used).
    if let Some((team, _)) = &pre {
        let (store, iid2) = (accounts.store.clone(), iid.clone());
        if let Some(i) = blocking(move || store.invite(&iid2)).await? {
            let wrong_user = match (&i.provider, &i.login) {
                (Some(p), Some(l)) => !mine
                    .iter()
                    .any(|(ap, al)| ap == p && al.eq_ignore_ascii_case(l)),
                _ => false,
            };
            if i.used_at.is_some() {
                return Err(refused(InviteRefused::Used));
            }
            if i.expires_at <= now() {
                return Err(refused(InviteRefused::Expired));
            }
            if wrong_user {
                return Err(refused(InviteRefused::NotForYou));
            }
        }
        let _ = team;
    }
    let mut seats = FREE_SEATS;
    if let Some((team, Ok(members))) = &pre {
        seats = team_plan(accounts, team).await?["seats"]
            .as_i64()
            .unwrap_or(FREE_SEATS);
        if i64::try_from(*members).unwrap_or(i64::MAX) >= seats {
            return Err(team_full(seats));
        }
    }
    // Counted again in the join's own transaction: joins at once cannot pass together.
    let accepted = blocking(move || store.accept_invite(&iid, &uid, &mine, seats)).await?;
    let invite = accepted.map_err(refused)?;
    audit(
        &accounts.store,
        format!("user:{}", v.user.id),
        Some(invite.team_id.clone()),
        "member.joined",
        Some(format!("user:{}", v.user.id)),
        Some(match (&invite.provider, &invite.login) {
            (Some(p), Some(l)) => format!("through an invitation for {p}:{l}"),
            _ => "through an invitation link".to_string(),
        }),
    )
    .await;
    let _ = h;
    Ok(HttpResponse::Ok().json(json!({"teamId": invite.team_id, "role": invite.role})))
}

/// Accepts the invitation a link carries.
#[post("/api/teams/join/{token}")]
pub async fn join(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let v = signed_in(&req)?;
    let id = invite_id(&accounts, &token)?;
    accept(&h, &accounts, &v, id).await
}

/// Accepts an invitation addressed to one of the caller's forge accounts.
#[post("/api/teams/invites/{id}/accept")]
pub async fn accept_addressed(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let v = signed_in(&req)?;
    let (store, iid) = (accounts.store.clone(), id.to_string());
    let addressed =
        blocking(move || Ok(store.invite(&iid)?.is_some_and(|i| i.login.is_some()))).await?;
    if !addressed {
        return Err(refused(InviteRefused::Unknown));
    }
    accept(&h, &accounts, &v, id.to_string()).await
}

/// Removes a member (the owner), or leaves (anyone but the owner: ownership is transferred
/// first). What the team let them read goes with it.
#[delete("/api/teams/{id}/members/{user}")]
pub async fn remove_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = signed_in(&req)?;
    let (tid, target) = path.into_inner();
    let (team, role) = membership(&accounts, &tid, &v.user.id).await?;
    let leaving = target == v.user.id;
    if !leaving && role != "owner" {
        return Err(owners_only());
    }
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
            .map(|(r, _)| r.id)
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Transfer>,
) -> Result<HttpResponse, ApiError> {
    let (accounts, v, team) = as_owner(&state, &req, &id).await?;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<AddRepo>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = signed_in(&req)?;
    let (team, _) = membership(&accounts, &id, &v.user.id).await?;
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
    let (store, tid) = (accounts.store.clone(), team.id.clone());
    let used = blocking(move || store.team_repos(&tid)).await?.len();
    if i64::try_from(used).unwrap_or(i64::MAX) >= limit {
        return Err(ApiError::status(
            403,
            format!("the team's plan lists at most {limit} repositories"),
            "quota_exceeded",
        ));
    }
    let (store, tid, rid, uid) = (
        accounts.store.clone(),
        team.id.clone(),
        repo.id.clone(),
        v.user.id.clone(),
    );
    let added = blocking(move || store.add_team_repo(&tid, &rid, &uid)).await?;
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
        HttpResponse::Created().json(super::hosted::repo_json(&repo))
    } else {
        HttpResponse::Ok().json(super::hosted::repo_json(&repo))
    })
}

/// Keeps a repository frozen on the team's list over its plan (the owner): it is kept fresh on
/// the team's account again, and the least recently viewed of the others is frozen in its
/// place when the plan is full.
#[post("/api/teams/{id}/repos/{repo}/keep")]
pub async fn keep_repo(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tid, rid) = path.into_inner();
    let (accounts, _, team) = as_owner(&state, &req, &tid).await?;
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let (store, t) = (accounts.store.clone(), team.id.clone());
    let listed = blocking(move || store.team_repos(&t)).await?;
    if !listed.iter().any(|(r, _)| r.id == rid) {
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
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let accounts = accounts(&state)?;
    let v = signed_in(&req)?;
    let (tid, rid) = path.into_inner();
    let (team, role) = membership(&accounts, &tid, &v.user.id).await?;
    let (store, t) = (accounts.store.clone(), team.id.clone());
    let listed = blocking(move || store.team_repos(&t)).await?;
    let Some((repo, added_by)) = listed.iter().find(|(r, _)| r.id == rid) else {
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
    id: web::Path<String>,
    body: web::Json<Seats>,
) -> Result<HttpResponse, ApiError> {
    let h = state.hosted.clone().ok_or(ApiError::NoRoute)?;
    let stripe = h.stripe.clone().ok_or(ApiError::NoRoute)?;
    let (accounts, _, team) = as_owner(&state, &req, &id).await?;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let (accounts, _, team) = as_owner(&state, &req, &id).await?;
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
