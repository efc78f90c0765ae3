//! HTTP manners every route shares: `HEAD` is answered for every `GET` route (the same headers,
//! no body), and a known path asked with a method it does not take gets 405 with `Allow`, not 404.
//!
//! actix-web's route attributes guard each resource by method, so a path with the wrong method
//! falls through to the default service; [`ROUTES`] lists every route so that service can tell
//! "no such path" from "not with this method". A test keeps the list equal to the attributes.

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Every route: (method, path pattern), as the route attributes in `src/` declare them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/admin"),
    ("GET", "/dashboard"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/r/{id}"),
    ("GET", "/r/{id}/analytics"),
    ("GET", "/static/{path:.*}"),
    ("GET", "/auth/forges"),
    ("GET", "/auth/{forge}/login"),
    ("GET", "/auth/{forge}/connect"),
    ("GET", "/auth/{forge}/callback"),
    ("DELETE", "/api/user/connections/{forge}"),
    ("POST", "/auth/logout"),
    ("GET", "/api/user"),
    ("GET", "/api/user/repos"),
    ("GET", "/api/user/tracked"),
    ("GET", "/api/admin/users"),
    ("PATCH", "/api/admin/users/{id}"),
    ("POST", "/api/admin/users/{id}/sign-out"),
    ("GET", "/api/admin/actors"),
    ("GET", "/api/admin/repos"),
    ("GET", "/api/admin/sessions"),
    ("GET", "/api/admin/status"),
    ("POST", "/api/admin/login"),
    ("POST", "/api/admin/logout"),
    ("POST", "/api/admin/repos/{id}/evict"),
    ("POST", "/api/admin/repos/{id}/fetch"),
    ("GET", "/api/repos"),
    ("POST", "/api/repos"),
    ("DELETE", "/api/repos/{id}"),
    ("GET", "/api/repos/{id}/analytics"),
    ("GET", "/api/repos/{id}/blob/{hash}"),
    ("GET", "/api/repos/{id}/blob/{hash}/raw"),
    ("GET", "/api/repos/{id}/commit/diff/{hash}"),
    ("GET", "/api/repos/{id}/commit/diff/{hash}/file"),
    ("GET", "/api/repos/{id}/commit/{hash}"),
    ("GET", "/api/repos/{id}/compare/{hash}"),
    ("GET", "/api/repos/{id}/compare/{hash}/file"),
    ("GET", "/api/repos/{id}/graph"),
    ("GET", "/api/repos/{id}/index/diff"),
    ("GET", "/api/repos/{id}/lifecycle"),
    ("GET", "/api/repos/{id}/overview"),
    ("GET", "/api/repos/{id}/repository"),
    ("GET", "/api/repos/{id}/search"),
    ("GET", "/api/repos/{id}/status"),
    ("GET", "/api/repos/{id}/tree/blame/{hash}"),
    ("GET", "/api/repos/{id}/tree/{hash}"),
    ("GET", "/api/repos/{id}/working-tree/diff"),
    ("GET", "/api/repos/{id}/working-tree/status"),
    ("GET", "/api/repos/{id}/ws"),
    ("POST", "/webhooks/github"),
    ("POST", "/webhooks/gitlab"),
    ("POST", "/webhooks/bitbucket"),
    ("POST", "/webhooks/stripe"),
    ("POST", "/api/billing/checkout"),
    ("POST", "/api/billing/portal"),
    ("POST", "/api/user/tracked/{id}/keep"),
    ("POST", "/api/teams"),
    ("GET", "/api/teams"),
    ("GET", "/api/teams/join/{token}"),
    ("POST", "/api/teams/join/{token}"),
    ("POST", "/api/teams/invites/{id}/accept"),
    ("GET", "/api/teams/{id}"),
    ("POST", "/api/teams/{id}/invites"),
    ("DELETE", "/api/teams/{id}/members/{user}"),
    ("POST", "/api/teams/{id}/transfer"),
    ("POST", "/api/teams/{id}/repos"),
    ("POST", "/api/teams/{id}/repos/{repo}/keep"),
    ("DELETE", "/api/teams/{id}/repos/{repo}"),
    ("POST", "/api/teams/{id}/billing/checkout"),
    ("GET", "/api/teams/{id}/audit"),
    ("GET", "/api/admin/audit"),
    ("POST", "/webhooks/generic/{id}"),
];

fn compiled() -> &'static [(&'static str, ResourceDef)] {
    static DEFS: std::sync::OnceLock<Vec<(&'static str, ResourceDef)>> = std::sync::OnceLock::new();
    DEFS.get_or_init(|| {
        ROUTES
            .iter()
            .map(|(m, p)| (*m, ResourceDef::new(*p)))
            .collect()
    })
}

/// The methods `path` is served with (with `HEAD` beside `GET`), or `None` for an unknown path.
pub fn allowed(path: &str) -> Option<String> {
    let mut methods: Vec<&str> = compiled()
        .iter()
        .filter(|(_, def)| def.is_match(path))
        .map(|(m, _)| *m)
        .collect();
    if methods.is_empty() {
        return None;
    }
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.sort_unstable();
    methods.dedup();
    Some(methods.join(", "))
}

/// Serves `HEAD` as `GET`: the handler runs and its headers (length, ETag, type) are sent; the
/// HTTP layer leaves the body out because the request on the wire was a HEAD.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_exactly_the_route_attributes() {
        let mut declared = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("src").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).expect("read");
                    for line in text.lines().map(str::trim) {
                        for (attr, method) in [
                            ("#[get(\"", "GET"),
                            ("#[post(\"", "POST"),
                            ("#[delete(\"", "DELETE"),
                            ("#[put(\"", "PUT"),
                            ("#[patch(\"", "PATCH"),
                        ] {
                            if let Some(rest) = line.strip_prefix(attr)
                                && let Some((path, _)) = rest.split_once('"')
                            {
                                declared.push((method.to_string(), path.to_string()));
                            }
                        }
                    }
                }
            }
        }
        let mut table: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        declared.sort();
        table.sort();
        assert_eq!(declared, table, "ROUTES must list every route attribute");
    }

    #[test]
    fn allowed_methods_per_path() {
        assert_eq!(allowed("/healthz").as_deref(), Some("GET, HEAD"));
        assert_eq!(allowed("/api/repos").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allowed("/api/repos/abc").as_deref(), Some("DELETE"));
        assert_eq!(
            allowed("/api/admin/repos/abc/fetch").as_deref(),
            Some("POST")
        );
        assert_eq!(allowed("/nope"), None);
    }
}
