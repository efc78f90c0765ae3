//! Which forge a repository lives on, from a remote URL: its web address, for links from commit
//! messages (`#123`, `owner/repo#123`, GitLab's `!123`). Only the public GitHub, GitLab and
//! Bitbucket hosts are recognised, and the address is rebuilt from checked path segments, never
//! copied from the URL, so a hostile remote cannot make the page link elsewhere.

use serde::Serialize;

/// A repository's home on a forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forge {
    /// `github`, `gitlab` or `bitbucket`.
    pub kind: &'static str,
    /// `https://host/owner/repo` (GitLab: every group segment).
    pub url: String,
}

/// The forge of remote `url` (`https://`, `http://`, `ssh://`, `git://` or scp-like
/// `user@host:path`), if it is one of the known public forges.
pub fn forge_of(url: &str) -> Option<Forge> {
    let url = url.trim();
    let (authority, path) = match url.split_once("://") {
        Some((scheme, rest)) => {
            if !matches!(
                scheme.to_ascii_lowercase().as_str(),
                "https" | "http" | "ssh" | "git"
            ) {
                return None;
            }
            rest.split_once('/')?
        }
        // scp-like: no scheme, `host:path` with the host before the first colon.
        None => {
            let (authority, path) = url.split_once(':')?;
            if authority.contains('/') {
                return None;
            }
            (authority, path)
        }
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host
        .split_once(':')
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let kind = match host {
        "github.com" => "github",
        "gitlab.com" => "gitlab",
        "bitbucket.org" => "bitbucket",
        _ => return None,
    };
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(last) = segments.last_mut() {
        *last = last.strip_suffix(".git").unwrap_or(last);
    }
    let valid = |s: &&str| {
        !s.is_empty()
            && *s != "."
            && *s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let count_ok = match kind {
        "gitlab" => segments.len() >= 2,
        _ => segments.len() == 2,
    };
    (count_ok && segments.iter().all(valid)).then(|| Forge {
        kind,
        url: format!("https://{host}/{}", segments.join("/")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_forges_from_every_url_form_and_nothing_else() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "https://github.com/rust-lang/cargo.git",
                Some(("github", "https://github.com/rust-lang/cargo")),
            ),
            (
                "git@github.com:Owner/Repo.git",
                Some(("github", "https://github.com/Owner/Repo")),
            ),
            (
                "ssh://git@github.com:22/o/r",
                Some(("github", "https://github.com/o/r")),
            ),
            (
                "https://www.GitHub.com/o/r/",
                Some(("github", "https://github.com/o/r")),
            ),
            (
                "https://gitlab.com/group/sub/project.git",
                Some(("gitlab", "https://gitlab.com/group/sub/project")),
            ),
            (
                "git@bitbucket.org:team/repo.git",
                Some(("bitbucket", "https://bitbucket.org/team/repo")),
            ),
            ("https://github.com/only-owner", None),
            ("https://github.com/o/r/extra", None),
            ("https://github.com/o/r%2F..", None),
            ("https://github.com/../r", None),
            ("https://evil.example/github.com/o/r", None),
            ("https://github.com.evil.example/o/r", None),
            ("file:///github.com/o/r", None),
            ("/srv/git/repo.git", None),
            ("javascript:alert(1)//github.com/o/r", None),
        ];
        for (url, expected) in cases {
            let got = forge_of(url).map(|f| (f.kind, f.url));
            assert_eq!(got, expected.map(|(k, u)| (k, u.to_string())), "{url}");
        }
    }
}
