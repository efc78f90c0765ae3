//! Team invitations over HTTP (with sign-in on; 404 otherwise): `POST /api/teams/{id}/invites`
//! (owner: a signed, expiring, single-use link, optionally for one forge login),
//! `GET|POST /api/teams/join/{token}` (see, accept), `POST /api/teams/invites/{id}/accept` (an
//! invitation to your forge login). A join counts the team's seats in its own transaction.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::account::accounts;
use super::teams::{
    FREE_SEATS, INVITE_SECS, TeamMember, TeamOwner, forge_accounts, signed_in, team_plan,
};
use gitvista_accounts::accounts::{Accounts, Viewer, random_id};
use gitvista_accounts::audit::audit;
use gitvista_accounts::jwt;
use gitvista_errors::{ApiError, blocking};
use gitvista_store::now;
use gitvista_store::teams::{Invite, InviteRefused};

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
    TeamOwner(TeamMember {
        accounts,
        viewer: v,
        team,
        ..
    }): TeamOwner,
    body: web::Json<NewInvite>,
) -> Result<HttpResponse, ApiError> {
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
    h: &Arc<gitvista_hosting::hosted::Hosted>,
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
