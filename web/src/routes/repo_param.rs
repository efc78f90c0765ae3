//! The one place a request's repository id comes from.
//!
//! [`identify`] is the first step of the request path ([`super::admission`]): it matches
//! the request's *decoded* path against the repository routes of [`super::methods::ROUTES`]
//! with the router's own matcher ([`ResourceDef`]), so it captures exactly the `{id}` the router
//! will, and parses it into a canonical [`RepoId`] once. The access decision, the forwarder and
//! every handler (through the [`RepoParam`] extractor) use that value and nothing else: no step
//! reads the id from the raw path, where `%36` is not `6`.
//!
//! A repository route whose `{id}` is not a canonical id (upper case, `%2F`, anything
//! [`RepoId::parse`] refuses) names no repository: [`RepoParam`] answers it 404 `unknown_repo`.

use std::future::{Ready, ready};
use std::sync::LazyLock;

use actix_web::dev::{Payload, ResourceDef, ServiceRequest};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use gitvista_actors::RepoId;

use gitvista_errors::ApiError;

/// The repository a request names, as [`identify`] parsed it, with the route it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRepo {
    /// The canonical id.
    pub id: RepoId,
    /// The pattern of the route matched (`/api/repos/{id}/graph`).
    pub route: &'static str,
}

/// The routes whose `{id}` names a repository: every pattern of the route table under
/// `/api/repos/{id}`, each with the router's matcher for it.
static REPO_ROUTES: LazyLock<Vec<(&'static str, ResourceDef)>> = LazyLock::new(|| {
    let mut patterns: Vec<&'static str> = super::methods::ROUTES
        .iter()
        .map(|(_, p)| *p)
        .filter(|p| is_repo_route(p))
        .collect();
    patterns.sort_unstable();
    patterns.dedup();
    patterns
        .into_iter()
        .map(|p| (p, ResourceDef::new(p)))
        .collect()
});

/// Whether route pattern `pattern` names a repository by its `{id}`.
pub fn is_repo_route(pattern: &str) -> bool {
    pattern == "/api/repos/{id}" || pattern.starts_with("/api/repos/{id}/")
}

/// What the request's decoded path names: `None` when it matches no repository route;
/// `Some((route, Some(id)))` with a canonical id; `Some((route, None))` when the `{id}` it
/// carries is no canonical id.
fn named(req: &ServiceRequest) -> Option<(&'static str, Option<RepoId>)> {
    // Every other request (pages, static files, the rest of the API) is done with here.
    if !req.match_info().as_str().starts_with("/api/repos/") {
        return None;
    }
    // The router's own matcher, on a copy of the very path it will match (a pattern that does
    // not match leaves the copy as it was).
    let mut path = req.match_info().clone();
    let pattern = REPO_ROUTES
        .iter()
        .find_map(|(pattern, def)| def.capture_match_info(&mut path).then_some(*pattern))?;
    Some((pattern, path.get("id").and_then(RepoId::parse)))
}

/// Records the repository the request names ([`RequestRepo`]) for every later step, and
/// answers it. The first step of [`super::admission::admit`].
pub fn identify(req: &ServiceRequest) -> Option<RequestRepo> {
    let (route, id) = named(req)?;
    let named = RequestRepo { id: id?, route };
    req.extensions_mut().insert(named.clone());
    Some(named)
}

/// The repository the request names, from [`identify`]'s record (404 `unknown_repo` when the
/// path carries no canonical id). The only way a handler learns its repository.
#[derive(Debug, Clone)]
pub struct RepoParam(pub RepoId);

impl RepoParam {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The id as owned text.
    pub fn into_string(self) -> String {
        self.0.as_str().to_string()
    }
}

impl std::ops::Deref for RepoParam {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl FromRequest for RepoParam {
    type Error = ApiError;
    type Future = Ready<Result<RepoParam, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<RequestRepo>() {
            Some(r) => Ok(RepoParam(r.id.clone())),
            None => Err(ApiError::UnknownRepo(
                req.match_info().get("id").unwrap_or_default().to_string(),
            )),
        })
    }
}

/// A repository and the object its route names by `{hash}` (`/api/repos/{id}/commit/{hash}`,
/// `tree`, `blob`, ...): the hash as the router captured it, checked by each handler.
#[derive(Debug, Clone)]
pub struct RepoObject {
    /// The repository.
    pub id: RepoParam,
    /// The object's name in the path (a hash, or what the route resolves).
    pub hash: String,
}

impl FromRequest for RepoObject {
    type Error = ApiError;
    type Future = Ready<Result<RepoObject, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            RepoParam::from_request(req, payload)
                .into_inner()
                .map(|id| RepoObject {
                    id,
                    hash: req.match_info().get("hash").unwrap_or_default().to_string(),
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn named_in(uri: &str) -> Option<(&'static str, Option<String>)> {
        let req = TestRequest::get().uri(uri).to_srv_request();
        named(&req).map(|(r, id)| (r, id.map(|i| i.as_str().to_string())))
    }

    #[test]
    fn the_id_is_read_from_the_decoded_path_as_the_router_reads_it() {
        let id = "0123456789abcdef";
        for (uri, want, why) in [
            (
                format!("/api/repos/{id}/graph"),
                Some(("/api/repos/{id}/graph", Some(id))),
                "the canonical spelling",
            ),
            (
                "/api/repos/%30123456789abcdef/graph".to_string(),
                Some(("/api/repos/{id}/graph", Some(id))),
                "a percent-encoded digit is the digit",
            ),
            (
                "/api/repos/0123456789%61bcdef/commit/x".to_string(),
                Some(("/api/repos/{id}/commit/{hash}", Some(id))),
                "a percent-encoded letter is the letter",
            ),
            (
                "/api/repos/0123456789ABCDEF/graph".to_string(),
                Some(("/api/repos/{id}/graph", None)),
                "upper case is no canonical id",
            ),
            (
                "/api/repos/01234567%2F89abcdef/graph".to_string(),
                Some(("/api/repos/{id}/graph", None)),
                "an encoded slash is no canonical id",
            ),
            (
                format!("/api/repos/{id}"),
                Some(("/api/repos/{id}", Some(id))),
                "DELETE's path",
            ),
            (
                format!("/api/repos/{id}/graph/"),
                None,
                "a trailing slash is no route",
            ),
            (
                format!("/api/repos//{id}/graph"),
                None,
                "a double slash is no route",
            ),
            (format!("/r/{id}"), None, "the page is no repository route"),
            ("/api/repos".to_string(), None, "the list"),
        ] {
            assert_eq!(
                named_in(&uri),
                want.map(|(r, i)| (r, i.map(str::to_string))),
                "{why}: {uri}"
            );
        }
    }
}
