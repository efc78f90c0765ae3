//! What a verified delivery asks for, read from its JSON. Payloads are read as loose JSON (a
//! field GitHub adds or drops does not break a delivery); only the fields named here are
//! looked at, and every URL found is checked and canonicalised like a pasted one before it is
//! used to find a repository.

use serde_json::Value;

/// What a delivery asks this server to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The hook works (`ping`): note it; nothing to fetch.
    Ping {
        /// The repository's URLs, when the hook belongs to one (an app's hook has none).
        urls: Vec<String>,
    },
    /// Refs changed (`push`, `create`, `delete`, GitLab's pushes): fetch the repository.
    Fetch {
        /// The repository's URLs, most specific first.
        urls: Vec<String>,
    },
    /// Renamed or transferred: the repository now lives at `new_urls`.
    Moved {
        /// Where it was.
        old_urls: Vec<String>,
        /// Where it is.
        new_urls: Vec<String>,
    },
    /// Made private or public.
    Visibility {
        /// The repository's URLs.
        urls: Vec<String>,
        /// Private now.
        private: bool,
    },
    /// Who may read these repositories changed (a GitHub App installation): ask again.
    Recheck {
        /// One URL list per repository.
        repos: Vec<Vec<String>>,
    },
    /// An event or action this server has no use for.
    Ignored,
}

/// The payload is not a JSON object (malformed, or another type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the delivery's body is not a JSON object")]
pub struct Malformed;

fn object(body: &[u8]) -> Result<Value, Malformed> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Malformed),
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The URLs GitHub gives for a repository object, most specific first.
fn github_urls(repo: &Value) -> Vec<String> {
    ["html_url", "clone_url", "ssh_url", "git_url"]
        .iter()
        .filter_map(|k| text(repo, &[k]))
        .map(str::to_string)
        .collect()
}

/// A GitHub repository's web URL from its `full_name`, on the host of `like` (an
/// installation's repository lists carry only names).
fn github_url_of(full_name: &str, host_of: &str) -> Option<String> {
    let host = url::Url::parse(host_of).ok()?;
    let origin = host.origin().ascii_serialization();
    (full_name.split('/').count() == 2).then(|| format!("{origin}/{full_name}"))
}

/// What GitHub's `event` (the `X-GitHub-Event` header) with `body` asks for. `web_url` is the
/// configured GitHub's web address (installation events name repositories only by
/// `owner/name`).
pub fn github(event: &str, body: &[u8], web_url: &str) -> Result<Action, Malformed> {
    let v = object(body)?;
    let repo_urls = || v.get("repository").map(github_urls).unwrap_or_default();
    Ok(match event {
        "ping" => Action::Ping { urls: repo_urls() },
        "push" | "create" | "delete" => {
            let urls = repo_urls();
            if urls.is_empty() {
                return Err(Malformed);
            }
            Action::Fetch { urls }
        }
        "repository" => {
            let urls = repo_urls();
            if urls.is_empty() {
                return Err(Malformed);
            }
            match text(&v, &["action"]) {
                Some("renamed") => {
                    let old = text(&v, &["changes", "repository", "name", "from"]);
                    let old_urls = urls
                        .iter()
                        .filter_map(|u| {
                            let (base, _) = u.trim_end_matches(".git").rsplit_once('/')?;
                            Some(format!("{base}/{}", old?))
                        })
                        .collect();
                    Action::Moved {
                        old_urls,
                        new_urls: urls,
                    }
                }
                Some("transferred") => {
                    let old_owner = text(&v, &["changes", "owner", "from", "user", "login"])
                        .or_else(|| {
                            text(&v, &["changes", "owner", "from", "organization", "login"])
                        });
                    let name = text(&v, &["repository", "name"]);
                    let old_urls = match (old_owner, name) {
                        (Some(o), Some(n)) => urls
                            .iter()
                            .filter_map(|u| {
                                let parsed = url::Url::parse(u).ok()?;
                                Some(format!("{}/{o}/{n}", parsed.origin().ascii_serialization()))
                            })
                            .take(1)
                            .collect(),
                        _ => Vec::new(),
                    };
                    Action::Moved {
                        old_urls,
                        new_urls: urls,
                    }
                }
                Some("privatized") => Action::Visibility {
                    urls,
                    private: true,
                },
                Some("publicized") => Action::Visibility {
                    urls,
                    private: false,
                },
                // Its clone's next fetch says it is gone.
                Some("deleted") => Action::Fetch { urls },
                _ => Action::Ignored,
            }
        }
        "installation" | "installation_repositories" => {
            let mut repos = Vec::new();
            for key in ["repositories", "repositories_added", "repositories_removed"] {
                for r in v.get(key).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(u) = text(r, &["full_name"]).and_then(|n| github_url_of(n, web_url))
                    {
                        repos.push(vec![u]);
                    }
                }
            }
            if repos.is_empty() {
                Action::Ignored
            } else {
                Action::Recheck { repos }
            }
        }
        _ => Action::Ignored,
    })
}

/// What GitLab's `event` (the `X-Gitlab-Event` header) with `body` asks for: project and
/// system hooks' pushes and tag pushes, and a system hook's `repository_update`.
pub fn gitlab(event: &str, body: &[u8]) -> Result<Action, Malformed> {
    let v = object(body)?;
    let urls: Vec<String> = [
        &["project", "git_http_url"][..],
        &["project", "web_url"],
        &["repository", "git_http_url"],
        &["repository", "homepage"],
    ]
    .iter()
    .filter_map(|p| text(&v, p))
    .map(str::to_string)
    .collect();
    let kind = text(&v, &["object_kind"]).or_else(|| text(&v, &["event_name"]));
    Ok(match (event, kind) {
        ("Push Hook" | "Tag Push Hook", _)
        | ("System Hook", Some("push" | "tag_push" | "repository_update")) => {
            if urls.is_empty() {
                return Err(Malformed);
            }
            Action::Fetch { urls }
        }
        _ => Action::Ignored,
    })
}

/// Bitbucket Cloud's deliveries (`X-Event-Key`): `repo:push` fetches the repository its
/// `repository.links.html.href` names; everything else is ignored.
pub fn bitbucket(event: &str, body: &[u8]) -> Result<Action, Malformed> {
    let v = object(body)?;
    Ok(match event {
        "repo:push" => {
            let urls: Vec<String> = text(&v, &["repository", "links", "html", "href"])
                .map(str::to_string)
                .into_iter()
                .collect();
            if urls.is_empty() {
                return Err(Malformed);
            }
            Action::Fetch { urls }
        }
        _ => Action::Ignored,
    })
}

/// A generic hook's body must be a JSON object; the repository is the one its URL names.
pub fn generic(body: &[u8]) -> Result<(), Malformed> {
    object(body).map(|_| ())
}

/// The metrics label of an event: the known ones by name, anything else as `other` (a sender
/// cannot grow the label set).
pub fn label(event: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "ping",
        "push",
        "create",
        "delete",
        "repository",
        "installation",
        "installation_repositories",
        "Push Hook",
        "Tag Push Hook",
        "System Hook",
        "repo:push",
        "generic",
    ];
    KNOWN
        .iter()
        .find(|k| **k == event)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WEB: &str = "https://github.com";

    fn repo(full: &str) -> Value {
        json!({
            "name": full.split('/').nth(1),
            "full_name": full,
            "html_url": format!("https://github.com/{full}"),
            "clone_url": format!("https://github.com/{full}.git"),
            "ssh_url": format!("git@github.com:{full}.git"),
            "private": false,
        })
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).expect("json")
    }

    #[test]
    fn pushes_creates_and_deletes_fetch_the_repository() {
        for event in ["push", "create", "delete"] {
            let body = json!({"ref": "refs/heads/main", "repository": repo("o/r")});
            let Ok(Action::Fetch { urls }) = github(event, &bytes(&body), WEB) else {
                panic!("{event}");
            };
            assert_eq!(urls[0], "https://github.com/o/r");
            assert!(urls.contains(&"git@github.com:o/r.git".to_string()));
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [&b"{"[..], b"[]", b"\"x\"", b"", b"null"] {
            assert_eq!(github("push", body, WEB), Err(Malformed));
            assert_eq!(gitlab("Push Hook", body), Err(Malformed));
            assert_eq!(generic(body), Err(Malformed));
        }
        // A push that names no repository.
        assert_eq!(github("push", b"{\"ref\":\"x\"}", WEB), Err(Malformed));
    }

    #[test]
    fn renames_and_transfers_say_where_it_was() {
        let body = json!({
            "action": "renamed",
            "changes": {"repository": {"name": {"from": "old"}}},
            "repository": repo("o/new"),
        });
        let Ok(Action::Moved { old_urls, new_urls }) = github("repository", &bytes(&body), WEB)
        else {
            panic!("renamed");
        };
        assert_eq!(old_urls[0], "https://github.com/o/old");
        assert_eq!(new_urls[0], "https://github.com/o/new");
        let body = json!({
            "action": "transferred",
            "changes": {"owner": {"from": {"organization": {"login": "was"}}}},
            "repository": repo("now/r"),
        });
        let Ok(Action::Moved { old_urls, .. }) = github("repository", &bytes(&body), WEB) else {
            panic!("transferred");
        };
        assert_eq!(old_urls, vec!["https://github.com/was/r".to_string()]);
    }

    #[test]
    fn visibility_and_installation_changes() {
        let body = json!({"action": "privatized", "repository": repo("o/r")});
        assert!(matches!(
            github("repository", &bytes(&body), WEB),
            Ok(Action::Visibility { private: true, .. })
        ));
        let body = json!({
            "action": "removed",
            "repositories_removed": [{"full_name": "o/a"}, {"full_name": "bad"}],
            "repositories_added": [],
        });
        assert_eq!(
            github(
                "installation_repositories",
                &bytes(&body),
                "http://127.0.0.1:9/"
            ),
            Ok(Action::Recheck {
                repos: vec![vec!["http://127.0.0.1:9/o/a".to_string()]]
            })
        );
        assert_eq!(
            github(
                "repository",
                &bytes(&json!({"action": "edited", "repository": repo("o/r")})),
                WEB
            ),
            Ok(Action::Ignored)
        );
        assert_eq!(github("star", b"{}", WEB), Ok(Action::Ignored));
    }

    #[test]
    fn gitlab_pushes_tags_and_system_hooks() {
        let project = json!({
            "git_http_url": "https://gitlab.com/g/sub/p.git",
            "web_url": "https://gitlab.com/g/sub/p",
        });
        for (event, kind) in [
            ("Push Hook", "push"),
            ("Tag Push Hook", "tag_push"),
            ("System Hook", "repository_update"),
        ] {
            let body = json!({"object_kind": kind, "event_name": kind, "project": project});
            let Ok(Action::Fetch { urls }) = gitlab(event, &bytes(&body)) else {
                panic!("{event}");
            };
            assert_eq!(urls[0], "https://gitlab.com/g/sub/p.git");
        }
        let body = json!({"event_name": "user_create"});
        assert_eq!(gitlab("System Hook", &bytes(&body)), Ok(Action::Ignored));
        assert_eq!(gitlab("Note Hook", &bytes(&body)), Ok(Action::Ignored));
    }

    #[test]
    fn unknown_event_names_share_one_label() {
        assert_eq!(label("push"), "push");
        assert_eq!(label("x".repeat(100).as_str()), "other");
    }
}
