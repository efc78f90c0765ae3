//! The audit log of accounts and teams: who did what to which team or user, written beside the
//! action (its failure is logged; the action itself is done).

use gitvista_errors::blocking;
use gitvista_store::Store;

/// Writes an audit event (failures are logged: the action itself is done).
pub async fn audit(
    store: &Store,
    actor: String,
    team: Option<String>,
    action: &'static str,
    target: Option<String>,
    detail: Option<String>,
) {
    let (store, id) = (
        store.clone(),
        crate::accounts::random_id::<12>().unwrap_or_default(),
    );
    let done = blocking(move || {
        store.audit(
            &id,
            &actor,
            team.as_deref(),
            action,
            target.as_deref(),
            detail.as_deref(),
        )
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, action, "an audit event could not be written");
    }
}
