//! The fake GitLab's project hooks and Bitbucket's repository hooks, for the repository's
//! maintainers and admins.

use super::*;

/// The repository a hook route names, if the caller administers it with the hook scope.
pub(super) fn administered(s: &State, req: &HttpRequest) -> Result<String, Box<HttpResponse>> {
    let Some((u, t)) = caller(s, req) else {
        return Err(Box::new(unauthorized(s.gitlab)));
    };
    let scope = if s.gitlab { "api" } else { "webhook" };
    let path = named(req);
    let admin = s
        .repos
        .iter()
        .any(|r| r.path == path && r.admins.contains(&u.login));
    if !has(&t, scope) || !admin {
        return Err(Box::new(
            HttpResponse::Forbidden().json(json!({"message": "403 Forbidden"})),
        ));
    }
    Ok(path)
}

pub(super) fn hook_json(gitlab: bool, h: &FakeHook) -> serde_json::Value {
    if gitlab {
        json!({"id": h.id.parse::<i64>().unwrap_or(0), "url": h.url, "push_events": true})
    } else {
        json!({"uuid": h.id, "url": h.url, "active": true, "events": ["repo:push"]})
    }
}

pub(super) async fn hooks_list(state: Shared, req: HttpRequest) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    let path = match administered(&s, &req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let list: Vec<_> = s
        .hooks
        .iter()
        .filter(|h| h.repo == path)
        .map(|h| hook_json(s.gitlab, h))
        .collect();
    if s.gitlab {
        HttpResponse::Ok().json(list)
    } else {
        HttpResponse::Ok().json(json!({"values": list}))
    }
}

pub(super) async fn hook_put(
    state: Shared,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    let path = match administered(&s, &req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let url = body["url"].as_str().unwrap_or("").to_string();
    let secret = body[if s.gitlab { "token" } else { "secret" }]
        .as_str()
        .unwrap_or("")
        .to_string();
    let id = match req.match_info().get("hook") {
        Some(id) => id.to_string(),
        None => {
            s.counter += 1;
            if s.gitlab {
                s.counter.to_string()
            } else {
                format!("{{{:08x}-0000-4000-8000-{:012x}}}", s.counter, now())
            }
        }
    };
    let hook = FakeHook {
        id: id.clone(),
        repo: path,
        url,
        secret,
    };
    let created = !s.hooks.iter().any(|h| h.id == id);
    s.hooks.retain(|h| h.id != id);
    s.hooks.push(hook.clone());
    let j = hook_json(s.gitlab, &hook);
    if created {
        HttpResponse::Created().json(j)
    } else {
        HttpResponse::Ok().json(j)
    }
}

pub(super) async fn hook_delete(state: Shared, req: HttpRequest) -> HttpResponse {
    let mut s = lock(&state);
    note(&mut s, &req);
    if let Err(r) = administered(&s, &req) {
        return *r;
    }
    let id = req.match_info().query("hook").to_string();
    let before = s.hooks.len();
    s.hooks.retain(|h| h.id != id);
    if s.hooks.len() < before {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::NotFound().finish()
    }
}
