//! What viewers and pages are sent, as JSON: a viewer event as its WebSocket text, a work
//! tree's status, a hosted repository's row. Below the cluster (whose bus relays events) and
//! the web layer (whose routes answer them), so neither imports the other for it.

use gitcore::worktree::WorkStatus;
use gitvista_actors::events::{ViewerEvent, envelope};
use serde_json::{Value, json};

use crate::store::Repo;

/// The WebSocket message of a viewer event that is one (not a control such as a close or an
/// access check).
pub fn event_text(event: &ViewerEvent) -> Option<String> {
    Some(match event {
        ViewerEvent::Delta(d) => d.json().to_string(),
        ViewerEvent::ReloadFailed(e) => {
            json!({"type": "error", "error": e.as_str(), "code": "reload_failed"}).to_string()
        }
        ViewerEvent::Status(s) => envelope("status", &work_status_json(s)),
        ViewerEvent::Head(h) => envelope("head", &**h),
        ViewerEvent::Remote(r) => envelope("status", &**r),
        ViewerEvent::Encoded(text) => text.to_string(),
        ViewerEvent::AccessChanged | ViewerEvent::Closing => return None,
    })
}

/// Status as JSON: porcelain columns per path plus counts.
pub fn work_status_json(s: &WorkStatus) -> Value {
    let count = |f: &dyn Fn(char, char) -> bool| {
        s.entries.iter().filter(|e| f(e.index, e.worktree)).count()
    };
    let conflict =
        |x: char, y: char| x == 'U' || y == 'U' || (x == 'A' && y == 'A') || (x == 'D' && y == 'D');
    json!({
        "entries": s.entries.iter().map(|e| json!({
            "path": e.path,
            "index": e.index.to_string(),
            "worktree": e.worktree.to_string(),
        })).collect::<Vec<_>>(),
        "staged": count(&|x, y| !conflict(x, y) && x != ' ' && x != '?'),
        "unstaged": count(&|x, y| !conflict(x, y) && y != ' ' && y != '?'),
        "untracked": count(&|x, _| x == '?'),
        "conflicted": count(&|x, y| conflict(x, y)),
        "truncated": s.truncated,
    })
}

/// A hosted repository's row as the API shows it.
pub fn repo_json(r: &Repo) -> Value {
    json!({
        "id": r.id,
        "url": r.canonical_url,
        "displayUrl": r.display_url,
        "private": r.is_private,
        "state": r.state,
        "error": r.error_message,
        "errorCode": r.error_code,
        "commits": r.commit_count,
        "diskBytes": r.disk_bytes,
        "lastFetchAt": r.last_fetch_at,
        "lastAccessAt": r.last_access_at,
        "createdAt": r.created_at,
    })
}
