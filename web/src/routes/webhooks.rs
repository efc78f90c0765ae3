//! The webhook receivers' HTTP side: `POST /webhooks/{github,gitlab,bitbucket}` and
//! `POST /webhooks/generic/{id}` read the body within the shared budget and hand it, with the
//! request's headers, to hosting's one receiver pipeline (`gitvista_hosting::webhooks`).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt as _;
use gitvista_hosting::hosted::Hosted;
use gitvista_hosting::hosted::deliveries::Receipt;
use gitvista_hosting::webhooks::{MAX_BODY, Receiver, Webhooks, too_large};

use super::AppState;
use gitvista_errors::ApiError;

fn hosted(state: &AppState) -> Result<&Arc<Hosted>, ApiError> {
    state.hosted.as_ref().ok_or(ApiError::NoRoute)
}

/// Reads the body within [`MAX_BODY`], holding its size in the shared budget while it is read
/// and handled (the permit is dropped with the handler).
async fn read_body(
    hooks: &Webhooks,
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<(web::Bytes, tokio::sync::OwnedSemaphorePermit), ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let permit = hooks.body_permit(declared).await?;
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(MAX_BODY));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("reading the body: {e}"), "bad_body"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), permit))
}

/// The request's header `name` as bytes, if present.
fn headers(req: &HttpRequest) -> impl Fn(&str) -> Option<Vec<u8>> + '_ {
    |name| req.headers().get(name).map(|v| v.as_bytes().to_vec())
}

/// 202 for work taken on, 200 for a ping or a duplicate.
fn answer(receipt: Receipt) -> HttpResponse {
    if receipt.accepted {
        HttpResponse::Accepted().json(receipt.body)
    } else {
        HttpResponse::Ok().json(receipt.body)
    }
}

/// Query of the forges' receivers: `repo` names the repository of a hook this server
/// registered.
#[derive(Debug, serde::Deserialize)]
pub struct HookQuery {
    repo: Option<String>,
}

/// Every forge's receiver: off (404) before anything is read when its secret is not set.
async fn forge_hook(
    receiver: Receiver,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    if receiver.secret(&hosted.hooks.settings).is_none() {
        return Err(ApiError::NoRoute);
    }
    let (body, _permit) = read_body(&hosted.hooks, &req, payload).await?;
    let receipt = gitvista_hosting::hosted::deliveries::receive(
        hosted,
        receiver,
        query.repo.as_deref(),
        &headers(&req),
        &body,
    )
    .await?;
    Ok(answer(receipt))
}

/// GitHub's deliveries: a GitHub App's hook, or a hook registered for one repository.
#[post("/webhooks/github")]
pub async fn github_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    forge_hook(Receiver::GitHub, state, req, query, payload).await
}

/// GitLab's deliveries: a project hook this server registered (`?repo=ID`, whose token is that
/// repository's own) or a system or group hook set up by hand with the receiver's secret.
#[post("/webhooks/gitlab")]
pub async fn gitlab_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    forge_hook(Receiver::GitLab, state, req, query, payload).await
}

/// Bitbucket Cloud's deliveries: a repository hook this server registered (`?repo=ID`, signed
/// with that repository's own secret) or a hook set up by hand with the receiver's secret.
#[post("/webhooks/bitbucket")]
pub async fn bitbucket_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HookQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    forge_hook(Receiver::Bitbucket, state, req, query, payload).await
}

/// Any other forge's push hook for repository `id`, signed like GitHub
/// (`X-Hub-Signature-256`) or like Gitea and Forgejo (`X-Gitea-Signature`).
#[post("/webhooks/generic/{id}")]
pub async fn generic_hook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    if hosted.hooks.generic.is_none() {
        return Err(ApiError::NoRoute);
    }
    let (body, _permit) = read_body(&hosted.hooks, &req, payload).await?;
    let receipt =
        gitvista_hosting::hosted::deliveries::receive_generic(hosted, &path, &headers(&req), &body)
            .await?;
    Ok(answer(receipt))
}
