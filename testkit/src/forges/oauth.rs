//! The fake GitLab's and Bitbucket's OAuth: the authorize page and the token endpoint.

use super::*;

pub(super) async fn authorize(
    state: Shared,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    if q.get("client_id") != Some(&s.client_id)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return HttpResponse::BadRequest().body("unknown client_id or response_type");
    }
    let redirect = if s.gitlab {
        match q.get("redirect_uri") {
            Some(r) => r.clone(),
            None => return HttpResponse::BadRequest().body("redirect_uri is required"),
        }
    } else {
        s.callback.clone()
    };
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (Some(c), Some(m)) if m == "S256" && s.gitlab => Some(c.clone()),
        (Some(_), _) => return HttpResponse::BadRequest().body("unexpected code_challenge"),
        (None, _) => None,
    };
    let Some(login) = s.signing_in.clone() else {
        return HttpResponse::Ok().body("nobody is signing in");
    };
    let scopes = if s.gitlab {
        q.get("scope").cloned().unwrap_or_default()
    } else {
        s.consumer_scopes.clone()
    };
    let code = fresh(&mut s, "code-");
    s.codes
        .insert(code.clone(), (login, scopes, challenge, false));
    let mut target = url_with(&redirect, "code", &code);
    if let Some(st) = q.get("state") {
        target = url_with(&target, "state", st);
    }
    HttpResponse::Found()
        .insert_header(("Location", target))
        .finish()
}

pub(super) fn url_with(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let value = crate::github::url_encode(value);
    format!("{url}{sep}{key}={value}")
}

pub(super) fn oauth_error(status: u16, error: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .json(json!({"error": error, "error_description": format!("fake: {error}")}))
}

pub(super) fn basic(req: &HttpRequest) -> Option<(String, String)> {
    let h = req.headers().get("Authorization")?.to_str().ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.strip_prefix("Basic ")?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub(super) async fn token(state: Shared, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = match web::Form::<HashMap<String, String>>::from_request(
        &req,
        &mut actix_web::dev::Payload::from(body),
    )
    .await
    {
        Ok(f) => f.into_inner(),
        Err(_) => return oauth_error(400, "invalid_request"),
    };
    let mut s = lock(&state);
    note(&mut s, &req);
    let client = if s.gitlab {
        form.get("client_id")
            .cloned()
            .zip(form.get("client_secret").cloned())
    } else {
        basic(&req)
    };
    if client != Some((s.client_id.clone(), s.client_secret.clone())) {
        return oauth_error(401, "invalid_client");
    }
    let (login, scopes) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some((login, scopes, challenge, used)) =
                form.get("code").and_then(|c| s.codes.get_mut(c))
            else {
                return oauth_error(400, "invalid_grant");
            };
            if *used {
                return oauth_error(400, "invalid_grant");
            }
            *used = true;
            if let Some(c) = challenge
                && form
                    .get("code_verifier")
                    .map(|v| crate::github::s256(v))
                    .as_ref()
                    != Some(c)
            {
                return oauth_error(400, "invalid_grant");
            }
            (login.clone(), scopes.clone())
        }
        Some("refresh_token") => {
            let Some((login, scopes, used)) =
                form.get("refresh_token").and_then(|r| s.refresh.get_mut(r))
            else {
                return oauth_error(400, "invalid_grant");
            };
            if *used {
                return oauth_error(400, "invalid_grant");
            }
            *used = true;
            (login.clone(), scopes.clone())
        }
        _ => return oauth_error(400, "unsupported_grant_type"),
    };
    let (a, r) = if s.gitlab {
        ("glo-", "glr-")
    } else {
        ("bbat-", "bbrt-")
    };
    let access = fresh(&mut s, a);
    let refresh = fresh(&mut s, r);
    let ttl = s.token_ttl;
    s.tokens.insert(
        access.clone(),
        Token {
            login: login.clone(),
            scopes: scopes.clone(),
            expires_at: now() + ttl,
            live: true,
        },
    );
    s.refresh
        .insert(refresh.clone(), (login, scopes.clone(), false));
    let mut answer = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
    });
    if s.gitlab {
        answer["scope"] = json!(scopes);
        answer["created_at"] = json!(now());
    } else {
        answer["scopes"] = json!(scopes);
    }
    HttpResponse::Ok().json(answer)
}
