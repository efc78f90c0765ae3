//! A hosted repository's row as the API shows it, for hosting's progress feeds and the routes.

use serde_json::{Value, json};

use crate::store::Repo;

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
