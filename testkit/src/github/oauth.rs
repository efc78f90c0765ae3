//! The fake GitHub's OAuth web flow: the authorize page and the token endpoint.

use super::*;

pub(super) async fn authorize(
    state: Shared,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(r) = enter(&state, &req).await {
        return r;
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if q.get("client_id") != Some(&s.client_id) {
        return HttpResponse::NotFound().body("unknown client_id");
    }
    let Some(redirect) = q.get("redirect_uri").cloned() else {
        return HttpResponse::BadRequest().body("redirect_uri is required");
    };
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (Some(c), Some(m)) if m == "S256" => Some(c.clone()),
        (Some(_), _) => return HttpResponse::BadRequest().body("only S256 is supported"),
        (None, _) => None,
    };
    let Some(login) = s.signing_in.clone() else {
        return HttpResponse::Ok().body("nobody is signing in");
    };
    let code = fresh(&mut s, "code");
    s.codes.insert(
        code.clone(),
        Code {
            login,
            scope: q.get("scope").cloned().unwrap_or_default(),
            redirect_uri: redirect.clone(),
            challenge,
            used: false,
        },
    );
    let mut target = format!(
        "{redirect}{}code={code}",
        if redirect.contains('?') { '&' } else { '?' }
    );
    if let Some(st) = q.get("state") {
        target.push_str("&state=");
        target.push_str(&url_encode(st));
    }
    HttpResponse::Found()
        .insert_header(("Location", target))
        .finish()
}

/// `s` percent-encoded for a query value.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn grant_error(error: &str, description: &str) -> HttpResponse {
    // GitHub answers a refused grant with 200 and an error object.
    HttpResponse::Ok().json(json!({"error": error, "error_description": description}))
}

pub(super) async fn access_token(
    state: Shared,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(r) = enter(&state, &req).await {
        return r;
    }
    // GitHub takes the parameters as a form or as JSON.
    let json = req
        .headers()
        .get("Content-Type")
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let form: HashMap<String, String> = if json {
        match serde_json::from_slice::<HashMap<String, serde_json::Value>>(&body) {
            Ok(m) => m
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect(),
            Err(_) => {
                return HttpResponse::BadRequest()
                    .json(json!({"message": "Problems parsing JSON"}));
            }
        }
    } else {
        match web::Form::<HashMap<String, String>>::from_request(
            &req,
            &mut actix_web::dev::Payload::from(body),
        )
        .await
        {
            Ok(f) => f.into_inner(),
            Err(_) => {
                return HttpResponse::BadRequest()
                    .json(json!({"message": "Problems parsing the form"}));
            }
        }
    };
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if form.get("client_id") != Some(&s.client_id)
        || form.get("client_secret") != Some(&s.client_secret)
    {
        return grant_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let mut scope = String::new();
    let login = if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        let Some(rt) = form.get("refresh_token") else {
            return grant_error(
                "bad_refresh_token",
                "The refresh token passed is incorrect or expired.",
            );
        };
        match s.refresh.get_mut(rt) {
            Some((login, used, access)) if !*used => {
                *used = true;
                let (login, access) = (login.clone(), access.clone());
                // The access token it came with stops working too.
                if let Some(t) = s.tokens.get_mut(&access) {
                    t.live = false;
                }
                login
            }
            _ => {
                return grant_error(
                    "bad_refresh_token",
                    "The refresh token passed is incorrect or expired.",
                );
            }
        }
    } else {
        let Some(code) = form.get("code").and_then(|c| s.codes.get_mut(c)) else {
            return grant_error(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        };
        if code.used {
            return grant_error(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        }
        code.used = true;
        if form
            .get("redirect_uri")
            .is_some_and(|r| *r != code.redirect_uri)
        {
            return grant_error(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        if let Some(challenge) = &code.challenge
            && form.get("code_verifier").map(|v| s256(v)).as_ref() != Some(challenge)
        {
            return grant_error(
                "bad_verification_code",
                "The code_verifier does not match the code_challenge.",
            );
        }
        scope = code.scope.clone();
        code.login.clone()
    };
    if s.oauth_app {
        let access = fresh(&mut s, "gho");
        s.tokens.insert(
            access.clone(),
            Token {
                login,
                expires_at: u64::MAX,
                live: true,
            },
        );
        return HttpResponse::Ok().json(json!({
            "access_token": access,
            "token_type": "bearer",
            "scope": scope,
        }));
    }
    let access = fresh(&mut s, "ghu");
    let refresh = fresh(&mut s, "ghr");
    let ttl = s.token_ttl;
    s.tokens.insert(
        access.clone(),
        Token {
            login: login.clone(),
            expires_at: now() + ttl,
            live: true,
        },
    );
    s.refresh
        .insert(refresh.clone(), (login, false, access.clone()));
    HttpResponse::Ok().json(json!({
        "access_token": access,
        "token_type": "bearer",
        "scope": "",
        "expires_in": ttl,
        "refresh_token": refresh,
        "refresh_token_expires_in": 15_897_600,
    }))
}
