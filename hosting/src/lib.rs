//! GitVista's hosting floor: the life of a hosted repository, from a pasted URL to a served,
//! fresh session.
//!
//! It owns the URL policy, the clone lifecycle, the first view streamed from the remote, the
//! budgets (per client, the disk, the memory the sessions may use), webhook logic and the
//! plans' effect on fetching. Modules, bottom up:
//!
//! - [`remote`] (which URLs are accepted and what they name), [`client`] (who a client is and
//!   its budgets), [`config`] (hosted mode's settings);
//! - [`webhooks`] (verification, events, the one receiver pipeline, hints confirmed with the
//!   forge, hook registration);
//! - [`hosted`] (the [`hosted::Hosted`] node and its wiring), with what it does beside it:
//!   [`clones`], [`recovery`], [`disk`], [`fetches`], [`status`], [`streaming`], [`quota`] (plans
//!   over the lists), [`node`] (the cluster's [`gitvista_cluster::Node`]) and [`readiness`]
//!   (whether the node can serve now: `/readyz`).
//!
//! It stands on the store, accounts, the cluster and the actors; it knows nothing of the web
//! layer: receivers and routes hand it what they read, and it answers values and `ApiError`s.

pub mod client;
pub mod config;
pub mod hosted;
pub mod remote;
pub mod streaming;
pub mod webhooks;
