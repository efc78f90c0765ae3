//! The fake GitHub's repository webhooks: create, list, delete and configure, for the
//! repository's admins.

use super::*;

/// The repository `owner/name` if the caller administers it (GitHub answers 404 otherwise).
pub(super) fn administered(
    s: &State,
    req: &HttpRequest,
    owner: &str,
    name: &str,
) -> Result<String, Box<HttpResponse>> {
    let full = format!("{owner}/{name}");
    let login = caller(s, req).map(|u| u.login);
    if login.is_none() {
        return Err(Box::new(bad_credentials()));
    }
    s.repos
        .iter()
        .find(|r| r.full_name.eq_ignore_ascii_case(&full))
        .filter(|r| login.as_ref().is_some_and(|l| r.admins.contains(l)))
        .map(|r| r.full_name.clone())
        .ok_or_else(|| {
            Box::new(HttpResponse::NotFound().json(json!({
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/repos/webhooks",
            })))
        })
}

/// The start of every hook route: logged (and failed or stalled when told to), then the state
/// locked and the repository the caller administers.
pub(super) async fn hook_route<'a>(
    state: &'a Shared,
    req: &HttpRequest,
    owner: &str,
    name: &str,
) -> Result<(std::sync::MutexGuard<'a, State>, String), HttpResponse> {
    if let Some(r) = enter(state, req).await {
        return Err(r);
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    match administered(&s, req, owner, name) {
        Ok(repo) => Ok((s, repo)),
        Err(resp) => Err(*resp),
    }
}

pub(super) fn hook_json(h: &FakeHook) -> serde_json::Value {
    json!({
        "id": h.id,
        "type": "Repository",
        "name": "web",
        "active": true,
        "events": h.events,
        "config": {"url": h.url, "content_type": "json", "insecure_ssl": "0", "secret": "********"},
    })
}

pub(super) async fn create_hook(
    state: Shared,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    let (mut s, repo) = match hook_route(&state, &req, &owner, &name).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let config = &body["config"];
    let (Some(url), Some("json")) = (config["url"].as_str(), config["content_type"].as_str())
    else {
        return HttpResponse::UnprocessableEntity()
            .json(json!({"message": "Validation Failed", "errors": [{"resource": "Hook", "code": "invalid"}]}));
    };
    if body["name"] != "web" {
        return HttpResponse::UnprocessableEntity().json(json!({"message": "Validation Failed"}));
    }
    if s.hooks.iter().any(|h| h.repo == repo && h.url == url) {
        return HttpResponse::UnprocessableEntity().json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"}],
        }));
    }
    s.counter += 1;
    let hook = FakeHook {
        id: 1000 + s.counter as i64,
        repo,
        url: url.to_string(),
        secret: config["secret"].as_str().unwrap_or_default().to_string(),
        events: body["events"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_else(|| vec!["push".to_string()]),
    };
    let answer = hook_json(&hook);
    s.hooks.push(hook);
    HttpResponse::Created().json(answer)
}

pub(super) async fn list_hooks(
    state: Shared,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (owner, name) = path.into_inner();
    match hook_route(&state, &req, &owner, &name).await {
        Ok((s, repo)) => HttpResponse::Ok().json(
            s.hooks
                .iter()
                .filter(|h| h.repo == repo)
                .map(hook_json)
                .collect::<Vec<_>>(),
        ),
        Err(resp) => resp,
    }
}

pub(super) async fn delete_hook(
    state: Shared,
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
) -> HttpResponse {
    let (owner, name, id) = path.into_inner();
    let (mut s, repo) = match hook_route(&state, &req, &owner, &name).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let before = s.hooks.len();
    s.hooks.retain(|h| !(h.repo == repo && h.id == id));
    if s.hooks.len() < before {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::NotFound().json(json!({"message": "Not Found"}))
    }
}

pub(super) async fn hook_config(
    state: Shared,
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    let (owner, name, id) = path.into_inner();
    let (mut s, repo) = match hook_route(&state, &req, &owner, &name).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(hook) = s.hooks.iter_mut().find(|h| h.repo == repo && h.id == id) else {
        return HttpResponse::NotFound().json(json!({"message": "Not Found"}));
    };
    if let Some(url) = body["url"].as_str() {
        hook.url = url.to_string();
    }
    if let Some(secret) = body["secret"].as_str() {
        hook.secret = secret.to_string();
    }
    let answer = hook_json(hook);
    HttpResponse::Ok().json(answer["config"].clone())
}
