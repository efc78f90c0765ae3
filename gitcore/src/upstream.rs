//! The branch HEAD is on against its upstream, as `git status -sb` and
//! `git rev-list --left-right --count @{u}...HEAD` tell it.
//!
//! The upstream is what `branch.<name>.remote` and `branch.<name>.merge` name: the remote's
//! fetch refspecs map the merge ref to a remote-tracking ref (`refs/remotes/origin/main`), or,
//! for the remote `.`, the merge ref is a local branch itself.

use crate::config::Entry;
use crate::graph::{CommitGraph, CommitIdx};
use crate::oid::ObjectId;
use crate::refs::Head;
use crate::repo::Repository;

/// How the branch stands against its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamStatus {
    /// Both name the same commit, or neither has a commit the other lacks.
    UpToDate,
    /// The branch has commits the upstream lacks, and not the other way round.
    Ahead,
    /// The upstream has commits the branch lacks, and not the other way round.
    Behind,
    /// Both have commits the other lacks.
    Diverged,
    /// No comparison: HEAD is detached, no upstream is configured, or it is gone.
    Unavailable,
}

impl UpstreamStatus {
    /// The wire name (`up_to_date`, `ahead`, `behind`, `diverged`, `unavailable`).
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamStatus::UpToDate => "up_to_date",
            UpstreamStatus::Ahead => "ahead",
            UpstreamStatus::Behind => "behind",
            UpstreamStatus::Diverged => "diverged",
            UpstreamStatus::Unavailable => "unavailable",
        }
    }
}

/// The branch against its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The upstream's full ref name (`refs/remotes/origin/main`), when one is configured.
    pub ref_name: Option<String>,
    /// Its short name (`origin/main`).
    pub branch_name: Option<String>,
    /// The commit it names, when it exists.
    pub hash: Option<ObjectId>,
    /// How the two stand.
    pub status: UpstreamStatus,
    /// Commits on the branch, not on the upstream (newest first).
    pub ahead: Vec<CommitIdx>,
    /// Commits on the upstream, not on the branch (newest first).
    pub behind: Vec<CommitIdx>,
    /// Why there is no comparison, when there is none.
    pub reason: Option<String>,
}

impl Upstream {
    fn unavailable(ref_name: Option<String>, reason: String) -> Upstream {
        Upstream {
            branch_name: ref_name.as_deref().map(short_name),
            ref_name,
            hash: None,
            status: UpstreamStatus::Unavailable,
            ahead: Vec::new(),
            behind: Vec::new(),
            reason: Some(reason),
        }
    }
}

/// `refs/remotes/origin/main` -> `origin/main`, `refs/heads/x` -> `x`.
fn short_name(name: &str) -> String {
    name.strip_prefix("refs/remotes/")
        .or_else(|| name.strip_prefix("refs/heads/"))
        .unwrap_or(name)
        .to_string()
}

/// The last value of `section.subsection.key`.
fn last<'a>(config: &'a [Entry], section: &str, sub: &str, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|e| e.section == section && e.subsection.as_deref() == Some(sub) && e.key == key)
        .and_then(|e| e.value.as_deref())
}

/// Maps `name` through one fetch refspec (`+refs/heads/*:refs/remotes/origin/*`).
fn map_refspec(spec: &str, name: &str) -> Option<String> {
    let spec = spec.strip_prefix('+').unwrap_or(spec);
    let (src, dst) = spec.split_once(':')?;
    match (src.split_once('*'), dst.split_once('*')) {
        (Some((sp, ss)), Some((dp, ds))) => {
            let middle = name.strip_prefix(sp)?.strip_suffix(ss)?;
            Some(format!("{dp}{middle}{ds}"))
        }
        (None, None) if src == name && !dst.is_empty() => Some(dst.to_string()),
        _ => None,
    }
}

/// The upstream of the branch HEAD is on, compared with it in `graph`.
pub fn upstream(repo: &Repository, graph: &CommitGraph) -> Upstream {
    let branch = match graph.head() {
        Some(Head::Branch { name, .. }) => name.clone(),
        Some(Head::Detached(_)) => {
            return Upstream::unavailable(None, "HEAD is detached".to_string());
        }
        _ => return Upstream::unavailable(None, "HEAD names no branch".to_string()),
    };
    let short = branch.strip_prefix("refs/heads/").unwrap_or(&branch);
    let config = crate::config::read(&repo.dirs().common_dir.join("config")).unwrap_or_default();
    let (Some(remote), Some(merge)) = (
        last(&config, "branch", short, "remote"),
        last(&config, "branch", short, "merge"),
    ) else {
        return Upstream::unavailable(None, format!("{short} has no upstream branch"));
    };
    let tracking = if remote == "." {
        Some(merge.to_string())
    } else {
        config
            .iter()
            .filter(|e| {
                e.section == "remote" && e.subsection.as_deref() == Some(remote) && e.key == "fetch"
            })
            .filter_map(|e| e.value.as_deref())
            .find_map(|spec| map_refspec(spec, merge))
    };
    let Some(tracking) = tracking else {
        return Upstream::unavailable(
            None,
            format!("{remote} fetches nothing that tracks {merge}"),
        );
    };
    let found = graph
        .refs()
        .iter()
        .find(|r| r.name == tracking)
        .map(|r| r.commit);
    let (Some(up), Some(head)) = (found, graph.head_commit()) else {
        let reason = format!("{} is gone", short_name(&tracking));
        return Upstream::unavailable(Some(tracking), reason);
    };
    let (ahead, behind) = graph.exclusive(head, up);
    let status = match (ahead.is_empty(), behind.is_empty()) {
        (true, true) => UpstreamStatus::UpToDate,
        (false, true) => UpstreamStatus::Ahead,
        (true, false) => UpstreamStatus::Behind,
        (false, false) => UpstreamStatus::Diverged,
    };
    Upstream {
        branch_name: Some(short_name(&tracking)),
        ref_name: Some(tracking),
        hash: Some(graph.oid(up)),
        status,
        ahead,
        behind,
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refspecs_map_globs_and_exact_names() {
        let glob = "+refs/heads/*:refs/remotes/origin/*";
        assert_eq!(
            map_refspec(glob, "refs/heads/main").as_deref(),
            Some("refs/remotes/origin/main")
        );
        assert_eq!(map_refspec(glob, "refs/tags/v1"), None);
        assert_eq!(
            map_refspec("refs/heads/main:refs/remotes/up/trunk", "refs/heads/main").as_deref(),
            Some("refs/remotes/up/trunk")
        );
        assert_eq!(map_refspec("refs/heads/main", "refs/heads/main"), None);
    }
}
